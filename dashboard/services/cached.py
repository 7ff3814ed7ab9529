"""Cached wrappers around ``res2net``: models per (name, device, weights identity), results keyed by image bytes
and settings.

Everything a view redraws on a cheap change (opacity, colour scale, branch) comes from these caches, so such
changes never recompute a CAM, a feature map or an ERF. Decoded images and results live in one cache bounded in
bytes and time (``budget.py``) and shared by all sessions; computing them waits for a slot of the server's compute
gate (``admission.py``), and a session that waits is told its place in the queue.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import streamlit as st
import torch

from dashboard import state
from dashboard.serving import admission, budget, local_weights
from dashboard.state import MAX_PIXELS, MAX_UPLOAD_BYTES, REPO_ROOT
from res2net.analysis import cam, erf, features
from res2net.data import images
from res2net.data import tiny_imagenet as data
from res2net.geometry import receptive_field
from res2net.metrics import boxes as localize
from res2net.models import weights
from res2net.models.weights import WeightsError, WeightsUnavailableError

RESULTS_FILE = REPO_ROOT / "assets" / "results" / "tiny_imagenet_100.json"
# Width (px at 64 px) of the centred Gaussian prior when the train boxes are absent: the value
# localize.fit_centre_prior_sigma gives on the 50,000 Tiny-ImageNet-100 train boxes (the objects' spread about
# the image centre).
CENTRE_PRIOR_SIGMA_FALLBACK = 16.69
# Decoded uploads keep at most this many pixels (12 MB as RGB): a 2000 px square, ~8x the side of the largest
# model's resized input (256 px) and more than the page displays.
KEEP_PIXELS = 4_000_000
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


# ---------------------------------------------------------------- models
@st.cache_resource(show_spinner="Loading model…", max_entries=8)
def get_model(name: str, device: str, weights: str) -> torch.nn.Module:
    """One shared model per (name, device, weights identity): 'trained' (the default weights), 'random' (a
    fixed-seed initialisation) or 'file:<sha256>' (a user's checked file, ``local_weights``)."""
    import res2net

    if weights == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = res2net.create_model(name, pretrained=False)
    elif local_weights.is_local(weights):
        path = local_weights.path_of(weights)
        if not path.is_file():
            raise WeightsUnavailableError(f"the server no longer holds the file {path.name}", filename=path.name)
        model = res2net.create_model(name, pretrained=path)
    else:
        model = res2net.create_model(name, pretrained=True)
    return model.to(device).eval()


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for use, which weights it carries, and why it is not the requested ones (if so)."""

    model: torch.nn.Module
    name: str
    weights: str  # what the model actually carries: 'trained', 'random' or 'file:<sha256>' (a user's file)
    device: str
    note: str | None = None  # why the trained weights could not be loaded (technical: paths, URLs)
    file: local_weights.LocalWeights | None = None  # the user's file, when ``weights`` names one

    @property
    def untrained(self) -> bool:
        return self.weights == "random"

    @property
    def label(self) -> str:
        """The weights in words, for pages and exports."""
        if self.file is not None:
            return self.file.label
        return "trained weights" if self.weights == "trained" else "random init (untrained)"


def load_model(name: str, weights: str, device: str) -> LoadedModel:
    """Model ``name`` with the requested ``weights`` ('trained' or 'random') on ``device``; 'trained' means this
    session's own file for the model when it loaded one (Models page), else the default weights; when the trained
    weights cannot be had, the random-init model with the reason.

    A failure is remembered in the user's session (not the server), so reruns do not retry a download on every
    widget change; the user's retry button (``state.forget_weight_failure``) tries again.
    """
    if weights == "random":
        return LoadedModel(get_model(name, device, "random"), name, "random", device)
    own = state.local_weights(name)
    if own is not None:
        try:
            return LoadedModel(get_model(name, device, own.identity), name, own.identity, device, file=own)
        except WeightsError:  # the file is gone (the server restarted or its folder was cleaned): say so once
            state.use_default_weights(name)
            st.warning(f"`{name}`: the server no longer holds your file {own.filename}; showing the default weights. "
                       "Load the file again on the Models page to use it.")
    failed = state.weight_failure(name)
    if failed is not None:
        return LoadedModel(get_model(name, device, "random"), name, "random", device, note=failed)
    try:
        return LoadedModel(get_model(name, device, "trained"), name, "trained", device)
    except WeightsError as exc:  # anything else is a bug and is reported as one
        reason = str(exc).strip("'\"")
        if weight_status(name) == "downloadable":  # a local file that appears later is picked up at once
            state.record_weight_failure(name, reason)
        return LoadedModel(get_model(name, device, "random"), name, "random", device, note=reason)


def weights_label(loaded: LoadedModel) -> str:
    return loaded.label


# ---------------------------------------------------------------- images
def decode_image(data: bytes) -> images.LoadedImage:
    """Decode and validate uploaded bytes, kept at most ``KEEP_PIXELS`` large; raises the package's ImageError with
    a user-readable message. The refusal is cached too, so a bad file is not decoded again on every rerun."""
    def decode() -> images.LoadedImage | images.ImageError:
        try:
            return images.load_image(data, max_bytes=MAX_UPLOAD_BYTES, max_pixels=MAX_PIXELS,
                                     keep_pixels=KEEP_PIXELS)
        except images.ImageError as exc:
            return exc.with_traceback(None)

    out = shared(("image", image_key(data)), "Decoding the image", decode)
    if isinstance(out, images.ImageError):  # a fresh copy: the cached one must not collect every raise's frames
        raise type(out)(out.message, out.detail) from None
    return out


def model_input(data: bytes, name: str, mode: str = "center_crop") -> torch.Tensor:
    """The (1, 3, S, S) input tensor of model ``name`` for image bytes ('center_crop', 'resize' or 'pad')."""
    return images.preprocess(decode_image(data).image, name, mode=mode)


def display_image(x: torch.Tensor, name: str) -> np.ndarray:
    """The model's input as a uint8 (S, S, 3) picture, so that overlays line up with what the model saw."""
    return images.denormalize(x, name)


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
    key = ("cams", image_key(data), name, device, weights, method, target, mode)
    return shared(key, f"CAMs of {name}", lambda: _model_cams(data, name, device, weights, method, target, mode))


def _model_cams(data: bytes, name: str, device: str, weights: str, method: str, target: int | None,
                mode: str) -> CamResult:
    x = model_input(data, name, mode)

    def run(dev: str) -> tuple[dict, torch.Tensor]:
        model = get_model(name, dev, weights)
        return cam.compute_cams(model, x.to(dev), targets=target, taps=None, method=method, return_logits=True)

    (maps, logits), fell_back = _on_device(run, device)
    logits = logits.detach().float().cpu()[0]
    chosen = int(logits.argmax()) if target is None else int(target)
    return CamResult(
        maps={t: read_only(m[0].detach().float().cpu().numpy()) for t, m in maps.items()},
        probs=read_only(torch.softmax(logits, 0).numpy()),
        target=chosen,
        picture=read_only(display_image(x, name)),
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
    key = ("features", image_key(data), name, device, weights, block)
    return shared(key, f"Feature maps of {name}", lambda: _block_features(data, name, device, weights, block))


def _block_features(data: bytes, name: str, device: str, weights: str, block: str) -> FeatureResult:
    import res2net

    x = model_input(data, name)
    model = get_model(name, device, weights)
    taps = res2net.models.taps.branch_tap_names(model, block)

    def run(dev: str) -> dict:
        return features.capture_features(get_model(name, dev, weights), x.to(dev), taps)

    acts, fell_back = _on_device(run, device)
    stats = features.branch_stats(acts)
    return FeatureResult(acts={t: read_only(a[0].detach().float().cpu().numpy()) for t, a in acts.items()},
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
    key = ("erf", None if data is None else image_key(data), name, device, weights, taps, n_noise, positive_only,
           None if data is not None else size)
    return shared(key, f"ERFs of {name}", lambda: _model_erf(name, device, weights, taps, data, n_noise,
                                                             positive_only, size))


def _model_erf(name: str, device: str, weights: str, taps: tuple[str, ...], data: bytes | None, n_noise: int,
               positive_only: bool, size: int | None = None) -> ErfResult:
    inputs = model_input(data, name) if data is not None else int(n_noise)

    def run(dev: str) -> dict:
        model = get_model(name, dev, weights)
        x = inputs.to(dev) if isinstance(inputs, torch.Tensor) else inputs
        return erf.compute_erf(model, x, list(taps), positive_only=positive_only,
                               size=None if isinstance(x, torch.Tensor) else size)

    out, fell_back = _on_device(run, device)
    model = get_model(name, device, weights)
    result = {}
    for t, e in out.items():
        try:  # e.centre is tap_rf_info(model, t).centre of the tap's middle unit
            centre, rf_size = tuple(e.centre), tuple(receptive_field.tap_rf_info(model, t).size)
        except NotImplementedError:  # no receptive-field rule for an op on the path: mark nothing rather than guess
            centre = rf_size = None
        radii, mass = (np.asarray(p, dtype=np.float64) for p in e.radial_profile())
        result[t] = ErfTap(map=read_only(np.array(e.map, dtype=np.float64)), metrics=dict(e.metrics),
                           radial=(radii, mass), centre=centre, rf_size=rf_size)
    return ErfResult(taps=result, cpu_fallback=fell_back)


# ---------------------------------------------------------------- localisation baselines
@st.cache_data(show_spinner="Fitting the centre prior on the train boxes…")
def centre_prior_sigma(data_dir: str | None = None) -> tuple[float, str]:
    """Width (px at 64 px) of the centred Gaussian prior fitted on the Tiny-ImageNet-100 train boxes, and its source.

    Fitted on train boxes so that it is never tuned on the val boxes it is compared with; without the data
    folder it is ``CENTRE_PRIOR_SIGMA_FALLBACK``, and the note says so.
    """
    folder = Path(data_dir) if data_dir else data.default_data_dir()
    try:
        boxes = data.read_box_array(folder, "train")
    except (data.DataError, OSError):
        boxes = np.zeros((0, 4), dtype=np.int64)
    if not len(boxes):
        return CENTRE_PRIOR_SIGMA_FALLBACK, (
            f"centre prior σ = {CENTRE_PRIOR_SIGMA_FALLBACK:.1f} px at 64 px, a fixed value: the Tiny-ImageNet-100 "
            "train boxes it is fitted on are not present")
    sigma = float(localize.fit_centre_prior_sigma(boxes, data.IMAGE_SIZE))
    return sigma, f"centre prior σ = {sigma:.1f} px at 64 px, fitted on {len(boxes):,} Tiny-ImageNet-100 train boxes"


# ---------------------------------------------------------------- data, names, status
@st.cache_resource(show_spinner="Reading Tiny-ImageNet-100 val…")
def val_split():  # noqa: ANN201  (res2net.data.tiny_imagenet.TinyImageNet | None)
    """The Tiny-ImageNet-100 val split when the data folder is present, else None."""
    if not data.default_data_dir().is_dir():
        return None
    try:
        return data.TinyImageNet("val")
    except (data.DataError, OSError):  # an incomplete folder is the same as no folder for the views
        return None


def png_bytes(array: np.ndarray) -> bytes:
    """A uint8 (H, W, 3) or (3, H, W) array as PNG bytes (how gallery images enter the image pipeline)."""
    from PIL import Image

    a = np.asarray(array)
    if a.ndim == 3 and a.shape[0] == 3:
        a = a.transpose(1, 2, 0)
    buf = io.BytesIO()
    Image.fromarray(a.astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@st.cache_data(show_spinner=False)
def class_names(name: str) -> list[str]:
    """Readable class names of a model's output, or 'class k' where none are known."""
    import res2net

    spec = res2net.get_spec(name)
    if spec.num_classes == 1000:
        from torchvision.models import ResNet50_Weights

        return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])
    if spec.embedded:
        card = res2net.model_info(name).get("card") or {}
        if isinstance(card.get("classes"), list) and len(card["classes"]) == spec.num_classes:
            return [str(c) for c in card["classes"]]
        if (data.default_data_dir() / "wnids.txt").is_file():
            return data.read_classes(data.default_data_dir())
    return [f"class {k}" for k in range(spec.num_classes)]


@st.cache_data(show_spinner=False, ttl=30)
def weight_status(name: str) -> str:
    """'local', 'embedded', 'embedded-missing', 'cached' or 'downloadable' (``weights.weight_status``)."""
    return weights.weight_status(name)


@st.cache_data(show_spinner=False, ttl=300)
def network_available() -> bool:
    """Whether the official weight host answers (checked at most every 5 minutes; never raises)."""
    return bool(weights.network_available())


@st.cache_data(show_spinner=False, ttl=600)
def model_info(name: str) -> dict:
    """The package's model info (GMACs need one forward at full size; the model card may change after training)."""
    import res2net

    return res2net.model_info(name)


def results_files() -> list[Path]:
    """Results files the Claims page offers: the embedded family's first, then every other JSON beside it
    (``assets/results/``: e.g. an ImageNet run of ``python -m res2net.evaluate --dataset imagenet-val``)."""
    others = sorted(p for p in RESULTS_FILE.parent.glob("*.json") if p != RESULTS_FILE)
    return ([RESULTS_FILE] if RESULTS_FILE.is_file() else []) + others


def results(path: Path | None = None) -> dict | None:
    """The evaluation results in ``path`` (default: the embedded family's), or None when the file is absent.

    A file of another schema version or not a results file raises ``res2net.evaluation.results.ResultsError``.
    """
    from res2net.evaluation.results import load_results

    path = RESULTS_FILE if path is None else path
    if not path.is_file():
        return None
    return load_results(path)


def uploaded_results(raw: bytes, name: str) -> dict:
    """An uploaded results file, validated; ``ResultsError`` says why it is not one."""
    import json

    from res2net.evaluation.results import ResultsError, validate_results

    try:
        res = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ResultsError(f"{name} is not a JSON file ({e})") from e
    return validate_results(res, name)
