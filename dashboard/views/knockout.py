"""Knock-out: remove branches of a block on your own image and see the CAMs and the top-5 change at once; the block's
map split exactly by branch beside the total-gradient maps; the knock-out study by branch position and object size.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

import res2net
from dashboard import charts, placement
from dashboard.claims_text import fmt_interval
from dashboard.services import analyses, knockout_cache, model_store, photos, sources, study_data
from dashboard.state import (
    BRANCH_NOTE,
    DEFAULT_PAIR,
    KEEP,
    PERSIST,
    current_device,
    random_weights_notice,
    settle,
    weights_mode,
)
from res2net.analysis import cam
from res2net.data import images
from res2net.evaluation.results import ResultsError
from res2net.geometry import registration
from res2net.viz import branch_plots, knockout_plots, plots

st.title("Branch knock-out", help="**Mean** replaces a branch by its average activation over training images (the "
         "fusion conv's BN stays in range); **zero** removes it. **Total** effect: in a normal block branch i also "
         "feeds branch i+1, which then sees the replacement too; **direct**: only the branch's own input to the 1×1 "
         "fusion conv is replaced.\n\n" + BRANCH_NOTE)
st.caption("Remove branches of one block and see what the model does without them.")


def top5_rows(before: np.ndarray, after: np.ndarray, names: list[str]) -> list[dict]:
    """The union of both top-5 lists with each class's probability before and after the knock-out."""
    ks = list(dict.fromkeys([*np.argsort(-before)[:5].tolist(), *np.argsort(-after)[:5].tolist()]))
    rank_a = {int(k): str(r + 1) for r, k in enumerate(np.argsort(-after)[:5])}
    return [{"class": names[k] if k < len(names) else f"class {k}", "p intact": f"{float(before[k]):.4f}",
             "p knocked out": f"{float(after[k]):.4f}", "change": f"{float(after[k] - before[k]):+.4f}",
             "rank after": rank_a.get(int(k), "below 5")} for k in ks]


def intact_rows(probs: np.ndarray, names: list[str]) -> list[dict]:
    """The intact model's top-5 with probabilities."""
    return [{"class": names[k] if k < len(names) else f"class {k}", "p intact": f"{float(probs[k]):.4f}"}
            for k in np.argsort(-probs)[:5].tolist()]


def knockout_maps(lm: model_store.LoadedModel, tap: str, intact: np.ndarray, after: np.ndarray | None,
                  photo: np.ndarray, crop: registration.CropBox, uri: tuple[str, tuple[int, int]],
                  knocked_label: str) -> None:
    """One tap's CAM on the photo, drawn as cells with a colour bar: intact, and once branches are knocked out,
    knocked out on the same scale and the knocked-out minus intact difference on a diverging scale."""
    grid = placement.grid_text(lm.model, tap, intact, crop)
    if min(intact.shape[-2:]) <= 4:  # the caveat that matters most: not in a grey caption
        st.warning(f"**`{tap}` maps are {intact.shape[-2]}×{intact.shape[-1]} cells**: {grid.split(' · ', 1)[1]}. "
                   "A knock-out can only move whole cells.", icon=":material/grid_4x4:")
    else:
        st.caption(grid)
    maps = {"intact": intact} | ({} if after is None else {knocked_label: after})
    lo, hi = placement.colour_range(list(maps.values()))
    pm = [placement.photo_map(lm.model, tap, m, crop, f"{tap} · {title}") for title, m in maps.items()]
    left, right = st.columns([2, 1]) if after is not None else st.columns([1, 2])
    with left:
        charts.plotly_chart(plots.maps_on_photo_figure(photo, pm, vmin=lo, vmax=hi if hi > lo else lo + 1.0,
                                                       with_photo=False, per_row=2, panel_height=300,
                                                       photo_uri=uri), key=f"ko_maps_{tap}", width="stretch")
    if after is not None:
        diff = np.asarray(after, dtype=np.float64) - np.asarray(intact, dtype=np.float64)
        lim = float(np.abs(diff).max()) or 1.0
        with right:
            charts.plotly_chart(plots.maps_on_photo_figure(
                photo, [placement.photo_map(lm.model, tap, diff, crop, f"{tap} · knocked out − intact")],
                vmin=-lim, vmax=lim, with_photo=False, per_row=1, panel_height=300, colorscale="RdBu_r", alpha=0.7,
                colorbar_title="change", photo_uri=uri), key=f"ko_diff_{tap}", width="stretch")


