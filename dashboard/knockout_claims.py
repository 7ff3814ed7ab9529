"""The Claims page's knock-out section: the pre-stated branch-by-size hypothesis with its verdicts, the ResNet
reference, and the scale sweep beside the paper's trend, all read from the results file. The how and why are
folded; the table and the sweep stay open."""

from __future__ import annotations

import streamlit as st

from dashboard import charts
from dashboard.claims_text import fmt_interval, knockout_title
from res2net.evaluation.results import Results, TrendTest
from res2net.viz import knockout_plots


def knockout_section(res: Results) -> None:
    """Render the section; a results file without the study says how to get one."""
    st.header("4 · Branch knock-out and the scale sweep")
    ko = res.knockout
    if ko is None:
        st.info("This results file has no knock-out study (`python -m res2net.evaluate` on the embedded family "
                "writes one).")
        return
    st.markdown("If branches serve scales, removing a large-RF branch should hurt large objects more than small "
                "ones, and a small-RF branch the reverse.")
    if ko.claims:
        st.table([{"claim": knockout_title(c), "block": c.block, "contrast": c.contrast,
                   "difference [judged interval]": "not judged (Holm stopped first)" if c.low is None else
                   f"{fmt_interval(c.estimate, c.low, c.high)} at {100 * c.level:.1f}%",
                   "95% interval": fmt_interval(c.estimate, c.low95, c.high95),
                   "d": f"{c.min_effect:g}", "verdict": c.verdict,
                   "lesion strength (s−2 / 0)": "–" if not c.strength else
                   f"{c.strength.get('branch s-2', float('nan')):.3f} / {c.strength.get('branch 0', float('nan')):.3f}",
                   "small / large images": f"{c.small} / {c.large}"} for c in ko.claims])
        st.caption("Judged in the one Holm family with every other claim (sections 1–3). Lesion strength: "
                   "||knocked out − intact|| / ||intact|| of the block's output, mean over images and runs.")
    hypothesis = ko.hypothesis.removeprefix("stated before any run: ")
    with st.expander("The hypothesis (stated before any run), the lesion, and the ResNet reference"):
        st.markdown(f"**Hypothesis.** {hypothesis}.  \n**Lesion.** {ko.lesion}.  \n**Interaction.** "
                    f"{ko.interaction}; {ko.images} val images, {ko.runs} runs, {ko.mean_images} train images for the "
                    "means. The confirmatory claims are in the one Holm family with every other claim.")
        st.markdown("**Every lesion beside its control** (large minus small harm; the random channel group has one "
                    "branch's width; the ResNet's 3×3 removed whole and a random quarter of it)")
        st.dataframe([{"model": r.model, "block": r.block, "lesion": r.label, "metric": r.metric,
                       "interaction (95%)": fmt_interval(r.interaction, r.low, r.high),
                       "strength": "–" if r.strength is None else f"{r.strength:.3f}",
                       "verdict (exploratory)": r.verdict} for r in ko.interactions if r.metric != "logprob"],
                     hide_index=True, width="stretch")
    sweep = res.scale_sweep
    if sweep is not None:
        charts.plotly_chart(knockout_plots.scale_sweep_figure(sweep), key="claims_sweep", width="stretch")
        paper = "rises" if sweep.paper_top1_rises_with_s else "does not rise monotonically"
        t = sweep.top1_trend
        ours = f"our top-1: {_trend_text(t)}" if t is not None else \
            ("our mean top-1 " + ("rises" if sweep.top1_rises_with_s else "does not rise monotonically") + " with s")
        if sweep.top1_trend_res2net is not None:
            ours += f"; among the Res2Nets alone (s ≥ 2): {_trend_text(sweep.top1_trend_res2net)}"
        st.caption(f"{ours[0].upper()}{ours[1:]}; the paper's {paper} with s (one run per s). Both top-1 panels span "
                   "the same number of points, so their slopes compare.")
        with st.expander("Where the paper's numbers come from"):
            st.markdown(f"{sweep.paper}. Intervals: {sweep.intervals}.")


def _trend_text(t: TrendTest) -> str:
    """'slope [low, high] points per doubling of s (t over runs, df ..): words'."""
    df = "–" if t.df is None else t.df
    return f"{fmt_interval(t.slope, t.low, t.high, 2)} points per doubling of s (t over runs, df {df}): {t.words}"
