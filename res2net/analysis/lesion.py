"""Branch knock-out: remove chosen branches of chosen blocks for the calling thread's forwards.

``zero`` makes a branch contribute nothing; ``mean`` replaces it by its per-channel mean activation over training
images (``branch_means``), so the fusion conv's BN sees inputs in range. In a normal (hierarchical) block branch i
also feeds branch i+1: the ``total`` effect replaces the branch everywhere (its fusion input and what the later
branches receive); the ``direct`` effect replaces only its slice of the 1x1 fusion conv's input, so the later
branches still see it. Stage blocks, the last branch and a ResNet's single 3x3 have no such path: there both agree.

Hooks only change forwards run by the thread that entered the context and are removed on exit, also when the body
raises; parameters and buffers are never written, so the state dict is untouched.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from res2net.models.blocks import Bottle2neck, TappedBlock
from res2net.models.taps import TapCapture, check_images, eval_mode, iter_blocks

__all__ = ["MODES", "EFFECTS", "AblationError", "ablate", "ablate_channels", "branch_means", "resolve_knockout"]

MODES = ("zero", "mean")
EFFECTS = ("total", "direct")


class AblationError(ValueError):
    """A knock-out request the model cannot carry out; the message says what is valid."""


def resolve_knockout(model: nn.Module, branches: Mapping[str, int | Iterable[int]]) -> dict[str, list[int]]:
    """Validate ``{block name: branch indices}`` against ``model``; returns sorted, de-duplicated indices per block."""
    if not isinstance(branches, Mapping) or not branches:
        raise AblationError("branches must be a non-empty dict {block name: [branch indices]}, e.g. {'layer3.1': [0]}")
    blocks = dict(iter_blocks(model))
    out: dict[str, list[int]] = {}
    for name, idx in branches.items():
        if name not in blocks:
            shown = ", ".join(list(blocks)[:12]) + (f", ... ({len(blocks)} in all)" if len(blocks) > 12 else "")
            raise AblationError(f"unknown block {name!r}; blocks of this model: {shown}")
        n = blocks[name].num_branches
        raw = [idx] if isinstance(idx, int) else list(idx)
        if not raw:
            raise AblationError(f"no branch given for block {name!r}; its branches are 0..{n - 1}")
        for i in raw:
            if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n:
                raise AblationError(f"block {name!r} has branches 0..{n - 1} (0 = smallest receptive field, "
                                    f"{n - 1} = identity/pool); got {i!r}")
        out[name] = sorted(set(raw))
    return out


def _slices(block: TappedBlock) -> list[slice]:
    """Channel slice of each branch in the fusion conv's input."""
    w = block.width
    return [slice(i * w, (i + 1) * w) for i in range(block.num_branches)]


def _replacement(like: Tensor, mean: Tensor | None) -> Tensor:
    if mean is None:
        return torch.zeros_like(like)
    return mean.to(device=like.device, dtype=like.dtype).view(1, -1, 1, 1).expand_as(like).clone()


def _check_means(model: nn.Module, plan: dict[str, list[int]], means: Mapping[str, Tensor] | None
                 ) -> dict[str, Tensor]:
    if means is None:
        raise AblationError("mode='mean' needs means={branch tap: per-channel mean}: compute them once with "
                            "res2net.branch_means(model, train_images)")
    blocks = dict(iter_blocks(model))
    out = {}
    for name, idx in plan.items():
        for i in idx:
            tap = f"{name}.branch{i}"
            if tap not in means:
                raise AblationError(f"means lacks branch tap {tap!r}; compute it with branch_means(model, images)")
            m = torch.as_tensor(means[tap]).reshape(-1)
            if m.numel() != blocks[name].width:
                raise AblationError(f"means[{tap!r}] has {m.numel()} channels; the branch has {blocks[name].width}")
            if not bool(torch.isfinite(m).all()):
                raise AblationError(f"means[{tap!r}] contains NaN or infinite values")
            out[tap] = m
    return out


