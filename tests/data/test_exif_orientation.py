"""All eight EXIF orientations, the mirrored ones included, decoded upright by ``res2net.data.images.load_image``.

The upright picture is 40 x 24 (wide) with a red marker in its top-left quadrant and a blue one at its bottom edge.
For each orientation the stored pixels are built here from the TIFF/EXIF definition of the tag (which side of the
upright picture the stored row 0 and column 0 show), written out as index formulas, not with PIL's transposes.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from res2net.data.images import load_image

H, W = 24, 40  # upright size
RED = (slice(3, 9), slice(4, 14))  # rows 3..8, columns 4..13: top-left quadrant, not on the diagonal
BLUE = (slice(20, 23), slice(30, 36))  # rows 20..22, columns 30..35: bottom right


def upright() -> np.ndarray:
    a = np.full((H, W, 3), 128, np.uint8)
    a[RED] = (255, 0, 0)
    a[BLUE] = (0, 0, 255)
    return a


# orientation -> (stored shape, upright (y, x) shown by stored pixel (r, c)), from the tag's definition:
#   1 row 0 = top,    col 0 = left      2 row 0 = top,   col 0 = right     3 row 0 = bottom, col 0 = right
#   4 row 0 = bottom, col 0 = left      5 row 0 = left,  col 0 = top       6 row 0 = right,  col 0 = top
#   7 row 0 = right,  col 0 = bottom    8 row 0 = left,  col 0 = bottom
STORED = {
    1: ((H, W), lambda r, c: (r, c)),
    2: ((H, W), lambda r, c: (r, W - 1 - c)),
    3: ((H, W), lambda r, c: (H - 1 - r, W - 1 - c)),
    4: ((H, W), lambda r, c: (H - 1 - r, c)),
    5: ((W, H), lambda r, c: (c, r)),
    6: ((W, H), lambda r, c: (c, W - 1 - r)),
    7: ((W, H), lambda r, c: (H - 1 - c, W - 1 - r)),
    8: ((W, H), lambda r, c: (H - 1 - c, r)),
}


def stored_pixels(orientation: int) -> np.ndarray:
    """What a camera writes for the upright picture under ``orientation`` (pixel by pixel)."""
    (hs, ws), where = STORED[orientation]
    up = upright()
    out = np.zeros((hs, ws, 3), np.uint8)
    for r in range(hs):
        for c in range(ws):
            out[r, c] = up[where(r, c)]
    return out


def encode(a: np.ndarray, fmt: str, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    kw = {"quality": 95, "subsampling": 0} if fmt == "JPEG" else {}
    Image.fromarray(a).save(buf, fmt, exif=exif.tobytes(), **kw)
    return buf.getvalue()


def centroid(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return float(ys.mean()), float(xs.mean())


def test_the_table_moves_the_marker_somewhere_else_for_each_orientation() -> None:
    """The stored pictures differ from each other, so decoding one as another cannot pass."""
    stored = {o: stored_pixels(o) for o in STORED}
    assert stored[6].shape == (W, H, 3)
    # orientation 6 stores the right side as row 0: upright (y 5, x 9) is at stored row 39 - 9 = 30, column 5
    assert tuple(stored[6][30, 5]) == (255, 0, 0)
    for a in STORED:
        for b in STORED:
            if a < b and stored[a].shape == stored[b].shape:
                assert not np.array_equal(stored[a], stored[b]), (a, b)


@pytest.mark.parametrize("orientation", list(STORED))
def test_png_orientation_decodes_to_the_upright_picture(orientation: int) -> None:
    stored = stored_pixels(orientation)
    loaded = load_image(encode(stored, "PNG", orientation))
    assert loaded.size == (W, H)
    assert loaded.original_size == (stored.shape[1], stored.shape[0])
    got = np.asarray(loaded.image)
    np.testing.assert_array_equal(got, upright())
    red = (got[..., 0] == 255) & (got[..., 2] == 0)
    assert centroid(red) == (5.5, 8.5)  # rows 3..8, columns 4..13
    assert any("EXIF" in n for n in loaded.notes) == (orientation != 1)


@pytest.mark.parametrize("orientation", list(STORED))
def test_jpeg_orientation_puts_the_markers_upright(orientation: int) -> None:
    loaded = load_image(encode(stored_pixels(orientation), "JPEG", orientation))
    assert loaded.size == (W, H)
    got = np.asarray(loaded.image).astype(int)
    red = (got[..., 0] > 200) & (got[..., 1] < 80) & (got[..., 2] < 80)
    blue = (got[..., 2] > 200) & (got[..., 0] < 80) & (got[..., 1] < 80)
    ry, rx = centroid(red)
    by, bx = centroid(blue)
    assert abs(ry - 5.5) < 1 and abs(rx - 8.5) < 1, (ry, rx)
    assert abs(by - 21.0) < 1 and abs(bx - 32.5) < 1, (by, bx)
    assert np.abs(got - upright().astype(int)).mean() < 8  # lossy, but the same picture
