"""data.images: every bad or odd upload gets the right error or the right RGB; preprocessing equals torchvision."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms
from torchvision import transforms as T

import res2net
from res2net.data import images as ri
from res2net.data.images import (
    CorruptImageError,
    DecompressionBombError,
    EmptyFileError,
    FileTooLargeError,
    ImageError,
    ImageTooSmallError,
    NotAnImageError,
    TruncatedImageError,
    denormalize,
    load_image,
    preprocess,
    to_rgb,
)

PHOTOS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "imagenet-sample-photos"


def encode(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def noise_photo(w: int = 96, h: int = 64, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def png_header_only(w: int, h: int) -> bytes:
    """A valid PNG that declares w x h pixels but carries (almost) no pixel data: a decompression-bomb probe."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


# ------------------------------------------------------------------------------------------ not an image
@pytest.mark.parametrize("data, word", [
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "PDF"),
    (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(64), "ZIP"),
    (b"Dear user,\nthis is a plain text file, not a photo.\n", "text"),
    (b"<!DOCTYPE html><html><body>not the image</body></html>", "HTML"),
    (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>', "SVG"),
    (b"\x1f\x8b\x08\x00" + bytes(40), "gzip"),
])
def test_not_an_image_names_what_it_is(data: bytes, word: str) -> None:
    with pytest.raises(NotAnImageError, match=word):
        load_image(data)


def test_unrecognised_binary_is_not_an_image() -> None:
    rng = np.random.default_rng(1)
    with pytest.raises(NotAnImageError, match="not an image"):
        load_image(rng.integers(0, 256, 4000, dtype=np.uint8).tobytes())


def test_errors_are_value_errors() -> None:
    assert issubclass(ImageError, ValueError)
    assert issubclass(TruncatedImageError, CorruptImageError)


def test_empty_file() -> None:
    with pytest.raises(EmptyFileError, match="empty"):
        load_image(b"")
    with pytest.raises(EmptyFileError):
        load_image(io.BytesIO())


def test_byte_limit_for_bytes_paths_and_file_objects(tmp_path: Path) -> None:
    data = encode(noise_photo(), "PNG")
    path = tmp_path / "photo.png"
    path.write_bytes(data)
    for source in (data, path, str(path), io.BytesIO(data)):
        with pytest.raises(FileTooLargeError, match="MiB"):
            load_image(source, max_bytes=len(data) - 1)
        assert load_image(source, max_bytes=len(data)).size == (96, 64)


