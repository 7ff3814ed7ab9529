"""Cost of the knock-out study and of the per-branch decomposition, as ratios measured in one run.

  python benchmarks/bench_knockout.py [--device cpu|cuda] [--repeats 5] [--images 64]

1. Knocking out every branch of one block (``knockout.block_knockout``, the study's unit): forwards of the images
   counted ÷ (branches + 1) (goal <= 1: each branch costs one pass, the intact pass is shared), per block kind.
2. ``decompose`` of every block (per-branch maps + the total-gradient CAMs of the same taps) ÷ ``compute_cams`` of
   those taps alone (goal <= 1.2: one forward and one backward for both).
Times are medians over ``--repeats`` runs; a shared machine makes them noisy, so compare within one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import res2net  # noqa: E402
from res2net.analysis import cam
from res2net.analysis.decompose import decompose  # noqa: E402
from res2net.evaluation import knockout_study as knockout  # noqa: E402
from res2net.geometry import registration


def timed_pair(a, b, device: torch.device, repeats: int) -> tuple[float, float]:  # noqa: ANN001
    """Median times of ``a`` and ``b``, run alternately so that a shared machine's load hits both alike."""
    a(), b()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for fn, out in ((a, times[0]), (b, times[1])):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            out.append(time.perf_counter() - t)
    return statistics.median(times[0]), statistics.median(times[1])


def count_forwards(name: str, block: str, n: int, device: torch.device) -> tuple[float, int]:
    """Images forwarded by ``block_knockout`` ÷ n, and the block's branch count."""
    model = res2net.create_model(name).to(device)
    x = torch.randn(n, 3, 64, 64, device=device)
    labels = torch.arange(n, device=device) % 100
    boxes = np.tile(np.array([[8, 8, 48, 48]]), (n, 1))
    registration.register(model, block, torch.zeros(4, 4), 64)  # the one-off geometry probe is not an image pass
    seen: list[int] = []
    h = model.register_forward_pre_hook(lambda m, i: seen.append(i[0].shape[0]))
    try:
        knockout.block_knockout(model, x, labels.cpu(), boxes, block, block, mode="zero", batch_size=32)
    finally:
        h.remove()
    branches = next(i.num_branches for i in res2net.block_infos(model) if i.name == block)
    return sum(seen) / n, branches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--images", type=int, default=64)
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    print(f"device: {device}; random-init models; medians of {args.repeats} runs\n")
    print(f"1. knock-out of every branch of one block, {args.images} images of 64 px")
    for name, block in (("tiny_res2net26_8s", "layer3.1"), ("tiny_res2net26_4s", "layer3.1"),
                        ("tiny_resnet26", "layer3.1")):
        passes, branches = count_forwards(name, block, args.images, device)
        print(f"   {name} {block}: {passes:.0f} forwards of the images for {branches} branches; "
              f"ratio to (branches + 1) = {passes / (branches + 1):.2f} (goal <= 1)")
    print("\n2. decomposition of every block ÷ CAMs of the same taps alone (one forward + one backward each)")
    for name, size, batch in (("tiny_res2net26_4s", 64, 32), ("res2net50_26w_4s", 224, 2)):
        model = res2net.create_model(name).to(device)
        x = torch.randn(batch, 3, size, size, device=device)
        t_cam, t_dec = timed_pair(lambda: cam.compute_cams(model, x, taps=None),  # noqa: B023
                                  lambda: decompose(model, x), device, args.repeats)  # noqa: B023
        print(f"   {name} at {size} px, batch {batch}: compute_cams {t_cam:.3f} s | decompose {t_dec:.3f} s | "
              f"ratio {t_dec / t_cam:.2f} (goal <= 1.2)")


if __name__ == "__main__":
    main()
