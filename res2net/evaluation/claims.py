"""The claims, a step on top of the per-image rows: the paper's statements with numbers, intervals and verdicts.

Each claim is a (runs x images) array of paired differences judged by ``judging``: about the architecture with two
runs or more (the weights interval beside it), about these weights with one. A localisation claim is the Res2Net's
gain over an image-blind control minus the ResNet's gain over the same control (mismatched boxes; the
spread-matched centre prior), not a raw score; a metric some control saturates (>= ``SATURATED_AT``) and MaxBoxAcc
(no control scored) are exploratory. Confirmatory claims form one Holm family; exploratory ones use their 95%
interval. The ERF claims are exploratory: what training adds (trained minus random init of the same seed), per run,
with a t interval over runs, on three probes (the study's noise, noise at the model's own input size, its own val
images).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from res2net.evaluation.control_scores import CONTROL_METRICS, CONTROLS
from res2net.evaluation.judging import ALPHA, SATURATED_AT, Pending, judge, run_matrix, sig
from res2net.evaluation.protocol import PAPER, SENSITIVITY_PLACEMENTS, VERDICT_LAYER
from res2net.metrics import controls as C
from res2net.metrics import effect_size as E
from res2net.metrics import inference as I
from res2net.metrics import statistics as S
from res2net.metrics import table as T
from res2net.metrics.table import rounded as _r

__all__ = ["LOCALISATION", "CONTROL_WORDS", "claims", "inference_info", "heldout_hits", "placement_sensitivity",
           "PLACEMENT_RULE"]

LOCALISATION = (("small", "energy"), ("small", "pointing"), ("large", "coverage"), ("large", "maxboxacc"))
CONTROL_WORDS = {"mismatch": "mismatched boxes (same size bucket)", "spread": "spread-matched centre prior"}
HELDOUT_FRACTION = 0.2


def heldout_hits(hits: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(runs, images) MaxBoxAcc hits (0/1) of each run at the threshold chosen on held-out images of ``mask`` (a
    seeded fifth of each class, Choe et al.); NaN on held-out images and outside ``mask``."""
    held = C.heldout_split(labels, HELDOUT_FRACTION, seed=0)
    sel = np.flatnonzero(mask)
    out = np.full(hits.shape[:2], np.nan)
    for r in range(hits.shape[0]):
        if held[sel].any() and not held[sel].all():
            out[r, sel] = C.boxacc_at_heldout_threshold(hits[r, sel], held[sel])[1]
    return out


def _pending(fields: dict, diffs: np.ndarray, keep: np.ndarray, labels: np.ndarray, d: float, confirmatory: bool,
             ) -> Pending | None:
    """The claim, or None when some run keeps no image or the kept images span fewer than two classes (no
    class-clustered error exists; a small dataset run can have an empty bucket)."""
    keep = keep & np.isfinite(diffs)
    if not keep.any(1).all() or np.unique(labels[keep.any(0)]).size < 2:
        return None
    fields = {**fields, "family": "confirmatory" if confirmatory else "exploratory",
              "images": int(round(float(keep.sum(1).mean())))}
    return Pending(fields, np.where(keep, diffs, 0.0), keep, labels, d, confirmatory)


