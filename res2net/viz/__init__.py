"""Figures (plotly, matplotlib) from arrays and results; no Streamlit.

May import res2net.models, geometry, analysis, metrics, data and evaluation.results.
"""
