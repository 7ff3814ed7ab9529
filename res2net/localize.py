"""Localisation of CAMs against ground-truth boxes, object-size buckets, baselines, intervals and verdicts.

Maps are (H, W) at image resolution, placed by ``res2net.cam.register`` (or (N, H, W) with one box per map);
boxes are ``(x0, y0, x1, y1)`` in pixels with exclusive ends. Concentration metrics (energy in box, pointing
game) test "focused on small objects"; coverage metrics (share of the box above a threshold, MaxBoxAcc) test
"covers whole large objects". Every score has baselines that ignore the image: a uniform map (energy = the
box's area fraction) and a centred Gaussian prior (``centre_prior``), whose peak is "always the centre".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch

__all__ = [
    "energy_in_box", "pointing_game", "peak_location", "cam_box_iou", "box_iou", "box_fraction", "coverage",
    "iou_curve", "max_box_acc", "BOXACC_THRESHOLDS", "centre_prior", "fit_centre_prior_sigma", "size_bucket",
    "SIZE_BUCKETS", "SMALL_BELOW", "LARGE_FROM", "CI", "bootstrap_ci", "paired_diff_ci", "hierarchical_bootstrap",
    "bootstrap_weights", "weighted_means",
    "percentile_ci", "verdict", "VERDICTS", "holm_verdicts",
]

SMALL_BELOW = 0.25  # box area / image area below this: "small"
LARGE_FROM = 0.60  # at or above this: "large"; in between: "medium"
SIZE_BUCKETS = ("small", "medium", "large")
VERDICTS = ("supported", "contradicted", "no meaningful difference", "inconclusive")
COVERAGE_THRESHOLD = 0.5  # coverage: share of the box where the map is >= this fraction of its max
BOXACC_THRESHOLDS = np.round(np.arange(0.05, 1.0, 0.05), 2)  # CAM thresholds of MaxBoxAcc (min-max normalised)
BOXACC_IOU = 0.5  # Choe et al.: a box is correct at IoU >= 0.5
PLATEAU_RTOL = 1e-9  # values within this fraction of the map's range of its max count as the peak
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


def _maps_and_boxes(cam: object, box: Box | np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """(N, H, W) float64 maps and (N, 4) int boxes, validated, and whether the input was one map."""
    arr = cam.detach().cpu().double().numpy() if isinstance(cam, torch.Tensor) else np.asarray(cam, dtype=np.float64)
    single = arr.ndim == 2
    if single:
        arr = arr[None]
        boxes = np.asarray([_box(box, arr.shape[1:])])
    else:
        if arr.ndim != 3:
            raise ValueError(f"maps must have shape (H, W) or (N, H, W), got {arr.shape}")
        raw = np.asarray(box)
        if raw.shape != (arr.shape[0], 4):
            raise ValueError(f"{arr.shape[0]} maps need boxes of shape ({arr.shape[0]}, 4), got {raw.shape}")
        boxes = np.asarray([_box(b, arr.shape[1:]) for b in raw]).reshape(-1, 4)
    if not np.isfinite(arr).all():
        raise ValueError("the map contains NaN or infinite values")
    return arr, boxes, single


def _box_sums(values: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Sum of each (H, W) array inside its (x0, y0, x1, y1) box (exclusive ends), from integral images."""
    ii = np.zeros((values.shape[0], values.shape[1] + 1, values.shape[2] + 1))
    ii[:, 1:, 1:] = values.cumsum(1).cumsum(2)
    n = np.arange(values.shape[0])
    x0, y0, x1, y1 = boxes.T
    return ii[n, y1, x1] - ii[n, y0, x1] - ii[n, y1, x0] + ii[n, y0, x0]


def _out(values: np.ndarray, single: bool, cast: type = float) -> object:
    return cast(values[0]) if single else values


