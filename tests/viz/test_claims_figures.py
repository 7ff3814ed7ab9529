"""The Claims page's figures: the forest plot of every claim, and the scale sweep's two top-1 panels."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from res2net.viz.claims import FAMILY_SYMBOLS, VERDICT_COLOURS, ForestRow, forest_figure, in_units_of_d
from res2net.viz.knockout_plots import scale_sweep_figure


def _row(label: str, group: str = "accuracy", family: str = "confirmatory", verdict: str = "supported",
         est: float = 2.0, lo: float = 1.5, hi: float = 2.5, d: float = 1.0) -> ForestRow:
    # the 95% interval: 60% of the way from each judged end towards the estimate
    return ForestRow(label, group, family, verdict, est, lo, hi, est - 0.4 * (est - lo), est + 0.4 * (hi - est),
                     0.99, d)


def _markers(fig) -> list:  # noqa: ANN001
    return [t for t in fig.data if t.mode == "markers"]


def test_forest_rows_are_in_units_of_d_with_both_intervals() -> None:
    rows = [_row("top-1 · s=2", est=2.0, lo=0.5, hi=3.5, d=1.0),
            _row("energy · s=2", group="localisation", verdict="contradicted", est=-0.05, lo=-0.08, hi=-0.03, d=0.02)]
    fig = forest_figure(rows)
    markers = _markers(fig)
    assert [m.y[0] for m in markers] == ["top-1 · s=2", "energy · s=2"]
    assert markers[1].x[0] == pytest.approx(-2.5)  # -0.05 / 0.02
    lines = {(t.y[0], t.line.width): t.x for t in fig.data if t.mode == "lines"}
    assert lines[("energy · s=2", 5)] == pytest.approx((-4.0, -1.5))  # the judged interval, thick
    assert lines[("energy · s=2", 1)] == pytest.approx((-3.1, -2.1))  # the 95% interval (-0.062, -0.042), thin
    assert in_units_of_d(None, 0.02) is None


def test_forest_band_verdict_colours_families_and_section_lines() -> None:
    rows = [_row("a"), _row("b", verdict="inconclusive", family="exploratory"),
            _row("c", group="erf", verdict="no meaningful difference", est=0.1, lo=-0.5, hi=0.6)]
    fig = forest_figure(rows)
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    assert [(r.x0, r.x1) for r in rects] == [(-1, 1)]
    markers = {m.y[0]: m for m in _markers(fig)}
    assert markers["a"].marker.color == VERDICT_COLOURS["supported"]
    assert markers["b"].marker.symbol == FAMILY_SYMBOLS["exploratory"] == "circle-open"
    assert markers["a"].marker.symbol == "circle"
    # one line between the accuracy rows (0, 1) and the erf row (2)
    section_lines = [s for s in fig.layout.shapes if s.type == "line" and s.y0 == s.y1]
    assert [s.y0 for s in section_lines] == [1.5]
    assert [m.showlegend for m in _markers(fig)] == [True, True, True]  # three (verdict, family) pairs
    assert fig.layout.yaxis.categoryarray == ("a", "b", "c")


def test_forest_refuses_nothing_and_rows_that_share_a_label() -> None:
    with pytest.raises(ValueError, match="no claims"):
        forest_figure([])
    with pytest.raises(ValueError, match="own label"):
        forest_figure([_row("a"), _row("a")])


def _interval(mean: float, half: float) -> SimpleNamespace:
    return SimpleNamespace(mean=mean, low=mean - half, high=mean + half)


def test_scale_sweep_top1_panels_span_the_same_points_and_titles_are_short() -> None:
    ours = [(1, 42.0, 0.6), (2, 43.9, 0.7), (4, 44.1, 0.7), (8, 43.6, 1.9)]
    paper = {1: 76.15, 2: 77.32, 4: 77.99, 8: 78.14}
    rows = [SimpleNamespace(scale=s, top1=_interval(m, h), energy=_interval(0.5, 0.01),
                            coverage=_interval(0.3, 0.01), erf_radius_50=_interval(13.0, 1.0), paper_top1=paper[s])
            for s, m, h in ours]
    fig = scale_sweep_figure(SimpleNamespace(rows=rows))
    r1, r2 = fig.layout.yaxis.range, fig.layout.yaxis2.range
    assert r1[1] - r1[0] == pytest.approx(r2[1] - r2[0])
    assert r1[0] <= 42.0 - 0.6 and r1[1] >= 43.6 + 1.9  # ours with its intervals inside
    assert r2[0] <= 76.15 and r2[1] >= 78.14
    # ours spans 41.4..45.5 (4.1 points), wider than the paper's 2 points: the common span is set by ours
    assert r1[1] - r1[0] == pytest.approx(1.1 * (45.5 - 41.4))
    titles = [a.text for a in fig.layout.annotations]
    assert titles[:2] == ["top-1 %, ours", "top-1 %, paper"]
    assert max(len(t) for t in titles) <= 16  # five panels side by side at 1280 px: each title fits its panel
