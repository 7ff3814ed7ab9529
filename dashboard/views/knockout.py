"""Knock-out: remove branches of a block on your own image and see the CAMs and the top-5 change at once; the block's
map split exactly by branch beside the total-gradient maps; the knock-out study by branch position and object size.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

import res2net
from dashboard import charts, placement
from dashboard.claims_text import fmt_interval
from dashboard.services import cached, knockout_cache, sources
from dashboard.state import DEFAULT_PAIR, branch_note, current_device, random_weights_notice, weights_mode
from res2net.analysis import cam
from res2net.evaluation.results import ResultsError
from res2net.viz import knockout_plots, plots

st.title("Branch knock-out")
st.caption("Remove branches of one block and watch what the model does without them. **Mean** replaces a branch by "
           "its average activation over training images (the fusion conv's BN stays in range); **zero** removes it. "
           "**Total** effect: in a normal block branch i also feeds branch i+1, which then sees the replacement too; "
           "**direct**: only the branch's own input to the 1x1 fusion conv is replaced.")
branch_note()


def top5_rows(before: np.ndarray, after: np.ndarray, names: list[str]) -> list[dict]:
    """The union of both top-5 lists with each class's probability before and after the knock-out."""
    ks = list(dict.fromkeys([*np.argsort(-before)[:5].tolist(), *np.argsort(-after)[:5].tolist()]))
    rank_a = {int(k): str(r + 1) for r, k in enumerate(np.argsort(-after)[:5])}
    return [{"class": names[k] if k < len(names) else f"class {k}", "p intact": round(float(before[k]), 4),
             "p knocked out": round(float(after[k]), 4), "change": round(float(after[k] - before[k]), 4),
             "rank after": rank_a.get(int(k), ">5")} for k in ks]


def image_part(source: sources.Source) -> None:
    models = res2net.list_models()
    c1, c2, c3 = st.columns(3)
    name = c1.selectbox("Model", models, index=models.index(DEFAULT_PAIR[1]), key="ko_model")
    lm = cached.load_model(name, weights_mode(), current_device())
    random_weights_notice(name, lm.note, "knockout")
    st.caption(f"`{name}` · {lm.label} (weights set in the sidebar and on the Models page).")
    infos = {i.name: i for i in res2net.block_infos(lm.model)}
    normal = [n for n, i in infos.items() if i.stype == "normal"]
    default = next((n for n in normal if n.startswith("layer3.")), normal[-1] if normal else next(iter(infos)))
    block = c2.selectbox("Block", list(infos), index=list(infos).index(default), key="ko_block",
                         format_func=lambda b: f"{b} ({infos[b].stype})")
    method = c3.selectbox("CAM method", list(cam.METHODS), key="ko_method")
    info = infos[block]
    means = knockout_cache.model_branch_means(name, lm.device, lm.weights)
    d1, d2 = st.columns(2)
    mode = d1.radio("Replace by", ["mean", "zero"] if means is not None else ["zero"], horizontal=True,
                    key="ko_mode", help="mean: the branch's per-channel mean over training images; zero: nothing.")
    if means is None:
        d1.caption("Mean replacement needs the embedded models' trained weights and the Tiny-ImageNet-100 train "
                    "split (the means come from its images); zero is offered instead.")
    effect = d2.radio("Effect", ["total", "direct"], horizontal=True, key="ko_effect",
                      disabled=not (info.kind == "res2net" and info.stype == "normal"),
                      help="Only a normal Res2Net block's branches feed each other; elsewhere both are the same.")
    st.markdown(f"**Knock out branches of `{block}`** ({info.stype} block, {info.num_branches} branch(es))")
    knocked = tuple(i for i, col in enumerate(st.columns(info.num_branches))
                    if col.checkbox(info.branch_label(i), key=f"ko_branch_{name}_{block}_{i}"))
    last = list(infos)[-1]
    taps = tuple(dict.fromkeys([block, last]))
    intact = knockout_cache.knocked_cams(source.data, name, lm.device, lm.weights, block, (), mode, effect, method,
                                         None, taps)
    after = (knockout_cache.knocked_cams(source.data, name, lm.device, lm.weights, block, knocked, mode, effect,
                                         method, intact.target, taps) if knocked else intact)
    names = cached.class_names(name)
    picture = cached.display_image(cached.model_input(source.data, name), name)
    size = picture.shape[:2]
    target = names[intact.target] if intact.target < len(names) else str(intact.target)
    st.caption(f"Maps explain the intact model's top-1 class, **{target}**, before and after; one colour scale per "
               "row, so a weaker map looks weaker. Maps are placed on the input by their cells' receptive-field "
               f"centres ({placement.REGISTRATION_RULE}).")
    for tap in taps:
        placed = [placement.place(lm.model, tap, r.maps[tap], size) for r in (intact, after)]
        vmax = max(float(np.nanmax(p)) for p in placed) or 1.0
        left, right = st.columns(2)
        left.image(plots.overlay(picture, placed[0], alpha=0.5, vmin=0.0, vmax=vmax), width="stretch",
                   caption=f"{tap} output · intact")
        right.image(plots.overlay(picture, placed[1], alpha=0.5, vmin=0.0, vmax=vmax), width="stretch",
                    caption=f"{tap} output · " + (f"without {', '.join(map(str, knocked))}" if knocked else "intact"))
    st.markdown("**Top-5 before and after**")
    st.dataframe(top5_rows(intact.probs, after.probs, names), hide_index=True, width="stretch")
    decomposition_part(source, name, lm, info, intact.target, means is not None)


