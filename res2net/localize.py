"""Localisation of CAMs against ground-truth boxes, object-size buckets, bootstrap intervals and verdicts.

Maps are (H, W) at image resolution (or (N, H, W) with one box per map); boxes are ``(x0, y0, x1, y1)``
in pixels with exclusive ends. Every score has a chance level: a uniform map's energy in the box is
``box_fraction(box, size)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

__all__ = [
    "energy_in_box", "pointing_game", "cam_box_iou", "box_iou", "box_fraction", "size_bucket", "SIZE_BUCKETS",
    "SMALL_BELOW", "LARGE_FROM", "CI", "bootstrap_ci", "paired_diff_ci", "verdict", "VERDICTS",
]

SMALL_BELOW = 0.25  # box area / image area below this: "small"
LARGE_FROM = 0.60  # at or above this: "large"; in between: "medium"
SIZE_BUCKETS = ("small", "medium", "large")
VERDICTS = ("supported", "not supported", "inconclusive at this sample size")
POINTING_TOLERANCE = 15 / 224  # Zhang et al.'s 15 px at 224 px, as a fraction of the image's longer side

Box = Sequence[float]


def _map(cam: object) -> np.ndarray:
    m = cam.detach().cpu().double().numpy() if isinstance(cam, torch.Tensor) else np.asarray(cam, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"a map must have shape (H, W), got {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("the map contains NaN or infinite values")
    return m


def _box(box: Box, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    vals = [float(v) for v in np.asarray(box, dtype=np.float64).reshape(-1)]
    if len(vals) != 4:
        raise ValueError(f"a box is (x0, y0, x1, y1), got {box!r}")
    if any(v != int(v) for v in vals):
        raise ValueError(f"box coordinates must be whole pixels, got {box!r}")
    x0, y0, x1, y1 = (int(v) for v in vals)
    h, w = shape
    if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
        raise ValueError(f"box {box!r} is empty or outside the {w}x{h} image (x1, y1 are exclusive ends)")
    return x0, y0, x1, y1


def _hw(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = (int(s) for s in size)
    if h < 1 or w < 1:
        raise ValueError(f"image size must be positive, got {size!r}")
    return h, w


def _batched(fn):  # noqa: ANN001, ANN202
    """Let a per-map metric take (N, H, W) maps with (N, 4) boxes and return an array."""

    def wrapper(cam, box, *args, **kwargs):  # noqa: ANN001, ANN202
        arr = cam.detach().cpu() if isinstance(cam, torch.Tensor) else np.asarray(cam)
        if arr.ndim == 3:
            boxes = np.asarray(box)
            if boxes.shape != (arr.shape[0], 4):
                raise ValueError(f"{arr.shape[0]} maps need boxes of shape ({arr.shape[0]}, 4), got {boxes.shape}")
            return np.array([fn(arr[i], boxes[i], *args, **kwargs) for i in range(arr.shape[0])])
        return fn(cam, box, *args, **kwargs)

    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


@_batched
def energy_in_box(cam: object, box: Box) -> float:
    """Energy pointing game: share of the (non-negative) map's total inside the box; NaN for an all-zero map."""
    m = _map(cam)
    if (m < 0).any():
        raise ValueError("energy_in_box needs a non-negative map (a CAM after its ReLU)")
    x0, y0, x1, y1 = _box(box, m.shape)
    total = m.sum()
    return float(m[y0:y1, x0:x1].sum() / total) if total > 0 else math.nan


