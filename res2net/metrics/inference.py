"""Few-run inference: intervals that say what they are about, and one Holm family over the confirmatory claims.

The rule. Every interval names its target.
- **"weights"**: the trained weights at hand are fixed; classes (and the images within them) are the random part.
  The estimate is the mean over runs of each run's mean paired difference; its variance is the cluster-robust
  (CR1, classes as clusters) variance of that mean, with G - 1 degrees of freedom (Cameron, Gelbach & Miller
  2008), or a class-clustered percentile bootstrap. This is the only interval a single released checkpoint has.
- **"architecture"**: training runs are the top level (Satterthwaite 1946). With theta_r the run-r estimate,
  Var(mean theta) = S^2 / R + b, where S^2 is the spread of the per-run estimates (it already holds each run's own
  image noise and the run x image churn, once) and b is the image/class error every run shares because all runs
  score the same images (the mean cross-run cluster covariance; the spread cannot see it). The interval is
  t with Satterthwaite degrees of freedom from R - 1 (for S^2) and G - 1 (for b). A bootstrap over three runs
  has 10 distinct resamples, sees 2/3 of the run variance and never reaches past the most extreme run: it is not
  used for the run level (simulated with R = 3 and run variance dominating, it covers about 75% at nominal
  95%; this interval about 94%, Satterthwaite's df being slightly optimistic when the run spread happens to be
  small). With one run the architecture interval does not exist: the result says so (``available`` False, a
  ``note``), it does not raise.
- **Resamples sized to the tail.** Bootstrap intervals judged at Holm levels use at least ``MIN_RESAMPLES``
  class resamples, drawn in chunks, and carry the Monte-Carlo error of each end (binomial order statistics).
- **One Holm family.** Claims are ranked by the p-value of their best-supported four-way decision and the k-th of
  m is judged on its 1 - 2 alpha / (m - k) interval (as ``statistics.holm_verdicts``); the first claim that stays
  inconclusive stops the procedure and every later claim is "not tested", never "judged at 95%". Beside each
  verdict: the two-sided test against 0 (raw and Holm-adjusted p) and whether the interval used excludes 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from res2net.metrics import statistics as S

__all__ = ["TARGETS", "MIN_RESAMPLES", "NOT_TESTED", "Interval", "Evidence", "Judgement", "cluster_covariance",
           "satterthwaite_df", "weights_evidence", "architecture_evidence", "evidence", "quantile_mc_error",
           "class_bootstrap", "holm_family", "holm_adjusted"]

TARGETS = ("weights", "architecture")
MIN_RESAMPLES = 20_000  # a 0.125% tail (Holm, 20 claims) of 20,000 resamples is 25 draws; of 2,000 it is 2.5
CHUNK = 2048  # resamples drawn and reduced at a time: memory stays (CHUNK, classes) whatever the count
NOT_TESTED = "not tested"
ONE_RUN_NOTE = ("one run: there is no interval about the architecture (runs are its random part); "
                "the weights interval is about these weights only")


def _student_t():  # noqa: ANN202
    """scipy's Student t distribution, imported on first use: scipy.stats takes over a second to import, and the
    processes that never judge a claim (every rank but the first, the dashboard's start) need not pay it."""
    from scipy import stats

    return stats.t


@dataclass(frozen=True)
class Interval:
    """An interval with everything a reader needs to judge it: what it is about, how it was made, how exact."""

    target: str
    runs: int
    df: float  # degrees of freedom of the t quantile; NaN for a percentile bootstrap
    method: str
    level: float
    estimate: float
    low: float
    high: float
    p_value: float  # two-sided, against 0
    resamples: int = 0  # 0 for an analytic interval
    mc_error_low: float = 0.0  # Monte-Carlo standard error of each end (0 for analytic)
    mc_error_high: float = 0.0
    available: bool = True
    note: str = ""


@dataclass(frozen=True, eq=False)
class Evidence:
    """What intervals at any level are computed from: a t form (estimate, se, df) or bootstrap ``samples``."""

    target: str
    runs: int
    method: str
    estimate: float
    se: float
    df: float
    samples: np.ndarray | None = field(default=None, repr=False)
    available: bool = True
    note: str = ""

    @property
    def resamples(self) -> int:
        return 0 if self.samples is None else int(self.samples.size)

    def interval(self, level: float = 0.95) -> Interval:
        """The two-sided interval at ``level``: t quantile, or the percentile interval with each end's MC error."""
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}")
        base = dict(target=self.target, runs=self.runs, df=self.df, method=self.method, level=level,
                    estimate=self.estimate, p_value=self.p_zero(), resamples=self.resamples,
                    available=self.available, note=self.note)
        if not self.available:
            return Interval(low=math.nan, high=math.nan, **base)
        a = (1 - level) / 2
        if self.samples is None:
            half = float(_t_half_width(self.se, self.df, level))
            return Interval(low=self.estimate - half, high=self.estimate + half, **base)
        ci = S.percentile_ci(self.samples, self.estimate, level)
        return Interval(low=ci.low, high=ci.high, mc_error_low=quantile_mc_error(self.samples, a),
                        mc_error_high=quantile_mc_error(self.samples, 1 - a), **base)

    def p_greater(self, value: float) -> float:
        """One-sided p-value of H0: theta <= value (small when the estimate lies well above ``value``)."""
        if not self.available:
            return math.nan
        if self.samples is None:
            if self.se == 0:
                return 0.0 if self.estimate > value else 1.0
            return float(_student_t().sf((self.estimate - value) / self.se, self.df))
        return float((np.count_nonzero(self.samples <= value) + 1) / (self.samples.size + 1))

    def p_less(self, value: float) -> float:
        """One-sided p-value of H0: theta >= value."""
        if not self.available:
            return math.nan
        if self.samples is None:
            if self.se == 0:
                return 0.0 if self.estimate < value else 1.0
            return float(_student_t().cdf((self.estimate - value) / self.se, self.df))
        return float((np.count_nonzero(self.samples >= value) + 1) / (self.samples.size + 1))

    def p_zero(self) -> float:
        """Two-sided p-value against 0."""
        if not self.available:
            return math.nan
        return min(1.0, 2 * min(self.p_greater(0.0), self.p_less(0.0)))

    def p_decision(self, d: float) -> float:
        """p-value of the best-supported four-way decision: above +d, below -d, or inside +-d (two one-sided)."""
        inside = max(self.p_less(d), self.p_greater(-d))
        return min(self.p_greater(d), self.p_less(-d), inside)


