"""Compare CAMs: one image, two or more models side by side, any tap, with each block's per-branch CAMs below."""

from __future__ import annotations

import textwrap
from functools import partial

import numpy as np
import streamlit as st

import res2net
from dashboard import charts, placement
from dashboard.services import cached, one_tap, photos, sources
from dashboard.state import DEFAULT_PAIR, branch_note, current_device, random_weights_notice, weights_mode
from res2net.analysis import cam, gradient_free
from res2net.data import images
from res2net.viz import plots

SANITY_NAME = "Model-randomisation sanity check (Adebayo et al., 2018)"
UNTRAINED_BADGE = ":orange-badge[untrained · random init]"



def method_label(m: str) -> str:
    return f"{gradient_free.LABELS[m]} (gradient-free, one tap at a time)" if m in gradient_free.METHODS else m


st.title("Compare CAMs")
st.caption("Class activation maps at any block or branch of several models for the same image. All taps of a "
           "model come from one forward and one backward pass; opacity, colour scale and tap changes only redraw. "
           "Each map cell is drawn where it looks: cell (i, j) of a stride-S tap at its receptive-field centre "
           "start + S·(i, j) on the model input, carried back onto your photo.")
branch_note()

source = sources.pick_image("compare")
image = sources.validated(source)
if image is None:
    st.stop()
demo_class = images.demo_classes().get(source.label, "") if source.label in images.demo_images() else ""
if demo_class is None:
    st.caption(f"Demo photo `{source.label}`: none of the models' classes (an out-of-distribution example).")
elif demo_class:
    st.caption(f"Demo photo `{source.label}`: shows a **{demo_class}**, one of the embedded models' classes.")

names = st.multiselect("Models", res2net.list_models(), default=list(DEFAULT_PAIR), max_selections=4,
                       key="compare_models",
                       help="The embedded models work offline; ImageNet weights download on demand.")
if not names:
    st.info("Pick at least one model (two or more to compare).")
    st.stop()

c1, c2, c3, c4 = st.columns(4)
method = c1.selectbox("Method", list(cam.METHODS), key="compare_method")
more_methods = c2.multiselect("Also show", [m for m in cam.METHODS if m != method] + list(gradient_free.METHODS),
                              max_selections=3, key="compare_more_methods", format_func=method_label,
                              help="Further CAM methods at the same tap, side by side. Gradient-based ones cost one "
                                   "forward and backward per model; the gradient-free ones (Score-CAM, Ablation-CAM: "
                                   "one forward per channel; EigenCAM: an SVD) are computed one tap at a time.")
mode = c3.selectbox("Preprocessing", list(images.PREPROCESS_MODES), key="compare_mode",
                    help="center_crop: the models' own (resize, centre crop); resize: squeeze the whole photo; "
                         "pad: fit it inside the square.")
target_mode = c4.radio("Target class", ["top-1 (or a clicked row)", "one class for all"], key="compare_target_mode",
                       help="Tick a row of a model's top-5 table to explain that class instead of its top-1.")
common = sorted(set.intersection(*(set(cached.class_names(n)) for n in names)))
target_name = None
if target_mode == "one class for all":
    if not common:
        st.warning("These models share no class; using each model's top-1.")
    else:
        target_name = st.selectbox("Class", common, key="compare_class")
faith = st.toggle("Faithfulness check per map (deletion / insertion)", key="compare_faith",
                  help="Removes the pixels each main map ranks highest and watches the target's probability fall "
                       "(and the reverse), beside random pixel orders: a few batched forward passes per map.")
sanity = st.toggle(SANITY_NAME, key="compare_sanity",
                   help="Shows, under each trained model, the same map from the same architecture with random "
                        "weights (same target class). A map that looks the same without training says more about "
                        "the architecture and the image than about what the model learned.")

loaded = {n: cached.load_model(n, weights_mode(), current_device()) for n in names}
for n, lm in loaded.items():
    random_weights_notice(n, lm.note, "compare")


def untrained(n: str) -> bool:
    return loaded[n].untrained


def clicked_target(n: str) -> int | None:
    """The class of the top-5 row the user clicked in model ``n``'s table, if any."""
    selection = (st.session_state.get(f"compare_topk_{n}") or {}).get("selection") or {}
    rows = selection.get("rows") or []
    top = st.session_state.get(f"compare_topk_classes_{n}") or []
    return int(top[rows[0]]) if rows and rows[0] < len(top) else None


