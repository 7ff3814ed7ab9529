"""Taps: names and order, lookup errors, placement on the forward path, branch values against the block's
math written out by hand, and the capture/eval-mode context managers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import res2net
from res2net.models.taps import TapCapture, branch_tap_names, eval_mode

from helpers import randomise_bn

R50_LAYERS = [3, 4, 6, 3]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def r2n() -> nn.Module:
    return randomise_bn(res2net.create_model("res2net50_26w_4s"))


@pytest.fixture(scope="module")
def r50() -> nn.Module:
    return randomise_bn(res2net.create_model("resnet50"))


@pytest.fixture(scope="module")
def dla() -> nn.Module:
    return randomise_bn(res2net.create_model("dla60_res2next"))


def image(seed: int = 3) -> torch.Tensor:
    return torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


R50_BLOCKS = [f"layer{i + 1}.{j}" for i, n in enumerate(R50_LAYERS) for j in range(n)]


# ---------------------------------------------------------------------------------------------------------------
# Names and order


def test_res2net_tap_names_and_order(r2n):
    names = res2net.tap_names(r2n)
    assert len(names) == 80
    assert names == [t for b in R50_BLOCKS for t in [*(f"{b}.branch{i}" for i in range(4)), b]]
    infos = res2net.block_infos(r2n)
    assert [i.name for i in infos] == R50_BLOCKS
    assert all(i.num_branches == 4 and i.kind == "res2net" for i in infos)
    stage = [i.name for i in infos if i.stype == "stage"]
    assert stage == ["layer1.0", "layer2.0", "layer3.0", "layer4.0"]
    assert sum(i.stype == "normal" for i in infos) == 12


def test_resnet_tap_names_and_order(r50):
    names = res2net.tap_names(r50)
    assert names == [t for b in R50_BLOCKS for t in (f"{b}.branch0", b)]
    infos = res2net.block_infos(r50)
    assert len(infos) == 16 and all(i.num_branches == 1 and i.kind == "resnet" for i in infos)
    assert [i.name for i in infos if i.stype == "stage"] == ["layer1.0", "layer2.0", "layer3.0", "layer4.0"]


def test_dla_tap_names_use_module_paths(dla):
    names = res2net.tap_names(dla)
    assert len(names) == 16 * 5
    assert names[:5] == [*(f"level2.tree1.branch{i}" for i in range(4)), "level2.tree1"]
    assert "level4.tree2.tree1.tree2.branch3" in names and names[-1] == "level5.tree2"
    for name in names:
        assert isinstance(res2net.get_tap(dla, name), nn.Identity)


def test_get_tap_returns_the_identity_modules(r2n, r50):
    assert res2net.get_tap(r2n, "layer3.2.branch1") is r2n.layer3[2].branch1
    assert res2net.get_tap(r2n, "layer3.2.branch3") is r2n.layer3[2].branch3
    assert res2net.get_tap(r2n, "layer3.2") is r2n.layer3[2].output
    assert res2net.get_tap(r50, "layer1.0.branch0") is r50.layer1[0].branch0
    for name in res2net.tap_names(r2n):
        assert type(res2net.get_tap(r2n, name)) is nn.Identity


@pytest.mark.parametrize("bad", ["layer5.0", "layer3.2.branch4", "layer3.2.output", "fc", ""])
def test_unknown_tap_lists_valid_names(r2n, bad):
    with pytest.raises(res2net.TapError) as err:
        res2net.get_tap(r2n, bad)
    msg = str(err.value)
    assert repr(bad) in msg and "layer1.0.branch0" in msg and "80" in msg
    assert isinstance(err.value, KeyError)


def test_resnet_has_no_second_branch(r50):
    with pytest.raises(res2net.TapError, match="layer1.0.branch0"):
        res2net.get_tap(r50, "layer1.0.branch1")


# ---------------------------------------------------------------------------------------------------------------
# Taps sit on the forward path, in forward order


@pytest.mark.parametrize("fixture", ["r2n", "r50", "dla"])
def test_taps_fire_once_each_in_forward_order(fixture, request):
    model = request.getfixturevalue(fixture)
    names = res2net.tap_names(model)
    calls: list[str] = []
    handles = [
        res2net.get_tap(model, n).register_forward_hook(lambda m, i, o, n=n: calls.append(n)) for n in names
    ]
    try:
        with torch.no_grad():
            model(image())
    finally:
        for h in handles:
            h.remove()
    assert calls == names


def test_block_output_tap_is_the_block_output(r2n):
    seen = {}
    h = r2n.layer2[1].register_forward_hook(lambda m, i, o: seen.setdefault("block", o))
    try:
        with TapCapture(r2n, ["layer2.1"]) as cap, torch.no_grad():
            cap.run(image())
    finally:
        h.remove()
    assert torch.equal(cap.activations["layer2.1"], seen["block"])


# ---------------------------------------------------------------------------------------------------------------
# Branch values against the block's math written with functional ops


def _conv_bn_relu(x: torch.Tensor, conv: nn.Conv2d, bn: nn.BatchNorm2d) -> torch.Tensor:
    y = F.conv2d(x, conv.weight, None, conv.stride, conv.padding, conv.dilation, conv.groups)
    y = F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
    return F.relu(y)


def _expected_branches(block: nn.Module, x: torch.Tensor, hierarchical: bool) -> list[torch.Tensor]:
    """Res2Net block math: split conv1's output, 3x3 per group (fed the previous group's output when
    hierarchical), last group untouched (normal) or 3x3 average-pooled with the block stride (stage)."""
    out = _conv_bn_relu(x, block.conv1, block.bn1)
    groups = torch.split(out, out.shape[1] // block.scale, dim=1)
    ys: list[torch.Tensor] = []
    for i, (conv, bn) in enumerate(zip(block.convs, block.bns, strict=True)):
        inp = groups[i] + ys[-1] if hierarchical and i > 0 else groups[i]
        ys.append(_conv_bn_relu(inp, conv, bn))
    stride = block.convs[0].stride[0]
    last = groups[-1] if hierarchical else F.avg_pool2d(groups[-1], 3, stride, 1, count_include_pad=True)
    return ys + [last]


def _capture_block(model: nn.Module, block_name: str, block: nn.Module) -> tuple[torch.Tensor, dict]:
    """The block's input and every tap of the block, from one forward."""
    seen = {}

    def keep_input(module: nn.Module, args: tuple) -> None:  # returning None leaves the inputs untouched
        seen["x"] = args[0].clone()

    h = block.register_forward_pre_hook(keep_input)
    taps = [*branch_tap_names(model, block_name), block_name]
    try:
        with TapCapture(model, taps) as cap, torch.no_grad():
            cap.run(image())
    finally:
        h.remove()
    return seen["x"], cap.activations


