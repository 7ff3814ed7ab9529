"""The Claims page's knock-out section: the pre-stated branch-by-size hypothesis with its verdicts, the ResNet
reference, and the scale sweep beside the paper's trend, all read from the results file."""

from __future__ import annotations

import streamlit as st

from dashboard import charts
from dashboard.claims_text import VERDICT_ICONS, fmt_interval
from res2net.evaluation.results import Results
from res2net.viz import knockout_plots


def knockout_section(res: Results) -> None:
    """Render the section; a results file without the study says how to get one."""
    st.subheader("4 · Branch knock-out and the scale sweep")
    ko = res.knockout
    if ko is None:
        st.info("This results file has no knock-out study (`python -m res2net.evaluate` on the embedded family "
                "writes one).")
        return
    st.markdown("> *Res2Net's hierarchical branches represent features at several scales* (paper §3.1): if so, "
                "removing a large-receptive-field branch should hurt large objects more, and a small one small "
                "objects more.")
    hypothesis = ko.hypothesis.removeprefix("stated before any run: ")  # the label says so already
    st.markdown(f"**Hypothesis, stated before any run:** {hypothesis}. **Lesion:** {ko.lesion}. "
                f"**Interaction:** {ko.interaction}; {ko.images} val images, {ko.runs} runs, "
                f"{ko.mean_images} train images for the means.")
    if ko.claims:
        st.table([{"claim": c.id, "model": c.model, "block · metric": f"{c.block} · {c.metric}",
                   "contrast": c.contrast,
                   "estimate [judged interval] (level)": f"{fmt_interval(c.estimate, c.low, c.high)} "
                                                         f"({round(c.level, 4)})",
                   "95% interval": fmt_interval(c.estimate, c.low95, c.high95),
                   "d": f"{c.min_effect:g}", "verdict": f"{VERDICT_ICONS[c.verdict]} {c.verdict}",
                   "small / large images": f"{c.small} / {c.large}"} for c in ko.claims])
        # a plain table wraps its cells: nine columns fit 1280 px without scrolling sideways
        st.caption("Holm-corrected over these knock-out claims (their own family); the rule is the page's.")
    st.markdown("**Reference: the ResNet's single 3x3 removed** (large minus small harm at the same block)")
    st.dataframe([{"model": r.model, "block": r.block, "metric": r.metric,
                   "interaction (95%)": fmt_interval(r.interaction, r.low, r.high),
                   "verdict (exploratory)": r.verdict} for r in ko.resnet_reference],
                 hide_index=True, width="stretch")
    sweep = res.scale_sweep
    if sweep is not None:
        charts.plotly_chart(knockout_plots.scale_sweep_figure(sweep), key="claims_sweep", width="stretch")
        ours = "rises" if sweep.top1_rises_with_s else "does not rise monotonically"
        paper = "rises" if sweep.paper_top1_rises_with_s else "does not rise monotonically"
        st.caption(f"Our top-1 {ours} with s; the paper's {paper} ({sweep.paper}). Intervals: "
                   f"{sweep.intervals}.")
