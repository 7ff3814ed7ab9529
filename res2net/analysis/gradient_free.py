"""Gradient-free CAMs from the grad-cam package (Score-CAM, Ablation-CAM, EigenCAM) at one tap, raw at the tap's
resolution.

These need one forward per channel (Score-CAM, Ablation-CAM) or an SVD of the activations (EigenCAM), so unlike
``res2net.analysis.cam`` they are computed one tap at a time. The package's own resize-and-normalise step is
skipped: maps
stay raw so that they can be registered like every other map (``res2net.geometry.registration.register``).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from res2net.models.taps import get_tap

METHODS = ("scorecam", "ablationcam", "eigencam")
LABELS = {"scorecam": "Score-CAM", "ablationcam": "Ablation-CAM", "eigencam": "EigenCAM"}


def _cam_class(method: str):  # noqa: ANN202
    from pytorch_grad_cam import AblationCAM, EigenCAM, ScoreCAM

    classes = {"scorecam": ScoreCAM, "ablationcam": AblationCAM, "eigencam": EigenCAM}
    if method not in classes:
        raise ValueError(f"unknown gradient-free method {method!r}; choose one of {', '.join(METHODS)}")
    return classes[method]


def gradient_free_cam(model: nn.Module, x: torch.Tensor, tap: str, target: int, method: str = "scorecam",
                      batch_size: int = 64) -> np.ndarray:
    """The raw (h, w) map of ``method`` at ``tap`` for class ``target`` of a (1, 3, H, W) input, float64, ReLU'd as
    the package does, not resized or normalised. EigenCAM ignores ``target`` (it explains the activations)."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"expected one image of shape (1, 3, H, W), got {tuple(x.shape)}")
    model = copy.deepcopy(model).eval()  # Ablation-CAM swaps a module in place; the caller's model may be shared
    layer = get_tap(model, tap)
    cls = _cam_class(method)
    cam = cls(model=model, target_layers=[layer])
    if hasattr(cam, "batch_size"):
        cam.batch_size = batch_size
    try:
        with torch.no_grad():
            cam.activations_and_grads(x)
        activations = cam.activations_and_grads.activations[0]
        targets = [ClassifierOutputTarget(int(target))]
        with torch.no_grad():
            raw = cam.get_cam_image(x, layer, targets, activations.cpu().numpy(), None, False)
    finally:
        cam.activations_and_grads.release()
    raw = np.asarray(raw, dtype=np.float64)
    return np.maximum(raw[0], 0.0)
