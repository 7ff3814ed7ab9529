"""The user's photo as the browser gets it: encoded once per image (in the server's byte-bounded cache, shared by
sessions), so a redraw (opacity, scale, tap) re-encodes nothing."""

from __future__ import annotations

import numpy as np

from dashboard.services import image_inputs, shared_cache
from res2net.viz import plots

DISPLAY_SIDE = 512  # px: the longest side the photo is sent at (maps keep their own resolution)


def photo_uri(data: bytes) -> tuple[str, tuple[int, int]]:
    """The decoded image bytes as a PNG data URI at most ``DISPLAY_SIDE`` px a side, and its encoded size."""
    return shared_cache.shared(("photo_uri", shared_cache.image_key(data), DISPLAY_SIDE),
                               "Encoding the photo for display", lambda: plots.png_data_uri(rgb(data), DISPLAY_SIDE))


def rgb(data: bytes) -> np.ndarray:
    """The decoded photo as (H, W, 3) uint8 at its own resolution."""
    return np.asarray(image_inputs.decode_image(data).image.convert("RGB"))
