"""Named taps: listing them, finding them, and capturing activations at them safely across threads.

A tap is a parameter-free ``nn.Identity`` inside a block: ``<block>.branch{i}`` for branch outputs and
``<block>`` (its ``output`` module) for the block output. Hooks registered here only record calls made
from the thread that registered them, and are always removed on exit, also when the forward raises.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from res2net.models.blocks import TappedBlock

__all__ = [
    "TapError", "BlockInfo", "iter_blocks", "block_infos", "tap_names", "get_tap", "tap_block_name",
    "branch_tap_names", "resolve_taps", "TapCapture", "eval_mode", "model_device", "check_images",
]


class TapError(KeyError):
    """A tap name that the model does not have; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class BlockInfo:
    """One tapped block: its name (module path), 'stage' or 'normal', and its branch count."""

    name: str
    stype: str
    num_branches: int
    kind: str  # 'res2net' or 'resnet'

    @property
    def branch_taps(self) -> list[str]:
        return [f"{self.name}.branch{i}" for i in range(self.num_branches)]

    def branch_label(self, i: int) -> str:
        """'branch i', marking the last branch of a multi-branch block as '(pool)' or '(identity)'."""
        last = i == self.num_branches - 1 and self.num_branches > 1
        return f"branch {i}" + (" (pool)" if last and self.stype == "stage" else " (identity)" if last else "")


def iter_blocks(model: nn.Module) -> Iterator[tuple[str, TappedBlock]]:
    """(module path, block) for every tapped block, in forward order."""
    for name, module in model.named_modules():
        if isinstance(module, TappedBlock):
            yield name, module


def block_infos(model: nn.Module) -> list[BlockInfo]:
    """Name, stage/normal type and branch count of every tapped block, in forward order."""
    from res2net.models.blocks import Bottle2neck

    return [
        BlockInfo(n, b.stype, b.num_branches, "res2net" if isinstance(b, Bottle2neck) else "resnet")
        for n, b in iter_blocks(model)
    ]


def tap_names(model: nn.Module) -> list[str]:
    """All tap names in forward order: each block's branches (0..s-1), then the block output."""
    names: list[str] = []
    for info in block_infos(model):
        names.extend(info.branch_taps)
        names.append(info.name)
    return names


def _tap_index(model: nn.Module) -> dict[str, nn.Module]:
    index: dict[str, nn.Module] = {}
    for name, block in iter_blocks(model):
        for i in range(block.num_branches):
            index[f"{name}.branch{i}"] = block.branch_tap(i)
        index[name] = block.output
    return index


def _unknown(name: object, valid: list[str]) -> TapError:
    shown = ", ".join(valid[:12]) + (f", ... ({len(valid)} in all)" if len(valid) > 12 else "")
    return TapError(f"unknown tap {name!r}; valid taps: {shown}")


def get_tap(model: nn.Module, name: str) -> nn.Module:
    """The ``nn.Identity`` module of tap ``name``; an unknown name lists the valid ones."""
    index = _tap_index(model)
    if name not in index:
        raise _unknown(name, list(index))
    return index[name]


def tap_block_name(tap: str) -> str:
    """The block a tap belongs to: ``layer3.2.branch1`` → ``layer3.2``; a block tap is its own block."""
    head, _, last = tap.rpartition(".")
    return head if last.startswith("branch") and last[6:].isdigit() else tap


def branch_tap_names(model: nn.Module, block: str) -> list[str]:
    """The branch taps of one block, branch 0 first."""
    for info in block_infos(model):
        if info.name == block:
            return info.branch_taps
    raise _unknown(block, [i.name for i in block_infos(model)])


def resolve_taps(model: nn.Module, taps: str | Iterable[str] | None) -> list[str]:
    """Validate tap names and return them in forward order (None = all taps)."""
    order = tap_names(model)
    if taps is None:
        return order
    wanted = [taps] if isinstance(taps, str) else list(taps)
    if not wanted:
        raise ValueError("no taps requested")
    known = set(order)
    for t in wanted:
        if not isinstance(t, str) or t not in known:
            raise _unknown(t, order)
    wanted_set = set(wanted)
    return [t for t in order if t in wanted_set]


class _StopForward(Exception):
    """Raised inside the forward once the deepest requested tap has been reached."""


class TapCapture:
    """Context manager recording the output tensor of each requested tap during a forward.

    ``stop_at_last=True`` ends the forward right after the deepest requested tap (the call then
    returns None). Only forwards run by the thread that entered the context are recorded.
    """

    def __init__(self, model: nn.Module, taps: Iterable[str], stop_at_last: bool = False) -> None:
        self.model = model
        self.taps = resolve_taps(model, list(taps))
        self.stop_at_last = stop_at_last
        self.activations: dict[str, torch.Tensor] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._owner: int | None = None

    def __enter__(self) -> TapCapture:
        self._owner = threading.get_ident()
        index = _tap_index(self.model)
        last = self.taps[-1]
        try:
            for name in self.taps:
                self._handles.append(index[name].register_forward_hook(self._hook(name, name == last)))
        except BaseException:
            self._remove()
            raise
        return self

    def _hook(self, name: str, is_last: bool):  # noqa: ANN202
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            if threading.get_ident() != self._owner:
                return
            self.activations[name] = output
            if is_last and self.stop_at_last and len(self.activations) == len(self.taps):
                raise _StopForward

        return hook

    def run(self, x: torch.Tensor) -> torch.Tensor | None:
        """Forward ``x`` through the model; None when the forward was stopped at the last tap."""
        try:
            return self.model(x)
        except _StopForward:
            return None

    def _remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __exit__(self, *exc: object) -> None:
        self._remove()


_mode_lock = threading.Lock()
_mode_state: weakref.WeakKeyDictionary[nn.Module, list] = weakref.WeakKeyDictionary()


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run in eval mode and restore the previous mode after the last concurrent user leaves."""
    with _mode_lock:
        state = _mode_state.get(model)
        if state is None:
            state = [0, model.training]
            _mode_state[model] = state
            model.eval()
        state[0] += 1
    try:
        yield model
    finally:
        with _mode_lock:
            state[0] -= 1
            if state[0] == 0:
                del _mode_state[model]
                model.train(state[1])


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a model that has neither)."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def _in_channels(model: nn.Module) -> int | None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return None


def check_images(model: nn.Module, images: object) -> torch.Tensor:
    """Validate an image batch for ``model`` (4-D float tensor, right channel count, finite values).

    Returns it on the model's device and in its dtype; raises TypeError/ValueError that say what is wrong.
    """
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch.Tensor of shape (N, C, H, W), got {type(images).__name__}")
    if images.ndim != 4:
        hint = " (add a batch dimension with images[None])" if images.ndim == 3 else ""
        raise ValueError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}{hint}")
    if not images.is_floating_point():
        raise TypeError(f"images must be a floating-point tensor (normalised pixels), got dtype {images.dtype}")
    if images.shape[0] == 0 or images.shape[2] == 0 or images.shape[3] == 0:
        raise ValueError(f"images must not be empty, got shape {tuple(images.shape)}")
    channels = _in_channels(model)
    if channels is not None and images.shape[1] != channels:
        raise ValueError(
            f"the model expects {channels} input channels, got {images.shape[1]} (shape {tuple(images.shape)})"
        )
    if not bool(torch.isfinite(images).all()):
        bad = int((~torch.isfinite(images)).sum())
        raise ValueError(f"images contain {bad} NaN or infinite values")
    dtype = next((t.dtype for t in model.parameters() if t.is_floating_point()), images.dtype)
    return images.to(device=model_device(model), dtype=dtype)
