"""Rules of registration (``res2net.geometry.registration``), on hand-computed small cases and as properties.

On the model input (pixel centres at integers, (y, x) = (row, column)):

- Cell i of a tap sits at start + jump * i per axis (its receptive-field centre); ``cell_index(p)`` =
  (p - start) / jump in float64 whatever the points' type is its inverse.
- ``interp_axis`` interpolates linearly between neighbouring cells along one axis at fractional indices, clamps
  to the first and last cell beyond them, and keeps the map's dtype.
- ``sample_at_centres(maps, start, jump, ys, xs)``: maps (..., h, w) sampled bilinearly at every (y, x) of the
  ys x xs grid (ys and xs flattened), edge values beyond the outer cells; float64 maps stay float64, any other
  dtype is computed in float32; a map with fewer than 2 dimensions is refused. At the cells' centres it gives the
  cells back; halfway between two cells, their mean.
- ``sample_between`` is the same between any increasing centres (``CellCentres``), and refuses centres made for
  another grid; with affine centres it is ``sample_at_centres``.
- ``register_maps`` / ``register_maps_between`` are ``sample_at_centres`` / ``sample_between`` at every pixel of
  an (H, W) input, as float64 numpy, bit for bit.
- ``size_hw``: an int is a square side, a pair is (height, width), as ints; anything else, or a side < 1, is
  refused. ``tap_placement`` is the tap's receptive-field (start, jump); ``register`` samples a tap's maps there
  at every pixel of ``size`` (or between ``centres`` when given, without the model); ``register_all`` registers
  every tap of a dict.

On the photo (``CropBox``: box = (left, top, right, bottom) in photo pixel edges shown by the size x size input):

- scale = (size / (right - left), size / (bottom - top)); ``to_tensor`` (x, y) -> ((x - left) sx, (y - top) sy)
  and ``to_image`` are inverses; ``box_to_tensor`` clips to [0, size]; ``valid`` is the photo's own box there.
- ``display_coords(out_size)``: the model-input coordinates (pixel centres at integers) of the centres of a
  (width, height) display's pixels, as (rows, columns).
- ``resized_size``: torchvision's Resize(int): the shorter side becomes ``resize``, the longer is truncated to
  keep the aspect. ``pad_layout``: the photo fitted in s x s (each side at least 1 pixel), centred (offsets
  floored). ``crop_box``: 'resize' shows the whole photo, 'pad' the padded square around it, 'center_crop' the
  torchvision centre crop of the resized photo (offsets rounded half to even) and refuses a resize below the
  crop; an unknown mode is refused by name.
- ``place_on_photo`` / ``register_to_photo`` / ``map_to_image``: one 2-D map sampled (in float64) at the display
  pixels' model-input coordinates, NaN where those fall off the input (beyond [-0.5, size - 0.5], ends included);
  mirroring the map, its cells' centres and the crop mirrors the result.
- ``cells_on_photo``: cell (i, j)'s centre carried through ``to_image`` (pixel centre u -> edge u + 0.5 -> photo
  edge -> photo pixel centre - 0.5), an affine grid; ``seen`` is the input's square in photo pixel centres.
- ``_half_pixel(cells, pixels)``: cells spread evenly, start (jump - 1) / 2, jump pixels / cells;
  ``resize_map`` (to (height, width)) and ``map_to_image`` place a map's cells so.
"""

from __future__ import annotations

import dataclasses

import hypothesis_profiles  # noqa: F401  (example counts: few in CI, more in the mutation run)
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import res2net
from res2net.geometry import registration as R
from res2net.geometry.cell_centres import CellCentres
from res2net.geometry.registration import CropBox

from helpers import OpBlock

pytestmark = pytest.mark.usefixtures("one_thread")


class _Net(nn.Module):
    """Tap ``a``: a (3, 5) conv of stride (2, 4), unpadded: cell (i, j) centred at (1 + 2i, 2 + 4j).
    Tap ``b``: a 3x3 stride-2 conv padded 1 after it: the same start ((3 - 1)/2 - 1 = 0 cells of ``a`` further),
    twice the jump: cell (i, j) at (1 + 4i, 2 + 8j)."""

    def __init__(self) -> None:
        super().__init__()
        self.a = OpBlock(nn.Conv2d(3, 3, (3, 5), stride=(2, 4), bias=False))
        self.b = OpBlock(nn.Conv2d(3, 3, 3, stride=2, padding=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x))


START, JUMP = (1.0, 2.0), (2.0, 4.0)        # tap a
START_B, JUMP_B = (1.0, 2.0), (4.0, 8.0)    # tap b