def _localisation(res: dict, arrays: dict, name: str, base: str, runs: dict, entries: dict, labels: np.ndarray,
                  buckets: np.ndarray, centre: np.ndarray, map_caveat: str) -> list[Pending | None]:
    ta, tb = (entries[n]["taps"][VERDICT_LAYER]["output"] for n in (name, base))
    ra, rb = runs[name], runs[base]
    correct = run_matrix(arrays, name, ra, "correct").astype(bool) & run_matrix(arrays, base, rb, "correct")\
        .astype(bool)
    out = []
    for bucket, metric in LOCALISATION:
        sel = np.broadcast_to(buckets == bucket, correct.shape)
        d = E.min_effect(metric, bucket)
        prior = res["baselines"][bucket][f"prior_{metric}"]
        common = {"section": "localisation", "paper": PAPER[bucket], "metric": f"{metric}: {T.metric(metric).label}",
                  "model": name, "layer": f"{VERDICT_LAYER} output ({ta})", "bucket": bucket,
                  "caveat": f"{bucket} objects; {map_caveat}"}
        if metric == "maxboxacc":
            xa = heldout_hits(np.stack([arrays[f"{name}/{r}/{ta}/{metric}"] for r in ra]), labels, sel[0])
            xb = heldout_hits(np.stack([arrays[f"{base}/{r}/{tb}/{metric}"] for r in rb]), labels, sel[0])
            why = ("saturated: the centred prior scores " + f"{prior}") if prior is not None and \
                prior >= SATURATED_AT else "no image-blind control is scored for MaxBoxAcc"
            out.append(_pending({**common, "id": f"{metric}-{bucket}-{name}", "subset": "all", "control": "none",
                                 "baseline_note": f"centred Gaussian prior: {prior}",
                                 "note": f"raw difference, threshold chosen on held-out images; exploratory: {why}"},
                                xa - xb, sel.copy(), labels, d, False))
            continue
        xa, xb = run_matrix(arrays, name, ra, f"{ta}/{metric}"), run_matrix(arrays, base, rb, f"{tb}/{metric}")
        ctl = {c: (run_matrix(arrays, name, ra, f"{ta}/{c}_{metric}"),
                   run_matrix(arrays, base, rb, f"{tb}/{c}_{metric}"))
               for c in CONTROLS if f"{name}/{ra[0]}/{ta}/{c}_{metric}" in arrays}
        means = {c: [float(np.nanmean(v[sel])) for v in pair] for c, pair in ctl.items()}
        ceiling = max([prior or 0.0] + [m for pair in means.values() for m in pair])
        saturated = ceiling >= SATURATED_AT
        note = "; ".join(f"{CONTROL_WORDS[c]}: {m[1]:.3f} → {m[0]:.3f}" for c, m in means.items())
        note = f"image-blind controls, ResNet → Res2Net: {note}; centred Gaussian prior: {prior}" if note else \
            f"centred Gaussian prior: {prior}"
        for c, (ca, cb) in ctl.items():
            gain = (xa - ca) - (xb - cb)
            why = f"saturated: a control scores {ceiling:.3f}" if saturated else ""
            out.append(_pending({**common, "id": f"{metric}-{bucket}-{name}-over-{c}", "subset": "all",
                                 "control": c, "baseline_note": note, "note": why}, gain, sel.copy(), labels, d,
                                not saturated))
            if c != "mismatch":
                continue
            for subset, keep in (("both correct", sel & correct), ("boxes holding the centre", sel & centre[None]),
                                 ("off-centre boxes", sel & ~centre[None])):
                if keep.any(1).all():
                    suffix = {"both correct": "both-correct", "boxes holding the centre": "centre",
                              "off-centre boxes": "off-centre"}[subset]
                    out.append(_pending({**common, "id": f"{metric}-{bucket}-{name}-over-{c}-{suffix}",
                                         "subset": subset, "control": c, "baseline_note": note, "note": ""},
                                        gain, keep, labels, d, False))
        out.append(_pending({**common, "id": f"{metric}-{bucket}-{name}-raw", "subset": "all", "control": "none",
                             "baseline_note": note, "note": "raw difference, no control subtracted"},
                            xa - xb, sel.copy(), labels, d, False))
    return out


PROBE_WORDS = {"own-size noise": "Gaussian noise at the model's input size",
               "own val images": "the model's own val images at its input size"}


