"""Compare CAMs: one image, up to four models, one row each (maps first), each block's branches below, then the
checks and the Res2Net − ResNet difference. Every choice stays when the page changes and is in the URL."""

from __future__ import annotations

import re
import textwrap
from functools import partial

import numpy as np
import streamlit as st

import res2net
from dashboard import placement, readable
from dashboard.services import analyses, centres, model_store, photos, sources, study_data
from dashboard.state import DEFAULT_PAIR, KEEP, current_device, random_weights_notice, settle, weights_mode
from dashboard.views import compare_grid
from res2net.analysis import cam, gradient_free
from res2net.data import images
from res2net.viz import compare as compare_viz
from res2net.viz import plots

INTRO = ("Class activation maps at any block or branch of several models for the same image. All taps of a model "
         "come from one forward and one backward pass; opacity, colour scale and tap changes only redraw. Each map "
         "cell is drawn where it looks: cell (i, j) of a stride-S tap at its receptive-field centre start + S·(i, j) "
         "on the model input, carried back onto your photo. Settings stay when you change page, and the address "
         "bar holds the view, so a link reopens it.")
SHORT = {"scorecam": "Score-CAM", "ablationcam": "Ablation-CAM", "eigencam": "EigenCAM"}


def method_label(m: str) -> str:
    return f"{SHORT[m]} ⁽¹ᵗᵃᵖ⁾" if m in SHORT else m


st.title("Compare CAMs", help=INTRO)
top = st.columns([1, 1.25])
with top[0]:
    source = sources.pick_image("compare")
with top[1]:
    names = st.multiselect("Models", res2net.list_models(), default=list(DEFAULT_PAIR), max_selections=4,
                           key="compare_models", select_all=False, wrap=True,
                           help="Up to four. The embedded models work offline; ImageNet weights download on demand.",
                           **KEEP)
image = sources.validated(source)
if image is None:
    st.stop()
if not names:
    st.info("Pick at least one model (two or more to compare).")
    st.stop()

with st.sidebar:
    st.markdown("**Compare settings**")
    mode = st.selectbox("Preprocessing", list(images.PREPROCESS_MODES), key="compare_mode",
                        help="center_crop: the models' own (resize, centre crop); resize: squeeze the whole photo; "
                             "pad: fit it inside the square.", **KEEP)
    target_mode = st.radio("Target class", ["top-1 (or a clicked row)", "one class for all"],
                           key="compare_target_mode",
                           help="Tick a row of a model's top-5 table to explain that class instead of its top-1.",
                           **KEEP)
    common = sorted(set.intersection(*(set(model_store.class_names(n)) for n in names)))
    target_name = None
    if target_mode == "one class for all":
        if not common:
            st.warning("These models share no class; using each model's top-1.")
        else:
            settle("compare_class", common, common[0])
            target_name = st.selectbox("Class", common, key="compare_class", **KEEP)
    display = st.radio("Display", ["cells", "smooth", "effective centre"], key="compare_display", horizontal=True,
                       help="cells: each map cell as a flat square at its receptive-field centre (what the model "
                            "computed); smooth: interpolated between those centres; effective centre: interpolated "
                            "between the cells' gradient centroids over the demo photos (zero padding pulls border "
                            "cells inward). The localisation numbers and the exported maps follow the choice.",
                       **KEEP)
    alpha = st.slider("Opacity", 0.0, 1.0, 0.5, 0.05, key="compare_alpha", **KEEP)
    cmap = st.selectbox("Colormap", list(plots.COLORMAPS), key="compare_cmap", **KEEP)
    faith = st.toggle("Faithfulness curves", key="compare_faith", help=readable.FAITHFULNESS_HELP, **KEEP)
    sanity = st.toggle("Sanity check (Adebayo et al., 2018)", key="compare_sanity", help=readable.SANITY_HELP, **KEEP)

