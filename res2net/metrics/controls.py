"""Image-blind controls a localisation claim is judged against, and the protocol rules every box metric shares.

The rules.
- **A localisation claim is a gain over controls that ignore the image, not a raw score.**
  - *Mismatched boxes*: each map is scored against another image's box from the same size bucket (a seeded,
    uniformly drawn derangement within the bucket: no image keeps its own box). It keeps the bucket's box sizes
    and positions and the map's own shape, and breaks only the link between this image and this object.
  - *Spread-matched centre prior*: a centred Gaussian with the map's own second moments (its covariance about
    its own centroid, each pixel's mass spread over its unit square). It has the map's spread and sits at the
    image centre: a map that beats it knows *where* the object is, not only how wide objects tend to be.
  - *Centre-containing vs off-centre boxes* are reported apart: near the centre a centred blob scores for free.
- **Flat maps** (all-zero, or constant: no location at all) count as a miss under every metric (energy 0, no
  pointing hit, coverage 0, no correct box), so every metric and both arms of a paired comparison keep the same
  images. Dropping them instead would choose the images by the model's own output.
- **MaxBoxAcc's threshold is chosen on held-out images** and the accuracy reported on the others (Choe et al.,
  CVPR 2020): the threshold that maximises accuracy on the reported images flatters every map.
Maps are (N, H, W) non-negative arrays, boxes (N, 4) ``(x0, y0, x1, y1)`` with exclusive ends (``boxes``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["FLAT_MAP_RULE", "MISS", "NO_BOX", "PIXEL_VARIANCE", "flat_maps", "apply_flat_map_rule",
           "mismatched_box_sources", "mismatched_boxes", "map_moments", "spread_matched_prior", "contains_centre",
           "heldout_split", "choose_threshold", "boxacc_at_heldout_threshold"]

FLAT_MAP_RULE = ("a flat map (all-zero or constant) has no location: it is a miss under every metric (energy 0, "
                 "no pointing hit, coverage 0, no correct box), so every metric and both arms of a comparison keep "
                 "the same images")
MISS: dict[str, float | bool] = {"energy": 0.0, "pointing": False, "coverage": 0.0, "maxboxacc": False}
NO_BOX = (-1, -1, -1, -1)  # an image with no mismatched box (alone in its bucket): any box metric refuses it
PIXEL_VARIANCE = 1.0 / 12.0  # variance of a unit square along each axis: a pixel's mass spread over its area


def _maps(maps: object) -> np.ndarray:
    m = np.asarray(maps, dtype=np.float64)
    if m.ndim != 3:
        raise ValueError(f"maps must be (N, H, W), got {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("maps contain NaN or infinite values")
    return m


def flat_maps(maps: object) -> np.ndarray:
    """(N,) True for a map with no location: all values equal (all-zero included)."""
    m = _maps(maps)
    return m.max((1, 2)) == m.min((1, 2))


def apply_flat_map_rule(scores: Mapping[str, np.ndarray], flat: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image scores {metric: (N,) or (N, thresholds)} with every flat map's row set to that metric's miss.

    Every metric named must have a miss value in ``MISS``: a metric without a stated rule is refused.
    """
    f = np.asarray(flat, dtype=bool)
    out = {}
    for name, values in scores.items():
        if name not in MISS:
            raise KeyError(f"no flat-map rule for metric {name!r}; known: {', '.join(MISS)}")
        v = np.array(values, copy=True)
        if v.shape[0] != f.shape[0]:
            raise ValueError(f"{name}: {v.shape[0]} rows for {f.shape[0]} maps")
        v[f] = MISS[name]
        out[name] = v
    return out


# ------------------------------------------------------------------------------------------- mismatched boxes
def mismatched_box_sources(buckets: Sequence[object] | np.ndarray, seed: int = 0) -> np.ndarray:
    """(N,) index of the image whose box each image is scored against: a uniform random derangement within each
    bucket (no image keeps its own index; every box is used once per bucket); -1 for an image alone in its bucket.
    """
    b = np.asarray(buckets)
    rng = np.random.default_rng(seed)
    src = np.full(b.shape[0], -1, dtype=np.int64)
    for label in np.unique(b):
        idx = np.flatnonzero(b == label)
        n = idx.size
        if n < 2:
            continue
        while True:  # rejection: a uniform permutation is a derangement with probability ~1/e
            perm = rng.permutation(n)
            if not (perm == np.arange(n)).any():
                break
        src[idx] = idx[perm]
    return src


