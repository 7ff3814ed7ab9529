"""Analyses on one model and input: CAM methods, gradient-free CAMs, ERFs, feature maps, branch lesions,
exact decomposition, faithfulness.

May import res2net.models and res2net.geometry.
"""
