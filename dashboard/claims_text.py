"""Text and table rows of the Claims page from a results file (no Streamlit, so the wording is testable).

Every claim row names its claim, shows the absolute values behind the difference beside the image-blind
baselines (the centred prior and the uniform map) and flags what limits it, such as a saturated metric.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from res2net.evaluation.results import Claim, ErfRow, KnockoutClaim, Results
from res2net.metrics.statistics import VERDICTS
from res2net.viz.branch_plots import BranchPoint, branch_kind
from res2net.viz.claims import ForestRow

# Material icons render in Streamlit labels and markdown without an emoji font
VERDICT_ICONS = {"supported": ":material/check_circle:", "contradicted": ":material/cancel:",
                 "no meaningful difference": ":material/drag_handle:", "inconclusive": ":material/help:",
                 "not tested": ":material/block:"}
SECTION_TITLES = {"accuracy": "accuracy", "localisation": "localisation", "erf": "receptive fields",
                  "knockout": "knock-out"}
UNITS = {"top1": "points", "erf_radius": "px"}
SHORT_METRICS = {"top1": "top-1", "energy": "energy in box", "pointing": "pointing game", "coverage": "coverage",
                 "maxboxacc": "MaxBoxAcc", "erf_radius": "ERF r50", "logprob": "log-prob"}
CEILING = 1.0  # every map metric is a share or a hit rate


def fmt(value: float | None, digits: int = 3) -> str:
    """A number for a table, or an en dash when it is missing."""
    return "–" if value is None else f"{value:.{digits}f}"


def fmt_interval(mean: float | None, low: float | None, high: float | None, digits: int = 3) -> str:
    """'mean [low, high]'."""
    return f"{fmt(mean, digits)} [{fmt(low, digits)}, {fmt(high, digits)}]"


def verdict_counts(claims: Sequence[Claim]) -> dict[str, int]:
    """How many confirmatory claims got each verdict, in the fixed verdict order."""
    out = dict.fromkeys(VERDICTS, 0)  # "not tested" only where Holm stopped before a claim
    for c in claims:
        if c.family == "confirmatory":
            out[c.verdict] = out.get(c.verdict, 0) + 1
    return out


# ----------------------------------------------------------------------------------------------- naming a claim
def metric_key(c: Claim) -> str:
    """The metric's name in results files ('energy' of 'energy: energy inside the box')."""
    return c.metric.split(": ", 1)[0]


def claim_kind(c: Claim) -> str:
    """What the claim's id says beyond metric and model: a size bucket ('small'), 'branches', 'block' or ''."""
    if c.section == "localisation" and c.bucket:
        return c.bucket  # ids name the control and subset after the model
    rest = c.id.removesuffix("-both-correct").removesuffix(f"-{c.model}")
    return "-".join(rest.split("-")[1:])  # the first part names the metric


def scale_of(res: Results, model: str) -> str:
    """'s=4' for a model of the file, else the model's name."""
    entry = res.models.get(model)
    return f"s={entry.scale}" if entry is not None else model


def erf_taps(c: Claim) -> tuple[str, str]:
    """The two taps an ERF claim compares: (smaller branch, larger branch) or (block, block)."""
    if "->" in c.layer:
        a, b = (t.strip() for t in c.layer.split("->", 1))
        return a, b
    return c.layer, c.layer


def _branch(tap: str) -> str:
    m = re.search(r"\.branch(\d+)$", tap)
    return f"branch {m.group(1)}" if m else tap


CONTROL_SUFFIX = {"mismatch": ", over mismatched boxes", "spread": ", over the spread prior", "none": ", raw"}
SUBSET_SUFFIX = {"boxes holding the centre": ", centre boxes", "off-centre boxes": ", off-centre boxes"}


def _qualifiers(c: Claim) -> str:
    """What sets a localisation claim apart from its siblings: the boxes it keeps and the control it subtracts."""
    return SUBSET_SUFFIX.get(c.subset, "") + CONTROL_SUFFIX.get(c.control or "", "")


