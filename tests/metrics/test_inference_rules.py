"""Few-run inference's rules, written down first, then tested on hand-computed cases, simulations with a known
truth, tabulated Student-t values and properties over all inputs (hypothesis).

Rules (from ``res2net/metrics/inference.py``, the README's "How the claims are judged now" and DESIGN.md section 8,
"Inference with few runs").
- Input. Paired differences are (images,), (runs, images) or (batch, runs, images), read in double precision
  whatever their dtype; anything else is refused "paired differences are (images,), (runs, images) or (batch, runs,
  images), got <shape>". ``keep`` is a truth mask (0/1 integers count as False/True) of the same or a broadcastable
  shape; a dropped image's value never enters, so it may be NaN, but a kept NaN or infinity is refused "kept paired
  differences contain NaN or infinite values; apply the flat-map rule first". A run that keeps no image is refused
  "a run keeps no image" (one kept image is enough). Clusters give one label per image: "clusters must give one
  label per image (<N>), got shape <shape>". CR1 needs two classes with a kept image (two are enough): "cluster-
  robust errors need at least two classes with kept images". Functions about one set of runs refuse a batch "one
  set of runs at a time, got a batch of <B>".
- ``cluster_covariance``: theta_r is run r's mean over its kept images; C_rs = G / (G - 1) sum_g E_rg E_sg with
  E_rg the class-g total of (d_ri - theta_r) / n_r (hand case with three runs and two classes below).
- ``satterthwaite_df(v, df)`` = (sum v)^2 / sum(v^2 / df); a zero component drops out; all zero gives infinity,
  quietly; a scalar result is a Python float, a batch (components first) an array, with one df per component
  broadcast over the batch. Negative variances or dfs <= 0 are refused "variances must be >= 0 and dfs > 0, got
  <v> and <df>" (both printed as float arrays). Welch-Satterthwaite's df lies between the smallest component df and
  their sum, and does not change when every variance is scaled alike.
- ``t_intervals``: "weights": variance sum(C) / R^2, df G - 1; "architecture": S^2 / R + b with b the mean
  off-diagonal of C, i.e. (sum C - trace C) / (R (R - 1)), Satterthwaite df from R - 1 and G - 1; one run is
  refused "an interval about the architecture needs at least two runs"; an unknown target "target must be one of
  ('weights', 'architecture'), got <target>". The interval is estimate +- t quantile x se at the level asked (the
  batch records its target and level). With one image per class and one run the weights interval is Student's t
  interval, so it covers at exactly its level (simulation at 99% with 4 df, where z would cover about 94%).
- ``weights_evidence``: "cluster-t" states "cluster-robust t over <G> classes (CR1, df = G - 1)"; "cluster-
  bootstrap" keeps the class bootstrap's samples (seed given, 0 by default, stated in the method "percentile
  bootstrap over <G> classes (seed <s>)"), the mean of per-run means of kept images as estimate and the samples' SD
  (ddof 1) as se; the target is "weights" and runs the number of runs. Any other method: "method must be
  'cluster-t' or 'cluster-bootstrap', got <method>".
- ``architecture_evidence``: method "t over runs, Satterthwaite df (between-run spread + shared image/class
  error)"; with one run: target "architecture", runs 1, the run's mean as estimate, se and df NaN, ``available``
  False and the one-run note; no exception.
- ``evidence`` routes "weights" (with keep and the keyword arguments) and "architecture" (with keep); any other
  target: "target must be one of ('weights', 'architecture'), got <target>".
- ``Evidence``: the interval is at 95% unless asked; a level outside (0, 1) is refused "level must be in (0, 1),
  got <level>"; the interval carries the evidence's method and its own level; a bootstrap interval's ends carry the
  Monte-Carlo error of the (1 - level) / 2 and (1 + level) / 2 sample quantiles. One-sided p-values: with se > 0 the
  Student-t tail of (estimate - value) / se (df 1 is Cauchy, df 2 has a closed form); with se = 0 the answer is
  certain: p_greater(value) is 0 when the estimate is above value, else 1 (and p_less mirrored); from samples,
  (#samples on the null side, the value itself included, + 1) / (B + 1). The two-sided p against 0 is twice the
  smaller one-sided p, capped at 1.
- ``class_bootstrap``: classes drawn with replacement, uniformly from all G classes with a kept image (class 0
  too); a run's resample mean is (kept sum in the drawn classes) / (kept count in the drawn classes), so when every
  kept image of run r has the value c_r every resample is mean_r(c_r); a resample missing every kept image of some
  run is NaN, quietly, with probability (1 - (classes of that run) / G)^G. The default seed is 0; seeds are
  reproducible; resamples and chunk must be >= 1 ("resamples and chunk must be >= 1, got <resamples> and
  <chunk>"); several runs are fine.
- ``quantile_mc_error(samples, q)``: h = sqrt(B q (1 - q)), lo = floor(qB - h) and hi = ceil(qB + h) clipped to
  [0, B - 1]; the error is (v_hi - v_lo) / max(hi - lo, 1) x h on the sorted finite samples in double precision;
  NaN for fewer than two samples; for q = 0 or 1 (h = 0) it is 0, whatever the samples' spread. It scales
  with the samples and ignores a shift.
- ``holm_adjusted``: sorted ascending, min(1, (m - k) p_(k)) made monotone, in double precision; never above 1.
  Uniform null p-values: the family-wise rate of an adjusted p below 0.05 is 1 - (1 - 0.05 / m)^m for independent
  tests, at most 0.05.
- ``holm_family``: a minimum effect that is not positive is refused "claim <name>: the minimum effect must be
  positive, got <d>". Every judgement carries the claim's name, d, p of the decision, p against 0 and its Holm
  adjustment, and the evidence's note. Claims after the first inconclusive one keep their rank but are "not tested"
  (tested False, level NaN, no interval, excludes_zero None). A claim that cannot enter (evidence not available)
  has rank None, level, p_decision, p_zero and p_zero_holm NaN, tested False and still its (unavailable) 95%
  interval. excludes_zero is strict: an interval that ends at 0 does not exclude it.
"""

