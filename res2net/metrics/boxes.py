"""Box scores: localisation of CAMs against ground-truth boxes, object-size buckets and image-blind baselines.

Maps are (H, W) at image resolution, placed by ``res2net.analysis.cam.register`` (or (N, H, W) with one box per map);
boxes are ``(x0, y0, x1, y1)`` in pixels with exclusive ends. Every score is computed once, for images with one or
more boxes (``multi_box_scores``); the one-box functions are that computation with one box per map.
Concentration metrics (energy in box, pointing game) test "focused on small objects"; coverage metrics (share of
the box above a threshold, MaxBoxAcc) test "covers whole large objects". Every score has baselines that ignore
the image: a uniform map (energy = the box's area fraction) and a centred Gaussian prior (``centre_prior``,
``prior_scores``), whose peak is "always the centre".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = [
    "energy_in_box", "pointing_game", "peak_location", "cam_box_iou", "box_iou", "box_fraction", "coverage",
    "iou_curve", "max_box_acc", "BOXACC_THRESHOLDS", "centre_prior", "fit_centre_prior_sigma", "size_bucket",
    "SIZE_BUCKETS", "SMALL_BELOW", "LARGE_FROM", "union_masks", "multi_box_scores", "prior_scores",
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


def _out(values: np.ndarray, single: bool, cast: type = float) -> object:
    return cast(values[0]) if single else values


def _lists(boxes: np.ndarray) -> list[list[tuple[int, int, int, int]]]:
    """(N, 4) boxes as N one-box lists, the form the per-image scores take."""
    return [[tuple(int(v) for v in b)] for b in boxes]


def energy_in_box(cam: object, box: Box | np.ndarray) -> float | np.ndarray:
    """Energy pointing game: share of the (non-negative) map's total inside the box; NaN for an all-zero map.

    Takes one (H, W) map and box, or (N, H, W) maps with (N, 4) boxes (then returns an array).
    """
    m, boxes, single = _maps_and_boxes(cam, box)
    if (m < 0).any():
        raise ValueError("energy_in_box needs a non-negative map (a CAM after its ReLU)")
    return _out(_energy(m, union_masks(_lists(boxes), m.shape[1:])), single)


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
    return _out(_pointing(m, _lists(boxes), tolerance), single, bool)


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
    return _out(_coverage(m, union_masks(_lists(boxes), m.shape[1:]), threshold), single)


def iou_curve(cam: object, box: Box | np.ndarray, thresholds: Sequence[float] | np.ndarray = BOXACC_THRESHOLDS
              ) -> np.ndarray:
    """IoU with ``box`` of the box around the largest component of the min-max normalised map >= each threshold.

    The per-image curve behind MaxBoxAcc (Choe et al., CVPR 2020); a flat map scores 0 everywhere. One map and box
    (a (thresholds,) curve), or (N, H, W) maps with (N, 4) boxes ((N, thresholds) curves).
    """
    m, boxes, single = _maps_and_boxes(cam, box)
    curves = _iou_curves(m, _lists(boxes), np.asarray(thresholds, dtype=np.float64).reshape(-1))
    return curves[0] if single else curves


# ----------------------------------------------- the scores, for images with one or more boxes (the one implementation)
def union_masks(boxes: Sequence[Sequence[Box]], size: tuple[int, int]) -> np.ndarray:
    """(N, H, W) boolean masks: the union of each image's boxes (exclusive ends)."""
    h, w = size
    out = np.zeros((len(boxes), h, w), dtype=bool)
    for i, bs in enumerate(boxes):
        for x0, y0, x1, y1 in bs:
            out[i, y0:y1, x0:x1] = True
    return out


