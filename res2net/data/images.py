"""Decode and validate user images, and turn them into model inputs the way each model expects.

``load_image`` accepts bytes, a path or a file object and returns an RGB ``PIL.Image`` plus the warnings
and notes a user should see; every way a file can be unusable raises a specific ``ImageError`` subclass
whose message says why. ``preprocess`` reproduces torchvision's ``Resize(resize) → CenterCrop(size) →
ToTensor → Normalize`` (and two aspect-preserving alternatives); which region of the photo the tensor shows
(``CropBox``, to draw maps back onto the photo) is geometry: ``res2net.geometry.registration.crop_box``.
"""

from __future__ import annotations

import io
import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from res2net.geometry.registration import PREPROCESS_MODES, crop_box, pad_layout, resized_size
from res2net.models.preprocessing import mean_std, normalize
from res2net.models.zoo import as_spec

__all__ = [
    "ImageError", "EmptyFileError", "FileTooLargeError", "NotAnImageError", "UnsupportedImageError",
    "CorruptImageError", "TruncatedImageError", "DecompressionBombError", "ImageTooSmallError",
    "LoadedImage", "load_image", "to_rgb", "PREPROCESS_MODES", "preprocess", "preprocess_warnings", "denormalize",
    "demo_images", "demo_classes",
    "DEFAULT_MAX_BYTES", "DEFAULT_MAX_PIXELS", "MIN_SIDE", "ASPECT_WARN",
]

DEFAULT_MAX_BYTES = 25 * 2**20  # 25 MiB
DEFAULT_MAX_PIXELS = 40_000_000  # 40 megapixels: ~120 MB once decoded to RGB
MIN_SIDE = 8  # below this a photo carries no usable content for any model here
ASPECT_WARN = 3.0  # long/short side ratio above which a centre crop keeps at most a third of the photo
_MAX_INTERMEDIATE = 16_000_000  # pixels of the resized photo above which only the crop region is resampled
WHITE = (255, 255, 255)


# --------------------------------------------------------------------------------------------------- errors
class ImageError(ValueError):
    """A user's file that cannot be used as an input image (a dataset's unusable record is a
    ``datasets.RecordError``); ``message`` is meant for the user, ``detail`` (the decoder's own words, when there are
    any) for whoever investigates; ``str()`` gives both."""

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message if detail is None else f"{message} [{detail}]")
        self.message = message
        self.detail = detail


class EmptyFileError(ImageError):
    """The file has no bytes."""


class FileTooLargeError(ImageError):
    """The file is larger than the byte limit."""


class NotAnImageError(ImageError):
    """The bytes are not an image format we read; the message names what they look like."""


class UnsupportedImageError(ImageError):
    """An image format or pixel mode we recognise but cannot decode or convert."""


class CorruptImageError(ImageError):
    """An image whose data cannot be decoded."""


class TruncatedImageError(CorruptImageError):
    """An image whose data ends before the picture does (an interrupted download or copy)."""


class DecompressionBombError(ImageError):
    """An image that declares more pixels than the limit (it would exhaust memory when decoded)."""


class ImageTooSmallError(ImageError):
    """An image with a side shorter than the minimum."""


