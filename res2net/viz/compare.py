"""Figure helpers for comparing models' maps: the untrained mark, a zoomed photo window, faithfulness curves with
the random-order band, and the normalised difference of two maps. No Streamlit here."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

UNTRAINED_MARK = "UNTRAINED"
UNTRAINED_TITLE = "UNTRAINED · "
MARK_COLOR = "rgba(200, 0, 0, 0.6)"
MAX_VIEW_ASPECT = 2.0  # the photo window drawn is at most twice as wide as tall (or tall as wide)


def _axis_pairs(fig: go.Figure) -> list[tuple[str, str]]:
    """(xaxis, yaxis) layout names of every panel, in panel order."""
    layout = fig.to_plotly_json()["layout"]
    xs = sorted((k for k in layout if k.startswith("xaxis")), key=lambda k: int(k[5:] or 1))
    return [(x, "yaxis" + x[5:]) for x in xs if "yaxis" + x[5:] in layout]


def mark_untrained(fig: go.Figure, panels: Sequence[int] | None = None, *, font_size: int = 22) -> go.Figure:
    """Mark panels of an untrained model's figure inside the plot: a diagonal UNTRAINED watermark over each panel
    and "UNTRAINED ·" before its title. ``panels``: indices of the panels to mark (None: all). Returns ``fig``."""
    pairs = _axis_pairs(fig)
    chosen = [k for k in (range(len(pairs)) if panels is None else panels) if k < len(pairs)]
    domains = [(fig.layout[pairs[k][0]].domain or (0, 1), fig.layout[pairs[k][1]].domain or (0, 1)) for k in chosen]
    for a in fig.layout.annotations or []:  # a panel's own title sits above its x domain's centre
        if a.yanchor == "bottom" and not str(a.text).startswith(UNTRAINED_TITLE) and any(
                abs(a.x - (xd[0] + xd[1]) / 2) < 1e-6 and abs(a.y - yd[1]) < 1e-6 for xd, yd in domains):
            a.text = UNTRAINED_TITLE + str(a.text)
            a.font.color = "#C00000"
    for xd, yd in domains:
        fig.add_annotation(text=f"<b>{UNTRAINED_MARK}</b>", x=(xd[0] + xd[1]) / 2, y=(yd[0] + yd[1]) / 2,
                           xref="paper", yref="paper", showarrow=False, textangle=-30, name="untrained-mark",
                           font=dict(size=font_size, color=MARK_COLOR), bgcolor="rgba(255, 255, 255, 0.35)")
    return fig


def view_window(size: tuple[int, int], seen: Sequence[tuple[float, float, float, float]],
                max_aspect: float = MAX_VIEW_ASPECT) -> tuple[float, float, float, float] | None:
    """The part of a (width, height) photo worth drawing: the photo itself when its aspect is at most
    ``max_aspect``; else the regions the models saw (``seen``: left, top, right, bottom, pixel edges at ±0.5),
    widened about their centre to ``max_aspect`` within the photo. None: draw the whole photo (also when the
    models saw more than that window holds)."""
    w, h = size
    if max(w / h, h / w) <= max_aspect:
        return None
    left = max(min(s[0] for s in seen), -0.5) if seen else -0.5
    top = max(min(s[1] for s in seen), -0.5) if seen else -0.5
    right = min(max(s[2] for s in seen), w - 0.5) if seen else w - 0.5
    bottom = min(max(s[3] for s in seen), h - 0.5) if seen else h - 0.5
    if w >= h:  # a wide strip: its full height, max_aspect times as wide, about what the models saw
        half = max_aspect * h / 2
        if right - left > 2 * half:  # the models saw more than fits ('resize', 'pad'): draw it all
            return None
        cx = min(max((left + right) / 2, -0.5 + half), w - 0.5 - half)
        return cx - half, -0.5, cx + half, h - 0.5
    half = max_aspect * w / 2
    if bottom - top > 2 * half:
        return None
    cy = min(max((top + bottom) / 2, -0.5 + half), h - 0.5 - half)
    return -0.5, cy - half, w - 0.5, cy + half


def zoom(fig: go.Figure, window: tuple[float, float, float, float] | None) -> go.Figure:
    """Show only ``window`` (left, top, right, bottom in photo pixel edges) of every panel of a photo figure."""
    if window is not None:
        left, top, right, bottom = window
        fig.update_xaxes(range=[left, right], autorange=False)
        fig.update_yaxes(range=[bottom, top], autorange=False)
    return fig


def colorbars_as_tall_as_panels(fig: go.Figure) -> go.Figure:
    """Each shown colour bar spans exactly its panel row's height (maps are drawn height-limited)."""
    for trace in fig.data:
        if getattr(trace, "showscale", False) and trace.type == "heatmap":
            ya = "yaxis" + (trace.yaxis or "y")[1:]
            yd = fig.layout[ya].domain or (0, 1)
            trace.colorbar.update(len=yd[1] - yd[0], lenmode="fraction", y=(yd[0] + yd[1]) / 2, yanchor="middle")
    return fig


