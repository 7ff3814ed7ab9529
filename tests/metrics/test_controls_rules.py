"""The image-blind controls' rules, written down first, then tested on hand-computed cases, a simulation with a
known truth and properties over all inputs (hypothesis).

Rules (from ``res2net/metrics/controls.py``, the README's "Localisation claims are gains over image-blind
controls" and DESIGN.md's controls: a localisation claim is a gain over controls that ignore the image).

Maps.
- Maps are (N, H, W) arrays read in double precision whatever their dtype: a float32 map has exactly the moments
  and the prior of its float64 copy. A map that is not (N, H, W) is refused with "maps must be (N, H, W), got
  <shape>"; one with NaN or infinity with "maps contain NaN or infinite values".

Flat maps.
- A map is flat when all its values are equal (all-zero included); a flat map is a miss under every metric:
  ``apply_flat_map_rule`` sets its row of every metric to that metric's miss (energy 0, no pointing hit, coverage 0,
  no correct box) and keeps every other row. The rows to rule are a mask: 0/1 given as integers mean the same as
  False/True. The caller's score arrays are not changed (a copy is ruled). A metric without a stated miss is
  refused: "no flat-map rule for metric 'iou'; known: energy, pointing, coverage, maxboxacc" (KeyError), and a
  score array with another number of rows than maps: "<metric>: <rows> rows for <maps> maps".

Mismatched boxes.
- Each image is scored against another image's box from its own bucket: the sources form a derangement within each
  bucket (no fixed point, every index of a bucket used exactly once, never a source from another bucket); an image
  alone in its bucket has source -1 and the box ``NO_BOX``. The draw is seeded, seed 0 unless given, and uniform
  over derangements. ``mismatched_boxes`` gives exactly the boxes of ``mismatched_box_sources`` with the same seed,
  in the boxes' own dtype and values (a fractional coordinate stays fractional). Refusals: "boxes must be (N, 4),
  got <shape>", "<N> boxes for <M> bucket labels".

Spread-matched prior.
- ``map_moments`` reads a map as a mass distribution with each pixel's mass spread uniformly over its unit square
  about the pixel's index: centroid (y, x) and covariance (the y variance first) are the moments of that density,
  so a one-pixel map has covariance I/12 and the moments of points drawn from the density converge to them.
  Moving a map's content moves its centroid by the same offset and leaves its covariance unchanged. An all-zero
  map's moments are NaN, quietly (no RuntimeWarning: flat maps are expected input). A negative value is refused:
  "spread is defined for non-negative maps (a CAM after its ReLU)".
- ``spread_matched_prior`` is exp(-1/2 d' S^-1 d) with S the map's covariance and d the offset of each pixel from
  the image centre ((H - 1) / 2, (W - 1) / 2): peak 1 at the centre, the map's spread including its tilt (the
  cross term), image-blind to where the map's mass is (moving the content leaves the prior unchanged). A flat map's
  prior is all zero, quietly.

Centre-containing boxes.
- A box holds the centre when x0 < W/2 < x1 and y0 < H/2 < y1 (a border through the centre does not hold it),
  compared in double precision whatever the boxes' dtype; the test is symmetric under mirroring the box about
  either axis of the image.

MaxBoxAcc on held-out images (Choe et al., CVPR 2020).
- ``heldout_split`` holds out, per class, ``fraction`` of its images (rounded), at least one per class of two or
  more, never all of a class, none of a class of one, whatever order the classes come in; fraction 0.2 and seed 0
  unless given; the result is a boolean mask. A fraction outside (0, 1) is refused: "fraction must be in (0, 1),
  got <fraction>".
- ``choose_threshold`` picks the threshold with the most held-out hits, ties to the lowest; a hit counts once
  whatever truthy value marks it; input that is not (M > 0, thresholds) is refused: "held-out hits must be
  (M > 0, thresholds), got <shape>".
- ``boxacc_at_heldout_threshold`` chooses the threshold on the held-out rows only and reports every other row's
  hit as 1.0 or 0.0 at it (NaN on held-out rows); the held-out rows are a mask (0/1 integers too). Refusals:
  "heldout must be (<N>,), got <shape>" and "every image is held out: nothing is left to report".
"""