def claim_title(res: Results, c: Claim) -> str:
    """A short name of the claim, unique within a file: what is compared, where, for which Res2Net."""
    kind, s = claim_kind(c), scale_of(res, c.model)
    both = " (both correct)" if c.subset == "both correct" else ""
    if c.section == "accuracy":
        return f"top-1{both} · {s}"
    if c.section == "knockout":
        return f"knock-out {_knockout_words(c)} · {s}"
    if c.section == "erf":
        a, b = erf_taps(c)
        what = f"ERF {_branch(a)} → {_branch(b)}" if kind.startswith("branches") or a != b else "block ERF vs ResNet"
        return f"{what}, {c.subset} · {s}"  # one claim per probe
    metric = SHORT_METRICS.get(metric_key(c), metric_key(c))
    return f"{metric}, {kind or 'all'} objects{both}{_qualifiers(c)} · {s}"


def claim_statement(res: Results, c: Claim) -> str:
    """What the claim says, in the page's words, and for which Res2Net: the column that names it in every table."""
    return f"{_statement(res, c)} · {scale_of(res, c.model)}"


def _statement(res: Results, c: Claim) -> str:
    kind, metric = claim_kind(c), SHORT_METRICS.get(metric_key(c), metric_key(c))
    both = ", both correct" if c.subset == "both correct" else ""
    if c.section == "accuracy":
        return f"top-1 higher than the ResNet's{both}"
    if c.section == "knockout":
        return f"a larger-RF branch serves large objects more than branch 0 does: {_knockout_words(c)}"
    if c.section == "erf":
        a, b = erf_taps(c)
        if a != b:
            return (f"training widens the ERF from {_branch(a)} to {_branch(b)} of {a.rsplit('.branch', 1)[0]} "
                    f"beyond random init ({c.subset})")
        return f"training widens the ERF of {a} beyond the ResNet's, over random init ({c.subset})"
    return f"{metric} higher on {kind or 'all'} objects{both}{_qualifiers(c)}"


def _knockout_words(c: Claim) -> str:
    """'top-1, branch 2 − branch 0 at layer1.1' from a knock-out claim's metric and layer."""
    block, _, contrast = c.layer.partition(" (")
    return f"{SHORT_METRICS.get(metric_key(c), metric_key(c))}, {contrast.rstrip(')').replace(' minus ', ' − ')} " \
           f"at {block}"


def knockout_title(c: KnockoutClaim) -> str:
    """A short name of a knock-out claim."""
    return (f"knock-out {SHORT_METRICS.get(c.metric, c.metric)}, {c.contrast.replace(' minus ', ' − ')} at {c.block} "
            f"· s={c.scale}")


# ----------------------------------------------------------------------------------------------- the forest plot
def forest_rows(res: Results) -> list[ForestRow]:
    """Every claim of the file, the knock-out study's included, as forest-plot rows in page order (sections in
    turn; within one, confirmatory before exploratory)."""
    rows = []
    for section in ("accuracy", "localisation", "erf", "knockout"):
        claims = sorted((c for c in res.claims if c.section == section), key=lambda c: not c.confirmatory)
        rows += [ForestRow(claim_title(res, c), SECTION_TITLES[section], c.family, c.verdict, c.estimate, c.low,
                           c.high, c.low95, c.high95, c.level, c.min_effect, UNITS.get(metric_key(c), ""))
                 for c in claims]
    if res.knockout is not None and not any(c.section == "knockout" for c in res.claims):  # an older file
        rows += [ForestRow(knockout_title(c), SECTION_TITLES["knockout"], "confirmatory", c.verdict, c.estimate,
                           c.low, c.high, c.low95, c.high95, c.level, c.min_effect, UNITS.get(c.metric, ""))
                 for c in res.knockout.claims]
    return rows


# ----------------------------------------------------------------------------------------------- claim tables
def saturated(score: float | None, min_effect: float, ceiling: float = CEILING) -> bool:
    """An image-blind score within d of the metric's ceiling: no model can beat it by a meaningful margin."""
    return score is not None and score >= ceiling - min_effect


def localisation_value(res: Results, model: str, bucket: str, metric: str, subset: str = "all") -> float | None:
    """A model's score at the verdict stage's output in one bucket (None where the file has no such row)."""
    for r in res.localisation:
        if (r.model, r.stage, r.group, r.subset, r.bucket, r.metric) == (model, res.verdict_layer, "output", subset,
                                                                         bucket, metric):
            return r.mean
    return None


