"""Few-run inference against known truths: coverage simulations (runs dominating; unequal class sizes), hand-computed
cluster covariances and Satterthwaite df, Monte-Carlo errors against their sampling theory, and the Holm family."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from res2net.metrics import inference as I
from res2net.metrics import statistics as S

# A tiny case computed by hand (exact fractions). Two runs, six images in three classes (two each).
#   run 0: 1 3 2 6 4 2 -> theta_0 = 3;   run 1: 2 2 5 9 3 7 -> theta_1 = 14/3
#   class totals of (d - theta) / 6: run 0 (-1/3, 1/3, 0), run 1 (-8/9, 7/9, 1/9)
#   C = 3/2 * E E^T: C00 = 3/2 * 2/9 = 1/3, C11 = 3/2 * 114/81 = 19/9, C01 = 3/2 * (8/27 + 7/27) = 5/6
#   architecture: S^2 = (5/3)^2 / 2 = 25/18, S^2 / R = 25/36, shared b = C01 = 5/6, variance 55/36;
#                 df = (55/36)^2 / ((25/36)^2 / 1 + (5/6)^2 / 2) = 121/43
#   weights: variance (1/3 + 19/9 + 2 * 5/6) / 4 = 37/36, df = G - 1 = 2
HAND = np.array([[1, 3, 2, 6, 4, 2], [2, 2, 5, 9, 3, 7]], dtype=float)
HAND_CLASSES = np.array([0, 0, 1, 1, 2, 2])


def test_cluster_covariance_and_satterthwaite_df_by_hand() -> None:
    theta, cov, g = I.cluster_covariance(HAND, HAND_CLASSES)
    assert g == 3
    assert theta == pytest.approx([3, 14 / 3])
    assert cov == pytest.approx(np.array([[1 / 3, 5 / 6], [5 / 6, 19 / 9]]))
    arch = I.architecture_evidence(HAND, HAND_CLASSES)
    assert arch.estimate == pytest.approx(23 / 6)
    assert arch.se == pytest.approx(math.sqrt(55 / 36))
    assert arch.df == pytest.approx(121 / 43)
    w = I.weights_evidence(HAND, HAND_CLASSES)
    assert (w.estimate, w.se, w.df) == pytest.approx((23 / 6, math.sqrt(37 / 36), 2.0))
    # Welch-Satterthwaite on its own: (7/9 + 1/2)^2 / ((7/9)^2 / 2 + (1/2)^2 / 9) = 529/107
    assert I.satterthwaite_df([7 / 9, 0.5], [2, 9]) == pytest.approx(529 / 107)
    assert I.satterthwaite_df([7 / 9, 0.0], [2, 9]) == pytest.approx(2.0)  # a zero component drops out


def test_interval_uses_the_t_quantile_of_its_df() -> None:
    runs = np.repeat([[0.1], [0.6], [0.3]], 4, axis=1)  # no image noise: the shared part is 0, df = R - 1 = 2
    ev = I.architecture_evidence(runs, np.array([0, 1, 2, 3]))
    assert ev.df == pytest.approx(2.0) and ev.se == pytest.approx(math.sqrt(np.var([0.1, 0.6, 0.3], ddof=1) / 3))
    iv = ev.interval(0.95)
    assert (iv.high - iv.estimate) / ev.se == pytest.approx(4.302652729911275)  # t(2) at 97.5%, not z's 1.96
    assert iv.p_value == pytest.approx(2 * stats.t.sf(ev.estimate / ev.se, 2))
    assert (iv.target, iv.runs, iv.resamples, iv.mc_error_low, iv.available) == ("architecture", 3, 0, 0.0, True)


def test_one_run_has_no_architecture_interval_and_says_so() -> None:
    one = HAND[:1]
    ev = I.architecture_evidence(one, HAND_CLASSES)  # no exception
    iv = ev.interval(0.95)
    assert not ev.available and not iv.available
    assert "one run" in iv.note and "weights" in iv.note
    assert math.isnan(iv.low) and math.isnan(iv.high) and iv.estimate == pytest.approx(3.0)
    w = I.evidence(one, HAND_CLASSES, "weights").interval(0.95)
    assert w.available and w.target == "weights" and w.low < 3.0 < w.high


def _run_dominated(rng: np.random.Generator, sims: int, truth: float, labels: np.ndarray, runs: int = 3
                   ) -> np.ndarray:
    """(sims, runs, images) paired differences: run effect SD 0.02 dominates class (0.004), image (0.01) and
    run x image (0.02 per image, so about 0.0014 on a run's mean of 200 images)."""
    g, n = labels.max() + 1, labels.size
    return (truth + rng.normal(0, 0.02, (sims, runs, 1)) + rng.normal(0, 0.004, (sims, 1, g))[..., labels]
            + rng.normal(0, 0.01, (sims, 1, n)) + rng.normal(0, 0.02, (sims, runs, n)))


def test_architecture_interval_covers_the_truth_and_the_run_bootstrap_does_not() -> None:
    """R = 3, run variance dominating: nominal 95% must cover 93-97% of 8,000 datasets (SE of a coverage 0.24
    points; the interval's own coverage is about 94%, Satterthwaite's df being a little optimistic when the run
    spread happens to be small). Today's hierarchical bootstrap over runs, classes and images, on the first 150
    of the same datasets, cannot: its run level has 10 distinct resamples and never reaches past the extreme run."""
    rng = np.random.default_rng(2024)
    truth, labels = 0.02, np.repeat(np.arange(20), 10)
    covered, missed_by_weights = [], []
    for _ in range(2):
        d = _run_dominated(rng, 4000, truth, labels)
        t = I.t_intervals(d, labels, "architecture")
        covered.append((t.low <= truth) & (truth <= t.high))
        # the weights interval is about these weights: as a claim about the architecture it covers far too rarely
        w = I.t_intervals(d, labels, "weights")
        missed_by_weights.append((w.low > truth) | (truth > w.high))
    coverage = float(np.concatenate(covered).mean())
    assert 0.93 <= coverage <= 0.97, coverage
    assert float(np.concatenate(missed_by_weights).mean()) > 0.5
    hits = 0
    for k in range(150):
        _, samples = S.hierarchical_bootstrap([d[k]], labels, n=100, seed=k)
        lo, hi = np.quantile(samples, [0.025, 0.975])
        hits += lo <= truth <= hi
    todays = hits / 150
    assert todays < 0.88, f"today's run bootstrap covered {todays:.3f}; the t interval covered {coverage:.3f}"


def test_batch_and_single_claim_agree() -> None:
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(5), 4)
    d = _run_dominated(rng, 4, 0.0, labels)
    t = I.t_intervals(d, labels, "architecture", level=0.9)
    for k in range(4):
        iv = I.architecture_evidence(d[k], labels).interval(0.9)
        assert (iv.low, iv.high, iv.df) == pytest.approx((t.low[k], t.high[k], t.df[k]))