from __future__ import annotations

import math
import re
import statistics
import warnings

import hypothesis_profiles  # noqa: F401  (example counts: few in CI, more in the mutation run)
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from res2net.metrics import inference as I


def _refused(message: str):
    return pytest.raises(ValueError, match="^" + re.escape(message) + "$")


def _cauchy_sf(t: float) -> float:
    """Student t with 1 df is Cauchy: P(T > t) = 1/2 - atan(t) / pi."""
    return 0.5 - math.atan(t) / math.pi


def _t2_sf(t: float) -> float:
    """Student t with 2 df: P(T > t) = 1/2 - t / (2 sqrt(2 + t^2))."""
    return 0.5 - t / (2 * math.sqrt(2 + t * t))


# Tabulated two-sided critical values t_{0.975, df} and t_{0.995, df}
T975 = {1: 12.706204736174698, 2: 4.302652729911275, 4: 2.7764451051977987}
T995 = {4: 4.604094871415897}

# A hand case with three runs, four images in two classes (two each); G = 2, R = 3.
#   run 0: 1 1 3 3 -> theta 2, E = (-1/2, 1/2);  run 1: 0 2 2 4 -> theta 2, E = (-1/2, 1/2)
#   run 2: 2 3 4 7 -> theta 4, E = (-3/4, 3/4)   (E: class totals of (d - theta) / 4)
#   C = 2 E E^T: C00 = C11 = C01 = 1, C22 = 9/4, C02 = C12 = 3/2; sum C = 49/4, trace 17/4
#   architecture: S^2 = 4/3, S^2 / R = 4/9; b = (49/4 - 17/4) / (3 x 2) = 4/3 (not / (3 / 2)); variance 16/9,
#                 df = (16/9)^2 / ((4/9)^2 / 2 + (4/3)^2 / 1) = 32/19
#   weights: variance (49/4) / 9 = 49/36, df = G - 1 = 1
THREE = np.array([[1, 1, 3, 3], [0, 2, 2, 4], [2, 3, 4, 7]], dtype=float)
THREE_CL = np.array([0, 0, 1, 1])
# the same with a fifth image (class 1) dropped in every run, its value NaN
THREE_NAN = np.c_[THREE, np.full(3, np.nan)]
THREE_NAN_CL = np.array([0, 0, 1, 1, 1])
KEEP5 = np.array([1, 1, 1, 1, 0])  # 0/1 integers: a truth mask


