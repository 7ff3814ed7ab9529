"""ERF grids: a shared scale is the largest peak of all maps compared; each-its-own divides a map by its peak."""

from __future__ import annotations

import numpy as np
import pytest

from res2net.viz.erf_plots import ErfPanel, erf_grid_figure, shared_peak


def _maps() -> list[np.ndarray]:
    narrow = np.zeros((9, 9))
    narrow[4, 4] = 1.0  # all mass in one pixel: peak 1
    wide = np.full((9, 9), 1 / 81)  # spread evenly: peak 1/81
    return [narrow, wide]


def test_a_shared_scale_tops_at_the_largest_peak_so_a_wide_erf_looks_dimmer() -> None:
    maps = _maps()
    top = shared_peak(maps)
    assert top == 1.0
    fig = erf_grid_figure([ErfPanel(m, f"m{k}") for k, m in enumerate(maps)], shared_max=top)
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert [(t.zmin, t.zmax) for t in heat] == [(0.0, 1.0), (0.0, 1.0)]
    assert np.asarray(heat[1].z).max() == pytest.approx(1 / 81)  # raw values: the wide map stays dim
    assert [t.showscale for t in heat] == [True, False]  # one colour bar for the grid
    assert heat[0].colorbar.title.text == "contribution"


def test_each_map_its_own_scale_divides_by_its_peak() -> None:
    maps = _maps()
    fig = erf_grid_figure([ErfPanel(m, f"m{k}") for k, m in enumerate(maps)], shared_max=None)
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert [np.asarray(t.z).max() for t in heat] == [1.0, pytest.approx(1.0)]
    assert heat[0].colorbar.title.text == "share of own peak"
    assert np.asarray(heat[1].customdata).max() == pytest.approx(1.0)


def test_log_scale_spans_the_decades_below_the_shared_top() -> None:
    maps = _maps()
    fig = erf_grid_figure([ErfPanel(m, "m") for m in maps], shared_max=0.01, log=True, decades=3)
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert (heat[0].zmin, heat[0].zmax) == (pytest.approx(-5.0), pytest.approx(-2.0))
    assert np.asarray(heat[1].z).min() == pytest.approx(np.log10(1 / 81))
    assert list(heat[0].colorbar.ticktext) == ["1e-5", "1e-4", "1e-3", "1e-2"]


def test_centre_cross_and_theoretical_rf_square_sit_on_each_panel() -> None:
    m = np.zeros((64, 64))
    m[32, 32] = 1
    fig = erf_grid_figure([ErfPanel(m, "a", (32.0, 32.0), (11, 11)), ErfPanel(m, "b", (32.0, 20.0), (5, 7))],
                          shared_max=1.0)
    marks = [t for t in fig.data if t.type == "scatter"]
    assert [(t.x[0], t.y[0], t.xaxis) for t in marks] == [(32.0, 32.0, "x"), (20.0, 32.0, "x2")]
    rects = [(s.x0, s.x1, s.y0, s.y1, s.xref) for s in fig.layout.shapes]
    assert rects == [(26.5, 37.5, 26.5, 37.5, "x"), (16.5, 23.5, 29.5, 34.5, "x2")]
    assert [a.text for a in fig.layout.annotations] == ["a", "b"]


def test_grid_wraps_after_per_row_panels_and_refuses_nothing_to_draw() -> None:
    fig = erf_grid_figure([ErfPanel(np.ones((4, 4)) / 16, str(k)) for k in range(7)], shared_max=None, per_row=5,
                          panel_height=200)
    assert fig.layout.height == 2 * 200 + 30
    with pytest.raises(ValueError, match="no ERF maps"):
        erf_grid_figure([], shared_max=None)
    with pytest.raises(ValueError, match="positive"):
        erf_grid_figure([ErfPanel(np.ones((2, 2)), "z")], shared_max=0.0)


def test_panels_keep_one_size_across_figures_and_a_window_zooms_on_the_unit() -> None:
    m = np.full((64, 64), 1 / 64**2)
    two = erf_grid_figure([ErfPanel(m, "a"), ErfPanel(m, "b")], shared_max=None, per_row=5)
    five = erf_grid_figure([ErfPanel(m, str(k)) for k in range(5)], shared_max=None, per_row=5)
    assert two.layout.xaxis.domain == five.layout.xaxis.domain  # two maps take two of five columns, not the width
    zoom = erf_grid_figure([ErfPanel(m, "a", (32.0, 20.0)), ErfPanel(m, "b", (60.0, 60.0))], shared_max=None,
                           window=10)
    assert list(zoom.layout.xaxis.range) == [10.0, 30.0] and list(zoom.layout.yaxis.range) == [42.0, 22.0]
    assert list(zoom.layout.xaxis2.range) == [50.0, 63.5] and list(zoom.layout.yaxis2.range) == [63.5, 50.0]