@pytest.mark.parametrize("fixture,block_name,stype", [
    ("r2n", "layer3.1", "normal"),
    ("r2n", "layer2.0", "stage"),
    ("dla", "level3.tree1.tree2", "normal"),
    ("dla", "level3.tree1.tree1", "stage"),
])
def test_branch_taps_match_hand_written_block(fixture, block_name, stype, request):
    model = request.getfixturevalue(fixture)
    block = model.get_submodule(block_name)
    assert block.stype == stype
    x, acts = _capture_block(model, block_name, block)
    with torch.no_grad():
        expected = _expected_branches(block, x, hierarchical=stype == "normal")
    assert len(expected) == block.num_branches == 4
    for i, want in enumerate(expected):
        got = acts[f"{block_name}.branch{i}"]
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    if stype == "stage":  # the strided groups shrink the map; the pooled group does too
        assert expected[-1].shape[-1] == (x.shape[-1] + 1) // 2


def test_normal_block_output_matches_hand_written_block(r2n):
    block = r2n.layer3[1]
    x, acts = _capture_block(r2n, "layer3.1", block)
    with torch.no_grad():
        cat = torch.cat(_expected_branches(block, x, hierarchical=True), 1)
        y = F.conv2d(cat, block.conv3.weight)
        bn = block.bn3
        y = F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
        want = F.relu(y + x)
    torch.testing.assert_close(acts["layer3.1"], want, rtol=1e-5, atol=1e-5)


