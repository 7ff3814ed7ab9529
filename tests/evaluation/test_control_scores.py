"""The scores the scoring step stores per tap: the flat-map rule at every metric, the mismatched-box and
spread-matched controls, on hand-made maps whose answers are known.

The rules (``res2net/evaluation/control_scores.py``; README "Localisation claims are gains over image-blind
controls", "A flat (all-zero) map is a miss under every metric"; DESIGN.md: controls within a size bucket):

- ``flat_rule(scores, flat)``: every row ``flat`` marks (booleans, or 0/1 flags read back from a file) becomes a
  miss (energy and coverage 0, pointing false, the MaxBoxAcc IoU curve all 0); the other rows are untouched; the
  keys are those given (the IoU curve stays ``maxboxacc_iou``, never a second key); the IoU curves come back as
  float64 in a new array: the caller's arrays are never written to.
- Size buckets are those of ``boxes.size_bucket`` on the area of the union of an image's boxes: below 25% of the
  image "small", from 60% on "large" (an object of exactly 25% is medium, one of exactly 60% large), medium in
  between. The mismatched control of an image is its map scored against the boxes of image
  ``controls.mismatched_box_sources(bucket names, MISMATCH_SEED)[i]``: another image of its own bucket, the same
  one on every rerun; NaN for an image alone in its bucket.
- ``tap_scores``: full taps get energy, pointing, coverage and the IoU curve, branch taps energy and pointing;
  ``controls`` adds ``mismatch_`` and ``spread_`` energy, pointing and coverage, nothing else.
- Maps are scored as float64 whatever dtype they come in: float32 maps give the scores of the same values in
  float64, even a map whose peak is float32's smallest subnormal (half of it is 0 in float32, not in float64).
"""

from __future__ import annotations

import math

import hypothesis_profiles  # noqa: F401  (example counts: few in CI, more in the mutation run)
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from res2net.evaluation import control_scores as CS
from res2net.evaluation.control_scores import CONTROL_METRICS, CONTROLS, flat_rule, placement_scores, tap_scores
from res2net.metrics import boxes as L
from res2net.metrics import controls as C

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



# ---------------------------------------------------------------------------------------------- the flat rule
def test_the_flat_rule_misses_the_rows_marked_by_flags_and_writes_into_no_array_it_was_given() -> None:
    iou = np.full((3, 4), 0.5, dtype=np.float32)
    scores = {"energy": np.array([0.9, 0.8, 0.7]), "pointing": np.array([True, True, True]),
              "coverage": np.array([0.6, 0.5, 0.4]), "maxboxacc_iou": iou}
    out = flat_rule(scores, np.array([0, 1, 0]))  # 0/1 flags as a file gives them back: row 1 only is flat
    assert sorted(out) == ["coverage", "energy", "maxboxacc_iou", "pointing"]
    np.testing.assert_array_equal(out["energy"], [0.9, 0.0, 0.7])
    np.testing.assert_array_equal(out["pointing"], [True, False, True])
    np.testing.assert_array_equal(out["coverage"], [0.6, 0.0, 0.4])
    assert out["maxboxacc_iou"].dtype == np.float64
    np.testing.assert_array_equal(out["maxboxacc_iou"], [[0.5] * 4, [0.0] * 4, [0.5] * 4])
    np.testing.assert_array_equal(iou, 0.5)  # the caller's arrays are as they were
    np.testing.assert_array_equal(scores["energy"], [0.9, 0.8, 0.7])
    same = np.full((2, 3), 0.25)  # float64 already: still a new array
    out = flat_rule({"maxboxacc_iou": same}, np.array([True, False]))
    np.testing.assert_array_equal(out["maxboxacc_iou"], [[0.0] * 3, [0.25] * 3])
    np.testing.assert_array_equal(same, 0.25)


def test_a_full_tap_with_controls_stores_exactly_its_metrics_and_both_controls() -> None:
    out = tap_scores(np.stack([_spot(3, 3), _spot(20, 20)]), [[(0, 0, 8, 8)], [(16, 16, 24, 24)]], True,
                     controls=True)
    assert set(out) == {"energy", "pointing", "coverage", "maxboxacc_iou"} | {
        f"{c}_{m}" for c in CONTROLS for m in CONTROL_METRICS}


# ---------------------------------------------------------------------------------------- buckets and pairing
EDGE = 20  # a 20 x 20 image: 25% is a 10 x 10 box, 60% a 20 x 12 one, exactly


def _mismatch_found(boxes: list) -> np.ndarray:
    """Per image, whether the mismatched control found it a box (not NaN) on spot maps inside each box."""
    maps = np.zeros((len(boxes), EDGE, EDGE))
    for i, image_boxes in enumerate(boxes):
        x0, y0, _, _ = image_boxes[0]
        maps[i, y0, x0] = 1.0
    out = tap_scores(maps, boxes, True, controls=True)
    found = np.isfinite(out["mismatch_energy"])
    for m in CONTROL_METRICS:
        np.testing.assert_array_equal(np.isfinite(out[f"mismatch_{m}"]), found)
    return found


