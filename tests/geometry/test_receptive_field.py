"""Theoretical receptive fields from the op graph: hand-computed sizes and strides, and a gradient-support
measurement of size and centre."""

from __future__ import annotations

import copy
import functools

import pytest
import torch
from torch import nn

import res2net
from res2net.geometry.receptive_field import tap_rf_info, tap_stride, theoretical_rf

torch.set_num_threads(1)
shared_model = functools.cache(res2net.create_model)  # read-only uses only


#   conv1 7x7/2 → 7 (jump 2); maxpool 3x3/2 → 7 + 2*2 = 11 (jump 4).
#   layer1.0 is a stage block: each branch is conv1 1x1 then one 3x3 (or the 3x3 avg-pool) → 11 + 2*4 = 19;
#   its shortcut (1x1) keeps 11, so the block output is 19.
#   layer1.1 (normal): branch i sees conv_i ∘ … ∘ conv_0, i.e. (2i+3) feature pixels → 19 + (i+1)*8:
#   branch0 27, branch1 35, branch2 43; the identity branch3 adds nothing → 19; output = max → 43.
#   layer1.2: 43 + 24 = 67 at its output; layer2.0's stride-2 3x3 at jump 4 → 67 + 8 = 75 (jump 8).
@pytest.mark.parametrize(
    ("name", "tap", "rf", "stride"),
    [
        ("res2net50_26w_4s", "layer1.0.branch0", 19, 4),
        ("res2net50_26w_4s", "layer1.0.branch3", 19, 4),
        ("res2net50_26w_4s", "layer1.0", 19, 4),
        ("res2net50_26w_4s", "layer1.1.branch0", 27, 4),
        ("res2net50_26w_4s", "layer1.1.branch1", 35, 4),
        ("res2net50_26w_4s", "layer1.1.branch2", 43, 4),
        ("res2net50_26w_4s", "layer1.1.branch3", 19, 4),
        ("res2net50_26w_4s", "layer1.1", 43, 4),
        ("res2net50_26w_4s", "layer2.0", 75, 8),
        # deep stem: 3x3/2 → 3, two 3x3 at jump 2 → 7, 11; maxpool → 15; layer1.0 branch → 23
        ("res2net50d", "layer1.0.branch1", 23, 4),
        # ResNet-50: one 3x3 per block → layer1.1's conv2 path = 19 + 8
        ("resnet50", "layer1.1.branch0", 27, 4),
    ],
)
def test_theoretical_rf_by_hand(name: str, tap: str, rf: int, stride: int) -> None:
    model = shared_model(name)
    assert theoretical_rf(model, tap) == rf and tap_stride(model, tap) == stride


def positive_probe_copy(model: nn.Module) -> nn.Module:
    """A float64 copy in which every unit of a tap depends on every input pixel of its theoretical RF.

    Positive conv weights, identity BN and positive inputs keep every ReLU open; max-pools become avg-pools
    of the same geometry so gradients reach the whole window.
    """
    probe = copy.deepcopy(model).double().eval()
    for m in list(probe.modules()):
        for child_name, child in list(m.named_children()):
            if isinstance(child, nn.MaxPool2d):
                setattr(m, child_name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding))
        if isinstance(m, nn.Conv2d):
            m.weight.data.fill_(1.0 / m.weight[0].numel())
        elif isinstance(m, nn.BatchNorm2d):
            m.running_mean.zero_()
            m.running_var.fill_(1.0)
            m.weight.data.fill_(1.0)
            m.bias.data.fill_(0.1)
    return probe


@pytest.mark.parametrize("name", ["tiny_res2net26_4s", "tiny_resnet26"])
def test_theoretical_rf_equals_measured_gradient_support(name: str) -> None:
    model = res2net.create_model(name)
    probe = positive_probe_copy(model)
    taps = [t for t in res2net.tap_names(model) if t.startswith(("layer1", "layer2.0", "layer2.1.branch"))]
    x = torch.ones(1, 3, 160, 160, dtype=torch.float64, requires_grad=True)
    with res2net.models.taps.TapCapture(probe, taps, stop_at_last=True) as cap:
        cap.run(x)
    for tap in taps:
        a = cap.activations[tap]
        i, j = a.shape[-2] // 2, a.shape[-1] // 2
        (g,) = torch.autograd.grad(a[0, :, i, j].sum(), x, retain_graph=True)
        rows = torch.nonzero(g[0].abs().sum((0, 2)) > 0)[:, 0]
        cols = torch.nonzero(g[0].abs().sum((0, 1)) > 0)[:, 0]
        info = tap_rf_info(model, tap)
        assert 0 < rows[0] and rows[-1] < 159, f"{tap}: RF clipped by the probe image"
        assert int(rows[-1] - rows[0] + 1) == theoretical_rf(model, tap), tap
        assert int(cols[-1] - cols[0] + 1) == theoretical_rf(model, tap), tap
        assert (float(rows[0] + rows[-1]) / 2, float(cols[0] + cols[-1]) / 2) == info.centre(i, j), tap
