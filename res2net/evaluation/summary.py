"""Summary: from merged per-image rows to the results tables, without running any model.

Rows become per-run arrays (``<model>/<run>/<tap>/<metric>``, the images every run scored, in the rows' order) beside
the image-blind baselines; the tables are per-model metrics with intervals, the baselines, paired comparisons with
the baseline model and accuracy by object size. Intervals are hierarchical bootstraps (runs, then classes, then
images); each comparison's samples are kept for the claims.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from res2net.evaluation.control_scores import CONTROL_METRICS, CONTROLS
from res2net.evaluation.protocol import (
    BOOT_COMPARE,
    BOOT_SUMMARY,
    BRANCH_METRICS,
    OUTPUT_METRICS,
    SENSITIVITY_PLACEMENTS,
    STAGES,
)
from res2net.metrics import boxes as L
from res2net.metrics import statistics as S
from res2net.metrics import table as T
from res2net.metrics.table import rounded as _r

__all__ = ["ResampleWeights", "summarise_rows", "summarise", "run_arrays", "image_blind_scores", "size_buckets",
           "parse_boxes", "stored"]

Paired = dict[tuple[str, str, str, str, str], tuple[float, np.ndarray, int]]


def stored(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The per-image values as they are stored (float16 scores, booleans), so summaries use exactly those."""
    return {k: (v.astype(np.float16) if v.dtype.kind == "f" else v) for k, v in arrays.items()}


def parse_boxes(text: str) -> list[tuple[int, int, int, int]]:
    """The ``boxes`` column of a row ("x0 y0 x1 y1;..." at the model's input size) as a list of boxes."""
    return [tuple(int(v) for v in part.split()) for part in text.split(";") if part]