def test_missing_path_and_wrong_type() -> None:
    with pytest.raises(FileNotFoundError):
        load_image(Path("/nonexistent/photo.jpg"))
    with pytest.raises(TypeError):
        load_image(12345)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------- truncated/corrupt
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file_gives_truncated_error(fmt: str) -> None:
    data = encode(noise_photo(128, 96), fmt)
    with pytest.raises(TruncatedImageError, match="truncated"):
        load_image(data[: len(data) // 2])


def test_header_cut_short_names_the_format() -> None:
    data = encode(noise_photo(), "JPEG")
    with pytest.raises(CorruptImageError, match="JPEG.*truncated or corrupt"):
        load_image(data[:5])


def test_corrupt_png_data_is_corrupt_not_truncated() -> None:
    data = bytearray(encode(noise_photo(), "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 12: idat + 60] = bytes(48)  # overwrite compressed pixels (CRC and zlib stream now wrong)
    with pytest.raises(CorruptImageError) as info:
        load_image(bytes(data))
    assert not isinstance(info.value, TruncatedImageError)
    assert "corrupt" in str(info.value)


# ------------------------------------------------------------------------------------- size and bombs
def test_decompression_bomb_by_our_limit_leaves_pil_global_alone() -> None:
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(DecompressionBombError, match="8000 x 8000 = 64.0 megapixels"):
        load_image(png_header_only(8000, 8000))
    with pytest.raises(DecompressionBombError, match="megapixels"):
        load_image(encode(noise_photo(200, 100), "PNG"), max_pixels=10_000)
    assert Image.MAX_IMAGE_PIXELS == before


def test_decompression_bomb_beyond_pils_own_limit() -> None:
    with pytest.raises(DecompressionBombError, match="decompression bomb"):
        load_image(png_header_only(30000, 30000))


@pytest.mark.parametrize("size", [(1, 1), (7, 100), (100, 3)])
def test_too_small(size: tuple[int, int]) -> None:
    with pytest.raises(ImageTooSmallError, match=f"{size[0]} x {size[1]} px.*at least 8 px"):
        load_image(encode(Image.new("RGB", size, (10, 20, 30)), "PNG"))


def test_min_size_accepted() -> None:
    assert load_image(encode(Image.new("RGB", (8, 8)), "PNG")).size == (8, 8)


def test_extreme_aspect_is_accepted_with_warning_and_pad_keeps_it() -> None:
    strip = Image.new("RGB", (10000, 100), (255, 0, 0))
    strip.paste((0, 0, 255), (0, 0, 100, 100))  # a blue square at the far left end
    loaded = load_image(encode(strip, "PNG"))
    assert loaded.size == (10000, 100)
    assert any("100:1" in w and "pad" in w for w in loaded.warnings)
    for mode in ri.PREPROCESS_MODES:
        assert preprocess(loaded.image, "resnet50", mode=mode).shape == (1, 3, 224, 224)
    # the centre crop never sees the blue end; padding keeps it (left end of the strip, at the vertical centre)
    crop = denormalize(preprocess(loaded.image, "resnet50"), "resnet50")
    assert (crop[..., 2] > 128).sum() == 0
    padded = denormalize(preprocess(loaded.image, "resnet50", mode="pad"), "resnet50")
    assert padded[112, 0, 2] > 200 and padded[112, 0, 0] < 50
    assert any("1%" in w for w in ri.preprocess_warnings(loaded.size, "resnet50"))


# ---------------------------------------------------------------------------------------- frames, EXIF
@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animated_uses_first_frame_with_warning(fmt: str) -> None:
    frames = [Image.new("RGB", (16, 16), c) for c in [(255, 0, 0), (0, 255, 0), (0, 0, 255)]]
    kw = {"lossless": True} if fmt == "WEBP" else {}
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], **kw)
    loaded = load_image(data)
    assert loaded.n_frames == 3
    assert any("3 frames" in w and "first frame" in w for w in loaded.warnings)
    assert loaded.image.getpixel((8, 8)) == (255, 0, 0)


def test_exif_orientation_6_rotates() -> None:
    im = Image.new("RGB", (20, 10), (0, 0, 255))
    im.paste((255, 0, 0), (0, 0, 10, 10))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    loaded = load_image(encode(im, "PNG", exif=exif.tobytes()))
    assert loaded.original_size == (20, 10)
    assert loaded.size == (10, 20)
    assert loaded.image.getpixel((5, 2)) == (255, 0, 0)  # the left half is now on top
    assert loaded.image.getpixel((5, 17)) == (0, 0, 255)
    assert any("EXIF" in n for n in loaded.notes)


# ------------------------------------------------------------------------------------------ pixel modes
def test_cmyk_cyan_becomes_rgb_cyan() -> None:
    cyan = Image.new("CMYK", (16, 16), (255, 0, 0, 0))
    assert load_image(encode(cyan, "TIFF")).image.getpixel((8, 8)) == (0, 255, 255)
    r, g, b = load_image(encode(cyan, "JPEG", quality=95)).image.getpixel((8, 8))
    assert r < 8 and g > 247 and b > 247
    assert load_image(encode(cyan, "TIFF")).original_mode == "CMYK"


def test_16bit_ramp_keeps_order_and_full_range() -> None:
    ramp = np.tile(np.linspace(0, 65535, 512).round().astype(np.uint16), (8, 1))
    loaded = load_image(encode(Image.fromarray(ramp), "PNG"))
    assert loaded.original_mode.startswith("I;16")
    a = np.asarray(loaded.image).astype(int)
    assert (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all()
    row = a[0, :, 0]
    assert row[0] == 0 and row[-1] == 255
    assert (np.diff(row) >= 0).all()
    assert len(np.unique(row)) == 256  # every 8-bit level used: scaled, not clipped at 255
    np.testing.assert_allclose(row, np.round(ramp[0] / 257.0), atol=1)


def test_16bit_narrow_range_is_stretched_with_warning() -> None:
    ramp = np.tile(np.linspace(0, 1000, 64).astype(np.uint16), (8, 1))
    loaded = load_image(encode(Image.fromarray(ramp), "PNG"))
    row = np.asarray(loaded.image)[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255 and (np.diff(row) >= 0).all()
    assert any("stretched" in w for w in loaded.warnings)


def test_int32_and_float_modes_keep_order() -> None:
    big = Image.fromarray(np.arange(256, dtype=np.int32).reshape(16, 16) * 1000)
    a = np.asarray(to_rgb(big))[..., 0].ravel().astype(int)
    assert a[0] == 0 and a[-1] == 255 and (np.diff(a) >= 0).all()
    unit = Image.fromarray(np.linspace(0, 1, 256, dtype=np.float32).reshape(16, 16))
    np.testing.assert_allclose(np.asarray(to_rgb(unit))[..., 1].ravel(), np.round(np.linspace(0, 255, 256)), atol=1)
    signed = load_image(encode(Image.fromarray(np.linspace(-3, 5, 256, dtype=np.float32).reshape(16, 16)), "TIFF"))
    s = np.asarray(signed.image)[..., 2].ravel().astype(int)
    assert s[0] == 0 and s[-1] == 255 and (np.diff(s) >= 0).all()


def test_palette_with_transparency_composited_on_white_or_chosen_background() -> None:
    pal = Image.new("P", (16, 16), 0)
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.paste(1, (0, 0, 8, 16))  # left half uses index 1 (blue), which is declared transparent
    for fmt in ("PNG", "GIF"):
        data = encode(pal, fmt, transparency=1)
        loaded = load_image(data)
        assert loaded.image.getpixel((2, 8)) == (255, 255, 255)
        assert loaded.image.getpixel((12, 8)) == (255, 0, 0)
        assert load_image(data, background=(0, 0, 0)).image.getpixel((2, 8)) == (0, 0, 0)


def test_palette_without_transparency() -> None:
    pal = Image.new("P", (16, 16), 1)
    pal.putpalette([255, 0, 0, 0, 128, 0] + [0] * 762)
    assert load_image(encode(pal, "PNG")).image.getpixel((3, 3)) == (0, 128, 0)


def test_alpha_is_composited_not_dropped() -> None:
    half = Image.new("RGBA", (16, 16), (0, 0, 0, 128))  # black at 50% over white → mid grey
    r, g, b = load_image(encode(half, "PNG")).image.getpixel((4, 4))
    assert abs(r - 127) <= 1 and r == g == b
    la = Image.new("LA", (16, 16), (0, 0))  # fully transparent black
    assert load_image(encode(la, "PNG")).image.getpixel((4, 4)) == (255, 255, 255)
    opaque = Image.new("RGBA", (16, 16), (10, 20, 30, 255))
    loaded = load_image(encode(opaque, "PNG"))
    assert loaded.image.getpixel((4, 4)) == (10, 20, 30) and not loaded.notes


def test_one_bit() -> None:
    im = Image.new("1", (16, 16), 0)
    im.paste(1, (0, 0, 8, 16))
    rgb = load_image(encode(im, "PNG")).image
    assert rgb.getpixel((2, 2)) == (255, 255, 255) and rgb.getpixel((12, 2)) == (0, 0, 0)


def test_ycbcr_matches_jfif_formula() -> None:
    y, cb, cr = 120, 90, 200
    expected = (y + 1.402 * (cr - 128), y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128), y + 1.772 * (cb - 128))
    got = to_rgb(Image.new("YCbCr", (8, 8), (y, cb, cr))).getpixel((0, 0))
    np.testing.assert_allclose(got, np.clip(np.round(expected), 0, 255), atol=1)


def test_lab_tiff_back_to_srgb() -> None:
    srgb = Image.new("RGB", (16, 16), (200, 40, 60))
    lab = ImageCms.profileToProfile(srgb, ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"),
                                    outputMode="LAB")
    loaded = load_image(encode(lab, "TIFF"))
    assert loaded.original_mode == "LAB"
    np.testing.assert_allclose(loaded.image.getpixel((8, 8)), (200, 40, 60), atol=3)


def test_hsv_to_rgb() -> None:
    np.testing.assert_allclose(to_rgb(Image.new("HSV", (8, 8), (0, 255, 255))).getpixel((0, 0)), (255, 0, 0), atol=1)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF"])
def test_ordinary_formats_roundtrip(fmt: str) -> None:
    im = noise_photo()
    kw = {"lossless": True} if fmt == "WEBP" else ({"quality": 95} if fmt == "JPEG" else {})
    loaded = load_image(encode(im, fmt, **kw))
    assert loaded.format == fmt and loaded.size == (96, 64) and loaded.image.mode == "RGB"
    if fmt != "JPEG":
        assert np.array_equal(np.asarray(loaded.image), np.asarray(im))
    assert not loaded.warnings


# ---------------------------------------------------------------------------------------- preprocessing
def _torchvision(im: Image.Image, name: str) -> torch.Tensor:
    spec = res2net.get_spec(name)
    return T.Compose([T.Resize(spec.resize), T.CenterCrop(spec.input_size), T.ToTensor(),
                      T.Normalize(spec.mean, spec.std)])(im)[None]


@pytest.mark.parametrize("name", ["resnet50", "tiny_res2net26_4s"])
@pytest.mark.parametrize("size", [(500, 375), (375, 500), (333, 257), (64, 64), (80, 120), (40, 30)])
def test_preprocess_equals_torchvision(name: str, size: tuple[int, int]) -> None:
    im = noise_photo(*size, seed=size[0])
    got = preprocess(im, name)
    s = res2net.get_spec(name).input_size
    assert got.shape == (1, 3, s, s) and got.dtype == torch.float32
    torch.testing.assert_close(got, _torchvision(im, name), atol=1e-5, rtol=0)


def test_preprocess_resize_mode_equals_torchvision_square_resize() -> None:
    im = noise_photo(300, 200)
    spec = res2net.get_spec("resnet50")
    ref = T.Compose([T.Resize((224, 224)), T.ToTensor(), T.Normalize(spec.mean, spec.std)])(im)[None]
    torch.testing.assert_close(preprocess(im, spec, mode="resize"), ref, atol=1e-5, rtol=0)


def test_preprocess_huge_strip_resamples_only_the_crop() -> None:
    im = noise_photo(50000, 100, seed=3)  # Resize(256) would build a 128000 x 256 intermediate
    got = preprocess(im, "resnet50")
    ref = _torchvision(im, "resnet50")
    step = 1 / 255 / min(res2net.get_spec("resnet50").std)  # one grey level in normalised units
    assert (got - ref).abs().max().item() <= step + 1e-5
    assert (got - ref).abs().mean().item() < 0.01 * step


def test_pad_mode_pads_with_normalised_zero() -> None:
    im = Image.new("RGB", (200, 100), (255, 255, 255))
    t = preprocess(im, "resnet50", mode="pad")
    assert t.shape == (1, 3, 224, 224)
    assert torch.all(t[0, :, :50] == 0) and torch.all(t[0, :, -50:] == 0)  # rows above/below the photo
    assert torch.all(t[0, :, 112] > 1.5)  # white, normalised, in the middle


def test_preprocess_rejects_unknown_mode_and_model() -> None:
    with pytest.raises(ValueError, match="center_crop"):
        preprocess(noise_photo(), "resnet50", mode="zoom")
    with pytest.raises(KeyError, match="unknown model"):
        preprocess(noise_photo(), "resnet5000")


def test_denormalize_inverts_preprocess() -> None:
    im = noise_photo(64, 64)
    back = denormalize(preprocess(im, "tiny_resnet26", mode="resize"), "tiny_resnet26")  # 64 → 64: no resampling
    assert back.dtype == np.uint8 and back.shape == (64, 64, 3)
    assert np.array_equal(back, np.asarray(im))


# ---------------------------------------------------------------------------------------- demo & real data
def test_demo_images_load() -> None:
    demos = ri.demo_images()
    assert "grace_hopper" in demos  # matplotlib is a runtime dependency and ships this photo
    for path in demos.values():
        loaded = load_image(path)
        assert min(loaded.size) >= 64 and loaded.image.mode == "RGB"


def test_real_photos_preprocess_like_torchvision() -> None:
    files = sorted(PHOTOS.glob("*.JPEG"))[:3] if PHOTOS.is_dir() else []
    if not files:
        pytest.skip(f"sample photos not present at {PHOTOS}")
    for path in files:
        loaded = load_image(path)
        with Image.open(path) as raw:
            ref = _torchvision(raw.convert("RGB"), "resnet50")
        torch.testing.assert_close(preprocess(loaded.image, "resnet50"), ref, atol=1e-5, rtol=0)
