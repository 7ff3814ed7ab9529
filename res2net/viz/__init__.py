"""Figures (plotly, matplotlib) from arrays and result records; no Streamlit.

May import res2net.models, geometry, analysis, metrics and data; not evaluation (which sits beside viz): results
reach the figures as plain records.
"""
