"""ERF explorer: effective receptive fields (Luo et al. 2016) of every branch of a block, per model, with metrics."""

from __future__ import annotations

from functools import partial

import numpy as np
import streamlit as st

import res2net
from dashboard import charts, placement, state
from dashboard import readable as readable_text
from dashboard.services import analyses, image_inputs, model_store, sources
from dashboard.state import DEFAULT_PAIR, KEEP, current_device, random_weights_notice, settle, weights_mode
from res2net.viz import branch_plots, erf_plots, plots

NOISE_SIZES = (64, 128, 224, 256, 384, 512)
DEFAULT_NOISE_SIZE = 256  # as the Claims' ERF study: the 99% mass of layer1-3 ERFs fits
SCALES = {"shared": "one scale for every map", "own": "each map its own"}
PER_ROW = 5  # ERF panels a row: at 1280 px each stays above 96 px
PANEL_PX = 185  # a row's height: about a panel's width at 1280 px, so titles sit on their maps

st.title("ERF explorer", help="The effective receptive field (Luo et al., NeurIPS 2016) of a tap's central unit: how "
         "much each input pixel moves it (|gradient| summed over RGB and over the inputs, normalised to sum 1). "
         "Random-init ERFs are meaningful too (Luo et al. study them) and always work offline.\n\n" + state.BRANCH_NOTE)
st.caption("How far each branch of a block sees, measured on the input. The cross marks the unit's receptive-field "
           "centre, the dashed square its theoretical receptive field.")

settle("erf_models", res2net.list_models(), [])
names = st.multiselect("Models", res2net.list_models(), default=list(DEFAULT_PAIR), max_selections=4, key="erf_models",
                       **KEEP)
if not names:
    st.info("Pick at least one model.")
    st.stop()
weights = weights_mode()
c1, c2, c3 = st.columns(3)
input_kind = c1.radio("Inputs", ["Gaussian noise", "image"], key="erf_inputs", horizontal=True, **KEEP)
noise = input_kind == "Gaussian noise"
noise_size = c2.select_slider("Input size (px)", NOISE_SIZES, value=DEFAULT_NOISE_SIZE, key="erf_size",
                              disabled=not noise, help="Side of the noise inputs. Large enough, the ERF's mass does "
                              "not reach the border; an image is used at the model's own input size.", **KEEP)
n_noise = c3.slider("Noise inputs", 1, 32, 8, key="erf_n", disabled=not noise, **KEEP)
st.caption(f"Weights: **{'trained' if weights == 'trained' else state.RANDOM_LABEL}** (set in the sidebar).")
data = None
if not noise:
    source = sources.pick_image("erf")
    if sources.validated(source) is None:
        st.stop()
    data = source.data

loaded = {n: model_store.load_model(n, weights, current_device()) for n in names}
infos = {n: {i.name: i for i in res2net.block_infos(lm.model)} for n, lm in loaded.items()}
blocks = placement.sorted_blocks({n: list(d) for n, d in infos.items()})
normal = [b for b in blocks if any(d.get(b) is not None and d[b].stype == "normal" and d[b].kind == "res2net"
                                   for d in infos.values())]