def _energy(maps: np.ndarray, union: np.ndarray) -> np.ndarray:
    """Per map: its total inside the union of its boxes over its total; NaN for an all-zero map."""
    total = maps.sum((1, 2))
    inside = (maps * union).sum((1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside / np.where(total > 0, total, 1.0), np.nan)


def _pointing(maps: np.ndarray, boxes: Sequence[Sequence[Box]], tolerance: float) -> np.ndarray:
    """Per map: whether its peak lies within ``tolerance`` x (longer side) of any of its boxes; a flat map misses."""
    peaks = _peaks(maps)  # (y, x) per map, NaN for a flat map: found once for all of an image's boxes
    reach = tolerance * max(maps.shape[1:])
    hit = np.zeros(len(maps), dtype=bool)
    for i, bs in enumerate(boxes):
        py, px = peaks[i]
        if np.isnan(py):
            continue
        b = np.asarray(bs, dtype=np.float64).reshape(-1, 4)
        dx = np.maximum(np.maximum(b[:, 0] - px, 0), px - (b[:, 2] - 1))
        dy = np.maximum(np.maximum(b[:, 1] - py, 0), py - (b[:, 3] - 1))
        hit[i] = bool((np.hypot(dx, dy) <= reach).any())
    return hit


def _coverage(maps: np.ndarray, union: np.ndarray, threshold: float) -> np.ndarray:
    """Per map: the share of its boxes' union where it is >= ``threshold`` x its max (0 for an all-zero map)."""
    peak = maps.max((1, 2))
    above = (maps >= threshold * peak[:, None, None]) & (peak > 0)[:, None, None]
    return (above & union).sum((1, 2)) / union.sum((1, 2))


def _largest_components(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per (H, W) mask of a (K, H, W) stack: the (x0, y0, x1, y1) box of its largest 8-connected component and
    whether it has one. Ties go to the component cv2 labels first, as ``argmax`` over one mask's labels does.

    One component search over the masks' occupied rows stacked into one image, each mask's rows from an even row
    of the mask onto an even row of the stack (cv2 scans 2x2 blocks in raster order and numbers components by the
    block it meets first, so a mask's components keep their order) and a zero row before the next mask's."""
    import cv2

    k, h, w = masks.shape
    rows = masks.any(2)
    has = rows.any(1)
    top = rows.argmax(1) // 2 * 2
    bottom = h - rows[:, ::-1].argmax(1)
    pitch = np.where(has, bottom - top + 1, 0)
    pitch += pitch % 2
    start = np.concatenate([[0], np.cumsum(pitch)])
    out = np.zeros((k, 4))
    found = np.zeros(k, dtype=bool)
    per_call = 1 << 22  # pixels of the stacked image per call: a few MB of labels
    first = 0
    while first < k:
        last = max(first + 1, int(np.searchsorted(start, start[first] + per_call // w, "right")) - 1)
        last = min(last, k)
        big = np.zeros((int(start[last] - start[first]), w), dtype=np.uint8)
        for i in range(first, last):
            if has[i]:
                at = int(start[i] - start[first])
                big[at:at + bottom[i] - top[i]] = masks[i, top[i]:bottom[i]]
        # Grana's block-based algorithm: the same labels and stats as cv2's default here, found faster
        _, _, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(big, 8, cv2.CV_32S, cv2.CCL_GRANA)
        x, y, bw, bh, area = stats[1:].T.astype(np.int64)
        which = first + np.searchsorted(start[first + 1:last + 1] - start[first], y, "right")
        y = y - (start[which] - start[first]) + top[which]
        order = np.lexsort((np.arange(len(area)), -area, which))  # per mask: largest area, then first label
        if len(order):
            pick = order[np.r_[True, which[order][1:] != which[order][:-1]]]
            m = which[pick]
            out[m] = np.stack([x[pick], y[pick], x[pick] + bw[pick], y[pick] + bh[pick]], 1)
            found[m] = True
        first = last
    return out, found


def _iou_curves(maps: np.ndarray, boxes: Sequence[Sequence[Box]], thr: np.ndarray = BOXACC_THRESHOLDS
                ) -> np.ndarray:
    """(N, thresholds): per threshold, the best IoU over an image's boxes of the box around the largest component
    of its min-max normalised map >= the threshold; 0 for a flat map."""
    n, h, w = maps.shape
    out = np.zeros((n, len(thr)))
    lo, hi = maps.min((1, 2)), maps.max((1, 2))
    ok = np.flatnonzero(hi > lo)
    if not len(ok):
        return out
    norm = (maps[ok] - lo[ok, None, None]) / (hi[ok] - lo[ok])[:, None, None]
    pred, found = _largest_components((norm[:, None] >= thr[None, :, None, None]).reshape(-1, h, w))
    pred, found = pred.reshape(len(ok), len(thr), 1, 4), found.reshape(len(ok), len(thr))
    most = max(len(boxes[i]) for i in ok)
    g = np.zeros((len(ok), 1, most, 4))  # padded with empty boxes, whose IoU is 0 and never the best
    for j, i in enumerate(ok):
        g[j, 0, :len(boxes[i])] = boxes[i]
    ix = np.clip(np.minimum(pred[..., 2], g[..., 2]) - np.maximum(pred[..., 0], g[..., 0]), 0, None)
    iy = np.clip(np.minimum(pred[..., 3], g[..., 3]) - np.maximum(pred[..., 1], g[..., 1]), 0, None)
    inter = ix * iy
    union = (pred[..., 2] - pred[..., 0]) * (pred[..., 3] - pred[..., 1]) + \
        (g[..., 2] - g[..., 0]) * (g[..., 3] - g[..., 1]) - inter
    iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0).max(2)
    out[ok] = np.where(found, iou, 0.0)
    return out


def multi_box_scores(maps: np.ndarray, boxes: Sequence[Sequence[Box]], full: bool, union: np.ndarray | None = None
                     ) -> dict[str, np.ndarray]:
    """Per image with one or more boxes: energy over the union of its boxes, pointing hit on any box; with ``full``
    also coverage of the union and the IoU curve of MaxBoxAcc (best box per threshold, as wsolevaluation).

    ``maps`` (N, H, W); ``boxes`` one list of (x0, y0, x1, y1) boxes per map. ``union``: ``union_masks(boxes,
    (H, W))`` when the caller scores several maps against the same boxes."""
    maps = np.asarray(maps, dtype=np.float64)
    if not np.isfinite(maps).all():
        raise ValueError("the maps contain NaN or infinite values")
    union = union_masks(boxes, maps.shape[1:]) if union is None else union
    out = {"energy": _energy(maps, union), "pointing": _pointing(maps, boxes, POINTING_TOLERANCE)}
    if full:
        out["coverage"] = _coverage(maps, union, COVERAGE_THRESHOLD)
        out["maxboxacc_iou"] = _iou_curves(maps, boxes)
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


def prior_scores(boxes: Sequence[Sequence[Box]], side: int, sigmas: Sequence[float], fold: np.ndarray,
                 chunk: int = 256) -> dict[str, np.ndarray]:
    """Every score of ``multi_box_scores`` for the image-blind centred Gaussian prior, per image: image ``i`` is
    scored with ``centre_prior(side, sigmas[fold[i]])`` (one sigma for all, or one per fold of a cross-fit)."""
    fold = np.asarray(fold)
    out: dict[str, np.ndarray] = {}
    for f, sigma in enumerate(sigmas):
        prior = centre_prior(side, sigma)
        idx = np.flatnonzero(fold == f)
        for s in range(0, len(idx), chunk):
            part = idx[s:s + chunk]
            maps = np.broadcast_to(prior, (len(part), *prior.shape))
            for k, v in multi_box_scores(maps, [boxes[i] for i in part], True).items():
                if k not in out:
                    out[k] = np.zeros((len(boxes), *v.shape[1:]), dtype=v.dtype)
                out[k][part] = v
    return out


def size_bucket(box: Box, size: int | Sequence[int]) -> str:
    """'small' (< 25% of the image), 'medium', or 'large' (>= 60%), by box area / image area."""
    f = box_fraction(box, size)
    return "small" if f < SMALL_BELOW else "large" if f >= LARGE_FROM else "medium"
