"""Plotly charts on the page, each sent with a fresh spec on every run.

plotly.js writes the axis domains it shrinks for a fixed aspect ratio (``constrain="domain"``) back into the
figure's layout. When a rerun sends a chart unchanged, the page re-lays it out from those shrunk domains, and a
photo panel can end up a few pixels wide. A per-draw number in ``layout.meta`` makes every spec new, so plotly
always starts from the domains the figure asked for.
"""

from __future__ import annotations

import itertools

import plotly.graph_objects as go
import streamlit as st

_DRAWS = itertools.count()


def plotly_chart(fig: go.Figure, **kwargs: object) -> None:
    """``st.plotly_chart`` for a figure that must be laid out afresh on each run (same arguments)."""
    fig.layout.meta = {"draw": next(_DRAWS)}
    st.plotly_chart(fig, **kwargs)
