"""Scales: one block, branch by branch — feature maps, CAMs, energy and sparsity, receptive fields, beside the baseline.

Class demos open here: pick a class, see its images (val images with boxes, or the offline demo photos), open one.
"""

from __future__ import annotations

import streamlit as st

import res2net
from dashboard import charts, placement
from dashboard import readable as readable_text
from dashboard.services import analyses, image_inputs, model_store, photos, sources, study_data
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
from res2net.geometry import registration
from res2net.viz import branch_plots, plots

st.title("Scales", help="Only normal blocks are hierarchical (multi-scale); stage blocks run their branches in "
         "parallel. A ResNet bottleneck has one 3×3 path, drawn as its own reference.\n\n" + BRANCH_NOTE)
st.caption("Inside one block, branch by branch: what each branch responds to and how far it sees, beside the same "
           "block of the baseline.")


def gallery() -> None:
    """Class demos: a small gallery of one class; 'Open' sends an image to this view (and to Compare CAMs)."""
    split = study_data.val_split()
    if split is not None:
        cls = st.selectbox("Class", range(len(split.classes)), format_func=lambda k: split.classes[k],
                           key="scales_demo_class", **PERSIST)
        idx = [i for i in range(len(split)) if int(split.data.labels[i]) == cls][:8]
        items = [split[i] for i in idx]
        shots = [(f"val/{it['file']} ({it['class_name']})", image_inputs.png_bytes(it["image"].numpy()),
                  it["box"] if min(it["box"]) >= 0 else None) for it in items]
    else:
        st.caption("The Tiny-ImageNet-100 data folder is absent: showing the offline demo photos.")
        shots = [(name, data, None) for name, data in sources.demo_photos().items()]
    if not shots:
        st.info("No gallery images are available; use an upload below.")
        return
    cols = st.columns(min(6, len(shots)))  # at most 6 a row: thumbnails stay above 96 px at 1280 px
    for k, (label, data, box) in enumerate(shots):
        with cols[k % len(cols)]:
            st.image(data, width="stretch", caption=label.split(" (")[0].rsplit("/", 1)[-1])
            if st.button("Open", key=f"scales_open_{k}", help=label):
                st.session_state[sources.PICKED] = (label, data, box)
                st.session_state["scales_source"] = "Picked image"
                st.rerun()


with st.expander("Class demos", expanded=sources.PICKED not in st.session_state):
    gallery()

source = sources.pick_image("scales")
image = sources.validated(source)
if image is None:
    st.stop()

all_models = res2net.list_models()
c1, c2, c3 = st.columns(3)
settle("scales_model", all_models, DEFAULT_PAIR[1])
name = c1.selectbox("Model", all_models, key="scales_model", **KEEP)
settle("scales_base", all_models, DEFAULT_PAIR[0])
base = c2.selectbox("Baseline", all_models, key="scales_base", **KEEP)
lm = model_store.load_model(name, weights_mode(), current_device())
base_lm = model_store.load_model(base, weights_mode(), current_device())
block_lists = {n: [i.name for i in res2net.block_infos(m.model)] for n, m in ((name, lm), (base, base_lm))}
blocks = placement.sorted_blocks(block_lists)
normal = [i.name for i in res2net.block_infos(lm.model) if i.stype == "normal" and i.kind == "res2net"]
cams_for_size = analyses.model_cams(source.data, name, lm.device, lm.weights, "gradcam", None)
readable = [b for b in normal if min(cams_for_size.maps[b].shape[-2:]) >= 8]  # at least 8x8 cells
settle("scales_block", blocks, (readable or normal or blocks)[-1])
block = c3.selectbox("Block", blocks, key="scales_block", **KEEP,
                     help="Listed in network order; the default is the deepest multi-scale block with maps of at "
                          "least 8×8.")
e1, e2, e3 = st.columns(3)
fmap_scale = e1.radio("Feature-map colour scale", ["local", "branch", "global"], horizontal=True,
                      key="scales_fscale", **KEEP,
                      help="local: each map its own range, from its minimum to its maximum; branch: one scale per "
                           "branch (row); global: one scale for every map of the block. Raw activations on hover.")
alpha = e2.slider("CAM opacity", 0.0, 1.0, 0.5, 0.05, key="scales_alpha", **KEEP)
method = e3.selectbox("CAM method", list(cam.METHODS), key="scales_method", **KEEP)
photo = photos.rgb(source.data)
rf_rows: list[dict] = []
points: dict[str, list[branch_plots.BranchPoint]] = {"energy_share": [], "sparsity": []}  # charts by RF
n_top = 3  # channels per branch: at half the page width (1280 px window) each map stays above 96 px


