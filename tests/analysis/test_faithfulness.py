"""Deletion/insertion curves against hand computation on a model whose class score is a known sum of pixels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from res2net.analysis.faithfulness import deletion_insertion


class PixelSum(nn.Module):
    """Two classes: logit 0 = sum of the input's pixels weighted by ``w`` (all channels), logit 1 = 0."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = w

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = (x * self.w).sum(dim=(1, 2, 3))
        return torch.stack([score, torch.zeros_like(score)], dim=1)


def sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def test_curves_and_areas_match_hand_computation() -> None:
    w = torch.tensor([[4.0, 2.0], [1.0, 0.0]])  # pixel weights, the same for the three channels
    model = PixelSum(w)
    x = torch.ones(1, 3, 2, 2) / 3  # each pixel contributes its weight once summed over channels
    saliency = np.array([[4.0, 2.0], [1.0, 0.0]])  # the true ranking
    f = deletion_insertion(model, x, saliency, 0, steps=4, random_orders=0)
    kept = [7, 3, 1, 0, 0]  # score after deleting the top 0, 1, 2, 3, 4 pixels
    np.testing.assert_allclose(f.fractions, [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(f.deletion, [sigmoid(k) for k in kept], rtol=1e-6)
    np.testing.assert_allclose(f.insertion, [sigmoid(7 - k) for k in kept], rtol=1e-6)
    expected = sum((sigmoid(a) + sigmoid(b)) / 2 * 0.25 for a, b in zip(kept[:-1], kept[1:], strict=True))
    assert f.deletion_auc == pytest.approx(expected, rel=1e-6)


def test_a_faithful_map_beats_a_random_order_and_an_inverted_map_does_not() -> None:
    torch.manual_seed(0)
    w = torch.rand(8, 8) * 2
    model = PixelSum(w)
    x = torch.ones(1, 3, 8, 8)
    good = deletion_insertion(model, x, w.numpy(), 0, random_orders=5)
    bad = deletion_insertion(model, x, -w.numpy(), 0, random_orders=5)
    assert good.deletion_auc < good.random_deletion_auc < bad.deletion_auc
    assert good.insertion_auc > good.random_insertion_auc > bad.insertion_auc


def test_a_map_off_the_input_grid_is_refused() -> None:
    model = PixelSum(torch.ones(4, 4))
    with pytest.raises(ValueError, match="register it on the input"):
        deletion_insertion(model, torch.ones(1, 3, 4, 4), np.ones((2, 2)), 0)


def test_random_order_curves_are_kept_for_the_band() -> None:
    """Every random order starts from the whole image (score 7) and ends at the baseline (score 0); their areas
    average to the reported random-order area."""
    w = torch.tensor([[4.0, 2.0], [1.0, 0.0]])
    f = deletion_insertion(PixelSum(w), torch.ones(1, 3, 2, 2) / 3, np.zeros((2, 2)), 0, steps=4, random_orders=3)
    assert f.random_deletion.shape == f.random_insertion.shape == (3, 5)
    np.testing.assert_allclose(f.random_deletion[:, 0], sigmoid(7), rtol=1e-6)
    np.testing.assert_allclose(f.random_deletion[:, -1], 0.5, rtol=1e-6)
    np.testing.assert_allclose(f.random_insertion[:, 0], 0.5, rtol=1e-6)
    areas = [sum((c[k] + c[k + 1]) / 2 * 0.25 for k in range(4)) for c in f.random_deletion]
    assert f.random_deletion_auc == pytest.approx(float(np.mean(areas)), rel=1e-6)


def test_a_baseline_replaces_deleted_pixels_and_is_what_insertion_starts_from() -> None:
    """Rule: a deleted pixel becomes the baseline's value (x(1 - m) + b m), insertion starts from the baseline
    (b(1 - m) + x m); a (1, 3, 1, 1) baseline is broadcast over the image. Hand case: scores with baseline 0.25 per
    channel, so a deleted pixel keeps 0.75 of its weight's contribution."""
    w = torch.tensor([[4.0, 2.0], [1.0, 0.0]])
    x = torch.ones(1, 3, 2, 2) / 3
    b = torch.full((1, 3, 1, 1), 0.25, dtype=torch.float64)  # another dtype: cast to the input's
    f = deletion_insertion(PixelSum(w), x, w.numpy(), 0, steps=4, baseline=b, random_orders=0)
    base_score = 0.75 * 7  # every pixel at the baseline: 3 channels x 0.25 x weight
    deleted = [7, 7 - 4 + 3.0, 7 - 6 + 4.5, 7 - 7 + 5.25, base_score]
    inserted = [base_score, base_score - 3.0 + 4, base_score - 4.5 + 6, base_score - 5.25 + 7, 7]
    np.testing.assert_allclose(f.deletion, [sigmoid(k) for k in deleted], rtol=1e-6)
    np.testing.assert_allclose(f.insertion, [sigmoid(k) for k in inserted], rtol=1e-6)


def test_nan_in_the_map_ranks_last_and_the_defaults_are_ten_steps_three_random_orders_seed_zero() -> None:
    """Rules: a NaN pixel (no map value) is removed after every scored pixel; the defaults are 10 steps, 3 random
    orders and seed 0 (a rerun gives the same random band)."""
    w = torch.tensor([[4.0, 2.0], [1.0, 0.0]])
    x = torch.ones(1, 3, 2, 2) / 3
    nan_first = np.array([[np.nan, 2.0], [1.0, 0.0]])
    f = deletion_insertion(PixelSum(w), x, nan_first, 0, steps=4, random_orders=0)
    # order 2, 1, 0 (the NaN pixel of weight 4 last): scores 7, 5, 4, 4, 0
    np.testing.assert_allclose(f.deletion, [sigmoid(k) for k in (7, 5, 4, 4, 0)], rtol=1e-6)
    d = deletion_insertion(PixelSum(w), x, w.numpy(), 0)
    assert d.fractions.size == 11 and d.random_deletion.shape == d.random_insertion.shape == (3, 11)
    again = deletion_insertion(PixelSum(w), x, w.numpy(), 0, seed=0)
    np.testing.assert_array_equal(d.random_deletion, again.random_deletion)
    other = [deletion_insertion(PixelSum(w), x, w.numpy(), 0, seed=s).random_deletion for s in (1, 2, 3)]
    assert any(not np.array_equal(d.random_deletion, o) for o in other)


def test_no_random_orders_gives_nan_reference_areas_and_empty_bands() -> None:
    f = deletion_insertion(PixelSum(torch.ones(2, 2)), torch.ones(1, 3, 2, 2), np.ones((2, 2)), 0, steps=2,
                           random_orders=0)
    assert math.isnan(f.random_deletion_auc) and math.isnan(f.random_insertion_auc)
    assert f.random_deletion.shape == f.random_insertion.shape == (0, 3)


def test_bad_inputs_are_refused_with_their_shapes() -> None:
    model = PixelSum(torch.ones(4, 4))
    with pytest.raises(ValueError) as e:
        deletion_insertion(model, torch.ones(2, 3, 4, 4), np.ones((4, 4)), 0)
    assert str(e.value) == "expected one image of shape (1, 3, H, W), got (2, 3, 4, 4)"
    with pytest.raises(ValueError) as e:
        deletion_insertion(model, torch.ones(3, 4, 4), np.ones((4, 4)), 0)
    assert str(e.value) == "expected one image of shape (1, 3, H, W), got (3, 4, 4)"
    with pytest.raises(ValueError) as e:
        deletion_insertion(model, torch.ones(1, 3, 4, 4), np.ones((4, 2)), 0)
    assert str(e.value) == "the map is (4, 2) but the input is (4, 4): register it on the input first"
    with pytest.raises(ValueError) as e:
        deletion_insertion(model, torch.ones(1, 3, 4, 4), np.ones((4, 4)), 0, steps=0)
    assert str(e.value) == "steps must be at least 1, got 0"
    one = deletion_insertion(model, torch.ones(1, 3, 4, 4), np.ones((4, 4)), 0, steps=1, random_orders=0)
    np.testing.assert_allclose(one.fractions, [0.0, 1.0])


class DeviceProbe(nn.Module):
    """Records the device and dtype of every input and answers with fixed CPU logits: a stand-in for a model on
    another device (here the meta device, which holds no values)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, torch.dtype]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append((x.device.type, x.dtype))
        return torch.zeros(x.shape[0], 2)


def test_everything_is_computed_on_the_inputs_device_and_dtype() -> None:
    """Rule: the masks and a given baseline (kept on the CPU, in another dtype) are moved to the input's device and
    dtype, so a model on a GPU gets one batch on its own device and in its own dtype."""
    model = DeviceProbe()
    x = torch.empty(1, 3, 4, 4, device="meta")
    baseline = torch.zeros(1, 3, 1, 1, dtype=torch.float64)
    for base in (None, baseline):
        model.seen.clear()
        f = deletion_insertion(model, x, np.arange(16.0).reshape(4, 4), 0, steps=2, baseline=base, random_orders=1)
        assert model.seen == [("meta", torch.float32)] * 2
        np.testing.assert_allclose(f.deletion, [0.5, 0.5, 0.5])  # the stand-in's two equal logits