def target_for(n: str) -> int | None:
    if target_name:
        return cached.class_names(n).index(target_name)
    return None if untrained(n) else clicked_target(n)


results = {}
for n, lm in loaded.items():
    results[n] = cached.model_cams(source.data, n, lm.device, lm.weights, method, target_for(n), mode)
    if results[n].cpu_fallback:
        st.warning(f"`{n}`: the GPU ran out of memory, so this model ran on the CPU.")
extra = {(n, m): cached.model_cams(source.data, n, loaded[n].device, loaded[n].weights, m, results[n].target,
                                   mode) for n in names for m in more_methods if m in cam.METHODS}
randomised = {n: cached.model_cams(source.data, n, loaded[n].device, "random", method, results[n].target, mode)
              for n in names if sanity and not untrained(n)}
random_models = {n: cached.load_model(n, "random", current_device()).model for n in randomised}

crops = {n: images.crop_box(image.image.size, n, mode) for n in names}
photo = photos.rgb(source.data)
photo_uri = photos.photo_uri(source.data)
sizes_note = sorted({(crops[n].size, crops[n].mode) for n in names})
H, W = photo.shape[:2]
for size, how in sizes_note:
    who = ", ".join(f"`{n}`" for n in names if crops[n].size == size)
    verb = {"center_crop": "resized and centre-cropped", "resize": "resized (squeezed)", "pad": "padded and resized"}
    st.caption(f"Your photo ({W}×{H} px) was {verb.get(how, how)} to the model's {size}×{size} px input for {who}; "
               "maps are computed there and drawn back in the photo's own pixel frame (sent to the browser at most "
               f"{photos.DISPLAY_SIDE} px a side).")
for n in names:
    for w in images.preprocess_warnings(image.image.size, n, mode):
        st.caption(f"`{n}`: {w}")

infos = {n: {i.name: i for i in res2net.block_infos(loaded[n].model)} for n in names}
blocks = placement.sorted_blocks({n: list(infos[n]) for n in names})
map_sizes = {n: {b: tuple(results[n].maps[b].shape[-2:]) for b in infos[n]} for n in names}
default = placement.default_block(blocks, map_sizes)

d1, d2, d3, d4, d5, d6 = st.columns([1.2, 1, 0.9, 1, 0.9, 0.9])
block = d1.selectbox("Block", blocks, index=blocks.index(default), key="compare_block",
                     help="Listed in network order. The default is the deepest block whose maps are at least 8×8.")
with_block = [n for n in names if block in infos[n]]
max_branches = max((infos[n][block].num_branches for n in with_block), default=1)
tap_kind = d2.selectbox("Tap", ["block output"] + [f"branch {i}" for i in range(max_branches)]
                        if max_branches > 1 else ["block output"], key="compare_tap")
display = d3.radio("Display", ["cells", "smooth"], key="compare_display",
                   help="cells: each map cell as a flat square at its receptive-field centre (what the model "
                        "computed); smooth: interpolated between the cell centres.")
alpha = d4.slider("Opacity", 0.0, 1.0, 0.5, 0.05, key="compare_alpha")
scale = d5.radio("Colour scale", ["per map", "shared"], key="compare_scale",
                 help="Shared: one colour scale for every trained model's map on the page, so raw magnitudes stay "
                      "comparable. Untrained models keep their own scale.")
cmap = d6.selectbox("Colormap", list(plots.COLORMAPS), key="compare_cmap")
cells = display == "cells"


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


shown = {n: [t for t in [tap_for(n)] + (infos[n][block].branch_taps if block in infos[n] else []) if t]
         for n in names}
shown = {n: list(dict.fromkeys(ts)) for n, ts in shown.items()}
placed = {n: placement.place_all(loaded[n].model, {t: results[n].maps[t] for t in shown[n]},
                                 results[n].picture.shape[:2]) for n in names}
# the shared scale covers the trained models' raw maps of the main method only (an untrained model's magnitudes
# would flatten every trained map, and other methods are in other units)
trained_maps = [results[n].maps[t] for n in names if not untrained(n) for t in shown[n]]
shared_range = placement.colour_range(trained_maps) if scale == "shared" and trained_maps else None


def box_in_photo() -> tuple[float, float, float, float] | None:
    """The ground-truth box in photo pixels (val images are the 64 px photos themselves)."""
    return None if source.box is None else tuple(float(v) for v in source.box)


