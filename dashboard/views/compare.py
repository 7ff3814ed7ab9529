"""Compare CAMs: one image, two or more models side by side, any tap, with each block's per-branch CAMs below."""

from __future__ import annotations

from functools import partial

import numpy as np
import streamlit as st

import res2net
from dashboard import cached, placement, sources
from dashboard.state import DEFAULT_PAIR, branch_note, current_device, random_weights_notice, weights_mode
from res2net import cam, images, plots

st.title("Compare CAMs")
st.caption("Class activation maps at any block or branch of several models for the same image. All taps of a "
           "model come from one forward and one backward pass; opacity, colour scale and tap changes only redraw. "
           "Each map is drawn where its cells look: cell (i, j) of a stride-S tap at its receptive-field centre "
           "start + S·(i, j) on the model input, not stretched over the picture (that would shift it by (S − 1)/2 "
           "px).")
branch_note()

source = sources.pick_image("compare")
image = sources.validated(source)
if image is None:
    st.stop()

names = st.multiselect("Models", res2net.list_models(), default=list(DEFAULT_PAIR), max_selections=4,
                       key="compare_models",
                       help="The embedded models work offline; ImageNet weights download on demand.")
if not names:
    st.info("Pick at least one model (two or more to compare).")
    st.stop()

c1, c2, c3, c4 = st.columns(4)
method = c1.selectbox("Method", list(cam.METHODS), key="compare_method")
mode = c2.selectbox("Preprocessing", list(images.PREPROCESS_MODES), key="compare_mode",
                    help="center_crop: the models' own (resize, centre crop); resize: squeeze the whole photo; "
                         "pad: fit it inside the square.")
target_mode = c3.radio("Target class", ["top-1 of each model", "choose a class"], key="compare_target_mode")
common = sorted(set.intersection(*(set(cached.class_names(n)) for n in names)))
target_name = None
if target_mode == "choose a class":
    if not common:
        c4.warning("These models share no class; using each model's top-1.")
    else:
        target_name = c4.selectbox("Class", common, key="compare_class")

loaded = {n: cached.load_model(n, weights_mode(), current_device()) for n in names}
results = {}
for n, lm in loaded.items():
    random_weights_notice(n, lm.note, "compare")
    for w in images.preprocess_warnings(image.image.size, n, mode):
        st.caption(f"`{n}`: {w}")
    target = cached.class_names(n).index(target_name) if target_name else None
    results[n] = cached.model_cams(source.data, n, lm.device, lm.weights, method, target, mode)
    if results[n].cpu_fallback:
        st.warning(f"`{n}`: the GPU ran out of memory, so this model ran on the CPU.")

blocks = []
for n in names:
    for info in res2net.block_infos(loaded[n].model):
        if info.name not in blocks:
            blocks.append(info.name)
infos = {n: {i.name: i for i in res2net.block_infos(loaded[n].model)} for n in names}
max_branches = max((i.num_branches for d in infos.values() for i in d.values()), default=1)

d1, d2, d3, d4 = st.columns(4)
block = d1.selectbox("Block", blocks, index=len(blocks) - 1, key="compare_block")
tap_kind = d2.selectbox("Tap", ["block output"] + [f"branch {i}" for i in range(max_branches)], key="compare_tap")
alpha = d3.slider("Opacity", 0.0, 1.0, 0.5, 0.05, key="compare_alpha")
scale = d4.radio("Colour scale", ["per map", "shared"], key="compare_scale",
                 help="Shared: one colour scale for every map on the page, so raw magnitudes stay comparable.")


def tap_for(n: str) -> str:
    """The chosen tap in model ``n`` (its block output when it has no such branch)."""
    info = infos[n].get(block)
    if info is None or tap_kind == "block output":
        return block
    i = int(tap_kind.split()[1])
    return info.branch_taps[i] if i < info.num_branches else block


shown = {n: [tap_for(n)] + (infos[n][block].branch_taps if block in infos[n] else []) for n in names}
maps = {f"{n}/{t}": results[n].maps[t] for n in names for t in shown[n] if t in results[n].maps}
# what is drawn, exported as a figure and scored: each shown map registered onto its model's input picture
placed = {n: placement.place_all(loaded[n].model, {t: results[n].maps[t] for t in shown[n] if f"{n}/{t}" in maps},
                                 results[n].picture.shape[:2]) for n in names}
vmax = max(float(m.max()) for d in placed.values() for m in d.values()) if scale == "shared" and maps else None


def box_in(n: str) -> tuple[float, float, float, float] | None:
    """The ground-truth box in model ``n``'s input pixels (val images are 64x64)."""
    if source.box is None:
        return None
    return images.crop_box(image.image.size, n, mode).box_to_tensor(source.box)


