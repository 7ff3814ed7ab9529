"""CAMs at every tap: checked against the grad-cam package and a hand-written Bottle2neck forward."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pytorch_grad_cam import GradCAM, GradCAMElementWise, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

import res2net
from res2net.analysis.cam import METHODS, compute_cams, normalize, normalize_shared, tap_gradients, upsample
from res2net.models.blocks import Bottle2neck
from res2net.models.taps import TapError, get_tap, tap_names

from helpers import randomise_bn

torch.set_num_threads(1)

PACKAGE = {
    "gradcam": GradCAM,
    "gradcam++": GradCAMPlusPlus,
    "xgradcam": XGradCAM,
    "layercam": LayerCAM,
    "hirescam": HiResCAM,
    "gradcam-elementwise": GradCAMElementWise,
}


@pytest.fixture(scope="module")
def tiny() -> nn.Module:
    torch.manual_seed(0)
    return randomise_bn(res2net.create_model("tiny_res2net26_4s"), batches=3)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def package_cam(model: nn.Module, tap: str, images: torch.Tensor, targets: list[int], method: str) -> np.ndarray:
    with PACKAGE[method](model, [get_tap(model, tap)]) as cam:
        return cam(images, targets=[ClassifierOutputTarget(t) for t in targets])


def assert_same_maps(ours: torch.Tensor, theirs: np.ndarray, label: str) -> None:
    """Pearson correlation >= 0.999 per image (invariant to the package's min-max scaling)."""
    for i, (a, b) in enumerate(zip(ours.numpy(), theirs, strict=True)):
        a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
        if np.ptp(b) < 1e-6:  # the package gives a flat map: ours must be flat too
            assert np.ptp(a) <= 1e-6 * max(np.abs(a).max(), 1e-30), f"{label} image {i}: flat vs non-flat"
            continue
        r = np.corrcoef(a, b)[0, 1]
        assert r >= 0.999, f"{label} image {i}: correlation {r:.5f}"


@pytest.mark.parametrize("method", list(PACKAGE))
def test_every_tap_matches_grad_cam_package(tiny: nn.Module, images: torch.Tensor, method: str) -> None:
    targets = [3, 17, 99]
    cams = compute_cams(tiny, images, targets, method=method)
    assert list(cams) == tap_names(tiny)
    big = upsample(cams, 64)
    flat = 0
    for tap, m in big.items():
        theirs = package_cam(tiny, tap, images, targets, method)
        assert_same_maps(m, theirs, f"{method} {tap}")
        flat += int(np.ptp(theirs) < 1e-6)
    assert flat < len(big) // 2  # the comparison is not vacuous


def test_resnet_block_taps_match_grad_cam_package(images: torch.Tensor) -> None:
    torch.manual_seed(2)
    model = randomise_bn(res2net.create_model("tiny_resnet26"), seed=2, batches=3)
    cams = upsample(compute_cams(model, images, 5), 64)
    for tap in ["layer1.1", "layer2.0.branch0", "layer3.1", "layer4.1"]:
        assert_same_maps(cams[tap], package_cam(model, tap, images, [5, 5, 5], "gradcam"), tap)


@pytest.mark.slow
def test_full_size_res2net_block_outputs_match_package() -> None:
    torch.manual_seed(3)
    model = randomise_bn(res2net.create_model("res2net50_26w_4s"), size=96, seed=3, batches=3)
    x = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(4))
    taps = ["layer2.3", "layer3.5", "layer4.2"]
    cams = upsample(compute_cams(model, x, 207, taps=taps), 128)
    for tap in taps:
        assert_same_maps(cams[tap], package_cam(model, tap, x, [207], "gradcam"), tap)


