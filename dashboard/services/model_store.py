"""Models for the views: one shared model per (name, device, weights identity), the session's choice of weights
with the reason when trained ones cannot be had, and the models' names, status and info."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
import torch

from dashboard import state
from dashboard.serving import local_weights
from res2net.data import tiny_imagenet as data
from res2net.models import weights
from res2net.models.weights import WeightsError, WeightsUnavailableError


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
    """The weights ``loaded`` carries, in words (``LoadedModel.label``)."""
    return loaded.label


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