from __future__ import annotations

import math
import re
import warnings

import hypothesis_profiles  # noqa: F401  (example counts: few in CI, more in the mutation run)
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from res2net.metrics import controls as C


def _refused(exc: type[Exception], message: str):
    return pytest.raises(exc, match="^" + re.escape(message) + "$")


# ------------------------------------------------------------------------------------------------------ maps
def test_maps_are_read_in_double_precision() -> None:
    rng = np.random.default_rng(0)
    m32 = (rng.random((2, 9, 13)) ** 3).astype(np.float32)
    m64 = m32.astype(np.float64)  # the same values, exactly
    c32, v32 = C.map_moments(m32)
    c64, v64 = C.map_moments(m64)
    assert c32.dtype == v32.dtype == np.float64
    assert np.abs(c32 - c64).max() < 1e-12 and np.abs(v32 - v64).max() < 1e-12
    p32 = C.spread_matched_prior(m32)
    assert p32.dtype == np.float64 and np.abs(p32 - C.spread_matched_prior(m64)).max() < 1e-12


def test_maps_refusals_in_their_words() -> None:
    with _refused(ValueError, "maps must be (N, H, W), got (4, 4)"):
        C.flat_maps(np.zeros((4, 4)))
    bad = np.zeros((1, 3, 3))
    bad[0, 1, 1] = np.nan
    with _refused(ValueError, "maps contain NaN or infinite values"):
        C.map_moments(bad)
    bad[0, 1, 1] = np.inf
    with _refused(ValueError, "maps contain NaN or infinite values"):
        C.spread_matched_prior(bad)
    neg = np.zeros((1, 3, 3))
    neg[0, 0, 0] = -0.1
    with _refused(ValueError, "spread is defined for non-negative maps (a CAM after its ReLU)"):
        C.map_moments(neg)


# ------------------------------------------------------------------------------------------------ flat maps
def test_flat_rows_given_as_integers_are_a_mask() -> None:
    scores = {"energy": np.array([0.5, 0.25, 0.75]), "coverage": np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])}
    out = C.apply_flat_map_rule(scores, [0, 1, 0])  # only the middle map is flat
    assert out["energy"].tolist() == [0.5, 0.0, 0.75]
    assert out["coverage"].tolist() == [[0.1, 0.2], [0.0, 0.0], [0.5, 0.6]]


def test_flat_map_rule_leaves_the_callers_scores_alone() -> None:
    energy = np.array([0.5, 0.25, 0.75])
    hits = np.array([[True, False], [True, True], [False, True]])
    out = C.apply_flat_map_rule({"energy": energy, "maxboxacc": hits}, np.array([True, False, True]))
    assert out["energy"].tolist() == [0.0, 0.25, 0.0] and out["maxboxacc"].tolist() == [[False, False],
                                                                                        [True, True],
                                                                                        [False, False]]
    assert energy.tolist() == [0.5, 0.25, 0.75]  # the input unchanged
    assert hits.tolist() == [[True, False], [True, True], [False, True]]


def test_flat_map_rule_refusals_in_their_words() -> None:
    with pytest.raises(KeyError) as e:
        C.apply_flat_map_rule({"iou": np.zeros(3)}, np.zeros(3, dtype=bool))
    assert e.value.args[0] == "no flat-map rule for metric 'iou'; known: energy, pointing, coverage, maxboxacc"
    with _refused(ValueError, "coverage: 2 rows for 3 maps"):
        C.apply_flat_map_rule({"coverage": np.zeros((2, 5))}, np.zeros(3, dtype=bool))


