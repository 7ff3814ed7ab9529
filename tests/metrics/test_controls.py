"""Image-blind controls and the shared protocol rules, on tiny hand-made maps and boxes with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from res2net.metrics import boxes as L
from res2net.metrics import controls as C


def test_mismatched_boxes_are_a_derangement_within_each_bucket() -> None:
    buckets = np.array(["s", "l", "s", "s", "l", "m", "s", "l"])
    boxes = np.array([[i, i, i + 10, i + 10] for i in range(8)])  # all distinct
    for seed in range(200):
        src = C.mismatched_box_sources(buckets, seed)
        assert src[5] == -1  # alone in its bucket: no mismatched box
        others = np.flatnonzero(src >= 0)
        assert (src[others] != others).all()  # nobody keeps its own box
        assert (buckets[src[others]] == buckets[others]).all()  # same size bucket
        for b in ("s", "l"):  # every box of a bucket used exactly once
            idx = np.flatnonzero(buckets == b)
            assert sorted(src[idx]) == list(idx)
        mis, keep = C.mismatched_boxes(boxes, buckets, seed)
        assert (keep == (src >= 0)).all()
        assert not (mis[keep] == boxes[keep]).all(1).any()  # never the image's own box
        assert tuple(mis[5]) == C.NO_BOX
    assert np.array_equal(C.mismatched_box_sources(buckets, 3), C.mismatched_box_sources(buckets, 3))
    with pytest.raises(ValueError):  # a NO_BOX row cannot be scored by mistake
        L.energy_in_box(np.ones((1, 16, 16)), np.array([C.NO_BOX]))


def test_mismatched_sources_are_uniform_over_derangements() -> None:
    # 4 images: 9 derangements, 3 of them two swaps (a single random cycle would never draw those)
    swaps = 0
    for seed in range(900):
        src = C.mismatched_box_sources(np.zeros(4), seed)
        swaps += bool((src[src] == np.arange(4)).all())
    assert swaps / 900 == pytest.approx(1 / 3, abs=0.06)


def _gaussian(h: int, w: int, cy: float, cx: float, sy: float, sx: float) -> np.ndarray:
    y, x = np.arange(h)[:, None], np.arange(w)[None, :]
    return np.exp(-0.5 * ((y - cy) / sy) ** 2 - 0.5 * ((x - cx) / sx) ** 2)


def test_spread_matched_prior_recovers_a_gaussian_maps_sigma_at_the_centre() -> None:
    maps = np.stack([_gaussian(64, 64, 20, 44, 4.0, 4.0), _gaussian(64, 64, 31.5, 31.5, 3.0, 6.0)])
    centroid, cov = C.map_moments(maps)
    assert centroid[0] == pytest.approx([20, 44], abs=1e-4)  # (the tails cut by the border, 5 sigma out)
    assert np.sqrt(cov[0].diagonal()) == pytest.approx([4.0, 4.0], rel=0.01)
    assert np.sqrt(cov[1].diagonal()) == pytest.approx([3.0, 6.0], rel=0.01) and cov[1, 0, 1] == pytest.approx(0)
    prior = C.spread_matched_prior(maps)
    # the control is the map's own shape moved to the centre: a Gaussian of sigma 4 about (31.5, 31.5)
    assert prior[0] == pytest.approx(_gaussian(64, 64, 31.5, 31.5, 4.0, 4.0), abs=0.005)  # (1/12 px^2 wider)
    assert prior[1] == pytest.approx(maps[1], abs=0.005)  # a centred map is its own control


def test_spread_matched_prior_of_a_one_pixel_map_and_a_flat_map() -> None:
    m = np.zeros((3, 8, 8))
    m[0, 1, 6] = 1.0  # one pixel: its spread is the pixel itself (variance 1/12 each way)
    m[2] = 0.5  # constant: no location
    _, cov = C.map_moments(m[:1])
    assert cov[0] == pytest.approx(np.eye(2) / 12)
    prior = C.spread_matched_prior(m)
    # centre (3.5, 3.5): the four middle pixels at 0.5 px each way, exp(-0.5 * 12 * (0.25 + 0.25))
    assert prior[0, 3:5, 3:5] == pytest.approx(np.full((2, 2), math.exp(-3.0)))
    assert prior[0].argmax() in (27, 28, 35, 36) and prior[0, 0, 0] < 1e-30
    assert (prior[1] == 0).all() and (prior[2] == 0).all()  # flat maps: the control misses too


def test_centre_containing_boxes_by_hand() -> None:
    boxes = np.array([[0, 0, 32, 32],  # corner at the centre: its border runs through (32, 32)
                      [31, 31, 33, 33],  # 2x2 around the centre
                      [0, 0, 64, 64],
                      [40, 0, 64, 64],  # right half only
                      [0, 31, 64, 33],  # a thin horizontal band through the centre
                      [0, 0, 32, 64], [32, 0, 64, 64],  # left and right halves: the centre on their border
                      [0, 0, 64, 32], [0, 32, 64, 64]])  # top and bottom halves
    assert C.contains_centre(boxes, 64).tolist() == [False, True, True, False, True, False, False, False, False]
    # non-square (H, W) = (20, 40): centre (x, y) = (20, 10)
    assert C.contains_centre(np.array([[19, 9, 21, 11], [19, 11, 21, 15]]), (20, 40)).tolist() == [True, False]


def test_flat_maps_are_a_miss_under_every_metric() -> None:
    maps = np.zeros((3, 16, 16))
    maps[0, 4:8, 4:8] = 1.0  # a real map on the box
    maps[2] = 0.7  # constant
    boxes = np.array([[4, 4, 8, 8]] * 3)
    flat = C.flat_maps(maps)
    assert flat.tolist() == [False, True, True]
    raw = {"energy": L.energy_in_box(maps, boxes), "pointing": L.pointing_game(maps, boxes),
           "coverage": L.coverage(maps, boxes), "maxboxacc": L.iou_curve(maps, boxes) >= L.BOXACC_IOU}
    # today the metrics disagree on flat maps: energy NaN or the box fraction, coverage 1 for a constant map
    assert math.isnan(raw["energy"][1]) and raw["energy"][2] == pytest.approx(16 / 256) and raw["coverage"][2] == 1
    ruled = C.apply_flat_map_rule(raw, flat)
    for name, v in ruled.items():
        assert not np.any(v[1:]), name  # a miss everywhere
        assert np.array_equal(v[0], raw[name][0]), name  # real maps untouched
    assert ruled["energy"][0] == 1.0 and ruled["pointing"][0] and np.isfinite(ruled["energy"]).all()
    with pytest.raises(KeyError):
        C.apply_flat_map_rule({"iou": np.zeros(3)}, flat)


def test_maxboxacc_threshold_is_chosen_on_held_out_images() -> None:
    # 3 thresholds. Held-out images favour threshold 0; the reported images alone would favour threshold 2.
    hits = np.array([[1, 0, 0], [1, 1, 0], [1, 0, 0],  # held out
                     [0, 0, 1], [0, 1, 1], [1, 0, 1], [0, 0, 1]], dtype=bool)
    heldout = np.array([True] * 3 + [False] * 4)
    t, per_image = C.boxacc_at_heldout_threshold(hits, heldout)
    assert t == 0
    assert np.isnan(per_image[:3]).all() and per_image[3:].tolist() == [0, 0, 1, 0]
    assert np.nanmean(per_image) == 0.25  # not 1.0, which the threshold picked on these images would report
    assert C.choose_threshold(np.array([[1, 1], [0, 0]], dtype=bool)) == 0  # ties: the lowest threshold
    with pytest.raises(ValueError):
        C.boxacc_at_heldout_threshold(hits, np.ones(7, dtype=bool))


def test_heldout_split_per_class() -> None:
    labels = np.repeat([0, 1, 2], [10, 5, 1])
    ho = C.heldout_split(labels, fraction=0.2, seed=0)
    assert [int(ho[labels == c].sum()) for c in range(3)] == [2, 1, 0]
    assert np.array_equal(ho, C.heldout_split(labels, fraction=0.2, seed=0))
    assert C.heldout_split(np.repeat([0], 2), fraction=0.9).sum() == 1  # never all of a class
