"""Is a map faithful to the model? Deletion and insertion curves (Petsiuk et al., "RISE", BMVC 2018).

Deletion: remove the input pixels the map ranks highest first (replace them by a baseline) and watch the target's
probability fall; a faithful map makes it fall fast (low area under the curve). Insertion: start from the baseline
and put the top pixels back; a faithful map makes it rise fast (high area). A random pixel order, averaged over a
few orders, is the reference every number is read against. All steps of a curve go through the model as one batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class Faithfulness:
    """Deletion and insertion curves of one map (fraction of pixels changed → target probability) and their areas,
    beside the same for random pixel orders."""

    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    deletion_auc: float
    insertion_auc: float
    random_deletion_auc: float
    random_insertion_auc: float
    random_deletion: np.ndarray | None = None  # (orders, steps + 1): each random order's curve (the band)
    random_insertion: np.ndarray | None = None


def _auc(fractions: np.ndarray, values: np.ndarray) -> float:
    return float(np.sum((values[1:] + values[:-1]) / 2 * np.diff(fractions)))


def _curves(model: nn.Module, x: torch.Tensor, baseline: torch.Tensor, order: np.ndarray, target: int,
            fractions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Target probabilities as the top ``order`` pixels are deleted (from ``x``) and inserted (into ``baseline``)."""
    _, _, h, w = x.shape
    n = h * w
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    masks = torch.stack([torch.from_numpy((rank < round(f * n)).reshape(h, w)) for f in fractions])
    masks = masks[:, None].to(x.device, x.dtype)  # (steps, 1, h, w): 1 where the pixel has been changed
    deleted = x * (1 - masks) + baseline * masks
    inserted = baseline * (1 - masks) + x * masks
    with torch.no_grad():
        probs = torch.softmax(model(torch.cat([deleted, inserted])).float(), dim=1)[:, target].cpu().numpy()
    return probs[: len(fractions)], probs[len(fractions):]


def deletion_insertion(model: nn.Module, x: torch.Tensor, saliency: np.ndarray, target: int, *, steps: int = 10,
                       baseline: torch.Tensor | None = None, random_orders: int = 3, seed: int = 0) -> Faithfulness:
    """Curves of the (H, W) ``saliency`` (registered on the (1, 3, H, W) model input ``x``) for class ``target``.

    ``baseline``: what a deleted pixel becomes; default zeros, i.e. the dataset's mean colour after normalisation.
    Ties in the map are broken by pixel index, so a flat map behaves like one fixed order.
    """
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"expected one image of shape (1, 3, H, W), got {tuple(x.shape)}")
    s = np.asarray(saliency, dtype=np.float64)
    if s.shape != tuple(x.shape[-2:]):
        raise ValueError(f"the map is {s.shape} but the input is {tuple(x.shape[-2:])}: register it on the input first")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    base = torch.zeros_like(x) if baseline is None else baseline.to(x.device, x.dtype).expand_as(x)
    fractions = np.linspace(0.0, 1.0, steps + 1)
    flat = np.nan_to_num(s, nan=-np.inf).ravel()
    order = np.lexsort((np.arange(flat.size), -flat))  # highest first, ties by index
    deletion, insertion = _curves(model, x, base, order, target, fractions)
    rng = np.random.default_rng(seed)
    rand_del, rand_ins, curves_del, curves_ins = [], [], [], []
    for _ in range(random_orders):
        d, i = _curves(model, x, base, rng.permutation(flat.size), target, fractions)
        rand_del.append(_auc(fractions, d))
        rand_ins.append(_auc(fractions, i))
        curves_del.append(d)
        curves_ins.append(i)
    return Faithfulness(fractions, deletion, insertion, _auc(fractions, deletion), _auc(fractions, insertion),
                        float(np.mean(rand_del)) if rand_del else float("nan"),
                        float(np.mean(rand_ins)) if rand_ins else float("nan"),
                        np.reshape(curves_del, (-1, fractions.size)), np.reshape(curves_ins, (-1, fractions.size)))