@_batched
def pointing_game(cam: object, box: Box, tolerance: float = POINTING_TOLERANCE) -> bool:
    """Hit if the map's peak lies within ``tolerance`` x (longer image side) pixels of the box; a flat map misses."""
    m = _map(cam)
    x0, y0, x1, y1 = _box(box, m.shape)
    if m.max() <= m.min():
        return False
    py, px = np.unravel_index(int(np.argmax(m)), m.shape)
    dx = max(x0 - px, 0, px - (x1 - 1))
    dy = max(y0 - py, 0, py - (y1 - 1))
    return bool(math.hypot(dx, dy) <= tolerance * max(m.shape))


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a boolean mask (ties: the one met first in raster order)."""
    h, w = mask.shape
    labels = np.where(mask, np.arange(1, h * w + 1).reshape(h, w), 0)
    while True:
        p = np.pad(labels, 1)
        neigh = np.max([p[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)
        new = np.where(mask, neigh, 0)
        if np.array_equal(new, labels):
            break
        labels = new
    ids, counts = np.unique(labels[mask], return_counts=True)
    best = counts.max()
    first = min((np.flatnonzero(labels.ravel() == i)[0], i) for i, c in zip(ids, counts, strict=True) if c == best)
    return labels == first[1]


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes with exclusive ends."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


@_batched
def cam_box_iou(cam: object, box: Box, threshold: float = 0.5, region: str = "component") -> float:
    """IoU of the box around the pixels >= threshold x max (``region``: largest component, or ``all``) with ``box``."""
    if region not in ("component", "all"):
        raise ValueError(f"region must be 'component' or 'all', got {region!r}")
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold is a fraction of the map's max in (0, 1], got {threshold}")
    m = _map(cam)
    gt = _box(box, m.shape)
    if m.max() <= 0:
        return 0.0
    mask = m >= threshold * m.max()
    if region == "component":
        mask = _largest_component(mask)
    ys, xs = np.nonzero(mask)
    return box_iou((xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), gt)


def box_fraction(box: Box, size: int | Sequence[int]) -> float:
    """Box area / image area: the chance level of the energy pointing game (a uniform map's share)."""
    h, w = _hw(size)
    x0, y0, x1, y1 = _box(box, (h, w))
    return (x1 - x0) * (y1 - y0) / (h * w)


def size_bucket(box: Box, size: int | Sequence[int]) -> str:
    """'small' (< 25% of the image), 'medium', or 'large' (>= 60%), by box area / image area."""
    f = box_fraction(box, size)
    return "small" if f < SMALL_BELOW else "large" if f >= LARGE_FROM else "medium"


class CI(NamedTuple):
    """A point estimate with its bootstrap interval."""

    estimate: float
    low: float
    high: float


def bootstrap_ci(values: Sequence[float] | np.ndarray, n: int = 1000, seed: int = 0, ci: float = 0.95) -> CI:
    """Mean of ``values`` with a percentile-bootstrap interval over ``n`` resamples (items resampled)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    if not np.isfinite(v).all():
        raise ValueError(f"{int((~np.isfinite(v)).sum())} of {v.size} values are NaN or infinite; drop them first")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, v.size, size=(n, v.size))].mean(1)
    alpha = (1 - ci) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return CI(float(v.mean()), float(lo), float(hi))


def paired_diff_ci(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, n: int = 1000, seed: int = 0, ci: float = 0.95
) -> CI:
    """Bootstrap interval of mean(a - b) over paired items (the same images scored by two models)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values must have the same shape, got {a.shape} and {b.shape}")
    return bootstrap_ci(a - b, n=n, seed=seed, ci=ci)


def verdict(diff_ci: CI | Sequence[float], min_effect: float = 0.0) -> str:
    """From an interval of (claimed-better minus baseline): 'supported' if it lies above 0, 'not supported'
    if it lies below 0 (or below ``min_effect``, an effect too small to matter), else inconclusive."""
    vals = tuple(diff_ci)
    if len(vals) not in (2, 3):
        raise ValueError(f"diff_ci is (low, high) or (estimate, low, high), got {diff_ci!r}")
    low, high = vals[-2], vals[-1]
    if low > high:
        raise ValueError(f"interval low {low} is above high {high}")
    if low > 0 and low >= min_effect:
        return VERDICTS[0]
    if high < 0 or (min_effect > 0 and high < min_effect):
        return VERDICTS[1]
    return VERDICTS[2]
