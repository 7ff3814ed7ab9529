"""Branches of several models compared by receptive field, not by index (plotly; no Streamlit).

Branch k of one model and branch k of another see different extents, an identity branch is no conv branch at all,
and a ResNet bottleneck has one 3×3 path rather than a "branch 0". So conv branches are placed at their theoretical
receptive field and joined by a line within one model only; identity (or pool) branches sit apart in their own
panel; a one-path block is a reference mark of its own (a star, and a dotted level across the panel).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from res2net.models.taps import BlockInfo
from res2net.viz.plots import CHANCE_COLOR, model_color

__all__ = ["BranchPoint", "KINDS", "branch_kind", "branch_title", "branch_rf_figure"]

KINDS = ("conv", "identity", "path")  # a conv branch of a multi-branch block, an identity/pool branch, a 3×3 path


@dataclass(frozen=True)
class BranchPoint:
    """One branch's value: which model, what kind of branch, its theoretical receptive field (px), its label."""

    model: str
    kind: str
    rf: float
    value: float | None
    label: str
    low: float | None = None
    high: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")


def branch_kind(index: int, num_branches: int, is_res2net: bool) -> str:
    """'path' for a block with one branch (a ResNet bottleneck's 3×3 path), 'identity' for a Res2Net block's last
    branch (identity in normal blocks, average pool in stage blocks), else 'conv'."""
    if num_branches == 1 or not is_res2net:
        return "path"
    return "identity" if index == num_branches - 1 else "conv"


def branch_title(info: BlockInfo, index: int) -> str:
    """How a page names a branch: '3×3 path' for a one-path block (a ResNet bottleneck), else the code's label
    ('branch 0' … 'branch 3 (identity)')."""
    if branch_kind(index, info.num_branches, info.kind == "res2net") == "path":
        return "3×3 path"
    return info.branch_label(index)


def _error(points: Sequence[BranchPoint]) -> dict | None:
    if all(p.low is None or p.high is None for p in points):
        return None
    return {"type": "data", "symmetric": False, "thickness": 1.5, "width": 4,
            "array": [0 if p.high is None or p.value is None else p.high - p.value for p in points],
            "arrayminus": [0 if p.low is None or p.value is None else p.value - p.low for p in points]}


def branch_rf_figure(points: Sequence[BranchPoint], *, title: str, value_title: str, rf_title: str,
                     band: float | None = None, reference_level: bool = True, height: int = 380) -> go.Figure:
    """``value`` of every branch against its receptive field: conv branches on a line per model (left panel),
    identity branches apart (right panel), one-path blocks as stars with a dotted level (``reference_level``).

    ``band``: a grey ±band around zero ("no meaningful difference") with a dotted zero line.
    """
    if not points:
        raise ValueError("no branches to draw")
    models = list(dict.fromkeys(p.model for p in points))
    has_identity = any(p.kind == "identity" for p in points)
    cols = 2 if has_identity else 1
    last = {"pool" if "pool" in p.label else "identity" for p in points if p.kind == "identity"}
    fig = make_subplots(rows=1, cols=cols, shared_yaxes=True, column_widths=[0.8, 0.2] if has_identity else [1.0],
                        horizontal_spacing=0.03,
                        subplot_titles=["conv branches by receptive field", " / ".join(sorted(last))][:cols])
    for model in models:
        colour = model_color(model)
        conv = sorted((p for p in points if p.model == model and p.kind == "conv"), key=lambda p: p.rf)
        if conv:
            fig.add_trace(go.Scatter(
                x=[p.rf for p in conv], y=[p.value for p in conv], mode="markers+lines", name=model,
                legendgroup=model, line={"color": colour, "width": 2}, marker={"size": 9, "color": colour},
                error_y=_error(conv), text=[p.label for p in conv],
                hovertemplate="%{text}: %{y:.4g}<br>RF %{x} px<extra>" + model + "</extra>"), row=1, col=1)
        for p in (p for p in points if p.model == model and p.kind == "path"):
            fig.add_trace(go.Scatter(
                x=[p.rf], y=[p.value], mode="markers", name=f"{model}: 3×3 path", legendgroup=model,
                marker={"symbol": "star", "size": 15, "color": colour, "line": {"color": "#000000", "width": 1}},
                error_y=_error([p]), text=[p.label],
                hovertemplate="the whole 3×3 path: %{y:.4g}<br>RF %{x} px<extra>" + model + "</extra>"),
                row=1, col=1)
            if reference_level and p.value is not None:
                fig.add_hline(y=p.value, line={"color": colour, "dash": "dot", "width": 1}, row=1, col=1)
        ident = [p for p in points if p.model == model and p.kind == "identity"]
        if ident:
            fig.add_trace(go.Scatter(
                x=[model] * len(ident), y=[p.value for p in ident], mode="markers", name=f"{model}: identity",
                legendgroup=model, showlegend=not conv,
                marker={"symbol": "diamond-open", "size": 11, "color": colour, "line": {"width": 2}},
                error_y=_error(ident), text=[p.label for p in ident],
                hovertemplate="%{text}: %{y:.4g}<extra>" + model + "</extra>"), row=1, col=2)
    if band:
        for c in range(1, cols + 1):
            fig.add_hrect(y0=-band, y1=band, fillcolor="grey", opacity=0.15, line_width=0, row=1, col=c)
            fig.add_hline(y=0, line={"color": CHANCE_COLOR, "dash": "dot", "width": 1}, row=1, col=c)
    fig.update_xaxes(title_text=rf_title, row=1, col=1)
    if has_identity:
        fig.update_xaxes(type="category", showticklabels=False, row=1, col=2)
    fig.update_yaxes(title_text=value_title, row=1, col=1)
    fig.update_layout(title={"text": title}, height=height, margin={"l": 10, "r": 10, "t": 60, "b": 10},
                      legend={"orientation": "h", "yanchor": "top", "y": -0.2, "xanchor": "left", "x": 0})
    return fig
