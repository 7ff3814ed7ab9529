"""Maps placed where the model saw them, and scored against a box beside baselines that ignore the image.

Every map a view draws, exports or scores goes through here: a tap's cell (i, j) is put at its receptive-field
centre ``start + stride·(i, j)`` in model-input pixels (``res2net.geometry.registration``), never stretched over the
picture. No Streamlit here, so the views' numbers can be tested without running a page.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import numpy as np
from torch import nn

from res2net.geometry import registration
from res2net.geometry.cell_centres import CellCentres
from res2net.geometry.receptive_field import tap_rf_info
from res2net.metrics import boxes as localize
from res2net.viz import plots

REGISTRATION_RULE = "cell (i,j) at start + stride·(i,j)"
REGISTERED_PREFIX = "registered/"  # .npz key prefix of the maps placed on the model input


def place(model: nn.Module, tap: str, raw: np.ndarray, size: tuple[int, int], centres: CellCentres | None = None
          ) -> np.ndarray:
    """One tap's raw (h, w) map registered onto the (H, W) model input, float64 (``registration.register``);
    ``centres``: at those cell centres (the effective ones) instead of the receptive-field grid."""
    return registration.register(model, tap, np.asarray(raw, dtype=np.float64), size, centres).numpy()


def place_all(model: nn.Module, raw: Mapping[str, np.ndarray], size: tuple[int, int],
              centres: Mapping[str, CellCentres] | None = None) -> dict[str, np.ndarray]:
    """``place`` for every tap of a ``{tap: raw map}`` dict (``centres``: per tap, where given)."""
    return {t: place(model, t, m, size, (centres or {}).get(t)) for t, m in raw.items()}


def geometry(model: nn.Module, tap: str) -> dict[str, object]:
    """Where a tap's cells sit on the model input: stride, cell (0, 0)'s centre and the rule, for tables and CSVs."""
    rf = tap_rf_info(model, tap)
    jy, jx = rf.jump
    stride: object = _num(jy) if jy == jx else f"{_num(jy)}x{_num(jx)}"
    return {"stride": stride, "start_y": _num(rf.start[0]), "start_x": _num(rf.start[1]),
            "registration": REGISTRATION_RULE}


def geometry_text(model: nn.Module, tap: str, centres: CellCentres | None = None) -> str:
    """The rule with this tap's numbers, e.g. 'cell (i,j) at (0, 0) + 16·(i,j) px', or the effective centres."""
    if centres is not None:
        return ("cells at their effective centres: rows at " + ", ".join(f"{v:.1f}" for v in centres.rows)
                + " px, columns at " + ", ".join(f"{v:.1f}" for v in centres.cols) + " px")
    g = geometry(model, tap)
    return f"cell (i,j) at ({g['start_y']}, {g['start_x']}) + {g['stride']}·(i,j) px"


def _num(v: float) -> int | float:
    return int(v) if float(v).is_integer() else float(v)


