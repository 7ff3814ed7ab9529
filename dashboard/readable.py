"""Numbers as a reader should see them: receptive-field rows with plain column names and flags, block badges.

No Streamlit here, so the wording can be tested without running a page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

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


# ------------------------------------------------------------------------------------------- Compare's readings
BRANCH_HELP = (
    "Branch order follows the code: branch 0 is the conv branch with the smallest receptive field, each later conv "
    "branch sees more, and the last branch is the identity (average pool in stage blocks). The paper numbers the "
    "branches the other way round (its y₁ is the identity). Cells are drawn at their receptive-field centres.")
FAITHFULNESS_HELP = (
    "Petsiuk et al. (2018): remove the pixels the map ranks highest (set to the mean colour) and watch the target's "
    "probability fall (deletion; a faithful map falls fast, low area), or put them back into a blank image "
    "(insertion; high area). The grey band spans random pixel orders: a map inside it ranks pixels no better than "
    "chance.")
SANITY_HELP = (
    "Adebayo et al. (2018): the same map from the same architecture with random weights. A map that survives "
    "randomisation says more about the architecture and the image than about what the model learned. Scored by "
    "Spearman rank correlation of the raw maps and SSIM of the maps scaled to [0, 1] (1 = identical).")
DIFFERENCE_HELP = (
    "Each map is scaled by its own largest value (models' maps are in different units), then subtracted, so every "
    "panel shares one scale from −1 to 1. Per branch: each Res2Net conv branch, ordered by receptive field, minus "
    "the ResNet's single 3×3 path at the same block.")
SANITY_SIMILAR, SANITY_DIFFERENT = 0.5, 0.2  # scores at or above / below which a reading is given


def _trapezoid(fractions: np.ndarray, values: np.ndarray) -> float:
    return float(np.sum((values[1:] + values[:-1]) / 2 * np.diff(fractions)))


def versus_random(auc: float, random_aucs: Sequence[float], *, lower_is_better: bool) -> str:
    """'better than random' (beyond every random order), 'worse than random' (on the wrong side of the random
    orders' mean), or 'within the random spread'."""
    r = np.asarray(random_aucs, dtype=np.float64)
    if not r.size or not math.isfinite(auc):
        return "no random reference"
    sign = 1.0 if lower_is_better else -1.0
    if sign * auc < min(sign * r):
        return "better than random"
    if sign * auc > sign * float(r.mean()):
        return "worse than random"
    return "within the random spread"


def faithfulness_reading(f) -> str:  # noqa: ANN001  (res2net.analysis.faithfulness.Faithfulness)
    """Both areas beside the random orders' range, each with its verdict; a red flag when worse than random."""
    parts = []
    for what, auc, curves, mean, lower in (
            ("Deletion", f.deletion_auc, f.random_deletion, f.random_deletion_auc, True),
            ("Insertion", f.insertion_auc, f.random_insertion, f.random_insertion_auc, False)):
        aucs = [_trapezoid(f.fractions, c) for c in curves] if curves is not None and len(curves) else [mean]
        verdict = versus_random(auc, aucs, lower_is_better=lower)
        flag = {"worse than random": ":red-badge[worse than random]", "better than random":
                ":green-badge[better than random]"}.get(verdict, f":gray-badge[{verdict}]")
        parts.append(f"{what} AUC **{auc:.3f}** (random orders {min(aucs):.3f}–{max(aucs):.3f}) {flag}")
    return " · ".join(parts)


def sanity_reading(rho: float, ssim: float) -> str:
    """Spearman ρ and SSIM between a trained map and its randomised model's map, and what they say in one line."""
    nums = f"Spearman ρ **{_value(rho, 2)}** · SSIM **{_value(ssim, 2)}** with the random-weights map."
    finite = [v for v in (rho, ssim) if v is not None and math.isfinite(v)]
    if not finite:
        return nums + " Not measurable (a flat map)."
    if max(finite) >= SANITY_SIMILAR:
        return nums + (" :red-badge[survives randomisation] The map looks much the same without training: it "
                       "shows the architecture and the image more than what the model learned.")
    if max(finite) < SANITY_DIFFERENT:
        return nums + " :green-badge[passes] The map changes once the weights are random: it depends on training."
    return nums + " :orange-badge[partly] Some of the map's layout survives randomisation."