c1, c2, c3, c4, c5 = st.columns([1.05, 1.6, 1.05, 1.05, 1.0])
method = c1.selectbox("Method", list(cam.METHODS), key="compare_method", **KEEP)
also = [m for m in cam.METHODS if m != method] + list(gradient_free.METHODS)
settle("compare_more_methods", also, [])
more_methods = c2.multiselect(
    "Also show", also, max_selections=3, key="compare_more_methods", format_func=method_label, select_all=False,
    wrap=True,
    help="Up to three more methods at the same tap, each in its own column of the grid (its own colour scale: "
         "methods are in different units). ⁽¹ᵗᵃᵖ⁾: gradient-free, computed one tap at a time (Score-CAM, Ablation-CAM: "
         "one forward per channel, on request; EigenCAM: an SVD).", **KEEP)

loaded = {n: model_store.load_model(n, weights_mode(), current_device()) for n in names}


def untrained(n: str) -> bool:
    return loaded[n].untrained


def target_for(n: str) -> int | None:
    if target_name:
        return model_store.class_names(n).index(target_name)
    return None if untrained(n) else compare_grid.clicked_class(n, source.data)


results = {n: analyses.model_cams(source.data, n, lm.device, lm.weights, method, target_for(n), mode)
           for n, lm in loaded.items()}
infos = {n: {i.name: i for i in res2net.block_infos(loaded[n].model)} for n in names}
blocks = placement.sorted_blocks({n: list(infos[n]) for n in names})
map_sizes = {n: {b: tuple(results[n].maps[b].shape[-2:]) for b in infos[n]} for n in names}
settle("compare_block", blocks, placement.default_block(blocks, map_sizes))
block = c3.selectbox("Block", blocks, key="compare_block",
                     help="Listed in network order. The default is the deepest block whose maps are at least 8×8.",
                     **KEEP)
with_block = [n for n in names if block in infos[n]]
max_branches = max((infos[n][block].num_branches for n in with_block), default=1)
taps = ["block output"] + ([f"branch {i}" for i in range(max_branches)] if max_branches > 1 else [])
settle("compare_tap", taps, "block output")
tap_kind = c4.selectbox("Tap", taps, key="compare_tap", **KEEP)
scale = c5.radio("Colour scale", ["per map", "shared"], key="compare_scale",
                 help="Shared: one colour scale for every trained model's map of the main method, so raw magnitudes "
                      "stay comparable. Untrained models keep their own scale.", **KEEP)

for n, lm in loaded.items():
    random_weights_notice(n, lm.note, "compare")
    if results[n].cpu_fallback:
        st.warning(f"`{n}`: the GPU ran out of memory, so this model ran on the CPU.")


def tap_for(n: str) -> str | None:
    """The chosen tap in model ``n``: None when the block is absent or has no such branch (never a stand-in)."""
    info = infos[n].get(block)
    if info is None:
        return None
    if tap_kind == "block output":
        return block
    i = int(tap_kind.split()[1])
    return info.branch_taps[i] if i < info.num_branches else None


def why_missing(n: str) -> str:
    info = infos[n].get(block)
    if info is None:
        return f"`{n}` has no block `{block}`."
    if info.kind == "resnet":
        return (f"`{block}` of `{n}` is a ResNet bottleneck: it has no scale branches, so there is no {tap_kind} "
                "to show. Its block output is under Tap → block output.")
    return f"`{block}` of `{n}` has {info.num_branches} branches: there is no {tap_kind}."


extra = {(n, m): analyses.model_cams(source.data, n, loaded[n].device, loaded[n].weights, m, results[n].target, mode)
         for n in names for m in more_methods if m in cam.METHODS}
crops = {n: images.crop_box(image.image.size, n, mode) for n in names}
photo = photos.rgb(source.data)
shown = {n: list(dict.fromkeys(t for t in [tap_for(n)] + (infos[n][block].branch_taps if block in infos[n] else [])
                               if t)) for n in names}
effective: dict[tuple[str, str], object] = {}
if display == "effective centre":
    for n in names:
        for t in shown[n]:
            try:
                effective[(n, t)] = centres.tap_centres(n, loaded[n].device, loaded[n].weights, t)
            except ValueError as e:
                st.warning(f"`{n}` {t}: no effective centres ({e}); drawn at its receptive-field centres.")
