"""Rules of the box scores, written down first and then tested on hand-worked boxes: IoU of boxes that meet along
one axis only, degenerate boxes, MaxBoxAcc's input, the box's area fraction and the large bucket's edge."""

from __future__ import annotations

import numpy as np
import pytest

from res2net.metrics import boxes as L


def test_box_iou_of_boxes_apart_along_one_axis_is_zero() -> None:
    """Rule: boxes that share a column range but not a row range (or the other way round) do not intersect."""
    assert L.box_iou((0, 0, 4, 4), (6, 0, 10, 4)) == 0.0  # side by side
    assert L.box_iou((0, 0, 4, 4), (0, 6, 4, 10)) == 0.0  # one above the other


def test_box_iou_uses_x_ends_for_width_and_y_ends_for_height() -> None:
    """Rule: the intersection is (overlap of [x0, x1)) x (overlap of [y0, y1)); tall and wide boxes by hand."""
    # 4 x 10 boxes shifted by 2 in x: intersection 2 x 10 = 20, union 40 + 40 - 20 = 60
    assert L.box_iou((0, 0, 4, 10), (2, 0, 6, 10)) == pytest.approx(20 / 60)
    # 10 x 4 boxes shifted by 2 in y: the same numbers with the axes swapped
    assert L.box_iou((0, 0, 10, 4), (0, 2, 10, 6)) == pytest.approx(20 / 60)
    assert L.box_iou((0, 0, 4, 10), (0, 0, 10, 4)) == pytest.approx(16 / (40 + 40 - 16))


def test_box_iou_of_a_one_pixel_box_with_itself_is_one_and_of_empty_boxes_zero() -> None:
    """Rule: IoU of a box with itself is 1, however small; boxes with no area have IoU 0 (never a division by 0)."""
    assert L.box_iou((3, 3, 4, 4), (3, 3, 4, 4)) == 1.0
    assert L.box_iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0
    assert L.box_iou((2, 2, 2, 5), (2, 2, 2, 5)) == 0.0


def test_max_box_acc_needs_a_non_empty_table_of_curves() -> None:
    """Rule: MaxBoxAcc takes (images, thresholds) curves with at least one image; a single curve or no image is
    refused with a message, never scored."""
    with pytest.raises(ValueError, match="curves must be"):
        L.max_box_acc(np.ones(5))
    with pytest.raises(ValueError, match="curves must be"):
        L.max_box_acc(np.zeros((0, len(L.BOXACC_THRESHOLDS))))
    assert L.max_box_acc(np.array([[0.5, 0.2], [0.1, 0.6]])) == 0.5  # one threshold for all: 1 of 2 at either


def test_box_fraction_is_the_boxs_area_over_the_images_away_from_the_origin() -> None:
    """Rule: the uniform map's share is (x1 - x0)(y1 - y0) / (H W), wherever the box lies."""
    assert L.box_fraction((10, 20, 30, 60), 100) == pytest.approx(20 * 40 / 100**2)
    assert L.box_fraction((5, 1, 9, 3), (4, 10)) == pytest.approx(4 * 2 / 40)


def test_a_box_of_exactly_sixty_percent_is_large() -> None:
    """Rule: 'large' starts at 60% of the image, the edge included; 'small' ends below 25%."""
    assert L.size_bucket((0, 0, 60, 100), 100) == "large"
    assert L.size_bucket((0, 0, 59, 100), 100) == "medium"
    assert L.size_bucket((0, 0, 25, 100), 100) == "medium" and L.size_bucket((0, 0, 24, 100), 100) == "small"
