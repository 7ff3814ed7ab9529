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


def test_max_box_acc_of_one_image_and_its_message() -> None:
    """Rule: one image is a valid set (its best threshold decides); a refusal says what shape was expected."""
    assert L.max_box_acc(np.array([[0.2, 0.7]])) == 1.0
    with pytest.raises(ValueError, match=r"^curves must be \(N > 0, thresholds\), got \(5,\)$"):
        L.max_box_acc(np.ones(5))


def test_centre_prior_by_hand_and_its_width_must_be_positive() -> None:
    """Rule: the prior is exp(-d^2 / (2 sigma^2)) about the image centre, peak 1; any positive width works (below
    one pixel too), zero or less is refused."""
    p = L.centre_prior(5, 2.0)
    assert p[2, 2] == 1.0 and p[0, 2] == pytest.approx(np.exp(-0.5)) and p[0, 0] == pytest.approx(np.exp(-1.0))
    assert L.centre_prior((3, 7), 0.5)[1, 0] == pytest.approx(np.exp(-0.5 * (3 / 0.5) ** 2))
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match=r"^sigma must be positive, got"):
            L.centre_prior(8, bad)


def test_fitting_the_prior_needs_a_box() -> None:
    """Rule: a width fitted on no box is refused with a message naming the function."""
    with pytest.raises(ValueError, match=r"^fit_centre_prior_sigma needs at least one box$"):
        L.fit_centre_prior_sigma(np.zeros((0, 4), dtype=int), 64)


def test_energy_and_coverage_do_not_depend_on_the_maps_scale() -> None:
    """Rule: energy is a share of the map's total and coverage a share of the box above a fraction of the map's max:
    a map scaled by any positive factor (totals below one too) scores the same; one map gives a float."""
    rng = np.random.default_rng(0)
    m = rng.random((16, 16))
    box = (3, 4, 11, 9)
    for scale in (1e-3, 0.5, 7.0):
        assert L.energy_in_box(m * scale, box) == pytest.approx(L.energy_in_box(m, box))
        assert L.coverage(m * scale, box) == pytest.approx(L.coverage(m, box))
    assert isinstance(L.coverage(m, box), float) and isinstance(L.energy_in_box(m, box), float)
    assert L.coverage(m, box, threshold=0.9) < L.coverage(m, box, threshold=0.2)


def test_iou_curve_takes_one_threshold_or_a_table_of_them() -> None:
    """Rule: thresholds may come as a scalar, a list or any array; the curve has one value per threshold, and one
    map gives one curve."""
    m = np.zeros((10, 10))
    m[2:6, 3:8] = 1.0
    box = (3, 2, 8, 6)
    assert L.iou_curve(m, box, 0.5).shape == (1,) and L.iou_curve(m, box, 0.5)[0] == 1.0
    assert L.iou_curve(m, box, [[0.3, 0.6]]).tolist() == [1.0, 1.0]
    assert L.iou_curve(m, box).shape == (len(L.BOXACC_THRESHOLDS),)


