"""How alike two saliency maps are: Spearman rank correlation and SSIM, the two scores Adebayo et al. (NeurIPS 2018,
"Sanity checks for saliency maps") report between a trained model's map and its randomised model's map."""

from __future__ import annotations

import numpy as np

SSIM_K1, SSIM_K2 = 0.01, 0.03  # Wang et al. (2004)
SSIM_WINDOW = 7  # side of the uniform window (scikit-image's default); smaller maps use their own shorter side


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank."""
    v = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(v, kind="mergesort")
    ranks = np.empty(v.size, dtype=np.float64)
    ranks[order] = np.arange(1, v.size + 1)
    _, inverse = np.unique(v, return_inverse=True)
    return (np.bincount(inverse, weights=ranks) / np.bincount(inverse))[inverse]


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two same-shaped maps (ties share their average rank); NaN when either map is
    constant (no ranking to compare)."""
    x, y = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"maps of different sizes: {np.shape(a)} and {np.shape(b)}")
    rx, ry = _ranks(x) - (x.size + 1) / 2, _ranks(y) - (y.size + 1) / 2
    den = float(np.sqrt(np.sum(rx * rx) * np.sum(ry * ry)))
    return float(np.sum(rx * ry) / den) if den > 0 else float("nan")


def _window_means(a: np.ndarray, k: int) -> np.ndarray:
    """Mean of every k×k window that fits inside ``a`` (valid positions only)."""
    c = np.pad(np.cumsum(np.cumsum(a, axis=0), axis=1), ((1, 0), (1, 0)))
    return (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / (k * k)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0, window: int = SSIM_WINDOW) -> float:
    """Mean structural similarity (Wang et al. 2004) of two same-shaped 2-D maps over every ``window``-sided uniform
    window that fits (the window shrinks to the map's shorter side), with sample (co)variances (n − 1)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f"need two 2-D maps of one shape, got {x.shape} and {y.shape}")
    k = int(min(window, *x.shape))
    if k < 2:
        raise ValueError(f"a {x.shape} map has no window of at least 2×2")
    n = k * k
    mx, my = _window_means(x, k), _window_means(y, k)
    cov = n / (n - 1)
    vx = (_window_means(x * x, k) - mx * mx) * cov
    vy = (_window_means(y * y, k) - my * my) * cov
    vxy = (_window_means(x * y, k) - mx * my) * cov
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


def unit_range(m: np.ndarray) -> np.ndarray:
    """A map scaled to [0, 1] by its own minimum and maximum (all zeros when flat): maps of two models are in
    different units, so SSIM compares their shapes on one range."""
    v = np.asarray(m, dtype=np.float64)
    lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
    return (v - lo) / (hi - lo) if hi > lo else np.zeros_like(v)