@given(st.lists(st.sampled_from(["real", "zero", "const"]), min_size=1, max_size=8), st.integers(0, 2**16))
def test_flat_maps_are_exactly_the_constant_ones_and_only_they_are_ruled(kinds, seed) -> None:
    rng = np.random.default_rng(seed)
    maps = np.zeros((len(kinds), 5, 6))
    for i, k in enumerate(kinds):
        if k == "real":
            maps[i] = rng.random((5, 6))
            maps[i, 0, 0] = 2.0  # surely not constant
        elif k == "const":
            maps[i] = rng.uniform(0.1, 3.0)
    flat = C.flat_maps(maps)
    assert flat.tolist() == [k != "real" for k in kinds]
    scores = {"energy": rng.random(len(kinds)), "pointing": rng.random(len(kinds)) < 0.5,
              "coverage": rng.random((len(kinds), 3))}
    out = C.apply_flat_map_rule(scores, flat)
    for name, v in out.items():
        assert (v[flat] == C.MISS[name]).all()
        assert np.array_equal(v[~flat], scores[name][~flat])


# --------------------------------------------------------------------------------------------- mismatched boxes
def test_default_seed_is_zero() -> None:
    buckets = np.array(["s"] * 6 + ["l"] * 5)
    boxes = np.arange(44).reshape(11, 4)
    by0, by1 = C.mismatched_box_sources(buckets, 0), C.mismatched_box_sources(buckets, 1)
    assert not np.array_equal(by0, by1)  # the seed matters here, so the default is visible
    assert np.array_equal(C.mismatched_box_sources(buckets), by0)
    assert np.array_equal(C.mismatched_boxes(boxes, buckets)[0], boxes[by0])
    labels = np.repeat([0, 1], 10)
    assert not np.array_equal(C.heldout_split(labels, 0.2, 0), C.heldout_split(labels, 0.2, 1))
    assert np.array_equal(C.heldout_split(labels), C.heldout_split(labels, 0.2, 0))


def test_mismatched_boxes_are_the_sources_boxes_for_the_seed_given() -> None:
    buckets = np.array(["s"] * 7)
    boxes = np.arange(28).reshape(7, 4)
    for seed in (3, 11):
        src = C.mismatched_box_sources(buckets, seed)
        assert not np.array_equal(src, C.mismatched_box_sources(buckets, 0))
        out, keep = C.mismatched_boxes(boxes, buckets, seed)
        assert keep.all() and np.array_equal(out, boxes[src])


def test_mismatched_boxes_keep_the_boxes_values_and_dtype() -> None:
    boxes = np.array([[0.5, 1.25, 3.5, 4.75], [2.5, 0.5, 6.25, 3.5], [1.0, 1.0, 2.0, 2.0]], dtype=np.float32)
    out, keep = C.mismatched_boxes(boxes, ["a", "a", "b"], seed=0)
    assert out.dtype == np.float32
    # two images in bucket a: the only derangement swaps them; image 2 is alone
    assert out.tolist() == [[2.5, 0.5, 6.25, 3.5], [0.5, 1.25, 3.5, 4.75], [-1, -1, -1, -1]]
    assert keep.tolist() == [True, True, False]


def test_mismatched_boxes_refusals_in_their_words() -> None:
    with _refused(ValueError, "boxes must be (N, 4), got (3, 3)"):
        C.mismatched_boxes(np.zeros((3, 3)), [0, 0, 0])
    with _refused(ValueError, "boxes must be (N, 4), got (4,)"):
        C.mismatched_boxes(np.zeros(4), [0])
    with _refused(ValueError, "3 boxes for 2 bucket labels"):
        C.mismatched_boxes(np.zeros((3, 4)), [0, 0])


