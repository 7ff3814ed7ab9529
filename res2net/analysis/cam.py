"""Class activation maps at every tap of a model from one forward and one backward.

Each method is a small pure function ``(activations, gradients) -> map`` in one table (``CAM_METHODS``);
capture, targets and validation live once in ``tap_gradients``. Gradients are total gradients with respect
to the tap tensors (a branch's path into the later branches counts), taken with ``torch.autograd.grad`` so
no parameter ``.grad`` (state shared between threads) is touched. Maps stay raw; normalise only for display.
Where a map lies on the input or the photo is geometry: ``res2net.geometry.registration``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from res2net.geometry.registration import size_hw
from res2net.models.taps import TapCapture, check_images, eval_mode, resolve_taps

__all__ = [
    "CAM_METHODS", "METHODS", "TapGradients", "tap_gradients", "compute_cams", "cam_from", "resolve_targets",
    "upsample", "normalize", "normalize_shared",
]

CamFn = Callable[[Tensor, Tensor], Tensor]
Maps = Tensor | Mapping[str, Tensor]


def _weighted(activations: Tensor, weights: Tensor) -> Tensor:
    """relu(sum_k w_k A_k) for channel weights (N, C)."""
    return torch.relu(torch.einsum("nc,nchw->nhw", weights, activations))


def gradcam(a: Tensor, g: Tensor) -> Tensor:
    """Grad-CAM (Selvaraju et al.): channel weights = spatial mean of the gradient."""
    return _weighted(a, g.mean((2, 3)))


def gradcam_pp(a: Tensor, g: Tensor) -> Tensor:
    """Grad-CAM++ (Chattopadhyay et al., eq. 19), with the grad-cam package's eps and zero-gradient rule."""
    g2 = g * g
    aij = g2 / (2 * g2 + a.sum((2, 3), keepdim=True) * g2 * g + 1e-6)
    aij = torch.where(g != 0, aij, torch.zeros_like(aij))
    return _weighted(a, (torch.relu(g) * aij).sum((2, 3)))


def xgradcam(a: Tensor, g: Tensor) -> Tensor:
    """XGrad-CAM (Fu et al.): gradients weighted by the normalised activations."""
    return _weighted(a, (g * a).sum((2, 3)) / (a.sum((2, 3)) + 1e-7))


def hirescam(a: Tensor, g: Tensor) -> Tensor:
    """HiResCAM (Draelos & Carin): element-wise gradient times activation, summed over channels."""
    return torch.relu((g * a).sum(1))


def layercam(a: Tensor, g: Tensor) -> Tensor:
    """LayerCAM (Jiang et al.): positive gradients as per-location weights."""
    return torch.relu((torch.relu(g) * a).sum(1))


def gradcam_elementwise(a: Tensor, g: Tensor) -> Tensor:
    """Element-wise Grad-CAM: relu of gradient times activation before the channel sum."""
    return torch.relu(g * a).sum(1)


CAM_METHODS: dict[str, CamFn] = {
    "gradcam": gradcam,
    "gradcam++": gradcam_pp,
    "hirescam": hirescam,
    "xgradcam": xgradcam,
    "layercam": layercam,
    "gradcam-elementwise": gradcam_elementwise,
}
METHODS: tuple[str, ...] = tuple(CAM_METHODS)


def _method(method: str) -> CamFn:
    if method not in CAM_METHODS:
        raise ValueError(f"unknown CAM method {method!r}; choose one of {', '.join(METHODS)}")
    return CAM_METHODS[method]


def resolve_targets(targets: int | Sequence[int] | Tensor | None, logits: Tensor) -> Tensor:
    """Target class per image: None = top-1, an int for all, or one per image; range-checked."""
    n, k = logits.shape
    if targets is None:
        return logits.detach().argmax(1)
    if isinstance(targets, bool):
        raise TypeError("targets must be None, an int class index or one int per image, not a bool")
    if isinstance(targets, Integral):
        t = torch.full((n,), int(targets), dtype=torch.long)
    else:
        t = torch.as_tensor(targets)
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"targets must be integer class indices, got dtype {t.dtype}")
        t = t.long().expand(n) if t.ndim == 0 else t.long()  # a 0-d tensor is one class for all images
        if t.ndim != 1 or t.numel() != n:
            raise ValueError(f"targets must give one class per image: expected {n}, got shape {tuple(t.shape)}")
    bad = t[(t < 0) | (t >= k)]
    if bad.numel():
        raise ValueError(f"target class {int(bad[0])} out of range: the model has {k} classes (valid 0..{k - 1})")
    return t.to(logits.device)


@dataclass
class TapGradients:
    """Activations and total gradients of the target scores at each tap (detached), with logits and targets."""

    activations: dict[str, Tensor]
    gradients: dict[str, Tensor]
    logits: Tensor
    targets: Tensor