def image_part(source: sources.Source, image: images.LoadedImage) -> str:
    """The knock-out on the user's image; returns the model it shows (the study below opens on the same one)."""
    models = res2net.list_models()
    c1, c2, c3 = st.columns(3)
    settle("ko_model", models, DEFAULT_PAIR[1])
    name = c1.selectbox("Model", models, key="ko_model", **KEEP)
    lm = model_store.load_model(name, weights_mode(), current_device())
    random_weights_notice(name, lm.note, "knockout")
    infos = {i.name: i for i in res2net.block_infos(lm.model)}
    normal = [n for n, i in infos.items() if i.stype == "normal"]
    default = next((n for n in normal if n.startswith("layer3.")), normal[-1] if normal else next(iter(infos)))
    settle("ko_block", list(infos), default)
    block = c2.selectbox("Block", list(infos), key="ko_block", format_func=lambda b: f"{b} ({infos[b].stype})", **KEEP)
    method = c3.selectbox("CAM method", list(cam.METHODS), key="ko_method", **KEEP)
    info = infos[block]
    means = knockout_cache.model_branch_means(name, lm.device, lm.weights)
    d1, d2 = st.columns(2)
    settle("ko_mode", ["mean", "zero"] if means is not None else ["zero"], "mean" if means is not None else "zero")
    mode = d1.radio("Replace by", ["mean", "zero"] if means is not None else ["zero"], horizontal=True, **KEEP,
                    key="ko_mode", help="mean: the branch's per-channel mean over training images; zero: nothing."
                    + ("" if means is not None else " Mean replacement needs the embedded models' trained weights "
                       "and the Tiny-ImageNet-100 train split (the means come from its images)."))
    effect = d2.radio("Effect", ["total", "direct"], horizontal=True, key="ko_effect", **KEEP,
                      disabled=not (info.kind == "res2net" and info.stype == "normal"),
                      help="Only a normal Res2Net block's branches feed each other; elsewhere both are the same.")
    st.markdown(f"**Knock out branches of `{block}`** ({info.stype} block; `{name}` · {lm.label})")
    knocked = tuple(i for i, col in enumerate(st.columns(max(info.num_branches, 4)))
                    if i < info.num_branches
                    and col.checkbox(branch_plots.branch_title(info, i), key=f"ko_branch_{name}_{block}_{i}",
                                     **PERSIST))
    last = list(infos)[-1]
    taps = tuple(dict.fromkeys([block, last]))
    intact = knockout_cache.knocked_cams(source.data, name, lm.device, lm.weights, block, (), mode, effect, method,
                                         None, taps)
    after = (knockout_cache.knocked_cams(source.data, name, lm.device, lm.weights, block, knocked, mode, effect,
                                         method, intact.target, taps) if knocked else None)
    names = model_store.class_names(name)
    target = names[intact.target] if intact.target < len(names) else str(intact.target)
    if after is None:
        st.info("Tick branches above to knock them out: the top-5 change and the maps without them appear here.",
                icon=":material/content_cut:")
        st.markdown("**Top-5 of the intact model**")
        st.table(intact_rows(intact.probs, names))
    else:
        removed = ", ".join(branch_plots.branch_title(info, i) for i in knocked)
        st.markdown(f"**Top-5 before and after removing {removed}**")
        st.table(top5_rows(intact.probs, after.probs, names))  # a plain table: full width, wraps, readable
    st.markdown(f"**Maps of the intact top-1 class, {target}**" + (", before and after" if after is not None else "")
                + "; cells at their receptive-field centres on the photo.")
    crop = registration.crop_box(image.image.size, name)
    photo, uri = photos.rgb(source.data), photos.photo_uri(source.data)
    label = "without " + ", ".join(branch_plots.branch_title(info, i) for i in knocked)
    for tap in taps:
        knockout_maps(lm, tap, intact.maps[tap], None if after is None else after.maps[tap], photo, crop, uri, label)
    decomposition_part(source, name, lm, info, intact.target, means is not None)
    return name


def decomposition_part(source: sources.Source, name: str, lm: model_store.LoadedModel, info: res2net.BlockInfo,
                       target: int, has_means: bool) -> None:
    st.subheader("The block's map, split exactly by branch")
    with st.expander("How the split works"):
        st.markdown("In eval mode the fusion conv is linear and its BN affine, so the block's residual output is the "
                    "sum of one contribution per branch plus a bias. Each branch's map is the class score's gradient "
                    "at the block output times its contribution, summed over channels: the maps add up to the "
                    "block's gradient × activation map. The total-gradient maps (branch output × its own gradient) "
                    "do not: branch i's path through the later branches is counted again there. Raw grids at the "
                    "block's resolution, one square per cell; red adds to the class score, blue takes away.")
    centred = st.toggle("Centred form (each branch minus its training mean; the means move into the bias)",
                        key="ko_centred", disabled=not has_means, **KEEP)
    dec = knockout_cache.block_decomposition(source.data, name, lm.device, lm.weights, info.name, target,
                                             centred and has_means)
    labels = [branch_plots.branch_title(info, i) for i in range(info.num_branches)]
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
               f"total-gradient maps miss it by up to {gap:.3g}.")