def test_class_weighting_simulation() -> None:
    """Unequal class sizes (1 to 30 images of a bucket per class) and class effects that grow with class size:
    the estimate is the image-weighted mean, and the CR1 interval covers that truth at nominal; it does not target
    the class-weighted mean (mean of class means), and an SE that treats images as independent under-covers."""
    rng = np.random.default_rng(7)
    sizes = np.r_[np.ones(20, int), np.full(20, 5), np.full(20, 30)]
    labels = np.repeat(np.arange(sizes.size), sizes)
    slope, sims = 0.01, 3000
    mu = slope * (sizes - sizes.mean())  # class means around 0: the class-weighted truth is 0
    image_truth = float((sizes * mu).sum() / sizes.sum())  # what a mean over the bucket's images estimates
    assert image_truth > 0.1
    d = (mu[labels] + rng.normal(0, 0.15, (sims, 1, sizes.size))[..., labels]
         + rng.normal(0, 0.3, (sims, 1, labels.size)))
    one = d[0, 0]
    assert I.weights_evidence(one, labels).estimate == pytest.approx(one.mean())  # images weigh equally
    t = I.t_intervals(d, labels, "weights")
    cover = float(((t.low <= image_truth) & (image_truth <= t.high)).mean())
    assert 0.93 <= cover <= 0.97, cover
    assert float(((t.low <= 0) & (0 <= t.high)).mean()) < 0.2  # not the mean of class means
    naive_se = d[:, 0].std(1, ddof=1) / math.sqrt(labels.size)
    naive = np.abs(d[:, 0].mean(1) - image_truth) <= 1.96 * naive_se
    assert naive.mean() < 0.8  # images of a class are not independent