def tap_gradients(
    model: nn.Module,
    images: Tensor,
    targets: int | Sequence[int] | Tensor | None = None,
    taps: str | Iterable[str] | None = None,
) -> TapGradients:
    """One forward and one backward: d(sum_n logit[n, target_n]) / d(tap tensor) for every requested tap."""
    names = resolve_taps(model, taps)
    x = check_images(model, images)
    with eval_mode(model), torch.enable_grad():
        # Input needs grad so a graph exists even when every weight is frozen; the backward still
        # stops at the earliest tap because only the taps are asked for.
        x = x.detach().requires_grad_(True)
        with TapCapture(model, names) as cap:
            logits = cap.run(x)
        missing = [n for n in names if n not in cap.activations]
        if missing:
            raise RuntimeError(f"the forward did not reach tap(s) {', '.join(missing)}")
        if not isinstance(logits, Tensor) or logits.ndim != 2:
            got = getattr(logits, "shape", type(logits).__name__)
            raise RuntimeError(f"the model must return logits of shape (N, classes), got {got}")
        t = resolve_targets(targets, logits)
        score = logits.gather(1, t[:, None]).sum()
        acts = [cap.activations[n] for n in names]
        grads = torch.autograd.grad(score, acts, allow_unused=True)
    grads = [torch.zeros_like(a) if g is None else g for a, g in zip(acts, grads, strict=True)]
    return TapGradients(
        activations={n: a.detach() for n, a in zip(names, acts, strict=True)},
        gradients={n: g.detach() for n, g in zip(names, grads, strict=True)},
        logits=logits.detach(),
        targets=t,
    )


def cam_from(activations: Tensor, gradients: Tensor, method: str = "gradcam") -> Tensor:
    """Apply one CAM method to one tap's activations and gradients (N, C, h, w) → (N, h, w) float32."""
    return _method(method)(activations.float(), gradients.float())


def compute_cams(
    model: nn.Module,
    images: Tensor,
    targets: int | Sequence[int] | Tensor | None = None,
    taps: str | Iterable[str] | None = None,
    method: str = "gradcam",
    *,
    return_logits: bool = False,
) -> dict[str, Tensor] | tuple[dict[str, Tensor], Tensor]:
    """Raw (N, h, w) CAMs at each tap's resolution (float32, CPU), all taps from one forward and one backward.

    ``targets``: None = top-1 class per image, an int, or one class per image. The model runs in eval mode
    for the call (its previous mode is restored). With ``return_logits`` also returns the (N, classes) logits.
    """
    fn = _method(method)
    tg = tap_gradients(model, images, targets, taps)
    cams = {
        n: fn(tg.activations[n].float(), tg.gradients[n].float()).cpu() for n in tg.activations
    }
    if return_logits:
        return cams, tg.logits.float().cpu()
    return cams


def _upsample_one(m: Tensor, size: tuple[int, int]) -> Tensor:
    if m.ndim not in (2, 3):
        raise ValueError(f"a map must have shape (h, w) or (N, h, w), got {tuple(m.shape)}")
    x = m.float()[None] if m.ndim == 2 else m.float()
    out = F.interpolate(x[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    return out[0] if m.ndim == 2 else out


def upsample(maps: Maps, size: int | Sequence[int]) -> Maps:
    """Bilinear resize (half-pixel centres, as cv2 and the grad-cam package) of a map, a batch or a dict of them.

    Not geometric: a stride-S tap's cell i sees the input centred at S*i, not at S*i + (S-1)/2. To place a map
    on the input or the photo use ``res2net.geometry.registration.register`` / ``register_to_photo``.
    """
    hw = size_hw(size)
    if isinstance(maps, Mapping):
        return {k: _upsample_one(v, hw) for k, v in maps.items()}
    return _upsample_one(maps, hw)


def normalize(maps: Maps, mode: str = "per_map") -> Maps:
    """Scale non-negative maps to [0, 1]: ``per_map`` by each (h, w) map's own max, ``shared`` by one max over all.

    ``shared`` over a dict uses one scale across all its taps (and models, if the dict mixes them), so
    magnitudes stay comparable. All-zero maps stay zero.
    """
    if mode not in ("per_map", "shared"):
        raise ValueError(f"mode must be 'per_map' or 'shared', got {mode!r}")
    items = dict(maps) if isinstance(maps, Mapping) else {"": maps}
    for k, v in items.items():
        if not isinstance(v, Tensor) or v.ndim not in (2, 3):
            raise ValueError(f"map {k!r} must be a tensor of shape (h, w) or (N, h, w)")
    if mode == "shared":
        scale = max((float(v.abs().max()) for v in items.values() if v.numel()), default=0.0)
        out = {k: v.float() / scale if scale > 0 else v.float().clone() for k, v in items.items()}
    else:
        out = {}
        for k, v in items.items():
            peak = v.float().abs().amax(dim=(-2, -1), keepdim=True)
            out[k] = v.float() / torch.where(peak > 0, peak, torch.ones_like(peak))
    return out if isinstance(maps, Mapping) else out[""]


def normalize_shared(maps: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """One colour scale for every map in ``maps`` (e.g. all branches of a block, or one tap of several models)."""
    return normalize(maps, "shared")  # type: ignore[return-value]
