"""The image-blind controls table: per model, stage, size bucket and box position, each map metric beside the same
maps scored against mismatched boxes and the spread-matched centre prior, and the gain over each control with its
95% interval (about the architecture with two runs or more, else about these weights)."""

from __future__ import annotations

import numpy as np

from res2net.evaluation.control_scores import CONTROL_METRICS, CONTROLS
from res2net.evaluation.judging import run_matrix
from res2net.metrics import inference as I
from res2net.metrics.boxes import SIZE_BUCKETS
from res2net.metrics.table import rounded as _r

__all__ = ["REGIONS", "region_masks", "control_rows"]

REGIONS = ("all", "centre", "off-centre")


def region_masks(buckets: np.ndarray, centre: np.ndarray) -> dict[tuple[str, str], np.ndarray]:
    """(bucket, region) -> image mask; region 'centre': boxes holding the image centre, 'off-centre' the others."""
    c = np.asarray(centre, dtype=bool)
    out = {}
    for b in (*SIZE_BUCKETS, "all"):
        bm = np.ones(len(buckets), bool) if b == "all" else np.asarray(buckets) == b
        out.update({(b, "all"): bm, (b, "centre"): bm & c, (b, "off-centre"): bm & ~c})
    return out


def _mean(x: np.ndarray, keep: np.ndarray) -> float | None:
    """Mean over runs of each run's mean over its kept images."""
    n = keep.sum(1)
    if (n == 0).any():
        return None
    return _r(float((np.where(keep, x, 0.0).sum(1) / n).mean()))


def _gains(gains: np.ndarray, keep: np.ndarray, labels: np.ndarray) -> list[dict]:
    """(B, R, N) gains -> B 95% intervals {mean, low, high, target, df}; nulls where a class-clustered interval
    cannot be made (fewer than two classes)."""
    target = "architecture" if gains.shape[1] >= 2 else "weights"
    try:
        t = I.t_intervals(np.where(keep, gains, 0.0), labels, target, keep)
    except ValueError:
        return [{"mean": None, "low": None, "high": None, "target": target, "df": None}] * gains.shape[0]
    return [{"mean": _r(float(t.estimate[k])), "low": _r(float(t.low[k])), "high": _r(float(t.high[k])),
             "target": target, "df": round(float(t.df[k]), 2)} for k in range(gains.shape[0])]


def control_rows(arrays: dict[str, np.ndarray], entries: dict, runs: dict[str, list[str]], labels: np.ndarray,
                 buckets: np.ndarray, centre: np.ndarray) -> list[dict]:
    """One row per model, stage with stored controls, bucket, region and control metric."""
    rows = []
    masks = region_masks(buckets, centre)
    for name, rs in runs.items():
        for stage, groups in entries[name]["taps"].items():
            tap = groups["output"]
            if f"{name}/{rs[0]}/{tap}/{CONTROLS[0]}_{CONTROL_METRICS[0]}" not in arrays:
                continue
            for metric in CONTROL_METRICS:
                x = run_matrix(arrays, name, rs, f"{tap}/{metric}")
                ctl = {c: run_matrix(arrays, name, rs, f"{tap}/{c}_{metric}") for c in CONTROLS}
                for (bucket, region), m in masks.items():
                    keep = np.isfinite(x) & np.isfinite(ctl["mismatch"]) & np.isfinite(ctl["spread"]) & m[None]
                    if not keep.any(1).all():
                        continue
                    gains = _gains(np.stack([x - ctl[c] for c in CONTROLS]), np.stack([keep] * len(CONTROLS)),
                                   labels)
                    rows.append({"model": name, "stage": stage, "tap": tap, "bucket": bucket, "region": region,
                                 "metric": metric, "score": _mean(x, keep),
                                 **{c: _mean(ctl[c], keep) for c in CONTROLS},
                                 **{f"gain_over_{c}": g for c, g in zip(CONTROLS, gains, strict=True)},
                                 "n": int(m.sum()), "runs": len(rs)})
    return rows
