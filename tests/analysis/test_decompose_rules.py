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
