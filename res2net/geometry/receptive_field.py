"""Theoretical receptive fields of taps from the op graph the model actually runs.

One small forward under a thread-local ``TorchFunctionMode`` carries (size, jump, start) per axis through every
op: convolutions and pools grow it, everything else (BN, ReLU, add, cat, split) takes the max over its inputs, so a
block output's RF is the max over its paths, shortcut included. The result is cached once per model object (the op
graph is fixed); ``start + jump * i`` is where cell i of a tap sees the input (``RFInfo.centre``).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from numbers import Integral

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from res2net.models.taps import TapCapture, eval_mode, model_device, resolve_taps
from res2net.models.zoo import spec_of

__all__ = ["RFInfo", "RF_RULES", "tap_rf_info", "theoretical_rf", "tap_stride"]


@dataclass(frozen=True)
class RFInfo:
    """Receptive field of one tensor's units, per axis (height, width), in input pixels.

    ``size``: RF side; ``jump``: input pixels between neighbouring units (the stride); ``start``: input
    coordinate of the centre of unit 0 (pixel centres at integers).
    """

    size: tuple[float, float]
    jump: tuple[float, float]
    start: tuple[float, float]

    def centre(self, i: int, j: int) -> tuple[float, float]:
        """Input coordinates (y, x) of the centre of unit (i, j)."""
        return self.start[0] + i * self.jump[0], self.start[1] + j * self.jump[1]


def _pair(v: object) -> tuple[int, int]:
    if isinstance(v, Integral):
        return int(v), int(v)
    t = tuple(int(a) for a in v)  # type: ignore[union-attr]
    return (t[0], t[0]) if len(t) == 1 else (t[0], t[1])


def _window(rf: RFInfo, kernel: object, stride: object, padding: object, dilation: object = 1) -> RFInfo:
    """A sliding window (conv or pool) of ``kernel`` taps: RF grows by (k_eff - 1) * jump."""
    k, s, d = _pair(kernel), _pair(stride), _pair(dilation)
    keff = tuple(di * (ki - 1) + 1 for ki, di in zip(k, d, strict=True))
    if isinstance(padding, str):  # 'valid', or 'same' (stride 1): PyTorch pads an even window's extra pixel after
        p = (0, 0) if padding == "valid" else tuple((ke - 1) // 2 for ke in keff)
    else:
        p = _pair(padding)
    return RFInfo(
        size=tuple(rf.size[a] + (keff[a] - 1) * rf.jump[a] for a in range(2)),
        jump=tuple(rf.jump[a] * s[a] for a in range(2)),
        start=tuple(rf.start[a] + ((keff[a] - 1) / 2 - p[a]) * rf.jump[a] for a in range(2)),
    )


def _arg(args: tuple, kwargs: dict, i: int, name: str, default: object) -> object:
    return args[i] if len(args) > i else kwargs.get(name, default)


def _conv_rule(rf: RFInfo, args: tuple, kwargs: dict) -> RFInfo:
    weight = _arg(args, kwargs, 1, "weight", None)
    return _window(rf, tuple(weight.shape[-2:]), _arg(args, kwargs, 3, "stride", 1),
                   _arg(args, kwargs, 4, "padding", 0), _arg(args, kwargs, 5, "dilation", 1))


def _max_pool_rule(rf: RFInfo, args: tuple, kwargs: dict) -> RFInfo:
    k = _arg(args, kwargs, 1, "kernel_size", None)
    s = _arg(args, kwargs, 2, "stride", None) or k
    return _window(rf, k, s, _arg(args, kwargs, 3, "padding", 0), _arg(args, kwargs, 4, "dilation", 1))


def _avg_pool_rule(rf: RFInfo, args: tuple, kwargs: dict) -> RFInfo:
    k = _arg(args, kwargs, 1, "kernel_size", None)
    s = _arg(args, kwargs, 2, "stride", None) or k
    return _window(rf, k, s, _arg(args, kwargs, 3, "padding", 0))


def _pad_rule(rf: RFInfo, args: tuple, kwargs: dict) -> RFInfo:
    pad = list(_arg(args, kwargs, 1, "pad", ())) + [0, 0, 0, 0]
    left, top = pad[0], pad[2]  # F.pad lists the last dimension first
    return RFInfo(rf.size, rf.jump, (rf.start[0] - top * rf.jump[0], rf.start[1] - left * rf.jump[1]))


# How each spatial op changes the RF; every other op keeps the spatial grid and takes the max over its inputs.
RF_RULES: dict[Callable, Callable[[RFInfo, tuple, dict], RFInfo]] = {
    F.conv2d: _conv_rule,
    torch.conv2d: _conv_rule,
    F.max_pool2d: _max_pool_rule,
    torch.max_pool2d: _max_pool_rule,
    F.max_pool2d_with_indices: _max_pool_rule,
    F.avg_pool2d: _avg_pool_rule,
    F.pad: _pad_rule,
}


class _Unknown:
    """Marks a tensor whose RF passed through an op with no rule that changed the spatial grid."""

    def __init__(self, op: str) -> None:
        self.op = op


def _tensors(obj: object) -> Iterable[Tensor]:
    if isinstance(obj, Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _tensors(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _tensors(o)


class _RFMode(TorchFunctionMode):
    """Carries an RFInfo alongside each tensor through the ops of one forward (thread-local)."""

    def __init__(self) -> None:
        super().__init__()
        self.info: dict[int, tuple[Tensor, RFInfo | _Unknown]] = {}

    def get(self, t: Tensor) -> RFInfo | _Unknown | None:
        hit = self.info.get(id(t))
        return hit[1] if hit is not None and hit[0] is t else None

    def set(self, t: Tensor, rf: RFInfo | _Unknown) -> None:
        self.info[id(t)] = (t, rf)  # holding the tensor keeps its id from being reused

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        ins = [(t, r) for t in _tensors((args, kwargs)) if (r := self.get(t)) is not None]
        if not ins:
            return out
        outs = list(_tensors(out))
        name = getattr(func, "__name__", repr(func))
        unknown = next((r for _, r in ins if isinstance(r, _Unknown)), None)
        if unknown is not None:
            new: RFInfo | _Unknown = unknown
        elif func in RF_RULES:
            new = RF_RULES[func](ins[0][1], args, kwargs)
        else:
            grid = ins[0][0].shape[-2:] if ins[0][0].ndim == 4 else None
            same = grid is not None and all(o.ndim == 4 and o.shape[-2:] == grid for o in outs)
            infos = [r for _, r in ins]
            new = RFInfo(
                size=tuple(max(r.size[a] for r in infos) for a in range(2)),
                jump=infos[0].jump,
                start=infos[0].start,
            ) if same else _Unknown(name)
        for o in outs:
            self.set(o, new)
        return out


_rf_lock = threading.Lock()
_rf_cache: weakref.WeakKeyDictionary[nn.Module, dict[str, RFInfo | _Unknown]] = weakref.WeakKeyDictionary()


def _probe(model: nn.Module, names: list[str], side: int) -> dict[str, RFInfo | _Unknown]:
    p = next(model.parameters(), None)
    x = torch.zeros(1, 3, side, side, device=model_device(model), dtype=p.dtype if p is not None else torch.float32)
    mode = _RFMode()
    with eval_mode(model), torch.no_grad(), TapCapture(model, names, stop_at_last=True) as cap:
        mode.set(x, RFInfo((1.0, 1.0), (1.0, 1.0), (0.0, 0.0)))
        with mode:
            cap.run(x)
    return {n: mode.get(cap.activations[n]) or _Unknown("a path the probe did not see") for n in names}


def _all_tap_rfs(model: nn.Module) -> dict[str, RFInfo | _Unknown]:
    with _rf_lock:
        cached = _rf_cache.get(model)
    if cached is not None:
        return cached
    names = resolve_taps(model, None)
    try:  # a small probe is enough for the geometry; fall back to the model's own input size
        result = _probe(model, names, 64)
    except RuntimeError:
        spec = spec_of(model)
        result = _probe(model, names, spec.input_size if spec is not None else 224)
    with _rf_lock:
        _rf_cache[model] = result
    return result


def tap_rf_info(model: nn.Module, tap: str) -> RFInfo:
    """RF size, stride and unit-0 centre of a tap, propagated through the ops the model actually runs."""
    rfs = _all_tap_rfs(model)
    rf = rfs.get(tap) if isinstance(tap, str) else None
    if rf is None:
        (name,) = resolve_taps(model, [tap])  # an unknown tap: its error lists the valid ones
        rf = rfs[name]
    if isinstance(rf, _Unknown):
        raise NotImplementedError(f"cannot compute the receptive field of {tap!r}: op {rf.op!r} changes the "
                                  f"spatial grid and has no rule in res2net.geometry.receptive_field.RF_RULES")
    return rf


def theoretical_rf(model: nn.Module, tap: str) -> int:
    """Theoretical receptive field of one unit of ``tap`` in input pixels (the larger side if not square)."""
    return int(round(max(tap_rf_info(model, tap).size)))


def tap_stride(model: nn.Module, tap: str) -> int:
    """Input pixels between neighbouring units of ``tap`` (the product of the strides on its path)."""
    return int(round(max(tap_rf_info(model, tap).jump)))
