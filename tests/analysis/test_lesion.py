"""Branch knock-out: against hand-written block forwards (total and direct effects, zero and mean), exact restore
(also after an exception), and other threads' forwards left untouched."""

from __future__ import annotations

import threading

import pytest
import torch

import res2net
from res2net.analysis.lesion import AblationError, ablate, ablate_channels, branch_means

from helpers import randomise_bn


@pytest.fixture(scope="module")
def r2(one_thread) -> torch.nn.Module:
    return randomise_bn(res2net.create_model("tiny_res2net26_4s"), seed=1)


@pytest.fixture(scope="module")
def rn(one_thread) -> torch.nn.Module:
    return randomise_bn(res2net.create_model("tiny_resnet26"), seed=2)


def _block_io(model: torch.nn.Module, block: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(input, output) of ``block`` in a forward of ``model``."""
    store = {}
    h = block.register_forward_hook(lambda m, i, o: store.update(i=i[0], o=o))
    try:
        with torch.no_grad():
            model(x)
    finally:
        h.remove()
    return store["i"], store["o"]


def _hand_bottle2neck(b: torch.nn.Module, x: torch.Tensor, replace: dict[int, torch.Tensor], direct: bool
                      ) -> torch.Tensor:
    """The Res2Net block written out: branches in ``replace`` become the given tensor in the fusion input; with
    ``direct`` the later branches still receive the original branch output."""
    relu = torch.relu
    with torch.no_grad():
        shortcut = b.downsample(x) if b.downsample is not None else x
        xs = torch.split(relu(b.bn1(b.conv1(x))), b.width, 1)
        s = len(xs)
        fused, prev = [], None
        for i in range(s - 1):
            inp = xs[i] if i == 0 or b.stype == "stage" else xs[i] + prev
            y = relu(b.bns[i](b.convs[i](inp)))
            out = replace[i].expand_as(y) if i in replace else y
            fused.append(out)
            prev = y if direct else out
        last = b.pool(xs[-1]) if b.stype == "stage" else xs[-1]
        fused.append(replace[s - 1].expand_as(last) if s - 1 in replace else last)
        return relu(b.bn3(b.conv3(torch.cat(fused, 1))) + shortcut)


def test_every_conv_branch_knocked_out_equals_the_block_written_without_them(r2) -> None:
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    for name in ("layer3.1", "layer3.0", "layer2.1"):  # normal, stage, normal
        block = r2.get_submodule(name)
        inp, intact = _block_io(r2, block, x)
        zeros = {i: torch.zeros(1, block.width, 1, 1) for i in range(3)}
        with ablate(r2, {name: [0, 1, 2]}, mode="zero"):
            _, out = _block_io(r2, block, x)
        want = _hand_bottle2neck(block, inp, zeros, direct=False)
        torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)
        assert (out - intact).abs().max() > 1e-3  # the knock-out did something
        _, after = _block_io(r2, block, x)
        assert torch.equal(after, intact)


def test_total_and_direct_effects_of_a_mean_knock_out_follow_the_hand_written_block(r2) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 64, 64, generator=g)
    means = branch_means(r2, torch.randn(6, 3, 64, 64, generator=g))
    block = r2.layer3[1]
    inp, _ = _block_io(r2, block, x)
    mu = {i: means[f"layer3.1.branch{i}"].float().view(1, -1, 1, 1) for i in (0, 3)}
    outs = {}
    for effect in ("total", "direct"):
        with ablate(r2, {"layer3.1": [0, 3]}, mode="mean", effect=effect, means=means):
            _, outs[effect] = _block_io(r2, block, x)
        torch.testing.assert_close(outs[effect], _hand_bottle2neck(block, inp, mu, direct=effect == "direct"),
                                   rtol=1e-5, atol=1e-5)
    assert (outs["total"] - outs["direct"]).abs().max() > 1e-3  # branch 0 feeds branch 1 in a normal block
    # in a stage block the branches are parallel: direct and total agree
    stage = r2.layer3[0]
    res = []
    for effect in ("total", "direct"):
        with ablate(r2, {"layer3.0": 1}, mode="zero", effect=effect):
            res.append(_block_io(r2, stage, x)[1])
    assert torch.equal(res[0], res[1])


def test_branch_means_are_the_channel_means_of_the_branch_outputs(r2) -> None:
    imgs = torch.randn(5, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    got = branch_means(r2, imgs, blocks=["layer2.1"], batch_size=2)
    assert set(got) == {f"layer2.1.branch{i}" for i in range(4)}
    store = {}
    h = r2.layer2[1].branch1.register_forward_hook(lambda m, i, o: store.update(a=o.clone()))
    with torch.no_grad():
        r2(imgs)
    h.remove()
    torch.testing.assert_close(got["layer2.1.branch1"], store["a"].double().mean((0, 2, 3)), rtol=1e-6, atol=1e-7)


def test_zero_on_a_resnet_bottleneck_equals_removing_its_middle_conv(rn) -> None:
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    for name in ("layer2.1", "layer3.0"):
        b = rn.get_submodule(name)
        inp, intact = _block_io(rn, b, x)
        with ablate(rn, {name: [0]}, mode="zero", effect="direct"):
            _, out = _block_io(rn, b, x)
        with torch.no_grad():
            shortcut = b.downsample(inp) if b.downsample is not None else inp
            middle = torch.zeros(inp.shape[0], b.conv3.in_channels, *out.shape[-2:])  # no conv2 path at all
            want = torch.relu(b.bn3(b.conv3(middle)) + shortcut)
        torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-5)
        assert (out - intact).abs().max() > 1e-3


def test_exit_restores_the_model_exactly_also_after_an_exception(r2) -> None:
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    r2.train()
    before = {k: v.clone() for k, v in r2.state_dict().items()}
    with torch.no_grad():
        with ablate(r2, {"layer1.1": [2], "layer4.0": [0, 3]}):
            assert not r2.training  # lesions run in eval mode
        r2.eval()
        want = r2(x)
        r2.train()
        with pytest.raises(RuntimeError, match="boom"), ablate(r2, {"layer3.1": [1]}, mode="zero", effect="direct"):
            r2(x)
            raise RuntimeError("boom")
    assert r2.training
    after = r2.state_dict()
    assert list(after) == list(before) and all(torch.equal(before[k], after[k]) for k in before)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in r2.modules())
    r2.eval()
    with torch.no_grad():
        assert torch.equal(r2(x), want)


def test_four_threads_mixing_knocked_out_and_normal_calls_get_the_serial_results(r2) -> None:
    g = torch.Generator().manual_seed(5)
    xs = [torch.randn(2, 3, 64, 64, generator=g) for _ in range(4)]
    plans = [None, {"layer3.1": [0]}, None, {"layer2.1": [1, 2], "layer3.0": [3]}]

    def call(i: int) -> torch.Tensor:
        with torch.no_grad():
            if plans[i] is None:
                return r2(xs[i])
            with ablate(r2, plans[i], mode="zero"):
                return r2(xs[i])

    serial = [call(i) for i in range(4)]
    assert not torch.equal(serial[1], r2(xs[1]).detach())  # the knock-out changes that call's logits
    results: dict[tuple[int, int], torch.Tensor] = {}
    barrier = threading.Barrier(4)
    errors = []

    def worker(i: int) -> None:
        try:
            for rep in range(6):
                barrier.wait(timeout=60)
                results[(i, rep)] = call(i)
        except BaseException as e:  # noqa: BLE001  (reported below)
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for (i, _), out in results.items():
        assert torch.equal(out, serial[i]), i
    assert len(results) == 24


def test_bad_requests_say_what_is_valid(r2) -> None:
    with pytest.raises(AblationError, match="unknown block 'layer9.0'.*layer1.0"), ablate(r2, {"layer9.0": [0]}):
        pass
    with pytest.raises(AblationError, match="branches 0..3"), ablate(r2, {"layer3.1": [4]}):
        pass
    with pytest.raises(AblationError, match="non-empty dict"), ablate(r2, {}):
        pass
    with pytest.raises(AblationError, match="branch_means"), ablate(r2, {"layer3.1": [0]}, mode="mean"):
        pass
    with pytest.raises(AblationError, match="has 3 channels"), ablate(
            r2, {"layer3.1": [0]}, mode="mean", means={"layer3.1.branch0": torch.zeros(3)}):
        pass
    with pytest.raises(AblationError, match="mode must be"), ablate(r2, {"layer3.1": [0]}, mode="noise"):
        pass
    with pytest.raises(AblationError, match="effect must be"), ablate(r2, {"layer3.1": [0]}, effect="indirect"):
        pass
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in r2.modules())


def _hand_fusion_lesion(b: torch.nn.Module, x: torch.Tensor, channels: list[int], mean: torch.Tensor
                        ) -> torch.Tensor:
    """A Res2Net normal block written out with chosen channels of the fusion conv's input set to ``mean`` (the
    branches themselves untouched)."""
    relu = torch.relu
    with torch.no_grad():
        xs = torch.split(relu(b.bn1(b.conv1(x))), b.width, 1)
        fused, prev = [], None
        for i in range(len(xs) - 1):
            prev = relu(b.bns[i](b.convs[i](xs[i] if i == 0 else xs[i] + prev)))
            fused.append(prev)
        z = torch.cat([*fused, xs[-1]], 1).clone()
        z[:, channels] = mean[channels].view(1, -1, 1, 1)
        return relu(b.bn3(b.conv3(z)) + x)


def test_a_channel_group_lesion_follows_the_hand_written_block(r2) -> None:
    """Rule: ``ablate_channels`` replaces exactly the given channels of the fusion input by the concatenated branch
    means; a group that is one branch's slice is that branch's direct mean knock-out."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 64, 64, generator=g)
    means = branch_means(r2, torch.randn(6, 3, 64, 64, generator=g))
    block = r2.layer2[1]
    inp, _ = _block_io(r2, block, x)
    mu = torch.cat([means[f"layer2.1.branch{i}"] for i in range(4)]).float()
    group = [0, 5, 17, 30, 31, 40, 51]
    with ablate_channels(r2, "layer2.1", group, means):
        _, got = _block_io(r2, block, x)
    torch.testing.assert_close(got, _hand_fusion_lesion(block, inp, group, mu), rtol=1e-5, atol=1e-5)
    w = block.width
    with ablate_channels(r2, "layer2.1", range(2 * w, 3 * w), means):
        _, by_group = _block_io(r2, block, x)
    with ablate(r2, {"layer2.1": [2]}, mode="mean", effect="direct", means=means):
        _, by_branch = _block_io(r2, block, x)
    torch.testing.assert_close(by_group, by_branch, rtol=0, atol=0)
    with pytest.raises(AblationError, match="0..51"):
        with ablate_channels(r2, "layer2.1", [52], means):
            pass
    with pytest.raises(AblationError, match="unknown block"):
        with ablate_channels(r2, "layer9.1", [0], means):
            pass