def mismatched_boxes(boxes: np.ndarray, buckets: Sequence[object] | np.ndarray, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4) another image's box from the same bucket for each image, and (N,) whether it has one (``NO_BOX``
    rows for an image alone in its bucket, which every box metric refuses)."""
    bx = np.asarray(boxes)
    if bx.ndim != 2 or bx.shape[1] != 4:
        raise ValueError(f"boxes must be (N, 4), got {bx.shape}")
    src = mismatched_box_sources(buckets, seed)
    if src.shape[0] != bx.shape[0]:
        raise ValueError(f"{bx.shape[0]} boxes for {src.shape[0]} bucket labels")
    keep = src >= 0
    out = np.tile(np.asarray(NO_BOX, dtype=bx.dtype), (bx.shape[0], 1))
    out[keep] = bx[src[keep]]
    return out, keep


# ------------------------------------------------------------------------------------ spread-matched prior
def map_moments(maps: object) -> tuple[np.ndarray, np.ndarray]:
    """Centroid (N, 2) as (y, x) and covariance (N, 2, 2) of each map read as a mass distribution, each pixel's
    mass spread over its unit square (``PIXEL_VARIANCE`` added on the diagonal). NaN for an all-zero map."""
    m = _maps(maps)
    if (m < 0).any():
        raise ValueError("spread is defined for non-negative maps (a CAM after its ReLU)")
    n, h, w = m.shape
    total = m.sum((1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = m / total[:, None, None]
    ys, xs = np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64)
    py, px = p.sum(2), p.sum(1)  # marginals (N, H), (N, W)
    cy, cx = py @ ys, px @ xs
    dy, dx = ys[None, :] - cy[:, None], xs[None, :] - cx[:, None]
    vyy = (py * dy**2).sum(1) + PIXEL_VARIANCE
    vxx = (px * dx**2).sum(1) + PIXEL_VARIANCE
    vxy = np.einsum("nij,ni,nj->n", p, dy, dx)
    cov = np.stack([np.stack([vyy, vxy], -1), np.stack([vxy, vxx], -1)], -2)
    return np.stack([cy, cx], -1), cov


def spread_matched_prior(maps: object) -> np.ndarray:
    """(N, H, W) image-blind control per map: a Gaussian (peak 1) centred on the image with the map's own
    covariance (``map_moments``). A flat map's control is all-zero (a miss, like the map itself)."""
    m = _maps(maps)
    n, h, w = m.shape
    _, cov = map_moments(m)
    flat = flat_maps(m)
    cov[flat] = np.eye(2)  # placeholder, zeroed below
    prec = np.linalg.inv(cov)
    dy = np.arange(h, dtype=np.float64) - (h - 1) / 2
    dx = np.arange(w, dtype=np.float64) - (w - 1) / 2
    q = (prec[:, 0, 0, None, None] * dy[None, :, None] ** 2 + 2 * prec[:, 0, 1, None, None] * dy[None, :, None]
         * dx[None, None, :] + prec[:, 1, 1, None, None] * dx[None, None, :] ** 2)
    out = np.exp(-0.5 * q)
    out[flat] = 0.0
    return out


def contains_centre(boxes: np.ndarray, size: int | Sequence[int]) -> np.ndarray:
    """(N,) True where the box's interior holds the image centre: x0 < W/2 < x1 and y0 < H/2 < y1 (pixel edges;
    a box whose border runs through the centre does not hold it)."""
    h, w = (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x0, y0, x1, y1 = b.T
    return (x0 < w / 2) & (w / 2 < x1) & (y0 < h / 2) & (h / 2 < y1)


# ------------------------------------------------------------------------- MaxBoxAcc on held-out images
def heldout_split(labels: Sequence[object] | np.ndarray, fraction: float = 0.2, seed: int = 0) -> np.ndarray:
    """(N,) True for the held-out images that choose thresholds: ``fraction`` of each class (rounded, seeded), at
    least one per class of two or more images, never all of a class."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    lab = np.asarray(labels)
    rng = np.random.default_rng(seed)
    out = np.zeros(lab.shape[0], dtype=bool)
    for c in np.unique(lab):
        idx = np.flatnonzero(lab == c)
        if idx.size < 2:
            continue
        k = min(max(int(round(fraction * idx.size)), 1), idx.size - 1)
        out[rng.choice(idx, size=k, replace=False)] = True
    return out


def choose_threshold(heldout_hits: np.ndarray) -> int:
    """Index of the threshold with the most correct boxes on held-out images ((M, thresholds) hits, e.g.
    ``iou_curve(...) >= BOXACC_IOU``); ties go to the lowest threshold."""
    hits = np.asarray(heldout_hits, dtype=bool)
    if hits.ndim != 2 or hits.shape[0] == 0:
        raise ValueError(f"held-out hits must be (M > 0, thresholds), got {hits.shape}")
    return int(np.argmax(hits.mean(0)))


def boxacc_at_heldout_threshold(hits: np.ndarray, heldout: np.ndarray) -> tuple[int, np.ndarray]:
    """Choe et al.'s protocol on one image set: the threshold chosen on the ``heldout`` rows, and each other
    image's hit (1.0 / 0.0) at that threshold; NaN on held-out rows, which are never reported. The mean of the
    per-image hits is the BoxAcc, so its interval is that of a plain mean."""
    h = np.asarray(hits, dtype=bool)
    ho = np.asarray(heldout, dtype=bool)
    if ho.shape != (h.shape[0],):
        raise ValueError(f"heldout must be ({h.shape[0]},), got {ho.shape}")
    if ho.all():
        raise ValueError("every image is held out: nothing is left to report")
    t = choose_threshold(h[ho])
    return t, np.where(ho, np.nan, h[:, t].astype(np.float64))
