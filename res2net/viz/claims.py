"""The Claims page's figures (plotly; no Streamlit): the forest plot of every claim, and the evidence strip.

The claims test different metrics (top-1 points, shares of a box, ERF pixels), so the forest plot puts each claim's
estimate and interval in units of its own minimum meaningful effect d: the "no meaningful difference" band is then
[-1, 1] for every row, and a verdict can be read from where the bar lies against that band and against zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go

from res2net.viz.plots import CHANCE_COLOR

__all__ = ["ForestRow", "VERDICT_COLOURS", "FAMILY_SYMBOLS", "forest_figure", "in_units_of_d"]

# colour-blind safe (Okabe-Ito); the page's verdict chips use the same words
VERDICT_COLOURS = {"supported": "#009E73", "contradicted": "#D55E00", "no meaningful difference": "#0072B2",
                   "inconclusive": "#999999"}
FAMILY_SYMBOLS = {"confirmatory": "circle", "exploratory": "circle-open"}


@dataclass(frozen=True)
class ForestRow:
    """One claim as the forest plot draws it.

    ``label`` names the claim (one row each, so it must be unique); ``group`` is the section it belongs to;
    ``low``/``high`` the interval the verdict was judged on at ``level``; ``low95``/``high95`` the unadjusted one;
    ``unit`` how the raw numbers read in the hover ("points", "px", "").
    """

    label: str
    group: str
    family: str
    verdict: str
    estimate: float | None
    low: float | None
    high: float | None
    low95: float | None
    high95: float | None
    level: float
    min_effect: float
    unit: str = ""


def in_units_of_d(value: float | None, d: float) -> float | None:
    """``value`` / ``d`` (None stays None): the forest plot's x coordinate."""
    return None if value is None else value / d


def _fmt(v: float | None, unit: str) -> str:
    return "–" if v is None else f"{v:.4g}{' ' + unit if unit else ''}"


def forest_figure(rows: Sequence[ForestRow], *, title: str = "", row_height: int = 22) -> go.Figure:
    """One row per claim, top to bottom in ``rows`` order: the estimate (dot) with the judged interval (thick bar)
    and the 95% interval (thin whisker), in units of d; a grey band at ±1 d, a dotted line at 0; the dot's colour is
    the verdict, filled for confirmatory and open for exploratory claims. Groups are separated by a line."""
    if not rows:
        raise ValueError("no claims to draw")
    labels = [r.label for r in rows]
    if len(set(labels)) != len(labels):
        raise ValueError("every claim needs its own label (one row each)")
    fig = go.Figure()
    fig.add_vrect(x0=-1, x1=1, fillcolor="grey", opacity=0.18, line_width=0, layer="below")
    fig.add_vline(x=0, line={"color": CHANCE_COLOR, "dash": "dot", "width": 1})
    seen: set[tuple[str, str]] = set()
    for r in rows:
        d = r.min_effect
        x = in_units_of_d(r.estimate, d)
        colour = VERDICT_COLOURS.get(r.verdict, CHANCE_COLOR)
        for lo, hi, width in ((r.low95, r.high95, 1), (r.low, r.high, 5)):  # the judged interval drawn over the 95%
            if lo is not None and hi is not None:
                fig.add_trace(go.Scatter(x=[lo / d, hi / d], y=[r.label, r.label], mode="lines", showlegend=False,
                                         line={"color": colour, "width": width}, opacity=0.55 if width > 1 else 0.9,
                                         hoverinfo="skip"))
        key = (r.verdict, r.family)
        symbol = FAMILY_SYMBOLS.get(r.family, "diamond")
        hover = (f"<b>{r.label}</b><br>{r.verdict} ({r.family})<br>estimate {_fmt(r.estimate, r.unit)}, "
                 f"d = {_fmt(d, r.unit)}<br>judged at {100 * r.level:.1f}%: [{_fmt(r.low, r.unit)}, "
                 f"{_fmt(r.high, r.unit)}]<br>95%: [{_fmt(r.low95, r.unit)}, {_fmt(r.high95, r.unit)}]")
        fig.add_trace(go.Scatter(
            x=[x], y=[r.label], mode="markers", name=f"{r.verdict} · {r.family}", legendgroup=r.verdict,
            showlegend=key not in seen, customdata=[r.family],
            marker={"color": colour, "symbol": symbol, "size": 11, "line": {"color": colour, "width": 2}},
            hovertemplate=hover + "<extra></extra>"))
        seen.add(key)
    for k in range(1, len(rows)):  # a line between sections
        if rows[k].group != rows[k - 1].group:
            fig.add_hline(y=k - 0.5, line={"color": "#BBBBBB", "width": 1})
    groups = list(dict.fromkeys(r.group for r in rows))
    for g in groups:
        first = next(i for i, r in enumerate(rows) if r.group == g)
        fig.add_annotation(x=1.0, xref="paper", xanchor="right", y=first - 0.45, yanchor="bottom", text=f"<i>{g}</i>",
                           showarrow=False, font={"size": 11, "color": "#666666"})
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=labels,
                     range=[len(rows) - 0.5, -0.5], automargin=True, tickfont={"size": 12})
    fig.update_xaxes(title_text="difference in units of d (Res2Net − reference, or later − earlier branch); grey "
                                "band: within ±d", zeroline=False)
    fig.update_layout(title={"text": title}, height=row_height * len(rows) + 150, showlegend=True,
                      margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "left", "x": 0,
                              "font": {"size": 11}, "entrywidth": 230})
    return fig
