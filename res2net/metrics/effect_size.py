"""The d rule: the smallest difference that matters, per metric and size bucket, fixed in code before the runs.

The rule: d = max(floor, sqrt(2) x run SD), rounded up to the metric's grid.
- The **floor** is the smallest change a reader would act on in that metric's units (reasons in ``FLOORS``). It
  is a judgement about meaning, not about noise, and it is written down before any result it judges.
- The **run SD** is the run-to-run standard deviation of one model's value in that bucket (pooled over the
  models of a pilot: ``PILOT_RUN_SD``). sqrt(2) x run SD is the spread of the difference between one run of each
  of two architectures; a true difference smaller than that is one that re-seeding alone reverses in more than
  one pair of runs in six (P(Z > 1) = 16%). Calling it an architecture effect would claim less than the
  seed lottery moves, so d never falls below it.
- The **grid** rounds d up to a step a reader can see in the tables (0.005 of a share, 0.1 of a point).
In the pilot every run SD sits below its floor except top-1 on medium objects (sqrt(2) x 0.73 = 1.03 points), so
the floors decide almost everywhere: d is about meaning; the measured spread only guards it. Estimates that sit
at d are decided by no amount of data, so every verdict comes with ``sensitivity``: the verdicts at d/2, d, 2d.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from res2net.metrics.boxes import SIZE_BUCKETS
from res2net.metrics.statistics import verdict

__all__ = ["Floor", "FLOORS", "BUCKETS", "PILOT_RUN_SD", "PILOT_SOURCE", "SENSITIVITY", "pooled_run_sd", "rule_d",
           "min_effect", "min_effect_table", "rule_json", "sensitivity"]

BUCKETS = (*SIZE_BUCKETS, "all")
SENSITIVITY = (("d/2", 0.5), ("d", 1.0), ("2d", 2.0))


@dataclass(frozen=True)
class Floor:
    """The smallest change that matters in a metric's units, the step d is rounded up to, and why."""

    value: float
    grid: float
    reason: str


FLOORS: dict[str, Floor] = {
    "top1": Floor(1.0, 0.1, "one point of top-1: about half the gain the paper reports for Res2Net-50 over "
                            "ResNet-50 (Table 1); a smaller gain would not be reported as an improvement"),
    "energy": Floor(0.02, 0.005, "two percent of the map's mass moved onto the object: on small objects (boxes "
                                 "~12% of the image, the centre prior at ~0.2) a tenth of the image-blind score; "
                                 "less is not visible in a map"),
    "pointing": Floor(0.03, 0.005, "three more peaks on the object per hundred images"),
    "coverage": Floor(0.03, 0.005, "three percent more of the object's pixels above half the map's peak"),
    "maxboxacc": Floor(0.03, 0.005, "three more correct boxes (IoU >= 0.5) per hundred images"),
    "erf_radius": Floor(1.0, 0.25, "one input pixel of the 50% ERF radius: at 64 px inputs, 1/32 of the half-side; "
                                   "sub-pixel radii resolve it, whole-pixel radii do not"),
}

PILOT_SOURCE = ("run-to-run SD of each model's bucket mean at the verdict layer (layer3 block output), pooled over "
                "the 4 embedded models x 3 runs (seeds 0-2; 8 df) of the Tiny-ImageNet-100 val results, schema 2; "
                "MaxBoxAcc at the best threshold of each run; no per-run ERF radii were kept (the floor applies)")
# (metric, bucket) -> pooled run SD, in the metric's reported units (top-1 in points)
PILOT_RUN_SD: dict[tuple[str, str], float] = {
    ("top1", "small"): 0.5885, ("top1", "medium"): 0.7290, ("top1", "large"): 0.6537, ("top1", "all"): 0.4519,
    ("energy", "small"): 0.0027, ("energy", "medium"): 0.0061, ("energy", "large"): 0.0033,
    ("energy", "all"): 0.0038,
    ("pointing", "small"): 0.0179, ("pointing", "medium"): 0.0201, ("pointing", "large"): 0.0117,
    ("pointing", "all"): 0.0150,
    ("coverage", "small"): 0.0197, ("coverage", "medium"): 0.0137, ("coverage", "large"): 0.0104,
    ("coverage", "all"): 0.0129,
    ("maxboxacc", "small"): 0.0075, ("maxboxacc", "medium"): 0.0111, ("maxboxacc", "large"): 0.0198,
    ("maxboxacc", "all"): 0.0094,
}


def pooled_run_sd(per_model: Mapping[str, Sequence[float]]) -> float:
    """Pooled within-model SD of per-run values {model: [value of run 0, run 1, ...]}: sqrt(sum over models of
    (runs - 1) x variance / sum of (runs - 1)); models with one run carry no spread and are left out."""
    num = den = 0.0
    for v in per_model.values():
        x = np.asarray(v, dtype=np.float64)
        if x.size > 1:
            num += float(((x - x.mean()) ** 2).sum())
            den += x.size - 1
    if den == 0:
        raise ValueError("a run-to-run SD needs a model with at least two runs")
    return math.sqrt(num / den)


def rule_d(floor: float, grid: float, run_sd: float | None) -> float:
    """d = max(floor, sqrt(2) x run SD) rounded up to ``grid``; without a run SD, the floor."""
    if not (floor > 0 and grid > 0):
        raise ValueError(f"floor and grid must be positive, got {floor} and {grid}")
    raw = floor if run_sd is None else max(floor, math.sqrt(2.0) * run_sd)
    steps = math.ceil(round(raw / grid, 9))  # round first: 0.03 / 0.005 is 5.999...; it is 6 steps
    return float(f"{steps * grid:.15g}")  # 6 x 0.005 is 0.030000000000000002; 15 digits keep any grid's steps


def min_effect(metric: str, bucket: str = "all", run_sd: float | None = None) -> float:
    """d for ``metric`` in ``bucket`` by the rule, with the pilot's run SD unless ``run_sd`` is given."""
    if metric not in FLOORS:
        raise KeyError(f"no d rule for metric {metric!r}; known: {', '.join(FLOORS)}")
    if bucket not in BUCKETS:
        raise KeyError(f"unknown bucket {bucket!r}; known: {', '.join(BUCKETS)}")
    f = FLOORS[metric]
    sd = PILOT_RUN_SD.get((metric, bucket)) if run_sd is None else run_sd
    return rule_d(f.value, f.grid, sd)


def min_effect_table() -> dict[str, dict[str, float]]:
    """{metric: {bucket: d}} for every metric and bucket, as results files write it."""
    return {m: {b: min_effect(m, b) for b in BUCKETS} for m in FLOORS}


def rule_json() -> dict[str, object]:
    """The rule, its inputs and its output, for a results file: what the page shows as the rule's reasoning."""
    return {"rule": "d = max(floor, sqrt(2) x run SD), rounded up to the grid; sqrt(2) x run SD is the spread of "
                    "a one-run-each difference between two architectures",
            "floors": {m: {"value": f.value, "grid": f.grid, "reason": f.reason} for m, f in FLOORS.items()},
            "run_sd": {f"{m}/{b}": sd for (m, b), sd in PILOT_RUN_SD.items()},
            "run_sd_source": PILOT_SOURCE,
            "d": min_effect_table(),
            "sensitivity": [name for name, _ in SENSITIVITY]}


def sensitivity(low: float, high: float, d: float) -> dict[str, str]:
    """The four-way verdict of one interval at d/2, d and 2d: whether the verdict rests on where d was put."""
    return {name: verdict((low, high), f * d) for name, f in SENSITIVITY}
