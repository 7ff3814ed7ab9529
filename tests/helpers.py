"""Shared test helpers (importable as ``helpers``: pytest puts this folder on sys.path)."""

from __future__ import annotations

import torch
from torch import nn


def randomise_bn(model: nn.Module, *, seed: int = 0, size: int = 64, channels: int = 3, batches: int = 1) -> nn.Module:
    """Random BN affine parameters and running statistics measured on random batches; returns the model in eval mode.

    Measured (not identity) statistics keep activations of order one through deep trunks, so float32 tolerances
    stay meaningful; the affine parameters are far from their 1/0 initialisation.
    """
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.2)
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
        model.train()
        for _ in range(batches):
            model(torch.randn(4, channels, size, size, generator=g))
    for m in bns:
        m.momentum = 0.1
    return model.eval()