# ------------------------------------------------------------------------------------------ sniffing bytes
_IMAGE_MAGIC: list[tuple[bytes, int, str]] = [
    (b"\xff\xd8\xff", 0, "JPEG"), (b"\x89PNG\r\n\x1a\n", 0, "PNG"), (b"GIF87a", 0, "GIF"), (b"GIF89a", 0, "GIF"),
    (b"BM", 0, "BMP"), (b"II*\x00", 0, "TIFF"), (b"MM\x00*", 0, "TIFF"), (b"WEBP", 8, "WebP"),
]
_OTHER_MAGIC: list[tuple[bytes, int, str]] = [
    (b"%PDF", 0, "a PDF document"), (b"PK\x03\x04", 0, "a ZIP archive (or a file built on ZIP: docx, xlsx, "
                                                         "a PyTorch checkpoint)"),
    (b"PK\x05\x06", 0, "an empty ZIP archive"), (b"\x1f\x8b", 0, "a gzip-compressed file"),
    (b"7z\xbc\xaf\x27\x1c", 0, "a 7-Zip archive"), (b"Rar!", 0, "a RAR archive"), (b"BZh", 0, "a bzip2 file"),
    (b"\xfd7zXZ\x00", 0, "an XZ-compressed file"), (b"\x7fELF", 0, "a Linux executable"),
    (b"MZ", 0, "a Windows executable"), (b"SQLite format 3\x00", 0, "an SQLite database"),
    (b"\x93NUMPY", 0, "a NumPy array file (.npy)"), (b"ID3", 0, "an MP3 audio file"), (b"OggS", 0, "an Ogg media file"),
    (b"fLaC", 0, "a FLAC audio file"), (b"WAVE", 8, "a WAV audio file"), (b"AVI ", 8, "an AVI video"),
    (b"\x1aE\xdf\xa3", 0, "a Matroska/WebM video"), (b"\xd0\xcf\x11\xe0", 0, "an old Microsoft Office document"),
    (b"8BPS", 0, "a Photoshop document (.psd)"),
]
_FTYP = {b"heic": "a HEIC photo", b"heix": "a HEIC photo", b"mif1": "a HEIF image", b"msf1": "a HEIF image",
         b"avif": "an AVIF image", b"qt  ": "a QuickTime video", b"M4A ": "an M4A audio file"}


def _sniff(data: bytes) -> str:
    """What ``data`` looks like, as a noun phrase for a message ('a PDF document')."""
    for magic, offset, kind in _OTHER_MAGIC:
        if data[offset:offset + len(magic)] == magic:
            return kind
    if data[4:8] == b"ftyp":
        return _FTYP.get(data[8:12], "an MP4/QuickTime media file")
    head = data[:2048].lstrip(b"\xef\xbb\xbf").lstrip()
    low = head[:512].lower()
    if b"<svg" in low or (low.startswith(b"<?xml") and b"<svg" in head.lower()):
        return "an SVG vector drawing (export it as PNG first)"
    if low.startswith((b"<!doctype html", b"<html")):
        return "an HTML page (perhaps a web page saved instead of the image itself)"
    if low.startswith(b"<?xml"):
        return "an XML document"
    if low[:1] in (b"{", b"["):
        return "a JSON/text file"
    sample = data[:4096]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as e:  # a multi-byte character cut at the sample's end is still text
        text = sample[:e.start].decode("utf-8") if e.start > len(sample) - 4 else ""
    if text and sum(c.isprintable() or c in "\r\n\t" for c in text) >= 0.95 * len(text):
        return "a text file"
    return "not a format we recognise"


def _image_magic(data: bytes) -> str | None:
    for magic, offset, fmt in _IMAGE_MAGIC:
        if data[offset:offset + len(magic)] == magic and (fmt != "WebP" or data[:4] == b"RIFF"):
            return fmt
    return None