# ------------------------------------------------------------------------------------------------ the variances
def _t_half_width(se: float | np.ndarray, df: float | np.ndarray, level: float) -> float | np.ndarray:
    """Half-width of the two-sided t interval at ``level``: never z, whose tails are far too thin at df = 2."""
    return _student_t().ppf(0.5 + level / 2, df) * se


def _as_runs(diffs: np.ndarray, keep: np.ndarray | None, clusters: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B, R, N) differences, (B, R, N) keep mask and (N,) cluster labels, validated."""
    d = np.asarray(diffs, dtype=np.float64)
    d = d.reshape((1,) * (3 - d.ndim) + d.shape) if d.ndim < 3 else d
    if d.ndim != 3:
        raise ValueError(f"paired differences are (images,), (runs, images) or (batch, runs, images), got {d.shape}")
    k = np.ones(d.shape, dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    k = np.broadcast_to(k.reshape((1,) * (3 - k.ndim) + k.shape), d.shape)
    if not np.isfinite(d[k]).all():
        raise ValueError("kept paired differences contain NaN or infinite values; apply the flat-map rule first")
    if (k.sum(-1) == 0).any():
        raise ValueError("a run keeps no image")
    cl = np.asarray(clusters)
    if cl.shape != (d.shape[-1],):
        raise ValueError(f"clusters must give one label per image ({d.shape[-1]}), got shape {cl.shape}")
    return d, k, cl


def _run_moments(d: np.ndarray, k: np.ndarray, cl: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """theta (B, R), CR1 covariance (B, R, R) and G (B,) of validated (B, R, N) differences."""
    nb, nr, _ = d.shape
    _, inverse = np.unique(cl, return_inverse=True)
    ncl = int(inverse.max()) + 1
    n = k.sum(-1)
    theta = np.where(k, d, 0.0).sum(-1) / n
    infl = np.where(k, d - theta[..., None], 0.0) / n[..., None]
    rows = np.arange(nb * nr)[:, None] * ncl + inverse[None, :]
    totals = np.bincount(rows.ravel(), weights=infl.reshape(nb * nr, -1).ravel(),
                         minlength=nb * nr * ncl).reshape(nb, nr, ncl)
    present = np.bincount((np.arange(nb)[:, None] * ncl + inverse[None, :]).ravel(),
                          weights=k.any(1).ravel().astype(np.float64), minlength=nb * ncl).reshape(nb, ncl)
    g = (present > 0).sum(1)
    if (g < 2).any():
        raise ValueError("cluster-robust errors need at least two classes with kept images")
    cov = (g / (g - 1))[:, None, None] * totals @ totals.transpose(0, 2, 1)
    return theta, cov, g


def cluster_covariance(diffs: np.ndarray, clusters: np.ndarray, keep: np.ndarray | None = None
                       ) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-run mean paired difference theta (R,), the CR1 cluster-robust covariance of those means across runs
    (R, R) with classes as clusters, and the number of clusters G (classes with a kept image).

    Run r's mean over its kept images has influence e_ri = (d_ri - theta_r) / n_r; with E_rg the sum of e over
    class g, C_rs = G / (G - 1) * sum_g E_rg E_sg. The diagonal is each run's own squared standard error; the
    off-diagonal is the error the runs share through scoring the same images.
    """
    d, k, cl = _as_runs(diffs, keep, clusters)
    if d.shape[0] != 1:
        raise ValueError(f"one set of runs at a time, got a batch of {d.shape[0]}")
    theta, cov, g = _run_moments(d, k, cl)
    return theta[0], cov[0], int(g[0])


