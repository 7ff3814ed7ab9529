"""The per-image analyses the views draw: CAMs of every tap, a block's branch features and ERFs, each cached by
image digest and settings (falling back to the CPU when the GPU runs out of memory), and theoretical receptive fields.

Everything a view redraws on a cheap change (opacity, colour scale, branch) comes from these caches, so such
changes never recompute a CAM, a feature map or an ERF.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from dashboard.services import image_inputs, model_store, shared_cache
from res2net.analysis import cam, erf, features
from res2net.geometry import receptive_field


def _on_device(fn, device: str):  # noqa: ANN001, ANN202
    """Run ``fn(device)``; on GPU out-of-memory, run it again on the CPU and report the fallback."""
    try:
        return fn(device), False
    except torch.cuda.OutOfMemoryError:
        if device == "cpu":
            raise
        torch.cuda.empty_cache()
        return fn("cpu"), True


# ---------------------------------------------------------------- CAMs
@dataclass(frozen=True)
class CamResult:
    """Raw CAMs of every tap of one model for one image, its class probabilities, and the picture it saw."""

    maps: dict[str, np.ndarray]  # tap -> (h, w) float32 map at the tap's resolution
    probs: np.ndarray  # (num_classes,) softmax of the logits
    target: int  # the class the maps explain
    picture: np.ndarray  # the model input as uint8 (S, S, 3)
    cpu_fallback: bool  # the GPU ran out of memory and the CPU computed this


def model_cams(
    data: bytes, name: str, device: str, weights: str, method: str, target: int | None, mode: str = "center_crop"
) -> CamResult:
    """Raw CAMs of every tap of ``name`` for one image (one forward, one backward), logits, and the input picture.

    ``weights`` is the weights actually loaded ('trained' or 'random'); ``target`` None means top-1.
    """
    key = ("cams", shared_cache.image_key(data), name, device, weights, method, target, mode)
    return shared_cache.shared(key, f"CAMs of {name}",
                               lambda: _model_cams(data, name, device, weights, method, target, mode))


def _model_cams(data: bytes, name: str, device: str, weights: str, method: str, target: int | None,
                mode: str) -> CamResult:
    x = image_inputs.model_input(data, name, mode)

    def run(dev: str) -> tuple[dict, torch.Tensor]:
        model = model_store.get_model(name, dev, weights)
        return cam.compute_cams(model, x.to(dev), targets=target, taps=None, method=method, return_logits=True)

    (maps, logits), fell_back = _on_device(run, device)
    logits = logits.detach().float().cpu()[0]
    chosen = int(logits.argmax()) if target is None else int(target)
    read_only = shared_cache.read_only
    return CamResult(
        maps={t: read_only(m[0].detach().float().cpu().numpy()) for t, m in maps.items()},
        probs=read_only(torch.softmax(logits, 0).numpy()),
        target=chosen,
        picture=read_only(image_inputs.display_image(x, name)),
        cpu_fallback=fell_back,
    )


# ---------------------------------------------------------------- features
@dataclass(frozen=True)
class FeatureResult:
    """Activations of each branch of one block for one image, with their per-branch statistics."""

    acts: dict[str, np.ndarray]  # tap -> (C, h, w) float32
    stats: dict[str, dict]  # tap -> features.branch_stats entry (energy_share, sparsity, top_channels, ...)
    cpu_fallback: bool


def block_features(data: bytes, name: str, device: str, weights: str, block: str) -> FeatureResult:
    """Activations of each branch of ``block`` (numpy (C, h, w)) and their per-branch statistics."""
    key = ("features", shared_cache.image_key(data), name, device, weights, block)
    return shared_cache.shared(key, f"Feature maps of {name}",
                               lambda: _block_features(data, name, device, weights, block))


def _block_features(data: bytes, name: str, device: str, weights: str, block: str) -> FeatureResult:
    import res2net

    x = image_inputs.model_input(data, name)
    model = model_store.get_model(name, device, weights)
    taps = res2net.models.taps.branch_tap_names(model, block)

    def run(dev: str) -> dict:
        return features.capture_features(model_store.get_model(name, dev, weights), x.to(dev), taps)

    acts, fell_back = _on_device(run, device)
    stats = features.branch_stats(acts)
    return FeatureResult(acts={t: shared_cache.read_only(a[0].detach().float().cpu().numpy()) for t, a in acts.items()},
                         stats=stats, cpu_fallback=fell_back)


# ---------------------------------------------------------------- receptive fields
@st.cache_data(show_spinner=False, max_entries=64)
def theoretical_rfs(name: str, taps: tuple[str, ...]) -> dict[str, tuple[int, int]]:
    """Theoretical receptive field and stride (input pixels) per tap, from the module graph."""
    import res2net

    model = res2net.create_model(name, pretrained=False)
    return {t: (int(receptive_field.theoretical_rf(model, t)), int(receptive_field.tap_stride(model, t))) for t in taps}


@dataclass(frozen=True)
class ErfTap:
    """The ERF of one tap's central unit: normalised map, metrics, radial mass profile, and where the unit looks."""

    map: np.ndarray  # (H, W) float64 over the input, sums to 1
    metrics: dict[str, float]
    radial: tuple[np.ndarray, np.ndarray]  # (radii px, cumulative mass)
    centre: tuple[float, float] | None  # receptive-field centre of the unit on the input; None: no rule for an op
    rf_size: tuple[int, int] | None  # theoretical receptive field (px); None as above