# ------------------------------------------------------------------------------------ inputs and their refusals
def test_three_runs_two_classes_by_hand() -> None:
    theta, cov, g = I.cluster_covariance(THREE, THREE_CL)
    assert g == 2
    assert theta == pytest.approx([2, 2, 4])
    assert cov == pytest.approx(np.array([[1, 1, 1.5], [1, 1, 1.5], [1.5, 1.5, 2.25]]))
    arch = I.t_intervals(THREE, THREE_CL, "architecture", level=0.9)
    assert (arch.target, arch.runs, arch.level) == ("architecture", 3, 0.9)
    assert (arch.estimate[0], arch.se[0], arch.df[0]) == pytest.approx((8 / 3, 4 / 3, 32 / 19))
    w = I.t_intervals(THREE, THREE_CL, "weights")
    assert (w.target, w.level) == ("weights", 0.95)
    assert (w.se[0], w.df[0]) == pytest.approx((7 / 6, 1.0))
    assert (w.low[0], w.high[0]) == pytest.approx((8 / 3 - T975[1] * 7 / 6, 8 / 3 + T975[1] * 7 / 6))


def test_a_dropped_image_never_enters_everywhere_keep_is_taken() -> None:
    """The fifth image (NaN) is dropped by a 0/1 keep: every function gives the four-image hand values."""
    theta, cov, g = I.cluster_covariance(THREE_NAN, THREE_NAN_CL, KEEP5)
    assert g == 2 and theta == pytest.approx([2, 2, 4]) and cov[2, 2] == pytest.approx(2.25)
    t = I.t_intervals(THREE_NAN, THREE_NAN_CL, "architecture", KEEP5)
    assert (t.estimate[0], t.se[0], t.df[0]) == pytest.approx((8 / 3, 4 / 3, 32 / 19))
    arch = I.architecture_evidence(THREE_NAN, THREE_NAN_CL, KEEP5)
    assert (arch.estimate, arch.se, arch.df) == pytest.approx((8 / 3, 4 / 3, 32 / 19))
    assert arch.method == "t over runs, Satterthwaite df (between-run spread + shared image/class error)"
    assert (arch.target, arch.runs, arch.available) == ("architecture", 3, True)
    routed = I.evidence(THREE_NAN, THREE_NAN_CL, "architecture", KEEP5)
    assert (routed.target, routed.estimate, routed.se, routed.df) == pytest.approx(
        ("architecture", 8 / 3, 4 / 3, 32 / 19))
    w = I.weights_evidence(THREE_NAN, THREE_NAN_CL, KEEP5)
    assert (w.target, w.runs, w.estimate, w.se, w.df) == pytest.approx(("weights", 3, 8 / 3, 7 / 6, 1.0))
    assert w.method == "cluster-robust t over 2 classes (CR1, df = G - 1)"
    routed = I.evidence(THREE_NAN, THREE_NAN_CL, "weights", KEEP5)
    assert (routed.se, routed.df) == pytest.approx((7 / 6, 1.0))
    boot = I.weights_evidence(THREE_NAN, THREE_NAN_CL, KEEP5, method="cluster-bootstrap", resamples=300)
    assert (boot.target, boot.runs, boot.estimate) == pytest.approx(("weights", 3, 8 / 3))
    assert boot.method == "percentile bootstrap over 2 classes (seed 0)"
    assert np.isfinite(boot.samples).all() and boot.samples.size == 300
    routed = I.evidence(THREE_NAN, THREE_NAN_CL, "weights", KEEP5, method="cluster-bootstrap", resamples=64, seed=3)
    assert routed.resamples == 64 and routed.method == "percentile bootstrap over 2 classes (seed 3)"
    assert np.isfinite(I.class_bootstrap(THREE_NAN, THREE_NAN_CL, KEEP5, resamples=50)).all()


def test_differences_are_read_in_double_precision() -> None:
    # in float32, 2^24 + 1 + 1 + 1 is 2^24: the mean would be 4194304, not 4194304.75
    d = np.array([[2.0**24, 1, 1, 1]], dtype=np.float32)
    theta, _, _ = I.cluster_covariance(d, THREE_CL)
    assert theta[0] == 4194304.75