def test_an_object_of_exactly_a_quarter_is_medium_and_of_exactly_sixty_percent_large() -> None:
    quarter, tenth, sixty = [(0, 0, 10, 10)], [(0, 0, 5, 8)], [(0, 0, 20, 12)]
    assert [L.size_bucket(b[0], EDGE) for b in (quarter, tenth, sixty)] == ["medium", "small", "large"]
    # one image per bucket: none has a mismatched box
    assert not _mismatch_found([quarter, tenth, sixty]).any()
    # each with one of its own bucket: both paired
    assert _mismatch_found([quarter, [(2, 2, 18, 12)]]).all()  # 25% and 40%: medium
    assert _mismatch_found([sixty, [(0, 0, 20, 20)]]).all()  # 60% and 100%: large
    assert _mismatch_found([tenth, [(3, 3, 12, 14)]]).all()  # 10% and 24.75%: small
    # the union of an image's boxes decides: two 15% boxes apart make 30%, medium like the quarter
    assert _mismatch_found([quarter, [(0, 0, 10, 6), (10, 10, 20, 16)]]).all()


def _batch(rng: np.random.Generator, per_bucket: int) -> tuple[np.ndarray, list]:
    """``per_bucket`` small, medium and large boxes (one per image) on EDGE x EDGE, and peaked random maps."""
    boxes = []
    for lo, hi in ((0.05, 0.2), (0.3, 0.5), (0.65, 1.0)):
        while sum(lo <= L.box_fraction(b[0], EDGE) < hi for b in boxes) < per_bucket:
            w, h = rng.integers(2, EDGE + 1, size=2)
            x0, y0 = rng.integers(0, EDGE - w + 1), rng.integers(0, EDGE - h + 1)
            if lo <= w * h / EDGE**2 < hi:
                boxes.append([(int(x0), int(y0), int(x0 + w), int(y0 + h))])
    order = rng.permutation(len(boxes))
    return rng.random((len(boxes), EDGE, EDGE)) ** 6, [boxes[i] for i in order]


def test_the_mismatched_control_is_the_seeded_derangement_of_the_size_buckets_on_every_rerun() -> None:
    maps, boxes = _batch(np.random.default_rng(5), 5)
    src = C.mismatched_box_sources([L.size_bucket(b[0], EDGE) for b in boxes], CS.MISMATCH_SEED)
    assert (src >= 0).all() and (src != np.arange(len(boxes))).all()
    out = tap_scores(maps, boxes, True, controls=True)
    for i, j in enumerate(src):
        own = L.multi_box_scores(maps[i:i + 1], [boxes[j]], True)
        for m in CONTROL_METRICS:
            assert math.isclose(out[f"mismatch_{m}"][i], own[m][0], abs_tol=1e-12), (i, m)
    again = placement_scores(maps, boxes)
    for m in CONTROL_METRICS:
        np.testing.assert_array_equal(again[f"mismatch_{m}"], out[f"mismatch_{m}"])


@given(st.integers(2, 9), st.integers(0, 2**16))
def test_every_mismatched_box_comes_from_another_image_of_the_same_bucket(n: int, seed: int) -> None:
    """For any batch: an image alone in its bucket has NaN controls; every other image's mismatched scores are
    its map's scores against the boxes of one other image of its bucket; a flat map is a miss in both controls
    too."""
    rng = np.random.default_rng(seed)
    boxes = []
    for _ in range(n):
        w, h = rng.integers(1, EDGE + 1, size=2)
        x0, y0 = rng.integers(0, EDGE - w + 1), rng.integers(0, EDGE - h + 1)
        boxes.append([(int(x0), int(y0), int(x0 + w), int(y0 + h))])
    maps = rng.random((n, EDGE, EDGE)) ** 6
    maps[rng.random(n) < 0.2] = 0.0
    flat = maps.max((1, 2)) == 0
    out = tap_scores(maps, boxes, False, controls=True)
    buckets = [L.size_bucket(b[0], EDGE) for b in boxes]
    for i in range(n):
        mates = [j for j in range(n) if j != i and buckets[j] == buckets[i]]
        got = {m: out[f"mismatch_{m}"][i] for m in CONTROL_METRICS}
        if not mates:
            assert all(math.isnan(v) for v in got.values()), i
            continue
        if flat[i]:
            assert all(v == 0 for v in got.values()) and out["spread_energy"][i] == 0, i
            continue
        scored = [L.multi_box_scores(maps[i:i + 1], [boxes[j]], True) for j in mates]
        assert any(all(math.isclose(got[m], s[m][0], abs_tol=1e-12) for m in CONTROL_METRICS) for s in scored), i



def test_maps_are_scored_as_float64_whatever_their_dtype() -> None:
    tiny = np.finfo(np.float32).smallest_subnormal
    maps = np.zeros((3, SIDE, SIDE), dtype=np.float32)
    maps[0, 1, 1] = tiny  # a peak of one subnormal: coverage is the share of the box at it, 1 / 16
    maps[1, 30, 30] = tiny
    maps[2] = np.random.default_rng(1).random((SIDE, SIDE)).astype(np.float32) ** 4
    boxes = [[(0, 0, 4, 4)], [(28, 28, 32, 32)], [(8, 8, 12, 12)]]  # three small objects: each has a mismatch
    wide = maps.astype(np.float64)
    assert 0.5 * wide[0].max() > 0 and 0.5 * maps[0].max() == 0
    for got, want in ((tap_scores(maps, boxes, True, controls=True), tap_scores(wide, boxes, True, controls=True)),
                      (placement_scores(maps, boxes), placement_scores(wide, boxes))):
        assert set(got) == set(want)
        for k in got:
            np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    assert tap_scores(maps, boxes, True)["coverage"][0] == 1 / 16
