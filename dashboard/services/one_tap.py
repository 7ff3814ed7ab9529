"""Cached analyses of one map, computed on request: gradient-free CAMs (one tap at a time) and the faithfulness
curves of a drawn map. Keyed by image bytes and settings like every other result, kept in the server's byte-bounded
cache and computed in compute-gate slots (``shared_cache.shared``)."""

from __future__ import annotations

import numpy as np

from dashboard import placement
from dashboard.services import analyses, image_inputs, model_store, shared_cache
from res2net.analysis import faithfulness, gradient_free


def gradient_free_map(data: bytes, name: str, device: str, weights: str, method: str, tap: str, target: int,
                      mode: str = "center_crop") -> np.ndarray:
    """The raw (h, w) ``method`` map of ``tap`` (``res2net.analysis.gradient_free``) for one image and target class."""
    key = ("gradient_free", shared_cache.image_key(data), name, device, weights, method, tap, target, mode)
    x = image_inputs.model_input(data, name, mode)

    def compute() -> np.ndarray:
        model = model_store.get_model(name, device, weights)
        out = gradient_free.gradient_free_cam(model, x.to(device), tap, target, method)
        return shared_cache.read_only(np.asarray(out))

    return shared_cache.shared(key, f"{gradient_free.LABELS[method]} of {name} at {tap}", compute)


def map_faithfulness(data: bytes, name: str, device: str, weights: str, method: str, tap: str, target: int | None,
                     mode: str = "center_crop") -> faithfulness.Faithfulness:
    """Deletion/insertion curves of the registered ``method`` map at ``tap`` (the one Compare draws), for the class
    it explains, beside random pixel orders."""
    key = ("faithfulness", shared_cache.image_key(data), name, device, weights, method, tap, target, mode)
    r = analyses.model_cams(data, name, device, weights, method, target, mode)
    x = image_inputs.model_input(data, name, mode)

    def compute() -> faithfulness.Faithfulness:
        model = model_store.get_model(name, device, weights)
        placed = placement.place(model, tap, r.maps[tap], r.picture.shape[:2])
        return faithfulness.deletion_insertion(model, x.to(device), placed, r.target)

    return shared_cache.shared(key, f"Deletion and insertion curves of {name}", compute)