# ----------------------------------------------------------------------------------------------- loading
@dataclass
class LoadedImage:
    """A decoded RGB image and what happened on the way: ``warnings`` may affect results, ``notes`` do not."""

    image: Image.Image
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    original_size: tuple[int, int] = (0, 0)  # (width, height) as stored, before the EXIF rotation
    original_mode: str = "RGB"
    format: str | None = None
    n_frames: int = 1

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the RGB image."""
        return self.image.size


def _read_bytes(source: bytes | bytearray | memoryview | str | os.PathLike | BinaryIO, max_bytes: int) -> bytes:
    limit = f"the limit is {max_bytes / 2**20:.1f} MiB"
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no such image file: {path}")
        size = path.stat().st_size
        if size > max_bytes:
            raise FileTooLargeError(f"the file is {size / 2**20:.1f} MiB; {limit}")
        data = path.read_bytes()
    elif hasattr(source, "read"):
        if hasattr(source, "seek"):
            try:
                source.seek(0)
            except (OSError, ValueError):
                pass
        data = source.read(max_bytes + 1)
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("the file object must be opened in binary mode")
        data = bytes(data)
    else:
        raise TypeError(f"expected bytes, a path or a binary file object, got {type(source).__name__}")
    if not data:
        raise EmptyFileError("the file is empty (0 bytes)")
    if len(data) > max_bytes:
        raise FileTooLargeError(f"the file is {'over ' if len(data) == max_bytes + 1 else ''}"
                                f"{len(data) / 2**20:.1f} MiB; {limit}")
    return data


def _decode_error(exc: BaseException, fmt: str | None) -> CorruptImageError:
    """Our error for a decoder failure: truncated when the decoder ran out of data, corrupt otherwise."""
    msg = str(exc).lower()
    what = f"the {fmt} file" if fmt else "the image file"
    if isinstance(exc, EOFError) or any(k in msg for k in ("truncat", "end of file", "premature", "not enough data")):
        return TruncatedImageError(f"{what} is truncated: it ends before the picture does (an interrupted download "
                                   "or copy?)", detail=str(exc))
    return CorruptImageError(f"{what} is corrupt: its data cannot be decoded", detail=str(exc))


def _too_many_pixels(max_pixels: int) -> str:
    return (f"the image declares more than {2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:.0f} megapixels, far over the "
            f"limit of {max_pixels / 1e6:.0f} megapixels (a guard against decompression bombs); downscale it first")


def _kept_size(size: tuple[int, int], keep_pixels: int | None) -> tuple[int, int] | None:
    """(width, height) with at most ``keep_pixels`` pixels and the same aspect; None when ``size`` already fits."""
    w, h = size
    if keep_pixels is None or w * h <= keep_pixels:
        return None
    s = math.sqrt(keep_pixels / (w * h))
    return max(1, int(w * s)), max(1, int(h * s))


def load_image(
    source: bytes | bytearray | memoryview | str | os.PathLike | BinaryIO,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int = MIN_SIDE,
    background: tuple[int, int, int] = WHITE,
    keep_pixels: int | None = None,
) -> LoadedImage:
    """Decode ``source`` into an RGB image; raise an ``ImageError`` subclass that says why if it is unusable.

    Animated files give their first frame (with a warning), EXIF orientation is applied, every pixel mode is
    converted to 8-bit RGB (16-bit and float data are rescaled, not clipped; transparency is composited on
    ``background``). Very elongated images are accepted with a warning that suggests the 'pad' preprocessing.
    PIL's global pixel limit is never changed: ``max_pixels`` is checked here, from the header, before decoding.
    ``keep_pixels``: downscale larger images (aspect kept) while reading, so that a server holding many decoded
    uploads keeps a few MB each (JPEGs are decoded at reduced scale directly); None keeps every pixel.
    """
    data = _read_bytes(source, max_bytes)
    try:
        im = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):  # PIL's own global limit
        raise DecompressionBombError(_too_many_pixels(max_pixels)) from None
    except UnidentifiedImageError:
        fmt = _image_magic(data)
        if fmt is not None:
            raise CorruptImageError(f"the file starts like a {fmt} image but its header cannot be read: it is "
                                    f"truncated or corrupt ({len(data)} bytes)") from None
        kind = _sniff(data)
        if kind.startswith(("a HEIC", "a HEIF", "an AVIF")):
            raise UnsupportedImageError(f"this looks like {kind}, which this installation cannot decode; "
                                        "convert it to JPEG or PNG") from None
        if kind == "not a format we recognise":
            raise NotAnImageError("this is not an image file (its contents match no image format we read: "
                                  "PNG, JPEG, WebP, GIF, BMP, TIFF)") from None
        raise NotAnImageError(f"this is not an image file: it looks like {kind}") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as e:
        raise _decode_error(e, _image_magic(data)) from None

    with im:
        fmt = im.format
        w, h = im.size
        if w * h > max_pixels:
            raise DecompressionBombError(
                f"the image declares {w} x {h} = {w * h / 1e6:.1f} megapixels, over the limit of "
                f"{max_pixels / 1e6:.0f} megapixels (a guard against decompression bombs); downscale it first")
        if min(w, h) < min_side:
            raise ImageTooSmallError(f"the image is only {w} x {h} px; at least {min_side} px on each side is "
                                     "needed for a meaningful result")
        out = LoadedImage(image=im, original_size=(w, h), original_mode=im.mode, format=fmt)
        n_frames = getattr(im, "n_frames", 1) or 1
        out.n_frames = n_frames
        if n_frames > 1:
            what = "animated" if getattr(im, "is_animated", False) and fmt not in ("TIFF", "MPO") else "multi-page"
            out.warnings.append(f"{what} {fmt or 'image'} with {n_frames} frames: only the first frame is used")
            im.seek(0)
        kept = _kept_size((w, h), keep_pixels)
        if kept is not None and fmt == "JPEG":
            im.draft(None, kept)  # decode at 1/2, 1/4 or 1/8 scale, still at least the kept size
        try:
            im.load()
            exif_orientation = im.getexif().get(0x0112, 1)
            oriented = ImageOps.exif_transpose(im) if exif_orientation not in (1, None) else im  # no copy if upright
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise DecompressionBombError(_too_many_pixels(max_pixels)) from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as e:
            raise _decode_error(e, fmt) from None
        if exif_orientation not in (1, None) and oriented.size != (0, 0):
            out.notes.append(f"rotated/flipped upright according to its EXIF orientation tag ({exif_orientation})")
        kept = _kept_size(oriented.size, keep_pixels)
        if kept is not None and oriented.mode in ("RGB", "L", "RGBA", "LA"):  # shrink before converting: less memory
            oriented = oriented.resize(kept, Image.Resampling.BILINEAR, reducing_gap=2.0)
        rgb = to_rgb(oriented, background=background, warnings=out.warnings, notes=out.notes)
        if kept is not None and rgb.size != kept:
            rgb = rgb.resize(kept, Image.Resampling.BILINEAR, reducing_gap=2.0)
        if rgb.size != (w, h) and rgb.size != (h, w):
            out.notes.append(f"downscaled from {w} x {h} to {rgb.width} x {rgb.height} px on reading (at most "
                             f"{keep_pixels / 1e6:g} megapixels are kept; the models see far fewer)")
    out.image = rgb
    ratio = max(rgb.size) / min(rgb.size)
    if ratio >= ASPECT_WARN:
        shape = "wide" if rgb.width > rgb.height else "tall"
        out.warnings.append(
            f"very {shape} image ({ratio:.0f}:1): a centre crop shows only {100 / ratio:.0f}% of it; "
            "choose the 'pad' preprocessing to keep all of it")
    return out


# ------------------------------------------------------------------------------------------ colour modes
def _composite(im: Image.Image, background: tuple[int, int, int], notes: list[str]) -> Image.Image:
    rgba = im.convert("RGBA")
    alpha = rgba.getchannel("A")
    lo, _ = alpha.getextrema()
    if lo == 255:
        return rgba.convert("RGB")
    notes.append(f"transparent areas composited on the background colour {background}")
    base = Image.new("RGBA", rgba.size, (*background, 255))
    return Image.alpha_composite(base, rgba).convert("RGB")


def _to_uint8(a: np.ndarray, kind: str, warnings: list[str], notes: list[str]) -> np.ndarray:
    """Scale integer or float grey data to 0..255 keeping its order: by bit depth where known, else min-max."""
    a = a.astype(np.float64)
    finite = np.isfinite(a)
    if not finite.all():
        warnings.append("the image has NaN/infinite pixels; they are shown black")
        a = np.where(finite, a, np.nan)
    lo, hi = (float(np.nanmin(a)), float(np.nanmax(a))) if finite.any() else (0.0, 0.0)
    if kind == "16bit" or (kind == "int" and lo >= 0 and hi <= 65535 and hi > 255):
        scaled = a / 65535.0 * 255.0
        notes.append("16-bit pixel values scaled to 8 bits (divided by 257)")
        if hi < 4096:
            scaled = (a - lo) / max(hi - lo, 1.0) * 255.0
            warnings.append(f"the 16-bit data only spans {lo:.0f}..{hi:.0f}; contrast stretched to the full range")
    elif kind == "int" and lo >= 0 and hi <= 255:
        scaled = a
    elif kind == "float" and lo >= 0.0 and hi <= 1.0:
        scaled = a * 255.0
        notes.append("floating-point pixels in 0..1 scaled to 0..255")
    else:
        scaled = (a - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(a)
        notes.append(f"pixel values {lo:.4g}..{hi:.4g} mapped linearly to 0..255")
    return np.clip(np.rint(np.nan_to_num(scaled, nan=0.0)), 0, 255).astype(np.uint8)


def _from_lab(im: Image.Image) -> Image.Image:
    from PIL import ImageCms

    try:
        return ImageCms.profileToProfile(im, ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"),
                                         outputMode="RGB")
    except Exception as e:  # noqa: BLE001  (no colour engine in this Pillow build)
        raise UnsupportedImageError(f"cannot convert this L*a*b* image to RGB ({e}); save it as sRGB") from None


def _from_cmyk(im: Image.Image, notes: list[str]) -> Image.Image:
    icc = im.info.get("icc_profile")
    if icc:
        try:
            from PIL import ImageCms

            out = ImageCms.profileToProfile(im, io.BytesIO(icc), ImageCms.createProfile("sRGB"), outputMode="RGB")
            notes.append("CMYK converted to RGB with its embedded colour profile")
            return out
        except Exception:  # noqa: BLE001  (a broken profile: fall back to the plain formula)
            pass
    notes.append("CMYK converted to RGB")
    return im.convert("RGB")


def to_rgb(
    im: Image.Image,
    *,
    background: tuple[int, int, int] = WHITE,
    warnings: list[str] | None = None,
    notes: list[str] | None = None,
) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB without clipping high bit depths or dropping alpha naively.

    RGB data keeps its values (embedded profiles are not applied, as in the ImageNet training pipelines); CMYK
    uses its embedded profile when there is one, L*a*b* goes through a colour engine to sRGB.
    """
    warnings = [] if warnings is None else warnings
    notes = [] if notes is None else notes
    mode = im.mode
    if mode == "RGB":
        return im.copy()
    if mode in ("RGBA", "LA", "La", "RGBa", "PA") or (mode in ("P", "L", "RGB") and "transparency" in im.info):
        return _composite(im, background, notes)
    if mode in ("L", "1", "P", "YCbCr", "HSV", "RGBX"):
        if mode != "L":
            notes.append(f"{_MODE_NAMES.get(mode, mode)} converted to RGB")
        return im.convert("RGB")
    if mode == "CMYK":
        return _from_cmyk(im, notes)
    if mode == "LAB":
        notes.append("CIE L*a*b* converted to sRGB")
        return _from_lab(im)
    if mode.startswith("I;16") or mode in ("I", "F"):
        kind = "16bit" if mode.startswith("I;16") else ("int" if mode == "I" else "float")
        grey = _to_uint8(np.asarray(im), kind, warnings, notes)
        return Image.fromarray(grey, "L").convert("RGB")
    try:
        out = im.convert("RGB")
    except (ValueError, OSError) as e:
        raise UnsupportedImageError(f"cannot convert pixel mode {mode!r} to RGB ({e})") from None
    notes.append(f"pixel mode {mode} converted to RGB")
    return out


