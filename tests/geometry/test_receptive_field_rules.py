"""Rules of the theoretical receptive field (``res2net.geometry.receptive_field``), on small hand-computed models.

Per axis (y, x), a tensor's units carry (size, jump, start): RF side, input pixels between neighbouring units, and
the input coordinate of unit 0's centre (pixel centres at integers). The rules:

- The input's pixels are size 1, jump 1, start 0 on both axes.
- A sliding window (conv, max pool, average pool) of kernel k, dilation d (effective window
  k_eff = d (k - 1) + 1), stride s and leading (top/left) padding p: size += (k_eff - 1) jump, jump *= s,
  start += ((k_eff - 1) / 2 - p) jump. Each axis uses its own k, s, p, d; an int, or a 1-tuple, is both axes'.
- padding='valid' is p = 0; padding='same' is PyTorch's leading pad floor((k_eff - 1) / 2): an even window puts
  its extra padding after, so its unit 0 is centred half a pixel in.
- Defaults are PyTorch's: a conv has stride 1, padding 0, dilation 1; a pool's stride is its kernel (also when
  given as None or []), padding 0, dilation 1; an average pool has no dilation; ``max_pool2d`` with indices is a
  max pool. Each rule reads its arguments by position or by PyTorch's keyword (weight, stride, padding,
  dilation, kernel_size, pad).
- ``F.pad`` moves the start back by the top (y) and left (x) pads times the jump (a negative pad crops: forward);
  size and jump stay. A pad of the last dimension only leaves y alone.
- Any other op whose 4-D outputs all keep the (H, W) grid of its first tracked input takes, per axis, the largest
  size over its tracked inputs (a block output: the max over its paths, shortcut included) and the first tracked
  input's jump and start. Tensors inside lists, tuples and keyword arguments are inputs too.
- An op with no rule that changes the grid (interpolate, a global mean, an output that is not 4-D) makes the RF
  unknown; every op downstream of it stays unknown and names that first op, also when its other inputs are
  known. Asking for such a tap raises NotImplementedError naming the tap, the op and RF_RULES; a tap whose
  output does not come from the input at all is "a path the probe did not see".
- The probe is one forward of one zero image of 3 channels, 64 x 64, in the model's dtype, in eval mode, without
  gradients, stopped at the deepest tap; the model's training mode is restored. A RuntimeError there (a model
  that needs a larger input) repeats the probe at the model spec's input size, 224 without a spec.
- Results are cached per model object: later queries (any tap, any of the three functions) do not run the model
  again; another object, even of the same structure, is probed for itself.
- An unknown tap, or a tap that is not a name, raises the TapError that lists the valid taps.
- ``theoretical_rf`` is the larger side of the size, ``tap_stride`` the larger jump (ints);
  ``RFInfo.centre(i, j)`` is start + jump * (i, j).
"""

from __future__ import annotations

import dataclasses

import hypothesis_profiles  # noqa: F401  (example counts: few in CI, more in the mutation run)
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st
from torch import nn

import res2net
from res2net.geometry.receptive_field import RF_RULES, RFInfo, tap_rf_info, tap_stride, theoretical_rf
from res2net.models.taps import TapError

from helpers import OpBlock

pytestmark = pytest.mark.usefixtures("one_thread")


class _Net(nn.Module):
    """Blocks in sequence, taps ``b.0``, ``b.1``, ...; ``head`` runs after the last one."""

    def __init__(self, *fns, head=None) -> None:  # noqa: ANN001
        super().__init__()
        self.b = nn.Sequential(*(OpBlock(f) for f in fns))
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.b(x)
        return self.head(x) if self.head is not None else x


def _rf(*fns) -> RFInfo:  # noqa: ANN002
    """RFInfo of the last of ``fns`` applied in sequence to the input (a fresh model, so a fresh probe)."""
    return tap_rf_info(_Net(*fns), f"b.{len(fns) - 1}")


def _conv(k=3, s=1, p=0, d=1) -> nn.Conv2d:  # noqa: ANN001
    return nn.Conv2d(3, 3, k, stride=s, padding=p, dilation=d, bias=False)


def _same(rf: RFInfo, size, jump, start) -> None:  # noqa: ANN001
    pair = lambda v: (float(v), float(v)) if isinstance(v, (int, float)) else tuple(float(a) for a in v)  # noqa: E731
    assert (rf.size, rf.jump, rf.start) == (pair(size), pair(jump), pair(start))