def test_class_bootstrap_agrees_with_cluster_se_and_ignores_chunking() -> None:
    rng = np.random.default_rng(11)
    labels = np.repeat(np.arange(40), 6)
    d = rng.normal(0, 0.1, 40)[labels] + rng.normal(0.05, 0.3, labels.size)
    a = I.class_bootstrap(d, labels, resamples=5000, seed=1, chunk=5000)
    b = I.class_bootstrap(d, labels, resamples=5000, seed=1, chunk=777)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)  # the same draws (matmul rounding aside)
    se = I.weights_evidence(d, labels).se
    # the class bootstrap's variance is (G - 1) / G of CR1's
    assert a.std() == pytest.approx(se * math.sqrt(39 / 40), rel=0.05)
    ev = I.weights_evidence(d, labels, method="cluster-bootstrap", seed=1)
    assert ev.resamples == I.MIN_RESAMPLES >= 20_000
    iv = ev.interval(0.95)
    assert iv.resamples == I.MIN_RESAMPLES and math.isnan(iv.df)
    assert 0 < iv.mc_error_low < 0.1 * se and 0 < iv.mc_error_high < 0.1 * se
    # only the kept images count, and a class with none is not drawn
    keep = labels < 20
    kept = I.class_bootstrap(d, labels, keep, resamples=200, seed=0)
    np.testing.assert_allclose(kept, I.class_bootstrap(d[keep], labels[keep], resamples=200, seed=0), atol=1e-12)


def test_quantile_mc_error_matches_sampling_theory_and_shrinks_like_one_over_root_b() -> None:
    rng = np.random.default_rng(5)
    q = 0.025
    truth = math.sqrt(q * (1 - q) / 2000) / stats.norm.pdf(stats.norm.ppf(q))  # asymptotic SD of the quantile
    reps = rng.standard_normal((300, 2000))
    spread = np.quantile(reps, q, axis=1).std(ddof=1)
    estimates = np.array([I.quantile_mc_error(r, q) for r in reps[:50]])
    assert spread == pytest.approx(truth, rel=0.15)
    assert np.median(estimates) == pytest.approx(truth, rel=0.25)
    big = np.array([I.quantile_mc_error(rng.standard_normal(32000), q) for _ in range(10)])
    assert np.median(estimates) / np.median(big) == pytest.approx(4.0, rel=0.25)  # sqrt(32000 / 2000)


def _boot(est: float, sd: float, seed: int, n: int = I.MIN_RESAMPLES) -> I.Evidence:
    s = np.random.default_rng(seed).normal(est, sd, n)
    return I.Evidence("weights", 1, "test draws", est, sd, math.nan, s)


def test_holm_family_matches_statistics_and_reports_not_tested() -> None:
    strong, null, weak = _boot(0.10, 0.01, 1), _boot(0.0, 0.005, 2), _boot(0.036, 0.0075, 3)
    wide, weak2 = _boot(0.0, 0.1, 4), _boot(-0.036, 0.0075, 5)
    d = 0.02
    for family in ([strong, null, weak], [weak, weak2], [wide, strong], [weak2, wide, null, strong]):
        mine = I.holm_family([(f"c{i}", ev, d) for i, ev in enumerate(family)])
        theirs = S.holm_verdicts([(ev.estimate, ev.samples, d) for ev in family])
        for j, o in zip(mine, theirs, strict=True):
            if j.tested:  # judged claims: the same verdict, interval and level as statistics.holm_verdicts
                assert (j.verdict, j.level, j.interval.low, j.interval.high) == (o["verdict"], o["level"], o["low"],
                                                                                 o["high"])
            else:  # stopped before: "not tested" here, where the old function said "inconclusive"
                assert j.verdict == I.NOT_TESTED and o["verdict"] == "inconclusive" and j.interval is None
    pair = I.holm_family([("a", weak, d), ("b", weak2, d)])
    assert [p.verdict for p in pair] == ["inconclusive", I.NOT_TESTED]
    assert pair[1].interval95.high < -d  # its 95% interval is still shown, but it was never judged
    assert math.isnan(pair[1].level) and pair[1].excludes_zero is None
    assert pair[0].excludes_zero is True  # inconclusive against d, yet it differs from 0 at its Holm level


