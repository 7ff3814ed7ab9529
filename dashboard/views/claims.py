"""Claims: the paper's statements, each next to this project's measurement on the embedded family, with a verdict."""

from __future__ import annotations

import streamlit as st

from dashboard import cached
from dashboard.state import branch_note, require

st.title("Claims")
(plots,) = require("plots")
st.caption("Each statement of the Res2Net paper beside our measurement on the matched embedded family "
           "(Tiny-ImageNet-100, same recipe for every model). Verdicts come from 95% bootstrap intervals: "
           "'supported', 'not supported' or 'inconclusive at this sample size'.")

res = cached.results()
if res is None:
    st.info("No evaluation results yet. Generate them with `python -m res2net.evaluate` (needs the Tiny-ImageNet-100 "
            f"data folder); it writes `{cached.RESULTS_FILE.relative_to(cached.REPO_ROOT)}`, which this page reads.")
    st.stop()

models = res.get("models", {})
st.header("1 · Accuracy of the matched family")
st.markdown("> *Res2Net improves accuracy over ResNet at similar parameters and FLOPs* (paper, Tables 1-3).")
acc_rows = [{"model": n, "top-1": m.get("top1"), "top-5": m.get("top5"), "params (M)": m.get("params_m"),
             "GMACs": m.get("gmacs")} for n, m in models.items()]
if acc_rows:
    st.dataframe(acc_rows, hide_index=True, width="stretch")
for v in res.get("verdicts", {}).get("accuracy", []) if isinstance(res.get("verdicts"), dict) else []:
    st.markdown(f"- {v}")

st.header("2 · Localisation by object size")
st.markdown("> *Res2Net's Grad-CAM maps are more concentrated on small objects and cover more of large objects* "
            "(paper §4.5, Fig. 4). Each number is shown beside its chance level (a uniform map).")
if hasattr(plots, "localisation_by_size_figure"):
    st.plotly_chart(plots.localisation_by_size_figure(res), key="claims_loc", width="stretch")
for v in (res.get("verdicts", {}) or {}).get("localisation", []) if isinstance(res.get("verdicts"), dict) else []:
    st.markdown(f"- {v}")

st.header("3 · Receptive field growth across branches")
branch_note()
st.markdown("> *Each later branch of a block sees a larger receptive field*; the effective receptive field should "
            "grow from branch 0 to branch s-2.")
if hasattr(plots, "erf_growth_figure"):
    st.plotly_chart(plots.erf_growth_figure(res), key="claims_erf", width="stretch")
for v in (res.get("verdicts", {}) or {}).get("erf", []) if isinstance(res.get("verdicts"), dict) else []:
    st.markdown(f"- {v}")

with st.expander("All numbers (JSON)"):
    st.json(res, expanded=False)
st.download_button("Results (JSON)", cached.RESULTS_FILE.read_bytes(), cached.RESULTS_FILE.name, "application/json")
