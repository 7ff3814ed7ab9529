"""The minimum meaningful effect d's rules, written down first, then tested on hand-computed cases, simulations
with a known truth and properties over all inputs (hypothesis).

Rules (from ``res2net/metrics/effect_size.py``, the README's "d per metric and bucket from one rule" and DESIGN.md's
minimum meaningful effect fixed per metric before the runs).
- ``rule_d(floor, grid, run_sd)``: d = max(floor, sqrt(2) x run SD) rounded UP to a whole number of grid steps;
  without a run SD, the floor rounded up. So d is never below the floor nor below sqrt(2) x run SD, is a multiple of
  the grid, and sits less than one step above the larger of the two. A ratio to the grid within 5e-10 of a whole
  step is that step (float noise such as 0.03 / 0.005 = 5.999... is not a seventh step), one further off is rounded
  up. This holds for every positive grid, however many decimals it has. A floor or grid that is not positive is
  refused: "floor and grid must be positive, got <floor> and <grid>".
- ``pooled_run_sd``: the pooled within-model SD, sqrt(sum over models of the squared deviations from the model's
  own mean / sum of (runs - 1)), in double precision whatever the input's dtype; models with one run are left out
  whatever their value (a NaN or infinite single run included); differences between the models' means do not
  enter. With no model of two runs: "a run-to-run SD needs a model with at least two runs". Known truth: runs
  drawn with SD sigma around any model means pool to about sigma, and the difference of one run of each of two such
  models has SD sqrt(2) x sigma.
- ``min_effect(metric, bucket="all", run_sd=None)``: the rule with the metric's floor and grid and the pilot's run
  SD of that (metric, bucket) (the floor alone where the pilot has none), or the run SD given. An unknown metric is
  refused "no d rule for metric <name>; known: top1, energy, pointing, coverage, maxboxacc, erf_radius", an
  unknown bucket "unknown bucket <name>; known: small, medium, large, all" (KeyError).
- ``rule_json`` writes the rule in words, every floor with its value, grid and reason, every pilot run SD keyed
  "<metric>/<bucket>", the run SDs' source, the table of d and the sensitivity multiples' names (d/2, d, 2d).
- ``sensitivity``: the verdict at d/2, d and 2d; a larger d can only make "supported" and "contradicted" harder
  and "no meaningful difference" easier.
"""

from __future__ import annotations

import math
import re
import statistics

import hypothesis_profiles  # noqa: F401  (example counts: few in CI, more in the mutation run)
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from res2net.metrics import effect_size as E


def _refused(exc: type[Exception], message: str):
    return pytest.raises(exc, match="^" + re.escape(message) + "$")


# ------------------------------------------------------------------------------------------------------ rule_d
def test_float_noise_is_no_extra_step_but_a_real_excess_is() -> None:
    # 0.03 + 1e-12 on a 0.005 grid is 6 + 2e-10 steps: on the sixth step; 0.03 + 3e-12 is 6 + 6e-10: a seventh
    assert E.rule_d(0.03 + 1e-12, 0.005, None) == 0.03
    assert E.rule_d(0.03 + 3e-12, 0.005, None) == 0.035
    assert E.rule_d(0.03 - 1e-12, 0.005, None) == 0.03
    assert E.rule_d(0.02, 0.005, (0.03 + 1e-12) / math.sqrt(2)) == 0.03  # the same for sqrt(2) x run SD


def test_rule_d_refusals_in_their_words() -> None:
    with _refused(ValueError, "floor and grid must be positive, got 0.02 and 0"):
        E.rule_d(0.02, 0, 0.01)
    with _refused(ValueError, "floor and grid must be positive, got 0.02 and -0.005"):
        E.rule_d(0.02, -0.005, None)
    with _refused(ValueError, "floor and grid must be positive, got -1.0 and 0.1"):
        E.rule_d(-1.0, 0.1, None)


def test_a_grid_with_many_decimals_keeps_d_on_it() -> None:
    """Found by the property below: with d rounded to 10 decimals, a grid of 1.234567e-5 put d = 3 steps at
    3.7037e-05, below the floor of 3.703701e-05 and off the grid."""
    grid = 1.234567e-5
    d = E.rule_d(3 * grid, grid, None)
    assert d == pytest.approx(3.703701e-5, rel=1e-12)
    assert E.rule_d(3e-11, 1e-11, None) == pytest.approx(3e-11, rel=1e-12)  # not 0


@given(st.floats(1e-4, 10.0), st.one_of(st.none(), st.floats(0, 10.0)),
       st.one_of(st.sampled_from([0.001, 0.005, 0.01, 0.1, 0.25, 1.0]), st.floats(1e-4, 10.0),
                 st.builds(lambda m, e: m * 10.0**-e, st.integers(100_001, 999_999), st.integers(6, 12))),
       st.one_of(st.none(), st.integers(1, 1000)))
def test_d_is_the_larger_of_floor_and_root_two_sd_rounded_up_to_the_grid(floor, run_sd, grid, on_step) -> None:
    if on_step is not None:
        floor = on_step * grid  # a floor on a grid step
    d = E.rule_d(floor, grid, run_sd)
    raw = floor if run_sd is None else max(floor, math.sqrt(2) * run_sd)
    slack = 1e-9 * grid + 1e-12 * raw  # the stated tolerance for float noise, and the last digits of d
    assert d >= floor - slack and d >= raw - slack
    assert d < raw + grid + slack  # less than one step above
    assert abs(d - round(d / grid) * grid) <= 1e-12 * d  # on the grid, to the last digits of d
    if on_step is not None and raw == floor:
        assert d == pytest.approx(floor, rel=1e-12)  # a floor on a step stays on it