@dataclass(frozen=True)
class ErfResult:
    """ERFs of several taps of one model, from one image or from Gaussian noise."""

    taps: dict[str, ErfTap]
    cpu_fallback: bool


def model_erf(
    name: str, device: str, weights: str, taps: tuple[str, ...], data: bytes | None, n_noise: int, positive_only: bool,
    size: int | None = None,
) -> ErfResult:
    """ERF map, metrics and radial profile per tap, from one image (``data``) or ``n_noise`` Gaussian inputs of side
    ``size`` px (None: the model's input size)."""
    key = ("erf", None if data is None else shared_cache.image_key(data), name, device, weights, taps, n_noise,
           positive_only, None if data is not None else size)
    return shared_cache.shared(key, f"ERFs of {name}", lambda: _model_erf(name, device, weights, taps, data, n_noise,
                                                                          positive_only, size))


def _model_erf(name: str, device: str, weights: str, taps: tuple[str, ...], data: bytes | None, n_noise: int,
               positive_only: bool, size: int | None = None) -> ErfResult:
    inputs = image_inputs.model_input(data, name) if data is not None else int(n_noise)

    def run(dev: str) -> dict:
        model = model_store.get_model(name, dev, weights)
        x = inputs.to(dev) if isinstance(inputs, torch.Tensor) else inputs
        return erf.compute_erf(model, x, list(taps), positive_only=positive_only,
                               size=None if isinstance(x, torch.Tensor) else size)

    out, fell_back = _on_device(run, device)
    model = model_store.get_model(name, device, weights)
    result = {}
    for t, e in out.items():
        try:  # e.centre is tap_rf_info(model, t).centre of the tap's middle unit
            centre, rf_size = tuple(e.centre), tuple(receptive_field.tap_rf_info(model, t).size)
        except NotImplementedError:  # no receptive-field rule for an op on the path: mark nothing rather than guess
            centre = rf_size = None
        radii, mass = (np.asarray(p, dtype=np.float64) for p in e.radial_profile())
        result[t] = ErfTap(map=shared_cache.read_only(np.array(e.map, dtype=np.float64)), metrics=dict(e.metrics),
                           radial=(radii, mass), centre=centre, rf_size=rf_size)
    return ErfResult(taps=result, cpu_fallback=fell_back)
