"""Feature capture against a hand-run forward, and branch statistics on tensors with hand-computed answers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import res2net
from res2net.analysis.features import branch_stats, capture_features
from res2net.models.taps import TapError

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return res2net.create_model("tiny_res2net26_4s")


def test_features_equal_a_hand_run_forward(model: torch.nn.Module) -> None:
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    feats = capture_features(model, x, ["layer1.0.branch0", "layer1.0.branch3", "layer1.0"])
    with torch.no_grad():
        stem = model.maxpool(model.relu(model.bn1(model.conv1(x))))
        b = model.layer1[0]
        split = torch.split(F.relu(b.bn1(b.conv1(stem))), b.width, 1)
        torch.testing.assert_close(feats["layer1.0.branch0"], F.relu(b.bns[0](b.convs[0](split[0]))))
        torch.testing.assert_close(feats["layer1.0.branch3"], F.avg_pool2d(split[3], 3, 1, 1))
        torch.testing.assert_close(feats["layer1.0"], b(stem))
    assert all(t.dtype == torch.float32 and not t.requires_grad and t.device.type == "cpu" for t in feats.values())


def test_forward_stops_at_the_last_tap(model: torch.nn.Module) -> None:
    calls = []
    h = model.layer2.register_forward_pre_hook(lambda m, a: calls.append(1))
    try:
        capture_features(model, torch.zeros(1, 3, 64, 64), ["layer1.1.branch2"])
    finally:
        h.remove()
    assert calls == [] and all(not m._forward_hooks for m in model.modules())


def test_train_mode_restored(model: torch.nn.Module) -> None:
    x = torch.randn(2, 3, 64, 64)
    ref = capture_features(model, x, "layer2.0")
    model.train()
    try:
        again = capture_features(model, x, "layer2.0")
        assert model.training
    finally:
        model.eval()
    torch.testing.assert_close(again, ref)


def test_branch_stats_by_hand() -> None:
    a = torch.zeros(1, 3, 2, 2)
    a[0, 0] = torch.tensor([[1.0, 0.0], [0.0, 0.0]])  # channel energy 1/4
    a[0, 1] = torch.tensor([[2.0, 2.0], [0.005, 0.0]])  # (4 + 4 + 0.000025) / 4
    b = torch.ones(1, 1, 2, 2)  # energy 1, sum of squares 4
    stats = branch_stats({"x": a, "y": b}, top_k=2)
    sx = stats["x"]
    total_x = 1 + 8 + 0.005**2
    assert sx["energy"] == pytest.approx(total_x / 12)
    assert sx["energy_share"] == pytest.approx(total_x / (total_x + 4))
    assert sx["zero_fraction"] == pytest.approx(8 / 12)
    assert sx["sparsity"] == pytest.approx(9 / 12)  # 0.005 <= 0.01 * max (2.0) counts as near zero
    assert sx["top_channels"] == [1, 0] and sx["top_energies"] == pytest.approx([(8 + 0.005**2) / 4, 0.25])
    assert sx["channels"] == 3 and len(sx["channel_energy"]) == 3
    assert stats["y"]["energy"] == 1.0 and stats["y"]["sparsity"] == 0.0 and stats["y"]["top_channels"] == [0]


def test_branch_stats_of_a_real_block(model: torch.nn.Module) -> None:
    taps = res2net.models.taps.branch_tap_names(model, "layer2.1")
    stats = branch_stats(capture_features(model, torch.randn(2, 3, 64, 64), taps))
    assert list(stats) == taps
    assert sum(s["energy_share"] for s in stats.values()) == pytest.approx(1.0)
    assert all(0 <= s["sparsity"] <= 1 and s["zero_fraction"] > 0 for s in stats.values())  # post-ReLU maps


@pytest.mark.parametrize(
    ("images", "taps", "exc", "match"),
    [
        (torch.zeros(1, 3, 64, 64), ["nope"], TapError, "valid taps"),
        (torch.full((1, 3, 64, 64), float("nan")), ["layer1.0"], ValueError, "NaN"),
        (torch.zeros(64, 64), ["layer1.0"], ValueError, r"\(N, C, H, W\)"),
    ],
)
def test_bad_input(model: torch.nn.Module, images: torch.Tensor, taps: list, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        capture_features(model, images, taps)
    assert all(not m._forward_hooks for m in model.modules())


def test_branch_stats_rejects_bad_activations() -> None:
    with pytest.raises(ValueError, match="non-empty dict"):
        branch_stats({})
    with pytest.raises(ValueError, match=r"'a' must be a non-empty \(N, C, h, w\) tensor, got \(2, 2\)"):
        branch_stats({"a": torch.zeros(2, 2)})