def satterthwaite_df(variances: Sequence[float] | np.ndarray, dfs: Sequence[float] | np.ndarray) -> float | np.ndarray:
    """Welch-Satterthwaite degrees of freedom of a sum of independent variance estimates v_j with df_j:
    (sum v_j)^2 / sum(v_j^2 / df_j); terms that are 0 drop out. Components on the first axis, batch after it."""
    v, f = np.asarray(variances, dtype=np.float64), np.asarray(dfs, dtype=np.float64)
    f = np.broadcast_to(f.reshape(f.shape + (1,) * (v.ndim - f.ndim)), v.shape)
    if (v < 0).any() or (f <= 0).any():
        raise ValueError(f"variances must be >= 0 and dfs > 0, got {v} and {f}")
    den = (np.where(v > 0, v, 0.0) ** 2 / f).sum(0)
    with np.errstate(divide="ignore"):
        out = np.where(den > 0, v.sum(0) ** 2 / np.where(den > 0, den, 1.0), math.inf)
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True, eq=False)
class TBatch:
    """t intervals of a batch of claims (or simulated datasets): arrays (B,) each."""

    target: str
    runs: int
    level: float
    estimate: np.ndarray
    se: np.ndarray
    df: np.ndarray
    low: np.ndarray
    high: np.ndarray


