"""ERFs: analytic single-conv cases, metrics by hand, branch ERFs of a Res2Net block, and input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import res2net
from res2net.analysis.erf import (
    area_ratio,
    compute_erf,
    erf_map,
    erf_metrics,
    gaussian_sigma,
    mass_radius,
    radial_profile,
)
from res2net.geometry.receptive_field import tap_rf_info, theoretical_rf
from res2net.models.blocks import TappedBlock
from res2net.models.taps import TapError

torch.set_num_threads(1)


class ConvTap(TappedBlock):
    """Convolutions with a tap on their output, so a bare conv stack can go through compute_erf."""

    def __init__(self, *convs: nn.Conv2d) -> None:
        super().__init__()
        self.stype = "normal"
        self.convs = nn.Sequential(*convs)
        self._make_taps(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.branch0(self.convs(x)))


def conv_net(*convs: nn.Conv2d) -> nn.Module:
    return nn.Sequential(ConvTap(*convs))


def test_single_conv_erf_is_its_kernel_magnitude() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 2, 5, padding=2, bias=False)
    net = conv_net(conv)
    out = compute_erf(net, torch.randn(4, 3, 15, 15), "0.branch0")["0.branch0"]
    # d(sum_c y_c[7, 7]) / d x_i[7 + dy, 7 + dx] = sum_c W[c, i, dy + 2, dx + 2], independent of the input
    kernel = conv.weight.detach().double().sum(0).abs().sum(0).numpy()
    expected = np.zeros((15, 15))
    expected[5:10, 5:10] = kernel / kernel.sum()
    np.testing.assert_allclose(out.map, expected, rtol=1e-6, atol=1e-12)  # float32 gradients
    assert out.num_inputs == 4 and out.centre == (7.0, 7.0) and out.tap == "0.branch0"
    assert out.metrics["radius_99_square"] <= 2


def test_stacked_ones_convs_give_the_triangular_erf() -> None:
    c1, c2 = nn.Conv2d(3, 1, 3, padding=1, bias=False), nn.Conv2d(1, 1, 3, padding=1, bias=False)
    nn.init.ones_(c1.weight)
    nn.init.ones_(c2.weight)
    out = compute_erf(conv_net(c1, c2), 3, "0", size=11)["0"]
    tri = np.array([1, 2, 3, 2, 1.0])
    expected = np.zeros((11, 11))
    expected[3:8, 3:8] = np.outer(tri, tri) / 81
    np.testing.assert_allclose(out.map, expected, rtol=1e-6, atol=1e-12)
    assert out.source == "gaussian noise" and theoretical_rf(conv_net(c1, c2), "0") == 5


def test_uniform_3x3_metrics_by_hand() -> None:
    m = np.zeros((9, 9))
    m[3:6, 3:6] = 1 / 9
    metrics = erf_metrics(m, (4.0, 4.0))
    assert metrics["radius_50_square"] == 1 and metrics["radius_99_square"] == 1
    assert metrics["radius_50_radial"] == 1.0  # centre + 4 neighbours = 5/9 of the mass
    assert metrics["radius_90_radial"] == pytest.approx(math.sqrt(2))
    assert metrics["gaussian_sigma"] == pytest.approx(math.sqrt(2 / 3))  # per-axis variance of {-1, 0, 1}
    delta = np.zeros((9, 9))
    delta[4, 4] = 1
    assert mass_radius(delta, (4.0, 4.0), 0.99) == 0.0
    r, cum = radial_profile(delta, (4.0, 4.0))
    assert r[0] == 0 and np.all(cum == 1.0)


def test_radial_profile_is_cumulative_mass() -> None:
    m = np.zeros((9, 9))
    m[4, 4], m[4, 6], m[0, 0] = 0.5, 0.25, 0.25  # distances 0, 2, 4*sqrt(2)
    r, cum = radial_profile(m, (4.0, 4.0))
    assert cum[0] == 0.5 and cum[1] == 0.5 and cum[2] == 0.75 and cum[5] == 0.75 and cum[6] == 1.0
    assert len(r) == 7


def test_area_ratio_follows_replknet_by_hand() -> None:
    ones = np.ones((11, 11))  # log10(1 + 1) / max = 1 everywhere; squares of side 2i+1 hold (2i+1)^2 / 121
    assert area_ratio(ones, (5, 5), 0.2) == pytest.approx(16 / 121)  # i = 2: 25/121 = 0.207
    assert area_ratio(ones, (5, 5), 0.3) == pytest.approx(36 / 121)  # i = 3: 49/121 = 0.405
    assert area_ratio(ones, (5, 5), 0.5) == pytest.approx(64 / 121)  # i = 4: 81/121 = 0.669
    assert area_ratio(ones, (5, 5), 0.99) == 1.0  # no square up to i = 4 holds 99%
    spike = np.zeros((11, 11))
    spike[5, 5] = 100.0
    assert area_ratio(spike, (5, 5), 0.99) == pytest.approx(4 / 121)


def test_erf_map_magnitude_and_positive_part() -> None:
    g = torch.zeros(2, 3, 4, 4)
    g[0, 0, 1, 1], g[1, 2, 1, 1], g[0, 1, 2, 3] = 1.0, -3.0, 4.0
    np.testing.assert_allclose(erf_map(g)[[1, 2], [1, 3]], [0.5, 0.5])
    np.testing.assert_allclose(erf_map(g, positive_only=True)[[1, 2], [1, 3]], [0.2, 0.8])
    assert gaussian_sigma(np.zeros((3, 3))) != gaussian_sigma(np.zeros((3, 3)))  # NaN for an empty map


# Theoretical RF of res2net50_26w_4s by hand (input pixels):
@pytest.fixture(scope="module")
def tiny_block_erfs() -> dict:
    torch.manual_seed(0)
    model = res2net.create_model("tiny_res2net26_4s")
    taps = res2net.models.taps.branch_tap_names(model, "layer2.1") + ["layer2.0"]
    return compute_erf(model, 24, taps, size=128, batch_size=12)


def test_branch_erf_grows_from_branch_0_to_s_minus_2(tiny_block_erfs: dict) -> None:
    for kind in ("square", "radial"):
        radii = [tiny_block_erfs[f"layer2.1.branch{i}"].metrics[f"radius_50_{kind}"] for i in range(3)]
        assert radii[0] < radii[1] < radii[2], (kind, radii)


def test_identity_branch_erf_equals_block_input_erf(tiny_block_erfs: dict) -> None:
    # The identity branch is a channel slice of relu(bn(conv1x1(block input))): pointwise, so its units see
    # exactly the block input's pixels; the maps agree up to the channel mixing and the noise of 24 inputs.
    model = res2net.create_model("tiny_res2net26_4s")
    assert theoretical_rf(model, "layer2.1.branch3") == theoretical_rf(model, "layer2.0")
    ident, block_in = tiny_block_erfs["layer2.1.branch3"], tiny_block_erfs["layer2.0"]
    assert np.corrcoef(ident.map.ravel(), block_in.map.ravel())[0, 1] > 0.95
    branch0 = tiny_block_erfs["layer2.1.branch0"]  # a conv branch is clearly different
    assert np.corrcoef(branch0.map.ravel(), block_in.map.ravel())[0, 1] < 0.95
    for key in ("radius_50_square", "radius_90_square"):
        assert abs(ident.metrics[key] - block_in.metrics[key]) <= 1, key
    assert all(abs(e.map.sum() - 1) < 1e-9 for e in tiny_block_erfs.values())


def test_forward_stops_at_deepest_tap_and_taps_share_it() -> None:
    model = res2net.create_model("tiny_res2net26_4s")
    tap_rf_info(model, "layer2.0")  # the geometry probe runs once per model and is cached
    seen = {"model": 0, "layer3": 0}
    h1 = model.register_forward_pre_hook(lambda m, a: seen.__setitem__("model", seen["model"] + 1))
    h2 = model.layer3.register_forward_pre_hook(lambda m, a: seen.__setitem__("layer3", seen["layer3"] + 1))
    try:
        compute_erf(model, 6, res2net.models.taps.branch_tap_names(model, "layer2.1"), batch_size=3)
    finally:
        h1.remove()
        h2.remove()
    assert seen == {"model": 2, "layer3": 0}
    assert all(not m._forward_hooks for m in model.modules())


def test_batching_does_not_change_the_result() -> None:
    model = res2net.create_model("tiny_res2net26_4s")
    x = torch.randn(5, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    a = compute_erf(model, x, ["layer1.1.branch2", "layer2.0"], batch_size=2)
    b = compute_erf(model, x, ["layer1.1.branch2", "layer2.0"], batch_size=5)
    for t in a:
        np.testing.assert_allclose(a[t].map, b[t].map, rtol=1e-5, atol=1e-10)
        assert a[t].metrics == pytest.approx(b[t].metrics, rel=1e-5, nan_ok=True)


def test_positive_only_differs_and_still_sums_to_one() -> None:
    model = res2net.create_model("tiny_res2net26_4s")
    pos = compute_erf(model, 4, "layer1.1.branch1", positive_only=True)["layer1.1.branch1"]
    mag = compute_erf(model, 4, "layer1.1.branch1")["layer1.1.branch1"]
    assert pos.positive_only and abs(pos.map.sum() - 1) < 1e-9 and not np.allclose(pos.map, mag.map)


@pytest.mark.parametrize(
    ("inputs", "kwargs", "exc", "match"),
    [
        (0, {}, ValueError, ">= 1"),
        (2.5, {}, TypeError, "number of noise inputs"),
        (torch.full((1, 3, 64, 64), float("inf")), {}, ValueError, "NaN or infinite"),
        (torch.zeros(1, 4, 64, 64), {}, ValueError, "3 input channels"),
        (2, {"taps": "layer7.0"}, TapError, "valid taps"),
        (2, {"batch_size": 0}, ValueError, "batch_size"),
        (2, {"size": (0, 4)}, ValueError, "size"),
    ],
)
def test_bad_input_is_rejected_clearly(inputs: object, kwargs: dict, exc: type, match: str) -> None:
    model = res2net.create_model("tiny_res2net26_4s")
    taps = kwargs.pop("taps", "layer1.0")
    with pytest.raises(exc, match=match):
        compute_erf(model, inputs, taps, **kwargs)
    assert all(not m._forward_hooks for m in model.modules())


def test_noise_needs_a_size_on_a_bare_model() -> None:
    with pytest.raises(ValueError, match="size="):
        compute_erf(conv_net(nn.Conv2d(3, 1, 3, padding=1)), 2, "0")
    with pytest.raises(TapError, match="valid taps: 0.branch0"):
        theoretical_rf(conv_net(nn.Conv2d(3, 1, 3, padding=1)), "1")
