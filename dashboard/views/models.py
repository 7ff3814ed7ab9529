"""Models: the zoo with parameters, GMACs, reported accuracy and its source, weight status, licence, downloads."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

import res2net
from dashboard.services import model_store
from dashboard.serving import admission, local_weights
from dashboard.state import KEEP, forget_weight_failure, run_started, settle, use_default_weights, use_local_weights
from dashboard.state import local_weights as session_file
from res2net.models import weights

st.title("Models")
st.caption("Parameters and GMACs are measured here by the package's counter at each model's input size. "
           "Released Res2Net weights are licensed CC BY-NC-SA 4.0 (non-commercial use only).")

families = sorted({res2net.get_spec(n).family for n in res2net.list_models()}) + ["all"]
family = st.segmented_control("Family", families, default="embedded", key="models_family", **KEEP) or "embedded"
names = res2net.list_models(None if family == "all" else family)

ONLINE = model_store.network_available()
UPLOAD_CAP_MB = int(st.get_option("server.maxUploadSize"))  # what the server accepts (.streamlit/config.toml)


def status_text(name: str) -> str:
    """The weight status as this session sees it: its own file first; 'downloadable' means nothing while offline."""
    own = session_file(name)
    if own is not None:
        return own.label
    status = model_store.weight_status(name)
    return "not downloaded (offline)" if status == "downloadable" and not ONLINE else status


def fmt(v: float | None, digits: int) -> str:
    return "–" if v is None else f"{float(v):.{digits}f}"


rows = []
bar = st.progress(0.0, text="Measuring parameters and GMACs…")
for k, n in enumerate(names):
    bar.progress(k / len(names), text=f"Measuring `{n}` ({k + 1}/{len(names)}; kept for later visits)…")
    info = model_store.model_info(n)
    rows.append({
        "model": n, "family": info["family"], "params (M)": fmt(info["params_m"], 2), "GMACs": fmt(info["gmacs"], 3),
        "input": info["input_size"], "top-1": fmt(info["reported_top1"], 2), "top-5": fmt(info["reported_top5"], 2),
        "accuracy source": info["accuracy_source"], "weights": status_text(n),
        "licence": info["licence"],
    })
bar.empty()
st.table(rows)  # a plain table wraps long sources and licences instead of cutting them off

st.subheader("Get weights")
settle("models_pick", names, names[0])
name = st.selectbox("Model", names, key="models_pick", **KEEP)
info = model_store.model_info(name)
st.markdown(f"**{name}** — {info['description']}")
st.caption("Sources: " + "; ".join(f"{w['label']} ({w['filename']})" for w in info["weights"]))
status = model_store.weight_status(name)
if status in ("embedded", "cached", "local"):
    st.success(f"Weights are available offline ({status}).")
elif status == "embedded-missing":
    st.warning("The embedded weights file is missing from assets/weights; run `python -m res2net.train` to make it.")
if status == "downloadable" and not ONLINE:
    st.info(f"The network is unreachable: `{name}`'s weights cannot be downloaded now. Put the file in the torch hub "
            "cache or point `RES2NET_WEIGHTS` at it (see the README).", icon=":material/cloud_off:")
if status == "downloadable" and st.button("Download weights", key="models_download"):
    bar = st.progress(0.0, text="Connecting…")

    def progress(done: int, total: int | None, label: str) -> None:
        frac = min(1.0, done / total) if total else 0.0
        mb = f"{done / 1e6:.1f}" + (f" / {total / 1e6:.1f} MB" if total else " MB")
        bar.progress(frac, text=f"{label}: {mb}")

    try:
        res2net.create_model(name, pretrained=True, progress=progress)
    except weights.WeightsError as exc:
        bar.empty()
        reason = str(exc).strip(chr(39))
        st.error(f"Could not get the weights of `{name}`: {type(exc).__name__}. The sources tried and their errors "
                 "are below.")
        with st.expander("Details: every source tried"):
            st.code(reason, language="text")
    else:
        bar.progress(1.0, text="Done: verified and cached.")
        model_store.weight_status.clear()
        forget_weight_failure(name)
        st.success(f"`{name}` weights downloaded, verified and cached.")

own = session_file(name)
st.markdown(f"**Use a weights file of your own for `{name}`**")
st.caption("A state dict saved with `torch.save(model.state_dict(), path)`, of any released size: read safely "
           "(tensors only), it must fit the model key by key and shape by shape, and a file named like an official "
           "release must match its SHA-256. It is used for you only (this browser session), on every page.")
if own is not None:
    st.info(f"`{name}` uses **{own.label}** in this session.", icon=":material/person:")
    st.button("Use the default weights again", key="models_local_default", on_click=use_default_weights,
              args=(name,))


def use_checked(label: str, check: Callable[[], local_weights.LocalWeights]) -> None:
    """Run ``check`` (builds the model and reads the file: heavy work, so in a compute slot); use the file when it
    fits, else say why in one line with the full report folded away."""
    try:
        with admission.gate().slot(priority=run_started()):
            checked = check()
    except weights.WeightsError as exc:
        st.error(f"`{label}` cannot be used for `{name}`: {local_weights.refusal(exc)}. Your weights are unchanged"
                 + (f" ({own.label})." if own is not None else " (the default ones)."))
        with st.expander("Details"):
            st.code(str(exc).strip(chr(39)), language="text")
    else:
        use_local_weights(name, checked)
        forget_weight_failure(name)
        st.success(f"`{label}` fits `{name}`: this session now uses {checked.label}.")


from_upload, from_path = st.tabs(["Upload a file", "A file on the server"])
with from_upload:
    up = st.file_uploader("Weights file (.pth, .pt, .bin)", type=["pth", "pt", "bin"], key="models_local_file",
                          help=f"Files up to {UPLOAD_CAP_MB} MB (the largest release is about 180 MB).")
    if up is not None and st.button("Check and use this file", key="models_local_use"):
        use_checked(up.name, lambda: local_weights.check(name, up.getvalue(), up.name))
with from_path:
    roots = local_weights.allowed_roots()
    typed = st.text_input("Path of a weights file on the server", key="models_local_path",
                          placeholder="/data/checkpoints/res2net50_26w_4s-06e79181.pth",
                          help="The full path of a file the server can read; it is copied, so the original may "
                               "change later." + (f" Only files under {', '.join(map(str, roots))} are read."
                                                  if roots else ""))
    if st.button("Check and use this path", key="models_local_path_use"):
        use_checked(typed.strip() or "(no path)", lambda: local_weights.check_path(name, typed))

card = info.get("card")
if card:
    with st.expander("Model card"):
        st.json(card)
