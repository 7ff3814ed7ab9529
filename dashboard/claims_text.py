"""Text and table rows of the Claims page from a results file (no Streamlit, so the wording is testable)."""

from __future__ import annotations

from collections.abc import Sequence

from res2net.evaluation.results import Claim, Results
from res2net.metrics.statistics import VERDICTS

# Material icons render in Streamlit labels and markdown without an emoji font
VERDICT_ICONS = {"supported": ":material/check_circle:", "contradicted": ":material/cancel:",
                 "no meaningful difference": ":material/drag_handle:", "inconclusive": ":material/help:"}


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for a table, or an en dash when it is missing."""
    return "–" if value is None else f"{value:.{digits}f}"


def fmt_interval(mean: float | None, low: float | None, high: float | None, digits: int = 3) -> str:
    """'mean [low, high]'."""
    return f"{fmt(mean, digits)} [{fmt(low, digits)}, {fmt(high, digits)}]"


def verdict_counts(claims: Sequence[Claim]) -> dict[str, int]:
    """How many confirmatory claims got each verdict, in the fixed verdict order."""
    out = dict.fromkeys(VERDICTS, 0)
    for c in claims:
        if c.family == "confirmatory":
            out[c.verdict] += 1
    return out


def claim_rows(res: Results, section: str) -> list[dict]:
    """One table row per claim of ``section``: what is claimed, the metric, the numbers, the verdict and caveats."""
    rows = []
    for c in res.claims:
        if c.section != section:
            continue
        digits = 2 if section == "accuracy" else 1 if section == "erf" else 3
        rows.append({
            "verdict": c.verdict + ("" if c.family == "confirmatory" else " (exploratory)"),
            "model": c.model,
            "metric": c.metric.split(": ", 1)[-1],
            "images": c.subset,
            "difference": fmt(c.estimate, digits),
            "interval judged": f"[{fmt(c.low, digits)}, {fmt(c.high, digits)}] at {100 * c.level:.1f}%",
            "95% interval": f"[{fmt(c.low95, digits)}, {fmt(c.high95, digits)}]",
            "d": f"{c.min_effect:g}",  # text: a plain table would pad it to four decimals
            "baselines": c.baseline_note or "–",
            "rests on": f"{c.runs} runs" + (f", {c.images} images" if c.images else ""),
        })
    return rows


def localisation_rows(res: Results, stage: str, subset: str, metric: str) -> list[dict]:
    """Rows for the by-size figure: each model's stage-output value per bucket, with the uniform map's share."""
    out = []
    for r in res.localisation:
        if (r.stage, r.subset, r.metric, r.group) != (stage, subset, metric, "output"):
            continue
        if r.bucket == "all" or r.mean is None:
            continue
        chance = res.baselines[r.bucket].uniform_energy if metric == "energy" else None
        out.append({"model": r.model, "bucket": r.bucket, "mean": r.mean, "lo": r.low, "hi": r.high,
                    "chance": chance, "n": r.n})
    return out


def section_notes(res: Results, section: str) -> tuple[list[str], list[str], list[str]]:
    """The distinct paper statements, tested layers and caveats of a section's claims, in order."""
    claims = [c for c in res.claims if c.section == section]
    return (list(dict.fromkeys(c.paper for c in claims)), list(dict.fromkeys(c.layer for c in claims)),
            list(dict.fromkeys(c.caveat for c in claims)))
