"""Registration: where a tap's cells lie on the input, and maps placed there (numpy batch path).

Cell (i, j) of a tap sees the input centred at ``start + jump * (i, j)`` (its receptive-field centre from the op
graph); a registered map interpolates bilinearly between those centres and keeps edge values beyond them.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["interp_axis", "register_maps"]


def interp_axis(m: np.ndarray, idx: np.ndarray, axis: int) -> np.ndarray:
    n = m.shape[axis]
    c = np.clip(idx, 0, n - 1)
    i0 = np.minimum(np.floor(c).astype(np.int64), n - 1)
    i1 = np.minimum(i0 + 1, n - 1)
    shape = [1] * m.ndim
    shape[axis] = -1
    t = (c - i0).astype(m.dtype).reshape(shape)
    return np.take(m, i0, axis) * (1 - t) + np.take(m, i1, axis) * t


def register_maps(cams: torch.Tensor, start: tuple, jump: tuple, size: tuple[int, int]) -> np.ndarray:
    """``cam.register``'s maps (N, H, W) as float64 numpy: the same interpolation between the cells' receptive-field
    centres, operation for operation in the maps' float32, with numpy, whose gathers along the last axis are several
    times faster here than torch's ``index_select``."""
    m = cams.detach().cpu().numpy()
    iy = (np.arange(size[0], dtype=np.float64) - float(start[0])) / float(jump[0])
    ix = (np.arange(size[1], dtype=np.float64) - float(start[1])) / float(jump[1])
    return interp_axis(interp_axis(m, iy, m.ndim - 2), ix, m.ndim - 1).astype(np.float64)
