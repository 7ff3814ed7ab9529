"""The statistics' rules, each written down first (docstring), then tested against a hand-computed value or a
simulation with known truth: interval levels, how a drawn class contributes its images, Holm's p-value, empty
buckets, defaults and the messages of refused input."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from res2net.metrics import statistics as S


def _binom_quantile(n: int, q: float) -> int:
    """Smallest k with P(Binomial(n, 1/2) <= k) >= q (exact, from the binomial coefficients)."""
    total = 0.0
    for k in range(n + 1):
        total += math.comb(n, k) / 2**n
        if total >= q:
            return k
    return n


@pytest.mark.parametrize("level", [0.95, 0.9, 0.8])
def test_bootstrap_interval_is_at_the_level_it_is_called(level: float) -> None:
    """Rule: ``bootstrap_ci(ci=c)`` is the central c interval of the resampled means. For 50 zeros and 50 ones a
    resample's mean is Binomial(100, 1/2) / 100, so its ends are that distribution's (1 -+ c) / 2 quantiles."""
    est, lo, hi = S.bootstrap_ci([0.0, 1.0] * 50, n=20000, seed=0, ci=level)
    a = (1 - level) / 2
    assert est == 0.5
    assert lo == pytest.approx(_binom_quantile(100, a) / 100, abs=0.0051)
    assert hi == pytest.approx(_binom_quantile(100, 1 - a) / 100, abs=0.0051)


def test_percentile_interval_ends_are_the_quantiles_of_its_level() -> None:
    """Rule: ``percentile_ci(samples, est, c)`` keeps ``est`` and takes the (1 -+ c) / 2 quantiles of the finite
    samples; NaN samples are ignored; the default level is 95%."""
    samples = np.arange(1001, dtype=np.float64)  # the q quantile is 1000 q exactly
    assert S.percentile_ci(samples, 7.0, 0.9) == pytest.approx((7.0, 50.0, 950.0))
    assert S.percentile_ci(samples, 7.0) == pytest.approx((7.0, 25.0, 975.0))
    with_nan = np.concatenate([samples, [np.nan] * 500])
    assert S.percentile_ci(with_nan, 7.0, 0.8) == pytest.approx((7.0, 100.0, 900.0))


def test_percentile_interval_of_one_or_no_finite_sample() -> None:
    """Rule: one finite sample is an interval of zero width at it; none gives the estimate with NaN ends."""
    assert S.percentile_ci(np.array([np.nan, 0.25]), 0.5) == (0.5, 0.25, 0.25)
    est, lo, hi = S.percentile_ci(np.array([np.nan, np.inf]), 0.5)
    assert isinstance(est, float) and est == 0.5 and math.isnan(lo) and math.isnan(hi)


def test_low_precision_inputs_are_summarised_in_double_precision() -> None:
    """Rule: scores are stored as float16, but means and quantiles are computed in float64 (no float16 rounding)."""
    v16 = (np.arange(1, 301) / 7.0).astype(np.float16)
    v64 = v16.astype(np.float64)
    assert S.bootstrap_ci(v16, n=50) == S.bootstrap_ci(v64, n=50)
    assert S.bootstrap_ci(v16, n=50).estimate == v64.mean()
    assert S.percentile_ci(v16, 0.0, 0.9) == S.percentile_ci(v64, 0.0, 0.9)
    assert S.percentile_ci(v16, 0.0, 0.9).low == pytest.approx(np.quantile(v64, 0.05), rel=1e-12)


def test_bootstrap_resamples_every_item_and_flattens_its_input() -> None:
    """Rule: every item can be drawn (the interval of two distinct values reaches below and above the mean), and a
    2-D input is the same as its flattened values."""
    est, lo, hi = S.bootstrap_ci([0.0, 1.0], n=400, seed=0)
    assert lo == 0.0 and hi == 1.0 and est == 0.5
    grid = np.array([[0.1, 0.7], [0.3, 0.2]])
    assert S.bootstrap_ci(grid, n=100, seed=2) == S.bootstrap_ci(grid.ravel(), n=100, seed=2)


def test_a_single_resample_is_allowed() -> None:
    """Rule: n = 1 resample is valid (an interval of zero width at that resample's mean)."""
    est, lo, hi = S.bootstrap_ci([1.0, 2.0, 3.0], n=1, seed=0)
    assert lo == hi and 1.0 <= lo <= 3.0


@pytest.mark.parametrize("kwargs, message", [
    ({"ci": 0.0}, "ci must be in (0, 1), got 0.0"), ({"ci": 1.0}, "ci must be in (0, 1), got 1.0"),
    ({"ci": 1.5}, "ci must be in (0, 1), got 1.5"), ({"n": 0}, "n must be >= 1, got 0"),
])
def test_bootstrap_refuses_a_level_outside_0_1_and_no_resamples(kwargs: dict, message: str) -> None:
    """Rule: a level must lie strictly between 0 and 1, and at least one resample is drawn; the message says which."""
    with pytest.raises(ValueError) as err:
        S.bootstrap_ci([1.0, 2.0], **kwargs)
    assert str(err.value) == message


def test_refusal_messages_name_the_problem() -> None:
    """Rule: refused input is reported in a full sentence naming what is wrong (never an empty message)."""
    cases = [
        (lambda: S.bootstrap_ci([]), "bootstrap_ci needs at least one value"),
        (lambda: S.hierarchical_bootstrap([], [0]), "hierarchical_bootstrap needs at least one array"),
        (lambda: S.hierarchical_bootstrap([np.zeros((1, 2))], [0, 1, 2]),
         "clusters must give one label per image (2), got shape (3,)"),
        (lambda: S.hierarchical_bootstrap([np.zeros((1, 2))] * 3, [0, 1]),
         "pass a statistic for more than two arrays"),
        (lambda: S.weighted_means([np.zeros((1, 2)), np.zeros((1, 3))], np.ones((1, 1)), np.ones((1, 2))),
         "arrays must share (runs, images) = (1, 2), got (1, 3)"),
        (lambda: S.weighted_means([np.zeros((1, 2))], np.ones((1, 1)), np.ones((1, 2)), np.ones((2, 2))),
         "mask must be (runs, images) = (1, 2), got (2, 2)"),
        (lambda: S.verdict((0.1, 0.2, 0.3, 0.4), 0.1), "diff_ci is (low, high) or (estimate, low, high), got "
                                                      "(0.1, 0.2, 0.3, 0.4)"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError) as err:
            call()
        assert str(err.value) == message


def test_defaults_are_the_documented_resample_counts_and_seed() -> None:
    """Rule: intervals default to 1000 resamples (plain, paired) or 2000 (hierarchical), seed 0, level 95%."""
    v = np.linspace(0, 1, 37) ** 2
    assert S.bootstrap_ci(v) == S.bootstrap_ci(v, n=1000, seed=0, ci=0.95)
    assert S.paired_diff_ci(v, v[::-1]) == S.paired_diff_ci(v, v[::-1], n=1000, seed=0, ci=0.95)
    labels = np.arange(37) % 5
    for got, want in zip(S.bootstrap_weights(2, labels), S.bootstrap_weights(2, labels, n=2000, seed=0), strict=True):
        assert np.array_equal(got, want)
    x = np.stack([v, v * 2])
    est, smp = S.hierarchical_bootstrap([x], labels)
    est2, smp2 = S.hierarchical_bootstrap([x], labels, n=2000, seed=0)
    assert est == est2 and np.array_equal(smp, smp2)


def test_the_same_seed_gives_the_same_draws() -> None:
    """Rule: every interval is reproducible: the same seed gives the same resamples (rerunning changes nothing)."""
    labels = np.arange(30) % 4
    a, b = S.bootstrap_weights(3, labels, n=50, seed=7), S.bootstrap_weights(3, labels, n=50, seed=7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    v = np.linspace(0, 1, 30)
    assert S.paired_diff_ci(v, v ** 2, n=100, seed=5) == S.paired_diff_ci(v, v ** 2, n=100, seed=5)


def test_paired_interval_is_the_interval_of_the_differences() -> None:
    """Rule: the paired interval is the bootstrap interval of mean(a - b) over items, with the caller's n, seed and
    level; booleans (correct or not) and unsigned scores are differenced as numbers, never wrapped around."""
    rng = np.random.default_rng(4)
    a, b = rng.random(40), rng.random(40)
    assert S.paired_diff_ci(a, b, n=300, seed=9, ci=0.8) == S.bootstrap_ci(a - b, n=300, seed=9, ci=0.8)
    ca, cb = np.array([True, False, False, True]), np.array([False, True, False, True])
    assert S.paired_diff_ci(ca, cb, n=10).estimate == 0.0
    assert S.paired_diff_ci(np.array([0, 0], np.uint8), np.array([1, 3], np.uint8), n=10).estimate == -2.0


def test_a_drawn_class_brings_its_size_in_draws_from_its_own_images() -> None:
    """Rule (class weighting): a class drawn k times adds k x (its size) image draws, all from its own images; so
    per class the draws are a multiple of its size, and the classes' draw counts add up to the number of classes."""
    labels = np.array([0] * 5 + [1] * 2 + [2] * 9)
    run_w, img_w = S.bootstrap_weights(3, labels, n=400, seed=1)
    assert run_w.shape == (400, 3) and img_w.shape == (400, 16)
    assert (run_w.sum(1) == 3).all()
    sizes = np.bincount(labels)
    assert (sum(img_w[:, labels == c].sum(1) / size for c, size in enumerate(sizes)) == 3).all()
    for c, size in enumerate(sizes):
        per_class = img_w[:, labels == c].sum(1)
        assert (per_class % size == 0).all()
        # a class is drawn 0..3 times of 3 classes with equal chance: mean 1 draw, i.e. its size in images
        assert per_class.mean() / size == pytest.approx(1.0, abs=0.15)
    # the number of times a class is drawn follows Binomial(3, 1/3): P(0) = 8/27
    assert (img_w[:, labels == 1].sum(1) == 0).mean() == pytest.approx(8 / 27, abs=0.06)


def test_class_weighting_known_truth_small_class_counts_as_much_as_a_large_one() -> None:
    """Simulation with known truth: two classes, one of 2 images at 1.0 and one of 18 at 0.0. Resampling classes
    (each drawn class carrying its images) gives a resample mean of exactly 0.1 whenever both classes are drawn
    once, 0 or 1 when one class is drawn twice; never a mean between those, as image-level resampling would."""
    x = np.array([[1.0] * 2 + [0.0] * 18])
    labels = np.array([0] * 2 + [1] * 18)
    est, smp = S.hierarchical_bootstrap([x], labels, n=600, seed=3)
    assert est == pytest.approx(0.1)
    # class 0 twice: 4 draws of 1.0 among 4 draws -> 1.0; class 1 twice -> 0.0; once each -> 2 / 20
    assert set(np.round(smp, 12)) <= {0.0, 0.1, 1.0}
    assert np.mean(np.isclose(smp, 0.1)) == pytest.approx(0.5, abs=0.07)


def test_empty_bucket_gives_no_interval_instead_of_failing() -> None:
    """Rule: a bucket with no image (a folder without large objects) has nothing to resample: its weights are
    empty, its estimate and every resample are NaN, and its interval has NaN ends (no interval), not an error."""
    run_w, img_w = S.bootstrap_weights(2, np.array([], dtype=np.int64), n=5)
    assert run_w.shape == (5, 2) and img_w.shape == (5, 0)
    est, smp = S.hierarchical_bootstrap([np.zeros((2, 0))], np.array([], dtype=np.int64), n=5)
    assert math.isnan(est) and smp.shape == (5,) and np.isnan(smp).all()
    c = S.percentile_ci(smp, est)
    assert math.isnan(c.low) and math.isnan(c.high)
    assert S.verdict(c, 0.01) == "inconclusive"


def test_weighted_means_drop_only_the_entries_that_are_not_finite() -> None:
    """Rule: an entry (run, image) that is NaN in any array is left out of that run only; the rest is averaged; a
    resample that keeps nothing is NaN without a warning."""
    x = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0]])
    ones_r, ones_m = np.ones((1, 2)), np.ones((1, 3))
    (m,) = S.weighted_means([x], ones_r, ones_m)
    assert m[0] == pytest.approx((1 + 3 + 4 + 5 + 6) / 5)
    curves = np.stack([x, x * 10], -1)  # (runs, images, 2): a NaN anywhere in an entry drops the entry
    (mc,) = S.weighted_means([curves], ones_r, ones_m)
    assert mc[0] == pytest.approx([19 / 5, 190 / 5])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (none,) = S.weighted_means([x], ones_r, ones_m, mask=np.zeros((2, 3), bool))
    assert np.isnan(none).all()


