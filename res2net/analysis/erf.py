"""Effective receptive fields (Luo et al., NeurIPS 2016) of taps: maps and their metrics.

ERF of a tap: ``g = d(sum_c T[:, c, h//2, w//2]) / d input``, per-pixel contribution ``sum_RGB |g|`` (or the
positive part, as RepLKNet), summed over a batch of images or Gaussian-noise inputs and normalised to sum 1.
The forward stops at the deepest requested tap; every tap's backward starts at that tap. Theoretical receptive
fields (where a unit is centred, how far it can see) are geometry: ``res2net.geometry.receptive_field``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from numbers import Integral

import numpy as np
import torch
from torch import Tensor, nn

from res2net.geometry.receptive_field import tap_rf_info
from res2net.models.taps import TapCapture, check_images, eval_mode, model_device, resolve_taps
from res2net.models.zoo import spec_of

__all__ = [
    "ERF", "compute_erf", "erf_map", "erf_metrics", "radial_profile", "area_ratio", "mass_radius",
    "gaussian_sigma", "MASS_LEVELS", "AREA_LEVELS",
    "area_ratio_scale_free", "touches_border", "radius_samples",
]

MASS_LEVELS = (0.5, 0.9, 0.99)
AREA_LEVELS = (0.2, 0.3, 0.5, 0.99)


# ------------------------------------------------------------------------------------------------ ERF maths
def erf_map(gradients: Tensor | np.ndarray, positive_only: bool = False) -> np.ndarray:
    """Per-pixel contribution summed over batch and channels of input gradients (N, C, H, W), normalised to sum 1.

    ``positive_only`` keeps the positive part (RepLKNet) instead of the magnitude (Luo et al.).
    """
    g = torch.as_tensor(gradients).double()
    if g.ndim != 4:
        raise ValueError(f"gradients must have shape (N, C, H, W), got {tuple(g.shape)}")
    c = (torch.relu(g) if positive_only else g.abs()).sum((0, 1)).cpu().numpy()
    total = c.sum()
    return c / total if total > 0 else c


def _distances(shape: tuple[int, int], centre: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    dy, dx = np.abs(yy - centre[0]), np.abs(xx - centre[1])
    return np.maximum(dy, dx), np.hypot(dy, dx)


def mass_radius(m: np.ndarray, centre: tuple[float, float], level: float, kind: str = "square",
                interpolate: bool = False) -> float:
    """Smallest radius whose centred square (Chebyshev) or disc (Euclidean) holds ``level`` of the map's mass.

    ``interpolate``: the radius where the mass curve, linear between the pixel distances (and from (0, 0) to the
    first), crosses ``level``: sub-pixel, so a difference smaller than a pixel is not rounded away."""
    cheb, eucl = _distances(m.shape, centre)
    d = (cheb if kind == "square" else eucl).ravel()
    order = np.argsort(d, kind="stable")
    cum = np.cumsum(m.ravel()[order])
    total = cum[-1]
    if total <= 0:
        return math.nan
    ds = d[order]
    # mass within radius r counts every pixel at distance <= r: look at the last pixel of each distance value
    last = np.r_[ds[1:] != ds[:-1], True]
    return float(_crossing(ds[last], cum[last][None], level, interpolate)[0])


def _crossing(radii: np.ndarray, cum: np.ndarray, level: float, interpolate: bool) -> np.ndarray:
    """Per row of ``cum`` (B, K: the mass within each of the K increasing ``radii``), the radius where it first
    reaches ``level`` of its total: the whole radius, or the crossing of the curve linear between radii."""
    total = cum[:, -1:]
    target = level * total
    k = (cum >= target * (1 - 1e-12)).argmax(1)
    out = radii[k].astype(np.float64)
    if interpolate:
        rows = np.arange(cum.shape[0])
        r0 = np.where(k > 0, radii[np.maximum(k - 1, 0)], 0.0)
        c0 = np.where(k > 0, cum[rows, np.maximum(k - 1, 0)], 0.0)
        c1 = cum[rows, k]
        step = np.where(c1 > c0, c1 - c0, 1.0)
        out = r0 + np.clip((target[:, 0] - c0) / step, 0.0, 1.0) * (out - r0)
    return np.where(total[:, 0] > 0, out, np.nan)


def radial_profile(m: np.ndarray, centre: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """(radius 0, 1, 2, …, px; fraction of mass within that Euclidean distance of the centre) for plots."""
    _, eucl = _distances(m.shape, centre)
    total = m.sum()
    radii = np.arange(int(math.ceil(eucl.max())) + 1, dtype=np.float64)
    ring = np.bincount(np.ceil(eucl.ravel() - 1e-9).astype(int), weights=m.ravel(), minlength=len(radii))
    cum = np.cumsum(ring)[: len(radii)]
    return radii, (cum / total if total > 0 else cum)


def area_ratio(raw: np.ndarray, centre: tuple[float, float], level: float) -> float:
    """RepLKNet's high-contribution area ratio of a mean contribution map (their analyze_erf.py).

    Scores are mapped to ``log10(s + 1)`` and scaled to max 1; the result is ``(2i)^2 / (H W)`` for the
    smallest i whose centred square of side 2i+1 holds more than ``level`` of the total (1.0 if none does).
    """
    h, w = raw.shape
    data = np.log10(np.asarray(raw, dtype=np.float64) + 1)
    if data.max() <= 0:
        return math.nan
    data = data / data.max()
    total = data.sum()
    cy, cx = int(round(centre[0])), int(round(centre[1]))
    for i in range(1, min(h, w) // 2):
        area = data[max(cy - i, 0):cy + i + 1, max(cx - i, 0):cx + i + 1].sum()
        if area / total > level:
            return (2 * i) ** 2 / (h * w)
    return 1.0


def area_ratio_scale_free(raw: np.ndarray, centre: tuple[float, float], level: float) -> float:
    """``area_ratio`` of the map divided by its max first: the same for any gradient scale, so it compares shapes
    across models (RepLKNet's published form, ``log10(s + 1)`` of the raw scores, also depends on their size)."""
    r = np.asarray(raw, dtype=np.float64)
    peak = r.max()
    return area_ratio(r / peak, centre, level) if peak > 0 else math.nan


def touches_border(m: np.ndarray, centre: tuple[float, float], level: float = 0.99) -> bool:
    """Whether the centred square holding ``level`` of the mass reaches the image border: the ERF is then cut by
    the input size and its radii are lower bounds."""
    r = mass_radius(m, centre, level, "square")
    if not math.isfinite(r):
        return False
    h, w = m.shape
    room = min(centre[0], h - 1 - centre[0], centre[1], w - 1 - centre[1])
    return bool(r >= room)


def radius_samples(per_input: np.ndarray, centre: tuple[float, float], level: float, resample_weights: np.ndarray,
                   kind: str = "square", interpolate: bool = False) -> np.ndarray:
    """``mass_radius`` of the weighted mean of per-input contribution maps (N, H, W) for each row of
    ``resample_weights`` (B, N): the bootstrap of an ERF radius over inputs. Pixels are summed per distance from the
    centre once, so each resample only accumulates one value per distinct radius."""
    x = np.asarray(per_input, dtype=np.float64)
    n, h, w = x.shape
    cheb, eucl = _distances((h, w), centre)
    d = (cheb if kind == "square" else eucl).ravel()
    order = np.argsort(d, kind="stable")
    ds = d[order]
    starts = np.r_[0, np.flatnonzero(ds[1:] != ds[:-1]) + 1]
    radii = ds[starts]
    rings = np.add.reduceat(x.reshape(n, -1)[:, order], starts, axis=1)  # (N, distinct distances)
    wts = np.atleast_2d(np.asarray(resample_weights, dtype=np.float64))
    return _crossing(radii, np.cumsum(wts @ rings, axis=1), level, interpolate)


def gaussian_sigma(m: np.ndarray) -> float:
    """Sigma of the isotropic Gaussian with the map's second moment about its centroid: sqrt(E|r - mu|^2 / 2)."""
    total = m.sum()
    if total <= 0:
        return math.nan
    p = m / total
    yy, xx = np.mgrid[0:m.shape[0], 0:m.shape[1]]
    my, mx = (p * yy).sum(), (p * xx).sum()
    return float(math.sqrt((p * ((yy - my) ** 2 + (xx - mx) ** 2)).sum() / 2))


def erf_metrics(m: np.ndarray, centre: tuple[float, float], raw: np.ndarray | None = None) -> dict[str, float]:
    """Radii holding 50/90/99% of the mass (square and radial), RepLKNet area ratios, Gaussian sigma."""
    out: dict[str, float] = {}
    for level in MASS_LEVELS:
        pct = int(round(level * 100))
        out[f"radius_{pct}_square"] = mass_radius(m, centre, level, "square")
        out[f"radius_{pct}_radial"] = mass_radius(m, centre, level, "radial")
    for level in AREA_LEVELS:
        out[f"area_ratio_{int(round(level * 100))}"] = area_ratio(m if raw is None else raw, centre, level)
        out[f"area_ratio_{int(round(level * 100))}_scale_free"] = area_ratio_scale_free(m, centre, level)
    out["gaussian_sigma"] = gaussian_sigma(m)
    out["touches_border"] = float(touches_border(m, centre))
    return out


@dataclass
class ERF:
    """The ERF of one tap: ``map`` (H, W) float64 summing to 1 (all zero if no input reaches the unit)."""

    map: np.ndarray
    tap: str
    num_inputs: int
    metrics: dict[str, float]
    centre: tuple[float, float]
    positive_only: bool = False
    source: str = "images"  # or "gaussian noise"
    mean_contribution: np.ndarray | None = field(default=None, repr=False)  # per-input mean before normalising
    per_input: np.ndarray | None = field(default=None, repr=False)  # (N, H, W) contributions, with keep_inputs

    def radial_profile(self) -> tuple[np.ndarray, np.ndarray]:
        """(radius in px, fraction of the mass within it) around the unit's centre."""
        return radial_profile(self.map, self.centre)


# ------------------------------------------------------------------------------------------------ compute_erf
def _noise_size(model: nn.Module, size: int | Sequence[int] | None) -> tuple[int, int]:
    if size is None:
        spec = spec_of(model)
        if spec is None:
            raise ValueError("pass size= for noise inputs: the model does not record its input size "
                             "(models from res2net.create_model do)")
        size = spec.input_size
    hw = (int(size), int(size)) if isinstance(size, Integral) else tuple(int(s) for s in size)
    if len(hw) != 2 or min(hw) < 1:
        raise ValueError(f"size must be an int or (height, width) of positive ints, got {size}")
    return hw  # type: ignore[return-value]


def _batches(
    model: nn.Module, inputs: Tensor | int, batch_size: int, size: int | Sequence[int] | None, seed: int
) -> tuple[Iterable[Tensor], int, tuple[int, int], str]:
    if isinstance(inputs, bool) or not isinstance(inputs, (Integral, Tensor)):
        raise TypeError(f"inputs must be an image batch (N, 3, H, W) or a number of noise inputs, got {type(inputs)}")
    if isinstance(inputs, Integral):
        n = int(inputs)
        if n < 1:
            raise ValueError(f"the number of noise inputs must be >= 1, got {n}")
        hw = _noise_size(model, size)
        p = next(model.parameters(), None)
        dtype = p.dtype if p is not None else torch.float32

        def noise() -> Iterable[Tensor]:
            g = torch.Generator().manual_seed(seed)
            for i in range(0, n, batch_size):
                x = torch.randn(min(batch_size, n - i), 3, *hw, generator=g)
                yield x.to(device=model_device(model), dtype=dtype)

        return noise(), n, hw, "gaussian noise"
    x = check_images(model, inputs)
    return x.split(batch_size), x.shape[0], tuple(x.shape[-2:]), "images"  # type: ignore[return-value]


def compute_erf(
    model: nn.Module,
    inputs: Tensor | int,
    taps: str | Iterable[str],
    *,
    positive_only: bool = False,
    batch_size: int = 16,
    size: int | Sequence[int] | None = None,
    seed: int = 0,
    keep_inputs: bool = False,
) -> dict[str, ERF]:
    """ERF of the central unit of each tap over an image batch, or over ``inputs`` Gaussian-noise images.

    Noise inputs have side ``size`` (default: the model's ``input_size``) and come from ``seed``. One forward
    per batch of ``batch_size`` stops at the deepest tap; each tap adds one backward from its centre unit.
    ``keep_inputs`` also keeps each input's contribution map (``ERF.per_input``, float32) for bootstrap intervals.
    """
    names = resolve_taps(model, taps)
    if not isinstance(batch_size, Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    batches, n, hw, source = _batches(model, inputs, int(batch_size), size, seed)
    acc = {t: torch.zeros(hw, dtype=torch.float64) for t in names}
    kept: dict[str, list[Tensor]] = {t: [] for t in names}
    centres: dict[str, tuple[float, float]] = {}
    with eval_mode(model), torch.enable_grad():
        for x in batches:
            x = x.detach().requires_grad_(True)
            with TapCapture(model, names, stop_at_last=True) as cap:
                cap.run(x)
            for k, t in enumerate(names):
                a = cap.activations[t]
                h, w = a.shape[-2:]
                unit = a[:, :, h // 2, w // 2]
                score = (torch.relu(unit) if positive_only else unit).sum()
                (g,) = torch.autograd.grad(score, x, retain_graph=k < len(names) - 1, allow_unused=True)
                if g is not None:
                    c = torch.relu(g) if positive_only else g.abs()
                    acc[t] += c.sum((0, 1)).double().cpu()
                    if keep_inputs:
                        kept[t].append(c.sum(1).float().cpu())
                elif keep_inputs:
                    kept[t].append(torch.zeros(x.shape[0], *hw))
                centres.setdefault(t, _centre(model, t, (h, w), hw))
            del cap
    out = {}
    for t in names:
        raw = (acc[t] / n).numpy()
        total = raw.sum()
        m = raw / total if total > 0 else raw.copy()
        out[t] = ERF(map=m, tap=t, num_inputs=n, metrics=erf_metrics(m, centres[t], raw), centre=centres[t],
                     positive_only=positive_only, source=source, mean_contribution=raw,
                     per_input=torch.cat(kept[t]).numpy() if keep_inputs else None)
    return out


def _centre(model: nn.Module, tap: str, grid: tuple[int, int], hw: tuple[int, int]) -> tuple[float, float]:
    """Input coordinates of the centre of the tap's unit (h//2, w//2); the grid's proportional point as fallback."""
    i, j = grid[0] // 2, grid[1] // 2
    try:
        return tap_rf_info(model, tap).centre(i, j)
    except NotImplementedError:
        return (i + 0.5) * hw[0] / grid[0] - 0.5, (j + 0.5) * hw[1] / grid[1] - 0.5
