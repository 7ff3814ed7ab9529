"""ERF explorer: effective receptive fields (Luo et al. 2016) of every branch of a block, per model, with metrics."""

from __future__ import annotations

from functools import partial

import numpy as np
import streamlit as st

import res2net
from dashboard import charts, placement
from dashboard import readable as readable_text
from dashboard.services import cached, sources
from dashboard.state import DEFAULT_PAIR, RANDOM_LABEL, branch_note, current_device, random_weights_notice, weights_mode
from res2net.viz import plots

st.title("ERF explorer")
st.caption("The effective receptive field of a tap's central unit: how much each input pixel moves it "
           "(|gradient| summed over RGB and inputs, normalised to sum 1). Random-init ERFs are meaningful too "
           "(Luo et al. study them) and always work offline; they are labelled as such. The cross "
           "marks the unit's receptive-field centre on the input (from the op graph), the dashed square its "
           "theoretical receptive field.")
branch_note()

names = st.multiselect("Models", res2net.list_models(), default=list(DEFAULT_PAIR), max_selections=4, key="erf_models")
if not names:
    st.info("Pick at least one model.")
    st.stop()
weights = weights_mode()
c1, c2 = st.columns(2)
input_kind = c1.radio("Inputs", ["Gaussian noise", "image"], key="erf_inputs", horizontal=True)
n_noise = c2.slider("Noise inputs", 1, 32, 8, key="erf_n", disabled=input_kind != "Gaussian noise")
st.caption(f"Weights: **{'trained' if weights == 'trained' else RANDOM_LABEL}** (set in the sidebar).")
data = None
if input_kind == "image":
    source = sources.pick_image("erf")
    if sources.validated(source) is None:
        st.stop()
    data = source.data

loaded = {n: cached.load_model(n, weights, current_device()) for n in names}
infos = {n: {i.name: i for i in res2net.block_infos(lm.model)} for n, lm in loaded.items()}
blocks = placement.sorted_blocks({n: list(d) for n, d in infos.items()})
normal = [b for b in blocks if any(d.get(b) is not None and d[b].stype == "normal" and d[b].kind == "res2net"
                                   for d in infos.values())]
d1, d2, d3 = st.columns(3)
block = d1.selectbox("Block", blocks, index=blocks.index(normal[len(normal) // 2] if normal else blocks[0]),
                     key="erf_block", help="Listed in network order, over all chosen models.")
log_scale = d2.toggle("Log colour scale", key="erf_log")
positive = d3.toggle("Positive part only (RepLKNet variant)", key="erf_positive")

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
    out = cached.model_erf(n, lm.device, lm.weights, taps, data, n_noise, positive)
    if out.cpu_fallback:
        st.warning(f"`{n}`: the GPU ran out of memory, so this model ran on the CPU.")
    results[n] = {"erf": out.taps, "weights": lm.label, "taps": taps, "rf": cached.theoretical_rfs(n, taps)}
bar.empty()

if data is not None:
    with st.expander("Input image as the models see it", expanded=True):
        pics = st.columns(min(4, len(names)))
        for col, n in zip(pics, names, strict=False):
            col.image(cached.display_image(cached.model_input(data, n), n), caption=f"{n} input", width=160)

PER_ROW = 3  # ERF maps per row: each stays well above 96 px at 1280 px
rows = []
for n, r in results.items():
    label = r["weights"]
    st.subheader(f"{n} · {label}")
    cut = []
    for start in range(0, len(r["taps"]), PER_ROW):
        row_taps = r["taps"][start:start + PER_ROW]
        for col, t in zip(st.columns(PER_ROW), row_taps, strict=False):
            title = t.rsplit(".", 1)[-1] if t != block else "block output"
            e = r["erf"][t]
            if e.metrics.get("touches_border"):
                cut.append(title)
                title += " · cut by the border"
            col.plotly_chart(plots.erf_heatmap(e.map, log=log_scale, title=title, centre=e.centre,
                                               rf_size=e.rf_size), key=f"erf_map_{n}_{t}", width="stretch")
    if cut:
        size = res2net.get_spec(n).input_size
        st.warning(f"`{n}`: the ERF of {', '.join(cut)} fills the {size} px input (99% of its mass reaches the "
                   "border), so its radii are lower bounds; a larger input would show its full extent.")
    curves = {t.rsplit(".", 1)[-1] if t != block else "block output": e.radial
              for t, e in r["erf"].items() if e.radial is not None}
    if curves:
        charts.plotly_chart(plots.radial_mass_figure(curves, title=f"{n}: cumulative ERF mass within radius"),
                        key=f"erf_radial_{n}", width="stretch")
    for t in r["taps"]:
        m = r["erf"][t].metrics
        rows.append({"model": n, "weights": label, "tap": t, "theoretical RF (px)": r["rf"][t][0],
                     **{k: round(float(v), 3) for k, v in m.items() if isinstance(v, (int, float))}})

st.subheader("Metrics")
shown = [readable_text.rf_row(r["model"], r["tap"], r["theoretical RF (px)"], results[r["model"]]["rf"][r["tap"]][1],
                              res2net.get_spec(r["model"]).input_size, r, float("nan"), float("nan"))
         for r in rows]
st.table([{k: v for k, v in row.items() if k not in ("energy share", "sparsity")} | {"weights": r["weights"]}
          for row, r in zip(shown, rows, strict=True)])  # a plain table wraps: ten columns fit 1280 px
st.caption(readable_text.RF_TABLE_NOTE.replace("on this image", "on the inputs above") + " The CSV has every metric "
           "(radial radii, RepLKNet's area ratios) under its code name.")
st.download_button("Numbers (CSV)", partial(plots.rows_to_csv_bytes, rows), "erf.csv", "text/csv")
st.download_button("Maps (.npz)", partial(plots.maps_to_npz_bytes, {f"{n}/{t}": e.map for n, r in results.items()
                                                                  for t, e in r["erf"].items()}
                                                                 | {f"weights/{n}": np.array(r["weights"])
                                                                    for n, r in results.items()}), "erf.npz")
st.caption(f"Device: {current_device()}. Inputs: " + (f"{n_noise} Gaussian-noise images" if data is None else
                                                       "the chosen image") + ".")