def prior_sigma(n: str) -> tuple[float, str]:
    """The centre prior's width in model ``n``'s input pixels (fitted at 64 px, scaled like the image) and its note."""
    sigma64, note = cached.centre_prior_sigma()
    sx, sy = images.crop_box(image.image.size, n, mode).scale  # model-input pixels per 64 px image pixel
    sigma = sigma64 * (sx + sy) / 2
    if abs(sigma - sigma64) > 1e-9:
        note += f" ({sigma:.3g} px on the {results[n]['picture'].shape[0]} px model input)"
    return sigma, note


def localisation(n: str, t: str) -> dict[str, float | bool] | None:
    """Tap ``t`` of model ``n``, registered on its input, against the box, each number beside its baselines."""
    if source.box is None or t not in placed[n]:
        return None
    m = placed[n][t]
    return placement.localise(m, placement.pixel_box(box_in(n), m.shape), prior_sigma(n)[0])


def localisation_line(n: str, t: str) -> str:
    """The caption under the boxed figure: registered-map numbers and the centre prior's provenance."""
    return placement.localisation_caption(localisation(n, t), placement.geometry_text(loaded[n].model, t),
                                          prior_sigma(n)[1])


cols = st.columns(len(names))
for col, n in zip(cols, names, strict=True):
    r, lm = results[n], loaded[n]
    classes = cached.class_names(n)
    with col:
        st.subheader(n)
        st.caption(f"{cached.weights_label(lm)} · {lm.device} · {method}")
        tap = tap_for(n)
        if tap not in r.maps:
            st.info(f"`{n}` has no block `{block}`.")
            continue
        caption = f"{tap} · target: {classes[r.target]}"
        if source.box is not None:
            fig = plots.cam_grid_figure([r.picture], [placed[n][tap]], [caption], shared_scale=True,
                                        box=box_in(n), alpha=alpha)
            st.plotly_chart(fig, key=f"compare_box_{n}", width="stretch")
            st.caption(localisation_line(n, tap))
        else:
            st.image(plots.overlay(r.picture, placed[n][tap], alpha=alpha, vmax=vmax), width="stretch",
                     caption=caption)
        top = np.argsort(r.probs)[::-1][:5]
        st.dataframe({"class": [classes[k] for k in top], "prob": [round(float(r.probs[k]), 4) for k in top]},
                     hide_index=True, width="stretch")
        info = infos[n].get(block)
        if info is not None and info.num_branches > 1:
            st.markdown(f"**Branches of `{block}`** ({info.stype} block)")
            for i, (bc, bt) in enumerate(zip(st.columns(info.num_branches), info.branch_taps, strict=True)):
                bc.image(plots.overlay(r.picture, placed[n][bt], alpha=alpha, vmax=vmax),
                         caption=info.branch_label(i), width="stretch")

st.divider()
rows = [
    {"model": n, "weights": loaded[n].weights, "method": method, "preprocessing": mode, "tap": t,
     "target": cached.class_names(n)[results[n].target],
     "target_prob": float(results[n].probs[results[n].target]),
     "height": m.shape[0], "width": m.shape[1], "max": float(m.max()), "mean": float(m.mean()),
     **placement.geometry(loaded[n].model, t), **(localisation(n, t) or {})}
    for n in names for t in shown[n] if (m := results[n].maps.get(t)) is not None
]
exported = {**maps, **{f"{placement.REGISTERED_PREFIX}{n}/{t}": m for n in names for t, m in placed[n].items()}}
with_block = [n for n in names if block in infos[n]]
if with_block:
    grid = [[placed[n][tap_for(n)] for n in with_block]]
    labels = ["selected tap"]
    for i in range(max(infos[n][block].num_branches for n in with_block)):
        grid.append([placed[n][infos[n][block].branch_taps[i]] if i < infos[n][block].num_branches
                     else None for n in with_block])
        labels.append(f"branch {i}")
    png = partial(plots.cam_panel_png, [results[n].picture for n in with_block], grid,
                  [f"{n}: {tap_for(n)}" for n in with_block], row_labels=labels, shared_scale=scale == "shared",
                  alpha=alpha)  # files are built only when a button is clicked, so redraws stay fast
    e1, e2, e3 = st.columns(3)
    e1.download_button("Figure (PNG)", png, "cams.png", "image/png")
    e2.download_button("Maps (.npz)", partial(plots.maps_to_npz_bytes, exported), "cams.npz",
                       "application/octet-stream")
    e3.download_button("Numbers (CSV)", partial(plots.rows_to_csv_bytes, rows), "cams.csv", "text/csv")
st.caption(f"Device: {current_device()}. The .npz file holds the raw (unnormalised) maps at each tap's resolution "
           f"under `model/tap`, and the same maps registered on the model input under `{placement.REGISTERED_PREFIX}"
           "model/tap`; the CSV gives each map's stride and where its cells sit "
           f"({placement.REGISTRATION_RULE}, in model-input pixels)"
           + (", and the localisation numbers with their baselines." if source.box is not None else "."))
