"""Exact per-branch decomposition of a block's gradient x activation map.

In eval mode a block's residual output is ``r = BN3(conv3(cat(y_0 … y_{s-1})))``, linear in the branch outputs:
``r = Σ_i a ⊙ W_i y_i + b`` with ``a = γ/√(σ²+ε)``, ``b = β − a·μ`` and ``W_i`` the fusion conv's input slice of
branch i. With ``g`` the target score's gradient at the block's pre-ReLU sum (``o = r + shortcut``; ``g`` is also
the gradient at ``r``), the residual's gradient x activation map ``Σ_k g_k r_k`` splits exactly into one map per
branch, ``Σ_k g_k (a ⊙ W_i y_i)_k``, plus the bias term ``Σ_k g_k b_k``. Unlike the total-gradient CAMs of the
branch taps (where branch i's path through the later branches counts for branch i too), these parts add up.

With ``means`` (per-branch mean activations, as in ``ablate(mode='mean')``) the centred form is used: branch i's
map is its contribution minus that of its mean, whose removal equals the direct mean-ablation change of ``r``;
the means' share moves into the bias term. Everything comes from the one forward and one backward of the CAMs.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from res2net.analysis.cam import _method, resolve_targets
from res2net.models.blocks import TappedBlock
from res2net.models.taps import TapCapture, check_images, eval_mode, iter_blocks

__all__ = ["BlockDecomposition", "Decomposition", "fusion_bias", "branch_maps", "decompose"]


@dataclass(frozen=True)
class BlockDecomposition:
    """One block's maps (the model's dtype, CPU): ``branches`` (N, s, h, w), ``bias`` (N, h, w) and ``residual``
    (N, h, w), the gradient x activation map of the block's own residual output that the parts add up to; beside them
    ``total_gradient`` (N, s, h, w), each branch output times its total gradient, which does not add up."""

    block: str
    branches: Tensor
    bias: Tensor
    residual: Tensor
    total_gradient: Tensor
    centred: bool

    @property
    def sum_error(self) -> float:
        """Max abs difference between the sum of the parts and the residual map (float rounding only)."""
        return float((self.branches.sum(1) + self.bias - self.residual).abs().max())


@dataclass(frozen=True)
class Decomposition:
    """Per-block decompositions, the total-gradient CAMs of the same taps, logits and targets of one pass."""

    blocks: dict[str, BlockDecomposition]
    cams: dict[str, Tensor]
    logits: Tensor
    targets: Tensor


def fusion_bias(block: TappedBlock) -> Tensor:
    """The bias b = β − a·μ of the fusion BN folded in eval mode (a = γ/√(σ²+ε)), (out,)."""
    bn = block.bn3
    a = bn.weight.detach() / torch.sqrt(bn.running_var.detach() + bn.eps)
    return bn.bias.detach() - a * bn.running_mean.detach()


def branch_maps(branches: Sequence[Tensor], fusion_grad: Tensor, residual_grad: Tensor, bias: Tensor,
                means: Sequence[Tensor | None] | None = None) -> tuple[Tensor, Tensor]:
    """Per-branch maps (N, s, h, w) and the bias map (N, h, w) from branch outputs y_i (N, C_i, h, w), the gradient
    at the fusion conv's input (N, Σ C_i, h, w), the gradient at the residual output (N, out, h, w) and the folded
    bias (``fusion_bias``).

    The fusion input's gradient is Wᵀ(a ⊙ g), so branch i's map (g · a ⊙ W_i y_i summed over channels) is that
    gradient's slice i times y_i: no extra convolution, the backward of the CAMs already computed it.
    """
    bias_map = torch.einsum("nkhw,k->nhw", residual_grad, bias.to(residual_grad))
    maps, start = [], 0
    for i, y in enumerate(branches):
        c = y.shape[1]
        h = fusion_grad[:, start:start + c]
        m = means[i] if means is not None else None
        if m is not None:
            mu = m.to(y).view(1, -1, 1, 1)
            y = y - mu
            bias_map = bias_map + (h * mu).sum(1)
        maps.append((h * y).sum(1))
        start += c
    if start != fusion_grad.shape[1]:
        raise ValueError(f"branch outputs have {start} channels in all; the fusion conv takes {fusion_grad.shape[1]}")
    return torch.stack(maps, 1), bias_map


class _FusionCapture:
    """Records each block's fusion input (in the graph) and residual output during the calling thread's forward."""

    def __init__(self, blocks: Mapping[str, TappedBlock]) -> None:
        self.blocks, self.inputs, self.out, self.handles = blocks, {}, {}, []
        self.owner = threading.get_ident()

    def __enter__(self) -> _FusionCapture:
        try:
            for name, block in self.blocks.items():
                self.handles.append(block.conv3.register_forward_pre_hook(self._pre(name)))
                self.handles.append(block.bn3.register_forward_hook(self._post(name)))
        except BaseException:
            self.__exit__()
            raise
        return self

    def _pre(self, name: str):  # noqa: ANN202
        def hook(module: nn.Module, inputs: tuple) -> None:
            if threading.get_ident() == self.owner:
                self.inputs[name] = inputs[0]

        return hook

    def _post(self, name: str):  # noqa: ANN202
        def hook(module: nn.Module, inputs: tuple, output: Tensor) -> None:
            if threading.get_ident() == self.owner:
                self.out[name] = output.detach()

        return hook

    def __exit__(self, *exc: object) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()


def decompose(
    model: nn.Module,
    images: Tensor,
    targets: int | Sequence[int] | Tensor | None = None,
    blocks: str | Iterable[str] | None = None,
    method: str = "gradcam",
    means: Mapping[str, Tensor] | None = None,
) -> Decomposition:
    """Per-branch decomposition of each block's map (default: every block) and the CAMs (``method``) of the same
    taps, all from one forward and one backward (``targets`` as in ``compute_cams``).

    ``means`` ({branch tap: (C,)}, from ``branch_means``) switches to the centred form.
    """
    fn = _method(method)
    known = dict(iter_blocks(model))
    names = list(known) if blocks is None else ([blocks] if isinstance(blocks, str) else list(blocks))
    for n in names:
        if n not in known:
            raise KeyError(f"unknown block {n!r}; blocks of this model: {', '.join(known)}")
    if not names:
        raise ValueError("no blocks requested")
    taps = [t for n in names for t in (*(f"{n}.branch{i}" for i in range(known[n].num_branches)), n)]
    x = check_images(model, images)
    with eval_mode(model), torch.enable_grad():
        x = x.detach().requires_grad_(True)  # a graph even when every weight is frozen
        with _FusionCapture({n: known[n] for n in names}) as fc, TapCapture(model, taps) as cap:
            logits = cap.run(x)
        if not isinstance(logits, Tensor) or logits.ndim != 2:
            raise RuntimeError(f"the model must return logits of shape (N, classes), got {type(logits).__name__}")
        t = resolve_targets(targets, logits)
        score = logits.gather(1, t[:, None]).sum()
        wanted = [cap.activations[tp] for tp in taps] + [fc.inputs[n] for n in names]
        grads = torch.autograd.grad(score, wanted, allow_unused=True)
    grads = [torch.zeros_like(a) if g is None else g for a, g in zip(wanted, grads, strict=True)]
    acts = {tp: a.detach() for tp, a in zip(taps, wanted, strict=False)}
    tgrad = dict(zip(taps, grads[:len(taps)], strict=True))
    fgrad = dict(zip(names, grads[len(taps):], strict=True))
    out: dict[str, BlockDecomposition] = {}
    for n in names:
        block = known[n]
        g = tgrad[n] * (acts[n] > 0)  # the ReLU's backward: the gradient at the pre-ReLU sum, hence at r
        ys = [acts[f"{n}.branch{i}"] for i in range(block.num_branches)]
        mu = None if means is None else [means.get(f"{n}.branch{i}") for i in range(block.num_branches)]
        parts, bias = branch_maps(ys, fgrad[n], g, fusion_bias(block), mu)
        residual = (g * fc.out[n]).sum(1)
        total = torch.stack([(tgrad[f"{n}.branch{i}"] * y).sum(1) for i, y in enumerate(ys)], 1)
        out[n] = BlockDecomposition(n, parts.cpu(), bias.cpu(), residual.cpu(), total.cpu(), mu is not None)
    cams = {tp: fn(acts[tp].float(), tgrad[tp].float()).cpu() for tp in taps}
    return Decomposition(out, cams, logits.detach().float().cpu(), t.cpu())
