"""Analyses on one model and input: CAM methods, gradient-free CAMs, ERFs, feature maps, branch lesions,
exact decomposition, faithfulness, map similarity. Maps stay at the tap's resolution; placing them on the input
or the photo is geometry's job.

May import res2net.models and res2net.geometry.
"""
