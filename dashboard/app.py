"""res2scope dashboard: navigation and sidebar only; each view is one file under ``dashboard/views/``."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dashboard import state  # noqa: E402
from dashboard.services import model_store
from dashboard.serving import admission, budget

budget.return_large_frees_to_os()  # decoded uploads' memory goes back to the system when dropped
# the compute gate's slots together use each core once (or fewer threads, when OMP_NUM_THREADS asks for fewer)
torch.set_num_threads(min(torch.get_num_threads(), admission.threads_per_worker(admission.gate().workers)))
st.set_page_config(page_title="res2scope", page_icon=":material/biotech:", layout="wide")

PAGES = [
    st.Page("views/compare.py", title="Compare CAMs", icon=":material/compare:", default=True),
    st.Page("views/scales.py", title="Scales", icon=":material/stacks:"),
    st.Page("views/erf.py", title="ERF explorer", icon=":material/filter_center_focus:"),
    st.Page("views/knockout.py", title="Knock-out", icon=":material/content_cut:"),
    st.Page("views/claims.py", title="Claims", icon=":material/fact_check:"),
    st.Page("views/models.py", title="Models", icon=":material/view_list:"),
]


def sidebar() -> None:
    """Device and weights choices, weight status of the default pair, and the offline note."""
    with st.sidebar:
        st.markdown("### res2scope")
        st.radio("Device", state.device_choices(), key="device", horizontal=True,
                 format_func=lambda d: {"auto": "auto", "cpu": "CPU", "cuda": "GPU"}[d],
                 help="auto uses the GPU when one is present.")
        st.caption(f"Running on **{state.current_device()}**.")
        st.radio("Weights", ["trained", "random"], key="weights_mode", horizontal=True, bind="query-params",
                 format_func=lambda w: "trained" if w == "trained" else "random init",
                 help="Random-init models are useful for receptive-field studies and always work offline.")
        st.markdown("**Weights status**")
        online = model_store.network_available()
        for name in dict.fromkeys([*state.DEFAULT_PAIR, *(st.session_state.get("compare_models") or [])]):
            own = state.local_weights(name)  # this session's own file comes first
            status = own.label if own is not None else model_store.weight_status(name)
            st.caption(f"`{name}`: {'not downloaded (offline)' if status == 'downloadable' and not online else status}")
        if not online:
            st.info("The network is unreachable: the embedded models (trained on Tiny-ImageNet-100, shipped with "
                    "the app) are the default; ImageNet weights load only if already cached.",
                    icon=":material/cloud_off:")


KEPT_CHOICES = ("_source", "_demo", "_cls")  # the image-source widgets of sources.py (keys end so)


def keep_sources() -> None:
    """Keep each view's image choice (source, demo photo, val class) while another page is shown: Streamlit forgets
    the state of widgets that a run does not draw. With the upload kept in the session, an upload survives too."""
    for key in [k for k in st.session_state if isinstance(k, str) and k.endswith(KEPT_CHOICES)]:
        st.session_state[key] = st.session_state[key]


state.mark_run_start()
keep_sources()
sidebar()
page = st.navigation(PAGES)
try:
    page.run()
except Exception as exc:  # a view's unexpected failure: readable message, session keeps working
    state.show_exception(exc, f"The {page.title} view")
