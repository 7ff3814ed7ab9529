"""Images on their way into a model: uploaded bytes decoded once (in the shared cache), the model's input tensor,
the picture the model saw, and arrays turned back into PNG bytes."""

from __future__ import annotations

import io

import numpy as np
import torch

from dashboard.services import shared_cache
from dashboard.state import MAX_PIXELS, MAX_UPLOAD_BYTES
from res2net.data import images

# Decoded uploads keep at most this many pixels (12 MB as RGB): a 2000 px square, ~8x the side of the largest
# model's resized input (256 px) and more than the page displays.
KEEP_PIXELS = 4_000_000


def decode_image(data: bytes) -> images.LoadedImage:
    """Decode and validate uploaded bytes, kept at most ``KEEP_PIXELS`` large; raises the package's ImageError with
    a user-readable message. The refusal is cached too, so a bad file is not decoded again on every rerun."""
    def decode() -> images.LoadedImage | images.ImageError:
        try:
            return images.load_image(data, max_bytes=MAX_UPLOAD_BYTES, max_pixels=MAX_PIXELS,
                                     keep_pixels=KEEP_PIXELS)
        except images.ImageError as exc:
            return exc.with_traceback(None)

    out = shared_cache.shared(("image", shared_cache.image_key(data)), "Decoding the image", decode)
    if isinstance(out, images.ImageError):  # a fresh copy: the cached one must not collect every raise's frames
        raise type(out)(out.message, out.detail) from None
    return out


def model_input(data: bytes, name: str, mode: str = "center_crop") -> torch.Tensor:
    """The (1, 3, S, S) input tensor of model ``name`` for image bytes ('center_crop', 'resize' or 'pad')."""
    return images.preprocess(decode_image(data).image, name, mode=mode)


def display_image(x: torch.Tensor, name: str) -> np.ndarray:
    """The model's input as a uint8 (S, S, 3) picture, so that overlays line up with what the model saw."""
    return images.denormalize(x, name)


def png_bytes(array: np.ndarray) -> bytes:
    """A uint8 (H, W, 3) or (3, H, W) array as PNG bytes (how gallery images enter the image pipeline)."""
    from PIL import Image

    a = np.asarray(array)
    if a.ndim == 3 and a.shape[0] == 3:
        a = a.transpose(1, 2, 0)
    buf = io.BytesIO()
    Image.fromarray(a.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()