def _ramp(h: int, w: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Cell (i, j) holds 3i + j + 1/7: linear, so bilinear interpolation of it is exact up to rounding."""
    i, j = torch.meshgrid(torch.arange(h, dtype=dtype), torch.arange(w, dtype=dtype), indexing="ij")
    return 3 * i + j + 1 / 7


# ------------------------------------------------------------------------------------- cells on the input
def test_cell_index_is_the_inverse_of_the_centres_in_float64() -> None:
    idx = R.cell_index([1, 3, 5, 0, 2, 10], 1, 2)
    assert idx.dtype == np.float64 and idx.tolist() == [0, 1, 2, -0.5, 0.5, 4.5]
    p32 = np.float32([0.1, 2.7])
    got = R.cell_index(p32, np.float32(0.3), np.float32(0.7))
    assert got.dtype == np.float64
    assert got.tolist() == ((p32.astype(np.float64) - float(np.float32(0.3))) / float(np.float32(0.7))).tolist()


@given(st.floats(-50, 50), st.floats(0.25, 40), st.lists(st.integers(-5, 60), min_size=1, max_size=8))
def test_cell_i_sits_at_start_plus_jump_times_i(start: float, jump: float, cells: list[int]) -> None:
    i = np.asarray(cells)
    np.testing.assert_allclose(R.cell_index(start + jump * i, start, jump), i, atol=1e-9)


def test_interp_axis_by_hand() -> None:
    m = np.array([[0.0, 1.0], [10.0, 11.0], [20.0, 21.0]], dtype=np.float32)
    idx = np.array([-1.0, 0.0, 0.25, 1.5, 2.0, 3.0])
    got = R.interp_axis(m, idx, 0)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got[:, 0], [0, 0, 2.5, 15, 20, 20])
    np.testing.assert_allclose(got[:, 1], [1, 1, 3.5, 16, 21, 21])
    got = R.interp_axis(m.T, idx, 1)
    np.testing.assert_allclose(got, m.T[:, [0, 0, 0, 1, 2, 2]] + np.array([0, 0, 2.5, 5, 0, 0], np.float32))
    one = np.array([[4.0, 5.0]])
    np.testing.assert_array_equal(R.interp_axis(one, np.array([-2.0, 0.0, 0.5, 3.0]), 0), np.repeat(one, 4, 0))


def test_sample_at_centres_by_hand() -> None:
    m = _ramp(2, 3)  # cell (i, j) at (1 + 2i, 2 + 4j)
    ys, xs = np.array([1, 2, 3, 0, 9]), np.array([2, 4, 6, 10, 0, 12])
    rows, cols = torch.tensor([0, 0.5, 1, 0, 1.0]).double(), torch.tensor([0, 0.5, 1, 2, 0, 2.0]).double()
    want = 3 * rows[:, None] + cols[None, :] + 1 / 7
    got = R.sample_at_centres(m, START, JUMP, ys, xs)
    assert got.dtype == torch.float64 and got.shape == (5, 6)
    torch.testing.assert_close(got, want.double(), rtol=0, atol=1e-12)
    # ys and xs of any shape are flattened; leading dimensions of the maps stay
    got = R.sample_at_centres(torch.stack([m, 2 * m])[None], START, JUMP, ys.reshape(5, 1), xs.reshape(2, 3))
    assert got.shape == (1, 2, 5, 6)
    torch.testing.assert_close(got[0, 1], 2 * want.double(), rtol=0, atol=1e-12)


@pytest.mark.parametrize(("dtype", "out"), [(torch.float64, torch.float64), (torch.float32, torch.float32),
                                            (torch.float16, torch.float32), (torch.int64, torch.float32)])
def test_samples_are_float64_only_for_float64_maps(dtype: torch.dtype, out: torch.dtype) -> None:
    m = torch.tensor([[1, 2], [3, 4]], dtype=dtype)
    centres = CellCentres((0.0, 1.0), (0.0, 1.0), "rf_centre")
    for got in (R.sample_at_centres(m, (0, 0), (1, 1), [0.5], [0.5]), R.sample_between(m, centres, [0.5], [0.5]),
                R.sample_at_centres(m.numpy(), (0, 0), (1, 1), [0.5], [0.5])):
        assert isinstance(got, torch.Tensor) and got.dtype == out and float(got) == 2.5


def test_samples_are_computed_in_the_maps_dtype() -> None:
    """float32 maps interpolate in float32 (the weight too), float64 maps in float64."""
    m64 = torch.tensor([[0.1, 0.7]], dtype=torch.float64)
    t = (0.3 - 0.0) / 1.0
    got64 = R.sample_at_centres(m64, (0, 0), (1, 1), [0], [0.3])
    assert float(got64) == 0.1 * (1 - t) + 0.7 * t
    m32 = m64.float()
    got32 = R.sample_at_centres(m32, (0, 0), (1, 1), [0], [0.3])
    t32 = torch.tensor(t, dtype=torch.float32)
    assert got32.dtype == torch.float32 and float(got32) == float(m32[0, 0] * (1 - t32) + m32[0, 1] * t32)


def test_maps_need_two_dimensions() -> None:
    centres = CellCentres((0.0,), (0.0,), "rf_centre")
    with pytest.raises(ValueError) as err:
        R.sample_at_centres(torch.zeros(5), (0, 0), (1, 1), [0], [0])
    assert str(err.value) == "maps must have shape (..., h, w), got (5,)"
    with pytest.raises(ValueError) as err:
        R.sample_between(np.zeros(3), centres, [0], [0])
    assert str(err.value) == "maps must have shape (..., h, w), got (3,)"


@given(st.integers(1, 5), st.integers(1, 5), st.floats(-20, 20), st.floats(-20, 20), st.floats(0.5, 16),
       st.floats(0.5, 16), st.integers(0, 2**31 - 1))
def test_sampling_at_the_cells_centres_gives_the_cells_and_halfway_their_mean(h, w, y0, x0, jy, jx, seed) -> None:
    m = torch.from_numpy(np.random.default_rng(seed).random((2, h, w)))
    ys, xs = y0 + jy * np.arange(h), x0 + jx * np.arange(w)
    torch.testing.assert_close(R.sample_at_centres(m, (y0, x0), (jy, jx), ys, xs), m, rtol=0, atol=1e-9)
    mid_y, mid_x = (ys[:-1] + ys[1:]) / 2, (xs[:-1] + xs[1:]) / 2
    if h > 1:
        torch.testing.assert_close(R.sample_at_centres(m, (y0, x0), (jy, jx), mid_y, xs),
                                   (m[:, :-1] + m[:, 1:]) / 2, rtol=0, atol=1e-9)
    if w > 1:
        torch.testing.assert_close(R.sample_at_centres(m, (y0, x0), (jy, jx), ys, mid_x),
                                   (m[..., :-1] + m[..., 1:]) / 2, rtol=0, atol=1e-9)
    # beyond the outer cells: the edge values
    far = R.sample_at_centres(m, (y0, x0), (jy, jx), [y0 - 5 * jy, ys[-1] + 3 * jy], [x0 - 1, xs[-1] + 0.5])
    torch.testing.assert_close(far, m[:, [0, -1]][:, :, [0, -1]], rtol=0, atol=0)


@given(st.integers(1, 5), st.integers(1, 5), st.floats(-6, 6), st.floats(-6, 6), st.floats(0.5, 9),
       st.floats(0.5, 9), st.sampled_from([torch.float32, torch.float64]), st.integers(0, 2**31 - 1))
def test_the_numpy_and_torch_paths_agree_bit_for_bit(h, w, y0, x0, jy, jx, dtype, seed) -> None:
    m = torch.from_numpy(np.random.default_rng(seed).random((3, h, w))).to(dtype)
    size = (int(abs(y0) + jy * h) + 4, int(abs(x0) + jx * w) + 3)
    want = R.sample_at_centres(m, (y0, x0), (jy, jx), np.arange(size[0]), np.arange(size[1])).double().numpy()
    got = R.register_maps(m, (y0, x0), (jy, jx), size)
    assert got.dtype == np.float64 and got.shape == (3, *size) and got.tobytes() == want.tobytes()
    centres = CellCentres(tuple(y0 + jy * np.arange(h)), tuple(x0 + jx * np.arange(w)), "rf_centre")
    between = R.register_maps_between(m.numpy(), centres, size)
    assert between.dtype == np.float64
    np.testing.assert_allclose(between, got, rtol=0, atol=1e-6 if dtype == torch.float32 else 1e-12)
    want = R.sample_between(m, centres, np.arange(size[0]), np.arange(size[1])).double().numpy()
    assert R.register_maps_between(m, centres, size).tobytes() == want.tobytes()


def test_sample_between_uneven_centres_by_hand() -> None:
    m = _ramp(3, 2)
    centres = CellCentres((0.5, 2.0, 4.0), (1.0, 3.0), "effective_centre")
    got = R.sample_between(m, centres, [0, 0.5, 1.25, 3, 6], [0, 2, 5])
    rows, cols = torch.tensor([0, 0, 0.5, 1.5, 2]), torch.tensor([0, 0.5, 1])
    torch.testing.assert_close(got, 3 * rows[:, None].double() + cols[None, :] + 1 / 7, rtol=0, atol=1e-12)
    # ys and xs of any shape are flattened
    flat = R.sample_between(m, centres, np.array([[0, 0.5, 1.25, 3, 6]]).T, np.array([[0], [2], [5]]))
    assert torch.equal(flat, got)


def test_centres_for_another_grid_are_refused() -> None:
    centres = CellCentres((0.5, 2.0, 4.0), (1.0, 3.0), "effective_centre")
    msg = "the map has 2x2 cells but the effective_centre centres are for 3x2"
    for call in (lambda: R.sample_between(torch.zeros(2, 2), centres, [0], [0]),
                 lambda: R.register_maps_between(torch.zeros(4, 2, 2), centres, (4, 4)),
                 lambda: R.register(None, "unused", torch.zeros(2, 2), 4, centres=centres)):  # type: ignore[arg-type]
        with pytest.raises(ValueError) as err:
            call()
        assert str(err.value) == msg
    with pytest.raises(ValueError, match="the map has 3x1 cells but the half_pixel centres are for 1x3"):
        R.sample_between(torch.zeros(3, 1), CellCentres((0.0,), (0.0, 1.0, 2.0), "half_pixel"), [0], [0])


# ------------------------------------------------------------------------------------------- registering
@pytest.mark.parametrize(("size", "hw"), [(5, (5, 5)), ((3, 4), (3, 4)), ([7, 2], (7, 2)), (np.int64(6), (6, 6)),
                                          ((np.int32(2), 9), (2, 9)), (1, (1, 1))])
def test_size_hw_by_hand(size, hw) -> None:  # noqa: ANN001
    got = R.size_hw(size)
    assert got == hw and type(got) is tuple and all(type(s) is int for s in got)


@pytest.mark.parametrize(("size", "shown"), [(0, "(0, 0)"), (-2, "(-2, -2)"), ((3, 0), "(3, 0)"),
                                             ((0, 3), "(0, 3)"), ((3, 4, 5), "(3, 4, 5)"), ((5,), "(5,)")])
def test_size_hw_refusals(size, shown: str) -> None:  # noqa: ANN001
    with pytest.raises(ValueError) as err:
        R.size_hw(size)
    assert str(err.value) == f"size must be an int or (height, width) of positive ints, got {shown}"


def test_a_tap_is_placed_at_its_receptive_field_centres() -> None:
    net = _Net()
    assert R.tap_placement(net, "a") == (START, JUMP)
    assert R.tap_placement(net, "b") == (START_B, JUMP_B)
    m = _ramp(4, 3)
    placed = R.register(net, "a", m, (9, 13))
    assert placed.shape == (9, 13) and placed.dtype == torch.float64
    for i in range(4):
        for j in range(3):
            if 1 + 2 * i < 9:
                assert placed[1 + 2 * i, 2 + 4 * j] == m[i, j]
    want = R.sample_at_centres(m, START, JUMP, np.arange(9), np.arange(13))
    assert torch.equal(placed, want)
    assert placed[0, 0] == m[0, 0] and float(placed[2, 4]) == pytest.approx(float(m[:2, :2].mean()), abs=1e-12)
    batch = R.register(net, "b", torch.stack([m, -m]).float(), 10)
    assert batch.shape == (2, 10, 10) and batch.dtype == torch.float32
    assert torch.equal(batch, R.sample_at_centres(torch.stack([m, -m]).float(), START_B, JUMP_B, np.arange(10),
                                                  np.arange(10)))


def test_register_between_centres_needs_no_model() -> None:
    centres = CellCentres((0.5, 2.0), (1.0, 3.0, 7.0), "effective_centre")
    m = _ramp(2, 3)
    got = R.register(None, "unused", m, (4, 9), centres=centres)  # type: ignore[arg-type]
    assert torch.equal(got, R.sample_between(m, centres, np.arange(4), np.arange(9)))
    assert got.shape == (4, 9)


def test_register_all_registers_every_tap() -> None:
    net = _Net()
    maps = {"b": _ramp(2, 2), "a": _ramp(3, 3)}
    got = R.register_all(net, maps, (6, 8))
    assert list(got) == ["b", "a"]
    for tap, m in maps.items():
        assert torch.equal(got[tap], R.register(net, tap, m, (6, 8)))
    assert not torch.equal(got["a"], R.sample_at_centres(maps["a"], START_B, JUMP_B, np.arange(6), np.arange(8)))


@given(st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**31 - 1))
def test_registering_then_reading_the_cells_centres_gives_the_cells(h: int, w: int, seed: int) -> None:
    net = _Net()
    m = torch.from_numpy(np.random.default_rng(seed).random((2, h, w)))
    size = (1 + 2 * h, 2 + 4 * w)
    rows, cols = 1 + 2 * np.arange(h), 2 + 4 * np.arange(w)
    for placed in (R.register(net, "a", m, size).numpy(), R.register_maps(m, START, JUMP, size)):
        np.testing.assert_array_equal(placed[:, rows][:, :, cols], m.numpy())


# ---------------------------------------------------------------------------------------------- the photo
BOX = CropBox((10.0, 20.0, 50.0, 100.0), 8, (60, 120), "center_crop")  # sx = 8/40, sy = 8/80


def test_crop_box_coordinates_by_hand() -> None:
    assert BOX.scale == pytest.approx((0.2, 0.1))
    assert BOX.to_tensor(30.0, 60.0) == pytest.approx((4.0, 4.0)) and BOX.to_tensor(10.0, 20.0) == (0.0, 0.0)
    assert BOX.to_image(4.0, 4.0) == pytest.approx((30.0, 60.0))
    assert BOX.to_image(8.0, 0.0) == pytest.approx((50.0, 20.0))
    assert BOX.box_to_tensor((0, 0, 100, 60)) == pytest.approx((0.0, 0.0, 8.0, 4.0))  # clipped at 0 and the size
    assert BOX.box_to_tensor((20, 40, 30, 80)) == pytest.approx((2.0, 2.0, 4.0, 6.0))
    assert BOX.box_to_tensor((-5, 200, 5, 300)) == (0.0, 8.0, 0.0, 8.0)
    assert BOX.valid == (0.0, 0.0, 8.0, 8.0)
    pad = CropBox((-10.0, 0.0, 30.0, 20.0), 8, (20, 20), "pad")
    assert pad.valid == pytest.approx((2.0, 0.0, 6.0, 8.0))
    assert all(type(v) is float for v in pad.box_to_tensor((1, 2, 3, 4)))


def test_display_coords_by_hand() -> None:
    v, u = BOX.display_coords()  # the photo's own 60 x 120 pixels
    assert v.shape == (120,) and u.shape == (60,)
    # photo pixel centre x + 0.5 -> tensor edge coordinate -> tensor pixel-centre coordinate (- 0.5)
    np.testing.assert_allclose(u[[10, 30, 59]], [(10.5 - 10) * 0.2 - 0.5, (30.5 - 10) * 0.2 - 0.5,
                                                 (59.5 - 10) * 0.2 - 0.5])
    np.testing.assert_allclose(v[[0, 20, 119]], [(0.5 - 20) * 0.1 - 0.5, (20.5 - 20) * 0.1 - 0.5,
                                                 (119.5 - 20) * 0.1 - 0.5])
    v, u = BOX.display_coords((30, 40))  # (width, height): each display pixel covers 2 x 3 photo pixels
    assert v.shape == (40,) and u.shape == (30,)
    np.testing.assert_allclose(u[[0, 29]], [(1.0 - 10) * 0.2 - 0.5, (59.0 - 10) * 0.2 - 0.5])
    np.testing.assert_allclose(v[[0, 39]], [(1.5 - 20) * 0.1 - 0.5, (118.5 - 20) * 0.1 - 0.5])


_boxes = st.tuples(st.floats(-100, 100), st.floats(-100, 100), st.floats(1, 300), st.floats(1, 300),
                   st.integers(1, 512))


@given(_boxes, st.floats(-500, 500), st.floats(-500, 500))
def test_to_tensor_and_to_image_are_inverses(box, x: float, y: float) -> None:  # noqa: ANN001
    left, top, bw, bh, size = box
    cb = CropBox((left, top, left + bw, top + bh), size, (10, 10), "pad")
    u, v = cb.to_tensor(x, y)
    assert cb.to_image(u, v) == pytest.approx((x, y), abs=1e-9)
    assert cb.to_tensor(*cb.to_image(x, y)) == pytest.approx((x, y), abs=1e-9)
    assert cb.to_tensor(left + bw, top + bh) == pytest.approx((size, size))


@pytest.mark.parametrize(("w", "h", "r", "out"), [(500, 375, 256, (341, 256)), (375, 500, 256, (256, 341)),
                                                  (300, 300, 256, (256, 256)), (5, 3, 2, (3, 2)),
                                                  (3, 5, 2, (2, 3)), (64, 63, 64, (65, 64))])
def test_resized_size_shorter_side_to_resize_longer_truncated(w: int, h: int, r: int, out: tuple) -> None:
    assert R.resized_size(w, h, r) == out


@pytest.mark.parametrize(("w", "h", "s", "out"), [
    (200, 100, 224, ((224, 112), (0, 56))), (100, 200, 224, ((112, 224), (56, 0))),
    (300, 200, 225, ((225, 150), (0, 37))), (1000, 1, 224, ((224, 1), (0, 111))), (1, 1000, 224, ((1, 224), (111, 0))),
    (64, 64, 64, ((64, 64), (0, 0))), (10, 7, 5, ((5, 4), (0, 0))),  # 3.5 rounds to 4 (half to even)
])
def test_pad_layout_by_hand(w: int, h: int, s: int, out: tuple) -> None:
    assert R.pad_layout(w, h, s) == out


TINY = res2net.get_spec("tiny_resnet26")  # input 64, resize 64


def test_crop_box_resize_and_pad_by_hand() -> None:
    assert R.crop_box((200, 100), "resnet50", "resize") == CropBox((0.0, 0.0, 200.0, 100.0), 224, (200, 100),
                                                                   "resize")
    pad = R.crop_box((200, 100), "resnet50", "pad")  # fitted 224 x 112 at (0, 56): a photo pixel is 224/200
    assert pad.size == 224 and pad.image_size == (200, 100) and pad.mode == "pad"
    assert pad.box == pytest.approx((0.0, -50.0, 200.0, 150.0))
    pad = R.crop_box((100, 300), TINY, "pad")  # fitted 21 x 64 at (21, 0): 100/21 photo pixels per input pixel
    assert pad.box == pytest.approx((-21 * 100 / 21, 0.0, 43 * 100 / 21, 300.0))


def test_crop_box_centre_crop_by_hand() -> None:
    cb = R.crop_box((100, 60), TINY)  # resized 106 x 64, crop at left round(21) = 21
    assert (cb.size, cb.image_size, cb.mode) == (64, (100, 60), "center_crop")
    assert cb.box == pytest.approx((21 * 100 / 106, 0.0, 85 * 100 / 106, 60.0))
    cb = R.crop_box((103, 64), TINY, "center_crop")  # resized 103 x 64: (103 - 64)/2 = 19.5 rounds to 20
    assert cb.box == (20.0, 0.0, 84.0, 64.0)
    cb = R.crop_box((64, 101), TINY)  # 18.5 rounds to 18
    assert cb.box == (0.0, 18.0, 64.0, 82.0)
    cb = R.crop_box((128, 128), dataclasses.replace(TINY, resize=80))  # resized 80: crop 64 at 8 → photo 12.8
    assert cb.box == pytest.approx((12.8, 12.8, 115.2, 115.2)) and cb.size == 64


def test_crop_box_refusals() -> None:
    with pytest.raises(ValueError) as err:
        R.crop_box((10, 10), "resnet50", "squash")
    assert str(err.value) == "unknown preprocessing mode 'squash'; choose one of center_crop, resize, pad"
    small = dataclasses.replace(TINY, resize=32)
    for size in ((300, 100), (100, 300), (50, 50)):
        with pytest.raises(ValueError) as err:
            R.crop_box(size, small)
        assert str(err.value) == "tiny_resnet26: resize 32 is smaller than the crop 64"
    R.crop_box((300, 100), small, "resize")  # only the centre crop needs the resize


# -------------------------------------------------------------------------------------- maps on the photo
def test_place_on_photo_samples_at_the_display_coordinates_and_is_nan_off_the_input() -> None:
    crop = CropBox((2.0, 0.0, 6.0, 8.0), 4, (8, 8), "center_crop")  # x: u = k - 2; y: v = (k + 0.5)/2 - 0.5
    m = torch.tensor([[0.1, 0.7], [0.3, 0.2]], dtype=torch.float32)
    got = R.place_on_photo(m, (0.5, 1.0), (2.0, 1.0), crop)
    assert got.dtype == np.float64 and got.shape == (8, 8)
    assert np.isnan(got[:, [0, 1, 6, 7]]).all() and np.isfinite(got[:, 2:6]).all()
    v, u = crop.display_coords()
    want = R.sample_at_centres(m.double(), (0.5, 1.0), (2.0, 1.0), v, u).numpy()
    np.testing.assert_array_equal(got[:, 2:6], want[:, 2:6])
    # display (3, 3) is input (1.25, 1): column 0, 0.375 of the way from row 0 to row 1, in float64
    assert got[3, 3] == float(m[0, 0]) * (1 - 0.375) + float(m[1, 0]) * 0.375
    small = R.place_on_photo(m, (0.5, 1.0), (2.0, 1.0), crop, out_size=(4, 2))
    assert small.shape == (2, 4) and np.isnan(small[:, [0, 3]]).all() and np.isfinite(small[:, 1:3]).all()


@pytest.mark.parametrize(("left", "first", "last"), [(0.5, True, True), (0.6, False, True), (0.4, True, False),
                                                      (-0.5, True, False)])
def test_the_input_shows_display_pixels_within_half_a_pixel_ends_included(left: float, first: bool,
                                                                          last: bool) -> None:
    # u = ((k + 0.5) - left) - 0.5 = k - left for k = 0..4; shown on [-0.5, 3.5]
    crop = CropBox((left, left, left + 4, left + 4), 4, (5, 5), "pad")
    got = R.place_on_photo(np.ones((2, 2)), (0, 0), (3, 3), crop)
    assert np.isfinite(got[2, 0]) == first and np.isfinite(got[0, 2]) == first
    assert np.isfinite(got[2, 4]) == last and np.isfinite(got[4, 2]) == last


def test_photo_placement_needs_a_2d_map() -> None:
    crop = R.crop_box((64, 64), TINY)
    net = _Net()
    for call, shape in ((lambda: R.place_on_photo(torch.zeros(1, 2, 2), (0, 0), (1, 1), crop), "(1, 2, 2)"),
                        (lambda: R.register_to_photo(net, "a", torch.zeros(2), crop), "(2,)"),
                        (lambda: R.register_to_photo(net, "a", np.zeros((1, 1, 2)), crop,
                                                     centres=CellCentres((0.0,), (0.0, 1.0), "rf_centre")),
                         "(1, 1, 2)"),
                        (lambda: R.resize_map(np.zeros((2, 2, 2)), (4, 4)), "(2, 2, 2)"),
                        (lambda: R.map_to_image(np.zeros(4), crop), "(4,)")):
        with pytest.raises(ValueError) as err:
            call()
        assert str(err.value) == f"expected a 2-D map, got shape {shape}"


def test_register_to_photo_uses_the_taps_placement_or_the_centres() -> None:
    net = _Net()
    crop = CropBox((2.0, -1.0, 12.0, 19.0), 20, (14, 18), "pad")
    m = _ramp(4, 3).float()
    got = R.register_to_photo(net, "a", m, crop, out_size=(7, 9))
    want = R.place_on_photo(m, START, JUMP, crop, (7, 9))
    assert got.shape == (9, 7)
    np.testing.assert_array_equal(got, want)
    assert np.isnan(got).any() and np.isfinite(got).any()
    centres = CellCentres((0.0, 5.0, 6.0, 19.0), (1.0, 2.0, 10.0), "effective_centre")
    got = R.register_to_photo(net, "a", m, crop, out_size=(7, 9), centres=centres)
    v, u = crop.display_coords((7, 9))
    want = R.sample_between(m.double(), centres, v, u).numpy()
    shown = ((v >= -0.5) & (v <= 19.5))[:, None] & ((u >= -0.5) & (u <= 19.5))[None, :]
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, np.where(shown, want, np.nan))
    assert np.isnan(got).any() and np.isfinite(got).any()
    full = R.register_to_photo(net, "a", m, crop, centres=centres)
    assert full.shape == (18, 14)


@given(st.sampled_from(R.PREPROCESS_MODES), st.integers(20, 300), st.integers(20, 300), st.integers(1, 4),
       st.integers(1, 4), st.floats(-10, 10), st.floats(-10, 10), st.floats(1, 20), st.floats(1, 20),
       st.booleans(), st.integers(0, 2**31 - 1))
def test_mirroring_the_map_its_centres_and_the_crop_mirrors_the_photo(mode, w, h, ch, cw, y0, x0, jy, jx, across,
                                                                      seed) -> None:  # noqa: ANN001
    """Mirrored left-right (or top-bottom): the crop's box about the photo's middle, the map's cells, and their
    centres about the input's middle (the last cell's centre c becomes size - 1 - c)."""
    crop = R.crop_box((w, h), TINY, mode)
    m = np.random.default_rng(seed).random((ch, cw))
    left, top, right, bottom = crop.box
    s = crop.size
    if across:  # left-right
        mirror = CropBox((w - right, top, w - left, bottom), s, (w, h), mode)
        flipped, start = m[:, ::-1], (y0, s - 1 - (x0 + jx * (cw - 1)))
    else:
        mirror = CropBox((left, h - bottom, right, h - top), s, (w, h), mode)
        flipped, start = m[::-1], (s - 1 - (y0 + jy * (ch - 1)), x0)
    out = R.place_on_photo(m, (y0, x0), (jy, jx), crop, (37, 29))
    got = R.place_on_photo(flipped.copy(), start, (jy, jx), mirror, (37, 29))
    np.testing.assert_allclose(got, out[:, ::-1] if across else out[::-1], atol=1e-9, equal_nan=True)


def test_cells_on_photo_by_hand() -> None:
    cells = R.cells_on_photo(_Net(), "a", BOX)  # start (1, 2), jump (2, 4); sx 0.2, sy 0.1
    assert isinstance(cells, R.PhotoCells)
    assert cells[:4] == pytest.approx(((2 + 0.5) / 0.2 + 10 - 0.5, 4 / 0.2, (1 + 0.5) / 0.1 + 20 - 0.5, 2 / 0.1))
    assert (cells.x0, cells.dx, cells.y0, cells.dy) == pytest.approx((22.0, 20.0, 34.5, 20.0))
    assert cells.seen == pytest.approx((9.5, 19.5, 49.5, 99.5))


@given(st.sampled_from(R.PREPROCESS_MODES), st.integers(20, 400), st.integers(20, 400))
def test_cells_on_photo_are_the_centres_carried_through_to_image(mode: str, w: int, h: int) -> None:
    crop = R.crop_box((w, h), TINY, mode)
    net = _Net()
    for tap, (start, jump) in (("a", (START, JUMP)), ("b", (START_B, JUMP_B))):
        cells = R.cells_on_photo(net, tap, crop)
        for i, j in ((0, 0), (3, 5), (7, 2)):
            x, y = crop.to_image(start[1] + jump[1] * j + 0.5, start[0] + jump[0] * i + 0.5)
            assert (cells.x0 + cells.dx * j, cells.y0 + cells.dy * i) == pytest.approx((x - 0.5, y - 0.5))
        x0, y0 = crop.to_image(0, 0)
        x1, y1 = crop.to_image(crop.size, crop.size)
        assert cells.seen == pytest.approx((x0 - 0.5, y0 - 0.5, x1 - 0.5, y1 - 0.5))


# ------------------------------------------------------------------------------------- half-pixel placement
def test_half_pixel_spreads_cells_evenly() -> None:
    assert R._half_pixel(4, 64) == (7.5, 16.0)
    assert R._half_pixel(3, 3) == (0.0, 1.0)
    assert R._half_pixel(2, 1) == (-0.25, 0.5)


def test_resize_map_by_hand() -> None:
    m = np.array([[0.0, 1.0]])
    np.testing.assert_allclose(R.resize_map(m, (1, 4)), [[0, 0.25, 0.75, 1]])  # centres 0.5, 2.5
    got = R.resize_map(np.array([[0.0], [1.0]], dtype=np.float32), (4, 3))  # (height, width)
    assert got.shape == (4, 3) and got.dtype == np.float64
    np.testing.assert_allclose(got[:, 0], [0, 0.25, 0.75, 1])
    m = np.random.default_rng(0).random((3, 5))
    np.testing.assert_array_equal(R.resize_map(m, (3, 5)), m)


def test_map_to_image_spreads_the_cells_over_the_input() -> None:
    crop = CropBox((0.0, 0.0, 8.0, 8.0), 8, (8, 8), "resize")  # display pixel k at input coordinate k
    m = np.array([[0.0, 1.0, 2.0, 3.0], [10.0, 11.0, 12.0, 13.0]])  # rows at 1.5, 5.5; columns at 0.5, 2.5, ...
    got = R.map_to_image(m, crop)
    np.testing.assert_array_equal(got, R.place_on_photo(m, (1.5, 0.5), (4.0, 2.0), crop))
    assert got[1, 0] == 0.0 and got[3, 1] == pytest.approx(10 * 0.375 + 0.25) and got[7, 7] == 13.0
    small = R.map_to_image(m.astype(np.float32), crop, out_size=(4, 2))
    assert small.shape == (2, 4) and small.dtype == np.float64
    # display pixel (0, 0) of a 4 x 2 display: photo (1, 2) → input (0.5, 1.5): between rows 0 and 1
    assert small[0, 0] == pytest.approx(0.0)
    cc = R.crop_box((100, 60), TINY)
    on = R.map_to_image(np.ones((2, 2)), cc)
    assert np.isnan(on[:, :19]).all() and np.isnan(on[:, 81:]).all() and (on[:, 21:79] == 1).all()