_MODE_NAMES = {"1": "1-bit black-and-white", "P": "palette", "YCbCr": "YCbCr", "HSV": "HSV", "RGBX": "RGBX"}


# ------------------------------------------------------------------------------------------ preprocessing
def preprocess(image: Image.Image, spec_or_name, *, mode: str = "center_crop") -> torch.Tensor:  # noqa: ANN001
    """The model input (1, 3, S, S) float32 for an RGB image, with the model's mean/std.

    'center_crop' equals torchvision ``Resize(resize)`` + ``CenterCrop(S)`` (bilinear, antialiased); when the
    resized photo would be huge (a 1000:1 strip) only the cropped region is resampled. 'resize' squeezes the whole
    photo to S x S; 'pad' fits it inside S x S keeping the aspect and pads with zeros (the mean
    colour once normalised).
    """
    spec = as_spec(spec_or_name)
    if image.mode != "RGB":
        image = to_rgb(image)
    cb = crop_box(image.size, spec, mode)
    s = spec.input_size
    if mode == "pad":
        (nw, nh), (ox, oy) = pad_layout(*image.size, s)
        out = Image.new("RGB", (s, s))
        out.paste(image.resize((nw, nh), Image.Resampling.BILINEAR), (ox, oy))
    elif mode == "resize":
        out = image.resize((s, s), Image.Resampling.BILINEAR)
    else:
        rw, rh = resized_size(*image.size, spec.resize)
        if rw * rh <= _MAX_INTERMEDIATE:  # bit-exact torchvision: resize everything, then crop
            left, top = int(round((rw - s) / 2.0)), int(round((rh - s) / 2.0))
            out = image.resize((rw, rh), Image.Resampling.BILINEAR).crop((left, top, left + s, top + s))
        else:  # resample only the cropped region (same filter; may differ by one grey level from rounding)
            out = image.resize((s, s), Image.Resampling.BILINEAR, box=cb.box)
    pixels = torch.from_numpy(np.ascontiguousarray(np.asarray(out, dtype=np.uint8).transpose(2, 0, 1)))[None]
    x = normalize(pixels, spec)  # the one normalisation training and evaluation use too
    if mode == "pad":  # padding is the mean colour: exactly zero after normalisation
        inside = torch.zeros(1, 1, s, s, dtype=torch.bool)
        inside[..., oy:oy + nh, ox:ox + nw] = True
        x = torch.where(inside, x, torch.zeros((), dtype=x.dtype))
    return x


