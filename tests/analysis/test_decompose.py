"""The per-branch decomposition: its parts add up to the block's gradient x activation map (computed here from the
block's own residual output and autograd) for every block of every zoo model, each part equals the explicit
per-branch contribution, and the centred part equals the direct mean knock-out's change."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import res2net
from res2net.analysis.decompose import decompose
from res2net.analysis.lesion import ablate, branch_means
from res2net.models.blocks import Bottle2neck, Bottleneck

from helpers import randomise_bn


def _residual_maps(model: torch.nn.Module, names: list[str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Σ_k g_k r_k per block: r = the fusion BN's output (hooked), g = d(top-1 logit)/dr by autograd."""
    store, handles = {}, []
    for n in names:
        handles.append(model.get_submodule(n).bn3.register_forward_hook(
            lambda m, i, o, n=n: store.__setitem__(n, o)))
    try:
        with torch.enable_grad():
            xx = x.clone().requires_grad_(True)
            logits = model(xx)
            score = logits.gather(1, logits.argmax(1, keepdim=True)).sum()
            grads = torch.autograd.grad(score, [store[n] for n in names])
    finally:
        for h in handles:
            h.remove()
    return {n: (g * store[n]).sum(1).detach() for n, g in zip(names, grads, strict=True)}


@pytest.mark.parametrize("name", res2net.list_models())
def test_parts_add_up_to_the_block_map_for_every_block_of_every_zoo_model(name: str, one_thread) -> None:
    model = res2net.create_model(name)
    size = 32 if model.spec.input_size == 224 else 64  # small inputs keep the full-size models quick
    randomise_bn(model, seed=3, size=size).double()  # float64, so the check sees the algebra, not float32 rounding
    names = [n for n, b in model.named_modules() if isinstance(b, (Bottle2neck, Bottleneck))]
    assert names, name
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    dec = decompose(model, x, blocks=names)
    want = _residual_maps(model, names, x)
    for n in names:
        d = dec.blocks[n]
        assert d.branches.shape[1] == model.get_submodule(n).num_branches
        err = (d.branches.sum(1) + d.bias - want[n].double()).abs().max()
        assert err < 1e-4, (name, n, float(err))
        assert want[n].abs().max() > 1e-3, (name, n)  # not a trivially zero map
        assert d.sum_error < 1e-4


def test_each_part_is_the_explicit_branch_contribution_and_the_cams_come_along(one_thread) -> None:
    model = randomise_bn(res2net.create_model("tiny_res2net26_4s"), seed=4)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    b = model.layer3[1]
    dec = decompose(model, x, blocks="layer3.1", method="hirescam")
    store = {}
    hooks = [b.branch_tap(i).register_forward_hook(lambda m, i_, o, i=i: store.__setitem__(i, o)) for i in range(4)]
    hooks.append(b.bn3.register_forward_hook(lambda m, i_, o: store.__setitem__("r", o)))
    logits = model(x)
    for h in hooks:
        h.remove()
    score = logits.gather(1, logits.argmax(1, keepdim=True)).sum()
    g, *g_branch = torch.autograd.grad(score, [store["r"], *(store[i] for i in range(4))])
    a = b.bn3.weight / torch.sqrt(b.bn3.running_var + b.bn3.eps)
    w = b.width
    for i in range(4):
        c = a.view(1, -1, 1, 1) * F.conv2d(store[i], b.conv3.weight[:, i * w:(i + 1) * w])
        torch.testing.assert_close(dec.blocks["layer3.1"].branches[:, i].float(), (g * c).sum(1), rtol=1e-4,
                                   atol=1e-5)
    assert set(dec.cams) == {f"layer3.1.branch{i}" for i in range(4)} | {"layer3.1"}
    # the total-gradient per-branch maps are no partition: they do not add up to the block's map
    d = dec.blocks["layer3.1"]
    for i in range(4):
        torch.testing.assert_close(d.total_gradient[:, i].float(), (g_branch[i] * store[i]).sum(1), rtol=1e-4,
                                   atol=1e-5)
    assert not torch.allclose(d.total_gradient.sum(1) + d.bias, d.residual, atol=1e-3)


def test_the_centred_part_equals_the_direct_mean_knock_out_change(one_thread) -> None:
    model = randomise_bn(res2net.create_model("tiny_res2net26_8s"), seed=5)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 3, 64, 64, generator=g)
    means = branch_means(model, torch.randn(6, 3, 64, 64, generator=g), blocks=["layer2.1"])
    dec = decompose(model, x, blocks="layer2.1", means=means)
    part = dec.blocks["layer2.1"]
    assert part.centred and part.sum_error < 1e-4
    b = model.layer2[1]
    logits = model(x)  # the gradient comes from the intact model
    store = {}
    h = b.bn3.register_forward_hook(lambda m, i, o: store.__setitem__("r", o))
    logits = model(x)
    h.remove()
    (grad,) = torch.autograd.grad(logits.gather(1, logits.argmax(1, keepdim=True)).sum(), store["r"])
    r = store["r"].detach()
    for i in (0, 3, 7):
        with torch.no_grad(), ablate(model, {"layer2.1": [i]}, mode="mean", effect="direct", means=means):
            h = b.bn3.register_forward_hook(lambda m, i_, o: store.__setitem__("k", o))
            model(x)
            h.remove()
        change = (grad * (r - store["k"])).sum(1)
        torch.testing.assert_close(part.branches[:, i].float(), change, rtol=1e-4, atol=1e-5)


def test_an_unknown_block_is_named(one_thread) -> None:
    model = res2net.create_model("tiny_res2net26_4s")
    with pytest.raises(KeyError, match="unknown block 'layer5.0'"):
        decompose(model, torch.zeros(1, 3, 64, 64), blocks=["layer5.0"])
