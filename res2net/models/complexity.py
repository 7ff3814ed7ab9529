"""Parameter and multiply-accumulate counts, measured by running the model once."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["count_params", "count_macs"]


def count_params(model: nn.Module) -> int:
    """Number of parameters (buffers such as BN statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_size: int | tuple[int, int] = 224) -> int:
    """Multiply-accumulates of one forward at ``input_size``, from convolutions and linear layers.

    Counted with forward hooks on a zero input: conv MACs = output elements x (C_in / groups) x k_h x k_w.
    """
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    total = 0

    def conv_hook(m: nn.Conv2d, inputs: tuple, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        total += out.numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, inputs: tuple, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() * m.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    try:
        model.eval()
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros(1, 3, h, w, device=device))
    finally:
        for hd in handles:
            hd.remove()
        model.train(was_training)
    return total
