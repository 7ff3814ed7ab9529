"""Data: everything that reads images from disk or from a user.

- ``tiny_imagenet``: the Tiny-ImageNet-100 folder (train/val archives, labels, boxes) decoded once and cached.
- ``datasets``: evaluation datasets behind one interface (``EvalDataset``: Tiny-ImageNet-100, ImageNet val, a
  folder of images with boxes).
- ``images``: a user's photo decoded and validated (``ImageError`` says why one is unusable), turned into a model
  input (``preprocess``), and the offline demo photos.
- ``download``: ``python -m res2net.data.download`` builds the Tiny-ImageNet-100 folder from the original zip.

May import res2net.models and res2net.geometry.
"""
