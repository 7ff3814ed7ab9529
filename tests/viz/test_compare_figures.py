"""Compare's figure helpers against hand-worked cases: the untrained mark sits inside each marked panel, the photo
window of an elongated photo, the normalised difference, and the faithfulness curves' random band."""

from __future__ import annotations

import numpy as np
import pytest

from res2net.viz import compare as C
from res2net.viz import plots as P


def _photo_figure(panels: int) -> object:
    photo = np.zeros((40, 60, 3), np.uint8)
    maps = [P.PhotoMap(np.ones((4, 6)), 5.0, 10.0, 5.0, 10.0, f"m{k}") for k in range(panels)]
    return P.maps_on_photo_figure(photo, maps, vmin=0.0, vmax=1.0, with_photo=True, per_row=3)


def test_untrained_mark_sits_inside_each_marked_panel_and_on_its_title() -> None:
    fig = C.mark_untrained(_photo_figure(2), panels=[1, 2])  # panel 0 is the bare photo
    marks = [a for a in fig.layout.annotations if C.UNTRAINED_MARK in a.text and a.textangle == -30]
    assert len(marks) == 2
    for mark, axis in zip(marks, ("xaxis2", "xaxis3"), strict=True):
        lo, hi = fig.layout[axis].domain
        assert lo < mark.x < hi and mark.xref == "paper"
    titles = [a.text for a in fig.layout.annotations if a.textangle != -30]
    assert titles == ["photo", C.UNTRAINED_TITLE + "m0", C.UNTRAINED_TITLE + "m1"]
    C.mark_untrained(fig, panels=[1])  # marking twice does not stack the title
    assert [a.text for a in fig.layout.annotations if a.textangle != -30][1] == C.UNTRAINED_TITLE + "m0"


def test_a_panorama_is_drawn_around_what_the_model_saw() -> None:
    # a 5656x707 strip; the model saw the centre square (2474.5 .. 3181.5 in pixel edges)
    seen = [(2474.5, -0.5, 3181.5, 706.5)]
    left, top, right, bottom = C.view_window((5656, 707), seen)
    assert (top, bottom) == (-0.5, 706.5)
    assert right - left == pytest.approx(2 * 707)  # at most twice as wide as tall
    assert (left + right) / 2 == pytest.approx(2828.0)  # centred on the seen square
    assert C.view_window((600, 512), seen) is None  # an ordinary photo is drawn whole
    # a seen region at the strip's end is not pushed past the edge
    assert C.view_window((5656, 707), [(-0.5, -0.5, 706.5, 706.5)])[0] == -0.5
    tall = C.view_window((100, 1000), [(-0.5, 450.0, 99.5, 550.0)])
    assert tall == (-0.5, pytest.approx(400.0), 99.5, pytest.approx(600.0))
    assert C.view_window((5656, 707), [(-0.5, -0.5, 5655.5, 706.5)]) is None  # 'resize' saw it all: draw it all


def test_zoom_sets_every_panels_range() -> None:
    fig = C.zoom(_photo_figure(2), (10.0, 5.0, 30.0, 25.0))
    for k in ("xaxis", "xaxis2", "xaxis3"):
        assert tuple(fig.layout[k].range) == (10.0, 30.0)
    assert tuple(fig.layout.yaxis2.range) == (25.0, 5.0)  # image rows downwards


def test_colour_bar_spans_its_panel_row() -> None:
    fig = C.colorbars_as_tall_as_panels(_photo_figure(4))  # 5 panels, 3 a row: two rows
    (bar,) = [t for t in fig.data if t.type == "heatmap" and t.showscale]
    lo, hi = fig.layout[f"yaxis{'' if bar.yaxis == 'y' else bar.yaxis[1:]}"].domain
    assert bar.colorbar.len == pytest.approx(hi - lo) and bar.colorbar.y == pytest.approx((lo + hi) / 2)


def test_colour_bar_below_a_one_panel_figure() -> None:
    photo = np.zeros((40, 60, 3), np.uint8)
    fig = P.maps_on_photo_figure(photo, [P.PhotoMap(np.ones((4, 6)), 5.0, 10.0, 5.0, 10.0, "m")], vmin=0.0,
                                 vmax=1.0, with_photo=False, panel_height=100)
    C.colorbar_below(fig, extra_px=40)
    (bar,) = [t for t in fig.data if t.type == "heatmap"]
    assert bar.colorbar.orientation == "h" and bar.colorbar.len == pytest.approx(1.0)
    assert fig.layout.height == 110 + 40


def test_normalised_difference_by_hand() -> None:
    a = np.array([[2.0, 1.0], [0.0, np.nan]])
    b = np.array([[0.0, 5.0], [10.0, 10.0]])
    np.testing.assert_allclose(C.normalised_difference(a, b), [[1.0, 0.0], [-1.0, np.nan]])
    np.testing.assert_allclose(C.normalised_difference(np.zeros((1, 2)), np.array([[0.0, -4.0]])), [[0.0, 1.0]])
    with pytest.raises(ValueError):
        C.normalised_difference(np.zeros((2, 2)), np.zeros((2, 3)))


def test_faithfulness_figure_draws_the_random_band() -> None:
    fr = np.linspace(0, 1, 3)
    rand = np.array([[0.9, 0.5, 0.1], [0.8, 0.3, 0.2]])
    fig = C.faithfulness_figure(fr, np.array([0.9, 0.1, 0.0]), np.array([0.1, 0.8, 0.9]), rand, rand[::-1])
    band = [t for t in fig.data if t.fill == "tonexty"]
    assert len(band) == 2  # deletion and insertion
    top = fig.data[0]
    np.testing.assert_allclose(top.y, [0.9, 0.5, 0.2])  # the band's upper edge: the max over orders
    np.testing.assert_allclose(band[0].y, [0.8, 0.3, 0.1])