def pixel_box(box: Sequence[float], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A box with fractional edges (x0, y0, x1, y1) as the whole pixels it touches (exclusive ends, >= 1 px)."""
    h, w = size
    x0, y0 = max(int(math.floor(box[0])), 0), max(int(math.floor(box[1])), 0)
    x0, y0 = min(x0, w - 1), min(y0, h - 1)
    x1 = min(max(int(math.ceil(box[2])), x0 + 1), w)
    y1 = min(max(int(math.ceil(box[3])), y0 + 1), h)
    return x0, y0, x1, y1


def localise(placed: np.ndarray, box: Sequence[int], sigma: float) -> dict[str, float | bool]:
    """A registered map against a whole-pixel box, with each number's baseline computed on the same box.

    Energy in the box beside a uniform map (the box's area fraction) and the centred Gaussian prior of width
    ``sigma`` px; the pointing game beside "always the centre" (the prior's peak); coverage beside the prior's.
    """
    m = np.asarray(placed, dtype=np.float64)
    size = m.shape
    prior = localize.centre_prior(size, sigma)
    return {
        "energy_in_box": localize.energy_in_box(m, box),
        "energy_uniform": localize.box_fraction(box, size),
        "energy_centre_prior": localize.energy_in_box(prior, box),
        "pointing_hit": localize.pointing_game(m, box),
        "pointing_centre_hit": localize.pointing_game(prior, box),
        "coverage": localize.coverage(m, box),
        "coverage_centre_prior": localize.coverage(prior, box),
    }


def _hit(v: object) -> str:
    return "hit" if v else "miss"


def localisation_caption(loc: Mapping[str, float | bool], tap_rule: str, sigma_note: str) -> str:
    """One line of registered-map numbers, each with its baselines, and what they were computed on."""
    energy = loc["energy_in_box"]
    energy_txt = "n/a (all-zero map)" if not math.isfinite(float(energy)) else f"{float(energy):.2f}"
    return (f"Energy in box {energy_txt} (uniform map {loc['energy_uniform']:.2f}, centre prior "
            f"{loc['energy_centre_prior']:.2f}) · pointing game {_hit(loc['pointing_hit'])} (always the centre: "
            f"{_hit(loc['pointing_centre_hit'])}) · coverage of the box {loc['coverage']:.2f} (centre prior "
            f"{loc['coverage_centre_prior']:.2f}). On the registered map ({tap_rule}); {sigma_note}.")


# ------------------------------------------------------------------------------------ maps on the user's photo
def photo_map(model: nn.Module, tap: str, raw: np.ndarray, crop: registration.CropBox, title: str, *,
              cells: bool = True, display_side: int = 160, centres: CellCentres | None = None) -> plots.PhotoMap:
    """A tap's raw map ready to draw on the user's photo, cells at their receptive-field centres.

    ``cells``: the raw grid, each cell at its receptive-field centre carried back onto the photo
    (``registration.cells_on_photo``). Otherwise the map sampled by ``registration.register_to_photo`` on a display
    grid of at most ``display_side`` px a side (NaN where the model did not see the photo), interpolated between
    ``centres`` when given (the effective centres), else between the receptive-field centres.
    """
    w, h = crop.image_size
    if cells and centres is None:
        c = registration.cells_on_photo(model, tap, crop)
        return plots.PhotoMap(np.asarray(raw, dtype=np.float64), c.x0, c.dx, c.y0, c.dy, title, c.seen)
    f = min(1.0, display_side / max(w, h))
    ow, oh = max(1, round(w * f)), max(1, round(h * f))
    grid = registration.register_to_photo(model, tap, np.asarray(raw, dtype=np.float64), crop, out_size=(ow, oh),
                                          centres=centres)
    return plots.PhotoMap(grid, -0.5 + 0.5 * w / ow, w / ow, -0.5 + 0.5 * h / oh, h / oh, title)


def grid_text(model: nn.Module, tap: str, raw: np.ndarray, crop: registration.CropBox) -> str:
    """'4×4 map · one cell = 16 px of the 64 px input (≈ 75 px of the photo)': what a map's resolution is."""
    h, w = np.asarray(raw).shape[-2:]
    stride = tap_rf_info(model, tap).jump[0]
    photo_px = stride / crop.scale[0]
    return (f"{h}×{w} map · one cell = {_num(stride)} px of the {crop.size} px input "
            f"(≈ {photo_px:.0f} px of the photo)")


def block_sort_key(name: str) -> tuple:
    """Natural order of module paths: layer2.10 after layer2.9, layer1.2 before layer2.0."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name))


def sorted_blocks(per_model: Mapping[str, Sequence[str]]) -> list[str]:
    """The union of the models' block names in network order."""
    return sorted({b for blocks in per_model.values() for b in blocks}, key=block_sort_key)


def default_block(blocks: Sequence[str], sizes: Mapping[str, Mapping[str, tuple[int, int]]],
                  min_side: int = 8) -> str:
    """The deepest block that every model has and whose map is at least ``min_side`` cells a side in each (readable
    without guessing), else the block with the largest maps. ``sizes``: model -> {block: (h, w)}."""
    def smallest(b: str) -> int:
        return min((min(s[b]) for s in sizes.values() if b in s), default=0)

    common = [b for b in blocks if all(b in s for s in sizes.values())]
    ok = [b for b in common if smallest(b) >= min_side]
    if ok:
        return max(ok, key=block_sort_key)
    return max(blocks, key=lambda b: (smallest(b), block_sort_key(b)))


def colour_range(maps: Sequence[np.ndarray]) -> tuple[float, float]:
    """One (vmin, vmax) over ``maps`` (0 at the bottom for non-negative maps; a flat or empty set gets 0..1)."""
    return plots.map_range(list(maps), True)[0]
