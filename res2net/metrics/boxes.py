"""Box scores: localisation of CAMs against ground-truth boxes, object-size buckets and image-blind baselines.

Maps are (H, W) at image resolution, placed by ``res2net.analysis.cam.register`` (or (N, H, W) with one box per map);
boxes are ``(x0, y0, x1, y1)`` in pixels with exclusive ends. Concentration metrics (energy in box, pointing
game) test "focused on small objects"; coverage metrics (share of the box above a threshold, MaxBoxAcc) test
"covers whole large objects". Every score has baselines that ignore the image: a uniform map (energy = the
box's area fraction) and a centred Gaussian prior (``centre_prior``), whose peak is "always the centre".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "energy_in_box", "pointing_game", "peak_location", "cam_box_iou", "box_iou", "box_fraction", "coverage",
    "iou_curve", "max_box_acc", "BOXACC_THRESHOLDS", "centre_prior", "fit_centre_prior_sigma", "size_bucket",
    "SIZE_BUCKETS", "SMALL_BELOW", "LARGE_FROM",
]

SMALL_BELOW = 0.25  # box area / image area below this: "small"
LARGE_FROM = 0.60  # at or above this: "large"; in between: "medium"
SIZE_BUCKETS = ("small", "medium", "large")
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
