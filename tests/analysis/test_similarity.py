"""Spearman rank correlation and SSIM against small cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from res2net.analysis.similarity import spearman, ssim, unit_range

C1, C2 = 0.01 ** 2, 0.03 ** 2  # SSIM's constants for a data range of 1


def test_spearman_with_a_tie_by_hand() -> None:
    # ranks of b: 5->1, 6->2, 7->3.5 (tied), 8->5; centred ranks a: -2..2, b: -2, -1, .5, 2, .5
    # sum of products 8, sums of squares 10 and 9.5
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(8 / math.sqrt(95), abs=1e-12)


def test_spearman_sees_only_the_order() -> None:
    a = np.array([[0.1, 3.0], [2.0, 7.5]])
    assert spearman(a, np.exp(a)) == pytest.approx(1.0)
    assert spearman(a, -a ** 3) == pytest.approx(-1.0)
    assert math.isnan(spearman(a, np.ones_like(a)))  # a flat map has no order
    with pytest.raises(ValueError):
        spearman(a, np.ones(3))


def test_ssim_of_one_window_by_hand() -> None:
    x = np.array([[0.0, 1.0], [0.0, 1.0]])
    # one 2x2 window: means 0.5 and 0.5, sample variances 1/3 each, sample covariance -1/3
    expected = ((2 * 0.25 + C1) * (-2 / 3 + C2)) / ((0.5 + C1) * (2 / 3 + C2))
    assert ssim(x, 1 - x) == pytest.approx(expected, abs=1e-12)
    assert ssim(x, x) == pytest.approx(1.0)


def test_ssim_averages_sliding_windows_by_hand() -> None:
    x = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    y = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    # window of columns 0-1: both all zero -> 1; columns 1-2: means 1/2 and 1/4, variances 1/3 and 1/4, cov 1/6
    second = ((2 * 0.5 * 0.25 + C1) * (2 / 6 + C2)) / ((0.25 + 0.0625 + C1) * (1 / 3 + 1 / 4 + C2))
    assert ssim(x, y, window=2) == pytest.approx((1 + second) / 2, abs=1e-12)
    assert ssim(x, y) == pytest.approx((1 + second) / 2, abs=1e-12)  # a 2-row map: the 7-px window shrinks to 2


def test_unit_range() -> None:
    np.testing.assert_allclose(unit_range(np.array([2.0, 4.0, 3.0])), [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(unit_range(np.full((2, 2), 5.0)), np.zeros((2, 2)))
