"""Numbers as a reader should see them: receptive-field rows with plain column names and flags, block badges.

No Streamlit here, so the wording can be tested without running a page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from res2net.models.taps import BlockInfo

NOT_MEASURABLE = "–"  # an all-zero ERF (no input reaches the unit) has no radius or width


def block_badge(info: BlockInfo) -> str:
    """A Streamlit badge saying what kind of block this is: a ResNet bottleneck is not 'multi-scale'."""
    if info.kind != "res2net":
        return ":gray-badge[ResNet bottleneck: one 3×3 path, no scale branches]"
    if info.stype == "normal":
        return ":blue-badge[normal block: hierarchical, multi-scale]"
    return ":orange-badge[stage block: parallel branches, no hierarchy]"


def _value(v: float, digits: int = 1) -> str:
    """The number as the table shows it (text, so a plain table does not pad it to four decimals)."""
    return f"{float(v):.{digits}f}" if v is not None and math.isfinite(float(v)) else NOT_MEASURABLE


def rf_row(model: str, branch: str, theoretical_px: int, stride: int, input_px: int,
           metrics: Mapping[str, float], energy_share: float, sparsity: float) -> dict[str, object]:
    """One table row per branch: theoretical RF (flagged when larger than the input), ERF mass radii and width."""
    exceeds = theoretical_px > input_px
    return {
        "model": model, "tap": branch,
        "theoretical RF (px)": f"{theoretical_px} (> {input_px} px input)" if exceeds else str(theoretical_px),
        "stride (px)": stride,
        "ERF: 50% of mass within (px)": _value(metrics.get("radius_50_square", math.nan)),
        "90% within (px)": _value(metrics.get("radius_90_square", math.nan)),
        "99% within (px)": _value(metrics.get("radius_99_square", math.nan)),
        "ERF σ (px)": _value(metrics.get("gaussian_sigma", math.nan)),
        "ERF cut by the border": "yes" if metrics.get("touches_border") else "no",
        "energy share": _value(energy_share, 3),
        "sparsity": _value(sparsity, 3),
    }


RF_TABLE_NOTE = (
    "Theoretical RF: the side of the input square that can reach one unit, from the module graph; it can exceed the "
    "input (the padding fills the rest). ERF radii: half-side of the centred square holding 50/90/99% of the "
    "gradient mass on this image; σ: its Gaussian width. 'Cut by the border': the 99% square reaches the input's edge, "
    f"so the radii are lower bounds. {NOT_MEASURABLE}: the unit gets no gradient (all-zero ERF).")
