"""Maps placed where the model saw them, and scored against a box beside baselines that ignore the image.

Every map a view draws, exports or scores goes through here: a tap's cell (i, j) is put at its receptive-field
centre ``start + stride·(i, j)`` in model-input pixels (``res2net.cam.register``), never stretched over the
picture. No Streamlit here, so the views' numbers can be tested without running a page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from torch import nn

from res2net import cam, erf, localize

REGISTRATION_RULE = "cell (i,j) at start + stride·(i,j)"
REGISTERED_PREFIX = "registered/"  # .npz key prefix of the maps placed on the model input


def place(model: nn.Module, tap: str, raw: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """One tap's raw (h, w) map registered onto the (H, W) model input, float64."""
    return cam.register(model, tap, np.asarray(raw, dtype=np.float64), size).numpy()


def place_all(model: nn.Module, raw: Mapping[str, np.ndarray], size: tuple[int, int]) -> dict[str, np.ndarray]:
    """``place`` for every tap of a ``{tap: raw map}`` dict."""
    return {t: place(model, t, m, size) for t, m in raw.items()}


def geometry(model: nn.Module, tap: str) -> dict[str, object]:
    """Where a tap's cells sit on the model input: stride, cell (0, 0)'s centre and the rule, for tables and CSVs."""
    rf = erf.tap_rf_info(model, tap)
    jy, jx = rf.jump
    stride: object = _num(jy) if jy == jx else f"{_num(jy)}x{_num(jx)}"
    return {"stride": stride, "start_y": _num(rf.start[0]), "start_x": _num(rf.start[1]),
            "registration": REGISTRATION_RULE}


def geometry_text(model: nn.Module, tap: str) -> str:
    """The rule with this tap's numbers, e.g. 'cell (i,j) at (0, 0) + 16·(i,j) px'."""
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
