"""ERF claims: sub-pixel radii from the interpolated mass curve, what training adds (trained minus random init of
the same seed, per run), and a t interval over runs recomputed here with scipy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from res2net.analysis.erf import mass_radius, radius_samples
from res2net.evaluation.claims import _erf_claim
from res2net.evaluation.erf_study import training_values
from res2net.metrics import statistics as S


def test_interpolated_radius_of_a_uniform_square_by_hand() -> None:
    """81 equal pixels about (4, 4): the square of radius r holds (2r + 1)^2 of them. Half the mass (40.5 pixels)
    lies between r = 2 (25 pixels) and r = 3 (49): 2 + 15.5 / 24 on the line; the whole-pixel radius is 3."""
    m = np.ones((9, 9))
    assert mass_radius(m, (4, 4), 0.5) == 3.0
    assert mass_radius(m, (4, 4), 0.5, interpolate=True) == pytest.approx(2 + 15.5 / 24)


def test_interpolated_radius_inside_the_centre_pixel_starts_from_zero() -> None:
    m = np.zeros((5, 5))
    m[2, 2] = 1.0
    assert mass_radius(m, (2, 2), 0.5, interpolate=True) == 0.0
    m[1:4, 1:4] = 1 / 8  # ring 1 (8 pixels) holds half the mass: 75% lies at 0 + (0.75 - 0.5) / 0.5 of the way to 1
    m[2, 2] = 1.0
    assert mass_radius(m, (2, 2), 0.75, interpolate=True) == pytest.approx(0.5)


@given(st.integers(0, 2**31 - 1), st.sampled_from([0.3, 0.5, 0.9]))
def test_interpolated_radius_lies_within_one_pixel_below_the_whole_one_and_samples_agree(seed: int,
                                                                                        level: float) -> None:
    x = np.random.default_rng(seed).random((4, 9, 11))
    whole = np.array([mass_radius(x[i], (4, 5), level) for i in range(4)])
    sub = np.array([mass_radius(x[i], (4, 5), level, interpolate=True) for i in range(4)])
    assert np.all(sub <= whole + 1e-12) and np.all(sub > whole - 1 - 1e-12)
    np.testing.assert_allclose(radius_samples(x, (4, 5), level, np.eye(4), interpolate=True), sub, rtol=1e-12)


def test_training_values_pair_runs_and_subtract_the_init_difference() -> None:
    trained, trained_ref = np.array([10.0, 12.0]), np.array([4.0, 5.0])
    init, init_ref = np.array([9.0, 8.0]), np.array([6.0, 6.0])
    # run 0: (10 - 4) - (9 - 6) = 3; run 1: (12 - 5) - (8 - 6) = 5
    assert training_values(trained, init, trained_ref, init_ref).tolist() == [3.0, 5.0]


def _claim(values: list[float], border: bool = False) -> dict:
    return _erf_claim({"id": "erf-branches-own-size-noise-m", "kind": "branch_erf", "model": "m",
                       "layer": "layer3.1.branch0 -> layer3.1.branch2", "probe": "own-size noise",
                       "values": np.array(values), "trained": 5.0, "init": 2.0, "border": border})


def test_claim_interval_is_the_t_interval_over_runs() -> None:
    v = np.array([1.0, 2.0, 3.0, 4.0])
    c = _claim(v.tolist())
    half = stats.t.ppf(0.975, 3) * v.std(ddof=1) / 2
    assert c["estimate"] == pytest.approx(2.5)
    assert (c["low"], c["high"]) == (pytest.approx(2.5 - half, abs=1e-4), pytest.approx(2.5 + half, abs=1e-4))
    assert c["df"] == 3 and c["runs"] == 4 and c["family"] == "exploratory" and c["control"] == "random init"
    assert c["verdict"] == S.verdict((c["low"], c["high"]), c["min_effect"])
    p = 2 * stats.t.sf(2.5 / (v.std(ddof=1) / 2), 3)
    assert c["p_zero"] == pytest.approx(p, rel=1e-2)
    assert "trained 5.0 px, random init 2.0 px" in c["caveat"] and "cut by" not in c["caveat"]
    assert "cut by the input's border" in _claim(v.tolist(), border=True)["caveat"]


def test_one_run_gives_no_interval_and_no_verdict_beyond_inconclusive() -> None:
    c = _claim([2.0])
    assert c["low"] is None and c["high"] is None and c["verdict"] == "inconclusive" and c["df"] is None


def test_training_claims_compare_the_larger_branch_with_branch_0_and_the_model_with_the_baseline() -> None:
    """Per-run radii made up by hand: s=4's branch 2 grows by training from 2 to 6 px past branch 0 (+4, +3 per run
    beyond init); its block output by (12 - 10) - (9 - 9) and (14 - 11) - (9 - 10) against the ResNet's."""
    from res2net.evaluation.erf_study import _training_claims

    b0, b2, out, ref = "layer3.1.branch0", "layer3.1.branch2", "layer3.1", "layer3.1"
    groups = {"tiny_res2net26_4s": {"layer3": {"output": out, "branch0": b0, "branch1": "layer3.1.branch1",
                                               "branch2": b2, "branch3": "layer3.1.branch3"}},
              "tiny_resnet26": {"layer3": {"output": ref}}}
    radii = {("tiny_res2net26_4s", "trained"): {b0: np.array([3.0, 3.0]), b2: np.array([9.0, 8.0]),
                                                 out: np.array([12.0, 14.0])},
             ("tiny_res2net26_4s", "random init"): {b0: np.array([2.0, 2.0]), b2: np.array([4.0, 4.0]),
                                                     out: np.array([9.0, 9.0])},
             ("tiny_resnet26", "trained"): {ref: np.array([10.0, 11.0])},
             ("tiny_resnet26", "random init"): {ref: np.array([9.0, 10.0])}}
    border = dict.fromkeys(radii, False)
    claims = {c["kind"]: c for c in _training_claims(radii, border, groups, list(groups), "tiny_resnet26", "p")}
    assert claims["branch_erf"]["layer"] == f"{b0} -> {b2}"
    assert claims["branch_erf"]["values"].tolist() == [4.0, 3.0]
    assert claims["branch_erf"]["trained"] == 5.5 and claims["branch_erf"]["init"] == 2.0
    assert claims["block_erf"]["values"].tolist() == [2.0, 4.0]
    assert claims["block_erf"]["id"] == "erf-block-p-tiny_res2net26_4s"
