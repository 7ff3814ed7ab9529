"""Analyses on shared model objects from several threads give exactly the serial results and leak no hooks."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

import res2net
from res2net.analysis import cam, erf, features
from res2net.geometry.receptive_field import tap_stride, theoretical_rf
from res2net.models.taps import branch_tap_names

torch.set_num_threads(1)


def no_hooks(*models: torch.nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks for model in models for m in model.modules())


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    out = {n: res2net.create_model(n) for n in ("tiny_res2net26_4s", "tiny_resnet26", "tiny_res2net26_8s")}
    out["tiny_res2net26_4s"].train()  # shared in train mode: each call must run in eval and restore it
    return out


def jobs(models: dict, g: torch.Generator) -> list[tuple[str, object]]:
    a, b, c = models["tiny_res2net26_4s"], models["tiny_resnet26"], models["tiny_res2net26_8s"]
    xa, xb = torch.randn(2, 3, 64, 64, generator=g), torch.randn(3, 3, 64, 64, generator=g)
    nan = xa.clone()
    nan[0, 0, 0, 0] = float("nan")
    return [
        ("cam all taps", lambda: cam.compute_cams(a, xa)),
        ("cam layercam", lambda: cam.compute_cams(b, xb, [1, 2, 3], taps=["layer2.1", "layer3.0.branch0"],
                                                  method="layercam")),
        ("cam gradcam++", lambda: cam.compute_cams(c, xb, 7, taps=branch_tap_names(c, "layer3.1"), method="gradcam++")),
        ("erf noise", lambda: erf.compute_erf(a, 4, branch_tap_names(a, "layer2.1"), size=64)),
        ("erf images", lambda: erf.compute_erf(b, xb, ["layer1.1", "layer2.0.branch0"], batch_size=2)),
        ("features", lambda: features.capture_features(c, xa, branch_tap_names(c, "layer2.1"))),
        ("bad target", lambda: cam.compute_cams(a, xa, 100)),  # raises after the forward, inside the capture
        ("nan input", lambda: cam.compute_cams(b, nan)),
        ("nan erf", lambda: erf.compute_erf(c, nan, "layer1.0")),
    ]


def run(fn) -> object:  # noqa: ANN001
    try:
        return ("ok", fn())
    except Exception as e:  # the exception type and message are part of the result
        return ("error", type(e).__name__, str(e))


def same(x: object, y: object) -> bool:
    if isinstance(x, torch.Tensor):
        return isinstance(y, torch.Tensor) and x.shape == y.shape and torch.equal(x, y)
    if isinstance(x, np.ndarray):
        return isinstance(y, np.ndarray) and np.array_equal(x, y, equal_nan=True)
    if isinstance(x, erf.ERF):
        return same(x.map, y.map) and same(x.metrics, y.metrics) and x.centre == y.centre
    if isinstance(x, dict):
        return isinstance(y, dict) and list(x) == list(y) and all(same(x[k], y[k]) for k in x)
    if isinstance(x, (tuple, list)):
        return len(x) == len(y) and all(same(p, q) for p, q in zip(x, y, strict=True))
    if isinstance(x, float) and isinstance(y, float) and x != x:
        return y != y
    return x == y


def test_concurrent_calls_match_serial_and_leave_no_hooks(models: dict) -> None:
    work = jobs(models, torch.Generator().manual_seed(1))
    serial = {}
    for name, fn in work:
        serial[name] = run(fn)
        assert no_hooks(*models.values()), f"hooks left after {name}"
        assert models["tiny_res2net26_4s"].training, f"train mode not restored after {name}"
    assert [k for k, v in serial.items() if v[0] == "error"] == ["bad target", "nan input", "nan erf"]

    order = [item for item in work for _ in range(3)]
    random.Random(0).shuffle(order)
    start = threading.Barrier(4)

    def task(item: tuple[str, object]) -> tuple[str, object]:
        try:
            start.wait(timeout=0.5)  # line the first four calls up so they overlap
        except threading.BrokenBarrierError:
            pass
        return item[0], run(item[1])

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(task, order))
    for name, result in results:
        assert same(serial[name], result), f"{name}: concurrent result differs from the serial one"
    assert no_hooks(*models.values())
    assert models["tiny_res2net26_4s"].training and not models["tiny_resnet26"].training


def test_receptive_field_probe_runs_alongside_analyses(models: dict) -> None:
    fresh = res2net.create_model("tiny_res2net26_8s")  # its RF table is computed for the first time here
    taps = branch_tap_names(fresh, "layer2.1")
    x = torch.randn(2, 3, 64, 64)
    ref = cam.compute_cams(models["tiny_res2net26_8s"], x, 3, taps=taps)
    with ThreadPoolExecutor(4) as pool:
        rfs = [pool.submit(lambda t=t: (theoretical_rf(fresh, t), tap_stride(fresh, t))) for t in taps]
        cams = [pool.submit(cam.compute_cams, models["tiny_res2net26_8s"], x, 3, taps=taps) for _ in range(3)]
        got_rfs = [f.result() for f in rfs]
        got_cams = [f.result() for f in cams]
    # branch i of a normal stride-8 block: the block input's RF + (i + 1) * 2 * 8; the identity adds nothing
    base = theoretical_rf(fresh, "layer2.0")
    assert got_rfs == [(base + 16 * (i + 1), 8) for i in range(7)] + [(base, 8)]
    assert all(same(ref, c) for c in got_cams)
    assert no_hooks(fresh, *models.values())
