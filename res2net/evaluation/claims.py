"""The claims, a step on top of the summary: the paper's statements with numbers, intervals and verdicts.

Localisation and accuracy claims judge comparisons the summary already bootstrapped; ERF claims judge the ERF
study's samples. Confirmatory claims are Holm-corrected as one family; exploratory ones use their 95% interval.
"""

from __future__ import annotations

from res2net.evaluation.protocol import PAPER, VERDICT_LAYER
from res2net.metrics import statistics as S
from res2net.metrics import table as T
from res2net.metrics.table import rounded as _r

__all__ = ["claims"]


def claims(res: dict, paired: dict, entries: dict, names: list[str], runs: int, erf_claims: list[dict],
           model_caveat: str, map_caveat: str) -> list[dict]:
    """The Claims page's statements with numbers, intervals and Holm-corrected verdicts (confirmatory family).

    The localisation and accuracy claims judge comparisons ``summarise`` already bootstrapped (``paired``); ``names``
    are the models with a verdict layer; the caveats say what the models and the verdict layer's maps are.
    """
    base = res["baseline"]
    if base is None:
        return []
    pending: list[dict] = []
    bl = res["baselines"]
    for name in names:
        if name == base:
            continue
        s = entries[name]["scale"]
        est, smp, n = paired[(name, "logits", "all", "all", "top1")]
        pending.append({"id": f"top1-{name}", "section": "accuracy", "paper": PAPER["accuracy"], "metric": "top1",
                        "model": name, "layer": "logits", "subset": "all", "family": "confirmatory",
                        "estimate": est, "samples": smp, "images": n,
                        "baseline_note": "", "caveat": f"s={s}; {model_caveat}"})
        ta = entries[name]["taps"][VERDICT_LAYER]["output"]
        for bucket, metrics in (("small", ("energy", "pointing")), ("large", ("coverage", "maxboxacc"))):
            for metric in metrics:
                for subset in ("all", "both correct"):
                    est, smp, n = paired[(name, VERDICT_LAYER, bucket, subset, metric)]
                    prior = bl[bucket][f"prior_{metric}"]
                    uni = bl[bucket]["uniform_energy"] if metric == "energy" else None
                    note = f"centred Gaussian prior: {prior}" + (f"; uniform map: {uni}" if uni is not None else "")
                    pending.append({
                        "id": f"{metric}-{bucket}-{name}" + ("-both-correct" if subset != "all" else ""),
                        "section": "localisation", "paper": PAPER[bucket], "metric": metric, "model": name,
                        "layer": f"{VERDICT_LAYER} output ({ta})", "subset": subset,
                        "family": "confirmatory" if subset == "all" else "exploratory", "estimate": est,
                        "samples": smp, "images": n, "baseline_note": note,
                        "caveat": f"{bucket} objects; {map_caveat}"})
    for c in erf_claims:
        pending.append({"id": c["id"], "section": "erf", "paper": PAPER[c["kind"]], "metric": "erf_radius",
                        "model": c["model"], "layer": c["layer"], "subset": "noise inputs", "family": "confirmatory",
                        "estimate": c["estimate"], "samples": c["samples"], "images": 0, "baseline_note": "",
                        "caveat": f"trained weights; ERF of the centre unit, {c['size']} px Gaussian noise"})
    confirm = [c for c in pending if c["family"] == "confirmatory"]
    decided = S.holm_verdicts([(c["estimate"], c["samples"], T.metric(c["metric"]).min_effect) for c in confirm])
    for c, d in zip(confirm, decided, strict=True):
        c.update(low=d["low"], high=d["high"], level=d["level"], verdict=d["verdict"])
    out = []
    for c in pending:
        smp = c.pop("samples")
        raw = S.percentile_ci(smp, c["estimate"], 0.95)
        d = T.metric(c["metric"]).min_effect
        if c["family"] == "exploratory":
            c.update(low=raw.low, high=raw.high, level=0.95, verdict=S.verdict(raw, d))
        c.update(metric=f"{c['metric']}: {T.metric(c['metric']).label}", low95=raw.low, high95=raw.high,
                 min_effect=d, runs=runs)
        for k in ("estimate", "low", "high", "low95", "high95"):
            c[k] = _r(c[k])
        c["level"] = round(float(c["level"]), 6)
        out.append(c)
    return out