def test_weighted_means_weight_runs_and_images() -> None:
    """Rule: a resample's mean is sum(run_w[r] img_w[i] x[r, i]) / sum(run_w[r] img_w[i]) over kept entries."""
    x = np.array([[1.0, 2.0, 4.0], [8.0, 16.0, 32.0]])
    run_w = np.array([[2.0, 1.0], [0.0, 3.0]])
    img_w = np.array([[1.0, 0.0, 2.0], [3.0, 1.0, 0.0]])
    (m,) = S.weighted_means([x], run_w, img_w)
    hand0 = (2 * (1 * 1 + 2 * 4) + 1 * (1 * 8 + 2 * 32)) / (2 * 3 + 1 * 3)
    hand1 = (3 * (3 * 8 + 1 * 16)) / (3 * 4)
    assert m == pytest.approx([hand0, hand1])


def test_hierarchical_estimate_is_the_plain_mean_and_two_arrays_give_their_difference() -> None:
    """Rule: the point estimate weighs every kept (run, image) once; with two arrays and no statistic it is
    mean(first) - mean(second), and every resample is a difference too."""
    a = np.array([[1.0, 2.0, 6.0], [3.0, 4.0, 5.0]])
    b = np.array([[0.5, 0.5, 0.5], [1.0, 1.0, 1.0]])
    est, smp = S.hierarchical_bootstrap([a, b], [0, 1, 1], n=300)
    assert est == pytest.approx(a.mean() - b.mean())
    assert np.nanmin(smp) < est < np.nanmax(smp)
    est_a, smp_a = S.hierarchical_bootstrap([a], [0, 1, 1], n=300)
    est_b, smp_b = S.hierarchical_bootstrap([b], [0, 1, 1], n=300)
    assert est == pytest.approx(est_a - est_b) and smp == pytest.approx(smp_a - smp_b)
    assert S.hierarchical_bootstrap([a], [0, 1, 1], mask=a > 2, n=5)[0] == pytest.approx((6 + 3 + 4 + 5) / 4)


