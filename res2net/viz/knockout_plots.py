"""Figures of the knock-out study and the scale sweep from the knock-out study rows (plotly; no Streamlit).

The rows are records of a results file (``KnockoutRow``, ``Interaction``, ``ScaleSweep`` of
``res2net.evaluation.results``), read by attribute; viz does not import evaluation, so they are typed ``Any`` here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

__all__ = ["harm_by_size_figure", "interaction_figure", "scale_sweep_figure", "branch_maps_figure"]

BUCKETS = ("small", "medium", "large")


def _fmt(v: float | None, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def harm_by_size_figure(rows: Sequence[Any], model: str, metric: str, title: str = "") -> go.Figure:
    """Heatmap of mean harm (intact minus knocked out) by branch position (rows, per block) and object size."""
    sel = [r for r in rows if r.model == model and r.metric == metric and r.bucket in BUCKETS]
    ylabels = list(dict.fromkeys(f"{r.block} · {r.label}" for r in sel))
    z = np.full((len(ylabels), len(BUCKETS)), np.nan)
    text = [["" for _ in BUCKETS] for _ in ylabels]
    for r in sel:
        i, j = ylabels.index(f"{r.block} · {r.label}"), BUCKETS.index(r.bucket)
        z[i, j] = np.nan if r.harm is None else r.harm
        text[i][j] = f"{_fmt(r.harm)} [{_fmt(r.low)}, {_fmt(r.high)}] n={r.n}"
    lim = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    fig = go.Figure(go.Heatmap(z=z, x=list(BUCKETS), y=ylabels, text=text, hoverinfo="text+x+y",
                               colorscale="RdBu_r", zmin=-lim, zmax=lim, colorbar={"title": "harm"}))
    fig.update_yaxes(autorange="reversed", title="block · branch (0 = smallest receptive field)")
    fig.update_xaxes(title="object size (box area / image)")
    fig.update_layout(title=title or f"{model}: harm of a knock-out ({metric}) by branch and object size",
                      height=max(300, 22 * len(ylabels) + 120), margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def interaction_figure(interactions: Sequence[Any], block: str, metric: str, min_effect: float | None = None,
                       title: str = "") -> go.Figure:
    """Interaction (harm on large minus harm on small) per branch of ``block``, one trace per model, 95% intervals;
    the band ±min_effect marks 'no meaningful difference'."""
    fig = go.Figure()
    for model in dict.fromkeys(r.model for r in interactions):
        sel = [r for r in interactions if r.model == model and r.block == block and r.metric == metric]
        if not sel:
            continue
        est = [r.interaction for r in sel]
        fig.add_trace(go.Scatter(
            x=[r.label for r in sel], y=est, mode="markers+lines", name=model,
            error_y={"type": "data", "symmetric": False,
                     "array": [(r.high - e) if r.high is not None else 0 for r, e in zip(sel, est, strict=True)],
                     "arrayminus": [(e - r.low) if r.low is not None else 0
                                    for r, e in zip(sel, est, strict=True)]}))
    if min_effect:
        fig.add_hrect(y0=-min_effect, y1=min_effect, fillcolor="grey", opacity=0.15, line_width=0)
    fig.add_hline(y=0, line_dash="dot")
    fig.update_layout(title=title or f"{block}: large minus small harm per branch ({metric})",
                      xaxis_title="branch (0 = smallest receptive field)", yaxis_title="interaction",
                      margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def _span(values: Sequence[float | None], lows: Sequence[float | None], highs: Sequence[float | None]
          ) -> tuple[float, float]:
    """(lowest, highest) of the values and their interval ends."""
    got = [v for v in (*values, *lows, *highs) if v is not None]
    return (min(got), max(got)) if got else (0.0, 1.0)


def scale_sweep_figure(sweep: Any, title: str = "") -> go.Figure:
    """Top-1 (ours, then the paper's), energy, coverage and ERF radius against s, intervals over runs.

    Both top-1 panels span the same number of points (the wider of the two, centred on each one's values), so the
    slopes of ours and the paper's can be compared by eye even though the levels differ."""
    rows = list(sweep.rows)
    s = [r.scale for r in rows]
    panels = (("top1", "top-1 %, ours"), ("energy", "energy in box"), ("coverage", "coverage"),
              ("erf_radius_50", "ERF r50 (px)"))
    fig = make_subplots(rows=1, cols=5, horizontal_spacing=0.05,
                        subplot_titles=[panels[0][1], "top-1 %, paper", *(p[1] for p in panels[1:])])
    spans = {}
    for k, (key, _) in enumerate(panels):
        col = 1 if k == 0 else k + 2
        vals = [getattr(r, key) for r in rows]
        y = [None if v is None else v.mean for v in vals]
        hi = [0 if v is None or v.high is None else v.high - v.mean for v in vals]
        lo = [0 if v is None or v.low is None else v.mean - v.low for v in vals]
        fig.add_trace(go.Scatter(x=s, y=y, mode="markers+lines", name="ours (Tiny-ImageNet-100)",
                                 showlegend=k == 0, line={"color": "#1f77b4"},
                                 error_y={"type": "data", "symmetric": False, "array": hi, "arrayminus": lo}),
                      row=1, col=col)
        if key == "top1":
            spans["ours"] = _span(y, [v.low if v else None for v in vals], [v.high if v else None for v in vals])
    paper = [(r.scale, r.paper_top1) for r in rows if r.paper_top1 is not None]
    if paper:
        fig.add_trace(go.Scatter(x=[p[0] for p in paper], y=[p[1] for p in paper], mode="markers+lines",
                                 name="paper (ImageNet, Res2Net-50)", line={"color": "#d62728", "dash": "dash"}),
                      row=1, col=2)
        spans["paper"] = _span([p[1] for p in paper], [], [])
        width = 1.1 * max(hi - lo for lo, hi in spans.values()) or 1.0
        for col, (lo, hi) in zip((1, 2), (spans["ours"], spans["paper"]), strict=True):
            mid = (lo + hi) / 2
            fig.update_yaxes(range=[mid - width / 2, mid + width / 2], row=1, col=col)
    fig.update_xaxes(type="log", tickvals=s, title="scale s")
    fig.update_annotations(font={"size": 12})
    fig.update_layout(title={"text": title or "The scale sweep: s = 1 (ResNet), 2, 4, 8", "font": {"size": 15}},
                      height=360, margin={"l": 10, "r": 10, "t": 80, "b": 10},
                      legend={"orientation": "h", "y": -0.25})
    return fig


def branch_maps_figure(maps: Mapping[str, np.ndarray], title: str = "", shared: bool = True) -> go.Figure:
    """Signed maps side by side (one panel each) on one diverging colour scale centred at zero."""
    names = list(maps)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.02)
    lim = max((float(np.abs(m).max()) for m in maps.values() if m.size), default=1.0) or 1.0
    for k, n in enumerate(names, start=1):
        m = np.asarray(maps[n], dtype=np.float64)
        own = float(np.abs(m).max()) or 1.0
        z = lim if shared else own
        fig.add_trace(go.Heatmap(z=m, zmin=-z, zmax=z, colorscale="RdBu_r", showscale=k == len(names),
                                 hovertemplate="row %{y}, col %{x}: %{z:.4g}<extra>" + n + "</extra>"), row=1, col=k)
    fig.update_yaxes(autorange="reversed", showticklabels=False)
    fig.update_xaxes(showticklabels=False)
    fig.update_layout(title=title, height=260, margin={"l": 10, "r": 10, "t": 60, "b": 10})
    return fig
