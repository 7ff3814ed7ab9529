"""The server's one result cache: results keyed by image digest and settings, bounded in bytes and time
(``budget.py``), shared by all sessions and computed in compute-gate slots (``admission.py``)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import streamlit as st

from dashboard import state
from dashboard.serving import admission, budget

RESULTS = budget.cache_from_env()  # decoded images and analysis results of every session, within one byte budget
T = TypeVar("T")


def image_key(data: bytes) -> str:
    """A short digest of image bytes, for cache keys."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def shared(key: tuple, what: str, compute_it: Callable[[], T]) -> T:
    """``compute_it()``'s result under ``key`` (start it with the function's name, include the image digest and
    every setting) in the server's byte-bounded cache; computed in a compute-gate slot, once for all sessions.

    While it waits for a slot the page says how many go first. The notice is cleared only after the result is
    stored, so a rerun requested meanwhile (raised by Streamlit at the next page update) never loses a result.
    """
    boxes: list = []

    def gated() -> T:
        def waiting(ahead: int) -> None:
            if not boxes:
                boxes.append(st.empty())
            boxes[0].info(f"{what}: queued ({ahead} ahead); other users' analyses run first.",
                          icon=":material/hourglass_top:")

        with admission.gate().slot(waiting, priority=state.run_started()):
            if not boxes:
                boxes.append(st.empty())
            boxes[0].caption(f"{what}…")
            return compute_it()

    try:  # inside a slot (a result needed by another's computation): never wait on a session queued behind it
        return RESULTS.get_or_compute(key, gated, wait=not admission.gate().holds())
    finally:
        if boxes:
            boxes[0].empty()


def read_only(a: np.ndarray) -> np.ndarray:
    """Cached arrays are shared by every session: nobody may write into them."""
    a.setflags(write=False)
    return a
