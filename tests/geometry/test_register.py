"""Registration places a tap's cells where their receptive fields are centred (not at half-pixel positions).

Reference: the centroid of one unit's input gradient on a uniform input, in a network made linear and symmetric
(constant positive kernels, identity BN, max-pools replaced by average pools of the same window), so that the
gradient is symmetric about the unit's receptive-field centre. Receptive fields of deep taps are far larger than
any input (up to 1135 px), so the border always cuts them; the input is therefore made odd-sized and
non-square, (64a + 1) x (64b + 1), which puts the middle unit of every tap of stride <= 32 at the exact centre
of the image: the cut is then symmetric and the centroid exact, at a different place in y and in x.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import res2net
from res2net.analysis import cam
from res2net.geometry import registration
from res2net.geometry.receptive_field import tap_rf_info
from res2net.geometry.registration import cell_index, crop_box, register_maps, sample_at_centres


def _symmetric(model: nn.Module) -> nn.Module:
    """Constant positive kernels, identity BN, average pools in place of max-pools: a linear, symmetric network."""
    for mod in list(model.modules()):
        for cname, child in list(mod.named_children()):
            if isinstance(child, nn.MaxPool2d):
                setattr(mod, cname, nn.AvgPool2d(child.kernel_size, child.stride, child.padding))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.fill_(1.0 / m.weight[0].numel())
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()
                m.reset_running_stats()
    return model.eval()


def _gradient_centroids(model: nn.Module, taps: list[str], cells: dict[str, tuple[int, int]],
                        hw: tuple[int, int]) -> dict[str, tuple[float, float]]:
    """Centroid (y, x) of d unit / d input for one unit per tap: one batched backward per stage, each batch run
    only as deep as its stage's last tap."""
    out = {}
    yy, xx = np.mgrid[0:hw[0], 0:hw[1]]
    stages: dict[str, list[str]] = {}
    for t in taps:
        stages.setdefault(t.split(".")[0], []).append(t)
    for group in stages.values():
        x = torch.ones(len(group), 3, *hw, requires_grad=True)
        with res2net.models.taps.TapCapture(model, group, stop_at_last=True) as capture:
            capture.run(x)
        score = sum(capture.activations[t][k, :, cells[t][0], cells[t][1]].sum() for k, t in enumerate(group))
        (g,) = torch.autograd.grad(score, x)
        for k, t in enumerate(group):
            m = g[k].abs().sum(0).double().numpy()
            out[t] = (float((m * yy).sum() / m.sum()), float((m * xx).sum() / m.sum()))
    return out


HW = (64 * 3 + 1, 64 * 4 + 1)  # 193 x 257: middle units centred at (96, 128)


def _first_and_last_blocks(model: nn.Module, taps: list[str] | None = None) -> list[str]:
    """The taps (of ``taps``, default all) of each stage's first block (where the stride and the shortcut change) and
    its last (the largest receptive field): the middle blocks repeat the last one's geometry with a smaller field.
    A block is a tap's name without its branch ("layer2.3", "level4.tree1.tree2"), in the model's order."""
    taps = taps or res2net.tap_names(model)
    blocks: dict[str, list[str]] = {}
    for t in taps:
        block = t.rsplit(".branch", 1)[0]
        order = blocks.setdefault(t.split(".")[0], [])
        if block not in order:
            order.append(block)
    return [t for t in taps if t.rsplit(".branch", 1)[0] in (blocks[t.split(".")[0]][0], blocks[t.split(".")[0]][-1])]