def _largest_component_box(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boxes (x0, y0, x1, y1) of every largest 8-connected component, by a plain flood fill."""
    h, w = mask.shape
    seen = np.zeros_like(mask, dtype=bool)
    comps = []
    for y in range(h):
        for x in range(w):
            if mask[y, x] and not seen[y, x]:
                stack, pix = [(y, x)], []
                seen[y, x] = True
                while stack:
                    cy, cx = stack.pop()
                    pix.append((cy, cx))
                    for dy in (-1, 0, 1):
                        for dx in (-1, 0, 1):
                            ny, nx = cy + dy, cx + dx
                            if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                                seen[ny, nx] = True
                                stack.append((ny, nx))
                ys, xs = zip(*pix, strict=True)
                comps.append((len(pix), (min(xs), min(ys), max(xs) + 1, max(ys) + 1)))
    best = max((n for n, _ in comps), default=0)
    return [b for n, b in comps if n == best]


@pytest.mark.parametrize("seed", range(4))
def test_batched_iou_curves_match_a_flood_fill_per_map(seed: int) -> None:
    """Rule: per map and threshold, the predicted box is the box of the largest 8-connected component of the
    min-max normalised map >= the threshold; batches of maps with blobs at odd and even rows, near the top or the
    bottom, give each map's own answer (ties: IoU of one of the tied components)."""
    rng = np.random.default_rng(seed)
    n, h, w = 6, 13, 11
    maps = np.zeros((n, h, w))
    boxes = []
    for i in range(n):
        for _ in range(int(rng.integers(1, 4))):  # a few blobs of random height and place
            y0, x0 = int(rng.integers(0, h - 2)), int(rng.integers(0, w - 2))
            y1, x1 = int(rng.integers(y0 + 1, h + 1)), int(rng.integers(x0 + 1, w + 1))
            maps[i, y0:y1, x0:x1] += rng.random()
        maps[i] += 0.05 * rng.random((h, w)) * (i % 2)
        y0, x0 = int(rng.integers(0, h - 3)), int(rng.integers(0, w - 3))
        boxes.append((x0, y0, int(rng.integers(x0 + 1, w + 1)), int(rng.integers(y0 + 1, h + 1))))
    got = L.iou_curve(maps, np.array(boxes))
    for i in range(n):
        lo, hi = maps[i].min(), maps[i].max()
        for k, t in enumerate(L.BOXACC_THRESHOLDS):
            cands = _largest_component_box((maps[i] - lo) / (hi - lo) >= t)
            want = [L.box_iou(c, boxes[i]) for c in cands]
            assert any(got[i, k] == pytest.approx(v) for v in want), (i, t, got[i, k], want)


def test_energy_refuses_a_negative_map_saying_it_needs_a_cam_after_its_relu() -> None:
    """Rule: energy is a share of a non-negative total; a negative map is refused, saying what is expected."""
    with pytest.raises(ValueError) as e:
        L.energy_in_box(np.array([[1.0, -0.5], [0.0, 0.0]]), (0, 0, 1, 1))
    assert str(e.value) == "energy_in_box needs a non-negative map (a CAM after its ReLU)"


def test_prior_scores_score_each_image_once_with_the_scores_types(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rules: the prior's scores are computed in chunks of ``chunk`` images, each image scored once, with its own
    fold's width; pointing hits stay booleans and the other scores floats, as ``multi_box_scores`` returns them."""
    boxes = [[(10, 10, 20, 20)], [(0, 0, 8, 8)], [(30, 2, 40, 60)], [(20, 20, 44, 44)], [(5, 40, 15, 50)]]
    fold = np.array([0, 1, 0, 1, 0])
    scored: list[int] = []
    real = L.multi_box_scores

    def counting(maps: np.ndarray, bs: list, full: bool) -> dict[str, np.ndarray]:
        scored.append(len(bs))
        return real(maps, bs, full)

    monkeypatch.setattr(L, "multi_box_scores", counting)
    out = L.prior_scores(boxes, 64, [6.0, 15.0], fold, chunk=2)
    assert sorted(scored) == [1, 2, 2] and sum(scored) == len(boxes)  # fold 0: 3 images in 2 + 1, fold 1: 2
    assert out["pointing"].dtype == bool and out["energy"].dtype == np.float64
    assert out["maxboxacc_iou"].shape == (5, len(L.BOXACC_THRESHOLDS))
    for i, b in enumerate(boxes):
        prior = L.centre_prior(64, (6.0, 15.0)[fold[i]])
        assert out["energy"][i] == pytest.approx(prior[b[0][1]:b[0][3], b[0][0]:b[0][2]].sum() / prior.sum())
    # either width peaks at the centre (31.5, 31.5): only the boxes around it are within reach (15/224 x 64 px)
    assert out["pointing"].tolist() == [False, False, True, True, False]


def test_an_image_size_needs_both_sides_of_at_least_one_pixel() -> None:
    """Rule: an (h, w) image size is refused, with the size, when either side is below one pixel; 1 px is a size."""
    for bad in ((0, 5), (5, 0), (0, 0)):
        with pytest.raises(ValueError) as e:
            L.centre_prior(bad, 1.0)
        assert str(e.value) == f"image size must be positive, got {bad!r}"
    assert L.centre_prior((1, 3), 1.0).shape == (1, 3) and L.centre_prior((3, 1), 1.0).shape == (3, 1)


def test_multi_box_scores_refuses_non_finite_maps_and_computes_in_float64() -> None:
    """Rules: NaN or infinite maps are refused in those words; float32 maps get exactly the scores of their float64
    copies (sums and shares in float64)."""
    with pytest.raises(ValueError) as e:
        L.multi_box_scores(np.array([[[0.0, np.nan]]]), [[(0, 0, 1, 1)]], True)
    assert str(e.value) == "the maps contain NaN or infinite values"
    rng = np.random.default_rng(3)
    maps = rng.random((4, 9, 11)).astype(np.float32)
    boxes = [[(1, 1, 5, 6)], [(0, 0, 11, 9)], [(3, 2, 4, 3), (6, 5, 11, 9)], [(2, 7, 9, 9)]]
    got, want = L.multi_box_scores(maps, boxes, True), L.multi_box_scores(maps.astype(np.float64), boxes, True)
    for k in want:
        assert got[k].dtype == want[k].dtype and np.array_equal(got[k], want[k]), k


def test_multi_box_scores_use_the_union_the_caller_passes() -> None:
    """Rule: a union passed by the caller (computed once for several maps scored against the same boxes) is the
    union energy and coverage are taken over."""
    maps = np.zeros((1, 4, 4))
    maps[0, 0, 0], maps[0, 3, 3] = 1.0, 3.0
    other = L.union_masks([[(2, 2, 4, 4)]], (4, 4))
    out = L.multi_box_scores(maps, [[(0, 0, 1, 1)]], True, union=other)
    assert out["energy"][0] == pytest.approx(0.75) and out["coverage"][0] == pytest.approx(0.25)


def test_fitting_the_prior_reads_boxes_of_any_integer_type_without_overflow() -> None:
    """Rule: the prior's width is the same for boxes given as uint8, int32 or int64 (a 20 x 20 uint8 box has area
    400, not 400 mod 256)."""
    boxes = np.array([[0, 0, 20, 20], [10, 5, 60, 30]])
    want = L.fit_centre_prior_sigma(boxes, 64)
    for dtype in (np.uint8, np.int32):
        assert L.fit_centre_prior_sigma(boxes.astype(dtype), 64) == want


def test_iou_curve_edges_a_pixel_at_the_threshold_one_pixel_boxes_and_unreached_thresholds() -> None:
    """Rules: a pixel exactly at the threshold is in the thresholded map; a one-pixel peak on a one-pixel box has
    IoU 1; a threshold no pixel reaches (above 1) predicts no box and scores 0."""
    m = np.array([[0.0, 0.5, 1.0]])
    assert L.iou_curve(m, (1, 0, 3, 1), [0.5]).tolist() == [1.0]
    dot = np.zeros((5, 5))
    dot[2, 3] = 1.0
    assert L.iou_curve(dot, (3, 2, 4, 3), [0.9]).tolist() == [1.0]
    assert L.iou_curve(m, (1, 0, 3, 1), [0.5, 1.5]).tolist() == [1.0, 0.0]


def test_images_with_different_numbers_of_boxes_score_each_its_best_box() -> None:
    """Rule: in one batch, an image with one box and one with several each get the IoU of their own best box; the
    others' box count never adds a box (no padding box scores)."""
    maps = np.zeros((2, 8, 8))
    maps[:, 2:4, 2:4] = 1.0
    boxes = [[(2, 2, 4, 4)], [(6, 6, 8, 8), (2, 2, 4, 6), (0, 0, 1, 1)]]
    got = L.multi_box_scores(maps, boxes, True)["maxboxacc_iou"]
    assert np.all(got[0] == 1.0) and np.all(got[1] == 0.5)
    one = L.multi_box_scores(maps[:1], boxes[:1], True)["maxboxacc_iou"]
    assert np.array_equal(one[0], got[0])


def _masks(rng: np.random.Generator, k: int, h: int, w: int) -> np.ndarray:
    """``k`` masks: a fifth empty, the others a few rectangles and scattered pixels at odd and even rows."""
    masks = np.zeros((k, h, w), dtype=bool)
    for i in range(k):
        if rng.random() < 0.2:
            continue
        for _ in range(int(rng.integers(1, 4))):
            y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
            masks[i, y0:y0 + int(rng.integers(1, 6)), x0:x0 + int(rng.integers(1, 6))] = True
        masks[i] |= rng.random((h, w)) < 0.002
    return masks


def _one_by_one(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reference: each mask searched on its own (``_largest_component``, ties to the first in raster order)."""
    out, found = np.zeros((len(masks), 4)), np.zeros(len(masks), dtype=bool)
    for i, mask in enumerate(masks):
        ys, xs = np.nonzero(L._largest_component(mask))
        if len(ys):
            out[i], found[i] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), True
    return out, found


def test_the_batched_component_search_over_several_calls_equals_one_mask_at_a_time() -> None:
    """Rule: the largest component's box and whether there is one, per mask, are the same from the batched search
    as from each mask searched alone, also when the masks span several calls (over ``per_call`` pixels), include
    empty masks, or one mask alone is taller than a call."""
    rng = np.random.default_rng(8)
    masks = _masks(rng, 120, 37, 2048)  # 37 + 1 rows a mask, 2048 rows a call: about 54 masks a call
    assert np.array_equal(np.c_[L._largest_components(masks)], np.c_[_one_by_one(masks)])
    tall = _masks(rng, 3, 70, 1 << 16)  # 64 rows a call: every mask taller than a call
    tall[:, 1:69, 5] = True
    assert np.array_equal(np.c_[L._largest_components(tall)], np.c_[_one_by_one(tall)])


def test_ties_in_a_batch_go_to_the_component_a_mask_alone_would_pick() -> None:
    """Rule: when a mask's largest components tie (two single pixels), the batched search picks the one the mask
    searched alone picks (first in cv2's block order), whatever masks come before it in the batch."""
    rng = np.random.default_rng(0)
    masks = np.zeros((300, 6, 8), dtype=bool)
    for m in masks:
        for _ in range(2):
            m[rng.integers(0, 6), rng.integers(0, 8)] = True
    assert np.array_equal(np.c_[L._largest_components(masks)], np.c_[_one_by_one(masks)])
