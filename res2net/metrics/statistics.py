"""Statistics the verdicts rest on: bootstrap intervals (plain, paired, hierarchical over runs, classes and
images), the four-way verdict against a minimum effect, and Holm's step-down correction over a family of claims.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

__all__ = ["CI", "bootstrap_ci", "paired_diff_ci", "hierarchical_bootstrap", "bootstrap_weights", "weighted_means",
           "percentile_ci", "verdict", "VERDICTS", "holm_verdicts"]

VERDICTS = ("supported", "contradicted", "no meaningful difference", "inconclusive")


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


def percentile_ci(samples: np.ndarray, estimate: float, ci: float = 0.95) -> CI:
    """``estimate`` with the percentile interval of bootstrap ``samples`` at level ``ci``."""
    v = np.asarray(samples, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return CI(float(estimate), math.nan, math.nan)
    alpha = (1 - ci) / 2
    lo, hi = np.quantile(v, [alpha, 1 - alpha])
    return CI(float(estimate), float(lo), float(hi))


def bootstrap_weights(n_runs: int, clusters: Sequence[object] | np.ndarray, n: int = 2000, seed: int = 0
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Resampling weights of a hierarchical bootstrap: runs, then clusters (classes), then images in each cluster.

    Returns (run weights (n, runs), image weights (n, images)): how often each run and each image is drawn in
    each resample; a cluster drawn k times contributes k x its size draws from its own images.
    """
    cl = np.asarray(clusters)
    m = cl.shape[0]
    rng = np.random.default_rng(seed)
    run_w = rng.multinomial(n_runs, np.full(n_runs, 1.0 / n_runs), size=n).astype(np.float64)
    labels, inverse = np.unique(cl, return_inverse=True)
    if m == 0:  # an empty bucket: nothing to draw, so every resample's mean is NaN and there is no interval
        return run_w, np.zeros((n, 0))
    cls_n = rng.multinomial(len(labels), np.full(len(labels), 1.0 / len(labels)), size=n)
    img_w = np.zeros((n, m))
    for c in range(len(labels)):
        idx = np.flatnonzero(inverse == c)
        img_w[:, idx] = rng.multinomial(cls_n[:, c] * idx.size, np.full(idx.size, 1.0 / idx.size))
    return run_w, img_w


