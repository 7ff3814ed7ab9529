"""Rules of the decomposition's CAMs, written down first and then tested against Grad-CAM computed by hand: each tap's
map is the method applied to that tap's own activation and the target score's gradient at it (not swapped, not
another tap's, not another class's)."""

from __future__ import annotations

import torch

import res2net
from res2net.analysis.decompose import decompose

from helpers import randomise_bn


def _by_hand(model: torch.nn.Module, x: torch.Tensor, taps: list[str], target: int) -> dict[str, torch.Tensor]:
    """Grad-CAM by its definition: relu(sum_c mean_hw(dy/dA_c) * A_c), A hooked, dy/dA by autograd."""
    acts, hooks = {}, []
    for t in taps:
        hooks.append(model.get_submodule(t).register_forward_hook(lambda m, i, o, t=t: acts.__setitem__(t, o)))
    try:
        with torch.enable_grad():
            logits = model(x.clone().requires_grad_(True))
            grads = torch.autograd.grad(logits[:, target].sum(), [acts[t] for t in taps])
    finally:
        for h in hooks:
            h.remove()
    return {t: torch.relu((g.mean((2, 3), keepdim=True) * acts[t]).sum(1)).detach()
            for t, g in zip(taps, grads, strict=True)}


def test_decomposition_cams_are_gradcam_of_each_taps_own_activation_and_gradient(one_thread) -> None:
    model = randomise_bn(res2net.create_model("tiny_res2net26_4s"), seed=5).eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    target = 7
    dec = decompose(model, x, targets=target, blocks="layer3.1", method="gradcam")
    taps = [f"layer3.1.branch{i}" for i in range(4)] + ["layer3.1"]
    want = _by_hand(model, x, taps, target)
    assert set(dec.cams) == set(taps)
    assert dec.targets.tolist() == [target, target]
    for t in taps:
        assert want[t].abs().max() > 1e-6, t  # a map that is not all zero, so a wrong one shows
        torch.testing.assert_close(dec.cams[t], want[t], rtol=1e-4, atol=1e-6, msg=t)
    # the maps differ from tap to tap, so a map taken from another tap would be seen
    assert not torch.allclose(want["layer3.1.branch0"], want["layer3.1.branch3"])


def test_every_block_by_default_named_with_its_logits_and_exact_in_float64(one_thread) -> None:
    """Rules: no ``blocks`` means every block, each result named by its block; the logits are the model's; a float64
    model decomposes in float64 (the fusion bias and the means follow the activations' dtype) and still adds up."""
    from res2net.analysis.lesion import branch_means

    model = randomise_bn(res2net.create_model("tiny_res2net26_4s"), seed=3).eval().double()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    dec = decompose(model, x, targets=3)
    names = [n for n, _ in res2net.models.taps.iter_blocks(model)]
    assert list(dec.blocks) == names and [b.block for b in dec.blocks.values()] == names
    with torch.no_grad():
        torch.testing.assert_close(dec.logits, model(x).float())
    means = branch_means(model, x, blocks=["layer3.1"])
    centred = decompose(model, x, targets=3, blocks="layer3.1", means=means).blocks["layer3.1"]
    for b in (dec.blocks["layer3.1"], centred):
        assert b.branches.dtype == torch.float64
        torch.testing.assert_close(b.branches.sum(1) + b.bias, b.residual, rtol=1e-9, atol=1e-12)


def test_frozen_weights_still_decompose(one_thread) -> None:
    """Rule: the gradients are taken at the input, so a model with every weight frozen decomposes the same."""
    model = randomise_bn(res2net.create_model("tiny_res2net26_4s"), seed=5).eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(6))
    want = decompose(model, x, targets=2, blocks="layer2.1").blocks["layer2.1"].branches
    for p in model.parameters():
        p.requires_grad_(False)
    got = decompose(model, x, targets=2, blocks="layer2.1").blocks["layer2.1"].branches
    torch.testing.assert_close(got, want)


def test_bad_requests_are_refused_with_what_is_valid(one_thread) -> None:
    import pytest

    model = res2net.create_model("tiny_res2net26_4s").eval()
    x = torch.randn(1, 3, 64, 64)
    names = [n for n, _ in res2net.models.taps.iter_blocks(model)]
    with pytest.raises(KeyError) as e:
        decompose(model, x, blocks="layer9.0")
    assert e.value.args[0] == f"unknown block 'layer9.0'; blocks of this model: {', '.join(names)}"
    with pytest.raises(ValueError, match="^no blocks requested$"):
        decompose(model, x, blocks=[])

    class Pair(torch.nn.Module):  # a model whose forward returns a tuple, or 1-D scores
        def __init__(self, inner: torch.nn.Module, kind: str) -> None:
            super().__init__()
            self.inner, self.kind, self.spec = inner, kind, inner.spec

        def forward(self, t: torch.Tensor) -> object:
            y = self.inner(t)
            return (y, y) if self.kind == "tuple" else y.sum(1)

    for kind, got in (("tuple", "tuple"), ("flat", "Tensor")):
        with pytest.raises(RuntimeError) as e:
            decompose(Pair(model, kind), x, targets=0, blocks="inner.layer3.1")
        assert str(e.value) == f"the model must return logits of shape (N, classes), got {got}"


def test_the_centred_form_keeps_the_models_dtype(one_thread) -> None:
    """Rule: the means (float64, from ``branch_means``) are cast to the activations' dtype: a float32 model's parts
    stay float32."""
    from res2net.analysis.lesion import branch_means

    model = randomise_bn(res2net.create_model("tiny_res2net26_4s"), seed=3).eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    means = branch_means(model, x, blocks=["layer3.1"])
    assert next(iter(means.values())).dtype == torch.float64
    b = decompose(model, x, targets=3, blocks="layer3.1", means=means).blocks["layer3.1"]
    assert b.centred and b.branches.dtype == torch.float32 and b.bias.dtype == torch.float32


def test_branch_maps_refuse_branches_that_do_not_fill_the_fusion_input() -> None:
    """Rule: the branch outputs' channels must add up to the fusion conv's input; the refusal gives both counts."""
    import pytest

    from res2net.analysis.decompose import branch_maps

    branches = [torch.ones(1, 2, 3, 3), torch.ones(1, 3, 3, 3)]
    with pytest.raises(ValueError) as e:
        branch_maps(branches, torch.ones(1, 7, 3, 3), torch.ones(1, 4, 3, 3), torch.zeros(4))
    assert str(e.value) == "branch outputs have 5 channels in all; the fusion conv takes 7"