def _erf_claim(c: dict) -> dict:
    """An ERF claim: per run, trained minus random init (same seed) of a radius difference; t over runs (R - 1
    df), exploratory, judged at 95%."""
    v = np.asarray(c["values"], dtype=np.float64)
    r = int(v.size)
    d = E.min_effect("erf_radius")
    se = float(v.std(ddof=1) / np.sqrt(r)) if r >= 2 else float("nan")
    ev = I.Evidence("architecture", r, "t over runs (R - 1 df): per run, trained minus random init of the same "
                    "seed; radii interpolated between whole pixels", float(v.mean()), se, float(r - 1),
                    available=r >= 2, note="" if r >= 2 else "one run: no interval over runs")
    iv = ev.interval(0.95)
    probe = PROBE_WORDS.get(c["probe"], c["probe"].replace("noise", "Gaussian noise"))
    border = "; cut by the input's border (radii are lower bounds)" if c["border"] else ""
    return {"id": c["id"], "section": "erf", "paper": PAPER[c["kind"]], "metric": f"erf_radius: "
            f"{T.metric('erf_radius').label}", "model": c["model"], "layer": c["layer"], "subset": c["probe"],
            "family": "exploratory", "estimate": _r(ev.estimate), "low": _r(iv.low) if r >= 2 else None,
            "high": _r(iv.high) if r >= 2 else None, "low95": _r(iv.low) if r >= 2 else None,
            "high95": _r(iv.high) if r >= 2 else None, "level": 0.95, "min_effect": d,
            "verdict": S.verdict((iv.low, iv.high), d) if r >= 2 else "inconclusive",
            "runs": r, "images": 0, "baseline_note": "",
            "caveat": f"trained {_r(c['trained'])} px, random init {_r(c['init'])} px; ERF of the centre unit on "
                      f"{probe}{border}",
            "target": "architecture", "df": float(r - 1) if r >= 2 else None, "method": ev.method,
            "resamples": 0, "mc_error_low": 0.0, "mc_error_high": 0.0, "p_zero": sig(ev.p_zero()),
            "p_zero_holm": None, "excludes_zero": bool(r >= 2 and (iv.low > 0 or iv.high < 0)), "tested": False,
            "holm_rank": None, "control": "random init", "bucket": None,
            "sensitivity": E.sensitivity(iv.low, iv.high, d) if r >= 2 else {},
            "weights": None,
            "note": "exploratory: what training adds to the architecture's ERF, not a localisation claim"}


def claims(res: dict, arrays: dict[str, np.ndarray], entries: dict, names: list[str], runs: dict[str, list[str]],
           labels: np.ndarray, buckets: np.ndarray, centre: np.ndarray, erf_claims: list[dict], model_caveat: str,
           map_caveat: str, extra: Sequence[Pending] = ()) -> list[dict]:
    """The Claims page's statements, judged (``judging.judge``): accuracy and localisation from the per-run arrays
    of the images every run scored (``labels`` their classes, ``buckets`` their size buckets, ``centre`` whether a
    box holds the image centre), then the ERF study's claims (exploratory); ``extra``: more claims for the same
    Holm family (the knock-out study's)."""
    base = res["baseline"]
    if base is None:
        return []
    pending: list[Pending | None] = []
    for name in names:
        if name == base:
            continue
        s = entries[name]["scale"]
        diffs = 100.0 * (run_matrix(arrays, name, runs[name], "correct") - run_matrix(arrays, base, runs[base],
                                                                                        "correct"))
        pending.append(_pending({"id": f"top1-{name}", "section": "accuracy", "paper": PAPER["accuracy"],
                                 "metric": f"top1: {T.metric('top1').label}", "model": name, "layer": "logits",
                                 "subset": "all", "bucket": "all", "control": "none", "baseline_note": "",
                                 "caveat": f"s={s}; {model_caveat}", "note": ""},
                                diffs, np.ones(diffs.shape, bool), labels, E.min_effect("top1", "all"), True))
        pending += _localisation(res, arrays, name, base, runs, entries, labels, buckets, np.asarray(centre, bool),
                                 map_caveat)
    out = judge([p for p in pending if p is not None] + list(extra))
    out += [_erf_claim(c) for c in erf_claims]
    return out


PLACEMENT_RULE = ("rf_centre: cell i at its receptive-field centre start + stride * i (the claims); effective_centre: "
                  "at the gradient centroid of diagonal cell (i, i) over the probe images (|d sum_c T / d input|, "
                  "one backward per row); half_pixel: the cells spread evenly over the input (a plain resize). Under "
                  "each placement the verdict layer's maps and both controls are rescored and the whole family is "
                  "judged again")


