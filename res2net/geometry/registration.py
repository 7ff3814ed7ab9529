"""Registration: where a tap's cells lie on the model input and on the user's photo, and maps placed there.

Cell (i, j) of a tap sees the input centred at ``start + jump * (i, j)`` (its receptive-field centre from the op
graph, ``receptive_field.tap_rf_info``). An input point at ``p`` therefore lies at fractional cell index
``cell_index(p) = (p - start) / jump``; a registered map interpolates bilinearly between the cells there and keeps
edge values beyond them. Two paths share that rule: torch (``sample_at_centres``, ``register``, the photo) and a
numpy batch path for the evaluation (``register_maps``), operation for operation in the maps' dtype.

The photo side: ``CropBox`` says which region of the photo the (S x S) model input shows after the preprocessing
(centre crop, resize or pad), so maps drawn on the input can be carried back onto the photo.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from res2net.geometry.cell_centres import CellCentres, cell_index_at
from res2net.geometry.receptive_field import tap_rf_info
from res2net.models.zoo import ModelSpec, as_spec

__all__ = [
    "cell_index", "interp_axis", "register_maps", "register_maps_between", "sample_between", "sample_at_centres",
    "size_hw", "tap_placement", "register",
    "register_all", "place_on_photo", "register_to_photo", "PhotoCells", "cells_on_photo", "PREPROCESS_MODES",
    "CropBox", "crop_box", "resized_size", "pad_layout", "resize_map", "map_to_image",
]

PREPROCESS_MODES = ("center_crop", "resize", "pad")


# ------------------------------------------------------------------------------------------- cells on the input
def cell_index(points: np.ndarray | Sequence[float], start: float, jump: float) -> np.ndarray:
    """Fractional cell index (float64) of input points along one axis: the inverse of cell i's centre
    ``start + jump * i``. Both registration paths (torch and numpy) place cells through this one function."""
    return (np.asarray(points, dtype=np.float64) - float(start)) / float(jump)


def interp_axis(m: np.ndarray, idx: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of ``m`` at fractional indices ``idx`` along ``axis``, clamped to the first/last cell."""
    n = m.shape[axis]
    c = np.clip(idx, 0, n - 1)
    i0 = np.minimum(np.floor(c).astype(np.int64), n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    shape = [1] * m.ndim
    shape[axis] = -1
    t = (c - i0).astype(m.dtype).reshape(shape)
    return np.take(m, i0, axis) * (1 - t) + np.take(m, i1, axis) * t


def register_maps(cams: torch.Tensor, start: tuple, jump: tuple, size: tuple[int, int]) -> np.ndarray:
    """``register``'s maps (N, H, W) as float64 numpy: the same interpolation between the cells' receptive-field
    centres, operation for operation in the maps' float32, with numpy, whose gathers along the last axis are several
    times faster here than torch's ``index_select``."""
    m = cams.detach().cpu().numpy()
    iy = cell_index(np.arange(size[0]), start[0], jump[0])
    ix = cell_index(np.arange(size[1]), start[1], jump[1])
    return interp_axis(interp_axis(m, iy, m.ndim - 2), ix, m.ndim - 1).astype(np.float64)


def register_maps_between(cams: torch.Tensor | np.ndarray, centres: CellCentres, size: tuple[int, int]
                          ) -> np.ndarray:
    """(N, h, w) maps as float64 numpy on the (H, W) input, interpolated between any increasing cell centres
    (``cell_centres``: effective centres, half-pixel spreading) instead of the receptive-field grid."""
    m = torch.as_tensor(cams).detach().cpu().numpy()
    _check_grid(m.shape[-2:], centres)
    iy = cell_index_at(np.arange(size[0]), centres.rows)
    ix = cell_index_at(np.arange(size[1]), centres.cols)
    return interp_axis(interp_axis(m, iy, m.ndim - 2), ix, m.ndim - 1).astype(np.float64)


def _check_grid(shape: Sequence[int], centres: CellCentres) -> None:
    if tuple(shape) != centres.grid:
        raise ValueError(f"the map has {shape[0]}x{shape[1]} cells but the {centres.rule} centres are for "
                         f"{centres.grid[0]}x{centres.grid[1]}")


def _interp_axis_torch(m: Tensor, idx: Tensor, dim: int) -> Tensor:
    """``interp_axis`` for tensors (index_select, the map's dtype)."""
    n = m.shape[dim]
    c = idx.clamp(0, n - 1)
    i0 = c.floor().long().clamp(max=n - 1)
    i1 = (i0 + 1).clamp(max=n - 1)
    t = (c - i0.to(c.dtype))
    shape = [1] * m.ndim
    shape[dim] = -1
    t = t.reshape(shape).to(m.dtype)
    return m.index_select(dim, i0) * (1 - t) + m.index_select(dim, i1) * t


def sample_at_centres(maps: Tensor | np.ndarray, start: Sequence[float], jump: Sequence[float],
                      ys: Tensor | np.ndarray, xs: Tensor | np.ndarray) -> Tensor:
    """Values of (..., h, w) maps whose cell (i, j) sits at input point ``start + jump * (i, j)`` (y, x), sampled
    bilinearly at input points (``ys`` x ``xs``, pixel centres at integers); beyond the outer cells the edge value.

    The geometric core of registration: the cells are placed where their receptive fields are centred.
    """
    m = torch.as_tensor(maps)
    m = m.double() if m.dtype == torch.float64 else m.float()
    if m.ndim < 2:
        raise ValueError(f"maps must have shape (..., h, w), got {tuple(m.shape)}")
    iy = torch.from_numpy(cell_index(np.asarray(ys, dtype=np.float64).reshape(-1), start[0], jump[0]))
    ix = torch.from_numpy(cell_index(np.asarray(xs, dtype=np.float64).reshape(-1), start[1], jump[1]))
    return _interp_axis_torch(_interp_axis_torch(m, iy, m.ndim - 2), ix, m.ndim - 1)


def sample_between(maps: Tensor | np.ndarray, centres: CellCentres, ys: Tensor | np.ndarray,
                   xs: Tensor | np.ndarray) -> Tensor:
    """``sample_at_centres`` for cells at any increasing centres (``CellCentres``) instead of an affine grid."""
    m = torch.as_tensor(maps)
    m = m.double() if m.dtype == torch.float64 else m.float()
    if m.ndim < 2:
        raise ValueError(f"maps must have shape (..., h, w), got {tuple(m.shape)}")
    _check_grid(m.shape[-2:], centres)
    iy = torch.from_numpy(cell_index_at(np.asarray(ys, dtype=np.float64).reshape(-1), centres.rows))
    ix = torch.from_numpy(cell_index_at(np.asarray(xs, dtype=np.float64).reshape(-1), centres.cols))
    return _interp_axis_torch(_interp_axis_torch(m, iy, m.ndim - 2), ix, m.ndim - 1)


def size_hw(size: int | Sequence[int]) -> tuple[int, int]:
    """(height, width) from an int side or a pair; refuses anything else."""
    if isinstance(size, Integral):
        size = (int(size), int(size))
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be an int or (height, width) of positive ints, got {size}")
    return size  # type: ignore[return-value]


def tap_placement(model: nn.Module, tap: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """(start, jump) per axis (y, x) of a tap's cells on the model input, from its receptive field."""
    rf = tap_rf_info(model, tap)
    return rf.start, rf.jump


def register(model: nn.Module, tap: str, maps: Tensor | np.ndarray, size: int | Sequence[int],
             centres: CellCentres | None = None) -> Tensor:
    """A tap's (h, w) or (N, h, w) map placed on the (H, W) model input by its cells' receptive-field centres.

    Cell (i, j) of ``tap`` sees the input centred at ``start + stride * (i, j)`` (from the op graph, e.g. 0 + 32 i
    at ResNet-50's layer4); the map is interpolated between those centres, edge values beyond them. ``centres``
    places the cells elsewhere (``cell_centres``: effective centres, half-pixel).
    """
    h, w = size_hw(size)
    if centres is not None:
        return sample_between(maps, centres, np.arange(h), np.arange(w))
    start, jump = tap_placement(model, tap)
    return sample_at_centres(maps, start, jump, np.arange(h), np.arange(w))


def register_all(model: nn.Module, maps: Mapping[str, Tensor], size: int | Sequence[int]) -> dict[str, Tensor]:
    """``register`` for every tap of a ``{tap: maps}`` dict (e.g. the output of ``compute_cams``)."""
    return {t: register(model, t, m, size) for t, m in maps.items()}


# ------------------------------------------------------------------------------------------- the photo
@dataclass(frozen=True)
class CropBox:
    """The region of the photo, in its pixel coordinates, that the (size x size) tensor shows.

    ``box`` = (left, top, right, bottom) may reach outside the photo (mode 'pad'); the mapping from photo to
    tensor is ``u = (x - left) * size / (right - left)`` (same for y), pixel edges at integer coordinates.
    """

    box: tuple[float, float, float, float]
    size: int
    image_size: tuple[int, int]
    mode: str

    @property
    def scale(self) -> tuple[float, float]:
        """Tensor pixels per photo pixel along x and y."""
        left, top, right, bottom = self.box
        return self.size / (right - left), self.size / (bottom - top)

    def to_tensor(self, x: float, y: float) -> tuple[float, float]:
        """Photo coordinates → tensor coordinates."""
        sx, sy = self.scale
        return (x - self.box[0]) * sx, (y - self.box[1]) * sy

    def to_image(self, u: float, v: float) -> tuple[float, float]:
        """Tensor coordinates → photo coordinates."""
        sx, sy = self.scale
        return self.box[0] + u / sx, self.box[1] + v / sy

    def box_to_tensor(self, box: Sequence[float]) -> tuple[float, float, float, float]:
        """A (left, top, right, bottom) box on the photo in tensor coordinates, clipped to the tensor."""
        (x0, y0), (x1, y1) = self.to_tensor(box[0], box[1]), self.to_tensor(box[2], box[3])
        c = lambda t: float(min(max(t, 0.0), self.size))
        return c(x0), c(y0), c(x1), c(y1)

    def display_coords(self, out_size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Model-input coordinates (pixel centres at integers) of the centres of a (width, height) display of the
        photo (default: the photo's own pixels): (rows, columns)."""
        w, h = self.image_size
        ow, oh = out_size or (w, h)
        left, top, right, bottom = self.box
        u = ((np.arange(ow) + 0.5) * w / ow - left) * self.size / (right - left) - 0.5
        v = ((np.arange(oh) + 0.5) * h / oh - top) * self.size / (bottom - top) - 0.5
        return v, u

    @property
    def valid(self) -> tuple[float, float, float, float]:
        """The part of the tensor that shows the photo (not padding), in tensor coordinates."""
        return self.box_to_tensor((0, 0, *self.image_size))


def resized_size(w: int, h: int, resize: int) -> tuple[int, int]:
    """torchvision ``Resize(int)``: the shorter side becomes ``resize``, the longer keeps the aspect (truncated)."""
    if w <= h:
        return resize, int(resize * h / w)
    return int(resize * w / h), resize


def pad_layout(w: int, h: int, s: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """Size of the photo fitted inside s x s (aspect kept) and its offset in the padded square."""
    k = s / max(w, h)
    nw, nh = max(1, round(w * k)), max(1, round(h * k))
    return (nw, nh), ((s - nw) // 2, (s - nh) // 2)


def crop_box(image_size: tuple[int, int], spec_or_name: ModelSpec | str, mode: str = "center_crop") -> CropBox:
    """Which region of a (width, height) photo the model's tensor shows under ``mode``."""
    if mode not in PREPROCESS_MODES:
        raise ValueError(f"unknown preprocessing mode {mode!r}; choose one of {', '.join(PREPROCESS_MODES)}")
    spec = as_spec(spec_or_name)
    w, h = image_size
    s = spec.input_size
    if mode == "resize":
        return CropBox((0.0, 0.0, float(w), float(h)), s, (w, h), mode)
    if mode == "pad":
        (nw, nh), (ox, oy) = pad_layout(w, h, s)
        fx, fy = w / nw, h / nh
        return CropBox((-ox * fx, -oy * fy, (s - ox) * fx, (s - oy) * fy), s, (w, h), mode)
    rw, rh = resized_size(w, h, spec.resize)
    if rw < s or rh < s:
        raise ValueError(f"{spec.name}: resize {spec.resize} is smaller than the crop {s}")
    left, top = int(round((rw - s) / 2.0)), int(round((rh - s) / 2.0))  # torchvision CenterCrop
    fx, fy = w / rw, h / rh
    return CropBox((left * fx, top * fy, (left + s) * fx, (top + s) * fy), s, (w, h), mode)


def place_on_photo(map_2d: Tensor | np.ndarray, start: Sequence[float], jump: Sequence[float], crop: CropBox,
                   out_size: tuple[int, int] | None = None) -> np.ndarray:
    """A (h, w) map whose cell (i, j) sits at model-input point ``start + jump * (i, j)``, sampled at each pixel
    of a (width, height) display of the photo: float64, NaN where the model input did not show the photo."""
    m = torch.as_tensor(map_2d)
    if m.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {tuple(m.shape)}")
    v, u = crop.display_coords(out_size)
    out = sample_at_centres(m.double(), start, jump, v, u).numpy()
    return np.where(_shown(v, crop)[:, None] & _shown(u, crop)[None, :], out, np.nan)


def register_to_photo(model: nn.Module, tap: str, map_2d: Tensor | np.ndarray, crop: CropBox,
                      out_size: tuple[int, int] | None = None, centres: CellCentres | None = None) -> np.ndarray:
    """A tap's (h, w) map placed on the user's photo through the preprocessing (``crop``: centre crop, resize, pad).

    Returns a (height, width) float64 array at ``out_size`` = (width, height) (default: the photo's size), NaN
    where the model input did not show the photo (outside a centre crop). ``centres``: as in ``register``.
    """
    if centres is None:
        start, jump = tap_placement(model, tap)
        return place_on_photo(map_2d, start, jump, crop, out_size)
    m = torch.as_tensor(map_2d)
    if m.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {tuple(m.shape)}")
    v, u = crop.display_coords(out_size)
    out = sample_between(m.double(), centres, v, u).numpy()
    return np.where(_shown(v, crop)[:, None] & _shown(u, crop)[None, :], out, np.nan)


def _shown(coords: np.ndarray, crop: CropBox) -> np.ndarray:
    """Which display coordinates (model-input pixels) fall on the model input."""
    return (coords >= -0.5) & (coords <= crop.size - 0.5)


class PhotoCells(NamedTuple):
    """A tap's cell grid on the photo: cell (i, j) centred at photo pixel (y0 + dy·i, x0 + dx·j), pixel centres at
    integers; ``seen`` = (left, top, right, bottom) pixel edges of the photo region the model input covers."""

    x0: float
    dx: float
    y0: float
    dy: float
    seen: tuple[float, float, float, float]


def cells_on_photo(model: nn.Module, tap: str, crop: CropBox) -> PhotoCells:
    """Where a tap's cells sit on the photo: their centres ``start + jump * (i, j)`` on the model input carried back
    through the crop/resize (an affine map per axis)."""
    start, jump = tap_placement(model, tap)
    sx, sy = crop.scale
    # model-input pixel centre u (integers) -> photo pixel centre: (u + 0.5) / s + left - 0.5
    x0 = (start[1] + 0.5) / sx + crop.box[0] - 0.5
    y0 = (start[0] + 0.5) / sy + crop.box[1] - 0.5
    left, top = crop.box[0] - 0.5, crop.box[1] - 0.5  # model-input edge -0.5 on the photo
    seen = (left, top, left + crop.size / sx, top + crop.size / sy)
    return PhotoCells(x0, jump[1] / sx, y0, jump[0] / sy, seen)


# ------------------------------------------------------------------------------- maps without a tap geometry
def _half_pixel(cells: int, pixels: int) -> tuple[float, float]:
    """(start, jump) of ``cells`` spread evenly over ``pixels`` (half-pixel centres, align_corners=False)."""
    jump = pixels / cells
    return (jump - 1) / 2, jump


def resize_map(map_2d: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinearly resize a (h, w) map to ``size`` = (height, width), pixel centres aligned (align_corners=False).

    Not geometric: to place a tap's map where its cells see the input, use ``register``.
    """
    m = np.asarray(map_2d, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {m.shape}")
    (h, w), (oh, ow) = m.shape, size
    (sy, jy), (sx, jx) = _half_pixel(h, oh), _half_pixel(w, ow)
    return sample_at_centres(m, (sy, sx), (jy, jx), np.arange(oh), np.arange(ow)).numpy()


def map_to_image(map_2d: np.ndarray, crop: CropBox, out_size: tuple[int, int] | None = None) -> np.ndarray:
    """A map computed on the tensor, its cells spread evenly over it, resampled onto the photo: (height, width)
    array, NaN where it has no value.

    ``out_size`` = (width, height) of the display (default: the photo's size); the tensor region is located
    with ``crop``, so centre crops leave NaN margins and padded inputs drop their padding. A tap's map belongs
    where its receptive fields are centred instead: ``register_to_photo``.
    """
    m = np.asarray(map_2d, dtype=np.float64)
    if m.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {m.shape}")
    (sy, jy), (sx, jx) = _half_pixel(m.shape[0], crop.size), _half_pixel(m.shape[1], crop.size)
    return place_on_photo(m, (sy, sx), (jy, jx), crop, out_size)