def test_input_refusals_in_their_words() -> None:
    with _refused("paired differences are (images,), (runs, images) or (batch, runs, images), got (1, 1, 2, 4)"):
        I.cluster_covariance(np.zeros((1, 1, 2, 4)), THREE_CL)
    nan = THREE.copy()
    nan[1, 2] = np.inf
    with _refused("kept paired differences contain NaN or infinite values; apply the flat-map rule first"):
        I.cluster_covariance(nan, THREE_CL)
    keep = np.ones(THREE.shape, dtype=bool)
    keep[1] = False  # the other runs keep every image
    with _refused("a run keeps no image"):
        I.cluster_covariance(THREE, THREE_CL, keep)
    with _refused("clusters must give one label per image (4), got shape (3,)"):
        I.cluster_covariance(THREE, np.array([0, 0, 1]))
    with _refused("cluster-robust errors need at least two classes with kept images"):
        I.cluster_covariance(THREE, np.zeros(4, int))
    batch = np.stack([THREE, THREE])  # (2, 3, 4)
    for f in (I.cluster_covariance, I.architecture_evidence, I.class_bootstrap):
        with _refused("one set of runs at a time, got a batch of 2"):
            f(batch, THREE_CL)
    with _refused("target must be one of ('weights', 'architecture'), got 'runs'"):
        I.t_intervals(THREE, THREE_CL, "runs")
    with _refused("target must be one of ('weights', 'architecture'), got 'both'"):
        I.evidence(THREE, THREE_CL, "both")
    with _refused("an interval about the architecture needs at least two runs"):
        I.t_intervals(THREE[:1], THREE_CL, "architecture")
    with _refused("method must be 'cluster-t' or 'cluster-bootstrap', got 'bca'"):
        I.weights_evidence(THREE, THREE_CL, method="bca")


def test_one_kept_image_in_a_run_is_enough() -> None:
    keep = np.ones(THREE.shape, dtype=bool)
    keep[1] = [False, False, True, False]  # run 1 keeps only its third image (value 2)
    theta, _, g = I.cluster_covariance(THREE, THREE_CL, keep)
    assert g == 2 and theta == pytest.approx([2, 2, 4])


def test_one_run_evidence_about_the_architecture_in_full() -> None:
    ev = I.architecture_evidence(THREE[2], THREE_CL)
    assert (ev.target, ev.runs, ev.estimate, ev.available, ev.note) == ("architecture", 1, 4.0, False, I.ONE_RUN_NOTE)
    assert ev.available is False and math.isnan(ev.se) and math.isnan(ev.df)
    assert ev.method == "t over runs, Satterthwaite df (between-run spread + shared image/class error)"
    routed = I.evidence(THREE[2], THREE_CL, "architecture")
    assert (routed.target, routed.runs, routed.available) == ("architecture", 1, False)