def t_intervals(diffs: np.ndarray, clusters: np.ndarray, target: str, keep: np.ndarray | None = None,
                level: float = 0.95) -> TBatch:
    """Analytic intervals of (B, R, N) paired differences, all at once (same images and classes).

    ``weights``: mean of per-run means, SE from the CR1 covariance summed over runs, df = G - 1.
    ``architecture``: the same mean; variance S^2 / R + b, b the mean off-diagonal of the covariance (clipped at
    0), Satterthwaite df from R - 1 and G - 1. Needs R >= 2 (``architecture_evidence`` says so for one run).
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {target!r}")
    d, k, cl = _as_runs(diffs, keep, clusters)
    theta, cov, g = _run_moments(d, k, cl)
    r = d.shape[1]
    est = theta.mean(1)
    if target == "weights":
        var, df = np.maximum(cov.sum((1, 2)) / r**2, 0.0), (g - 1.0)
    else:
        if r < 2:
            raise ValueError("an interval about the architecture needs at least two runs")
        between = theta.var(1, ddof=1) / r
        shared = np.maximum((cov.sum((1, 2)) - np.trace(cov, axis1=1, axis2=2)) / (r * (r - 1)), 0.0)
        var = between + shared
        df = satterthwaite_df(np.stack([between, shared]), np.stack([np.full_like(between, r - 1.0), g - 1.0]))
    se = np.sqrt(var)
    half = _t_half_width(se, df, level)
    return TBatch(target, r, level, est, se, np.asarray(df, dtype=np.float64), est - half, est + half)


def weights_evidence(diffs: np.ndarray, clusters: np.ndarray, keep: np.ndarray | None = None,
                     method: str = "cluster-t", resamples: int = MIN_RESAMPLES, seed: int = 0) -> Evidence:
    """Evidence about these weights: the mean over runs of each run's mean paired difference, with classes and
    images as the random part: CR1 cluster-robust t with G - 1 df (``cluster-t``), or a class bootstrap."""
    if method == "cluster-t":
        t = t_intervals(diffs, clusters, "weights", keep)
        return Evidence("weights", t.runs, f"cluster-robust t over {int(t.df[0]) + 1} classes (CR1, df = G - 1)",
                        float(t.estimate[0]), float(t.se[0]), float(t.df[0]))
    if method == "cluster-bootstrap":
        d, k, cl = _as_runs(diffs, keep, clusters)
        theta, _, g = _run_moments(d, k, cl)
        samples = class_bootstrap(diffs, clusters, keep, resamples, seed)
        return Evidence("weights", d.shape[1], f"percentile bootstrap over {int(g[0])} classes (seed {seed})",
                        float(theta[0].mean()), float(np.nanstd(samples, ddof=1)), math.nan, samples)
    raise ValueError(f"method must be 'cluster-t' or 'cluster-bootstrap', got {method!r}")


def architecture_evidence(diffs: np.ndarray, clusters: np.ndarray, keep: np.ndarray | None = None) -> Evidence:
    """Evidence about the architecture: runs are the top level (``t_intervals``). One run: not available, with
    a note saying the weights interval is the only one; no exception."""
    d, k, cl = _as_runs(diffs, keep, clusters)
    if d.shape[0] != 1:
        raise ValueError(f"one set of runs at a time, got a batch of {d.shape[0]}")
    method = "t over runs, Satterthwaite df (between-run spread + shared image/class error)"
    if d.shape[1] < 2:
        theta, _, _ = _run_moments(d, k, cl)
        return Evidence("architecture", 1, method, float(theta[0, 0]), math.nan, math.nan, available=False,
                        note=ONE_RUN_NOTE)
    t = t_intervals(d, cl, "architecture", k)
    return Evidence("architecture", t.runs, method, float(t.estimate[0]), float(t.se[0]), float(t.df[0]))


def evidence(diffs: np.ndarray, clusters: np.ndarray, target: str, keep: np.ndarray | None = None,
             **kwargs: object) -> Evidence:
    """``weights_evidence`` or ``architecture_evidence`` by ``target``."""
    if target == "weights":
        return weights_evidence(diffs, clusters, keep, **kwargs)
    if target == "architecture":
        return architecture_evidence(diffs, clusters, keep)
    raise ValueError(f"target must be one of {TARGETS}, got {target!r}")


# --------------------------------------------------------------------------------------------- the bootstrap
def class_bootstrap(diffs: np.ndarray, clusters: np.ndarray, keep: np.ndarray | None = None,
                    resamples: int = MIN_RESAMPLES, seed: int = 0, chunk: int = CHUNK) -> np.ndarray:
    """(resamples,) bootstrap samples of the mean over runs of per-run mean differences, classes drawn with
    replacement (the images of a drawn class come with it, so image noise enters through class totals).

    Runs are fixed (this is about these weights). Drawn ``chunk`` resamples at a time; the samples do not depend
    on ``chunk``. A resample whose draw keeps no image of some run gives NaN (dropped by the interval).
    """
    d, k, cl = _as_runs(diffs, keep, clusters)
    if d.shape[0] != 1:
        raise ValueError(f"one set of runs at a time, got a batch of {d.shape[0]}")
    d, k = d[0], k[0]
    if resamples < 1 or chunk < 1:
        raise ValueError(f"resamples and chunk must be >= 1, got {resamples} and {chunk}")
    used = k.any(0)
    d, k = d[:, used], k[:, used]
    labels, inverse = np.unique(cl[used], return_inverse=True)
    g = labels.size
    sums = np.stack([np.bincount(inverse, weights=np.where(k[r], d[r], 0.0), minlength=g) for r in range(len(d))])
    counts = np.stack([np.bincount(inverse, weights=k[r].astype(np.float64), minlength=g) for r in range(len(d))])
    rng = np.random.default_rng(seed)
    out = np.empty(resamples)
    for start in range(0, resamples, chunk):
        b = min(chunk, resamples - start)
        draws = rng.integers(0, g, size=(b, g))
        times = np.bincount((draws + g * np.arange(b)[:, None]).ravel(), minlength=b * g).reshape(b, g)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:start + b] = (times @ sums.T / (times @ counts.T)).mean(1)
    return out


def quantile_mc_error(samples: np.ndarray, q: float) -> float:
    """Monte-Carlo standard error of the ``q`` sample quantile of ``samples`` (binomial order statistics).

    The rank of the true q-quantile among B draws is Binomial(B, q), with SD h = sqrt(B q (1 - q)); half the gap
    between the order statistics h ranks either side of qB estimates the quantile's SD (shrinks like 1/sqrt(B)).
    """
    v = np.sort(np.asarray(samples, dtype=np.float64)[np.isfinite(samples)])
    b = v.size
    if b < 2:
        return math.nan
    h = math.sqrt(b * q * (1 - q))
    lo = min(max(int(math.floor(q * b - h)), 0), b - 1)
    hi = min(max(int(math.ceil(q * b + h)), 0), b - 1)
    return float(v[hi] - v[lo]) / max(hi - lo, 1) * h


# ----------------------------------------------------------------------------------------------- Holm family
@dataclass(frozen=True)
class Judgement:
    """One claim of a Holm family: its four-way verdict (or "not tested") with the test against 0 beside it."""

    name: str
    verdict: str
    tested: bool
    rank: int | None  # position in the step-down order (0: judged first); None when it could not enter
    level: float  # the level it was judged at; NaN when not tested
    interval: Interval | None  # at ``level``; None when not tested
    interval95: Interval  # the unadjusted 95% interval, shown for every claim (never a verdict on its own)
    min_effect: float
    p_decision: float
    p_zero: float  # two-sided against 0
    p_zero_holm: float  # Holm-adjusted over the family's tests against 0
    excludes_zero: bool | None  # the interval used excludes 0; None when not tested
    note: str = ""


def holm_adjusted(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values: sorted ascending, p_(k) (m - k) made monotone, capped at 1."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    out = np.empty(m)
    running = 0.0
    for k, i in enumerate(np.argsort(p, kind="stable")):
        running = max(running, min(1.0, (m - k) * p[i]))
        out[i] = running
    return out.tolist()


def holm_family(claims: Sequence[tuple[str, Evidence, float]], alpha: float = 0.025,
                min_resamples: int = MIN_RESAMPLES) -> list[Judgement]:
    """Judge every confirmatory claim (name, evidence, d) in one Holm family; results in input order.

    Ranked by the p-value of the best-supported decision, the k-th of m is judged on its 1 - 2 alpha / (m - k)
    interval with ``statistics.verdict``; the first inconclusive one ends the step-down and the rest are "not
    tested". A claim whose evidence is not available (one run, architecture target) cannot enter: "not tested",
    with its note. Bootstrap evidence needs ``min_resamples`` samples: a Holm tail of fewer is not resolved.
    """
    for name, ev, d in claims:
        if ev.samples is not None and ev.samples.size < min_resamples:
            raise ValueError(f"claim {name!r}: {ev.samples.size} resamples; Holm levels need >= {min_resamples}")
        if not d > 0:
            raise ValueError(f"claim {name!r}: the minimum effect must be positive, got {d}")
    live = [i for i, (_, ev, _) in enumerate(claims) if ev.available]
    m = len(live)
    p_dec = {i: claims[i][1].p_decision(claims[i][2]) for i in live}
    p_zero_holm = dict(zip(live, holm_adjusted([claims[i][1].p_zero() for i in live]), strict=True))
    order = sorted(live, key=lambda i: (p_dec[i], i))
    out: list[Judgement | None] = [None] * len(claims)
    stopped = False
    for k, i in enumerate(order):
        name, ev, d = claims[i]
        common = dict(name=name, rank=k, interval95=ev.interval(0.95), min_effect=d, p_decision=p_dec[i],
                      p_zero=ev.p_zero(), p_zero_holm=p_zero_holm[i], note=ev.note)
        if stopped:
            out[i] = Judgement(verdict=NOT_TESTED, tested=False, level=math.nan, interval=None, excludes_zero=None,
                               **common)
            continue
        level = 1 - 2 * alpha / (m - k)
        iv = ev.interval(level)
        v = S.verdict((iv.low, iv.high), d)
        stopped = v == S.VERDICTS[3]
        out[i] = Judgement(verdict=v, tested=True, level=level, interval=iv, excludes_zero=bool(iv.low > 0 or
                           iv.high < 0), **common)
    for i, (name, ev, d) in enumerate(claims):
        if out[i] is None:
            out[i] = Judgement(name=name, verdict=NOT_TESTED, tested=False, rank=None, level=math.nan,
                               interval=None, interval95=ev.interval(0.95), min_effect=d, p_decision=math.nan,
                               p_zero=math.nan, p_zero_holm=math.nan, excludes_zero=None, note=ev.note)
    return out  # type: ignore[return-value]