def energy_in_box(cam: object, box: Box | np.ndarray) -> float | np.ndarray:
    """Energy pointing game: share of the (non-negative) map's total inside the box; NaN for an all-zero map.

    Takes one (H, W) map and box, or (N, H, W) maps with (N, 4) boxes (then returns an array).
    """
    m, boxes, single = _maps_and_boxes(cam, box)
    if (m < 0).any():
        raise ValueError("energy_in_box needs a non-negative map (a CAM after its ReLU)")
    total = m.sum((1, 2))
    inside = _box_sums(m, boxes)
    with np.errstate(invalid="ignore", divide="ignore"):
        e = np.where(total > 0, inside / np.where(total > 0, total, 1.0), math.nan)
    return _out(e, single)


def _peaks(m: np.ndarray) -> np.ndarray:
    """(N, 2) peak (y, x) per map: the centroid of the largest plateau of maximal values; NaN for flat maps."""
    n = m.shape[0]
    lo, hi = m.min((1, 2)), m.max((1, 2))
    plateau = m >= (hi - PLATEAU_RTOL * (hi - lo))[:, None, None]
    count = plateau.sum((1, 2))
    out = np.full((n, 2), np.nan)
    flat_idx = m.reshape(n, -1).argmax(1)
    one = (count == 1) & (hi > lo)
    out[one] = np.stack(np.unravel_index(flat_idx[one], m.shape[1:]), 1)
    for k in np.flatnonzero((count > 1) & (hi > lo)):
        ys, xs = np.nonzero(_largest_component(plateau[k]))
        out[k] = ys.mean(), xs.mean()
    return out


def peak_location(cam: object) -> tuple[float, float] | None:
    """The map's peak (y, x): the centroid of its largest plateau of maximal values; None for a flat map.

    Registered low-resolution maps have flat plateaus (a 2x2 map on 64 px); ``argmax`` would return the plateau's
    first pixel, a corner, so the pointing game would test the raster order, not the map.
    """
    py, px = _peaks(_map(cam)[None])[0]
    return None if math.isnan(py) else (float(py), float(px))


def pointing_game(cam: object, box: Box | np.ndarray, tolerance: float = POINTING_TOLERANCE) -> bool | np.ndarray:
    """Hit if the map's peak (``peak_location``) lies within ``tolerance`` x (longer image side) pixels of the box.

    A flat map has no peak and misses. One map and box, or (N, H, W) maps with (N, 4) boxes.
    """
    m, boxes, single = _maps_and_boxes(cam, box)
    py, px = _peaks(m).T
    x0, y0, x1, y1 = boxes.T.astype(np.float64)
    dx = np.maximum(np.maximum(x0 - px, 0), px - (x1 - 1))
    dy = np.maximum(np.maximum(y0 - py, 0), py - (y1 - 1))
    hit = np.hypot(dx, dy) <= tolerance * max(m.shape[1:])
    hit &= ~np.isnan(py)
    return _out(hit, single, bool)