def test_a_resnet_channel_group_covering_its_3x3_is_the_branch_mean_lesion(rn) -> None:
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 3, 64, 64, generator=g)
    means = branch_means(rn, torch.randn(6, 3, 64, 64, generator=g))
    block = rn.layer1[1]
    with ablate_channels(rn, "layer1.1", range(block.conv3.in_channels), means):
        _, by_group = _block_io(rn, block, x)
    with ablate(rn, {"layer1.1": [0]}, mode="mean", means=means):
        _, by_branch = _block_io(rn, block, x)
    torch.testing.assert_close(by_group, by_branch, rtol=1e-6, atol=1e-6)


def test_every_refusal_names_the_valid_choices_exactly(r2) -> None:
    """Rule: a refused request's message names what was asked and what is valid (the page shows it verbatim):
    blocks listed up to 12, then how many there are; branch ranges 0..n-1 with the last the identity/pool."""
    from res2net.analysis.lesion import resolve_knockout

    blocks = [n for n, _ in res2net.models.taps.iter_blocks(r2)]
    assert len(blocks) <= 12
    with pytest.raises(AblationError) as e:
        resolve_knockout(r2, {"layer9.0": [0]})
    assert str(e.value) == f"unknown block 'layer9.0'; blocks of this model: {', '.join(blocks)}"
    big = res2net.create_model("res2net50_26w_4s")
    many = [n for n, _ in res2net.models.taps.iter_blocks(big)]
    assert len(many) > 12
    with pytest.raises(AblationError) as e:
        resolve_knockout(big, {"layer9.0": [0]})
    assert str(e.value) == (f"unknown block 'layer9.0'; blocks of this model: {', '.join(many[:12])}, ... "
                            f"({len(many)} in all)")
    with pytest.raises(AblationError) as e:
        resolve_knockout(r2, {"layer3.1": []})
    assert str(e.value) == "no branch given for block 'layer3.1'; its branches are 0..3"
    for bad in (4, -1, True, 1.0):
        with pytest.raises(AblationError) as e:
            resolve_knockout(r2, {"layer3.1": [bad]})
        assert str(e.value) == ("block 'layer3.1' has branches 0..3 (0 = smallest receptive field, 3 = "
                                f"identity/pool); got {bad!r}")
    with pytest.raises(AblationError) as e:
        resolve_knockout(r2, {})
    assert str(e.value) == ("branches must be a non-empty dict {block name: [branch indices]}, e.g. "
                            "{'layer3.1': [0]}")
    cases = {None: "mode='mean' needs means={branch tap: per-channel mean}: compute them once with "
                   "res2net.branch_means(model, train_images)",
             (): "means lacks branch tap 'layer3.1.branch0'; compute it with branch_means(model, images)",
             "nan": "means['layer3.1.branch0'] contains NaN or infinite values"}
    width = dict(res2net.models.taps.iter_blocks(r2))["layer3.1"].width
    for key, message in cases.items():
        means = None if key is None else {} if key == () else {"layer3.1.branch0": torch.full((width,), float("nan"))}
        with pytest.raises(AblationError) as e, ablate(r2, {"layer3.1": [0]}, mode="mean", means=means):
            pass
        assert str(e.value) == message