def colorbar_below(fig: go.Figure, extra_px: int = 44) -> go.Figure:
    """Put a one-panel figure's colour bar under its map, as wide as the panel: it then takes no width from a
    narrow grid cell. The figure grows by ``extra_px`` to hold it."""
    xd = fig.layout.xaxis.domain or (0, 1)
    for trace in fig.data:
        if getattr(trace, "showscale", False) and trace.type == "heatmap":
            trace.colorbar.update(orientation="h", len=xd[1] - xd[0], lenmode="fraction", x=(xd[0] + xd[1]) / 2,
                                  xanchor="center", y=-0.02, yanchor="top", thickness=8, title=dict(side="top"),
                                  nticks=3)
    fig.update_layout(height=(fig.layout.height or 300) + extra_px,
                      margin=dict(b=(fig.layout.margin.b or 0) + extra_px))
    return fig


def normalised_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / max|a| − b / max|b|``: two models' maps are in different units, so each is scaled by its own largest
    magnitude first; the result lies in [−1, 1] (NaN where either is NaN; an all-zero map counts as zeros)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"maps of different shapes: {x.shape} and {y.shape}")

    def scaled(m: np.ndarray) -> np.ndarray:
        top = float(np.nanmax(np.abs(m))) if np.isfinite(m).any() else 0.0
        return m / top if top > 0 else np.where(np.isnan(m), np.nan, 0.0)

    return scaled(x) - scaled(y)


def faithfulness_figure(fractions: np.ndarray, deletion: np.ndarray, insertion: np.ndarray,
                        random_deletion: np.ndarray | None, random_insertion: np.ndarray | None, *,
                        title: str = "", color: str = "#0072B2", height: int = 210) -> go.Figure:
    """Small deletion and insertion curves (fraction of pixels changed → target probability) beside the band the
    random pixel orders span (their minimum to maximum) and the random orders' mean."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["deletion (lower is better)", "insertion (higher is better)"],
                        horizontal_spacing=0.14)
    for col, (curve, rand) in enumerate(((deletion, random_deletion), (insertion, random_insertion)), start=1):
        if rand is not None and len(rand):
            r = np.asarray(rand, dtype=np.float64)
            fig.add_trace(go.Scatter(x=fractions, y=r.max(0), mode="lines", line=dict(width=0), showlegend=False,
                                     hoverinfo="skip"), row=1, col=col)
            fig.add_trace(go.Scatter(x=fractions, y=r.min(0), mode="lines", line=dict(width=0), fill="tonexty",
                                     fillcolor="rgba(120, 120, 120, 0.3)", name="random orders (range)",
                                     showlegend=col == 1, hoverinfo="skip"), row=1, col=col)
            fig.add_trace(go.Scatter(x=fractions, y=r.mean(0), mode="lines", name="random orders (mean)",
                                     line=dict(color="#555555", dash="dash", width=1), showlegend=col == 1),
                          row=1, col=col)
        fig.add_trace(go.Scatter(x=fractions, y=curve, mode="lines+markers", name="this map",
                                 line=dict(color=color, width=2), marker=dict(size=4), showlegend=col == 1),
                      row=1, col=col)
    fig.update_xaxes(title=dict(text="fraction of pixels", font=dict(size=10)), range=[0, 1], tickformat=".0%",
                     nticks=3)
    fig.update_yaxes(range=[0, 1.02], nticks=3, title=dict(text="p(target)", font=dict(size=10)), col=1)
    fig.update_yaxes(range=[0, 1.02], nticks=3, col=2)
    fig.update_annotations(font_size=11)
    fig.update_layout(height=height, margin=dict(l=40, r=8, t=30 + (18 if title else 0), b=36),
                      title=dict(text=title, font=dict(size=12)) if title else None,
                      legend=dict(orientation="h", y=-0.35, x=0, font=dict(size=10)))
    return fig