def weighted_means(arrays: Sequence[np.ndarray], run_w: np.ndarray, img_w: np.ndarray,
                   mask: np.ndarray | None = None) -> list[np.ndarray]:
    """Mean of each (runs, images[, k]) array under each resample's weights, over the entries ``mask`` keeps and
    that are finite in every array: (B,) or (B, k) each; NaN where a resample keeps nothing."""
    xs = [np.asarray(a, dtype=np.float64) for a in arrays]
    r, m = xs[0].shape[:2]
    for a in xs:
        if a.shape[:2] != (r, m):
            raise ValueError(f"arrays must share (runs, images) = {(r, m)}, got {a.shape[:2]}")
    keep = np.ones((r, m), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if keep.shape != (r, m):
        raise ValueError(f"mask must be (runs, images) = {(r, m)}, got {keep.shape}")
    for a in xs:
        keep = keep & np.isfinite(a).all(axis=tuple(range(2, a.ndim)))  # (no reshape: m may be 0)
    den = np.zeros(run_w.shape[0])
    nums = [np.zeros((run_w.shape[0], int(np.prod(a.shape[2:], dtype=int)))) for a in xs]
    for k in range(r):
        wk = img_w * keep[k][None, :]  # (B, M)
        den += run_w[:, k] * wk.sum(1)
        for num, a in zip(nums, xs, strict=True):
            num += run_w[:, k][:, None] * (wk @ np.where(keep[k][:, None], a[k].reshape(m, num.shape[1]), 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = [num / den[:, None] for num in nums]
    return [o[:, 0] if a.ndim == 2 else o for o, a in zip(out, xs, strict=True)]


def hierarchical_bootstrap(
    arrays: Sequence[np.ndarray],
    clusters: Sequence[object] | np.ndarray,
    statistic: Callable[[list[np.ndarray]], np.ndarray] | None = None,
    mask: np.ndarray | None = None,
    n: int = 2000,
    seed: int = 0,
) -> tuple[float, np.ndarray]:
    """Point estimate and bootstrap samples of ``statistic`` over (runs, images[, k]) arrays: resample runs, then
    clusters (classes), then images within each drawn cluster.

    All arrays share the same runs and images (paired: run r of every array is the same seed, image i the same
    photo). ``statistic`` maps the list of weighted means, each (B,) or (B, k), to (B,); the default is the
    difference of two means, or the mean of one array. ``mask`` (runs, images) drops entries (e.g. images a run
    misclassifies); a resample with no kept entry gives NaN. Run-to-run variation enters through the first level.
    """
    xs = [np.asarray(a, dtype=np.float64) for a in arrays]
    if not xs:
        raise ValueError("hierarchical_bootstrap needs at least one array")
    r, m = xs[0].shape[:2]
    cl = np.asarray(clusters)
    if cl.shape != (m,):
        raise ValueError(f"clusters must give one label per image ({m}), got shape {cl.shape}")
    if statistic is None:
        if len(xs) > 2:
            raise ValueError("pass a statistic for more than two arrays")
        statistic = (lambda ms: ms[0] - ms[1]) if len(xs) == 2 else (lambda ms: ms[0])
    est = float(np.asarray(statistic(weighted_means(xs, np.ones((1, r)), np.ones((1, m)), mask)))[0])
    run_w, img_w = bootstrap_weights(r, cl, n, seed)
    samples = np.asarray(statistic(weighted_means(xs, run_w, img_w, mask)), dtype=np.float64)
    return est, samples


def verdict(diff_ci: CI | Sequence[float], min_effect: float) -> str:
    """Where the interval of (claimed-better minus baseline) lies against the minimum meaningful effect d > 0.

    Above +d: "supported"; below -d: "contradicted"; inside [-d, +d]: "no meaningful difference"; otherwise
    (it straddles +d or -d) "inconclusive".
    """
    vals = tuple(diff_ci)
    if len(vals) not in (2, 3):
        raise ValueError(f"diff_ci is (low, high) or (estimate, low, high), got {diff_ci!r}")
    low, high = float(vals[-2]), float(vals[-1])
    if not (math.isfinite(low) and math.isfinite(high)):
        return VERDICTS[3]
    if low > high:
        raise ValueError(f"interval low {low} is above high {high}")
    if not min_effect > 0:
        raise ValueError(f"min_effect must be positive (a stated minimum meaningful effect), got {min_effect}")
    if low > min_effect:
        return VERDICTS[0]
    if high < -min_effect:
        return VERDICTS[1]
    if low >= -min_effect and high <= min_effect:
        return VERDICTS[2]
    return VERDICTS[3]


def _decision_p(samples: np.ndarray, d: float) -> float:
    """Bootstrap p-value of the best-supported decision: above +d, below -d, or inside +-d (two one-sided tests)."""
    v = samples[np.isfinite(samples)]
    if v.size == 0:
        return 1.0
    p_above = float((v <= d).mean())
    p_below = float((v >= -d).mean())
    p_inside = max(float((v >= d).mean()), float((v <= -d).mean()))
    return min(p_above, p_below, p_inside)


def holm_verdicts(claims: Sequence[tuple[float, np.ndarray, float]], alpha: float = 0.025) -> list[dict]:
    """Verdicts for a family of claims, each (estimate, bootstrap samples, minimum effect), with Holm's correction.

    ``alpha`` is one-sided per direction, so a single claim is judged on its 95% interval. Claims are ranked by
    the bootstrap p-value of their best-supported decision; the k-th (from 0) of m is judged on its two-sided
    interval at level 1 - 2 alpha / (m - k), Holm's step-down, and once one claim stays inconclusive every later
    one does too. Returns, per claim in input order: verdict, the interval used
    (low, high, level) and the unadjusted 95% interval.
    """
    m = len(claims)
    ps = [_decision_p(np.asarray(c[1], dtype=np.float64), c[2]) for c in claims]
    order = sorted(range(m), key=lambda i: (ps[i], i))
    out: list[dict] = [{} for _ in range(m)]
    stopped = False
    for k, i in enumerate(order):
        est, samples, d = claims[i]
        level = 1 - 2 * alpha / (m - k)
        adj = percentile_ci(samples, est, level)
        raw = percentile_ci(samples, est, 0.95)
        v = verdict(adj, d)
        if stopped or v == VERDICTS[3]:
            stopped = True
            v = VERDICTS[3]
        out[i] = {"verdict": v, "p": ps[i], "rank": k, "level": level, "low": adj.low, "high": adj.high,
                  "low95": raw.low, "high95": raw.high, "estimate": est, "min_effect": d}
    return out