def preprocess_warnings(image_size: tuple[int, int], spec_or_name, mode: str = "center_crop") -> list[str]:  # noqa: ANN001
    """What a user should know about how this photo reaches this model (content cut off, strong upscaling)."""
    spec = as_spec(spec_or_name)
    cb = crop_box(image_size, spec, mode)
    w, h = image_size
    out = []
    x0, y0, x1, y1 = (max(cb.box[0], 0), max(cb.box[1], 0), min(cb.box[2], w), min(cb.box[3], h))
    kept = (x1 - x0) * (y1 - y0) / (w * h)
    if kept < 0.5:
        out.append(f"{spec.name}: the centre crop shows {100 * kept:.0f}% of the photo; 'pad' keeps all of it")
    if mode == "resize" and max(w, h) / min(w, h) >= 2:
        out.append(f"{spec.name}: 'resize' squeezes this photo to a square, distorting shapes")
    if mode == "pad":
        vx0, vy0, vx1, vy1 = cb.valid
        if min(vx1 - vx0, vy1 - vy0) < spec.input_size / 8:
            out.append(f"{spec.name}: padded to a square, the photo is only {min(vx1 - vx0, vy1 - vy0):.0f} px "
                       "across in the model input")
    up = max(cb.scale)
    if up > 4:
        out.append(f"{spec.name}: the photo is upscaled {up:.1f}x to the model's {spec.input_size} px input")
    return out