def _offsets(name: str, hw: tuple[int, int] = HW, taps: list[str] | None = None) -> dict[str, tuple[float, float]]:
    """Per tap: registered position of an impulse at the middle unit minus its gradient centroid (y, x)."""
    model = _symmetric(res2net.create_model(name))
    taps = taps or res2net.tap_names(model)
    with torch.no_grad(), res2net.models.taps.TapCapture(model, taps, stop_at_last=True) as capture:
        capture.run(torch.ones(1, 3, *hw))
    cells = {t: (capture.activations[t].shape[-2] // 2, capture.activations[t].shape[-1] // 2) for t in taps}
    centroids = _gradient_centroids(model, taps, cells, hw)
    out = {}
    for t in taps:
        impulse = torch.zeros(capture.activations[t].shape[-2:], dtype=torch.float64)
        impulse[cells[t]] = 1.0
        placed = registration.register(model, t, impulse, hw).numpy()
        peak = np.unravel_index(int(np.argmax(placed)), placed.shape)
        assert placed[peak] == pytest.approx(1.0), t
        out[t] = (peak[0] - centroids[t][0], peak[1] - centroids[t][1])
    return out


def _assert_within(offsets: dict[str, tuple[float, float]], tol: float, name: str) -> None:
    bad = {t: o for t, o in offsets.items() if max(abs(o[0]), abs(o[1])) > tol}
    assert not bad, f"{name}: registered peak minus gradient centroid beyond {tol} px: {bad}"


@pytest.mark.parametrize("name", ["tiny_resnet26", "tiny_res2net26_2s", "tiny_res2net26_4s", "tiny_res2net26_8s"])
def test_registration_matches_gradient_centroid_embedded(name, one_thread):
    _assert_within(_offsets(name), 0.5, name)


def test_registration_is_not_the_half_pixel_resize():
    model = res2net.create_model("tiny_resnet26")
    impulse = torch.zeros(2, 2)
    impulse[0, 0] = 1.0
    placed = registration.register(model, "layer4.1", impulse, 64)
    assert placed[0, 0] == 1.0 and placed[0, 31] == pytest.approx(1 - 31 / 32)  # cell 0 at 0, cell 1 at 32
    assert placed[40, 40] == 0.0  # beyond the last centre: the last cell's value
    half = cam.upsample(impulse, 64)
    assert float(half[15, 15]) == pytest.approx(1.0) and float(half[0, 0]) == pytest.approx(1.0)


def test_register_to_photo_follows_the_centre_crop():
    model = res2net.create_model("tiny_resnet26")
    impulse = torch.zeros(4, 4, dtype=torch.float64)
    impulse[1, 2] = 1.0  # layer3: stride 16, centre (16, 32) in the 64 px input
    # a 200x100 photo: resize 64 (shorter side) -> 128x64, centre crop 64 at left 32, top 0
    crop = crop_box((200, 100), "tiny_resnet26")
    spec = res2net.get_spec("tiny_resnet26")
    assert spec.resize == 64 and spec.input_size == 64
    out = registration.register_to_photo(model, "layer3.1", impulse, crop)
    assert out.shape == (100, 200)
    # model-input pixel centre (16, 32) -> input edge coordinate (16.5, 32.5) -> photo (x, y)
    fx = 100 / 64
    x_photo, y_photo = (32 + 32.5) * fx, (0 + 16.5) * fx
    peak = np.unravel_index(int(np.nanargmax(out)), out.shape)
    assert abs(peak[1] + 0.5 - x_photo) <= 0.5 and abs(peak[0] + 0.5 - y_photo) <= 0.5
    assert np.isnan(out[:, :50]).all() and np.isnan(out[:, 150:]).all()  # left and right of the crop
    assert np.isfinite(out[:, 50:150]).all()


def test_registration_matches_gradient_centroid_resnet50(one_thread):
    _assert_within(_offsets("resnet50", taps=_first_and_last_blocks(res2net.create_model("resnet50"))), 0.5,
                   "resnet50")


def _half_cell_bound(model: nn.Module, tap: str) -> float:
    """Sum of the half-cell offsets of the 2x2 average-pool shortcuts a tap's input has passed (v1b/"d" models)."""
    stage = int(tap.split(".")[0].removeprefix("layer"))
    return sum(2.0 ** (k - 1) for k in range(2, stage + 1))  # layer2: 2 px, layer3: +4, layer4: +8


def test_registration_res2net50d_main_path(one_thread):
    """In res2net50d the shortcut's 2x2 average pool is centred half a cell off the main path; a block output mixes
    both, so its gradient centroid drifts toward +y, +x. Registration follows the main path: exact at layer1 (no
    such pool yet), and from layer2 on the drift stays within the pools' accumulated half-cells, in their direction.
    Each stage's first and last block, with their first and last branches (the middle ones lie between)."""
    model = res2net.create_model("res2net50d")
    taps = _first_and_last_blocks(model, [t for t in res2net.tap_names(model)
                                          if t.endswith(("branch0", "branch3")) or "branch" not in t])
    offsets = _offsets("res2net50d", taps=taps)
    _assert_within({t: o for t, o in offsets.items() if t.startswith("layer1")}, 0.5, "res2net50d layer1")
    for t, (dy, dx) in offsets.items():
        if not t.startswith("layer1"):
            bound = _half_cell_bound(model, t)
            assert -bound - 0.5 <= dy <= 0.5 and -bound - 0.5 <= dx <= 0.5, (t, dy, dx, bound)


def test_registration_dla60_res2net_main_path(one_thread):
    """DLA's trees shorten their shortcut with a 2x2 pool, half a cell off the main path, like res2net50d: exact
    before the first such pool (the branches of level2's first block), and from there a drift toward +y, +x within
    the pools' accumulated half-cells (level2: 1 px, level3: +2, level4: +4, level5: +8). Its 2x2 pools need sizes
    divisible by 32, so the input is 224 x 256 and the middle units are not the image centre: the border cuts
    deep taps' gradients unevenly, which adds to the drift but stays inside the bound. Each level's first and last
    tree block, with their first and last branches."""
    model = res2net.create_model("dla60_res2net")
    taps = _first_and_last_blocks(model, [t for t in res2net.tap_names(model)
                                          if t.endswith(("branch0", "branch3")) or "branch" not in t])
    offsets = _offsets("dla60_res2net", (224, 256), taps)
    exact = {t: o for t, o in offsets.items() if t.startswith("level2.tree1.branch")}
    assert exact
    _assert_within(exact, 0.5, "dla60_res2net before any 2x2 pool")
    for t, (dy, dx) in offsets.items():
        level = int(t.split(".")[0].removeprefix("level"))
        bound = sum(2.0 ** (k - 2) for k in range(2, level + 1))
        assert -bound - 0.5 <= dy <= 0.5 and -bound - 0.5 <= dx <= 0.5, (t, dy, dx, bound)


def test_register_maps_places_every_tap_as_register_does():
    """The numpy batch path (the evaluation's) gives the torch path's maps bit for bit, at every tap."""
    from res2net.analysis.cam import compute_cams

    torch.manual_seed(0)
    model = res2net.create_model("tiny_res2net26_4s")
    taps = res2net.tap_names(model)
    cams = compute_cams(model, torch.randn(3, 3, 64, 64), taps=taps)
    for t in taps:
        rf = tap_rf_info(model, t)
        want = registration.register(model, t, cams[t], 64).double().numpy()
        assert register_maps(cams[t], rf.start, rf.jump, (64, 64)).tobytes() == want.tobytes(), t
    m = torch.rand(2, 5, 7)  # fractional centres, a non-square image, cells beyond both edges
    want = sample_at_centres(m, (-3.5, 1.5), (9.0, 6.0), np.arange(50), np.arange(37)).double().numpy()
    assert register_maps(m, (-3.5, 1.5), (9.0, 6.0), (50, 37)).tobytes() == want.tobytes()


@pytest.mark.parametrize(("start", "jump"), [((0.0, 0.0), (16.0, 16.0)), ((3.0, 1.0), (4.0, 8.0)),
                                             ((1.5, 2.5), (3.0, 5.0))])
def test_both_paths_put_cell_i_at_start_plus_jump_times_i(start, jump):
    """Cell (i, j) sits at start + jump·(i, j): its index there is exactly (i, j), and sampling a random map at the
    centres of its cells gives each cell's own value back, on the torch path and on the numpy path alike."""
    h, w = 5, 4
    i, j = np.arange(h), np.arange(w)
    ys, xs = start[0] + jump[0] * i, start[1] + jump[1] * j  # the centres, written out here
    assert (cell_index(ys, start[0], jump[0]) == i).all() and (cell_index(xs, start[1], jump[1]) == j).all()
    m = torch.rand(2, h, w)
    torch_path = sample_at_centres(m, start, jump, ys, xs)
    assert torch.equal(torch_path, m)
    if all(float(v).is_integer() for v in (*start, *jump)):  # centres on whole pixels: the numpy path samples them
        size = (int(ys[-1]) + 1, int(xs[-1]) + 1)
        numpy_path = register_maps(m, start, jump, size)
        assert (numpy_path[:, ys.astype(int)][:, :, xs.astype(int)] == m.double().numpy()).all()


def test_registered_model_cells_sit_at_their_receptive_field_centres():
    """Through a model: an impulse at cell (i, j) of a tap peaks, once registered, at ``RFInfo.centre(i, j)``."""
    model = res2net.create_model("tiny_resnet26")
    for tap in ("layer2.1", "layer3.1"):
        rf = tap_rf_info(model, tap)
        for cell in ((0, 0), (1, 2), (3, 1)):
            impulse = torch.zeros(4 if tap == "layer3.1" else 8, 4 if tap == "layer3.1" else 8, dtype=torch.float64)
            impulse[cell] = 1.0
            placed = registration.register(model, tap, impulse, 64).numpy()
            assert placed[tuple(int(c) for c in rf.centre(*cell))] == 1.0, (tap, cell)

