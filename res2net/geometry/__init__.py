"""Geometry: receptive fields and the one registration of maps onto the input and the user's photo.

May import res2net.models.
"""