@contextmanager
def ablate(model: nn.Module, branches: Mapping[str, int | Iterable[int]], mode: str = "zero",
           effect: str = "total", means: Mapping[str, Tensor] | None = None) -> Iterator[nn.Module]:
    """Knock out ``branches`` ({block: [branch indices]}) for forwards of the calling thread; yields the model.

    ``mode``: 'zero' or 'mean' (needs ``means`` from ``branch_means``). ``effect``: 'total' (the branch is replaced
    everywhere, so later branches of a normal block receive the replacement too) or 'direct' (only its input to the
    1x1 fusion conv). The model runs in eval mode inside the context (BN statistics fixed: a lesion in train mode
    would be renormalised away). On exit every hook is removed, normally or by an exception.
    """
    if mode not in MODES:
        raise AblationError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if effect not in EFFECTS:
        raise AblationError(f"effect must be one of {', '.join(EFFECTS)}, got {effect!r}")
    plan = resolve_knockout(model, branches)
    mean_of = _check_means(model, plan, means) if mode == "mean" else {}
    blocks = dict(iter_blocks(model))
    owner = threading.get_ident()
    handles: list[torch.utils.hooks.RemovableHandle] = []

    def tap_hook(tap: str):  # noqa: ANN202
        def hook(module: nn.Module, inputs: tuple, output: Tensor) -> Tensor | None:
            if threading.get_ident() != owner:
                return None
            return _replacement(output, mean_of.get(tap))

        return hook

    def fusion_hook(name: str, idx: list[int]):  # noqa: ANN202
        slices = _slices(blocks[name])

        def hook(module: nn.Module, inputs: tuple) -> tuple | None:
            if threading.get_ident() != owner:
                return None
            x = inputs[0].clone()
            for i in idx:
                x[:, slices[i]] = _replacement(x[:, slices[i]], mean_of.get(f"{name}.branch{i}"))
            return (x, *inputs[1:])

        return hook

    with eval_mode(model):
        try:
            for name, idx in plan.items():
                block = blocks[name]
                if effect == "direct" and isinstance(block, Bottle2neck) and block.stype == "normal":
                    handles.append(block.conv3.register_forward_pre_hook(fusion_hook(name, idx)))
                else:  # no later branch reads it: replacing the tap output is the direct effect too
                    for i in idx:
                        tap = f"{name}.branch{i}"
                        handles.append(block.branch_tap(i).register_forward_hook(tap_hook(tap)))
            yield model
        finally:
            for h in handles:
                h.remove()


@contextmanager
def ablate_channels(model: nn.Module, block: str, channels: Iterable[int], means: Mapping[str, Tensor]
                    ) -> Iterator[nn.Module]:
    """Replace ``channels`` of ``block``'s 1x1 fusion-conv input by their means over training images (the block's
    branch means, concatenated in branch order) for the calling thread's forwards: a lesion of any channel group,
    e.g. a random group the size of one branch, the knock-out's control. Eval mode; hooks removed on exit."""
    blocks = dict(iter_blocks(model))
    if block not in blocks:
        raise AblationError(f"unknown block {block!r}; blocks of this model: {', '.join(blocks)}")
    b = blocks[block]
    n = b.conv3.in_channels
    idx = sorted(set(channels))
    if not idx or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < n for i in idx):
        raise AblationError(f"channels must be a non-empty set of indices in 0..{n - 1} (the fusion conv's input of "
                            f"{block!r}); got {list(channels)!r}")
    plan = {block: list(range(b.num_branches))}
    full = torch.cat([_check_means(model, plan, means)[f"{block}.branch{i}"] for i in range(b.num_branches)])
    if full.numel() != n:
        raise AblationError(f"the branch means of {block!r} hold {full.numel()} channels; its fusion conv reads {n}")
    owner = threading.get_ident()
    where = torch.tensor(idx)

    def hook(module: nn.Module, inputs: tuple) -> tuple | None:
        if threading.get_ident() != owner:
            return None
        x = inputs[0].clone()
        x[:, where] = full[where].to(device=x.device, dtype=x.dtype).view(1, -1, 1, 1).expand(
            x.shape[0], -1, x.shape[2], x.shape[3])
        return (x, *inputs[1:])

    with eval_mode(model):
        handle = b.conv3.register_forward_pre_hook(hook)
        try:
            yield model
        finally:
            handle.remove()


@torch.no_grad()
def branch_means(model: nn.Module, images: Tensor, blocks: Iterable[str] | None = None, batch_size: int = 250
                 ) -> dict[str, Tensor]:
    """Per-channel mean of every branch tap's output over ``images`` (normalised, (N, C, H, W)) in eval mode.

    The reference activations of ``mode='mean'``: take them from training images, never from the images scored.
    Returns {branch tap: (C,) float64 tensor on the CPU}.
    """
    x = check_images(model, images)
    names = [n for n, _ in iter_blocks(model)] if blocks is None else list(blocks)
    known = dict(iter_blocks(model))
    for n in names:
        if n not in known:
            raise AblationError(f"unknown block {n!r}; blocks of this model: {', '.join(known)}")
    taps = [f"{n}.branch{i}" for n in names for i in range(known[n].num_branches)]
    sums: dict[str, Tensor] = {}
    count = 0
    with eval_mode(model):
        for s in range(0, x.shape[0], batch_size):
            xb = x[s:s + batch_size]
            with TapCapture(model, taps, stop_at_last=True) as cap:
                cap.run(xb)
            for t in taps:
                a = cap.activations[t].double()
                sums[t] = sums.get(t, 0) + a.sum((0, 2, 3)).cpu() / (a.shape[2] * a.shape[3])
            count += xb.shape[0]
    return {t: v / count for t, v in sums.items()}