def erf_row(res: Results, model: str, tap: str, weights: str = "trained") -> ErfRow | None:
    return next((r for r in res.erf if (r.model, r.tap, r.weights) == (model, tap, weights)), None)


@dataclass(frozen=True)
class ClaimRow:
    """One claim with what stands behind its difference: the compared values, the baselines, the flags."""

    claim: Claim
    statement: str
    compared: str  # what is compared, reference first
    reference: float | None  # the reference's absolute value (ResNet, or the smaller branch)
    value: float | None  # the Res2Net's (or the larger branch's)
    prior: float | None = None  # the centred prior's score in the same bucket
    uniform: float | None = None  # a uniform map's score (energy only: the box's area fraction)
    untrained: str | None = None  # the same comparison at random init (ERF)
    flags: tuple[str, ...] = ()

    def table_row(self, digits: int) -> dict[str, str]:
        """The row as the page's table shows it (plain text: a table cell renders no markdown)."""
        c = self.claim
        minus_prior = "–" if self.prior is None or self.reference is None or self.value is None else \
            f"{self.reference - self.prior:+.{digits}f} → {self.value - self.prior:+.{digits}f}"
        return {
            "claim": self.statement,
            "verdict": c.verdict + ("" if c.confirmatory else " (exploratory)"),
            "compared": self.compared,
            "values": f"{fmt(self.reference, digits)} → {fmt(self.value, digits)}",
            "centre prior": fmt(self.prior, digits),
            "uniform map": fmt(self.uniform, digits),
            "minus prior": minus_prior,
            "random init": self.untrained or "–",
            "difference [judged interval]": judged_cell(c, digits),
            "about (target · R · df · method)": inference_cell(c),
            "control subtracted": CONTROL_CELLS.get(c.control or "", "–"),
            "test vs 0": "–" if c.p_zero is None else f"p = {c.p_zero:.2g}"
                         + ("" if c.p_zero_holm is None else f" (Holm {c.p_zero_holm:.2g})"),
            "d": f"{c.min_effect:g}",
            "flags": "; ".join(self.flags) or "–",
            "images": f"{c.images}" if c.images else "noise",
        }


CONTROL_CELLS = {"mismatch": "mismatched boxes (same size bucket)", "spread": "spread-matched centre prior",
                 "none": "none (raw)"}


def judged_cell(c: Claim, digits: int) -> str:
    """The estimate with the interval its verdict came from; a claim Holm never reached has none, only its 95%."""
    if c.low is None or c.high is None:
        return (f"{fmt(c.estimate, digits)}, not judged (Holm stopped first); 95% [{fmt(c.low95, digits)}, "
                f"{fmt(c.high95, digits)}]")
    return f"{fmt(c.estimate, digits)} [{fmt(c.low, digits)}, {fmt(c.high, digits)}] at {100 * c.level:.1f}%"


def inference_cell(c: Claim) -> str:
    """What the claim's interval is about and how it was made: target, runs R, df, method."""
    if c.target is None:
        return "–"
    df = "" if c.df is None else f" · df {c.df:.1f}"
    return f"{c.target} · R = {c.runs}{df} · {c.method}"


def _localisation_row(res: Results, c: Claim) -> ClaimRow:
    metric, bucket = metric_key(c), c.bucket or claim_kind(c) or "all"
    subset = "all" if c.subset == "all" else None  # the file holds no per-model rows for 'both correct'
    ref = localisation_value(res, str(res.baseline), bucket, metric, subset) if subset else None
    val = localisation_value(res, c.model, bucket, metric, subset) if subset else None
    base = res.baselines.get(bucket)
    prior = None if base is None else base.prior.get(metric)
    uniform = base.uniform_energy if base is not None and metric == "energy" else None
    flags = []
    if saturated(prior, c.min_effect):
        flags.append(f"saturated (prior {prior:.3g})")
    if prior is not None and ref is not None and val is not None and max(ref, val) <= prior:
        flags.append("neither beats the prior")
    if subset is None:
        flags.append("values: all images only")
    return ClaimRow(c, claim_statement(res, c), f"ResNet → {scale_of(res, c.model)}", ref, val, prior, uniform,
                    flags=tuple(flags))


