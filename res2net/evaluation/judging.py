"""Judging claims from per-image rows: every claim is a (runs x images) array of paired differences, judged about a
stated target (``metrics.inference``), in one Holm family with the test against 0 beside each verdict, d from
``metrics.effect_size``'s rule per metric and bucket, and the whole family rejudged at d/2 and 2d.

The confirmatory target is the architecture (runs as the top level: t with Satterthwaite df) whenever there are
two runs or more; the interval about these weights (a class bootstrap of >= 20,000 resamples, with the Monte-Carlo
error of each end) is written beside it. With one run only the weights target exists, and each claim says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from res2net.metrics import effect_size as E
from res2net.metrics import inference as I
from res2net.metrics import statistics as S
from res2net.metrics.table import rounded as _r

__all__ = ["ALPHA", "SATURATED_AT", "Pending", "run_matrix", "claim_evidence", "judge", "interval_json", "sig"]

ALPHA = 0.025  # per side: the k-th of m confirmatory claims is judged on its 1 - 0.05 / (m - k) interval
SATURATED_AT = 0.99  # a control scoring this much leaves no room above it: the metric is not confirmatory
SEED = 0


def sig(x: float | None, digits: int = 3) -> float | None:
    """``x`` to ``digits`` significant figures (None for None, NaN or infinity): p-values and MC errors."""
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else _r(x)


@dataclass
class Pending:
    """A claim before judging: what it states (``fields``, written as they are) and its paired differences."""

    fields: dict
    diffs: np.ndarray  # (runs, images): per run, Res2Net minus baseline (or the gain difference) per image
    keep: np.ndarray  # (runs, images) bool: the images each run's mean uses
    clusters: np.ndarray  # (images,) class labels: the cluster of the image/class level
    d: float
    confirmatory: bool


def run_matrix(arrays: dict[str, np.ndarray], name: str, runs: Sequence[str], key: str) -> np.ndarray:
    """(runs, images) float64 of ``<name>/<run>/<key>`` (booleans as 0/1, NaN kept)."""
    return np.stack([np.asarray(arrays[f"{name}/{r}/{key}"]).astype(np.float64) for r in runs])


def claim_evidence(diffs: np.ndarray, keep: np.ndarray, clusters: np.ndarray
                   ) -> tuple[I.Evidence, I.Evidence]:
    """(evidence the verdict uses, evidence about these weights): the architecture target with two runs or more,
    else the weights target for both (its note says why)."""
    weights = I.weights_evidence(diffs, clusters, keep, method="cluster-bootstrap", resamples=I.MIN_RESAMPLES,
                                 seed=SEED)
    if diffs.shape[0] < 2:
        return replace(weights, note=I.ONE_RUN_NOTE), weights
    return I.architecture_evidence(diffs, clusters, keep), weights


def interval_json(iv: I.Interval) -> dict:
    """An ``inference.Interval`` as the results file writes it (rounded; NaN as null)."""
    return {"target": iv.target, "runs": iv.runs, "df": None if not math.isfinite(iv.df) else round(iv.df, 2),
            "method": iv.method, "level": round(iv.level, 6), "estimate": _num(iv.estimate), "low": _num(iv.low),
            "high": _num(iv.high), "p_zero": sig(iv.p_value), "resamples": iv.resamples,
            "mc_error_low": sig(iv.mc_error_low), "mc_error_high": sig(iv.mc_error_high), "note": iv.note}


def _family_level(m: int, rank: int | None) -> float:
    return 0.95 if rank is None else 1 - 2 * ALPHA / (m - rank)


def judge(pending: Sequence[Pending]) -> list[dict]:
    """Every claim with its interval, target, df, method, level, resamples, Monte-Carlo errors, verdict, test
    against 0 and sensitivity; the confirmatory ones judged as one Holm family (in the order given)."""
    evid = [claim_evidence(p.diffs, p.keep, p.clusters) for p in pending]
    conf = [i for i, p in enumerate(pending) if p.confirmatory]
    family = [(pending[i].fields["id"], evid[i][0], pending[i].d) for i in conf]
    judged = dict(zip(conf, I.holm_family(family, ALPHA), strict=True))
    rejudged = {name: dict(zip(conf, I.holm_family([(n, ev, f * d) for n, ev, d in family], ALPHA), strict=True))
                for name, f in E.SENSITIVITY if f != 1.0}
    m = sum(1 for i in conf if evid[i][0].available)
    out = []
    for i, p in enumerate(pending):
        ev, wev = evid[i]
        iv95 = ev.interval(0.95)
        c = dict(p.fields)
        if i in judged:
            j = judged[i]
            level = j.level if j.tested else _family_level(m, j.rank) if j.rank is not None else 0.95
            iv = j.interval
            sens = {"d": j.verdict, **{name: r[i].verdict for name, r in rejudged.items()}}
            c.update(verdict=j.verdict, tested=j.tested, holm_rank=j.rank, p_zero_holm=sig(j.p_zero_holm),
                     excludes_zero=j.excludes_zero)
        else:
            level, iv = 0.95, iv95
            sens = E.sensitivity(iv95.low, iv95.high, p.d)
            c.update(verdict=S.verdict((iv95.low, iv95.high), p.d), tested=False, holm_rank=None,
                     p_zero_holm=None, excludes_zero=bool(iv95.low > 0 or iv95.high < 0))
        w = wev.interval(level)
        c.update(estimate=_num(ev.estimate), low=None if iv is None else _num(iv.low),
                 high=None if iv is None else _num(iv.high), level=round(float(level), 6), low95=_num(iv95.low),
                 high95=_num(iv95.high), min_effect=p.d, runs=ev.runs, target=ev.target,
                 df=None if not math.isfinite(ev.df) else round(ev.df, 2), method=ev.method,
                 resamples=ev.resamples, mc_error_low=sig((iv or iv95).mc_error_low),
                 mc_error_high=sig((iv or iv95).mc_error_high), p_zero=sig(ev.p_zero()),
                 sensitivity={"d/2": sens["d/2"], "d": sens["d"], "2d": sens["2d"]}, weights=interval_json(w),
                 note="; ".join(x for x in (c.get("note", ""), ev.note) if x))
        out.append(c)
    return out
