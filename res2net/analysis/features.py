"""Feature maps at taps (one truncated forward) and per-branch statistics for the per-scale views."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn

from res2net.models.taps import TapCapture, check_images, eval_mode, resolve_taps

__all__ = ["capture_features", "branch_stats"]


def capture_features(model: nn.Module, images: Tensor, taps: str | Iterable[str]) -> dict[str, Tensor]:
    """Activations (N, C, h, w) at each tap, detached float32 on the CPU, from one forward that stops at the last tap.

    The model runs in eval mode for the call (its previous mode is restored); nothing is recorded for autograd.
    """
    names = resolve_taps(model, taps)
    x = check_images(model, images)
    with eval_mode(model), torch.no_grad(), TapCapture(model, names, stop_at_last=True) as cap:
        cap.run(x)
    missing = [n for n in names if n not in cap.activations]
    if missing:
        raise RuntimeError(f"the forward did not reach tap(s) {', '.join(missing)}")
    return {n: cap.activations[n].detach().float().cpu() for n in names}


def branch_stats(
    activations: Mapping[str, Tensor], top_k: int = 8, near_zero: float = 0.01
) -> dict[str, dict]:
    """Per tap: energy (mean squared activation), its share of the summed energy of all taps given, sparsity
    (fraction with |a| <= ``near_zero`` x the tap's max |a|), exact-zero fraction, and the ``top_k`` channels by
    energy (indices and values). Plain Python numbers, so results can be cached and serialised.
    """
    if not isinstance(activations, Mapping) or not activations:
        raise ValueError("activations must be a non-empty dict of tap name -> (N, C, h, w) tensor")
    if top_k < 1 or not 0 <= near_zero < 1:
        raise ValueError(f"need top_k >= 1 and 0 <= near_zero < 1, got top_k={top_k}, near_zero={near_zero}")
    totals = {}
    for name, a in activations.items():
        if not isinstance(a, Tensor) or a.ndim != 4 or a.numel() == 0:
            got = tuple(a.shape) if isinstance(a, Tensor) else type(a).__name__
            raise ValueError(f"activation {name!r} must be a non-empty (N, C, h, w) tensor, got {got}")
        totals[name] = float(a.detach().double().pow(2).sum())
    grand = sum(totals.values())
    out: dict[str, dict] = {}
    for name, a in activations.items():
        a = a.detach().double()
        mag = a.abs()
        channel_energy = a.pow(2).mean((0, 2, 3))
        k = min(top_k, channel_energy.numel())
        top = torch.topk(channel_energy, k)
        peak = float(mag.max())
        out[name] = {
            "energy": float(a.pow(2).mean()),
            "energy_share": totals[name] / grand if grand > 0 else 0.0,
            "mean": float(a.mean()),
            "sparsity": float((mag <= near_zero * peak).double().mean()),
            "zero_fraction": float((a == 0).double().mean()),
            "channels": int(a.shape[1]),
            "top_channels": [int(i) for i in top.indices],
            "top_energies": [float(v) for v in top.values],
            "channel_energy": [float(v) for v in channel_energy],
        }
    return out