def _erf_claim_row(res: Results, c: Claim) -> ClaimRow:
    a, b = erf_taps(c)
    branches = a != b
    ref_model = c.model if branches else str(res.baseline)
    on_rows = c.subset.endswith("px noise") and any(r.size == int(c.subset.split()[0]) for r in res.erf)
    rows = {w: (erf_row(res, ref_model, a, w), erf_row(res, c.model, b, w)) if on_rows else (None, None)
            for w in ("trained", "random init")}  # the rows' radii are of the study's noise only
    ref, val = rows["trained"]
    flags = [f"{r.tap} of {r.model} reaches the border (a lower bound)"
             for r in (ref, val) if r is not None and r.touches_border]
    if not on_rows and "cut by the input's border" in c.caveat:
        flags.append("cut by the input's border (lower bounds)")
    u_ref, u_val = rows["random init"]
    untrained = None
    if u_ref is not None and u_val is not None and u_ref.radius_50 is not None and u_val.radius_50 is not None:
        untrained = f"{u_ref.radius_50:.1f} → {u_val.radius_50:.1f} (diff. {u_val.radius_50 - u_ref.radius_50:+.1f})"
    compared = f"{_branch(a)} → {_branch(b)}" if branches else f"ResNet → {scale_of(res, c.model)}"
    return ClaimRow(c, claim_statement(res, c), compared, None if ref is None else ref.radius_50,
                    None if val is None else val.radius_50, untrained=untrained, flags=tuple(flags))


def _accuracy_row(res: Results, c: Claim) -> ClaimRow:
    ref = res.models.get(str(res.baseline))
    val = res.models.get(c.model)
    return ClaimRow(c, claim_statement(res, c), f"ResNet → {scale_of(res, c.model)}",
                    None if ref is None else ref.top1.mean, None if val is None else val.top1.mean)


DIGITS = {"accuracy": 2, "localisation": 3, "erf": 1}


def claim_table(res: Results, section: str, family: str | None = None) -> list[dict[str, str]]:
    """One row per claim of ``section`` (of one ``family``, or all with confirmatory first); columns that hold
    nothing in these rows are left out."""
    build = {"accuracy": _accuracy_row, "localisation": _localisation_row, "erf": _erf_claim_row}[section]
    claims = sorted((c for c in res.claims if c.section == section and family in (None, c.family)),
                    key=lambda c: not c.confirmatory)
    rows = [build(res, c).table_row(DIGITS[section]) for c in claims]
    empty = [k for k in (rows[0] if rows else {}) if all(r[k] == "–" for r in rows)]
    return [{k: v for k, v in r.items() if k not in empty} for r in rows]


VERDICT_COLUMNS = ("claim", "verdict", "difference [judged interval]", "test vs 0", "d",
                   "about (target · R · df · method)")


