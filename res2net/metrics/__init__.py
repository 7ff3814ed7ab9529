"""Metrics: box scores of a map against object boxes, and the statistics the verdicts rest on.

Pure numpy; may import res2net.models and res2net.geometry.
"""