# ----------------------------------------------------------------------------------------------- Satterthwaite
def test_satterthwaite_batches_scalars_and_zeros() -> None:
    # components first: column 0: 2^2 / (1 + 1/4) = 16/5; column 1: 1 / (1/4) = 4; column 2: 4 / 4 = 1
    out = I.satterthwaite_df(np.array([[1.0, 0.0, 2.0], [1.0, 1.0, 0.0]]), [1, 4])
    assert out == pytest.approx([16 / 5, 4.0, 1.0])
    one = I.satterthwaite_df([1.0, 1.0], [1, 4])
    assert type(one) is float and one == pytest.approx(16 / 5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # quietly
        assert I.satterthwaite_df([0.0, 0.0], [2, 3]) == math.inf
    # integers are read in double precision: (6e9)^2 does not fit an int64
    assert I.satterthwaite_df([3_000_000_000, 3_000_000_000], [1, 1]) == pytest.approx(2.0)


def test_satterthwaite_refusals_in_their_words() -> None:
    with _refused("variances must be >= 0 and dfs > 0, got [-1.  2.] and [1. 1.]"):
        I.satterthwaite_df([-1, 2], [1, 1])
    with _refused("variances must be >= 0 and dfs > 0, got [1. 2.] and [1. 0.]"):
        I.satterthwaite_df([1.0, 2.0], [1, 0])


@given(st.lists(st.tuples(st.floats(1e-6, 1e3), st.floats(0.5, 1e3)), min_size=1, max_size=5),
       st.floats(1e-3, 1e3))
def test_satterthwaite_df_lies_between_the_smallest_df_and_their_sum(parts, scale) -> None:
    v, f = [p[0] for p in parts], [p[1] for p in parts]
    df = I.satterthwaite_df(v, f)
    assert min(f) * (1 - 1e-9) <= df <= sum(f) * (1 + 1e-9)
    assert I.satterthwaite_df([x * scale for x in v], f) == pytest.approx(df, rel=1e-9)
    assert I.satterthwaite_df(v + [0.0], f + [1.0]) == pytest.approx(df, rel=1e-12)  # a zero drops out


# ------------------------------------------------------------------------------------ intervals and p-values
def _t_ev(est: float, se: float, df: float, **kw: object) -> I.Evidence:
    return I.Evidence("architecture", 3, "hand", est, se, df, **kw)


def _boot_ev(samples: np.ndarray, est: float = 0.0, note: str = "") -> I.Evidence:
    return I.Evidence("weights", 1, "given draws", est, float(np.std(samples)), math.nan,
                      np.asarray(samples, dtype=np.float64), note=note)


def test_interval_level_default_and_refusals() -> None:
    ev = _t_ev(1.0, 0.5, 2.0)
    iv = ev.interval()
    assert iv.level == 0.95 and iv.method == "hand"
    assert (iv.low, iv.high) == pytest.approx((1 - T975[2] * 0.5, 1 + T975[2] * 0.5))
    assert ev.interval(0.9).level == 0.9
    for bad in (0, 1, 1.5, -0.2):
        with _refused(f"level must be in (0, 1), got {bad}"):
            ev.interval(bad)


def test_bootstrap_ends_carry_the_mc_error_of_their_own_quantile() -> None:
    """Samples i^2, i = 0..999, level 0.9: the ends are the 5% and 95% quantiles. h = sqrt(1000 x 0.05 x 0.95);
    5%: ranks floor(50 - h) = 43 and ceil(50 + h) = 57, error (57^2 - 43^2) / 14 x h = 100 h;
    95%: ranks 943 and 957, error 1900 h."""
    ev = _boot_ev(np.arange(1000.0) ** 2)
    iv = ev.interval(0.9)
    h = math.sqrt(47.5)
    assert iv.mc_error_low == pytest.approx(100 * h, rel=1e-6)
    assert iv.mc_error_high == pytest.approx(1900 * h, rel=1e-6)
    assert iv.resamples == 1000 and iv.method == "given draws" and iv.level == 0.9


def test_analytic_p_values_are_student_t_tails() -> None:
    ev = _t_ev(3.0, 2.0, 1.0)  # (3 - 1) / 2 = 1 on a Cauchy
    assert ev.p_greater(1.0) == pytest.approx(_cauchy_sf(1.0)) == pytest.approx(0.25)
    assert ev.p_less(1.0) == pytest.approx(0.75)
    assert ev.p_less(5.0) == pytest.approx(_cauchy_sf(1.0))  # (3 - 5) / 2 = -1
    unit = _t_ev(1.0, 1.0, 1.0)  # se = 1 is no special case
    assert unit.p_greater(0.0) == pytest.approx(0.25) and unit.p_less(0.0) == pytest.approx(0.75)
    two = _t_ev(0.5, 0.5, 2.0)  # (0.5 + 0.5) / 0.5 = 2 on t(2)
    assert two.p_greater(-0.5) == pytest.approx(_t2_sf(2.0)) == pytest.approx(0.5 - 1 / math.sqrt(6))
    assert two.p_less(1.5) == pytest.approx(_t2_sf(2.0))
    assert two.p_zero() == pytest.approx(2 * _t2_sf(1.0))


def test_with_no_error_the_answer_is_certain() -> None:
    ev = _t_ev(0.3, 0.0, 5.0)
    assert (ev.p_greater(0.1), ev.p_greater(0.3), ev.p_greater(0.5)) == (0.0, 1.0, 1.0)
    assert (ev.p_less(0.5), ev.p_less(0.3), ev.p_less(0.1)) == (0.0, 1.0, 1.0)
    assert _t_ev(0.0, 0.0, 5.0).p_zero() == 1.0  # capped at 1, not 2


def test_bootstrap_p_values_count_the_value_itself() -> None:
    ev = _boot_ev(np.arange(10.0))  # 0..9
    assert ev.p_greater(3.0) == pytest.approx(5 / 11)  # #{<= 3} = 4
    assert ev.p_less(3.0) == pytest.approx(8 / 11)  # #{>= 3} = 7
    assert _boot_ev(np.zeros(50)).p_zero() == 1.0


@given(st.floats(-5, 5), st.floats(0.01, 5), st.floats(1, 200), st.floats(-5, 5), st.floats(0.5, 0.99))
def test_analytic_p_values_and_intervals_agree(est, se, df, value, level) -> None:
    """p_greater + p_less = 1; p_zero in [0, 1]; the interval is symmetric about the estimate, and the value at its
    upper end has p_less = (1 - level) / 2."""
    ev = _t_ev(est, se, df)
    assert ev.p_greater(value) + ev.p_less(value) == pytest.approx(1.0)
    assert 0.0 <= ev.p_zero() <= 1.0
    iv = ev.interval(level)
    assert iv.high - iv.estimate == pytest.approx(iv.estimate - iv.low)
    assert ev.p_less(iv.high) == pytest.approx((1 - level) / 2, rel=1e-6)


def test_weights_interval_covers_at_its_level() -> None:
    """One run, one image per class, G = 5: CR1 is Student's s^2 / G and df = 4, so the 99% interval covers 99% of
    datasets (20,000 datasets, SE 0.0007); with z's 2.576 instead of t(4)'s 4.604 it would cover about 94%."""
    rng = np.random.default_rng(17)
    d = 0.3 + rng.normal(0, 1, (20_000, 1, 5))
    t = I.t_intervals(d, np.arange(5), "weights", level=0.99)
    assert (t.df == 4).all()
    assert (t.high - t.estimate) / t.se == pytest.approx(np.full(20_000, T995[4]))
    cover = float(((t.low <= 0.3) & (0.3 <= t.high)).mean())
    assert 0.987 <= cover <= 0.993, cover


# ------------------------------------------------------------------------------------------- class bootstrap
def test_bootstrap_means_are_kept_sums_over_kept_counts() -> None:
    """Run 0 keeps images valued 1, run 1 images valued 3, each drops some (NaN) that the other keeps: every
    resample is (1 + 3) / 2 exactly, whatever classes were drawn."""
    labels = np.repeat(np.arange(4), 3)
    d = np.where(np.arange(12) % 2 == 0, 1.0, np.nan)[None].repeat(2, 0)
    d[1] = np.where(np.arange(12) % 3 == 0, 3.0, np.nan)
    keep = np.isfinite(d)
    for resamples, chunk in ((1, 1), (5, 2), (300, I.CHUNK)):
        out = I.class_bootstrap(d, labels, keep, resamples=resamples, chunk=chunk)
        assert out.shape == (resamples,)
        assert (out == 2.0).all()


def test_every_class_is_drawn_with_equal_chance() -> None:
    """Two classes of one image (0 and 1): a resample is 0, 1/2 or 1 with chances 1/4, 1/2, 1/4."""
    out = I.class_bootstrap(np.array([0.0, 1.0]), np.array([0, 1]), resamples=8000, seed=4)
    assert set(np.unique(out)) <= {0.0, 0.5, 1.0}
    shares = [float((out == v).mean()) for v in (0.0, 0.5, 1.0)]
    assert shares == pytest.approx([0.25, 0.5, 0.25], abs=0.02)


def test_a_resample_without_a_runs_kept_images_is_nan_quietly() -> None:
    """Run 0 keeps only class 0's image; with G = 2 draws, class 0 is missed with chance (1/2)^2 = 1/4."""
    d = np.array([[1.0, np.nan], [2.0, 4.0]])
    keep = np.isfinite(d)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = I.class_bootstrap(d, np.array([0, 1]), keep, resamples=8000, seed=2)
    assert float(np.isnan(out).mean()) == pytest.approx(0.25, abs=0.02)
    assert set(np.unique(out[np.isfinite(out)])) <= {(1 + 2) / 2, (1 + 3) / 2}


def test_bootstrap_seeds_and_refusals() -> None:
    d, cl = THREE[0], THREE_CL
    default = I.class_bootstrap(d, cl, resamples=40)
    np.testing.assert_array_equal(default, I.class_bootstrap(d, cl, resamples=40, seed=0))
    assert not np.array_equal(default, I.class_bootstrap(d, cl, resamples=40, seed=1))
    a = I.weights_evidence(THREE, cl, method="cluster-bootstrap", resamples=40, seed=5)
    b = I.weights_evidence(THREE, cl, method="cluster-bootstrap", resamples=40, seed=5)
    c = I.weights_evidence(THREE, cl, method="cluster-bootstrap", resamples=40, seed=6)
    np.testing.assert_array_equal(a.samples, b.samples)  # reproducible
    assert not np.array_equal(a.samples, c.samples)  # and the seed is the one given
    assert I.weights_evidence(THREE, cl, method="cluster-bootstrap", resamples=40).method.endswith("(seed 0)")
    with _refused("resamples and chunk must be >= 1, got 0 and 2048"):
        I.class_bootstrap(d, cl, resamples=0)
    with _refused("resamples and chunk must be >= 1, got 10 and 0"):
        I.class_bootstrap(d, cl, resamples=10, chunk=0)


def test_bootstrap_se_is_the_sample_sd() -> None:
    ev = I.weights_evidence(THREE, THREE_CL, method="cluster-bootstrap", resamples=7, seed=1)
    assert ev.se == pytest.approx(statistics.stdev(ev.samples.tolist()))  # ddof 1
    assert ev.estimate == pytest.approx(8 / 3) and math.isnan(ev.df)


# ------------------------------------------------------------------------------------------ Monte-Carlo error
def test_quantile_mc_error_by_hand() -> None:
    # B = 2, q = 1/2: h = sqrt(1/2), ranks floor(1 - h) = 0 and min(ceil(1 + h), 1) = 1: (1 - 0) / 1 x h
    assert I.quantile_mc_error(np.array([0.0, 1.0]), 0.5) == pytest.approx(math.sqrt(0.5))
    assert math.isnan(I.quantile_mc_error(np.array([3.0]), 0.5))
    assert math.isnan(I.quantile_mc_error(np.array([3.0, np.nan]), 0.5))  # one finite sample
    sq = np.arange(10.0) ** 2
    # q = 0.99, B = 10: h = sqrt(0.099); ranks floor(9.9 - h) = 9 and ceil(9.9 + h) = 11 -> 9: no gap, error 0
    assert I.quantile_mc_error(sq, 0.99) == 0.0
    sq40 = np.arange(40.0) ** 2
    # q = 0.975, B = 40: h = sqrt(0.975); ranks floor(39 - h) = 38 and ceil(39 + h) = 40 -> 39: (39^2 - 38^2) x h
    assert I.quantile_mc_error(sq40, 0.975) == pytest.approx(77 * math.sqrt(0.975))
    assert I.quantile_mc_error(sq40, 1.0) == 0.0  # h = 0 at the largest sample
    # and at the smallest: no gap is taken, so not even a spread past the largest double (inf x 0) enters
    assert I.quantile_mc_error(np.array([-1e308, 1e308]), 0.0) == 0.0
    # double precision: in float32, 1 - 1e-9 is 1. B = 4, q = 1/2: h = 1, ranks 1 and 3: (v3 - v1) / 2
    s = np.array([0.0, 1e-9, 0.5, 1.0], dtype=np.float32)
    assert I.quantile_mc_error(s, 0.5) == (1.0 - float(np.float32(1e-9))) / 2


@given(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=60), st.floats(0.01, 0.99), st.floats(0.1, 10),
       st.floats(-1e3, 1e3))
