"""The images behind a number: per val image, how much a Res2Net gains or loses over the ResNet on one metric.

Reads the per-image scores a results file's ``.npz`` holds (``<model>/<run>/<tap>/<metric>``, ``image_index``,
``uniform/energy``); nothing is recomputed from a model. An image's value for a model is its score averaged over
the model's runs (NaN runs, e.g. an all-zero map's energy, left out); the gain is the Res2Net's minus the ResNet's.
MaxBoxAcc is a hit per threshold: each run scores an image at the threshold that run's best over the bucket.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from res2net.evaluation.summary import size_buckets

__all__ = ["ImageGain", "runs_of", "image_values", "image_buckets", "image_gains"]


@dataclass(frozen=True)
class ImageGain:
    """One val image of a bucket: its row in the score arrays, its index in the val split, both models' values."""

    row: int
    image_index: int
    reference: float
    value: float

    @property
    def gain(self) -> float:
        return self.value - self.reference


def runs_of(scores: Mapping[str, np.ndarray], model: str, tap: str, metric: str) -> list[str]:
    """The run labels (``seed0``…) for which ``scores`` holds ``model``'s ``metric`` at ``tap``, sorted."""
    pattern = re.compile(rf"^{re.escape(model)}/([^/]+)/{re.escape(tap)}/{re.escape(metric)}$")
    return sorted(m.group(1) for k in scores if (m := pattern.match(k)))


def image_buckets(scores: Mapping[str, np.ndarray]) -> np.ndarray:
    """'small', 'medium' or 'large' per row, from the stored box-area fraction (the uniform map's energy)."""
    return size_buckets(np.asarray(scores["uniform/energy"], dtype=np.float64))


def image_values(scores: Mapping[str, np.ndarray], model: str, tap: str, metric: str,
                 rows: np.ndarray | None = None) -> np.ndarray:
    """Per row (of ``rows``, default all), ``model``'s ``metric`` at ``tap`` averaged over its runs (NaN where no run
    has a value). KeyError when the file holds no such score."""
    runs = runs_of(scores, model, tap, metric)
    if not runs:
        raise KeyError(f"no per-image {metric} scores of {model} at {tap}")
    per_run = []
    for run in runs:
        v = np.asarray(scores[f"{model}/{run}/{tap}/{metric}"])
        v = v if rows is None else v[rows]
        if v.ndim == 2:  # hits per threshold: this run's best threshold over the rows
            v = v[:, int(np.argmax(v.mean(0)))]
        per_run.append(v.astype(np.float64))
    stacked = np.stack(per_run)
    with np.errstate(invalid="ignore"):
        counts = np.isfinite(stacked).sum(0)
        total = np.where(np.isfinite(stacked), stacked, 0.0).sum(0)
    return np.where(counts > 0, total / np.maximum(counts, 1), np.nan)


def image_gains(scores: Mapping[str, np.ndarray], model: str, reference: str, tap: str, metric: str,
                bucket: str = "all", reference_tap: str | None = None) -> list[ImageGain]:
    """The bucket's images with both models' values, largest gain first (ties: val order); images where either
    model has no value are left out."""
    rows = np.arange(len(scores["image_index"])) if bucket == "all" else \
        np.flatnonzero(image_buckets(scores) == bucket)
    value = image_values(scores, model, tap, metric, rows)
    ref = image_values(scores, reference, reference_tap or tap, metric, rows)
    ok = np.isfinite(value) & np.isfinite(ref)
    gain = value - ref
    order = [i for i in np.lexsort((rows, -gain)) if ok[i]]
    index = np.asarray(scores["image_index"])
    return [ImageGain(int(rows[i]), int(index[rows[i]]), float(ref[i]), float(value[i])) for i in order]
