"""A batch of registered maps scored against their boxes and against the two image-blind controls, one rule for
flat maps: what the scoring step stores per tap.

- At every tap, the flat-map rule (``metrics.controls.FLAT_MAP_RULE``): a flat map is a miss under every metric.
- Where ``controls`` is asked for (the verdict layer's output), also ``mismatch_<metric>``: the map scored against
  another image's boxes from the same size bucket of the batch (a seeded derangement within the bucket; NaN for an
  image alone in its bucket), and ``spread_<metric>``: a centred Gaussian with the map's own spread scored against
  the image's own boxes; for energy, pointing and coverage (MaxBoxAcc's IoU curves cost ten times more, and the
  centre prior already saturates it on large objects).
The mismatch is drawn within the fixed batch (batches never depend on the process count), so a rerun with any
number of processes pairs the same images.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from res2net.metrics import boxes as L
from res2net.metrics import controls as C

__all__ = ["CONTROLS", "CONTROL_METRICS", "MISMATCH_SEED", "tap_scores", "placement_scores", "flat_rule"]

CONTROLS = ("mismatch", "spread")
CONTROL_METRICS = ("energy", "pointing", "coverage")
MISMATCH_SEED = 0
Box = tuple[int, int, int, int]


def flat_rule(scores: dict[str, np.ndarray], flat: np.ndarray) -> dict[str, np.ndarray]:
    """``scores`` of ``multi_box_scores`` with every flat map's rows set to a miss (the IoU curve to 0: no box)."""
    f = np.asarray(flat, dtype=bool)
    named = {("maxboxacc" if k == "maxboxacc_iou" else k): v for k, v in scores.items()}
    out = C.apply_flat_map_rule({k: v for k, v in named.items() if k != "maxboxacc"}, f)
    if "maxboxacc" in named:
        iou = np.array(named["maxboxacc"], dtype=np.float64, copy=True)
        iou[f] = 0.0
        out["maxboxacc_iou"] = iou
    return out


def _buckets(boxes: Sequence[Sequence[Box]], size: tuple[int, int]) -> np.ndarray:
    area = L.union_masks(boxes, size).reshape(len(boxes), -1).mean(1)
    return np.where(area < L.SMALL_BELOW, "small", np.where(area >= L.LARGE_FROM, "large", "medium"))


def _cheap_scores(maps: np.ndarray, boxes: Sequence[Sequence[Box]], union: np.ndarray, flat: np.ndarray
                  ) -> dict[str, np.ndarray]:
    """Energy, pointing and coverage (``CONTROL_METRICS``) under the flat-map rule, as floats."""
    got = L.multi_box_scores(maps, boxes, False, union)
    got["coverage"] = L._coverage(maps, union, L.COVERAGE_THRESHOLD)
    return {k: v.astype(np.float64) for k, v in flat_rule(got, flat).items()}


def tap_scores(maps: np.ndarray, boxes: Sequence[Sequence[Box]], full: bool, union: np.ndarray | None = None,
               controls: bool = False) -> dict[str, np.ndarray]:
    """Per image, the map's scores under the flat-map rule (``full``: every metric, else energy and pointing);
    with ``controls`` also both controls' ``CONTROL_METRICS``."""
    maps = np.asarray(maps, dtype=np.float64)
    size = maps.shape[1:]
    union = L.union_masks(boxes, size) if union is None else union
    flat = C.flat_maps(maps)
    out = flat_rule(L.multi_box_scores(maps, boxes, full, union), flat)
    if controls:
        out.update(_control_scores(maps, boxes, union, flat))
    return out


def placement_scores(maps: np.ndarray, boxes: Sequence[Sequence[Box]], union: np.ndarray | None = None
                     ) -> dict[str, np.ndarray]:
    """What the claims need of a map placed another way (the placement sensitivity): ``CONTROL_METRICS`` under the
    flat-map rule and both controls' ``CONTROL_METRICS``."""
    maps = np.asarray(maps, dtype=np.float64)
    union = L.union_masks(boxes, maps.shape[1:]) if union is None else union
    flat = C.flat_maps(maps)
    return {**_cheap_scores(maps, boxes, union, flat), **_control_scores(maps, boxes, union, flat)}


def _control_scores(maps: np.ndarray, boxes: Sequence[Sequence[Box]], union: np.ndarray, flat: np.ndarray
                    ) -> dict[str, np.ndarray]:
    """``mismatch_<metric>`` and ``spread_<metric>`` of float64 ``maps`` (see the module docstring)."""
    size = maps.shape[1:]
    out: dict[str, np.ndarray] = {}
    src = C.mismatched_box_sources(_buckets(boxes, size), MISMATCH_SEED)
    has = src >= 0
    mismatch = {k: np.full(len(boxes), np.nan) for k in CONTROL_METRICS}
    if has.any():
        other = [boxes[j] for j in src[has]]
        for k, v in _cheap_scores(maps[has], other, L.union_masks(other, size), flat[has]).items():
            mismatch[k][has] = v
    out.update({f"mismatch_{k}": v for k, v in mismatch.items()})
    spread = _cheap_scores(C.spread_matched_prior(maps), boxes, union, flat)
    out.update({f"spread_{k}": v for k, v in spread.items()})
    return out
