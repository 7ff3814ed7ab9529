"""The metric table: one row per metric the evaluation reports, what it measures and the smallest effect that matters.

The evaluation scores, summarises and judges the metrics by iterating over ``METRIC_TABLE``; the results file
carries ``metrics_json()`` and ``min_effects()``, and the Claims page reads labels and reasons from the same rows.
Adding a metric is one scoring function plus one row here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from res2net.metrics.boxes import COVERAGE_THRESHOLD

__all__ = ["Metric", "METRIC_TABLE", "metric", "metric_names", "min_effects", "metrics_json", "map_metrics",
           "branch_metrics", "DIGITS", "rounded"]

DIGITS = 4  # decimals of every number written into a results file


@dataclass(frozen=True)
class Metric:
    """One metric: its key in results files, label, kind (what claim it tests), why it fits, minimum effect.

    ``source``: where the per-image value comes from: "logits" (the prediction), "map" (a registered CAM scored
    against the boxes) or "erf" (noise-input ERFs, no images). ``at_branches``: map metrics also scored at each
    branch of a block. ``best_threshold``: per image a hit per MaxBoxAcc threshold, summarised at the best
    threshold rather than as a plain mean of images. ``hit``: the per-image value is a hit or miss (stored as a
    boolean), not a score. ``scale``: factor from the mean to the reported value (top-1 in points).
    """

    name: str
    label: str
    kind: str
    why: str | None
    min_effect: float
    source: str
    at_branches: bool = False
    best_threshold: bool = False
    hit: bool = False
    scale: float = 1.0
    digits: int = DIGITS

    @property
    def per_image_mean(self) -> bool:
        """True when the reported value is a mean over images of a per-image score (every metric but ERFs)."""
        return self.source != "erf"

    def as_json(self) -> dict[str, object]:
        """The row as the results file's ``metrics`` section writes it."""
        out: dict[str, object] = {"label": self.label, "kind": self.kind, "min_effect": self.min_effect}
        if self.why is not None:
            out["why"] = self.why
        return out


# The minimum effects were fixed before any result: about the run-to-run spread of one model, and a change a
# reader would notice; below one a difference is "no meaningful difference".
METRIC_TABLE: tuple[Metric, ...] = (
    Metric("top1", "top-1 accuracy (points)", "accuracy", None, 1.0, "logits", hit=True, scale=100.0),
    Metric("energy", "energy inside the box", "concentration",
           "share of the map's mass on the object: high when the map is focused on it (Wang et al. 2020)",
           0.02, "map", at_branches=True),
    Metric("pointing", "pointing game hit rate", "concentration",
           "the map's peak (plateau centroid) on the object, 15/224 of the longer side tolerance",
           0.03, "map", at_branches=True, hit=True),
    Metric("coverage", "coverage of the box", "coverage",
           f"share of the box where the map is >= {COVERAGE_THRESHOLD} x its max: how much of the object it covers",
           0.03, "map"),
    Metric("maxboxacc", "MaxBoxAcc", "coverage",
           "share of images whose thresholded-map box has IoU >= 0.5 with the object box, at the best threshold "
           "(Choe et al., CVPR 2020): the map spans the whole object, not just a part",
           0.03, "map", best_threshold=True, hit=True),
    Metric("erf_radius", "50% ERF radius (px)", "receptive field",
           "half-side of the centred square holding half the ERF mass (Luo et al. 2016)", 1.0, "erf"),
)

_BY_NAME = {m.name: m for m in METRIC_TABLE}


def metric(name: str) -> Metric:
    """The table's row of ``name``; a KeyError naming the known metrics otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(_BY_NAME)}") from None


def metric_names() -> tuple[str, ...]:
    return tuple(_BY_NAME)


def map_metrics() -> tuple[str, ...]:
    """Metrics of a registered map at a stage output, in table order."""
    return tuple(m.name for m in METRIC_TABLE if m.source == "map")


def branch_metrics() -> tuple[str, ...]:
    """Metrics also scored at each branch of a block."""
    return tuple(m.name for m in METRIC_TABLE if m.source == "map" and m.at_branches)


def min_effects() -> dict[str, float]:
    """Metric name -> minimum effect, as results files write it."""
    return {m.name: m.min_effect for m in METRIC_TABLE}


def metrics_json() -> dict[str, dict[str, object]]:
    """Metric name -> its row, as the results file's ``metrics`` section writes it."""
    return {m.name: m.as_json() for m in METRIC_TABLE}


def rounded(v: float | None, digits: int = DIGITS) -> float | None:
    """A number as results files write it: ``digits`` decimals, None for a missing or non-finite value."""
    return None if v is None or not math.isfinite(v) else round(float(v), digits)
