"""Session settings shared by the views (device, weights), on-screen notes and friendly error display.

Nothing here computes anything: heavy work is in ``res2net`` behind the cached wrappers of ``dashboard.services``.
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

if TYPE_CHECKING:
    from dashboard.serving.local_weights import LocalWeights

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # `streamlit run dashboard/app.py` only puts dashboard/ on the path
    sys.path.insert(0, str(REPO_ROOT))

DEFAULT_PAIR = ("tiny_resnet26", "tiny_res2net26_4s")
MAX_UPLOAD_BYTES = 25 * 1024 * 1024  # images only: the server accepts more (weights files, .streamlit/config.toml)
MAX_PIXELS = 40_000_000  # larger images are refused before decoding (decompression bombs)

BRANCH_NOTE = (
    "**Branch order** follows the code: branch 0 is the conv branch with the smallest receptive field, "
    "each later conv branch sees more, and the last branch is the identity (average pool in stage blocks). "
    "The paper numbers the branches the other way round (its y₁ is the identity)."
)
RANDOM_LABEL = "random init (untrained)"

KEEP = dict(persist_state="session", bind="query-params")  # a view setting: kept across pages, and in the URL
PERSIST = dict(persist_state="session")  # kept across pages only (per-branch boxes, class indices)


def settle(key: str, options: list, fallback: object) -> None:
    """Put ``fallback`` into a kept widget whose value (from another page visit, the URL or other models) is not
    among its ``options``, so that what the box shows is always what is drawn."""
    value = st.session_state.get(key)
    if isinstance(fallback, list):  # a list starts from the widget's default or the address's values
        if value is not None and [v for v in value if v in options] != list(value):
            st.session_state[key] = [v for v in value if v in options]
        return
    if value is None:  # opened from a link: the address names the value (kept when valid)
        value = st.query_params.get(key)
    if value not in options:
        st.session_state[key] = fallback


def device_choices() -> list[str]:
    """'auto' and 'cpu', plus 'cuda' when a GPU is visible."""
    import torch

    return ["auto", "cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def current_device() -> str:
    """The torch device the user picked in the sidebar ('auto' resolves to the GPU when present)."""
    import torch

    choice = st.session_state.get("device", "auto")
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cpu"


def weights_mode() -> str:
    """'trained' (the default) or 'random'."""
    return st.session_state.get("weights_mode", "trained")


RUN_STARTED = "run_started"  # session-state key: when this session's current page run started (monotonic s)


def mark_run_start() -> None:
    """Record when this page run started: the compute gate serves earlier runs first."""
    st.session_state[RUN_STARTED] = time.monotonic()


def run_started() -> float:
    """When this session's current page run started (now, outside a page run)."""
    return st.session_state.get(RUN_STARTED, time.monotonic())


def _per_model(key: str, name: str) -> object | None:
    """This session's entry for model ``name`` in the name-keyed map under session-state ``key``."""
    return st.session_state.get(key, {}).get(name)


def _set_per_model(key: str, name: str, value: object | None) -> None:
    """Set (or, with None, drop) model ``name``'s entry in this session's map under ``key``; a new dict each time."""
    entries = {k: v for k, v in st.session_state.get(key, {}).items() if k != name}
    if value is not None:
        entries[name] = value
    st.session_state[key] = entries


WEIGHT_FAILURES = "weight_failures"  # session-state key: model name -> why its trained weights failed to load


def weight_failure(name: str) -> str | None:
    """Why this session's last load of ``name``'s trained weights failed (None: not failed, or retried since)."""
    return _per_model(WEIGHT_FAILURES, name)


def record_weight_failure(name: str, reason: str) -> None:
    """Remember a failed weight load for this session only: other users keep trying on their own."""
    _set_per_model(WEIGHT_FAILURES, name, reason)


def forget_weight_failure(name: str) -> None:
    """Let this session's next load of ``name`` try its trained weights again (the retry button, a download)."""
    _set_per_model(WEIGHT_FAILURES, name, None)


LOCAL_WEIGHTS = "local_weights"  # session-state key: model name -> local_weights.LocalWeights this session uses


def local_weights(name: str) -> LocalWeights | None:
    """The user file this session uses for ``name``'s trained weights (None: the default weights)."""
    return _per_model(LOCAL_WEIGHTS, name)


def use_local_weights(name: str, checked: LocalWeights) -> None:
    """Use a checked user file as ``name``'s trained weights in this session only."""
    _set_per_model(LOCAL_WEIGHTS, name, checked)


def use_default_weights(name: str) -> None:
    """Go back to ``name``'s default trained weights in this session."""
    _set_per_model(LOCAL_WEIGHTS, name, None)


def random_weights_notice(name: str, reason: str | None, where: str) -> None:
    """Say that ``name`` runs with random weights because its trained ones failed: a retry button, and the
    technical reason (paths, URLs, variables) folded away. ``where`` keeps the button's key unique on a page."""
    if not reason:
        return
    st.warning(f"`{name}`: trained weights are not available — showing an untrained (random-init) model; its "
               "predictions are meaningless. Get the weights on the Models page, then retry.")
    c1, c2 = st.columns([1, 5])
    c1.button("Retry", key=f"retry_weights_{where}_{name}", on_click=forget_weight_failure, args=(name,),
              help="Try loading the trained weights again (for this session).")
    with c2.expander("Details"):
        st.code(reason, language="text")


def branch_note() -> None:
    """State the branch-order convention; every page that shows branches calls this."""
    st.caption(BRANCH_NOTE)


def show_exception(exc: BaseException, what: str = "This step") -> None:
    """A readable error with the technical details folded away, instead of a traceback."""
    st.error(f"{what} failed: an unexpected error. The rest of the app keeps working: change a setting, open "
             "another page, or reload this one.")
    with st.expander("Technical details"):
        st.code("".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-6000:], language="text")
