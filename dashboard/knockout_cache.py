"""Cached knock-out and decomposition results for the Knock-out view, keyed by image bytes and settings.

A branch set is part of the key, so toggling a branch off and on again shows the cached result without a forward.
Branch means for ``mode='mean'`` are measured once per model on training images (embedded models, data present).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from dashboard import cached
from res2net import cam, data, knockout
from res2net.ablate import ablate, branch_means
from res2net.decompose import decompose


@st.cache_resource(show_spinner="Measuring branch means on training images…", max_entries=8)
def model_branch_means(name: str, device: str, weights: str) -> dict[str, torch.Tensor] | None:
    """Per-branch channel means over ``knockout.MEAN_IMAGES`` evenly spaced Tiny-ImageNet-100 train images, for an
    embedded model with trained weights; None when that does not apply (other models, random init, no data)."""
    import res2net

    if weights != "trained" or res2net.get_spec(name).family != "embedded":
        return None
    try:
        train = data.load_split("train")
    except data.DataError:
        return None
    x = knockout.train_images(train, name)
    return branch_means(cached.get_model(name, device, weights), x.to(device))


@dataclass(frozen=True)
class KnockoutResult:
    """CAMs (raw (h, w) per tap) and class probabilities of one image with some branches knocked out (none: intact)."""

    maps: dict[str, np.ndarray]
    probs: np.ndarray
    target: int


@st.cache_data(show_spinner="Running the model with the branches knocked out…", max_entries=256)
def knocked_cams(image: bytes, name: str, device: str, weights: str, block: str, branches: tuple[int, ...],
                 mode: str, effect: str, method: str, target: int | None, taps: tuple[str, ...]) -> KnockoutResult:
    """CAMs at ``taps`` for class ``target`` (None: this run's top-1) with ``branches`` of ``block`` knocked out."""
    x = cached.model_input(image, name).to(device)
    model = cached.get_model(name, device, weights)
    means = model_branch_means(name, device, weights) if mode == "mean" else None
    if branches:
        with ablate(model, {block: list(branches)}, mode=mode, effect=effect, means=means):
            maps, logits = cam.compute_cams(model, x, targets=target, taps=list(taps), method=method,
                                            return_logits=True)
    else:
        maps, logits = cam.compute_cams(model, x, targets=target, taps=list(taps), method=method, return_logits=True)
    logits = logits[0].float()
    return KnockoutResult(maps={t: m[0].numpy() for t, m in maps.items()}, probs=torch.softmax(logits, 0).numpy(),
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


@st.cache_data(show_spinner="Decomposing the block's map by branch…", max_entries=128)
def block_decomposition(image: bytes, name: str, device: str, weights: str, block: str, target: int,
                        centred: bool) -> DecompositionResult:
    """The exact per-branch decomposition of ``block``'s gradient x activation map for class ``target``."""
    x = cached.model_input(image, name).to(device)
    model = cached.get_model(name, device, weights)
    means = model_branch_means(name, device, weights) if centred else None
    d = decompose(model, x, targets=target, blocks=[block], means=means).blocks[block]
    return DecompositionResult(parts=d.branches[0].numpy(), bias=d.bias[0].numpy(), residual=d.residual[0].numpy(),
                               total_gradient=d.total_gradient[0].numpy(), sum_error=d.sum_error,
                               centred=d.centred)
