"""Effective cell centres for the Compare page's third placement: each tap's gradient centroids over the shipped
demo photos, computed once per model, weights, tap and input size and shared by every session."""

from __future__ import annotations

import torch

from dashboard.services import image_inputs, model_store, shared_cache
from res2net.data import images
from res2net.geometry.cell_centres import CellCentres, effective_centres
from res2net.models.zoo import get_spec

PROBE_NOTE = "gradient centroids of each row's and column's diagonal cell over the {n} demo photos"


def probe_inputs(name: str) -> torch.Tensor:
    """The demo photos as model ``name``'s centre-cropped inputs (N, 3, S, S)."""
    photos = [p.read_bytes() for p in images.demo_images().values()]
    return torch.cat([image_inputs.model_input(data, name) for data in photos])


def tap_centres(name: str, device: str, weights: str, tap: str) -> CellCentres:
    """The effective centres of ``tap`` of the model (name, device, weights), cached for every session."""
    def compute() -> CellCentres:
        model = model_store.get_model(name, device, weights)
        return effective_centres(model, tap, probe_inputs(name).to(device))

    size = get_spec(name).input_size
    return shared_cache.shared(("effective_centres", name, device, weights, tap, size),
                         f"Effective centres of {tap} ({name})", compute)


def probe_note() -> str:
    """What the effective centres were computed on, in words."""
    return PROBE_NOTE.format(n=len(images.demo_images()))