def decomposition_part(source: sources.Source, name: str, lm: cached.LoadedModel, info: res2net.BlockInfo,
                       target: int, has_means: bool) -> None:
    st.subheader("The block's map, split exactly by branch")
    st.caption("In eval mode the fusion conv is linear and its BN affine, so the block's residual output is the sum of "
               "one contribution per branch plus a bias. Each branch's map is the class score's gradient at the block "
               "output times its contribution, summed over channels: the maps add up to the block's gradient x "
               "activation map. The total-gradient maps (branch output x its own gradient) do not: branch i's path "
               "through the later branches is counted again there.")
    centred = st.toggle("Centred form (each branch minus its training mean; the means move into the bias)",
                        key="ko_centred", disabled=not has_means)
    dec = knockout_cache.block_decomposition(source.data, name, lm.device, lm.weights, info.name, target,
                                             centred and has_means)
    labels = [info.branch_label(i) for i in range(info.num_branches)]
    parts = {lab: dec.parts[i] for i, lab in enumerate(labels)} | {"bias": dec.bias}
    charts.plotly_chart(knockout_plots.branch_maps_figure(parts, "Exact per-branch contributions (one colour scale)"),
                    key="ko_parts", width="stretch")
    total = {lab: dec.total_gradient[i] for i, lab in enumerate(labels)}
    charts.plotly_chart(knockout_plots.branch_maps_figure(total, "Total-gradient maps of the same branches"),
                    key="ko_total", width="stretch")
    summed = dec.parts.sum(0) + dec.bias
    charts.plotly_chart(knockout_plots.branch_maps_figure(
        {"block map": dec.residual, "Σ parts + bias": summed, "Σ total-gradient + bias": dec.total_gradient.sum(0)
         + dec.bias}, "The sum check"), key="ko_sum", width="stretch")
    gap = float(np.abs(dec.total_gradient.sum(0) + dec.bias - dec.residual).max())
    st.caption(f"Sum check: max |Σ parts + bias − block map| = **{dec.sum_error:.1e}** (float rounding); the "
               f"total-gradient maps miss it by up to {gap:.3g}. Raw grids at the block's resolution, one square per "
               "cell; red adds to the class score, blue takes away.")


def study_part() -> None:
    st.subheader("The knock-out study: which branch serves which object size")
    try:
        res = cached.results()
    except ResultsError as exc:
        st.error(f"The results file cannot be used: {exc}")
        return
    if res is None or "knockout" not in res:
        st.info("No knock-out study in the results file yet: `python -m res2net.evaluate` runs it.")
        return
    ko = res["knockout"]
    hypothesis = ko["hypothesis"].removeprefix("stated before any run: ")  # the label below says so already
    st.markdown(f"**Hypothesis (stated before any run).** {hypothesis}.  \n**Lesion.** {ko['lesion']}.  \n"
                f"**Harm.** {ko['harm']}. {ko['images']} val images, {ko['runs']} runs per model; intervals: "
                f"{ko['intervals']}.")
    models = list(dict.fromkeys(r["model"] for r in ko["rows"]))
    c1, c2 = st.columns(2)
    model = c1.selectbox("Model", models, index=len(models) - 1, key="ko_study_model")
    metrics = list(ko["min_effect"])
    metric = c2.selectbox("Metric", metrics, key="ko_study_metric")
    charts.plotly_chart(knockout_plots.harm_by_size_figure(ko["rows"], model, metric), key="ko_heat", width="stretch")
    blocks = list(dict.fromkeys(r["block"] for r in ko["interactions"] if r["model"] == model))
    block = st.selectbox("Block", blocks, index=blocks.index(ko["claims"][0]["block"]) if ko["claims"]
                         and ko["claims"][0]["block"] in blocks else 0, key="ko_study_block")
    charts.plotly_chart(knockout_plots.interaction_figure(ko["interactions"], block, metric, ko["min_effect"][metric]),
                    key="ko_inter", width="stretch")
    st.dataframe([{"model": r["model"], "branch": r["label"],
                   "large minus small (95%)": fmt_interval(r["interaction"], r["low"], r["high"]),
                   "verdict (exploratory)": r["verdict"]} for r in ko["interactions"]
                  if r["block"] == block and r["metric"] == metric], hide_index=True, width="stretch")
    if "scale_sweep" in res:
        charts.plotly_chart(knockout_plots.scale_sweep_figure(res["scale_sweep"]), key="ko_sweep", width="stretch")


image = None
source = sources.pick_image("knockout")
if source is not None:
    image = sources.validated(source)
if image is not None:
    image_part(source)
study_part()
