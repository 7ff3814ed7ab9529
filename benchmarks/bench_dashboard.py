"""Dashboard latency through AppTest on the CPU, for the embedded pair and the ImageNet pair (res2net50_26w_4s +
resnet50 at 224 px, random init): upload → rendered CAMs against a plain forward + backward of both models, and a
branch / opacity / colour-scale change, which must recompute nothing.

Goals: upload ÷ plain forward+backward ≤ 1.3; a change ≤ 0.1 s. Printed, not asserted.
Run: ``.venv/bin/python benchmarks/bench_dashboard.py [--repeats 5] [--pairs embedded,imagenet]``.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
PHOTOS = REPO.parent / "shared" / "data" / "imagenet-sample-photos"


def photos(n: int) -> list[tuple[str, bytes]]:
    """Distinct photos (so every upload misses the cache): the sample photos, else synthetic ones."""
    found = sorted(PHOTOS.glob("*.JPEG")) if PHOTOS.is_dir() else []
    out = [(p.name, p.read_bytes()) for p in found[:n]]
    rng = np.random.default_rng(0)
    while len(out) < n:
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (400, 500, 3), dtype=np.uint8)).save(buf, format="JPEG")
        out.append((f"synthetic_{len(out)}.jpg", buf.getvalue()))
    return out


def timed(fn) -> float:  # noqa: ANN001
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def plain_forward_backward(names: list[str], repeats: int) -> float:
    """Median time of one plain forward + backward (top-1 logit) of each model in turn, summed over the models."""
    import torch

    import res2net

    models = []
    for n in names:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            models.append((res2net.create_model(n, pretrained=False).eval(), res2net.get_spec(n).input_size))

    def once() -> None:
        for m, size in models:
            x = torch.randn(1, 3, size, size, requires_grad=False)
            logits = m(x)
            logits[0, int(logits[0].argmax())].backward()
            m.zero_grad(set_to_none=True)

    once()  # warm-up
    return statistics.median(timed(once) for _ in range(repeats))


def bench_pair(names: list[str], weights: str, repeats: int) -> dict[str, float]:
    """Upload → rendered CAMs, a branch switch and an opacity + colour-scale redraw on Compare CAMs for one pair."""
    import res2net.analysis.cam

    calls: list[int] = []
    real = res2net.analysis.cam.compute_cams
    res2net.analysis.cam.compute_cams = lambda *a, **k: calls.append(1) or real(*a, **k)
    try:
        at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=600)
        at.session_state["device"] = "cpu"
        at.session_state["weights_mode"] = weights
        at.session_state["compare_models"] = names
        cold = timed(at.run)
        at.radio(key="compare_source").set_value("Upload").run()
        warm_name, warm_data = photos(repeats + 1)[-1]
        at.file_uploader(key="compare_upload").upload(warm_name, warm_data)
        timed(at.run)  # the first upload also pays for one-off imports
        uploads, switches, redraws, recomputed = [], [], [], 0
        for k, (name, data) in enumerate(photos(repeats)):
            at.file_uploader(key="compare_upload").upload(name, data)
            uploads.append(timed(at.run))
            assert not at.exception, [e.value for e in at.exception]
            n0 = len(calls)
            at.selectbox(key="compare_tap").set_value(f"branch {k % 4}")
            switches.append(timed(at.run))
            at.slider(key="compare_alpha").set_value(0.3 + 0.1 * (k % 5))
            at.radio(key="compare_scale").set_value("shared" if k % 2 == 0 else "per map")
            redraws.append(timed(at.run))
            recomputed += len(calls) - n0
            at.selectbox(key="compare_tap").set_value("block output").run()
    finally:
        res2net.analysis.cam.compute_cams = real
    med = statistics.median
    return {"cold": cold, "upload": med(uploads), "switch": med(switches), "redraw": med(redraws),
            "recomputed": recomputed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--pairs", default="embedded,imagenet", help="comma-separated: embedded, imagenet")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))  # as the app does
    pairs = {"embedded": (["tiny_resnet26", "tiny_res2net26_4s"], "trained"),
             "imagenet": (["res2net50_26w_4s", "resnet50"], "random")}
    for key in args.pairs.split(","):
        names, weights = pairs[key]
        r = bench_pair(names, weights, args.repeats)
        plain = plain_forward_backward(names, args.repeats)
        size = max(__import__("res2net").get_spec(n).input_size for n in names)
        print(f"device: cpu · models: {' + '.join(names)} ({weights}, {size} px) · repeats: {args.repeats} · "
              f"torch threads: {torch.get_num_threads()}")
        print(f"  first page run (imports, model build, demo CAMs): {r['cold']:.2f} s")
        print(f"  upload → rendered CAMs (median): {r['upload']:.3f} s")
        print(f"  plain forward+backward of both models (median): {plain:.3f} s")
        print(f"  upload ÷ plain forward+backward: {r['upload'] / plain:.2f}  [goal ≤ 1.3]")
        print(f"  branch switch (median): {r['switch']:.3f} s  [goal ≤ 0.1 s]")
        print(f"  opacity + colour-scale redraw (median): {r['redraw']:.3f} s  [goal ≤ 0.1 s]")
        print(f"  CAM recomputations during switches/redraws: {r['recomputed']} (goal 0)")


if __name__ == "__main__":
    main()