def test_holm_family_analytic_claims_and_tests_against_zero() -> None:
    def t_ev(est: float, se: float, df: float) -> I.Evidence:
        return I.Evidence("architecture", 3, "t", est, se, df)

    big = t_ev(0.10, 0.01, 30.0)  # p(theta <= d) tiny
    small = t_ev(0.025, 0.004, 30.0)  # differs from 0, inside d? no: straddles d
    out = I.holm_family([("big", big, 0.02), ("small", small, 0.02)])
    assert out[0].rank == 0 and out[0].level == pytest.approx(1 - 0.05 / 2) and out[0].verdict == "supported"
    lo = 0.10 - stats.t.ppf(1 - 0.025 / 2, 30) * 0.01
    assert out[0].interval.low == pytest.approx(lo)
    assert out[1].verdict == "inconclusive" and out[1].level == pytest.approx(0.95)
    p0 = 2 * stats.t.sf(0.025 / 0.004, 30)
    assert out[1].p_zero == pytest.approx(p0) and out[1].excludes_zero
    assert out[1].p_zero_holm == pytest.approx(max(2 * min(out[0].p_zero, out[1].p_zero), p0))
    assert I.holm_adjusted([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_holm_family_refuses_short_bootstraps_and_skips_one_run_claims() -> None:
    with pytest.raises(ValueError, match="resamples"):
        I.holm_family([("short", _boot(0.1, 0.01, 0, n=I.MIN_RESAMPLES - 1), 0.02)])
    lonely = I.architecture_evidence(HAND[:1], HAND_CLASSES)
    out = I.holm_family([("one run", lonely, 0.02), ("weak", _boot(0.036, 0.0075, 3), 0.02)])
    assert out[0].verdict == I.NOT_TESTED and "one run" in out[0].note and out[0].rank is None
    assert out[1].level == pytest.approx(0.95)  # the family has one testable claim


def _realistic_family(rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Paired per-image differences shaped like the page's claims: 100 classes, a size bucket of 4-20 images per
    class, hit-rate (Bernoulli) and share-of-mass (continuous) scores, estimates spread from 0 to 3 d."""
    fam = []
    for est, d, kind in [(0.0, 0.03, "hit"), (0.06, 0.03, "hit"), (0.03, 0.03, "hit"), (0.001, 0.02, "share"),
                         (0.045, 0.02, "share"), (0.015, 0.02, "share"), (-0.05, 0.02, "share")]:
        sizes = rng.integers(4, 21, 100)
        labels = np.repeat(np.arange(100), sizes)
        if kind == "hit":
            p = np.clip(0.4 + rng.normal(0, 0.15, 100), 0.05, 0.95)[labels]
            a, b = rng.random(labels.size) < p + est, rng.random(labels.size) < p
            diff = a.astype(float) - b
        else:
            diff = est + rng.normal(0, 0.03, 100)[labels] + rng.normal(0, 0.12, labels.size)
        fam.append((diff, labels, d))
    return fam


def test_verdicts_do_not_change_across_bootstrap_seeds() -> None:
    fam = _realistic_family(np.random.default_rng(99))
    verdicts = []
    for seed in (0, 1, 2):
        claims = [(f"c{i}", I.weights_evidence(x, lab, method="cluster-bootstrap", seed=seed), d)
                  for i, (x, lab, d) in enumerate(fam)]
        out = I.holm_family(claims)
        verdicts.append([j.verdict for j in out])
        for j in out:  # every end is resolved far finer than its distance to +-d would need
            if j.tested:
                assert max(j.interval.mc_error_low, j.interval.mc_error_high) < 0.1 * claims[0][1].se
    assert verdicts[0] == verdicts[1] == verdicts[2]
    assert len(set(verdicts[0])) >= 3  # a family with several kinds of verdict, not all one word


def test_per_run_keep_masks_match_each_runs_own_subset() -> None:
    """A subset that differs by run (e.g. images both models get right in that run): each run's estimate and own
    squared SE are those of its kept images alone; a class with no kept image in any run is not a cluster."""
    rng = np.random.default_rng(4)
    labels = np.repeat(np.arange(8), 5)
    d = rng.normal(0, 1, (3, labels.size))
    keep = rng.random((3, labels.size)) < 0.7
    keep[:, labels == 7] = False
    theta, cov, g = I.cluster_covariance(d, labels, keep)
    assert g == 7
    compared = 0
    for r in range(3):
        own = I.weights_evidence(d[r][keep[r]], labels[keep[r]])
        if np.unique(labels[keep[r]]).size == g:  # the same clusters: the same CR1 factor
            assert (theta[r], cov[r, r]) == pytest.approx((own.estimate, own.se**2))
            compared += 1
        assert theta[r] == pytest.approx(d[r][keep[r]].mean())
    assert compared >= 2
