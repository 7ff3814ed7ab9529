"""Localisation metrics on synthetic maps and boxes with answers computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from res2net.metrics.boxes import box_fraction, box_iou, cam_box_iou, energy_in_box, pointing_game, size_bucket
from res2net.metrics.statistics import CI, bootstrap_ci, paired_diff_ci, verdict


def test_energy_in_box_by_hand() -> None:
    cam = np.zeros((4, 4))
    cam[0, 0], cam[1, 1], cam[3, 3] = 1.0, 2.0, 1.0  # total 4
    assert energy_in_box(cam, (0, 0, 2, 2)) == pytest.approx(0.75)  # (0,0) and (1,1) inside
    assert energy_in_box(cam, (1, 1, 4, 4)) == pytest.approx(0.75)  # (1,1) and (3,3)
    assert energy_in_box(cam, (3, 0, 4, 3)) == 0.0  # exclusive end: row 3 is outside
    assert energy_in_box(torch.ones(8, 8), (0, 0, 4, 2)) == pytest.approx(box_fraction((0, 0, 4, 2), 8))
    assert math.isnan(energy_in_box(np.zeros((4, 4)), (0, 0, 2, 2)))


def test_pointing_game_tolerance_scales_with_image_size() -> None:
    cam = np.zeros((224, 224))
    cam[10, 10] = 1.0  # peak at x = 10, y = 10
    assert pointing_game(cam, (5, 5, 20, 20))
    assert pointing_game(cam, (12, 0, 30, 30))  # 2 px left of the box, tolerance 15 px
    assert not pointing_game(cam, (12, 0, 30, 30), tolerance=0)
    assert not pointing_game(cam, (26, 0, 40, 30))  # 16 px away
    assert not pointing_game(cam, (21, 21, 40, 40))  # diagonal: sqrt(11^2 + 11^2) = 15.6 > 15
    assert pointing_game(cam, (20, 20, 40, 40))  # sqrt(10^2 + 10^2) = 14.1
    small = np.zeros((64, 64))
    small[10, 10] = 1.0  # tolerance 15/224 * 64 = 4.29 px
    assert pointing_game(small, (14, 0, 30, 30)) and not pointing_game(small, (15, 0, 30, 30))
    assert not pointing_game(np.ones((64, 64)), (0, 0, 64, 64))  # a flat map has no peak


def test_cam_box_iou_largest_component_and_all() -> None:
    cam = np.zeros((10, 10))
    cam[1:3, 1:3] = 1.0  # 4 px blob
    cam[5:9, 4:8] = 0.9  # 16 px blob, above half the max
    assert cam_box_iou(cam, (4, 5, 8, 9)) == pytest.approx(1.0)
    assert cam_box_iou(cam, (4, 5, 8, 9), region="all") == pytest.approx(16 / 56)  # all: box (1,1)-(8,9) = 7x8
    assert cam_box_iou(cam, (4, 5, 8, 9), threshold=0.95) == 0.0  # only the small blob survives
    diagonal = np.eye(6)  # 8-connected: one component
    assert cam_box_iou(diagonal, (0, 0, 6, 6)) == pytest.approx(1.0)
    assert cam_box_iou(np.zeros((5, 5)), (0, 0, 2, 2)) == 0.0


def test_box_iou_by_hand() -> None:
    assert box_iou((0, 0, 2, 2), (1, 1, 3, 3)) == pytest.approx(1 / 7)
    assert box_iou((0, 0, 2, 2), (2, 2, 3, 3)) == 0.0


def test_batched_maps_and_boxes() -> None:
    cams = torch.zeros(2, 4, 4)
    cams[0, 0, 0], cams[1, 3, 3] = 1.0, 1.0
    np.testing.assert_allclose(energy_in_box(cams, [(0, 0, 2, 2), (0, 0, 2, 2)]), [1.0, 0.0])
    assert pointing_game(cams, np.array([[0, 0, 1, 1], [0, 0, 1, 1]]), tolerance=0).tolist() == [True, False]
    with pytest.raises(ValueError, match=r"boxes of shape \(2, 4\)"):
        energy_in_box(cams, [(0, 0, 2, 2)])


def test_box_fraction_and_size_buckets() -> None:
    assert box_fraction((0, 0, 32, 32), 64) == 0.25
    assert size_bucket((0, 0, 31, 32), 64) == "small"  # 0.242
    assert size_bucket((0, 0, 32, 32), 64) == "medium"  # exactly 25%
    assert size_bucket((0, 0, 64, 38), 64) == "medium"  # 0.594
    assert size_bucket((0, 0, 64, 39), (64, 64)) == "large"  # 0.609
    assert box_fraction((0, 0, 10, 5), (5, 20)) == 0.5


@pytest.mark.parametrize(
    ("cam", "box", "match"),
    [
        (np.zeros((4, 4)), (0, 0, 5, 2), "outside"),
        (np.zeros((4, 4)), (2, 0, 2, 2), "empty"),
        (np.zeros((4, 4)), (0, 0, 1.5, 2), "whole pixels"),
        (np.zeros((4, 4)), (0, 0, 2), r"\(x0, y0, x1, y1\)"),
        (np.zeros(4), (0, 0, 1, 1), r"shape \(H, W\)"),
        (np.full((4, 4), np.nan), (0, 0, 1, 1), "NaN"),
        (-np.ones((4, 4)), (0, 0, 1, 1), "non-negative"),
    ],
)
def test_bad_maps_and_boxes_are_rejected(cam: np.ndarray, box: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        energy_in_box(cam, box)


def test_bootstrap_ci() -> None:
    const = bootstrap_ci([0.3] * 20)
    assert np.allclose(const, (0.3, 0.3, 0.3))
    coin = [0.0, 1.0] * 50  # mean 0.5, standard error 0.05: 95% interval about 0.40 .. 0.60
    est, lo, hi = bootstrap_ci(coin, n=2000, seed=1)
    assert est == 0.5 and 0.38 < lo < 0.43 and 0.57 < hi < 0.62
    assert bootstrap_ci(coin, seed=3) == bootstrap_ci(coin, seed=3)
    with pytest.raises(ValueError, match="1 of 3 values are NaN"):
        bootstrap_ci([1.0, float("nan"), 2.0])
    with pytest.raises(ValueError, match="at least one"):
        bootstrap_ci([])


def test_paired_difference_and_verdicts() -> None:
    rng = np.random.default_rng(0)
    base = rng.random(200)
    better = paired_diff_ci(base + 0.05, base)  # a constant paired gain: tight interval at 0.05
    assert better.low == pytest.approx(0.05) and verdict(better, 0.01) == "supported"
    d = 0.02
    table = [  # (low, high) -> verdict, at every edge of the rule
        ((0.03, 0.05), "supported"), ((0.02, 0.05), "inconclusive"), ((0.0201, 0.05), "supported"),
        ((-0.05, -0.03), "contradicted"), ((-0.05, -0.02), "inconclusive"), ((-0.05, -0.0201), "contradicted"),
        ((-0.02, 0.02), "no meaningful difference"), ((-0.01, 0.005), "no meaningful difference"),
        ((-0.03, 0.01), "inconclusive"), ((0.01, 0.03), "inconclusive"), ((-0.05, 0.05), "inconclusive"),
        ((0.001, 0.004), "no meaningful difference"),  # real but negligible
    ]
    for interval, expected in table:
        assert verdict(interval, d) == expected, interval
        assert verdict(CI(sum(interval) / 2, *interval), d) == expected
    assert verdict((float("nan"), 0.1), d) == "inconclusive"
    with pytest.raises(ValueError, match="minimum meaningful effect"):
        verdict((0.1, 0.2), 0.0)
    with pytest.raises(ValueError, match="above high"):
        verdict((0.2, 0.1), d)
    with pytest.raises(ValueError, match="same shape"):
        paired_diff_ci([1, 2], [1])