# ----------------------------------------------------------------------------------------------- windows
def test_the_input_is_pixels_of_size_one_at_integer_centres() -> None:
    _same(_rf(nn.Identity()), 1, 1, 0)
    _same(_rf(nn.ReLU()), 1, 1, 0)


@pytest.mark.parametrize(("layers", "size", "jump", "start"), [
    ([_conv(3, 2, 1)], 3, 2, 0),                                # (3-1)/2 - 1 = 0
    ([_conv(3, 2, 0)], 3, 2, 1),                                # unpadded: unit 0 centred on pixel 1
    ([_conv(3, 2, 0), nn.MaxPool2d(3, 2, 0)], 7, 4, 3),         # 3 + 2*2; 1 + 1*2
    ([_conv(3, 2, 1), nn.MaxPool2d(3, 2, 1)], 7, 4, 0),         # the ResNet stem's pattern
    ([_conv(3, 2, 0), nn.AvgPool2d(3, 2, 1)], 7, 4, 1),         # 1 + (1 - 1)*2
    ([_conv(3, 2, 0), _conv(1, 1, 0)], 3, 2, 1),                # a 1x1 conv changes nothing
    ([_conv(3, 1, 0, d=2)], 5, 1, 2),                           # dilation 2: a 5-wide window
    ([_conv(3, 2, 1), _conv(3, 1, 0, d=2)], 3 + 4 * 2, 2, 4),   # the dilated window counts in jumps of 2
    ([_conv(5, 3, 0), _conv(3, 2, 2)], 5 + 2 * 3, 6, 2 + (1 - 2) * 3),
    ([nn.MaxPool2d(2)], 2, 2, 0.5),                             # stride = kernel
    ([nn.AvgPool2d(2)], 2, 2, 0.5),
    ([nn.MaxPool2d(3, 1, 1, dilation=2)], 5, 1, 1),             # max pools dilate: (5-1)/2 - 1
])
def test_window_rule_by_hand(layers, size, jump, start) -> None:  # noqa: ANN001
    _same(_rf(nn.Sequential(*layers)), size, jump, start)


def test_each_axis_has_its_own_kernel_stride_padding_and_dilation() -> None:
    conv = nn.Conv2d(3, 3, (3, 5), stride=(2, 1), padding=(0, 1), dilation=(1, 2), bias=False)
    # y: k_eff 3 → size 3, jump 2, start 1; x: k_eff 2*4+1 = 9 → size 9, jump 1, start 4 - 1 = 3
    rf = _rf(conv)
    _same(rf, (3, 9), (2, 1), (1, 3))
    assert theoretical_rf(_Net(conv), "b.0") == 9 and tap_stride(_Net(conv), "b.0") == 2
    assert rf.centre(2, 3) == (1 + 2 * 2, 3 + 3 * 1)
    pool = nn.MaxPool2d((2, 3), stride=(1, 3), padding=(1, 0))  # y: 2, 1, 0.5 - 1; x: 3, 3, 1
    _same(_rf(pool), (2, 3), (1, 3), (-0.5, 1))
    _same(_rf(nn.AvgPool2d((3, 1), stride=(1, 2), padding=(1, 0))), (3, 1), (1, 2), (0, 0))


def test_a_one_element_tuple_is_both_axes() -> None:
    _same(_rf(lambda x: F.max_pool2d(x, (3,), (2,), (1,))), 3, 2, 0)
    w = torch.zeros(3, 3, 3, 3)
    _same(_rf(lambda x: F.conv2d(x, w, None, (2,), (0,), (2,))), 5, 2, 2)


@pytest.mark.parametrize(("k", "d", "size", "start"), [
    (3, 1, 3, 0), (5, 1, 5, 0), (3, 2, 5, 0),   # odd windows: padded (k_eff - 1)/2 on both sides, centred
    (2, 1, 2, 0.5), (4, 1, 4, 0.5),              # even windows: floor((k_eff - 1)/2) before, the rest after
    (2, 3, 4, 0.5), (6, 1, 6, 0.5),
])
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_padding_same_pads_like_pytorch(k: int, d: int, size: int, start: float) -> None:
    _same(_rf(_conv(k, 1, "same", d)), size, 1, start)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_padding_same_centre_is_where_the_gradient_is() -> None:
    """Unit 5 of an even 'same' conv sees pixels 5 and 6 (PyTorch pads the extra pixel after): centre 5.5."""
    conv = _conv(2, 1, "same")
    x = torch.ones(1, 3, 12, 12, requires_grad=True)
    (g,) = torch.autograd.grad(conv(x)[0, 0, 5, 5], x)
    rows = torch.nonzero(g[0].abs().sum((0, 2)))[:, 0].tolist()
    assert rows == [5, 6]
    assert _rf(conv).centre(5, 5) == (5.5, 5.5)


