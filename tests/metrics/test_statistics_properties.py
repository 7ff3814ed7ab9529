"""Rules of the statistics that hold for every input, checked on generated inputs (hypothesis)."""

from __future__ import annotations

import hypothesis_profiles  # noqa: F401  (example counts: few in CI, more in the mutation run)
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from res2net.metrics import statistics as S

values = st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=32), min_size=1, max_size=40)
levels = st.floats(0.05, 0.99)


@given(values, levels, levels, st.integers(0, 2**16))
def test_an_interval_at_a_lower_level_lies_inside_the_one_at_a_higher_level(v, a, b, seed) -> None:
    """Rule: from the same resamples, the interval at level a is inside the interval at level b >= a."""
    lo_level, hi_level = sorted((a, b))
    narrow = S.bootstrap_ci(v, n=200, seed=seed, ci=lo_level)
    wide = S.bootstrap_ci(v, n=200, seed=seed, ci=hi_level)
    assert wide.low <= narrow.low <= narrow.high <= wide.high
    samples = np.asarray(v, dtype=np.float64)
    narrow, wide = S.percentile_ci(samples, 0.0, lo_level), S.percentile_ci(samples, 0.0, hi_level)
    assert wide.low <= narrow.low <= narrow.high <= wide.high


@given(values, st.integers(0, 2**16))
def test_the_estimate_is_the_mean_and_lies_within_the_values(v, seed) -> None:
    """Rule: bootstrap_ci's estimate is the mean of the values; both ends lie within [min, max]."""
    est, lo, hi = S.bootstrap_ci(v, n=100, seed=seed)
    assert est == np.mean(np.asarray(v, dtype=np.float64))
    tol = 1e-9 * (1 + max(abs(x) for x in v))
    assert min(v) - tol <= lo <= hi <= max(v) + tol


labels_strategy = st.lists(st.integers(0, 5), min_size=1, max_size=30)


@given(labels_strategy, st.integers(1, 4), st.integers(0, 2**16))
def test_a_drawn_class_carries_all_its_images(labels, runs, seed) -> None:
    """Rule: in every resample each class is drawn k >= 0 times and brings k x (its size) draws of its own images;
    the k add up to the number of classes, and the runs drawn add up to the number of runs."""
    lab = np.asarray(labels)
    run_w, img_w = S.bootstrap_weights(runs, lab, n=30, seed=seed)
    assert (run_w.sum(1) == runs).all() and (run_w >= 0).all()
    classes, sizes = np.unique(lab, return_counts=True)
    draws = np.stack([img_w[:, lab == c].sum(1) for c in classes], 1)
    assert (draws % sizes == 0).all()
    assert ((draws / sizes).sum(1) == len(classes)).all()


@given(st.lists(st.tuples(st.floats(-0.5, 0.5), st.floats(0.001, 0.2), st.floats(0.01, 0.1)), min_size=1,
                max_size=6), st.integers(0, 2**16))
def test_holm_levels_follow_the_p_value_ranks(specs, seed) -> None:
    """Rule: claims are ranked by p-value (ties by input order); the k-th of m (from 0) is judged at level
    1 - 2 alpha / (m - k), so a smaller p-value never gets a stricter level than a larger one, and once a claim is
    inconclusive every later-ranked claim is too."""
    rng = np.random.default_rng(seed)
    claims = [(mu, rng.normal(mu, sd, 200), d) for mu, sd, d in specs]
    out = S.holm_verdicts(claims)
    m = len(claims)
    order = sorted(range(m), key=lambda i: (out[i]["p"], i))
    assert [out[i]["rank"] for i in order] == list(range(m))
    for k, i in enumerate(order):
        assert out[i]["level"] == 1 - 2 * 0.025 / (m - k)
    verdicts = [out[i]["verdict"] for i in order]
    if "inconclusive" in verdicts:
        first = verdicts.index("inconclusive")
        assert all(v == "inconclusive" for v in verdicts[first:])


@given(st.floats(-1, 1), st.floats(0, 1), st.floats(0.001, 0.5))
def test_verdict_is_symmetric_under_a_sign_flip(low, width, d) -> None:
    """Rule: flipping the sign of the difference swaps supported and contradicted and keeps the other verdicts."""
    swap = {"supported": "contradicted", "contradicted": "supported"}
    v = S.verdict((low, low + width), d)
    assert S.verdict((-(low + width), -low), d) == swap.get(v, v)