def test_verdict_of_an_interval_with_an_open_end_or_zero_width() -> None:
    """Rule: an interval with a missing (NaN) end at either side is inconclusive; a zero-width interval is a valid
    interval (judged like any other)."""
    for interval in [(math.nan, 1.0), (-1.0, math.nan), (math.nan, math.nan), (0.5, math.inf)]:
        assert S.verdict(interval, 0.1) == "inconclusive", interval
    assert S.verdict((0.5, 0.5), 0.1) == "supported"
    assert S.verdict((0.0, 0.0), 0.1) == "no meaningful difference"


def test_holm_p_value_is_the_best_supported_decisions() -> None:
    """Rule: a claim's p-value is the smallest of: the share of samples not above +d (against "above"), not below
    -d (against "below"), and the larger share at or beyond +-d (against "inside"). Samples exactly at an edge
    count against the decision; only finite samples count; none gives p = 1."""
    d = 0.1
    # above: 3 of 4 samples are at +d (not above), so p_above = 3/4; inside: 4/4 at or beyond +d -> 1; below: 1
    assert S.holm_verdicts([(0.15, np.array([0.1, 0.1, 0.1, 0.3]), d)])[0]["p"] == pytest.approx(0.75)
    # below: samples at -d do not count as below -> p_below = 2/4 (-0.1 and 0.0 are >= -d)
    assert S.holm_verdicts([(-0.15, np.array([-0.3, -0.2, -0.1, 0.0]), d)])[0]["p"] == pytest.approx(0.5)
    # clearly below -d: p_below = 0 (a decision "below" is fully supported)
    assert S.holm_verdicts([(-0.5, np.full(10, -0.5), d)])[0]["p"] == 0.0
    # inside: the larger of (>= +d) and (<= -d): samples at exactly +-d count against "inside"
    assert S.holm_verdicts([(0.0, np.array([0.1, 0.0, 0.0, 0.0, -0.05]), d)])[0]["p"] == pytest.approx(0.2)
    assert S.holm_verdicts([(0.0, np.array([0.0, 0.0, 0.0, -0.1, 0.05]), d)])[0]["p"] == pytest.approx(0.2)
    # one finite sample is a sample; no finite sample gives 1
    assert S.holm_verdicts([(0.5, np.array([np.nan, 0.5]), d)])[0]["p"] == 0.0
    assert S.holm_verdicts([(0.5, np.array([np.nan, np.nan]), d)])[0]["p"] == 1.0