def test_quantile_mc_error_scales_with_the_samples_and_ignores_a_shift(v, q, c, shift) -> None:
    x = np.asarray(v)
    e = I.quantile_mc_error(x, q)
    assert e >= 0
    assert I.quantile_mc_error(c * x, q) == pytest.approx(c * e, rel=1e-9, abs=1e-9)
    assert I.quantile_mc_error(x + shift, q) == pytest.approx(e, rel=1e-6, abs=1e-6 * (1 + abs(shift)))


# -------------------------------------------------------------------------------------------------- Holm
def test_holm_adjusted_caps_at_one_in_double_precision() -> None:
    assert I.holm_adjusted([0.6, 0.7]) == [1.0, 1.0]
    p32 = np.array([0.1, 0.2, 0.3], dtype=np.float32)
    exact = [3 * float(p32[0]), 2 * float(p32[1]), float(p32[2])]
    assert I.holm_adjusted(p32) == [exact[0], max(exact[:2]), max(exact)]


def test_holm_family_wise_rate_on_null_p_values() -> None:
    rng = np.random.default_rng(8)
    p = rng.random((20_000, 3))
    rejected = np.array([min(I.holm_adjusted(row)) < 0.05 for row in p])
    truth = 1 - (1 - 0.05 / 3) ** 3  # 0.0492: any rejection iff the smallest p is below 0.05 / 3
    assert float(rejected.mean()) == pytest.approx(truth, abs=0.005)