def box_in(n: str) -> tuple[float, float, float, float] | None:
    """The ground-truth box in model ``n``'s input pixels."""
    return None if source.box is None else crops[n].box_to_tensor(source.box)


def prior_sigma(n: str) -> tuple[float, str]:
    """The centre prior's width in model ``n``'s input pixels (fitted at 64 px, scaled like the image) and its note."""
    sigma64, note = cached.centre_prior_sigma()
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


def figure(n: str, model, maps: dict, taps: list[str], titles: list[str], *, with_photo: bool, rng, key: str,
           per_row: int = 4, colorbar: str = "CAM") -> None:  # noqa: ANN001
    """Draw taps of one model on the photo, on one colour range (``rng`` None: the range of these maps)."""
    lo, hi = rng or placement.colour_range([maps[t] for t in taps])
    pm = [placement.photo_map(model, t, maps[t], crops[n], title, cells=cells) for t, title in zip(taps, titles,
                                                                                                  strict=True)]
    aspect = photo.shape[0] / photo.shape[1]
    # panels about 300 px wide; two a row in a half-page column: less height, so narrow windows keep no blank band
    panel = int(min(max(aspect * (300 if with_photo else 340 if per_row > 2 else 240), 180), 440))
    fig = plots.maps_on_photo_figure(photo, pm, vmin=lo, vmax=hi, with_photo=with_photo, cells=cells, alpha=alpha,
                                     colorscale=cmap, box=box_in_photo(), colorbar_title=colorbar, per_row=per_row,
                                     panel_height=panel + 30, photo_uri=photo_uri)
    charts.plotly_chart(fig, key=key, width="stretch")


def gradient_free_panel(n: str, m: str, tap: str) -> None:
    """A gradient-free map of ``tap``, computed on request (Score-CAM and Ablation-CAM run one forward per channel)."""
    lm, r = loaded[n], results[n]
    key = (source.data, n, lm.weights, m, tap, r.target, mode)
    done = st.session_state.setdefault("compare_gradient_free_done", set())
    if m != "eigencam" and key not in done:
        if not st.button(f"Compute {gradient_free.LABELS[m]} at `{tap}`", key=f"compare_gf_{m}_{n}",
                         help="One forward pass per channel of this tap: seconds for the embedded models, minutes "
                              "for deep taps of ImageNet models on a CPU."):
            return
        done.add(key)
    raw = one_tap.gradient_free_map(source.data, n, lm.device, lm.weights, m, tap, r.target, mode)
    figure(n, lm.model, {tap: raw}, [tap], [f"{gradient_free.LABELS[m]} (one tap)"], with_photo=False, rng=None,
           key=f"compare_{m}_{n}")