def handwritten_bottle2neck(
    block: Bottle2neck, x: torch.Tensor, cut: bool = False
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The official Res2Net block forward written out with functional ops on the block's weights.

    ``cut`` detaches each branch where it feeds the next one, leaving only its direct path to conv3.
    """

    def bn(m: nn.BatchNorm2d, t: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(t, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)

    out = F.relu(bn(block.bn1, F.conv2d(x, block.conv1.weight)))
    w = block.width
    xs = [out[:, i * w:(i + 1) * w] for i in range(block.scale)]
    stride = block.convs[0].stride
    ys = []
    for i in range(block.scale - 1):
        inp = xs[i] if i == 0 or block.stype == "stage" else (ys[-1].detach() if cut else ys[-1]) + xs[i]
        y = F.relu(bn(block.bns[i], F.conv2d(inp, block.convs[i].weight, stride=stride, padding=1)))
        y.retain_grad()
        ys.append(y)
    last = F.avg_pool2d(xs[-1], 3, stride, 1) if block.stype == "stage" else xs[-1]
    last.retain_grad()
    ys.append(last)
    res = x if block.downsample is None else block.downsample(x)
    return F.relu(bn(block.bn3, F.conv2d(torch.cat(ys, 1), block.conv3.weight)) + res), ys


class OneBlockNet(nn.Module):
    """A Bottle2neck with a pooled linear head, so the block's taps feed a class score."""

    def __init__(self, block: Bottle2neck, classes: int = 7) -> None:
        super().__init__()
        self.block = block
        self.fc = nn.Linear(block.conv3.out_channels, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.block(x).mean((2, 3)))


@pytest.mark.parametrize("stype", ["normal", "stage"])
def test_branch_gradients_equal_handwritten_autograd(stype: str) -> None:
    torch.manual_seed(5)
    ds = nn.Sequential(nn.Conv2d(32, 64, 1, stride=2, bias=False), nn.BatchNorm2d(64)) if stype == "stage" else None
    block = Bottle2neck(32 if stype == "stage" else 64, 16, stride=2 if stype == "stage" else 1,
                        downsample=ds, base_width=32, scale=4, stype=stype)
    net = randomise_bn(OneBlockNet(block), size=12, channels=block.conv1.in_channels, batches=3)
    x = torch.randn(2, block.conv1.in_channels, 12, 12)
    targets = torch.tensor([1, 6])
    tg = tap_gradients(net, x, targets)

    out, ys = handwritten_bottle2neck(block, x.clone())
    score = net.fc(out.mean((2, 3))).gather(1, targets[:, None]).sum()
    score.backward()
    for i, y in enumerate(ys):
        tap = f"block.branch{i}"
        torch.testing.assert_close(tg.activations[tap], y.detach(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(tg.gradients[tap], y.grad, rtol=1e-5, atol=1e-7)
    if stype == "normal":  # total gradients: branch 0 also reaches the score through branches 1..s-2
        out_cut, ys_cut = handwritten_bottle2neck(block, x.clone(), cut=True)
        net.fc(out_cut.mean((2, 3))).gather(1, targets[:, None]).sum().backward()
        assert not torch.allclose(tg.gradients["block.branch0"], ys_cut[0].grad, rtol=1e-2, atol=1e-6)


def test_one_forward_and_one_backward(tiny: nn.Module, images: torch.Tensor, monkeypatch: pytest.MonkeyPatch) -> None:
    forwards = []
    handle = tiny.register_forward_pre_hook(lambda m, a: forwards.append(1))
    calls = []
    real = torch.autograd.grad
    monkeypatch.setattr(torch.autograd, "grad", lambda *a, **k: calls.append(1) or real(*a, **k))
    try:
        cams = compute_cams(tiny, images, method="layercam")
    finally:
        handle.remove()
    assert len(cams) == len(tap_names(tiny)) and len(forwards) == 1 and len(calls) == 1


def test_targets_default_to_top1_and_return_logits(tiny: nn.Module, images: torch.Tensor) -> None:
    cams, logits = compute_cams(tiny, images, taps=["layer4.1"], return_logits=True)
    with torch.no_grad():
        expected = tiny(images)
    torch.testing.assert_close(logits, expected)
    top1 = compute_cams(tiny, images, expected.argmax(1).tolist(), taps=["layer4.1"])
    torch.testing.assert_close(cams["layer4.1"], top1["layer4.1"])
    assert cams["layer4.1"].shape == (3, 2, 2) and cams["layer4.1"].dtype == torch.float32
    assert not cams["layer4.1"].requires_grad


def test_targets_int_equals_list(tiny: nn.Module, images: torch.Tensor) -> None:
    a = compute_cams(tiny, images, 42, taps="layer3.1.branch2")
    b = compute_cams(tiny, images, torch.tensor([42, 42, 42]), taps="layer3.1.branch2")
    c = compute_cams(tiny, images, torch.tensor(42), taps="layer3.1.branch2")
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, c)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        (dict(images=np.zeros((1, 3, 64, 64), np.float32)), TypeError, "torch.Tensor"),
        (dict(images=torch.zeros(3, 64, 64)), ValueError, "batch dimension"),
        (dict(images=torch.zeros(1, 3, 64, 64, dtype=torch.uint8)), TypeError, "floating-point"),
        (dict(images=torch.zeros(1, 1, 64, 64)), ValueError, "3 input channels"),
        (dict(images=torch.full((1, 3, 64, 64), float("nan"))), ValueError, "NaN"),
        (dict(targets=100), ValueError, r"out of range.*valid 0\.\.99"),
        (dict(targets=[1, -1]), ValueError, "out of range"),
        (dict(targets=[1, 2, 3]), ValueError, "one class per image: expected 2"),
        (dict(targets=[1.0, 2.0]), TypeError, "integer class indices"),
        (dict(taps=["layer9.0"]), TapError, "valid taps: layer1.0.branch0"),
        (dict(method="scorecam"), ValueError, "gradcam, gradcam\\+\\+"),
    ],
)
def test_bad_input_is_rejected_clearly(tiny: nn.Module, kwargs: dict, exc: type, match: str) -> None:
    args = dict(images=torch.zeros(2, 3, 64, 64), targets=None, taps=None, method="gradcam") | kwargs
    with pytest.raises(exc, match=match):
        compute_cams(tiny, args.pop("images"), **args)