def test_padding_valid_is_no_padding() -> None:
    _same(_rf(_conv(3, 1, "valid")), 3, 1, 1)
    _same(_rf(_conv(3, 1, "valid", 2)), 5, 1, 2)


def test_defaults_are_pytorchs() -> None:
    w = torch.zeros(3, 3, 3, 3)
    _same(_rf(lambda x: F.conv2d(x, w)), 3, 1, 1)                       # stride 1, padding 0, dilation 1
    _same(_rf(lambda x: torch.conv2d(x, w)), 3, 1, 1)
    _same(_rf(lambda x: F.max_pool2d(x, 3)), 3, 3, 1)                   # stride = kernel
    _same(_rf(lambda x: torch.max_pool2d(x, 3)), 3, 3, 1)
    _same(_rf(lambda x: torch.max_pool2d(x, 3, [])), 3, 3, 1)           # an empty stride is the kernel
    _same(_rf(lambda x: F.avg_pool2d(x, 3)), 3, 3, 1)
    _same(_rf(lambda x: F.avg_pool2d(x, 3, None)), 3, 3, 1)
    _same(_rf(lambda x: torch.max_pool2d(x, 3, 2, 1, 2)), 5, 2, 1)      # positional dilation
    _same(_rf(lambda x: F.max_pool2d(x, 3, 1, 0, 2, return_indices=True)[0]), 5, 1, 2)


def test_a_pool_with_indices_has_the_rf_of_the_pool() -> None:
    pool = nn.MaxPool2d(3, 2, 1, return_indices=True)
    _same(_rf(lambda x: pool(x)[0]), 3, 2, 0)
    _same(_rf(lambda x: pool(x)[1].float()), 3, 2, 0)  # the indices sit on the same grid


def test_arguments_by_keyword() -> None:
    w = torch.zeros(3, 3, 3, 3)
    _same(_rf(lambda x: F.conv2d(input=x, weight=w, stride=2, padding=1, dilation=2)), 5, 2, 1)
    _same(_rf(lambda x: F.max_pool2d(x, kernel_size=3, stride=2, padding=1, dilation=2)), 5, 2, 1)


UNIT = RFInfo((1.0, 1.0), (2.0, 2.0), (1.0, 1.0))  # an input to the rules themselves: size 1, jump 2, start 1


@pytest.mark.parametrize(("func", "args", "kwargs", "want"), [
    (F.conv2d, (None,), {"weight": torch.zeros(1, 1, 3, 3), "stride": 3, "padding": 2, "dilation": 2},
     RFInfo((9.0, 9.0), (6.0, 6.0), (1.0, 1.0))),
    (F.conv2d, (None, torch.zeros(1, 1, 3, 1)), {}, RFInfo((5.0, 1.0), (2.0, 2.0), (3.0, 1.0))),
    (torch.max_pool2d, (None,), {"kernel_size": 3, "stride": 3, "padding": 2, "dilation": 2},
     RFInfo((9.0, 9.0), (6.0, 6.0), (1.0, 1.0))),
    (F.max_pool2d_with_indices, (None,), {"kernel_size": 2}, RFInfo((3.0, 3.0), (4.0, 4.0), (2.0, 2.0))),
    (F.max_pool2d, (None, 3), {"stride": None, "padding": 1}, RFInfo((5.0, 5.0), (6.0, 6.0), (1.0, 1.0))),
    (F.avg_pool2d, (None,), {"kernel_size": 3, "stride": 2, "padding": 2}, RFInfo((5.0, 5.0), (4.0, 4.0),
                                                                                (-1.0, -1.0))),
    (F.avg_pool2d, (None, 3, 1, 1, False, True, 2), {}, RFInfo((5.0, 5.0), (2.0, 2.0), (1.0, 1.0))),
    (F.pad, (None,), {"pad": (1, 0, 3, 0)}, RFInfo((1.0, 1.0), (2.0, 2.0), (-5.0, -1.0))),
])
def test_each_rule_reads_its_arguments_by_position_or_keyword(func, args, kwargs, want) -> None:  # noqa: ANN001
    assert RF_RULES[func](UNIT, args, kwargs) == want