def _placed(arrays: dict[str, np.ndarray], entries: dict, names: list[str], runs: dict[str, list[str]], rule: str
            ) -> dict[str, np.ndarray] | None:
    """``arrays`` with the verdict layer's map scores (and their controls) replaced by those placed by ``rule``;
    None when the rows do not hold that placement."""
    keys = [*CONTROL_METRICS, *(f"{c}_{m}" for c in CONTROLS for m in CONTROL_METRICS)]
    view = dict(arrays)
    for name in names:
        tap = entries[name]["taps"][VERDICT_LAYER]["output"]
        for run in runs[name]:
            for k in keys:
                alt = f"{name}/{run}/{tap}/{rule}/{k}"
                if alt not in arrays:
                    return None
                view[f"{name}/{run}/{tap}/{k}"] = arrays[alt]
    return view


def placement_sensitivity(judged: list[dict], res: dict, arrays: dict[str, np.ndarray], entries: dict,
                          names: list[str], runs: dict[str, list[str]], labels: np.ndarray, buckets: np.ndarray,
                          centre: np.ndarray, extra: Sequence[Pending] = ()) -> list[dict]:
    """Each confirmatory claim of ``judged`` (the claims at RF centres) beside its verdict when the verdict layer's
    maps are placed at their effective centres and spread half-pixel, each placement's family judged whole."""
    def cell(c: dict) -> dict:
        return {"estimate": c["estimate"], "low": c["low"], "high": c["high"], "verdict": c["verdict"],
                "family": c["family"]}

    rows = {c["id"]: {"id": c["id"], "model": c["model"], "metric": c["metric"].split(":")[0],
                      "bucket": c.get("bucket"), "control": c.get("control", "none"),
                      "placements": {"rf_centre": cell(c)}}
            for c in judged if c["family"] == "confirmatory"}
    for rule in SENSITIVITY_PLACEMENTS:
        view = _placed(arrays, entries, names, runs, rule)
        if view is None:
            return []
        for c in claims(res, view, entries, names, runs, labels, buckets, centre, [], "", "", extra):
            if c["id"] in rows:
                rows[c["id"]]["placements"][rule] = cell(c)
    for r in rows.values():
        r["changes"] = len({p["verdict"] for p in r["placements"].values()}) > 1
    return list(rows.values())


def inference_info(runs: int, confirmatory: int, controls: bool) -> dict:
    """What the results file says about how its claims were judged."""
    target = "architecture" if runs >= 2 else "weights"
    return {
        "confirmatory_target": target,
        "targets": {"weights": "these trained weights: classes and images are the random part (class bootstrap, "
                               f">= {I.MIN_RESAMPLES} resamples, Monte-Carlo error of each end)",
                    "architecture": "training runs are the top level: per-run means, t with Satterthwaite df from "
                                    "the between-run spread (R - 1) and the image/class error all runs share "
                                    "(G - 1); never a bootstrap over runs"},
        "runs": runs,
        "single_run": "" if runs >= 2 else I.ONE_RUN_NOTE,
        "family": f"one Holm family over the {confirmatory} confirmatory claims: ranked by the p-value of their "
                  f"best-supported decision, the k-th of m judged on its 1 - {2 * ALPHA:g}/(m - k) interval; the "
                  "first inconclusive one stops the procedure and later ones are 'not tested'",
        "knockout": "the knock-out study's confirmatory claims (direct lesions at layer1 and layer2) are in this "
                    "family, judged like every architecture claim; its per-branch rows stay exploratory",
        "test_against_zero": "two-sided p against 0 of the evidence the verdict uses, raw and Holm-adjusted over the "
                             "family; 'excludes_zero': whether the judged interval excludes 0",
        "controls": ("localisation claims are gains over image-blind controls at the verdict layer: the map scored "
                     "against another image's box from the same size bucket (seeded derangement within each fixed "
                     "batch), and a centred Gaussian with the map's own spread; the claim is the Res2Net's gain "
                     "minus the ResNet's") if controls else "no image-blind controls in these rows",
        "saturation": f"a metric some control or the centred prior scores >= {SATURATED_AT} in a bucket is not "
                      "confirmatory (no room above the control)",
        "flat_maps": C.FLAT_MAP_RULE,
        "maxboxacc": "MaxBoxAcc claims use each run's threshold chosen on a held-out fifth of each class (Choe et "
                     "al., CVPR 2020) and are reported on the other images",
        "sensitivity": "the whole family rejudged at d/2 and 2d (each claim's 'sensitivity')",
    }