@given(st.lists(st.sampled_from("abcd"), max_size=30), st.integers(0, 2**31 - 1))
def test_sources_are_a_derangement_within_each_bucket(buckets, seed) -> None:
    b = np.asarray(buckets, dtype=object)
    src = C.mismatched_box_sources(b, seed)
    assert src.shape == (len(buckets),)
    for label in set(buckets):
        idx = np.flatnonzero(b == label)
        if idx.size == 1:
            assert src[idx[0]] == -1
            continue
        assert (src[idx] != idx).all()  # no fixed point
        assert sorted(src[idx].tolist()) == idx.tolist()  # every box of the bucket once, none from elsewhere
    boxes = np.arange(4 * len(buckets)).reshape(-1, 4)
    out, keep = C.mismatched_boxes(boxes, b, seed)
    assert np.array_equal(keep, src >= 0)
    assert np.array_equal(out[keep], boxes[src[keep]]) and (out[~keep] == -1).all()


# -------------------------------------------------------------------------------------------- spread-matched prior
def test_moments_of_two_diagonal_pixels_by_hand() -> None:
    """Two equal pixels at (0, 0) and (1, 1): centroid (0.5, 0.5); each variance 1/4 + 1/12 = 1/3, covariance 1/4.
    S^-1 = (144 / 7) [[1/3, -1/4], [-1/4, 1/3]] = [[48/7, -36/7], [-36/7, 48/7]]. On a 4 x 4 image (centre
    (1.5, 1.5)) the pixel (2, 2) sits at d = (0.5, 0.5): q = 48/7 x 0.5 - 2 x 36/7 x 0.25 = 6/7; pixel (2, 1)
    at d = (0.5, -0.5): q = 24/7 + 18/7 = 6. The anti-diagonal pair has covariance -1/4 and the two swap."""
    m = np.zeros((2, 4, 4))
    m[0, 0, 0] = m[0, 1, 1] = 1.0
    m[1, 0, 1] = m[1, 1, 0] = 3.0
    centroid, cov = C.map_moments(m)
    assert centroid.tolist() == [[0.5, 0.5], [0.5, 0.5]]
    assert cov[0] == pytest.approx(np.array([[1 / 3, 1 / 4], [1 / 4, 1 / 3]]), abs=1e-12)
    assert cov[1] == pytest.approx(np.array([[1 / 3, -1 / 4], [-1 / 4, 1 / 3]]), abs=1e-12)
    prior = C.spread_matched_prior(m)
    assert prior[0, 2, 2] == pytest.approx(math.exp(-3 / 7), rel=1e-9)
    assert prior[0, 2, 1] == pytest.approx(math.exp(-3), rel=1e-9)
    assert prior[1, 2, 1] == pytest.approx(math.exp(-3 / 7), rel=1e-9)
    assert prior[1, 2, 2] == pytest.approx(math.exp(-3), rel=1e-9)
    # pixel (3, 0): d = (1.5, -1.5), q = 48/7 x 4.5 + 2 x 36/7 x 2.25 = 54
    assert prior[0, 3, 0] == pytest.approx(math.exp(-27), rel=1e-9)


def test_centroid_is_y_then_x_and_the_y_variance_first() -> None:
    m = np.zeros((1, 5, 9))
    m[0, 1, 2:7] = 1.0  # a horizontal bar in row 1, columns 2..6
    centroid, cov = C.map_moments(m)
    assert centroid[0].tolist() == [1.0, 4.0]
    assert cov[0] == pytest.approx(np.array([[1 / 12, 0.0], [0.0, 2.0 + 1 / 12]]), abs=1e-12)  # var of 2..6 is 2


def test_moments_are_those_of_the_pixels_spread_over_their_squares_simulated() -> None:
    """Known truth: points drawn from the density (a pixel by its mass, then uniformly over its unit square about
    its index) have, in the limit, the moments ``map_moments`` states. 400,000 points: SE of each moment < 0.01."""
    m = np.zeros((7, 8))
    m[1, 1], m[2, 3], m[5, 6], m[4, 2], m[6, 7] = 1.0, 2.0, 3.0, 0.5, 1.5
    rng = np.random.default_rng(0)
    n = 400_000
    cell = rng.choice(m.size, size=n, p=(m / m.sum()).ravel())
    y = cell // 8 + rng.uniform(-0.5, 0.5, n)
    x = cell % 8 + rng.uniform(-0.5, 0.5, n)
    centroid, cov = C.map_moments(m[None])
    assert centroid[0] == pytest.approx([y.mean(), x.mean()], abs=0.02)
    assert cov[0] == pytest.approx(np.cov(np.stack([y, x])), abs=0.05)


