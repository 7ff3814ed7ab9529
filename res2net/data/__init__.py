"""Data: the Tiny-ImageNet-100 reader, dataset adapters (ImageNet val, folders), user images and demo photos,
and the download command.

May import res2net.models and res2net.geometry.
"""
