"""Claims: the paper's statements, each next to this project's measurement on the embedded family, with a verdict."""

from __future__ import annotations

import streamlit as st

from dashboard import cached
from dashboard.state import branch_note
from res2net import localize, plots

st.title("Claims")
st.caption("Each statement of the Res2Net paper beside our measurement on the matched embedded family "
           "(Tiny-ImageNet-100, one training recipe for every model). Verdicts come from 95% bootstrap intervals "
           f"of the difference to the baseline: {', '.join(repr(v) for v in localize.VERDICTS)}.")

res = cached.results()
if res is None:
    st.info("No evaluation results yet. Generate them with `python -m res2net.evaluate` (it needs the "
            "Tiny-ImageNet-100 data folder); it writes "
            f"`{cached.RESULTS_FILE.relative_to(cached.REPO_ROOT)}`, which this page reads.")
    st.stop()


def as_rows(block: object, key: str = "model") -> list[dict]:
    """A results section as table rows, whether stored as a list of rows or as a dict keyed by model."""
    if isinstance(block, list):
        return [r for r in block if isinstance(r, dict)]
    if isinstance(block, dict):
        return [{key: k, **v} if isinstance(v, dict) else {key: k, "value": v} for k, v in block.items()]
    return []


def verdict_lines(section: str) -> None:
    """Verdicts stored with the results, recomputed from their intervals where the interval is given."""
    for v in as_rows((res.get("verdicts") or {}).get(section) if isinstance(res.get("verdicts"), dict) else None):
        ci = v.get("diff_ci") or v.get("ci")
        text = localize.verdict(ci) if ci else v.get("verdict", "")
        st.markdown(f"- **{text}** — {v.get('claim') or v.get('text') or ''} {v.get('detail', '')}")


st.header("1 · Accuracy of the matched family")
st.markdown("> *Res2Net improves accuracy over ResNet at similar parameters and FLOPs* (paper, Tables 1-3).")
models = as_rows(res.get("models") or res.get("accuracy"))
if models:
    keep = ("model", "top1", "top5", "top1_ci", "params", "params_m", "gmacs", "scale", "seed")
    st.dataframe([{k: r[k] for k in keep if k in r} for r in models], hide_index=True, width="stretch")
verdict_lines("accuracy")

st.header("2 · Localisation by object size")
st.markdown("> *Res2Net's Grad-CAM maps concentrate on small objects and cover more of large objects* "
            "(paper §4.5, Fig. 4). Every number stands beside its chance level: a uniform map's energy in the box "
            "is the box's share of the image.")
loc = as_rows(res.get("localisation") or res.get("localization"))
metrics = sorted({r.get("metric", "energy inside the box") for r in loc})
for metric in metrics:
    rows = [r for r in loc if r.get("metric", "energy inside the box") == metric and {"bucket", "mean"} <= set(r)]
    if rows:
        st.plotly_chart(plots.localisation_by_size_figure(rows, metric=metric), key=f"claims_loc_{metric}",
                        width="stretch")
verdict_lines("localisation")

st.header("3 · Receptive field growth across branches")
branch_note()
st.markdown("> *Each later branch of a normal block sees a larger receptive field*: the effective receptive field "
            "should grow from branch 0 to branch s-2.")
erf_rows = as_rows(res.get("erf"))
blocks: dict[str, dict[str, dict]] = {}
for r in erf_rows:
    if {"tap", "model", "branch", "radius_50"} <= set(r):
        block = r["tap"].rsplit(".branch", 1)[0]
        blocks.setdefault(block, {}).setdefault(r["model"], {})[f"branch {r['branch']}"] = r
for col, (block, per_model) in zip(st.columns(max(1, len(blocks))), blocks.items(), strict=False):
    col.plotly_chart(plots.grouped_branch_bars(per_model, "radius_50", title=f"50% ERF radius (px), {block}"),
                     key=f"claims_erf_{block}", width="stretch")
if erf_rows:
    st.dataframe(erf_rows, hide_index=True, width="stretch")
verdict_lines("erf")

with st.expander("All numbers (JSON)"):
    st.json(res, expanded=False)
st.download_button("Results (JSON)", cached.RESULTS_FILE.read_bytes(), cached.RESULTS_FILE.name, "application/json")
st.caption("Regenerate with `python -m res2net.evaluate`; the command reproduces this file exactly.")