def test_holm_p_value_compares_in_double_precision() -> None:
    """Rule: float16 samples are compared with d in float64: a sample just above d (in float16) is above d."""
    s = np.float16(0.10003662)  # the float16 just above 0.1
    d = 0.10001  # rounds to that float16, but the sample is above it
    out = S.holm_verdicts([(0.2, np.full(8, s, dtype=np.float16), d)])
    assert out[0]["p"] == 0.0


def test_holm_reports_rank_estimate_effect_and_the_unadjusted_interval() -> None:
    """Rule: per claim (input order) the result carries its p-value rank, its estimate and minimum effect, the
    adjusted interval at its level and the unadjusted 95% interval (the samples' 2.5% and 97.5% quantiles)."""
    samples = [np.arange(1001) / 1000.0, np.arange(1001) / 1000.0 + 5.0]
    out = S.holm_verdicts([(0.5, samples[0], 0.1), (5.5, samples[1], 0.2)])
    assert [o["rank"] for o in out] == [1, 0]
    assert [o["estimate"] for o in out] == [0.5, 5.5] and [o["min_effect"] for o in out] == [0.1, 0.2]
    assert (out[0]["low95"], out[0]["high95"]) == pytest.approx((0.025, 0.975))
    assert (out[1]["low95"], out[1]["high95"]) == pytest.approx((5.025, 5.975))
    assert out[1]["level"] == pytest.approx(1 - 0.05 / 2) and (out[1]["low"], out[1]["high"]) == pytest.approx(
        (5.0125, 5.9875))
    assert out[1]["verdict"] == "supported" and out[0]["verdict"] == "inconclusive"