@given(st.lists(st.floats(0, 1), min_size=1, max_size=8))
def test_holm_adjusted_is_monotone_above_raw_and_at_most_one(ps) -> None:
    adj = I.holm_adjusted(ps)
    m = len(ps)
    for p, a in zip(ps, adj, strict=True):
        assert p <= a <= 1.0
    order = np.argsort(ps, kind="stable")
    assert all(adj[order[j]] <= adj[order[j + 1]] for j in range(m - 1))
    assert adj[order[0]] == min(1.0, m * min(ps))


def test_holm_family_refuses_a_minimum_effect_that_is_not_positive() -> None:
    with _refused("claim 'a': the minimum effect must be positive, got 0"):
        I.holm_family([("a", _t_ev(0.1, 0.01, 30.0), 0)])


def test_every_judgement_carries_its_claim() -> None:
    """Cauchy evidence (df 1) 0.10 +- 0.01 against d = 0.02: p of "above d" is P(T > 8) = 1/2 - atan(8) / pi."""
    out = I.holm_family([("big", _t_ev(0.10, 0.01, 1.0, note="a note"), 0.02)])[0]
    assert (out.name, out.min_effect, out.note, out.rank, out.tested) == ("big", 0.02, "a note", 0, True)
    assert out.p_decision == pytest.approx(_cauchy_sf(8.0))
    assert out.p_zero == pytest.approx(2 * _cauchy_sf(10.0)) == pytest.approx(out.p_zero_holm)


