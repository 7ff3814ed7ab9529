"""Dashboard latency through AppTest on the CPU: upload → rendered CAMs of the embedded pair, and a branch switch.

Goals: upload to CAMs ≤ 2 s; a branch / opacity / colour-scale change recomputes nothing and takes ≤ 0.2 s.
Printed, not asserted. Run: ``.venv/bin/python benchmarks/bench_dashboard.py [--repeats 5]``.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    import res2net.cam

    calls: list[int] = []
    real = res2net.cam.compute_cams
    res2net.cam.compute_cams = lambda *a, **k: calls.append(1) or real(*a, **k)

    at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=600)
    at.session_state["device"] = "cpu"
    cold = timed(at.run)
    at.radio(key="compare_source").set_value("Upload").run()
    uploader = at.file_uploader(key="compare_upload")
    warm_name, warm_data = photos(args.repeats + 1)[-1]
    uploader.upload(warm_name, warm_data)
    timed(at.run)  # first upload also pays for one-off imports

    uploads, switches, redraws, recomputed = [], [], [], 0
    for k, (name, data) in enumerate(photos(args.repeats)):
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

    med = statistics.median
    print(f"device: cpu · models: tiny_resnet26 + tiny_res2net26_4s · repeats: {args.repeats}")
    print(f"first page run (imports, model build, demo CAMs): {cold:.2f} s")
    print(f"upload → rendered CAMs (median): {med(uploads):.3f} s  [goal ≤ 2 s: {med(uploads) / 2.0:.2f} of it]")
    print(f"branch switch (median):          {med(switches):.3f} s  [goal ≤ 0.2 s: {med(switches) / 0.2:.2f} of it]")
    print(f"opacity + colour-scale redraw:   {med(redraws):.3f} s")
    print(f"CAM recomputations during switches/redraws: {recomputed} (goal 0)")
    print(f"switch / upload ratio: {med(switches) / med(uploads):.3f}")


if __name__ == "__main__":
    main()