def _components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """8-connected components: (label image, stats rows [x, y, w, h, area] per label, label 0 = background)."""
    import cv2

    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return labels, stats


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a boolean mask (ties: the one met first in raster order)."""
    labels, stats = _components(mask)
    if len(stats) < 2:
        return np.zeros_like(mask, dtype=bool)
    return labels == 1 + int(np.argmax(stats[1:, 4]))  # labels are numbered in raster order of first pixel


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


def coverage(cam: object, box: Box | np.ndarray, threshold: float = COVERAGE_THRESHOLD) -> float | np.ndarray:
    """Share of the box's pixels where the map is >= ``threshold`` x its max: how much of the object it covers.

    A coverage metric, for "covers the whole large object"; a flat positive map covers everything, so read it
    beside a concentration metric. An all-zero map covers nothing (0). One map and box, or a batch.
    """
    m, boxes, single = _maps_and_boxes(cam, box)
    peak = m.max((1, 2))
    above = (m >= threshold * peak[:, None, None]) & (peak > 0)[:, None, None]
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return _out(_box_sums(above.astype(np.float64), boxes) / area, single)


@_batched
def iou_curve(cam: object, box: Box, thresholds: Sequence[float] | np.ndarray = BOXACC_THRESHOLDS) -> np.ndarray:
    """IoU with ``box`` of the box around the largest component of the min-max normalised map >= each threshold.

    The per-image curve behind MaxBoxAcc (Choe et al., CVPR 2020); a flat map scores 0 everywhere.
    """
    m = _map(cam)
    gt = _box(box, m.shape)
    thr = np.asarray(thresholds, dtype=np.float64)
    lo, hi = m.min(), m.max()
    out = np.zeros(thr.size)
    if hi <= lo:
        return out
    n = (m - lo) / (hi - lo)
    for k, t in enumerate(thr):
        _, stats = _components(n >= t)
        if len(stats) < 2:
            continue
        x, y, w, h, _ = stats[1 + int(np.argmax(stats[1:, 4]))]
        out[k] = box_iou((x, y, x + w, y + h), gt)
    return out


def max_box_acc(curves: np.ndarray, iou: float = BOXACC_IOU) -> float:
    """MaxBoxAcc: the share of images whose box reaches IoU >= ``iou``, at the best single CAM threshold.

    ``curves`` is (N, thresholds) from ``iou_curve``; the threshold is chosen once for the whole set.
    """
    c = np.asarray(curves, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] == 0:
        raise ValueError(f"curves must be (N > 0, thresholds), got {c.shape}")
    return float((c >= iou).mean(0).max())


def centre_prior(size: int | Sequence[int], sigma: float) -> np.ndarray:
    """A centred isotropic Gaussian map (peak 1) of width ``sigma`` px: the baseline that ignores the image."""
    h, w = _hw(size)
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    yy = np.exp(-0.5 * ((np.arange(h) - (h - 1) / 2) / sigma) ** 2)
    xx = np.exp(-0.5 * ((np.arange(w) - (w - 1) / 2) / sigma) ** 2)
    return yy[:, None] * xx[None, :]


def fit_centre_prior_sigma(boxes: np.ndarray, size: int | Sequence[int]) -> float:
    """The ``centre_prior`` width fitted on ``boxes`` (a training split's): the isotropic Gaussian with the same
    spread about the image centre as the objects' pixels, sigma^2 = mean over box pixels of (d_y^2 + d_x^2) / 2.

    Fitted on training boxes, never on the boxes it is compared on. (Maximising the prior's energy in the box
    instead would shrink it to a point at the centre, the pointing baseline.)
    """
    h, w = _hw(size)
    b = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    if b.shape[0] == 0:
        raise ValueError("fit_centre_prior_sigma needs at least one box")
    for row in b:
        _box(row, (h, w))
    cy, cx = (h - 1) / 2, (w - 1) / 2

    def second_moment(lo: np.ndarray, hi: np.ndarray, c: float) -> np.ndarray:
        # sum over integer t in [lo, hi) of (t - c)^2, in closed form
        def s2(n: np.ndarray) -> np.ndarray:  # sum_{t=0}^{n-1} (t - c)^2
            n = n.astype(np.float64)
            return (n - 1) * n * (2 * n - 1) / 6 - 2 * c * (n - 1) * n / 2 + n * c * c
        return s2(hi) - s2(lo)

    x0, y0, x1, y1 = b.T
    area = ((x1 - x0) * (y1 - y0)).astype(np.float64)
    sy = second_moment(y0, y1, cy) * (x1 - x0)
    sx = second_moment(x0, x1, cx) * (y1 - y0)
    return float(math.sqrt((sy.sum() + sx.sum()) / area.sum() / 2))


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
        keep = keep & np.isfinite(a.reshape(r, m, -1)).all(-1)
    den = np.zeros(run_w.shape[0])
    nums = [np.zeros((run_w.shape[0], int(np.prod(a.shape[2:], dtype=int)))) for a in xs]
    for k in range(r):
        wk = img_w * keep[k][None, :]  # (B, M)
        den += run_w[:, k] * wk.sum(1)
        for num, a in zip(nums, xs, strict=True):
            num += run_w[:, k][:, None] * (wk @ np.where(keep[k][:, None], a[k].reshape(m, -1), 0.0))
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