# ----------------------------------------------------------------------------------------------- pooled_run_sd
def test_pooled_run_sd_is_computed_in_double_precision() -> None:
    a = np.array([0.1, 0.2, 0.4], dtype=np.float32)
    b = np.array([1.3, 1.1], dtype=np.float32)
    a64, b64 = [float(v) for v in a], [float(v) for v in b]  # the float32 values, exactly
    expected = math.sqrt((statistics.variance(a64) * 2 + statistics.variance(b64) * 1) / 3)
    assert E.pooled_run_sd({"a": a, "b": b}) == pytest.approx(expected, rel=1e-13)


def test_pooled_run_sd_ignores_model_means_and_single_runs() -> None:
    # by hand: deviations (-1, 1) and (-2, 0, 2): squares 2 + 8 = 10 over 1 + 2 df
    assert E.pooled_run_sd({"x": [100, 102], "y": [-7, -5, -3], "z": [1e6]}) == pytest.approx(math.sqrt(10 / 3))
    # a model with one run is left out whatever its value: a NaN or infinite single run does not spoil the pool
    assert E.pooled_run_sd({"a": [1.0, 3.0], "b": [math.nan], "c": [math.inf]}) == pytest.approx(math.sqrt(2))
    with _refused(ValueError, "a run-to-run SD needs a model with at least two runs"):
        E.pooled_run_sd({"a": [0.5], "b": [0.7]})
    with _refused(ValueError, "a run-to-run SD needs a model with at least two runs"):
        E.pooled_run_sd({})


def test_pooled_sd_and_the_root_two_spread_of_a_difference_simulated() -> None:
    """Known truth: 40 models with means 0..390, 5 runs each with SD 0.5 (160 df): the pooled SD is 0.5 within a
    few standard errors (SE ~0.028); one run of each of two models differs with SD sqrt(2) x 0.5."""
    rng = np.random.default_rng(1)
    runs = {f"m{i}": 10.0 * i + rng.normal(0, 0.5, 5) for i in range(40)}
    sd = E.pooled_run_sd(runs)
    assert sd == pytest.approx(0.5, abs=0.1)
    diffs = rng.normal(0, 0.5, 20000) - rng.normal(0, 0.5, 20000)
    assert diffs.std() == pytest.approx(math.sqrt(2) * 0.5, rel=0.03)
    assert E.rule_d(0.1, 0.005, 0.5) == 0.71  # sqrt(2) x 0.5 = 0.7071, rounded up to the grid


# ------------------------------------------------------------------------------------------------- min_effect
def test_min_effect_defaults_to_all_images_and_the_pilot() -> None:
    assert E.min_effect("top1") == 1.0  # sqrt(2) x 0.4519 = 0.639 < the floor of 1 point
    assert E.min_effect("energy", run_sd=0.05) == 0.075  # sqrt(2) x 0.05 = 0.0707 -> 0.075, bucket all
    assert E.min_effect("top1", "medium") == 1.1  # sqrt(2) x 0.729 = 1.031 -> 1.1
    assert E.min_effect("erf_radius", "small") == 1.0  # no pilot SD: the floor


def test_min_effect_refusals_in_their_words() -> None:
    with pytest.raises(KeyError) as e:
        E.min_effect("iou", "small")
    assert e.value.args[0] == ("no d rule for metric 'iou'; known: top1, energy, pointing, coverage, maxboxacc, "
                               "erf_radius")
    with pytest.raises(KeyError) as e:
        E.min_effect("energy", "tiny")
    assert e.value.args[0] == "unknown bucket 'tiny'; known: small, medium, large, all"


# -------------------------------------------------------------------------------------------------- rule_json
def test_rule_json_writes_the_rule_its_inputs_and_its_output() -> None:
    rule = E.rule_json()
    assert set(rule) == {"rule", "floors", "run_sd", "run_sd_source", "d", "sensitivity"}
    assert rule["rule"] == ("d = max(floor, sqrt(2) x run SD), rounded up to the grid; sqrt(2) x run SD is the "
                            "spread of a one-run-each difference between two architectures")
    assert set(rule["floors"]) == {"top1", "energy", "pointing", "coverage", "maxboxacc", "erf_radius"}
    for entry in rule["floors"].values():
        assert set(entry) == {"value", "grid", "reason"} and entry["reason"]
    assert rule["floors"]["top1"]["value"] == 1.0 and rule["floors"]["top1"]["grid"] == 0.1
    assert rule["floors"]["erf_radius"]["grid"] == 0.25
    assert "one point of top-1" in rule["floors"]["top1"]["reason"]
    assert len(rule["run_sd"]) == 20 and rule["run_sd"]["top1/medium"] == 0.7290
    assert rule["run_sd"]["maxboxacc/large"] == 0.0198
    assert "pooled over" in rule["run_sd_source"] and "seeds 0-2" in rule["run_sd_source"]
    assert rule["d"]["top1"]["medium"] == 1.1 and rule["d"]["coverage"]["small"] == 0.03
    assert rule["sensitivity"] == ["d/2", "d", "2d"]


# ------------------------------------------------------------------------------------------------ sensitivity
@given(st.floats(-1, 1), st.floats(0, 1), st.floats(0.001, 0.5))
def test_a_larger_d_never_makes_a_verdict_easier_to_claim(low, width, d) -> None:
    out = E.sensitivity(low, low + width, d)
    assert list(out) == ["d/2", "d", "2d"]
    order = [out["d/2"], out["d"], out["2d"]]
    for claim in ("supported", "contradicted"):  # once lost with a larger d, never regained
        if claim in order:
            first = order.index(claim)
            assert all(v == claim for v in order[:first + 1])
    if "no meaningful difference" in order:  # once reached with a larger d, kept
        first = order.index("no meaningful difference")
        assert all(v == "no meaningful difference" for v in order[first:])