def test_a_mean_replacement_lives_on_the_activation_device() -> None:
    """Rule: the means (kept on the CPU) are moved to the device and dtype of the activation they replace."""
    from res2net.analysis.lesion import _replacement

    like = torch.empty(2, 3, 4, 4, device="meta", dtype=torch.float16)
    out = _replacement(like, torch.arange(3, dtype=torch.float64))
    assert out.device.type == "meta" and out.dtype == torch.float16 and out.shape == like.shape
    cpu = _replacement(torch.zeros(1, 3, 2, 2), torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    assert torch.equal(cpu, torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2))


@pytest.mark.parametrize("count", [12, 13])
def test_a_refusal_lists_twelve_blocks_and_counts_the_rest(r2, count: int) -> None:
    """Rule: an unknown block's refusal lists the model's blocks in order, all of them up to 12; from 13 on, the first
    12 and how many there are."""
    import copy

    from res2net.analysis.lesion import resolve_knockout

    block = dict(res2net.models.taps.iter_blocks(r2))["layer3.1"]
    model = torch.nn.Sequential(*[copy.deepcopy(block) for _ in range(count)])
    with pytest.raises(AblationError) as e:
        resolve_knockout(model, {"layer9.0": [0]})
    shown = ", ".join(str(k) for k in range(12)) + (", ... (13 in all)" if count == 13 else "")
    assert str(e.value) == f"unknown block 'layer9.0'; blocks of this model: {shown}"
