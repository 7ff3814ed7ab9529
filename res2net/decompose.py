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

from .blocks import TappedBlock
from .cam import _method, tap_gradients
from .taps import iter_blocks

__all__ = ["BlockDecomposition", "Decomposition", "fold_fusion", "branch_maps", "decompose"]


@dataclass(frozen=True)
class BlockDecomposition:
    """One block's maps (float64, CPU): ``branches`` (N, s, h, w), ``bias`` (N, h, w) and ``residual`` (N, h, w),
    the gradient x activation map of the block's own residual output that the parts must add up to."""

    block: str
    branches: Tensor
    bias: Tensor
    residual: Tensor
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


def fold_fusion(block: TappedBlock) -> tuple[Tensor, Tensor, Tensor]:
    """The fusion conv and its BN folded (eval mode): (weight (out, in), scale a (out,), bias b (out,)), float64."""
    bn = block.bn3
    a = bn.weight.detach().double() / torch.sqrt(bn.running_var.detach().double() + bn.eps)
    b = bn.bias.detach().double() - a * bn.running_mean.detach().double()
    w = block.conv3.weight.detach().double()
    return w.reshape(w.shape[0], w.shape[1]), a, b


def branch_maps(branches: Sequence[Tensor], grad: Tensor, weight: Tensor, scale: Tensor, bias: Tensor,
                means: Sequence[Tensor | None] | None = None) -> tuple[Tensor, Tensor]:
    """Per-branch maps (N, s, h, w) and the bias map (N, h, w) from branch outputs y_i (N, C_i, h, w), the gradient
    at the residual output (N, out, h, w) and the folded fusion (``fold_fusion``); float64.

    Computed as (Wᵀ(a ⊙ g))_i · y_i: the gradient at the fusion input, once, then one channel sum per branch.
    """
    g = grad.double()
    back = torch.einsum("nkhw,kc->nchw", g * scale.view(1, -1, 1, 1), weight)  # gradient at the fusion input
    bias_map = torch.einsum("nkhw,k->nhw", g, bias)
    maps, start = [], 0
    for i, y in enumerate(branches):
        c = y.shape[1]
        h = back[:, start:start + c]
        y = y.double()
        m = means[i] if means is not None else None
        if m is not None:
            mu = m.double().to(y.device).view(1, -1, 1, 1)
            y = y - mu
            bias_map = bias_map + (h * mu).sum(1)
        maps.append((h * y).sum(1))
        start += c
    if start != weight.shape[1]:
        raise ValueError(f"branch outputs have {start} channels in all; the fusion conv takes {weight.shape[1]}")
    return torch.stack(maps, 1), bias_map


class _ResidualCapture:
    """Records each block's residual output (its fusion BN's output) during the calling thread's forward."""

    def __init__(self, blocks: Mapping[str, TappedBlock]) -> None:
        self.blocks, self.out, self.handles = blocks, {}, []
        self.owner = threading.get_ident()

    def __enter__(self) -> _ResidualCapture:
        try:
            for name, block in self.blocks.items():
                self.handles.append(block.bn3.register_forward_hook(self._hook(name)))
        except BaseException:
            self.__exit__()
            raise
        return self

    def _hook(self, name: str):  # noqa: ANN202
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
    with _ResidualCapture({n: known[n] for n in names}) as rc:
        tg = tap_gradients(model, images, targets, taps)
    out: dict[str, BlockDecomposition] = {}
    for n in names:
        block = known[n]
        a_out, g_out = tg.activations[n], tg.gradients[n]
        g = (g_out * (a_out > 0)).double()  # the ReLU's backward: the gradient at the pre-ReLU sum, hence at r
        ys = [tg.activations[f"{n}.branch{i}"] for i in range(block.num_branches)]
        mu = None if means is None else [means.get(f"{n}.branch{i}") for i in range(block.num_branches)]
        w, a, b = fold_fusion(block)
        parts, bias = branch_maps(ys, g, w.to(g.device), a.to(g.device), b.to(g.device), mu)
        residual = (g * rc.out[n].double()).sum(1)
        out[n] = BlockDecomposition(n, parts.cpu(), bias.cpu(), residual.cpu(), mu is not None)
    cams = {t: fn(tg.activations[t].float(), tg.gradients[t].float()).cpu() for t in taps}
    return Decomposition(out, cams, tg.logits.float().cpu(), tg.targets.cpu())