def test_resnet_branch0_is_the_3x3_path(r50):
    block = r50.layer2[1]
    x, acts = _capture_block(r50, "layer2.1", block)
    with torch.no_grad():
        want = _conv_bn_relu(_conv_bn_relu(x, block.conv1, block.bn1), block.conv2, block.bn2)
    torch.testing.assert_close(acts["layer2.1.branch0"], want, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------------
# TapCapture and eval_mode


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) for m in model.modules())


def test_capture_without_stop_returns_the_logits(r2n):
    with torch.no_grad():
        plain = r2n(image())
        with TapCapture(r2n, ["layer4.2", "layer1.0.branch3"]) as cap:
            logits = cap.run(image())
    assert torch.equal(logits, plain)
    assert cap.taps == ["layer1.0.branch3", "layer4.2"]
    assert set(cap.activations) == {"layer1.0.branch3", "layer4.2"}
    assert _hook_count(r2n) == 0


def test_stop_at_last_skips_the_rest_of_the_forward(r2n):
    fc_calls = []
    h = r2n.fc.register_forward_hook(lambda m, i, o: fc_calls.append(1))
    later_calls = []
    h2 = r2n.layer3[0].register_forward_hook(lambda m, i, o: later_calls.append(1))
    try:
        with TapCapture(r2n, ["layer2.1", "layer1.0.branch0"], stop_at_last=True) as cap, torch.no_grad():
            result = cap.run(image())
    finally:
        h.remove()
        h2.remove()
    assert result is None
    assert fc_calls == [] and later_calls == []
    assert set(cap.activations) == {"layer1.0.branch0", "layer2.1"}
    assert cap.activations["layer2.1"].shape == (1, 512, 8, 8)
    assert _hook_count(r2n) == 0


def test_capture_removes_hooks_when_the_forward_raises(r2n):
    with pytest.raises(RuntimeError):
        with TapCapture(r2n, ["layer1.0", "layer3.0.branch2"], stop_at_last=True) as cap:
            cap.run(torch.randn(1, 5, 64, 64))  # wrong channel count: the stem conv raises
    assert _hook_count(r2n) == 0

    def boom(m, i, o):
        raise ValueError("boom")

    h = r2n.layer2[0].register_forward_hook(boom)
    try:
        with pytest.raises(ValueError, match="boom"):
            with TapCapture(r2n, ["layer1.1", "layer4.0"]) as cap, torch.no_grad():
                cap.run(image())
    finally:
        h.remove()
    assert "layer1.1" in cap.activations and "layer4.0" not in cap.activations
    assert _hook_count(r2n) == 0


def test_capture_rejects_unknown_taps_without_leaving_hooks(r2n):
    with pytest.raises(res2net.TapError):
        TapCapture(r2n, ["layer1.0", "layer9.9"])
    assert _hook_count(r2n) == 0


def test_eval_mode_restores_train_mode():
    model = res2net.create_model("tiny_res2net26_4s")
    model.train()
    with eval_mode(model):
        assert not any(m.training for m in model.modules())
        with eval_mode(model):
            assert not model.training
        assert not model.training  # still inside the outer user
    assert all(m.training for m in model.modules())

    model.eval()
    with eval_mode(model):
        pass
    assert not any(m.training for m in model.modules())

    model.train()
    with pytest.raises(RuntimeError):
        with eval_mode(model):
            raise RuntimeError("analysis failed")
    assert all(m.training for m in model.modules())


def test_branch_labels_mark_the_last_branch_by_block_type():
    infos = res2net.block_infos(res2net.create_model("tiny_res2net26_4s"))
    stage, normal = infos[0], infos[1]
    assert (stage.stype, normal.stype) == ("stage", "normal")
    assert [stage.branch_label(i) for i in range(4)] == ["branch 0", "branch 1", "branch 2", "branch 3 (pool)"]
    assert normal.branch_label(3) == "branch 3 (identity)" and normal.branch_label(0) == "branch 0"
    single = res2net.block_infos(res2net.create_model("tiny_resnet26"))[1]
    assert single.branch_label(0) == "branch 0"
