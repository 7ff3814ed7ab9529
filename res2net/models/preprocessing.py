"""The one input normalisation: uint8 (or [0, 255] float) images to a model's input with its spec's mean/std.

Training, evaluation, the knock-out study and user photos all go through ``normalize`` (photos after their
resize/crop), so a model always sees the same preprocessing it was trained with.
"""

from __future__ import annotations

import torch

__all__ = ["normalize", "mean_std"]


def mean_std(spec: object, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """``spec.mean`` and ``spec.std`` as float32 (1, 3, 1, 1) tensors on ``device``."""
    return (torch.tensor(spec.mean, device=device).view(1, 3, 1, 1),
            torch.tensor(spec.std, device=device).view(1, 3, 1, 1))


def normalize(images: torch.Tensor, spec: object, device: torch.device | str | None = None) -> torch.Tensor:
    """(N, 3, H, W) images with values in [0, 255] (uint8 or float) as float32 ``(x / 255 - mean) / std``."""
    dev = images.device if device is None else torch.device(device)
    mean, std = mean_std(spec, dev)
    return (images.to(dev).float() / 255.0 - mean) / std
