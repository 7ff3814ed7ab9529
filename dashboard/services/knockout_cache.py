"""Cached knock-out and decomposition results for the Knock-out view, keyed by image bytes and settings.

A branch set is part of the key, so toggling a branch off and on again shows the cached result without a forward.
Branch means for ``mode='mean'`` are measured once per model on training images (embedded models, data present).
Results live in the server's byte-bounded cache and are computed in compute-gate slots (``shared_cache.shared``); what a
result needs from another cached result (the model input, the branch means) is fetched before its own slot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dashboard.services import image_inputs, model_store, shared_cache
from dashboard.services.shared_cache import read_only
from res2net.analysis import cam
from res2net.analysis.decompose import decompose
from res2net.analysis.lesion import ablate, branch_means
from res2net.data import tiny_imagenet as data
from res2net.evaluation import knockout_study as knockout


def model_branch_means(name: str, device: str, weights: str) -> dict[str, torch.Tensor] | None:
    """Per-branch channel means over ``knockout.MEAN_IMAGES`` evenly spaced Tiny-ImageNet-100 train images, for an
    embedded model with trained weights (the default ones or a user's file); None when that does not apply (other
    models, random init, no data)."""
    import res2net

    if weights == "random" or not res2net.get_spec(name).embedded:
        return None
    return shared_cache.shared(("branch_means", name, device, weights), "Measuring branch means on training images",
                               lambda: _branch_means(name, device, weights))


def _branch_means(name: str, device: str, weights: str) -> dict[str, torch.Tensor] | None:
    try:
        train = data.load_split("train")
    except data.DataError:
        return None
    x = knockout.train_images(train, name)
    return branch_means(model_store.get_model(name, device, weights), x.to(device))


@dataclass(frozen=True)
class KnockoutResult:
    """CAMs (raw (h, w) per tap) and class probabilities of one image with some branches knocked out (none: intact)."""

    maps: dict[str, np.ndarray]
    probs: np.ndarray
    target: int


def knocked_cams(image: bytes, name: str, device: str, weights: str, block: str, branches: tuple[int, ...],
                 mode: str, effect: str, method: str, target: int | None, taps: tuple[str, ...]) -> KnockoutResult:
    """CAMs at ``taps`` for class ``target`` (None: this run's top-1) with ``branches`` of ``block`` knocked out."""
    key = ("knocked_cams", shared_cache.image_key(image), name, device, weights, block, branches, mode, effect, method,
           target, taps)
    x = image_inputs.model_input(image, name)
    means = model_branch_means(name, device, weights) if mode == "mean" else None
    return shared_cache.shared(key, f"Running {name} with the branches knocked out",
                               lambda: _knocked_cams(x, name, device, weights, block, branches, mode, effect, method,
                                                     target, taps, means))


def _knocked_cams(x: torch.Tensor, name: str, device: str, weights: str, block: str, branches: tuple[int, ...],
                  mode: str, effect: str, method: str, target: int | None, taps: tuple[str, ...],
                  means: dict[str, torch.Tensor] | None) -> KnockoutResult:
    x = x.to(device)
    model = model_store.get_model(name, device, weights)
    if branches:
        with ablate(model, {block: list(branches)}, mode=mode, effect=effect, means=means):
            maps, logits = cam.compute_cams(model, x, targets=target, taps=list(taps), method=method,
                                            return_logits=True)
    else:
        maps, logits = cam.compute_cams(model, x, targets=target, taps=list(taps), method=method, return_logits=True)
    logits = logits[0].float()
    return KnockoutResult(maps={t: read_only(m[0].detach().cpu().numpy()) for t, m in maps.items()},
                          probs=read_only(torch.softmax(logits, 0).detach().cpu().numpy()),
                          target=int(logits.argmax()) if target is None else int(target))


@dataclass(frozen=True)
class DecompositionResult:
    """One block's per-branch contribution maps, bias map, the block's own map, and the total-gradient maps."""

    parts: np.ndarray  # (s, h, w)
    bias: np.ndarray  # (h, w)
    residual: np.ndarray  # (h, w): gradient x residual output, what parts + bias add up to
    total_gradient: np.ndarray  # (s, h, w): branch output x its total gradient (no partition)
    sum_error: float
    centred: bool


def block_decomposition(image: bytes, name: str, device: str, weights: str, block: str, target: int,
                        centred: bool) -> DecompositionResult:
    """The exact per-branch decomposition of ``block``'s gradient x activation map for class ``target``."""
    key = ("block_decomposition", shared_cache.image_key(image), name, device, weights, block, target, centred)
    x = image_inputs.model_input(image, name)
    means = model_branch_means(name, device, weights) if centred else None

    def compute() -> DecompositionResult:
        model = model_store.get_model(name, device, weights)
        d = decompose(model, x.to(device), targets=target, blocks=[block], means=means).blocks[block]
        return DecompositionResult(parts=read_only(d.branches[0].cpu().numpy()),
                                   bias=read_only(d.bias[0].cpu().numpy()),
                                   residual=read_only(d.residual[0].cpu().numpy()),
                                   total_gradient=read_only(d.total_gradient[0].cpu().numpy()),
                                   sum_error=float(d.sum_error), centred=d.centred)

    return shared_cache.shared(key, f"Decomposing {block} of {name} by branch", compute)