def test_train_mode_restored_and_no_state_touched(tiny: nn.Module, images: torch.Tensor) -> None:
    tiny.zero_grad(set_to_none=True)  # the grad-cam package fills .grad; we must not
    bn = tiny.layer1[0].bn1
    before = bn.running_mean.clone()
    tiny.train()
    try:
        eval_cams = compute_cams(tiny, images, 1, taps="layer2.1")
        assert tiny.training and all(m.training for m in tiny.modules())
    finally:
        tiny.eval()
    torch.testing.assert_close(bn.running_mean, before, rtol=0, atol=0)
    torch.testing.assert_close(eval_cams, compute_cams(tiny, images, 1, taps="layer2.1"))
    assert all(p.grad is None for p in tiny.parameters())


def test_frozen_weights_and_caller_no_grad(tiny: nn.Module, images: torch.Tensor) -> None:
    ref = compute_cams(tiny, images, 0, taps="layer2.0")
    for p in tiny.parameters():
        p.requires_grad_(False)
    try:
        with torch.no_grad():
            frozen = compute_cams(tiny, images, 0, taps="layer2.0")
    finally:
        for p in tiny.parameters():
            p.requires_grad_(True)
    torch.testing.assert_close(frozen, ref)


def test_methods_table_lists_the_required_methods() -> None:
    assert {"gradcam", "gradcam++", "hirescam", "xgradcam", "layercam"} <= set(METHODS)


def test_upsample_is_bilinear_with_half_pixel_centres() -> None:
    m = torch.tensor([[0.0, 1.0]])
    up = upsample(m, (1, 4))
    torch.testing.assert_close(up, torch.tensor([[0.0, 0.25, 0.75, 1.0]]))
    assert upsample({"a": torch.zeros(2, 3, 3)}, 6)["a"].shape == (2, 6, 6)


def test_normalize_per_map_and_shared() -> None:
    a = torch.tensor([[[0.0, 2.0]], [[0.0, 0.0]]])  # (2, 1, 2): second map all zero
    b = torch.tensor([[[4.0, 1.0]]])
    per = normalize(a)
    torch.testing.assert_close(per, torch.tensor([[[0.0, 1.0]], [[0.0, 0.0]]]))
    shared = normalize_shared({"a": a, "b": b})
    torch.testing.assert_close(shared["a"], a / 4)
    torch.testing.assert_close(shared["b"], b / 4)
    torch.testing.assert_close(normalize({"a": a, "b": b}, "per_map")["b"], b / 4)
    with pytest.raises(ValueError, match="per_map"):
        normalize(a, "global")
