"""ERF explorer: effective receptive fields (Luo et al. 2016) of every branch of a block, per model, with metrics."""

from __future__ import annotations

from functools import partial

import streamlit as st

import res2net
from dashboard import cached, sources
from dashboard.state import DEFAULT_PAIR, RANDOM_LABEL, branch_note, current_device, random_weights_notice, weights_mode
from res2net import plots

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
c1, c2, c3 = st.columns(3)
weights = c1.radio("Weights", ["trained", "random"], index=0 if weights_mode() == "trained" else 1, key="erf_weights",
                   format_func=lambda w: "trained" if w == "trained" else RANDOM_LABEL)
input_kind = c2.radio("Inputs", ["Gaussian noise", "image"], key="erf_inputs")
n_noise = c3.slider("Noise inputs", 1, 32, 8, key="erf_n", disabled=input_kind != "Gaussian noise")
data = None
if input_kind == "image":
    source = sources.pick_image("erf")
    if sources.validated(source) is None:
        st.stop()
    data = source.data

first = cached.load_model(names[0], weights, current_device())
infos = res2net.block_infos(first.model)
blocks = [i.name for i in infos]
normal = [i.name for i in infos if i.stype == "normal"]
d1, d2, d3 = st.columns(3)
block = d1.selectbox("Block", blocks, index=blocks.index(normal[len(normal) // 2] if normal else blocks[0]),
                     key="erf_block")
log_scale = d2.toggle("Log colour scale", key="erf_log")
positive = d3.toggle("Positive part only (RepLKNet variant)", key="erf_positive")

results: dict[str, dict] = {}
bar = st.progress(0.0, text="Computing ERFs…")
for k, n in enumerate(names):
    lm = cached.load_model(n, weights, current_device())
    random_weights_notice(n, lm.note, "erf")
    info = next((i for i in res2net.block_infos(lm.model) if i.name == block), None)
    if info is None:
        st.info(f"`{n}` has no block `{block}`.")
        continue
    taps = tuple(info.branch_taps) + (block,)
    bar.progress(k / len(names), text=f"ERF of `{n}` · {block} ({len(taps)} taps)…")
    out = cached.model_erf(n, lm.device, lm.weights, taps, data, n_noise, positive)
    if out.cpu_fallback:
        st.warning(f"`{n}`: the GPU ran out of memory, so this model ran on the CPU.")
    results[n] = {"erf": out.taps, "weights": lm.weights, "taps": taps, "rf": cached.theoretical_rfs(n, taps)}
bar.progress(1.0, text="Done.")

rows = []
for n, r in results.items():
    label = "trained" if r["weights"] == "trained" else RANDOM_LABEL
    st.subheader(f"{n} · {label}")
    for col, t in zip(st.columns(len(r["taps"])), r["taps"], strict=True):
        title = t.rsplit(".", 1)[-1] if t != block else "block output"
        e = r["erf"][t]
        col.plotly_chart(plots.erf_heatmap(e.map, log=log_scale, title=title, centre=e.centre,
                                           rf_size=e.rf_size), key=f"erf_map_{n}_{t}", width="stretch")
    curves = {t.rsplit(".", 1)[-1] if t != block else "block output": e.radial
              for t, e in r["erf"].items() if e.radial is not None}
    if curves:
        st.plotly_chart(plots.radial_mass_figure(curves, title=f"{n}: cumulative ERF mass within radius"),
                        key=f"erf_radial_{n}", width="stretch")
    for t in r["taps"]:
        m = r["erf"][t].metrics
        rows.append({"model": n, "weights": label, "tap": t, "theoretical RF (px)": r["rf"][t][0],
                     **{k: round(float(v), 3) for k, v in m.items() if isinstance(v, (int, float))}})

st.subheader("Metrics")
st.dataframe(rows, hide_index=True, width="stretch")
st.download_button("Numbers (CSV)", partial(plots.rows_to_csv_bytes, rows), "erf.csv", "text/csv")
st.download_button("Maps (.npz)", partial(plots.maps_to_npz_bytes, {f"{n}/{t}": e.map for n, r in results.items()
                                                                  for t, e in r["erf"].items()}), "erf.npz")
st.caption(f"Device: {current_device()}. Inputs: " + (f"{n_noise} Gaussian-noise images" if data is None else
                                                       "the chosen image") + ".")