def denormalize(tensor: torch.Tensor, spec_or_name) -> np.ndarray:  # noqa: ANN001
    """A normalised (1,3,H,W) or (3,H,W) tensor back to a uint8 (H, W, 3) array for display."""
    spec = as_spec(spec_or_name)
    t = tensor.detach().to("cpu", torch.float32)
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {t.shape[0]}")
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) tensor, got shape {tuple(tensor.shape)}")
    mean, std = mean_std(spec)
    a = (t[None] * std + mean)[0].numpy().transpose(1, 2, 0)
    return np.clip(np.rint(a * 255.0), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------- demo images
DEMO_DIR = Path(__file__).resolve().parents[2] / "assets" / "demo"  # photos with their licences beside them
GRACE_HOPPER_CLASS = "military uniform"


def demo_classes() -> dict[str, str | None]:
    """Demo photo name -> the Tiny-ImageNet-100 class it shows (None: none of them), from ``assets/demo``."""
    import json

    manifest = DEMO_DIR / "photos.json"
    rows = json.loads(manifest.read_text())["photos"] if manifest.is_file() else []
    return {"grace_hopper": GRACE_HOPPER_CLASS, **{Path(r["file"]).stem: r["class"] for r in rows}}


def demo_images() -> dict[str, Path]:
    """Offline demo photos: those in ``assets/demo`` (licences in its LICENCE.md) and matplotlib's public-domain
    ``grace_hopper.jpg``; absent ones skipped."""
    found: dict[str, Path] = {}
    try:
        import matplotlib

        sample = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        if sample.is_file():
            found["grace_hopper"] = sample
    except ImportError:
        pass
    for name in demo_classes():
        if (DEMO_DIR / f"{name}.jpg").is_file():
            found[name] = DEMO_DIR / f"{name}.jpg"
    return found
