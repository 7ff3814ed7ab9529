"""Cached analyses the views call (models, CAMs, ERFs, knock-out, one-tap CAMs, photos and image sources);
each result is computed through the admission gate and kept in the byte budget (``shared_cache``)."""