def test_shape_refusal_names_the_runs_and_images_of_3d_arrays() -> None:
    """Rule: arrays of curves (runs, images, k) are compared on (runs, images) only, and the message says so."""
    with pytest.raises(ValueError) as err:
        S.weighted_means([np.zeros((1, 2, 4)), np.zeros((1, 3, 4))], np.ones((1, 1)), np.ones((1, 2)))
    assert str(err.value) == "arrays must share (runs, images) = (1, 2), got (1, 3)"


def test_a_mask_of_zeros_and_ones_is_a_mask() -> None:
    """Rule: any array of truth values keeps the entries that are true (0/1 floats as well as booleans)."""
    x = np.array([[1.0, 2.0, 4.0]])
    got = S.weighted_means([x], np.ones((1, 1)), np.ones((1, 3)), np.array([[1.0, 0.0, 1.0]]))
    assert got[0][0] == pytest.approx(2.5)


def test_the_mask_and_the_seed_reach_every_resample() -> None:
    """Rule: entries the mask drops are in no resample (not only out of the estimate), and the seed chooses the
    resamples (another seed, other resamples; the same seed, the same)."""
    x = np.array([[1.0, 1000.0, 2.0, 3.0], [2.0, 1000.0, 1.0, 4.0]])
    mask = x < 1000
    _, smp = S.hierarchical_bootstrap([x], [0, 0, 1, 1], mask=mask, n=200)
    assert np.nanmax(smp) < 5
    a = S.hierarchical_bootstrap([x], [0, 0, 1, 1], n=50, seed=3)[1]
    b = S.hierarchical_bootstrap([x], [0, 0, 1, 1], n=50, seed=4)[1]
    assert not np.array_equal(a, b) and np.array_equal(a, S.hierarchical_bootstrap([x], [0, 0, 1, 1], n=50, seed=3)[1])