def test_rules_cover_the_window_and_pad_ops() -> None:
    assert {F.conv2d, torch.conv2d, F.max_pool2d, torch.max_pool2d, F.max_pool2d_with_indices, F.avg_pool2d,
            F.pad} <= set(RF_RULES)


# ----------------------------------------------------------------------------------------------- padding
def test_pad_moves_the_start_back_by_the_leading_pads() -> None:
    _same(_rf(lambda x: F.pad(x, (2, 0))), 1, 1, (0, -2))              # last dimension (x) only
    _same(_rf(lambda x: F.pad(x, (1, 2, 3, 4))), 1, 1, (-3, -1))       # (left, right, top, bottom)
    _same(_rf(lambda x: F.pad(x, (-1, 0, -2, 0))), 1, 1, (2, 1))       # a crop moves it forward
    _same(_rf(lambda x: F.pad(x, (0, 5, 0, 5), mode="reflect")), 1, 1, 0)  # trailing pads move nothing
    _same(_rf(lambda x: F.pad(x, [])), 1, 1, 0)  # nor does an empty pad
    # after a stride-2 conv (start 1, jump 2) a pad counts in jumps
    _same(_rf(_conv(3, 2, 0), lambda x: F.pad(x, (1, 0, 2, 0))), 3, 2, (1 - 4, 1 - 2))
    # each axis in its own jumps: y in 2s, x in 1s
    _same(_rf(_conv(3, (2, 1), 0), lambda x: F.pad(x, (1, 0, 2, 0))), 3, (2, 1), (1 - 2 * 2, 1 - 1 * 1))


# ----------------------------------------------------------------------------------------- the other ops
def test_ops_that_keep_the_grid_take_the_largest_size_and_the_first_inputs_grid() -> None:
    wide = _conv(5, 1, 2)  # size 5, jump 1, start 0
    # size 3, jump 2, start -32 + 0: padded by 32 then a stride-2 3x3 → 64 x 64 again, on a coarser grid
    coarse = nn.Sequential(nn.ZeroPad2d(32), _conv(3, 2, 1))
    _same(_rf(lambda x: coarse(x) + wide(x)), 5, 2, -32)
    _same(_rf(lambda x: wide(x) + coarse(x)), 5, 1, 0)
    _same(_rf(lambda x: torch.cat([coarse(x), wide(x)], 1)), 5, 2, -32)       # a list of inputs
    _same(_rf(lambda x: torch.cat((x, coarse(x)), 1)), 3, 1, 0)               # a tuple of inputs
    _same(_rf(lambda x: torch.add(x, other=coarse(x))), 3, 1, 0)              # a keyword input
    tall, flat = nn.Conv2d(3, 3, (5, 1), padding=(2, 0)), nn.Conv2d(3, 3, (1, 3), padding=(0, 1))
    _same(_rf(lambda x: tall(x) * flat(x)), (5, 3), 1, 0)                     # the max per axis
    _same(_rf(lambda x: torch.relu(wide(x)).mean(1, keepdim=True)), 5, 1, 0)  # a channel mean keeps the grid
    _same(_rf(lambda x: torch.split(wide(x), 1, 1)[2]), 5, 1, 0)              # every output of a split


def test_a_block_output_is_the_max_over_its_paths_shortcut_included() -> None:
    branch = nn.Sequential(_conv(3, 1, 1), nn.ReLU(), _conv(3, 1, 1))  # 5
    _same(_rf(lambda x: torch.relu(branch(x) + x)), 5, 1, 0)
    _same(_rf(lambda x: torch.relu(x + branch(x))), 5, 1, 0)