def test_all_zero_and_flat_maps_are_quiet() -> None:
    m = np.zeros((2, 4, 5))
    m[1] = 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        centroid, cov = C.map_moments(m[:1])
        prior = C.spread_matched_prior(m)
    assert np.isnan(centroid).all() and np.isnan(cov).all()
    assert (prior == 0).all()


@st.composite
def _patch_and_offsets(draw: st.DrawFn) -> tuple[np.ndarray, tuple[int, int], tuple[int, int]]:
    ph, pw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    patch = rng.random((ph, pw)) ** draw(st.sampled_from([1.0, 3.0]))
    patch[rng.integers(ph), rng.integers(pw)] += 0.5  # never all zero
    a = (draw(st.integers(0, 11 - ph)), draw(st.integers(0, 13 - pw)))
    b = (draw(st.integers(0, 11 - ph)), draw(st.integers(0, 13 - pw)))
    return patch, a, b


@given(_patch_and_offsets())
def test_moving_a_map_moves_its_centroid_and_leaves_spread_and_prior(case) -> None:
    patch, (ay, ax), (by, bx) = case
    ph, pw = patch.shape
    m = np.zeros((2, 11, 13))  # odd sides: a centre pixel, (5, 6)
    m[0, ay:ay + ph, ax:ax + pw] = patch
    m[1, by:by + ph, bx:bx + pw] = patch
    centroid, cov = C.map_moments(m)
    assert centroid[1] - centroid[0] == pytest.approx([by - ay, bx - ax], abs=1e-9)
    assert cov[1] == pytest.approx(cov[0], abs=1e-9)
    prior = C.spread_matched_prior(m)
    assert prior[1] == pytest.approx(prior[0], abs=1e-9)  # image-blind: where the mass is does not matter
    # a centred Gaussian: symmetric under a half turn, at most 1, and 1 on the centre pixel
    assert prior[0] == pytest.approx(prior[0, ::-1, ::-1], abs=1e-12) and prior.max() <= 1.0
    assert prior[0, 5, 6] == 1.0


# ------------------------------------------------------------------------------------------- centre-containing
@given(st.integers(2, 20), st.integers(2, 20), st.data())
def test_centre_test_is_symmetric_under_mirroring(h, w, data) -> None:
    x0 = data.draw(st.integers(0, w - 1))
    x1 = data.draw(st.integers(x0 + 1, w))
    y0 = data.draw(st.integers(0, h - 1))
    y1 = data.draw(st.integers(y0 + 1, h))
    box = np.array([[x0, y0, x1, y1], [w - x1, y0, w - x0, y1], [x0, h - y1, x1, h - y0]])
    inside = C.contains_centre(box, (h, w))
    assert inside.tolist() == [inside[0]] * 3
    # by the rule in pixel edges: the centre strictly inside on both axes
    assert inside[0] == (x0 < w / 2 < x1 and y0 < h / 2 < y1)


def test_centre_test_is_in_double_precision_whatever_the_boxes_dtype() -> None:
    # a 4097-px image has its centre at 2048.5; a float16 box edge at 2048 lies left of it (in float16 the centre
    # itself would round to 2048 and sit on the edge)
    boxes = np.array([[2048, 2048, 4096, 4096], [0, 0, 2048, 2048]], dtype=np.float16)
    assert C.contains_centre(boxes, 4097).tolist() == [True, False]


# --------------------------------------------------------------------------------------- MaxBoxAcc, held out
def test_heldout_split_defaults_and_mask() -> None:
    labels = np.repeat([7, 8], [10, 15])
    ho = C.heldout_split(labels)  # fraction 0.2 unless given: 2 of 10 and 3 of 15
    assert ho.dtype == bool
    assert [int(ho[labels == c].sum()) for c in (7, 8)] == [2, 3]


