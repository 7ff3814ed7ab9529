"""The three placements of a tap's cells (RF centre, effective centre, half-pixel) against hand-computed cases.

Rules under test:
- the effective centre of row i is the |gradient|-weighted centroid (y) of diagonal cell (i, i), channels summed
  before the derivative and RGB after; zero padding pulls a border cell inward;
- half-pixel centres are ``(i + 0.5) * size / cells - 0.5``;
- a map placed between any increasing centres takes cell i's value at centre i, is linear between centres and
  keeps the edge value beyond; with the RF centres it is the registration of ``register``.
"""

from __future__ import annotations

import hypothesis_profiles  # noqa: F401  (example counts: few in CI, more in the mutation run; no deadline)
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import res2net
from res2net.geometry import registration
from res2net.geometry.cell_centres import (
    CellCentres,
    cell_index_at,
    centres_for,
    effective_centres,
    half_pixel_centres,
    rf_centres,
)
from res2net.models.blocks import TappedBlock


class _ConvBlock(TappedBlock):
    """One 3x3 stride-2 conv (padding 1, no bias) whose output is the block's tap."""

    stype = "normal"

    def __init__(self, kernel_1d: tuple[float, float, float], channels: int = 1,
                 kernel_x: tuple[float, float, float] | None = None) -> None:
        super().__init__()
        self._make_taps(0)
        self.conv = nn.Conv2d(channels, 1, 3, stride=2, padding=1, bias=False)
        ky = torch.tensor(kernel_1d, dtype=torch.float32)
        kx = torch.tensor(kernel_x or kernel_1d, dtype=torch.float32)
        with torch.no_grad():
            self.conv.weight.copy_((ky[:, None] * kx[None, :]).expand(1, channels, 3, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.conv(x))


class _Net(nn.Module):
    def __init__(self, kernel_1d: tuple[float, float, float], channels: int = 1,
                 kernel_x: tuple[float, float, float] | None = None) -> None:
        super().__init__()
        self.blk = _ConvBlock(kernel_1d, channels, kernel_x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blk(x)


def _hand_centroids(kernel_1d: tuple[float, float, float], size: int) -> list[float]:
    """Cell i of a stride-2, pad-1 3x3 conv sees pixels 2i-1, 2i, 2i+1 with weights |k|; those inside the image
    count."""
    out = []
    for i in range(size // 2):
        px = [(p, abs(k)) for p, k in zip((2 * i - 1, 2 * i, 2 * i + 1), kernel_1d, strict=True) if 0 <= p < size]
        out.append(sum(p * w for p, w in px) / sum(w for _, w in px))
    return out


def test_effective_centre_is_the_gradient_centroid_and_border_cells_move_inward():
    net = _Net((1.0, 1.0, 1.0))
    c = effective_centres(net, "blk", torch.randn(3, 1, 8, 8))
    assert c.rows == pytest.approx((0.5, 2.0, 4.0, 6.0))  # cell 0 sees pixels 0, 1 only: centroid 0.5, not 0
    assert c.cols == pytest.approx((0.5, 2.0, 4.0, 6.0))
    assert c.rule == "effective_centre"


def test_effective_centre_weights_the_gradient_magnitude_not_its_sign():
    kernel = (-1.0, 2.0, 3.0)  # signed weights would put an interior cell at 2i + 1; magnitudes at 2i + 1/3
    c = effective_centres(_Net(kernel), "blk", torch.randn(2, 1, 10, 12))
    assert c.rows == pytest.approx(_hand_centroids(kernel, 10))
    assert c.cols == pytest.approx(_hand_centroids(kernel, 12))
    assert c.rows[2] == pytest.approx(4 + 1 / 3)
    # rows from the centroid's y, columns from its x: a kernel that differs along the two axes
    kx = (3.0, 1.0, 0.5)
    c = effective_centres(_Net(kernel, kernel_x=kx), "blk", torch.randn(2, 1, 10, 12))
    assert c.rows == pytest.approx(_hand_centroids(kernel, 10))
    assert c.cols == pytest.approx(_hand_centroids(kx, 12))


def test_effective_centre_sums_rgb_magnitudes_after_the_derivative():
    # channel weights of opposite sign: the gradient per channel is the kernel times +-1, its magnitude the same
    net = _Net((1.0, 2.0, 1.0), channels=3)
    with torch.no_grad():
        net.blk.conv.weight[:, 1] *= -1
    c = effective_centres(net, "blk", torch.randn(1, 3, 6, 6))
    assert c.rows == pytest.approx(_hand_centroids((1.0, 2.0, 1.0), 6))


def test_effective_centre_of_a_non_square_map_uses_one_backward_per_row_or_column():
    c = effective_centres(_Net((1.0, 1.0, 1.0)), "blk", torch.randn(1, 1, 4, 10))
    assert c.grid == (2, 5)
    assert c.rows == pytest.approx((0.5, 2.0))
    assert c.cols == pytest.approx((0.5, 2.0, 4.0, 6.0, 8.0))


def test_a_cell_with_no_gradient_is_refused():
    net = _Net((0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="no gradient"):
        effective_centres(net, "blk", torch.randn(1, 1, 8, 8))


def test_half_pixel_centres_by_hand():
    c = half_pixel_centres((4, 2), (64, 10))
    assert c.rows == (7.5, 23.5, 39.5, 55.5)
    assert c.cols == (2.0, 7.0)


def test_centres_must_increase():
    with pytest.raises(ValueError, match="strictly increasing"):
        CellCentres((0.0, 3.0, 2.0), (0.0,), "effective_centre")
    with pytest.raises(ValueError, match="unknown placement"):
        CellCentres((0.0,), (0.0,), "nearest")
    with pytest.raises(ValueError, match="needs images"):
        centres_for(_Net((1.0, 1.0, 1.0)), "blk", (4, 4), (8, 8), "effective_centre")


def test_cell_index_between_uneven_centres_by_hand():
    idx = cell_index_at([0, 0.5, 1.25, 2, 5, 6, 9], [0.5, 2.0, 4.0, 6.0])
    assert idx == pytest.approx([0, 0, 0.5, 1, 2.5, 3, 3])


def test_a_map_between_uneven_centres_by_hand():
    m = np.array([[0.0, 1.0, 2.0, 3.0]]).T * np.ones((1, 4))  # rows 0..3 hold 0..3
    centres = CellCentres((0.5, 2.0, 4.0, 6.0), (0.5, 2.0, 4.0, 6.0), "effective_centre")
    placed = registration.register_maps_between(m[None], centres, (8, 8))[0]
    assert placed[:, 3] == pytest.approx([0, 1 / 3, 1, 1.5, 2, 2.5, 3, 3])
    torch_path = registration.register(None, "unused", m, 8, centres=centres).numpy()  # type: ignore[arg-type]
    assert torch_path == pytest.approx(placed, abs=1e-6)


@given(start=st.floats(-8, 8), jump=st.sampled_from([1.0, 2.0, 4.0, 8.0, 16.0, 3.5]),
       cells=st.integers(2, 9))
def test_between_rf_centres_is_the_affine_registration(start, jump, cells):
    rng = np.random.default_rng(cells)
    maps = rng.random((2, cells, cells)).astype(np.float32)
    size = (int(jump * cells), int(jump * cells) + 3)
    c = CellCentres(tuple(start + jump * i for i in range(cells)), tuple(start + jump * i for i in range(cells)),
                    "rf_centre")
    affine = registration.register_maps(torch.from_numpy(maps), (start, start), (jump, jump), size)
    between = registration.register_maps_between(maps, c, size)
    assert between == pytest.approx(affine, abs=1e-5)


def test_rf_centres_of_a_model_are_its_receptive_field_grid():
    model = res2net.create_model("tiny_res2net26_4s")
    c = rf_centres(model, "layer3.1", (4, 4))
    assert c.rows == (0.0, 16.0, 32.0, 48.0) and c.cols == c.rows


def test_effective_centres_of_the_embedded_resnet_sit_inside_its_rf_grid_at_the_border():
    """The measured case that motivates the placement: at layer3 of the 64 px models (RF 207 px) zero padding pulls
    the border rows inward (the RF grid puts them at 0 and 48)."""
    model = res2net.create_model("tiny_resnet26", pretrained=True)
    g = torch.Generator().manual_seed(0)
    c = effective_centres(model, "layer3.1", torch.randn(8, 3, 64, 64, generator=g))
    assert c.rows[0] > 4 and c.rows[-1] < 47
    assert all(b > a for a, b in zip(c.rows, c.rows[1:], strict=False))


def test_the_photo_placement_follows_the_given_centres():
    crop = registration.crop_box((64, 64), "tiny_resnet26", "resize")
    centres = CellCentres((0.5, 2.0, 4.0, 6.0), (0.5, 2.0, 4.0, 6.0), "effective_centre")
    m = np.arange(16.0).reshape(4, 4)
    on_photo = registration.register_to_photo(None, "unused", m, crop, out_size=(8, 8),  # type: ignore[arg-type]
                                              centres=centres)
    ref = registration.register_maps_between(m[None], centres, (64, 64))[0]
    ys = ((np.arange(8) + 0.5) * 8 - 0.5)
    expected = registration.sample_between(m, centres, ys, ys).numpy()
    assert on_photo == pytest.approx(expected)
    assert ref[0, 0] == 0.0 and ref[-1, -1] == 15.0


class _MaskedNet(nn.Module):
    """``_Net`` on the input times a fixed, non-separable mask: a cell's y-centroid depends on its column (as in a
    real network), so the diagonal cell chosen for each row and column matters."""

    def __init__(self, kernel_1d: tuple[float, float, float], mask: torch.Tensor) -> None:
        super().__init__()
        self.net = _Net(kernel_1d)
        self.register_buffer("mask", mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x * self.mask)


def _hand_cell(kernel_1d: tuple[float, float, float], mask: np.ndarray, r: int, q: int) -> tuple[float, float]:
    """(y, x) centroid of cell (r, q) of the stride-2, pad-1 conv on ``x * mask``: pixel p weighs |k_y k_x mask_p|."""
    k = np.abs(np.asarray(kernel_1d))
    num_y = num_x = total = 0.0
    for a, py in enumerate((2 * r - 1, 2 * r, 2 * r + 1)):
        for b, px in enumerate((2 * q - 1, 2 * q, 2 * q + 1)):
            if 0 <= py < mask.shape[0] and 0 <= px < mask.shape[1]:
                w = k[a] * k[b] * abs(mask[py, px])
                num_y, num_x, total = num_y + py * w, num_x + px * w, total + w
    return num_y / total, num_x / total


@pytest.mark.parametrize("size", [(12, 6), (6, 12)])
def test_each_row_and_column_takes_its_own_diagonal_cell_on_a_tall_or_wide_map(size):
    """Rule: row i is placed by cell (i, min(i, w - 1)) and column i by cell (min(i, h - 1), i); with a weight that
    varies across the image the choice of cell shows. Gradients far below 1 are still a centroid (any mass > 0)."""
    yy, xx = np.meshgrid(np.arange(size[0]), np.arange(size[1]), indexing="ij")
    mask = (1.0 + 0.3 * yy * xx + 0.1 * xx ** 2) * 1e-4
    kernel = (1.0, 2.0, 0.5)
    net = _MaskedNet(kernel, torch.tensor(mask, dtype=torch.float32))
    c = effective_centres(net, "net.blk", torch.randn(1, 1, *size))
    h, w = size[0] // 2, size[1] // 2
    assert c.grid == (h, w)
    assert c.rows == pytest.approx([_hand_cell(kernel, mask, i, min(i, w - 1))[0] for i in range(h)], rel=1e-5)
    assert c.cols == pytest.approx([_hand_cell(kernel, mask, min(i, h - 1), i)[1] for i in range(w)], rel=1e-5)


def test_a_cell_with_no_gradient_is_named_in_the_refusal():
    with pytest.raises(ValueError, match=r"blk: cell \(0, 0\) has no gradient on these images; its effective "
                                         r"centre is undefined"):
        effective_centres(_Net((0.0, 0.0, 0.0)), "blk", torch.randn(1, 1, 8, 8))


def test_rf_centres_follow_each_axis_own_start_and_jump(monkeypatch):
    """Rule: row i at start_y + jump_y * i and column j at start_x + jump_x * j, on a non-square grid."""
    from types import SimpleNamespace

    from res2net.geometry import cell_centres as cc

    monkeypatch.setattr(cc, "tap_rf_info", lambda model, tap: SimpleNamespace(start=(1.5, -2.0), jump=(4.0, 8.0)))
    c = rf_centres(nn.Identity(), "any", (2, 3))
    assert c.rows == (1.5, 5.5) and c.cols == (-2.0, 6.0, 14.0) and c.rule == "rf_centre"


def test_centres_for_dispatches_each_rule_to_its_placement():
    model = res2net.create_model("tiny_resnet26")
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    assert centres_for(model, "layer3.1", (4, 4), (64, 64), "rf_centre") == rf_centres(model, "layer3.1", (4, 4))
    assert centres_for(model, "layer3.1", (4, 2), (64, 10), "half_pixel") == half_pixel_centres((4, 2), (64, 10))
    assert centres_for(model, "layer3.1", (4, 4), (64, 64), "effective_centre", images) == \
        effective_centres(model, "layer3.1", images)
    with pytest.raises(ValueError, match=r"^unknown placement 'nearest'; choose one of rf_centre, "
                                         r"effective_centre, half_pixel$"):
        centres_for(model, "layer3.1", (4, 4), (64, 64), "nearest")
    with pytest.raises(ValueError, match="^the effective-centre placement needs images to take the gradients on$"):
        centres_for(model, "layer3.1", (4, 4), (64, 64), "effective_centre")


def test_the_refusal_names_the_axis_and_the_centres_rounded():
    with pytest.raises(ValueError, match=r"^half_pixel: the columns' centres must be finite and strictly increasing "
                                         r"\(got \[0.0, 3.13, 2.0\]\); a map cannot be placed by them$"):
        CellCentres((0.0, 1.0), (0.0, 3.126, 2.0), "half_pixel")
    with pytest.raises(ValueError, match=r"the rows' centres"):
        CellCentres((0.0, float("nan")), (0.0, 1.0), "half_pixel")


def test_one_cell_maps_every_point_to_index_zero():
    idx = cell_index_at(np.array([[-3.0, 5.0], [40.0, 0.0]]), [7.0])
    assert idx.shape == (2, 2) and (idx == 0).all()