placed = {n: placement.place_all(loaded[n].model, {t: results[n].maps[t] for t in shown[n]},
                                 results[n].picture.shape[:2], {t: c for (m, t), c in effective.items() if m == n})
          for n in names}
# the shared scale covers the trained models' raw maps of the main method only (an untrained model's magnitudes
# would flatten every trained map, and other methods are in other units)
trained_maps = [results[n].maps[t] for n in names if not untrained(n) for t in shown[n]]
seen = [placement.photo_map(loaded[n].model, block, results[n].maps[block], crops[n], "").seen
        for n in with_block]
grid = compare_grid.Grid(
    source_data=source.data, names=names, loaded=loaded, results=results, infos=infos, crops=crops, photo=photo,
    photo_uri=photos.photo_uri(source.data), box=None if source.box is None else tuple(float(v) for v in source.box),
    method=method, mode=mode, block=block, tap_kind=tap_kind, cells=display == "cells", alpha=alpha, cmap=cmap,
    centres=effective,
    shared_range=placement.colour_range(trained_maps) if scale == "shared" and trained_maps else None,
    window=compare_viz.view_window((photo.shape[1], photo.shape[0]), [s for s in seen if s is not None]),
    tap_for=tap_for, why_missing=why_missing, target_for=target_for)


def box_in(n: str) -> tuple[float, float, float, float] | None:
    """The ground-truth box in model ``n``'s input pixels."""
    return None if source.box is None else crops[n].box_to_tensor(source.box)


def prior_sigma(n: str) -> tuple[float, str]:
    """The centre prior's width in model ``n``'s input pixels (fitted at 64 px, scaled like the image) and its note."""
    sigma64, note = study_data.centre_prior_sigma()
    sx, sy = crops[n].scale
    sigma = sigma64 * (sx + sy) / 2
    if abs(sigma - sigma64) > 1e-9:
        note += f" ({sigma:.3g} px on the {results[n].picture.shape[0]} px model input)"
    return sigma, note


def localisation(n: str, t: str) -> dict[str, float | bool] | None:
    """Tap ``t`` of model ``n``, registered on its input, against the box, each number beside its baselines."""
    if source.box is None or t not in placed[n]:
        return None
    m = placed[n][t]
    return placement.localise(m, placement.pixel_box(box_in(n), m.shape), prior_sigma(n)[0])


def localisation_line(n: str) -> str | None:
    """Model ``n``'s main map against the box, beside its baselines (None without a box)."""
    t = tap_for(n)
    if source.box is None or t is None:
        return None
    return placement.localisation_caption(localisation(n, t), placement.geometry_text(loaded[n].model, t,
                                                                                      effective.get((n, t))),
                                          prior_sigma(n)[1])


compare_grid.model_rows(grid, extra, more_methods, localisation_line)
demo_class = images.demo_classes().get(source.label, "") if source.label in images.demo_images() else ""
notes = compare_grid.photo_notes(grid, image)
if demo_class is None:
    notes.insert(0, f"Demo photo `{source.label}`: none of the models' classes (an out-of-distribution example).")
elif demo_class:
    notes.insert(0, f"Demo photo `{source.label}`: shows a **{demo_class}**, one of the embedded models' classes.")
warned: dict[str, list[str]] = {}
for n in names:  # each warning names its model: said once, for every model it concerns
    for w in images.preprocess_warnings(image.image.size, n, mode):
        warned.setdefault(re.sub(rf"^{re.escape(n)}:\s*", "", w), []).append(f"`{n}`")
notes += [f"{', '.join(who)}: {w}" for w, who in warned.items()]
if scale == "shared" and any(untrained(n) for n in names):
    notes.append("Untrained models keep their own colour scale (excluded from the shared scale).")
for note in notes:
    st.caption(note)

compare_grid.branch_rows(grid)
compare_grid.difference_section(grid, lambda n, t: analyses.theoretical_rfs(n, (t,))[t][0])
if faith:
    compare_grid.faithfulness_section(grid)
