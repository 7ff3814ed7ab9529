"""Box metrics over all inputs (hypothesis): a box's scores do not depend on the picture's orientation, on the order
of an image's boxes, or on the scale of the map.

Rules:
- flipping both the map and its box left-right (or upside down) leaves energy in the box, the pointing game and
  coverage unchanged, and the MaxBoxAcc IoU at every threshold where the largest component is unique (equal-sized
  components are broken by raster order, as documented, which a flip reverses);
- the scores of an image with several boxes do not depend on the order they are listed in;
- energy, pointing and coverage are unchanged when the map is multiplied by a positive constant.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from res2net.metrics import boxes as L


@st.composite
def map_and_boxes(draw: st.DrawFn) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    h, w = draw(st.integers(4, 24)), draw(st.integers(4, 24))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    m = rng.random((h, w)) ** draw(st.sampled_from([1.0, 4.0, 12.0]))  # from flat-ish to peaked
    boxes = []
    for _ in range(draw(st.integers(1, 3))):
        x0, y0 = draw(st.integers(0, w - 1)), draw(st.integers(0, h - 1))
        boxes.append((x0, y0, draw(st.integers(x0 + 1, w)), draw(st.integers(y0 + 1, h))))
    return m, boxes


def _scores(m: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> dict[str, np.ndarray]:
    return L.multi_box_scores(m[None], [boxes], True)


def _flip_lr(m: np.ndarray, boxes: list) -> tuple[np.ndarray, list]:
    w = m.shape[1]
    return m[:, ::-1].copy(), [(w - x1, y0, w - x0, y1) for x0, y0, x1, y1 in boxes]


def _flip_ud(m: np.ndarray, boxes: list) -> tuple[np.ndarray, list]:
    h = m.shape[0]
    return m[::-1].copy(), [(x0, h - y1, x1, h - y0) for x0, y0, x1, y1 in boxes]


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray], unique: np.ndarray | None = None) -> None:
    assert set(a) == set(b)
    for k in a:
        x, y = np.asarray(a[k], dtype=float), np.asarray(b[k], dtype=float)
        if k == "maxboxacc_iou" and unique is not None:
            x, y = x[..., unique], y[..., unique]
        np.testing.assert_allclose(x, y, atol=1e-9, err_msg=k)


def _unique_largest(m: np.ndarray) -> np.ndarray:
    """Per MaxBoxAcc threshold: whether the min-max normalised map's largest 8-connected component is unique
    (found independently with scipy)."""
    from scipy import ndimage

    norm = (m - m.min()) / (m.max() - m.min())
    out = []
    for t in L.BOXACC_THRESHOLDS:
        labels, n = ndimage.label(norm >= t, structure=np.ones((3, 3)))
        areas = np.sort(np.bincount(labels.ravel())[1:])
        out.append(n < 2 or areas[-1] > areas[-2])
    return np.array(out)


@given(map_and_boxes())
def test_flipping_map_and_box_together_changes_no_score(case) -> None:
    m, boxes = case
    ref = _scores(m, boxes)
    unique = _unique_largest(m)
    _same(ref, _scores(*_flip_lr(m, boxes)), unique)
    _same(ref, _scores(*_flip_ud(m, boxes)), unique)


@given(map_and_boxes(), st.randoms(use_true_random=False))
def test_the_order_of_an_images_boxes_changes_no_score(case, rnd) -> None:
    m, boxes = case
    shuffled = list(boxes)
    rnd.shuffle(shuffled)
    _same(_scores(m, boxes), _scores(m, shuffled))


@given(map_and_boxes(), st.floats(0.01, 100.0))
def test_scaling_the_map_changes_no_score(case, k) -> None:
    m, boxes = case
    a, b = _scores(m, boxes), _scores(m * k, boxes)
    for key in ("energy", "pointing", "coverage"):
        np.testing.assert_allclose(np.asarray(a[key], dtype=float), np.asarray(b[key], dtype=float), atol=1e-9,
                                   err_msg=key)