def test_heldout_split_a_class_of_one_first_does_not_stop_the_others() -> None:
    labels = np.array([0] + [1] * 10 + [2] * 5)  # class 0, alone, comes first
    ho = C.heldout_split(labels, fraction=0.4, seed=2)
    assert [int(ho[labels == c].sum()) for c in (0, 1, 2)] == [0, 4, 2]


def test_heldout_split_draws_without_replacement() -> None:
    labels = np.zeros(10, dtype=int)
    for seed in range(20):  # with replacement, 5 draws of 10 repeat one 70% of the time
        assert C.heldout_split(labels, fraction=0.5, seed=seed).sum() == 5


@pytest.mark.parametrize("fraction", [0, 0.0, 1, 1.0, 1.5, -0.2])
def test_heldout_fraction_outside_the_open_unit_interval_is_refused(fraction) -> None:
    with _refused(ValueError, f"fraction must be in (0, 1), got {fraction}"):
        C.heldout_split([0, 0, 1, 1], fraction=fraction)


@given(st.lists(st.integers(0, 4), min_size=1, max_size=40), st.floats(0.01, 0.99), st.integers(0, 2**16))
def test_heldout_split_rounds_each_classs_fraction(labels, fraction, seed) -> None:
    lab = np.asarray(labels)
    ho = C.heldout_split(lab, fraction=fraction, seed=seed)
    assert ho.dtype == bool and ho.shape == lab.shape
    for c in set(labels):
        n, k = int((lab == c).sum()), int(ho[lab == c].sum())
        if n == 1:
            assert k == 0
        else:
            assert 1 <= k <= n - 1
            if 1 < fraction * n < n - 1:  # away from the clamps: the fraction rounded
                assert abs(k - fraction * n) <= 0.5


def test_choose_threshold_picks_the_most_held_out_hits() -> None:
    assert C.choose_threshold(np.array([[0, 1, 1], [0, 0, 1]], dtype=bool)) == 2
    assert C.choose_threshold(np.array([[0, 1, 1, 0], [1, 1, 0, 0], [0, 1, 1, 1]], dtype=bool)) == 1
    assert C.choose_threshold(np.array([[False, True, True]])) == 1  # one held-out image; ties to the lowest
    # a hit counts once however it is marked: 2 is one hit, so threshold 1 (2 of 3) beats threshold 0 (1 of 3)
    assert C.choose_threshold(np.array([[2, 0], [0, 1], [0, 1]])) == 1


@pytest.mark.parametrize("shape", [(0, 3), (3,), (2, 3, 1)])
def test_choose_threshold_refuses_what_is_not_held_out_hits(shape) -> None:
    with _refused(ValueError, f"held-out hits must be (M > 0, thresholds), got {shape}"):
        C.choose_threshold(np.ones(shape, dtype=bool))


def test_boxacc_reports_ones_and_zeros_and_reads_heldout_as_a_mask() -> None:
    hits = np.array([[2, 0], [3, 0], [0, 4], [0, 1], [1, 5]])  # counts: any non-zero is one hit
    # rows 2 and 3 held out (0/1 integers, a mask): they choose threshold 1, which rows 0 and 1 would not
    t, per_image = C.boxacc_at_heldout_threshold(hits, [0, 0, 1, 1, 0])
    assert t == 1
    assert np.isnan(per_image[2:4]).all() and per_image[[0, 1, 4]].tolist() == [0.0, 0.0, 1.0]
    assert per_image.dtype == np.float64


def test_boxacc_refusals_in_their_words() -> None:
    hits = np.zeros((4, 2), dtype=bool)
    with _refused(ValueError, "heldout must be (4,), got (3,)"):
        C.boxacc_at_heldout_threshold(hits, np.ones(3, dtype=bool))
    with _refused(ValueError, "every image is held out: nothing is left to report"):
        C.boxacc_at_heldout_threshold(hits, np.ones(4, dtype=bool))