cols = st.columns(len(names))
for col, n in zip(cols, names, strict=True):
    r, lm = results[n], loaded[n]
    classes = cached.class_names(n)
    with col:
        st.subheader(n)
        badge = (UNTRAINED_BADGE if untrained(n) else f":violet-badge[{lm.label}]" if lm.file is not None
                 else ":green-badge[trained]")
        st.markdown(f"{badge} · {lm.device} · {method}")
        tap = tap_for(n)
        if tap is None:
            st.info(why_missing(n))
        else:
            scale_note = ("own colour scale (untrained: excluded from the shared scale)" if untrained(n) and
                          scale == "shared" else "shared colour scale" if scale == "shared" else "its own colour scale")
            figure(n, lm.model, r.maps, [tap], [f"{tap} · {method}"], with_photo=True,
                   rng=None if untrained(n) else shared_range, key=f"compare_main_{n}")
            target_txt = (f"target: {classes[r.target]}" if untrained(n) else
                          f"target: {classes[r.target]} (p = {float(r.probs[r.target]):.3f})")
            st.caption(f"{placement.grid_text(lm.model, tap, r.maps[tap], crops[n])} · {target_txt} · "
                       f"{scale_note}.")
            if faith:
                st.caption(one_tap.faithfulness_caption(one_tap.map_faithfulness(
                    source.data, n, lm.device, lm.weights, method, tap, target_for(n), mode)))
            if source.box is not None:
                st.caption(placement.localisation_caption(localisation(n, tap),
                                                          placement.geometry_text(lm.model, tap), prior_sigma(n)[1]))
            if more_methods:
                for m in more_methods:
                    if m in gradient_free.METHODS:
                        gradient_free_panel(n, m, tap)
                        continue
                    em = extra[(n, m)].maps
                    rng = None
                    if scale == "shared" and not untrained(n):
                        rng = placement.colour_range([extra[(k, m)].maps[t] for k in names if not untrained(k)
                                                      for t in [tap_for(k)] if t])
                    figure(n, lm.model, em, [tap], [f"{m}"], with_photo=False, rng=rng, key=f"compare_{m}_{n}")
                st.caption(f"Other methods at `{tap}`, each on its own scale (shared across models when the colour "
                           "scale is shared): different methods are in different units.")
        if untrained(n):
            st.caption("An untrained model's outputs are noise: no class probabilities are shown, and the target is "
                       "the chosen class or its highest logit.")
        else:
            top = [int(k) for k in np.argsort(r.probs)[::-1][:5]]
            st.session_state[f"compare_topk_classes_{n}"] = top
            st.dataframe({"class": [classes[k] for k in top], "probability": [round(float(r.probs[k]), 4)
                                                                             for k in top]},
                         hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
                         key=f"compare_topk_{n}")
            st.caption("Tick a row's box to explain that class.")
        if n in randomised and tap is not None:
            rr = randomised[n]
            figure(n, random_models[n], rr.maps, [tap], [f"{tap} · untrained"], with_photo=False, rng=None,
                   key=f"compare_random_{n}")
            st.caption(f"{UNTRAINED_BADGE} same architecture, random weights, same target — {SANITY_NAME}: a CAM "
                       "that survives randomisation does not show what the model learned.")
        info = infos[n].get(block)
        if info is not None and info.num_branches > 1:
            st.markdown(f"**Branches of `{block}`** ({info.stype} block)")
            rng = shared_range if scale == "shared" and not untrained(n) else None
            figure(n, lm.model, r.maps, info.branch_taps,
                   [info.branch_label(i) for i in range(info.num_branches)], with_photo=False, rng=rng,
                   key=f"compare_branches_{n}", per_row=2 if len(names) > 1 else 4)
            st.caption(f"{placement.grid_text(lm.model, info.branch_taps[0], r.maps[info.branch_taps[0]], crops[n])}"
                       " · the branches share one colour scale" + (" (the page's)." if rng else "."))

st.divider()
rows = [
    {"model": n, "weights": loaded[n].label, "method": method, "preprocessing": mode, "tap": t,
     "target": cached.class_names(n)[results[n].target],
     "target_prob": "" if untrained(n) else float(results[n].probs[results[n].target]),
     "height": m.shape[0], "width": m.shape[1], "max": float(m.max()), "mean": float(m.mean()),
     "all_zero": bool(float(np.abs(m).max()) == 0.0),
     **placement.geometry(loaded[n].model, t), **(localisation(n, t) or {})}
    for n in names for t in shown[n] if (m := results[n].maps.get(t)) is not None
]
maps = {f"{n}/{t}": results[n].maps[t] for n in names for t in shown[n]}
exported = {**maps, **{f"{placement.REGISTERED_PREFIX}{n}/{t}": m for n in names for t, m in placed[n].items()},
            **{f"weights/{n}": np.array(loaded[n].label) for n in names}}
if with_block:
    main = [tap_for(n) for n in with_block]
    grid = [[placed[n][t] if t else None for n, t in zip(with_block, main, strict=True)]]
    labels = [tap_kind]
    for i in range(max(infos[n][block].num_branches for n in with_block)):
        grid.append([placed[n][infos[n][block].branch_taps[i]]
                     if infos[n][block].num_branches > 1 and i < infos[n][block].num_branches else None
                     for n in with_block])
        labels.append(f"branch {i}")
    titles = [f"{n}{' [UNTRAINED]' if untrained(n) else ''}\n"
              + (textwrap.fill(loaded[n].label, 40) + "\n" if loaded[n].file else "")
              + f"{block} · target {cached.class_names(n)[results[n].target]}" for n in with_block]
    mixed = scale == "shared" and any(untrained(n) for n in with_block) and not all(untrained(n) for n in with_block)
    png = partial(plots.cam_panel_png, [results[n].picture for n in with_block], grid, titles, row_labels=labels,
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
           f"its cells sit ({placement.REGISTRATION_RULE}, in model-input pixels)"
           + (", and the localisation numbers with their baselines." if source.box is not None else "."))
