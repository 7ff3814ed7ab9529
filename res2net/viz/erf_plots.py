"""Effective receptive fields of several taps side by side, on one colour scale or each on its own (plotly).

On a shared scale the maps can be compared by eye: an ERF spread over more pixels has a lower peak, because every
map sums to 1. On their own scales each map is divided by its peak, and the one colour bar reads "share of the
map's own peak". Nothing here imports Streamlit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from res2net.viz.plots import MAP_COLORSCALE

__all__ = ["ErfPanel", "erf_grid_figure", "shared_peak"]


@dataclass(frozen=True)
class ErfPanel:
    """One ERF map (input-sized, non-negative, sums to 1), its title, the unit's centre (y, x) and theoretical RF."""

    map: np.ndarray
    title: str
    centre: tuple[float, float] | None = None
    rf_size: tuple[float, float] | None = None


def shared_peak(maps: Sequence[np.ndarray]) -> float:
    """The largest value over ``maps``: the top of a colour scale they share (1.0 when all are zero)."""
    peaks = [float(np.nanmax(m)) for m in maps if np.size(m) and np.isfinite(m).any()]
    return max(peaks, default=0.0) or 1.0


def erf_grid_figure(panels: Sequence[ErfPanel], *, shared_max: float | None, log: bool = False,
                    decades: float = 4.0, per_row: int = 5, panel_height: int = 230, title: str = "",
                    window: float | None = None) -> go.Figure:
    """ERF maps in a grid of ``per_row`` columns (fewer maps leave columns empty, so panels of several figures have
    one size) with one colour bar. ``shared_max``: the top of a scale shared by every map (pass ``shared_peak`` of
    all maps compared, across models too); None: each map divided by its own peak.

    ``log`` shows log10 over ``decades`` below the top. ``window``: show only the square of this half-side (px)
    around each unit's centre (the input's edge still bounds it). The cross marks the unit's receptive-field centre,
    the dashed square its theoretical receptive field.
    """
    if not panels:
        raise ValueError("no ERF maps to draw")
    if shared_max is not None and not shared_max > 0:
        raise ValueError(f"shared_max must be positive, got {shared_max}")
    cols = per_row
    rows = -(-len(panels) // cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[p.title for p in panels], horizontal_spacing=0.02,
                        vertical_spacing=0.12 / rows if rows > 1 else 0.0)
    top = 1.0 if shared_max is None else float(shared_max)
    lo = np.log10(top) - decades if log else 0.0
    hi = np.log10(top) if log else top
    unit = "contribution" if shared_max is not None else "share of own peak"
    if log:
        ticks = np.arange(np.ceil(lo), np.floor(hi) + 1)
        cbar = {"title": {"text": f"{unit} (log10)", "side": "right"}, "tickvals": list(ticks),
                "ticktext": [f"1e{int(t)}" for t in ticks], "thickness": 12}
    else:
        cbar = {"title": {"text": unit, "side": "right"}, "thickness": 12}
    for k, p in enumerate(panels):
        r, c = divmod(k, cols)
        z = np.asarray(p.map, dtype=np.float64)
        if z.ndim != 2:
            raise ValueError(f"expected a 2-D ERF map, got shape {z.shape} for {p.title!r}")
        if shared_max is None:
            own = float(np.nanmax(z)) if np.isfinite(z).any() else 0.0
            z = z / own if own > 0 else z
        shown = np.log10(np.maximum(z, 10.0 ** lo)) if log else z
        fig.add_trace(go.Heatmap(z=shown, customdata=z, colorscale=MAP_COLORSCALE, zmin=lo, zmax=hi, zauto=False,
                                 showscale=k == 0, colorbar=cbar,
                                 hovertemplate="x %{x}, y %{y}<br>%{customdata:.3g}<extra>" + p.title + "</extra>"),
                      row=r + 1, col=c + 1)
        h, w = z.shape
        if p.centre is not None:
            cy, cx = (float(v) for v in p.centre)
            fig.add_trace(go.Scatter(x=[cx], y=[cy], mode="markers", showlegend=False, hoverinfo="skip",
                                     marker={"symbol": "x-thin", "size": 10, "line": {"width": 2, "color": "#FFFFFF"}}),
                          row=r + 1, col=c + 1)
            if p.rf_size is not None:
                sy, sx = (float(v) for v in p.rf_size)
                fig.add_shape(type="rect", x0=cx - sx / 2, x1=cx + sx / 2, y0=cy - sy / 2, y1=cy + sy / 2,
                              line={"color": "#FFFFFF", "width": 1, "dash": "dash"}, row=r + 1, col=c + 1)
        x_range, y_range = [-0.5, w - 0.5], [h - 0.5, -0.5]
        if window is not None:
            cy, cx = (h - 1) / 2, (w - 1) / 2
            if p.centre is not None:
                cy, cx = (float(v) for v in p.centre)
            x_range = [max(-0.5, cx - window), min(w - 0.5, cx + window)]
            y_range = [min(h - 0.5, cy + window), max(-0.5, cy - window)]
        axis = {"constrain": "domain", "showticklabels": False, "ticks": "", "showgrid": False, "zeroline": False}
        fig.update_xaxes(range=x_range, **axis, row=r + 1, col=c + 1)
        fig.update_yaxes(range=y_range, scaleanchor=f"x{'' if k == 0 else k + 1}", **axis, row=r + 1, col=c + 1)
    fig.update_annotations(font={"size": 12})
    fig.update_layout(title={"text": title} if title else None, height=panel_height * rows + (50 if title else 30),
                      margin={"l": 4, "r": 4, "t": 50 if title else 30, "b": 4})
    return fig