@pytest.mark.parametrize(("fn", "op"), [
    (lambda x: F.interpolate(x, scale_factor=2), "interpolate"),
    (lambda x: x.mean((2, 3), keepdim=True), "mean"),                 # 4-D, but a 1 x 1 grid
    (lambda x: x.unsqueeze(2).squeeze(2), "unsqueeze"),               # a 5-D output has no (H, W) grid
    (lambda x: x.flatten(1).reshape(1, 3, 64, 64), "flatten"),
    (lambda x: F.conv2d(F.interpolate(x, size=(32, 32)), torch.zeros(3, 3, 3, 3)), "interpolate"),
    (lambda x: torch.relu(F.interpolate(F.interpolate(x, size=(32, 32)), size=(64, 64)) + x),
     "interpolate"),  # back on the input's grid: still unknown
    (lambda x: x + F.interpolate(F.avg_pool2d(x, 2), scale_factor=2), "interpolate"),  # unknown second input
    (lambda x: torch.zeros(1, 3, 4, 4), "a path the probe did not see"),
])
def test_an_op_without_a_rule_that_changes_the_grid_is_refused_by_name(fn, op: str) -> None:  # noqa: ANN001
    net = _Net(nn.Identity(), fn)
    _same(tap_rf_info(net, "b.0"), 1, 1, 0)  # the taps before it are known
    with pytest.raises(NotImplementedError) as err:
        tap_rf_info(net, "b.1")
    assert str(err.value) == (f"cannot compute the receptive field of 'b.1': op {op!r} changes the spatial grid "
                              "and has no rule in res2net.geometry.receptive_field.RF_RULES")
    for f in (theoretical_rf, tap_stride):
        with pytest.raises(NotImplementedError, match="RF_RULES"):
            f(net, "b.1")


# ----------------------------------------------------------------------------------------------- the probe
class _Recorder(nn.Module):
    """Records how the probe calls it; refuses inputs narrower than ``least``."""

    def __init__(self, least: int = 0) -> None:
        super().__init__()
        self.calls: list[dict] = []
        self.least = least
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append({"shape": tuple(x.shape), "dtype": x.dtype, "zero": bool((x == 0).all()),
                           "training": self.training, "grad": torch.is_grad_enabled()})
        if x.shape[-1] < self.least:
            raise RuntimeError("input too small")
        return x * self.scale


def _never(x: torch.Tensor) -> torch.Tensor:
    raise AssertionError("the probe ran past the deepest tap")


def test_the_probe_is_one_zero_image_in_eval_mode_without_gradients_stopped_at_the_deepest_tap() -> None:
    rec = _Recorder()
    net = _Net(rec, _conv(3, 2, 0), head=_never).train()
    _same(tap_rf_info(net, "b.0"), 1, 1, 0)
    assert rec.calls == [{"shape": (1, 3, 64, 64), "dtype": torch.float32, "zero": True, "training": False,
                          "grad": False}]
    assert net.training and rec.training  # the training mode is restored
    _same(tap_rf_info(net, "b.1"), 3, 2, 1)
    assert len(rec.calls) == 1  # cached


def test_the_probe_runs_in_the_models_dtype() -> None:
    rec = _Recorder()
    net = _Net(rec, _conv(3, 2, 0)).double()
    _same(tap_rf_info(net, "b.1"), 3, 2, 1)
    assert rec.calls[0]["dtype"] == torch.float64
    _same(_rf(nn.MaxPool2d(2)), 2, 2, 0.5)  # a model without parameters: float32