d1, d2, d3, d4 = st.columns(4)
settle("erf_block", blocks, normal[len(normal) // 2] if normal else blocks[0])
block = d1.selectbox("Block", blocks, key="erf_block", help="Listed in network order, over all chosen models.", **KEEP)
scale = d2.radio("Colour scale", list(SCALES), format_func=SCALES.get, key="erf_scale", horizontal=True,
                 help="One scale for every map (all models): compare branches by eye; a wider ERF has a lower peak, "
                      "because every map sums to 1. Each its own: every map divided by its own peak.", **KEEP)
log_scale = d3.toggle("Log colour scale", key="erf_log", help="log10 over four decades below the top.", **KEEP)
positive = d4.toggle("Positive part only", key="erf_positive", help="RepLKNet's variant: the positive part of the "
                     "gradient instead of its absolute value.", **KEEP)



def zoom_window(found: dict[str, dict]) -> float | None:
    """Half-side (px) of the square around each unit that holds 99% of every ERF shown, with a margin; None when
    that is most of the input anyway (or an ERF has no measurable radius)."""
    radii = [e.metrics.get("radius_99_square", float("nan")) for r in found.values() for e in r["erf"].values()]
    inputs = [r["input"] for r in found.values()]
    if not radii or not all(np.isfinite(radii)):
        return None
    half = 1.25 * max(radii) + 4
    return half if 2 * half < 0.75 * min(inputs) else None


results: dict[str, dict] = {}
bar = st.progress(0.0, text="Computing ERFs…")
for k, n in enumerate(names):
    lm = loaded[n]
    random_weights_notice(n, lm.note, "erf")
    info = infos[n].get(block)
    if info is None:
        st.info(f"`{n}` has no block `{block}`.")
        continue
    taps = tuple(info.branch_taps) + (block,)
    bar.progress(k / len(names), text=f"ERF of `{n}` · {block} ({len(taps)} taps)…")
    out = analyses.model_erf(n, lm.device, lm.weights, taps, data, n_noise, positive, noise_size if noise else None)
    if out.cpu_fallback:
        st.warning(f"`{n}`: the GPU ran out of memory, so this model ran on the CPU.")
    titles = {t: branch_plots.branch_title(info, i) for i, t in enumerate(info.branch_taps)} | {block: "block output"}
    results[n] = {"erf": out.taps, "weights": lm.label, "taps": taps, "rf": analyses.theoretical_rfs(n, taps),
                  "titles": titles, "input": noise_size if noise else res2net.get_spec(n).input_size}
bar.empty()

if data is not None:
    with st.expander("Input image as the models see it"):
        pics = st.columns(min(4, len(names)))
        for col, n in zip(pics, names, strict=False):
            col.image(image_inputs.display_image(image_inputs.model_input(data, n), n), caption=f"{n} input", width=160)

top = erf_plots.shared_peak([e.map for r in results.values() for e in r["erf"].values()]) if scale == "shared" else None
window = zoom_window(results)
if window is not None:
    st.caption(f"Maps zoomed to the central {2 * window:.0f} px, which hold 99% of every ERF's mass; the metrics "
               "use the whole input.")
rows = []
for n, r in results.items():
    st.subheader(f"{n} · {r['weights']}")
    panels, cut = [], []
    for t in r["taps"]:
        e, title = r["erf"][t], r["titles"][t]
        if e.metrics.get("touches_border"):
            cut.append(title)
        panels.append(erf_plots.ErfPanel(e.map, title + (" · cut" if e.metrics.get("touches_border") else "")
                                         + f" · RF {r['rf'][t][0]} px", e.centre, e.rf_size))
    charts.plotly_chart(erf_plots.erf_grid_figure(panels, shared_max=top, log=log_scale, per_row=PER_ROW,
                                                  window=window, panel_height=PANEL_PX),
                        key=f"erf_maps_{n}", width="stretch")
    if cut:
        st.warning(f"`{n}`: the ERF of {', '.join(cut)} fills the {r['input']} px input (99% of its mass reaches "
                   "the border), so its radii are lower bounds"
                   + ("; choose a larger input size above." if noise and r["input"] < NOISE_SIZES[-1] else "."))
    curves = {r["titles"][t]: e.radial for t, e in r["erf"].items() if e.radial is not None}
    if curves:
        with st.expander(f"{n}: cumulative ERF mass within a radius"):
            charts.plotly_chart(plots.radial_mass_figure(curves, title=f"{n}: cumulative ERF mass within radius"),
                                key=f"erf_radial_{n}", width="stretch")
    for t in r["taps"]:
        m = r["erf"][t].metrics
        rows.append({"model": n, "weights": r["weights"], "tap": t, "theoretical RF (px)": r["rf"][t][0],
                     "input (px)": r["input"],
                     **{k: round(float(v), 3) for k, v in m.items() if isinstance(v, (int, float))}})

st.subheader("Metrics")
shown = [readable_text.rf_row(r["model"], results[r["model"]]["titles"][r["tap"]], r["theoretical RF (px)"],
                              results[r["model"]]["rf"][r["tap"]][1], r["input (px)"], r, float("nan"), float("nan"))
         for r in rows]
st.table([{k: v for k, v in row.items() if k not in ("energy share", "sparsity")}
          for row in shown])  # a plain table wraps: nine columns fit 1280 px; the weights head each model's maps
with st.expander("What the columns mean"):
    st.markdown(readable_text.RF_TABLE_NOTE.replace("on this image", "on the inputs above") + " The CSV has every "
                "metric (radial radii, RepLKNet's area ratios) under its code name.")
d1, d2, d3 = st.columns([1, 1, 3])
d1.download_button("Numbers (CSV)", partial(plots.rows_to_csv_bytes, rows), "erf.csv", "text/csv")
d2.download_button("Maps (.npz)", partial(plots.maps_to_npz_bytes, {f"{n}/{t}": e.map for n, r in results.items()
                                                                 for t, e in r["erf"].items()}
                                                                | {f"weights/{n}": np.array(r["weights"])
                                                                   for n, r in results.items()}), "erf.npz")
d3.caption(f"Device: {current_device()}. Inputs: " + (f"{n_noise} Gaussian-noise images of {noise_size} px"
                                                      if noise else "the chosen image") + ".")