# ------------------------------------------------------------------------------------------------ rows -> arrays
def run_arrays(rows: dict[str, np.ndarray], entries: dict, runs: dict[str, list[str]]
               ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per run, ``<model>/<run>/correct`` and ``<model>/<run>/<tap>/<metric>`` over the images every run scored, in
    the order of the first run's rows (MaxBoxAcc as hits per threshold); and the first run's row positions of them.
    ``runs``: each model's run labels."""
    jobs = [(n, r) for n, rs in runs.items() for r in rs]
    scored = rows["skipped"] == ""

    def rows_of(name: str, run: str) -> np.ndarray:
        return np.flatnonzero((rows["model"] == name) & (rows["run"] == run))

    common = set.intersection(*(set(rows["image_id"][rows_of(n, r)][scored[rows_of(n, r)]]) for n, r in jobs))
    first = rows_of(*jobs[0])
    sel0 = first[[i in common for i in rows["image_id"][first]]]
    ids = rows["image_id"][sel0]
    arrays: dict[str, np.ndarray] = {}
    for name, run in jobs:
        mine = rows_of(name, run)
        pos = {i: k for k, i in enumerate(rows["image_id"][mine])}
        sel = mine[[pos[i] for i in ids]]
        arrays[f"{name}/{run}/correct"] = rows["correct"][sel]
        for stage, groups in entries[name]["taps"].items():
            for group, tap in groups.items():
                for metric in OUTPUT_METRICS if group == "output" else BRANCH_METRICS:
                    m = T.metric(metric)
                    v = rows[f"{stage}/{group}/{metric + '_iou' if m.best_threshold else metric}"][sel]
                    # a column another model lacks was merged as float (NaN there): hits go back to booleans
                    arrays[f"{name}/{run}/{tap}/{metric}"] = (v >= L.BOXACC_IOU if m.best_threshold
                                                              else v.astype(bool) if m.hit else v)
                for control in CONTROLS if group == "output" else ():  # image-blind controls, where scored
                    for metric in CONTROL_METRICS:
                        col = f"{stage}/{group}/{control}_{metric}"
                        if col in rows:
                            arrays[f"{name}/{run}/{tap}/{control}_{metric}"] = rows[col][sel].astype(np.float64)
                for rule in SENSITIVITY_PLACEMENTS if group == "output" else ():  # the maps placed other ways
                    for metric in [*CONTROL_METRICS, *(f"{c}_{m}" for c in CONTROLS for m in CONTROL_METRICS)]:
                        col = f"{stage}/{group}/{rule}/{metric}"
                        if col in rows:
                            arrays[f"{name}/{run}/{tap}/{rule}/{metric}"] = rows[col][sel].astype(np.float64)
    return arrays, sel0


def image_blind_scores(boxes: Sequence[Sequence[tuple[int, int, int, int]]], box_area: np.ndarray, side: int,
                       sigma: float | None = None) -> tuple[dict[str, np.ndarray], list[float]]:
    """The baselines that ignore the image, per image: the uniform map's energy (the boxes' area fraction) and every
    score of the centred Gaussian prior. Its width is ``sigma`` (fitted on other boxes, e.g. a train split), or
    cross-fitted: each half of the images (even / odd position) gets the width fitted on the other half's boxes.
    A single image has no other half: both widths are then fitted on its own boxes."""
    if sigma is not None:
        sigmas, fold = [sigma], np.zeros(len(boxes), dtype=int)
    else:
        fold = np.arange(len(boxes)) % 2
        every = np.array([b for bs in boxes for b in bs])
        sigmas = [L.fit_centre_prior_sigma(np.array([b for i in np.flatnonzero(fold != h) for b in boxes[i]]), side)
                  if (fold != h).any() else L.fit_centre_prior_sigma(every, side) for h in (0, 1)]
    out = {}
    for k, v in L.prior_scores(boxes, side, sigmas, fold).items():
        out["prior/maxboxacc" if k == "maxboxacc_iou" else f"prior/{k}"] = v >= L.BOXACC_IOU if k == "maxboxacc_iou" \
            else v
    out["uniform/energy"] = np.asarray(box_area, dtype=np.float64)
    return out, sigmas


def summarise_rows(rows: dict[str, np.ndarray], classes: list[str], entries: dict, runs: dict[str, list[str]],
                   baseline: str | None, side: int, sigma: float | None = None
                   ) -> tuple[dict, Paired, dict[str, np.ndarray], np.ndarray, list[float]]:
    """Results tables from merged per-image rows, over the images every run scored, without running any model (new
    buckets or comparisons start here). The prior's width is ``sigma``, or cross-fitted on the scored boxes.

    Returns (tables, the paired samples the claims judge, the stored per-run arrays with the baselines' scores,
    the first run's row positions of the images, the prior's widths)."""
    arrays, sel0 = run_arrays(rows, entries, runs)
    boxes = [parse_boxes(t) for t in rows["boxes"][sel0]]
    area = rows["box_area"][sel0].astype(np.float64)
    prior, sigmas = image_blind_scores(boxes, area, side, sigma)
    arrays = stored({**arrays, **prior})
    cls = {w: k for k, w in enumerate(classes)}
    labels = np.array([cls[c] for c in rows["class"][sel0]])
    res, paired = summarise(arrays, entries, runs, size_buckets(area), labels, baseline)
    res["images"] = len(sel0)
    return res, paired, arrays, sel0, sigmas


# -------------------------------------------------------------------------------------------------- statistics
def _stat(metric: str) -> Callable[[list[np.ndarray]], np.ndarray]:
    """Weighted means -> the metric's value per resample (MaxBoxAcc: best threshold; top-1 in points)."""
    m = T.metric(metric)
    if m.best_threshold:
        return lambda ms: ms[0].max(1)
    if m.scale != 1.0:
        return lambda ms: m.scale * ms[0]
    return lambda ms: ms[0]


def _diff_stat(metric: str) -> Callable[[list[np.ndarray]], np.ndarray]:
    one = _stat(metric)
    return lambda ms: one([ms[0]]) - one([ms[1]])


def _interval(est: float, samples: np.ndarray) -> dict:
    c = S.percentile_ci(samples, est, 0.95)
    return {"mean": _r(c.estimate), "low": _r(c.low), "high": _r(c.high)}


class ResampleWeights:
    """Bootstrap resample weights (runs, images) per image subset, drawn once and reused by every metric of it."""

    def __init__(self, runs: int, labels: np.ndarray, n: int) -> None:
        self.runs, self.labels, self.n = runs, labels, n
        self.cache: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def get(self, key: str, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(selected images, run weights, image weights) of the subset ``mask`` named ``key``."""
        if key not in self.cache:
            sel = np.flatnonzero(mask)
            rw, iw = S.bootstrap_weights(self.runs, self.labels[sel], self.n, seed=0)
            self.cache[key] = (sel, rw, iw)
        return self.cache[key]


def _estimate(arrays: list[np.ndarray], stat: Callable, keep: np.ndarray | None, w: tuple) -> tuple[float, np.ndarray]:
    sel, rw, iw = w
    xs = [a[:, sel] for a in arrays]
    k = None if keep is None else keep[:, sel]
    r, m = xs[0].shape[:2]
    est = float(np.asarray(stat(S.weighted_means(xs, np.ones((1, r)), np.ones((1, m)), k)))[0])
    return est, np.asarray(stat(S.weighted_means(xs, rw, iw, k)), dtype=np.float64)


def _kept(mask: np.ndarray, keep: np.ndarray | None) -> int:
    """Images a row rests on: the bucket's, or (for a subset such as 'both correct') the mean kept per run."""
    return int(mask.sum()) if keep is None else int(round(float(keep[:, mask].sum(1).mean())))


def _metric_arrays(arrays: dict, name: str, runs: list[str], tap: str, metric: str) -> np.ndarray:
    key = "correct" if metric == "top1" else f"{tap}/{metric}"
    return np.stack([arrays[f"{name}/{r}/{key}"].astype(np.float64) for r in runs])


# ------------------------------------------------------------------------------------------------------ tables
def summarise(arrays: dict, entries: dict, runs: dict[str, list[str]], buckets: np.ndarray, labels: np.ndarray,
              baseline: str | None) -> tuple[dict, Paired]:
    """Tables: per-model metrics with intervals, baselines, paired comparisons and accuracy by object size.

    ``runs``: each model's run labels (runs pair up by position: the k-th run of each model). Also returns every
    paired comparison's (estimate, bootstrap samples, images) keyed by (model, stage, bucket, subset, metric),
    top-1 under stage "logits", for the claims. Comparisons are to ``baseline`` when it is among the models.
    """
    names = list(runs)
    count = len(runs[names[0]])
    if any(len(r) != count for r in runs.values()):
        counts = ", ".join(f"{n}: {len(r)}" for n, r in runs.items())
        raise ValueError(f"every model needs the same number of runs to pair them by position, got {counts}")
    wsum, wcmp = ResampleWeights(count, labels, BOOT_SUMMARY), ResampleWeights(count, labels, BOOT_COMPARE)
    masks = {b: (buckets == b) if b != "all" else np.ones(len(buckets), bool) for b in (*L.SIZE_BUCKETS, "all")}
    loc_rows, cmp_rows, acc_rows = [], [], []
    paired: Paired = {}
    baselines = {}
    for b, m in masks.items():
        bl = {"images": int(m.sum()), "uniform_energy": _r(arrays["uniform/energy"][m].astype(np.float64).mean())}
        for k in OUTPUT_METRICS:
            v = arrays[f"prior/{k}"][m].astype(np.float64)
            bl[f"prior_{k}"] = _r(v.mean(0).max() if T.metric(k).best_threshold else v.mean())
        baselines[b] = bl
    for name in names:
        e = entries[name]
        correct = _metric_arrays(arrays, name, runs[name], "", "top1")
        est, smp = _estimate([correct], _stat("top1"), None, wsum.get("all", masks["all"]))
        e["top1"] = _interval(est, smp)
        for b, m in masks.items():
            est, smp = _estimate([correct], _stat("top1"), None, wsum.get(b, m))
            acc_rows.append({"model": name, "bucket": b, "kind": "top1", **_interval(est, smp), "n": int(m.sum()),
                             "runs": count})
        for stage, groups in e["taps"].items():
            for group, tap in groups.items():
                metrics = OUTPUT_METRICS if group == "output" else BRANCH_METRICS
                for b, m in masks.items():
                    for subset in ("all", "correct"):
                        if subset == "correct" and group != "output":
                            continue
                        keep = correct.astype(bool) if subset == "correct" else None
                        for metric in metrics:
                            x = _metric_arrays(arrays, name, runs[name], tap, metric)
                            est, smp = _estimate([x], _stat(metric), keep, wsum.get(b, m))
                            loc_rows.append({"model": name, "stage": stage, "tap": tap, "group": group,
                                             "subset": subset, "bucket": b, "metric": metric, **_interval(est, smp),
                                             "n": _kept(m, keep), "runs": count})
    base = baseline if baseline in names else None
    for name in names:
        if base is None or name == base:
            continue
        ca = _metric_arrays(arrays, name, runs[name], "", "top1")
        cb = _metric_arrays(arrays, base, runs[base], "", "top1")
        for b, m in masks.items():
            est, smp = _estimate([ca, cb], _diff_stat("top1"), None, wcmp.get(b, m))
            paired[(name, "logits", b, "all", "top1")] = (est, smp, int(m.sum()))
            acc_rows.append({"model": name, "bucket": b, "kind": f"top1 difference to {base}",
                             **_interval(est, smp), "n": int(m.sum()), "runs": count})
        both = (ca * cb).astype(bool)
        for stage in STAGES:
            ta = entries[name]["taps"].get(stage, {}).get("output")
            tb = entries[base]["taps"].get(stage, {}).get("output")
            if ta is None or tb is None:
                continue
            for b, m in masks.items():
                for subset, keep in (("all", None), ("both correct", both)):
                    for metric in OUTPUT_METRICS:
                        xa = _metric_arrays(arrays, name, runs[name], ta, metric)
                        xb = _metric_arrays(arrays, base, runs[base], tb, metric)
                        est, smp = _estimate([xa, xb], _diff_stat(metric), keep, wcmp.get(b, m))
                        paired[(name, stage, b, subset, metric)] = (est, smp, _kept(m, keep))
                        c = S.percentile_ci(smp, est, 0.95)
                        cmp_rows.append({"model": name, "baseline": base, "stage": stage, "subset": subset,
                                         "bucket": b, "metric": metric, "diff": _r(est), "low": _r(c.low),
                                         "high": _r(c.high), "n": _kept(m, keep), "runs": count})
    return {"models": entries, "baselines": baselines, "localisation": loc_rows, "comparisons": cmp_rows,
            "accuracy_by_size": acc_rows, "baseline": base}, paired


def size_buckets(box_area: np.ndarray) -> np.ndarray:
    """'small', 'medium' or 'large' per image from its boxes' area fraction (``res2net.metrics.boxes``)."""
    area = np.asarray(box_area, dtype=np.float64)
    return np.where(area < L.SMALL_BELOW, "small", np.where(area >= L.LARGE_FROM, "large", "medium"))
