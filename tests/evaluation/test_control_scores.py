"""The scores the scoring step stores per tap: the flat-map rule at every metric, the mismatched-box and
spread-matched controls, on hand-made maps whose answers are known."""

from __future__ import annotations

import math

import numpy as np

from res2net.evaluation.control_scores import CONTROL_METRICS, CONTROLS, placement_scores, tap_scores

SIDE = 32


def _spot(y: int, x: int) -> np.ndarray:
    m = np.zeros((SIDE, SIDE))
    m[y, x] = 1.0
    return m


def test_a_flat_map_is_a_miss_under_every_metric_and_every_control() -> None:
    maps = np.stack([np.zeros((SIDE, SIDE)), np.full((SIDE, SIDE), 0.3), _spot(5, 5)])
    boxes = [[(0, 0, 32, 32)], [(0, 0, 32, 32)], [(0, 0, 10, 10)]]  # the box holds the whole image: still a miss
    out = tap_scores(maps, boxes, True, controls=True)
    for key, v in out.items():
        assert np.all(np.asarray(v[:2], dtype=np.float64) == 0), key  # no NaN: every metric keeps the image
    assert out["energy"][2] == 1.0 and bool(out["pointing"][2])
    assert out["maxboxacc_iou"].shape == (3, out["maxboxacc_iou"].shape[1]) and out["maxboxacc_iou"][2].max() > 0


def test_the_mismatched_control_scores_each_map_against_another_image_of_its_bucket() -> None:
    # two small objects in opposite corners, a third small one elsewhere, and one large object alone in its bucket
    boxes = [[(0, 0, 6, 6)], [(26, 26, 32, 32)], [(0, 26, 6, 32)], [(0, 0, 30, 30)]]
    maps = np.stack([_spot(2, 2), _spot(28, 28), _spot(28, 2), _spot(10, 10)])
    out = tap_scores(maps, boxes, True, controls=True)
    assert np.allclose(out["energy"], 1.0)  # every map sits in its own box
    # a derangement of three: each small map scored against one of the other two boxes, which hold none of it
    assert np.allclose(out["mismatch_energy"][:3], 0.0)
    assert np.allclose(out["mismatch_pointing"][:3], 0.0)
    assert math.isnan(out["mismatch_energy"][3])  # alone in its bucket: no mismatched box
    assert math.isnan(out["mismatch_coverage"][3]) and math.isnan(out["mismatch_pointing"][3])


def test_the_spread_matched_control_is_a_centred_blob_of_the_maps_spread() -> None:
    # a tight spot in a corner box: its own energy is 1; the control has the spot's spread at the centre, so a
    # centred box of the same size holds nearly all of its mass and a corner box none of it
    maps = np.stack([_spot(2, 2), _spot(2, 2)])
    boxes = [[(0, 0, 6, 6)], [(13, 13, 19, 19)]]
    out = tap_scores(maps, boxes, True, controls=True)
    assert out["spread_energy"][0] < 1e-6
    assert out["spread_energy"][1] > 0.99 and out["spread_pointing"][1] == 1.0
    assert "spread_maxboxacc_iou" not in out  # MaxBoxAcc has no control (its IoU curves cost ten times more)


def test_branch_taps_get_no_controls_and_no_full_metrics() -> None:
    out = tap_scores(np.stack([_spot(3, 3)]), [[(0, 0, 8, 8)]], False)
    assert sorted(out) == ["energy", "pointing"]


def test_placement_scores_are_the_tap_scores_of_the_same_maps() -> None:
    """The sensitivity rescoring uses the same metrics and controls as the claims' own columns: on the same placed
    maps both give the same numbers."""
    rng = np.random.default_rng(3)
    maps = rng.random((6, 16, 16)) ** 4
    maps[2] = 0.0  # a flat map: a miss everywhere, in both
    boxes = [[(0, 0, 4, 4)], [(2, 2, 14, 14)], [(5, 5, 9, 12)], [(1, 8, 6, 15)], [(0, 0, 16, 16)], [(3, 3, 5, 5)]]
    full = tap_scores(maps, boxes, True, controls=True)
    placed = placement_scores(maps, boxes)
    assert set(placed) == set(CONTROL_METRICS) | {f"{c}_{m}" for c in CONTROLS for m in CONTROL_METRICS}
    for k, v in placed.items():
        np.testing.assert_array_equal(v, np.asarray(full[k], dtype=np.float64), err_msg=k)