def test_claims_after_the_stop_keep_their_rank_but_are_not_tested() -> None:
    first = _t_ev(0.02, 0.01, 30.0, note="first")  # straddles d: inconclusive, ranked first (p smallest)
    later = [_t_ev(0.0, 0.5, 30.0, note="n1"), _t_ev(0.0, 0.6, 30.0, note="n2")]
    out = I.holm_family([("a", later[0], 0.01), ("first", first, 0.01), ("b", later[1], 0.01)])
    assert out[1].verdict == "inconclusive" and out[1].rank == 0
    for j, name, rank, ev in ((out[0], "a", 1, later[0]), (out[2], "b", 2, later[1])):
        assert (j.name, j.verdict, j.rank, j.min_effect, j.note) == (name, I.NOT_TESTED, rank, 0.01, ev.note)
        assert j.tested is False and math.isnan(j.level) and j.interval is None and j.excludes_zero is None
        assert j.p_decision == pytest.approx(ev.p_decision(0.01)) and j.p_zero == pytest.approx(1.0)


def test_a_claim_that_cannot_enter_in_full() -> None:
    lonely = I.architecture_evidence(THREE[:1], THREE_CL)
    out = I.holm_family([("one run", lonely, 0.05)])[0]
    assert (out.name, out.verdict, out.tested, out.rank, out.min_effect) == ("one run", I.NOT_TESTED, False, None,
                                                                             0.05)
    assert out.tested is False and out.interval is None and out.excludes_zero is None
    for x in (out.level, out.p_decision, out.p_zero, out.p_zero_holm):
        assert math.isnan(x)
    assert out.interval95.available is False and out.interval95.level == 0.95 and out.note == I.ONE_RUN_NOTE


def test_excludes_zero_is_strict() -> None:
    """From the given draws, a single claim is judged at 95%: ends at the 2.5% and 97.5% sample quantiles."""
    at_zero_low = np.r_[np.zeros(10), np.arange(1.0, 91.0)]  # 2.5% quantile is 0
    at_zero_high = -at_zero_low
    straddles = np.linspace(-0.5, 0.5, 101)  # ends -0.475 and 0.475: contains 0
    for samples, est in ((at_zero_low, 40.0), (at_zero_high, -40.0), (straddles, 0.0)):
        j = I.holm_family([("c", _boot_ev(samples, est), 0.01)], min_resamples=10)[0]
        assert j.tested and j.excludes_zero is False, (j.interval.low, j.interval.high)
    j = I.holm_family([("c", _boot_ev(straddles + 1.0, 1.0), 0.01)], min_resamples=10)[0]
    assert j.excludes_zero is True