class _Where(nn.Module):
    """Records the device of what it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.device] = []
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.device)
        return x * self.w


def test_the_probe_runs_on_the_models_device() -> None:
    where = _Where()
    net = _Net(where, _conv(3, 2, 0), nn.MaxPool2d(2)).to("meta")  # shapes only: any device but the CPU would do
    _same(tap_rf_info(net, "b.2"), 3 + 1 * 2, 4, 1 + 0.5 * 2)
    assert where.seen == [torch.device("meta")]


def test_a_model_that_needs_a_larger_input_is_probed_at_its_input_size() -> None:
    rec = _Recorder(least=65)
    net = _Net(rec, _conv(5, 2, 0))
    _same(tap_rf_info(net, "b.1"), 5, 2, 2)
    assert [c["shape"] for c in rec.calls] == [(1, 3, 64, 64), (1, 3, 224, 224)]  # no spec: 224
    rec = _Recorder(least=65)
    net = _Net(rec, _conv(5, 2, 0))
    net.spec = dataclasses.replace(res2net.get_spec("tiny_resnet26"), input_size=96)
    _same(tap_rf_info(net, "b.1"), 5, 2, 2)
    assert [c["shape"] for c in rec.calls] == [(1, 3, 64, 64), (1, 3, 96, 96)]
    # a kernel larger than 64 pixels is a RuntimeError of PyTorch's own
    _same(_rf(_conv(100, 1, 0)), 100, 1, 49.5)


def test_results_are_cached_per_model_object() -> None:
    rec = _Recorder()
    net = _Net(rec, _conv(3, 2, 0), _conv(3, 1, 1))
    first = tap_rf_info(net, "b.2")
    assert tap_rf_info(net, "b.2") is first
    assert theoretical_rf(net, "b.1") == 3 and tap_stride(net, "b.2") == 2 and tap_rf_info(net, "b.0").size == (1, 1)
    assert len(rec.calls) == 1
    twin = _Net(rec, _conv(3, 2, 0), _conv(3, 1, 1))  # the same structure, another object
    assert tap_rf_info(twin, "b.2") == first
    assert len(rec.calls) == 2
    _same(first, 3 + 2 * 2, 2, 1)


def test_an_unknown_tap_lists_the_valid_ones() -> None:
    net = _Net(nn.Identity(), nn.Identity())
    for tap in ("b.2", "nope", 1, ["b.0"]):
        with pytest.raises(TapError) as err:
            tap_rf_info(net, tap)  # type: ignore[arg-type]
        assert str(err.value) == f"unknown tap {tap!r}; valid taps: b.0, b.1"


def test_theoretical_rf_and_stride_are_the_larger_side_as_ints() -> None:
    net = _Net(nn.Conv2d(3, 3, (7, 3), stride=(1, 4), padding=(3, 1)))
    assert theoretical_rf(net, "b.0") == 7 and isinstance(theoretical_rf(net, "b.0"), int)
    assert tap_stride(net, "b.0") == 4 and isinstance(tap_stride(net, "b.0"), int)
    net = _Net(nn.Conv2d(3, 3, (3, 7), stride=(4, 1), padding=(1, 3)))
    assert (theoretical_rf(net, "b.0"), tap_stride(net, "b.0")) == (7, 4)
    rf = RFInfo((1.0, 1.0), (4.0, 2.0), (-1.5, 3.0))
    assert rf.centre(0, 0) == (-1.5, 3.0) and rf.centre(3, 5) == (-1.5 + 12, 3.0 + 10)


# ------------------------------------------------------------------------------------------------ property
_axis = st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(1, 2))  # kernel, stride, dilation
_layer = st.one_of(
    st.tuples(st.just("conv"), _axis, _axis, st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.just("same"), st.integers(1, 4), st.integers(1, 4), st.integers(1, 2)),
    st.tuples(st.just("avg"), st.integers(1, 3), st.integers(1, 3)),
    st.tuples(st.just("pad"), st.integers(0, 3), st.integers(0, 3)),
)


def _build(spec: tuple) -> nn.Module:
    kind = spec[0]
    if kind == "conv":
        (ky, sy, dy), (kx, sx, dx), py, px = spec[1:]
        return nn.Conv2d(3, 3, (ky, kx), (sy, sx), (min(py, ky // 2), min(px, kx // 2)), (dy, dx), bias=False)
    if kind == "same":
        return nn.Conv2d(3, 3, (spec[1], spec[2]), padding="same", dilation=spec[3], bias=False)
    if kind == "avg":
        return nn.AvgPool2d(spec[1], spec[2], spec[1] // 2)
    return nn.ZeroPad2d((spec[1], 0, spec[2], 0))


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@given(st.lists(_layer, min_size=1, max_size=3))
def test_size_and_centre_are_the_measured_gradient_support(specs: list[tuple]) -> None:
    """With positive weights, a unit's input gradient is non-zero exactly on its receptive field (holes of
    strides and dilations inside it): its extent is the size and its middle the centre, on both axes."""
    layers = nn.Sequential(*(_build(s) for s in specs))
    with torch.no_grad():
        for m in layers.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.fill_(1.0)
    net = _Net(layers)
    x = torch.ones(1, 3, 72, 80, requires_grad=True)
    try:
        out = layers(x)
    except RuntimeError:  # the layers shrank the image below a kernel
        assume(False)
    i, j = out.shape[-2] // 2, out.shape[-1] // 2
    (g,) = torch.autograd.grad(out[0, :, i, j].sum(), x)
    rows = torch.nonzero(g[0].abs().sum((0, 2)))[:, 0]
    cols = torch.nonzero(g[0].abs().sum((0, 1)))[:, 0]
    assume(rows.numel() and cols.numel())
    assume(0 < rows[0] and rows[-1] < 71 and 0 < cols[0] and cols[-1] < 79)  # not cut by the image's border
    rf = tap_rf_info(net, "b.0")
    assert rf.size == (float(rows[-1] - rows[0] + 1), float(cols[-1] - cols[0] + 1))
    assert rf.centre(i, j) == (float(rows[0] + rows[-1]) / 2, float(cols[0] + cols[-1]) / 2)