def split_claim_table(rows: list[dict[str, str]]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """``claim_table`` rows as (the verdict columns, the claim with its values and baselines): two tables narrow
    enough to read."""
    verdicts = [{k: v for k, v in r.items() if k in VERDICT_COLUMNS} for r in rows]
    values = [{k: v for k, v in r.items() if k == "claim" or k not in VERDICT_COLUMNS} for r in rows]
    return verdicts, values


def claim_rows(res: Results, section: str) -> list[ClaimRow]:
    """The section's claims as ``ClaimRow`` (for checks and exports)."""
    build = {"accuracy": _accuracy_row, "localisation": _localisation_row, "erf": _erf_claim_row}[section]
    return [build(res, c) for c in res.claims if c.section == section]


def erf_blocks(res: Results, weights: str) -> list[str]:
    """Blocks with per-branch ERF rows at ``weights``, in file order."""
    return list(dict.fromkeys(r.tap.rsplit(".branch", 1)[0] for r in res.erf if r.weights == weights
                              and r.branch is not None))


def erf_points(res: Results, weights: str, block: str, rf: dict[tuple[str, str], float]) -> list[BranchPoint]:
    """The 50% ERF radius of every branch of ``block`` as points placed by theoretical receptive field (``rf``:
    (model, tap) -> px): a ResNet's one 3×3 path is its own kind, a Res2Net's last branch (identity) another."""
    out = []
    for r in res.erf:
        if r.weights != weights or r.branch is None or r.tap.rsplit(".branch", 1)[0] != block:
            continue
        scale = res.models[r.model].scale if r.model in res.models else 1
        kind = branch_kind(r.branch, scale, scale > 1)
        label = "3×3 path" if kind == "path" else f"branch {r.branch}" + (" (identity)" if kind == "identity" else "")
        out.append(BranchPoint(r.model, kind, rf[(r.model, r.tap)], r.radius_50, label, r.radius_50_low,
                               r.radius_50_high))
    return out


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


# ----------------------------------------------------------------------------------------------- the glossary
GLOSSARY_ANCHOR = "glossary"


def glossary(res: Results) -> dict[str, str]:
    """Term -> definition, for every term the page's text uses (numbers and rules from the file)."""
    d = ", ".join(f"{res.metric_label(k)} {v:g}" for k, v in res.verdict_rule.min_effect.items())
    out = {
        "d": f"the minimum meaningful effect of a metric, fixed in code before any result ({d})",
        "judged interval": "the interval a verdict is read from: Holm-adjusted for confirmatory claims, 95% for "
                           "exploratory ones; its level is given with it",
        "verdict": f"{res.verdict_rule.rule}",
        "Holm": f"{res.verdict_rule.correction}",
        "confirmatory": "a claim fixed before looking, judged within the Holm family (filled dots)",
        "exploratory": "a claim looked at afterwards, such as the images both models classify correctly, judged on "
                       "its unadjusted 95% interval (open dots)",
        "centre prior": f"a centred Gaussian map that ignores the image (σ = {res.prior.sigma_px:.1f} px, fitted on "
                        f"{res.prior.fitted_on}); {res.prior.pointing}. A model that does not beat it localises "
                        "nothing the framing of the photo does not give away",
        "uniform map": "a flat map: its energy in the box is the box's share of the image",
        "saturated": "an image-blind map already scores within d of the metric's ceiling of 1, so no model can "
                     "beat it by a meaningful margin",
        "size bucket": "objects by box area / image area: " + "; ".join(f"{k} {v}" for k, v in
                                                                       res.size_buckets.items()),
        "ERF": "effective receptive field: where the input moves a unit's output (Luo et al. 2016); r50 is the "
               "half-side of the centred square holding half of its mass",
        "RF": "theoretical receptive field: the input pixels a unit can see at all, from the network's layers",
        "branch": "branch 0 is the conv branch with the smallest receptive field, each later conv branch sees more, "
                  "the last one is the identity (average pool in stage blocks); the paper numbers them the other "
                  "way round. A ResNet block has one 3×3 path instead",
        "run": "one training of a model from its own seed; intervals over runs say how much a retraining moves a "
               "number",
    }
    for key, m in res.metrics.items():
        if m.why:
            out[SHORT_METRICS.get(key, key)] = m.why
    return out


def term(word: str, definitions: dict[str, str], key: str | None = None) -> str:
    """``word`` as a markdown link to the glossary whose hover text is its definition (``key``: the glossary entry
    when it differs from the word)."""
    text = definitions[key or word].replace('"', "'")
    return f'[{word}](#{GLOSSARY_ANCHOR} "{text}")'


PLACEMENT_WORDS = {"rf_centre": "RF centre (the claims)", "effective_centre": "effective centre",
                   "half_pixel": "half-pixel"}


def placement_table(res: Results) -> tuple[list[dict[str, str]], int]:
    """One row per confirmatory claim: its verdict and estimate under each placement of the maps; and how many
    claims get another verdict under some placement."""
    ps = res.placement_sensitivity
    if ps is None:
        return [], 0
    claims = {c.id: c for c in res.claims}
    rows = []
    for r in ps.rows:
        c = claims.get(r.id)
        row = {"claim": claim_title(res, c) if c is not None else r.id}
        for rule, words in PLACEMENT_WORDS.items():
            p = r.placements.get(rule)
            row[words] = "—" if p is None else f"{p.verdict} ({fmt(p.estimate, 4)})"
        row["verdict changes"] = "yes" if r.changes else "no"
        rows.append(row)
    return rows, sum(r.changes for r in ps.rows)
