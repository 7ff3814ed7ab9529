"""The d rule and its sensitivity table, each against hand-computed values."""

from __future__ import annotations

import math

import pytest

from res2net.metrics import effect_size as E


def test_rule_takes_the_larger_of_floor_and_root_two_run_sds_rounded_up() -> None:
    assert E.rule_d(0.02, 0.005, 0.01) == 0.02  # sqrt(2) x 0.01 = 0.0141 < floor
    assert E.rule_d(0.02, 0.005, 0.02) == 0.03  # sqrt(2) x 0.02 = 0.0283, rounded up to the grid
    assert E.rule_d(0.03, 0.005, 0.03 / math.sqrt(2)) == 0.03  # exactly on the grid stays there
    assert E.rule_d(1.0, 0.1, 0.729) == 1.1  # 1.031 points -> 1.1
    assert E.rule_d(1.0, 0.25, None) == 1.0  # no run SD: the floor
    with pytest.raises(ValueError):
        E.rule_d(0.0, 0.005, 0.01)


def test_pooled_run_sd_by_hand() -> None:
    # a: runs 1, 3 (sum of squares 2, 1 df); b: 0, 1, 2 (sum of squares 2, 2 df) -> sqrt(4 / 3)
    assert E.pooled_run_sd({"a": [1, 3], "b": [0, 1, 2], "one run": [5]}) == pytest.approx(math.sqrt(4 / 3))
    with pytest.raises(ValueError):
        E.pooled_run_sd({"one run": [5]})


def test_pilot_table_follows_the_rule() -> None:
    # by hand from PILOT_RUN_SD: only top-1 on medium objects (sqrt(2) x 0.729 = 1.031) rises above its floor
    table = E.min_effect_table()
    assert table["top1"] == {"small": 1.0, "medium": 1.1, "large": 1.0, "all": 1.0}
    assert set(table["energy"].values()) == {0.02}
    for m in ("pointing", "coverage", "maxboxacc"):
        assert set(table[m].values()) == {0.03}
    assert table["erf_radius"]["all"] == 1.0  # no pilot SD: the floor
    assert E.min_effect("energy", "small", run_sd=0.05) == 0.075  # a measured SD overrides the pilot's
    with pytest.raises(KeyError):
        E.min_effect("iou", "small")
    rule = E.rule_json()
    assert rule["d"] == table and "sqrt(2)" in rule["rule"] and rule["floors"]["energy"]["value"] == 0.02


def test_sensitivity_at_half_and_double_d() -> None:
    assert E.sensitivity(0.015, 0.05, 0.02) == {"d/2": "supported", "d": "inconclusive", "2d": "inconclusive"}
    assert E.sensitivity(-0.01, 0.015, 0.02) == {"d/2": "inconclusive", "d": "no meaningful difference",
                                                  "2d": "no meaningful difference"}
    assert E.sensitivity(-0.05, -0.045, 0.02) == {"d/2": "contradicted", "d": "contradicted", "2d": "contradicted"}