def show(model_name: str, col, side: str) -> dict | None:  # noqa: ANN001
    """The per-scale panel of one model's block; returns its branch statistics for the shared bar charts."""
    with col:
        lm = model_store.load_model(model_name, weights_mode(), current_device())
        infos = {i.name: i for i in res2net.block_infos(lm.model)}
        st.subheader(model_name)
        random_weights_notice(model_name, lm.note, f"scales_{side}")
        info = infos.get(block)
        if info is None:
            st.info(f"`{model_name}` has no block `{block}`.")
            return None
        paths = f"{info.num_branches} branches · " if info.num_branches > 1 else ""  # the badge names a single path
        st.markdown(f"`{block}` · {readable_text.block_badge(info)} · {paths}{model_store.weights_label(lm)}")
        cams = analyses.model_cams(source.data, model_name, lm.device, lm.weights, method, None)
        feats = analyses.block_features(source.data, model_name, lm.device, lm.weights, block)
        labels = [branch_plots.branch_title(info, i) for i in range(info.num_branches)]
        st.markdown("**Per-branch CAM**" if info.num_branches > 1 else "**CAM of the 3×3 path**")
        crop = registration.crop_box(image.image.size, model_name)
        pm = [placement.photo_map(lm.model, t, cams.maps[t], crop, lab) for t, lab in zip(info.branch_taps, labels,
                                                                                           strict=True)]
        lo, hi = placement.colour_range([cams.maps[t] for t in info.branch_taps])
        charts.plotly_chart(plots.maps_on_photo_figure(photo, pm, vmin=lo, vmax=hi, with_photo=False, alpha=alpha,
                                                   per_row=2, panel_height=240,
                                                   photo_uri=photos.photo_uri(source.data)),
                        key=f"scales_cam_{side}", width="stretch")
        grid = placement.grid_text(lm.model, info.branch_taps[0], cams.maps[info.branch_taps[0]], crop)
        if min(cams.maps[info.branch_taps[0]].shape[-2:]) <= 4:  # the caveat that matters most: say it loudly
            st.warning(f"Coarse maps: {grid}. Pick an earlier block for finer maps.", icon=":material/grid_4x4:")
        else:
            st.caption(f"{grid}; cells at their receptive-field centres"
                       + ("; one colour scale for the branches." if info.num_branches > 1 else "."))
        st.markdown(f"**Top {n_top} channels by energy** per branch")
        stats = feats.stats
        pairs = list(zip(labels, info.branch_taps, strict=True))
        channel_maps = {lab: [feats.acts[t][c] for c in stats[t]["top_channels"][:n_top]] for lab, t in pairs}
        channel_labels = {lab: stats[t]["top_channels"][:n_top] for lab, t in pairs}
        charts.plotly_chart(plots.feature_maps_figure(channel_maps, scale=fmap_scale, channel_labels=channel_labels,
                                                  title=f"{model_name} · {block} ({fmap_scale} colour scale)"),
                        key=f"scales_fm_{model_name}", width="stretch")
        rfs = analyses.theoretical_rfs(model_name, tuple(info.branch_taps))
        erfs = analyses.model_erf(model_name, lm.device, lm.weights, tuple(info.branch_taps), source.data, 0, False)
        size = res2net.get_spec(model_name).input_size
        for i, (lab, tap) in enumerate(zip(labels, info.branch_taps, strict=True)):
            kind = branch_plots.branch_kind(i, info.num_branches, info.kind == "res2net")
            for metric, pts in points.items():
                pts.append(branch_plots.BranchPoint(model_name, kind, rfs[tap][0], stats[tap][metric], lab))
            rf_rows.append(readable_text.rf_row(model_name, lab, rfs[tap][0], rfs[tap][1], size,
                                                erfs.taps[tap].metrics, stats[tap]["energy_share"],
                                                stats[tap]["sparsity"]))
        return {lab: stats[t] for lab, t in zip(labels, info.branch_taps, strict=True)}


left, right = st.columns(2)
shown = [n for n, col, side in ((name, left, "model"), (base, right, "baseline")) if show(n, col, side) is not None]
if rf_rows:
    st.markdown(f"**Receptive fields of `{block}`** (theoretical: from the module graph; effective: ERF on this image)")
    st.table(rf_rows)  # a plain table wraps its headers and cells: eleven columns fit 1280 px without scrolling
    with st.expander("What the columns mean"):
        st.markdown(readable_text.RF_TABLE_NOTE)
if shown:
    sizes = {res2net.get_spec(n).input_size for n in shown}
    rf_title = (f"theoretical receptive field (px of the {sizes.pop()} px input)" if len(sizes) == 1
                else "theoretical receptive field (px of each model's input)")
    b1, b2 = st.columns(2)
    energy = [p for p in points["energy_share"] if p.kind != "path"]  # one path holds all of its block's energy
    if energy:
        with b1:
            charts.plotly_chart(branch_plots.branch_rf_figure(
                energy, title="Energy share per branch (a ResNet's one path: 1)", value_title="energy share",
                rf_title=rf_title), key="scales_energy", width="stretch")
    with b2:
        charts.plotly_chart(branch_plots.branch_rf_figure(
            points["sparsity"], title="Sparsity per branch (|a| ≤ 1% of max)", value_title="sparsity",
            rf_title=rf_title), key="scales_sparsity", width="stretch")
