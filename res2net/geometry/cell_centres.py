"""Where a tap's rows and columns sit on the model input, by three rules: receptive-field centres, effective
centres and half-pixel spreading.

- RF centre: cell i at ``start + jump * i`` from the op graph (``receptive_field``); exact for the theoretical
  field, but zero padding pulls a border unit's gradient mass inward, by a different amount in each network.
- Effective centre: the gradient centroid of diagonal cell (i, i) over data, ``sum_p p * |dT_c(i,i)/dx|_p`` over
  input pixels p, channels summed before and RGB after the derivative (the ERF's weighting, Luo et al.); row i
  takes the centroid's y, column i its x. ``max(h, w)`` backward passes from one forward.
- Half-pixel: the cells spread evenly over the input (``align_corners=False``), what a plain resize assumes.

A map is placed by linear interpolation between its cells' centres (edge values beyond), whatever the rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from res2net.geometry.receptive_field import tap_rf_info
from res2net.models.taps import TapCapture, check_images, eval_mode, resolve_taps

__all__ = ["PLACEMENTS", "CellCentres", "rf_centres", "half_pixel_centres", "effective_centres", "centres_for",
           "cell_index_at"]

PLACEMENTS = ("rf_centre", "effective_centre", "half_pixel")


@dataclass(frozen=True)
class CellCentres:
    """Input-pixel coordinates (pixel centres at integers) of a tap's rows (y) and columns (x), and the rule used."""

    rows: tuple[float, ...]
    cols: tuple[float, ...]
    rule: str

    def __post_init__(self) -> None:
        if self.rule not in PLACEMENTS:
            raise ValueError(f"unknown placement {self.rule!r}; choose one of {', '.join(PLACEMENTS)}")
        for axis, c in (("rows", self.rows), ("columns", self.cols)):
            a = np.asarray(c, dtype=np.float64)
            if a.size == 0 or not np.isfinite(a).all() or (a.size > 1 and not (np.diff(a) > 0).all()):
                raise ValueError(f"{self.rule}: the {axis}' centres must be finite and strictly increasing "
                                 f"(got {np.round(a, 2).tolist()}); a map cannot be placed by them")

    @property
    def grid(self) -> tuple[int, int]:
        return len(self.rows), len(self.cols)


def _affine(n: int, start: float, jump: float) -> tuple[float, ...]:
    return tuple(float(start) + float(jump) * i for i in range(n))


def rf_centres(model: nn.Module, tap: str, grid: tuple[int, int]) -> CellCentres:
    """Each row's and column's receptive-field centre, ``start + jump * i`` per axis."""
    rf = tap_rf_info(model, tap)
    return CellCentres(_affine(grid[0], rf.start[0], rf.jump[0]), _affine(grid[1], rf.start[1], rf.jump[1]),
                       "rf_centre")


def half_pixel_centres(grid: tuple[int, int], size: tuple[int, int]) -> CellCentres:
    """``grid`` cells spread evenly over a ``size`` input: cell i at ``(i + 0.5) * size / cells - 0.5``."""
    def axis(cells: int, pixels: int) -> tuple[float, ...]:
        jump = pixels / cells
        return _affine(cells, (jump - 1) / 2, jump)

    return CellCentres(axis(grid[0], size[0]), axis(grid[1], size[1]), "half_pixel")


def effective_centres(model: nn.Module, tap: str, images: Tensor) -> CellCentres:
    """Gradient centroids of the diagonal cells (i, i) of ``tap`` over normalised ``images`` (N, C, H, W): row i
    at the centroid's y, column i at its x (a non-square map uses its last row or column beyond its side)."""
    (tap,) = resolve_taps(model, [tap])
    x = check_images(model, images).detach()
    hw = x.shape[-2:]
    yy = torch.arange(hw[0], dtype=torch.float64)[:, None]
    xx = torch.arange(hw[1], dtype=torch.float64)[None, :]
    with eval_mode(model), torch.enable_grad():
        x = x.requires_grad_(True)
        with TapCapture(model, [tap], stop_at_last=True) as cap:
            cap.run(x)
        a = cap.activations[tap]
        h, w = a.shape[-2:]
        n = max(h, w)
        rows, cols = [0.0] * h, [0.0] * w
        for i in range(n):
            r, q = min(i, h - 1), min(i, w - 1)
            (g,) = torch.autograd.grad(a[:, :, r, q].sum(), x, retain_graph=i < n - 1)
            mass = g.abs().sum((0, 1)).double().cpu()
            total = float(mass.sum())
            if total <= 0:
                raise ValueError(f"{tap}: cell ({r}, {q}) has no gradient on these images; its effective centre "
                                 "is undefined")
            if i < h:
                rows[r] = float((mass * yy).sum()) / total
            if i < w:
                cols[q] = float((mass * xx).sum()) / total
    return CellCentres(tuple(rows), tuple(cols), "effective_centre")


def centres_for(model: nn.Module, tap: str, grid: tuple[int, int], size: tuple[int, int], rule: str,
                images: Tensor | None = None) -> CellCentres:
    """A tap's cell centres under ``rule`` (``effective_centre`` needs ``images``)."""
    if rule == "rf_centre":
        return rf_centres(model, tap, grid)
    if rule == "half_pixel":
        return half_pixel_centres(grid, size)
    if rule == "effective_centre":
        if images is None:
            raise ValueError("the effective-centre placement needs images to take the gradients on")
        return effective_centres(model, tap, images)
    raise ValueError(f"unknown placement {rule!r}; choose one of {', '.join(PLACEMENTS)}")


def cell_index_at(points: np.ndarray | Sequence[float], centres: Sequence[float]) -> np.ndarray:
    """Fractional cell index of input points, linear between the cells' centres and clamped to the first/last
    cell: the inverse of the centres for any increasing placement."""
    c = np.asarray(centres, dtype=np.float64)
    p = np.asarray(points, dtype=np.float64)
    if c.size == 1:
        return np.zeros_like(p)
    return np.interp(p, c, np.arange(c.size, dtype=np.float64))
