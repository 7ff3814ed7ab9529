"""Cached gradient-free CAMs (one tap at a time): keyed by image bytes and settings like every other result."""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard import cached
from res2net import gradient_free


@st.cache_data(show_spinner="Computing a gradient-free CAM at one tap…", max_entries=64)
def gradient_free_map(data: bytes, name: str, device: str, weights: str, method: str, tap: str, target: int,
                      mode: str = "center_crop") -> np.ndarray:
    """The raw (h, w) ``method`` map of ``tap`` (``res2net.gradient_free``) for one image and target class."""
    model = cached.get_model(name, device, weights)
    x = cached.model_input(data, name, mode).to(device)
    return gradient_free.gradient_free_cam(model, x, tap, target, method)