def interaction_points(interactions: list, block: str, metric: str) -> list[branch_plots.BranchPoint]:
    """The study's interaction rows of one block and metric as branches placed by their receptive field (px of the
    model input): a ResNet's one path (s = 1) is its own mark, a Res2Net's last branch (identity) sits apart."""
    sel = [r for r in interactions if r.block == block and r.metric == metric and r.branch >= 0]  # no control
    out = []
    for r in sel:
        tap = f"{r.block}.branch{r.branch}"
        rf = analyses.theoretical_rfs(r.model, (tap,))[tap][0]
        kind = branch_plots.branch_kind(r.branch, r.scale, r.scale > 1)
        label = "3×3 path" if kind == "path" else r.label
        out.append(branch_plots.BranchPoint(r.model, kind, rf, r.interaction, label, r.low, r.high))
    return out


def study_part(default_model: str | None) -> None:
    st.subheader("The knock-out study: which branch serves which object size")
    try:
        res = study_data.results()
    except ResultsError as exc:
        st.error(f"The results file cannot be used: {exc}")
        return
    if res is None or res.knockout is None:
        st.info("No knock-out study in the results file yet: `python -m res2net.evaluate` runs it.")
        return
    ko = res.knockout
    hypothesis = ko.hypothesis.removeprefix("stated before any run: ")  # the label below says so already
    st.markdown(f"**Hypothesis (stated before any run).** {hypothesis}.")
    with st.expander(f"How it was tested: {ko.images} val images, {ko.runs} runs per model"):
        st.markdown(f"**Lesion.** {ko.lesion}.  \n**Harm.** {ko.harm}.  \n**Intervals.** {ko.intervals}.")
    models = list(dict.fromkeys(r.model for r in ko.rows))
    c1, c2 = st.columns(2)
    settle("ko_study_model", models, default_model if default_model in models else models[-1])
    model = c1.selectbox("Model", models, key="ko_study_model", help="Opens on the model of the image above.", **KEEP)
    metrics = list(ko.min_effect)
    metric = c2.selectbox("Metric", metrics, key="ko_study_metric", **KEEP)
    charts.plotly_chart(knockout_plots.harm_by_size_figure(ko.rows, model, metric), key="ko_heat", width="stretch")
    blocks = list(dict.fromkeys(r.block for r in ko.interactions if r.model == model))
    settle("ko_study_block", blocks, ko.claims[0].block if ko.claims and ko.claims[0].block in blocks else blocks[0])
    block = st.selectbox("Block", blocks, key="ko_study_block", **KEEP)
    points = interaction_points(ko.interactions, block, metric)
    if points:
        size = res2net.get_spec(points[0].model).input_size
        charts.plotly_chart(branch_plots.branch_rf_figure(
            points, title=f"{block}: harm on large minus harm on small objects ({metric})",
            value_title="large minus small", rf_title=f"theoretical receptive field (px of the {size} px input)",
            band=ko.min_effect[metric], reference_level=False), key="ko_inter", width="stretch")
    controls = [r for r in ko.interactions if r.block == block and r.metric == metric and r.branch < 0
                and r.model == model]
    if controls:  # every model's control is in the table below
        st.caption(f"Control ({model}, not drawn): " + "; ".join(
            f"{r.label}: {fmt_interval(r.interaction, r.low, r.high)}" for r in controls)
            + ". A branch inside it is no more size-specific than random channels of its width.")
    st.dataframe([{"model": r.model, "lesion": "3×3 path" if r.scale == 1 and r.branch >= 0 else r.label,
                   "large minus small (95%)": fmt_interval(r.interaction, r.low, r.high),
                   "strength": "–" if r.strength is None else f"{r.strength:.3f}",
                   "verdict (exploratory)": r.verdict} for r in ko.interactions
                  if r.block == block and r.metric == metric], hide_index=True, width="stretch")
    if res.scale_sweep is not None:
        charts.plotly_chart(knockout_plots.scale_sweep_figure(res.scale_sweep), key="ko_sweep", width="stretch")


image = None
source = sources.pick_image("knockout")
if source is not None:
    image = sources.validated(source)
shown_model = image_part(source, image) if image is not None else None
study_part(shown_model)