if sanity:
    randomised = {n: analyses.model_cams(source.data, n, loaded[n].device, "random", method, results[n].target, mode)
                  for n in names if not untrained(n)}
    compare_grid.sanity_section(grid, randomised,
                                {n: model_store.load_model(n, "random", current_device()).model for n in randomised})

st.divider()
rows = [
    {"model": n, "weights": loaded[n].label, "method": method, "preprocessing": mode, "tap": t,
     "target": model_store.class_names(n)[results[n].target],
     "target_prob": "" if untrained(n) else float(results[n].probs[results[n].target]),
     "height": m.shape[0], "width": m.shape[1], "max": float(m.max()), "mean": float(m.mean()),
     "all_zero": bool(float(np.abs(m).max()) == 0.0),
     **placement.geometry(loaded[n].model, t), "placement": "effective centre" if (n, t) in effective else
     "receptive-field centre", **(localisation(n, t) or {})}
    for n in names for t in shown[n] if (m := results[n].maps.get(t)) is not None
]
maps = {f"{n}/{t}": results[n].maps[t] for n in names for t in shown[n]}
exported = {**maps, **{f"{placement.REGISTERED_PREFIX}{n}/{t}": m for n in names for t, m in placed[n].items()},
            **{f"weights/{n}": np.array(loaded[n].label) for n in names}}
if with_block:
    main = [tap_for(n) for n in with_block]
    panel = [[placed[n][t] if t else None for n, t in zip(with_block, main, strict=True)]]
    labels = [tap_kind]
    for i in range(max(infos[n][block].num_branches for n in with_block)):
        panel.append([placed[n][infos[n][block].branch_taps[i]]
                      if infos[n][block].num_branches > 1 and i < infos[n][block].num_branches else None
                      for n in with_block])
        labels.append(f"branch {i}")
    titles = [f"{n}{' [UNTRAINED]' if untrained(n) else ''}\n"
              + (textwrap.fill(loaded[n].label, 40) + "\n" if loaded[n].file else "")
              + f"{block} · target {model_store.class_names(n)[results[n].target]}" for n in with_block]
    mixed = scale == "shared" and any(untrained(n) for n in with_block) and not all(untrained(n) for n in with_block)
    png = partial(plots.cam_panel_png, [results[n].picture for n in with_block], panel, titles, row_labels=labels,
                  shared_scale=scale == "shared" and not mixed, alpha=alpha, box=[box_in(n) for n in with_block],
                  suptitle=f"{method} · {mode}" + (" · untrained models marked [UNTRAINED]"
                                                   if any(untrained(n) for n in with_block) else "")
                  + (" · one colour scale per map (untrained maps stay off a shared scale)" if mixed else ""))
    e1, e2, e3 = st.columns(3)
    e1.download_button("Figure (PNG)", png, "cams.png", "image/png")
    e2.download_button("Maps (.npz)", partial(plots.maps_to_npz_bytes, exported), "cams.npz",
                       "application/octet-stream")
    e3.download_button("Numbers (CSV)", partial(plots.rows_to_csv_bytes, rows), "cams.csv", "text/csv")
zero = [f"`{n}` {t}" for n in names for t in shown[n] if float(np.abs(results[n].maps[t]).max()) == 0.0]
if zero:
    st.caption("All-zero maps (no positive evidence for the target at that tap; drawn at the bottom of the scale): "
               + ", ".join(zero) + ".")
st.caption(f"Device: {current_device()}. The .npz file holds the raw (unnormalised) maps at each tap's resolution "
           f"under `model/tap`, the same maps registered on the model input under `{placement.REGISTERED_PREFIX}"
           "model/tap`, and each model's weights under `weights/model`; the CSV gives each map's stride and where "
           f"its cells sit ({placement.REGISTRATION_RULE}, in model-input pixels"
           + (f"; drawn and scored at the effective centres, {centres.probe_note()}" if effective else "") + ")"
           + (", and the localisation numbers with their baselines." if source.box is not None else "."))
