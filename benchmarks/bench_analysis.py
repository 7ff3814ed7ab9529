"""Speed and memory of the analysis engine, as ratios measured in one run (no thresholds enforced).

  python benchmarks/bench_analysis.py [--device cpu|cuda] [--repeats 3] [--sample-taps 6]

1. All-tap Grad-CAM of res2net50_26w_4s at 224 px (batch 1 and 8) ÷ a plain forward + backward (goal ≤ 1.5),
   and the speedup over the grad-cam package called once per tap for the same maps (goal ≥ 20x).
2. ERF of the 4 branches of layer3.1 over 16 images ÷ (forward to that block + one backward from it)
   (goal ≤ 1.5), and the speedup over a full-model forward/backward per image and tap (goal ≥ 3x).
3. Peak memory of the all-tap capture beside a plain forward + backward.
Times are medians over ``--repeats`` runs; a shared machine makes them noisy, so compare within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import res2net  # noqa: E402
from res2net.analysis import (
    cam,
    erf,  # noqa: E402
)
from res2net.models.taps import TapCapture, branch_tap_names, tap_names  # noqa: E402

MODEL = "res2net50_26w_4s"
ERF_BLOCK = "layer3.1"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, repeats: int, warmup: bool = True) -> float:
    """Median seconds of ``repeats`` calls (after one warm-up call unless ``warmup`` is False)."""
    if warmup:
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def plain_fwd_bwd(model: torch.nn.Module, x: torch.Tensor, target: int = 0) -> None:
    """The reference cost: one forward and an ordinary backward (parameter gradients), as in training."""
    model.zero_grad(set_to_none=True)
    model(x)[:, target].sum().backward()
    model.zero_grad(set_to_none=True)


def package_gradcam(model: torch.nn.Module, tap: str, x: torch.Tensor, target: int = 0) -> object:
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    with GradCAM(model, [res2net.get_tap(model, tap)]) as g:
        out = g(x, targets=[ClassifierOutputTarget(target)] * x.shape[0])
    model.zero_grad(set_to_none=True)
    return out


def unit_backward(acts: dict, x: torch.Tensor, taps: list[str]) -> None:
    for k, t in enumerate(taps):
        a = acts[t]
        h, w = a.shape[-2:]
        torch.autograd.grad(a[:, :, h // 2, w // 2].sum(), x, retain_graph=k < len(taps) - 1)


def truncated_fwd_bwd(model: torch.nn.Module, x: torch.Tensor, taps: list[str]) -> None:
    """Forward to the deepest of ``taps`` and one backward to the input per tap (the ERF's cost model)."""
    xi = x.detach().requires_grad_(True)
    with torch.enable_grad(), TapCapture(model, taps, stop_at_last=True) as cap:
        cap.run(xi)
        unit_backward(cap.activations, xi, taps)


def full_fwd_bwd_one(model: torch.nn.Module, x1: torch.Tensor, tap: str) -> None:
    """The naive ERF: a full-model forward for one image, then the backward from one tap's centre unit."""
    xi = x1.detach().requires_grad_(True)
    with torch.enable_grad(), TapCapture(model, [tap]) as cap:
        cap.run(xi)
        unit_backward(cap.activations, xi, [tap])


# ------------------------------------------------------------------------------------------------ memory
def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process; False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def memory_worker(kind: str, device: str, batch: int) -> None:
    """Run one workload in this (fresh) process and print its peak memory above the loaded model as JSON."""
    dev = torch.device(device)
    model = res2net.create_model(MODEL).to(dev).eval()
    x = torch.randn(batch, 3, 224, 224, device=dev)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        base = torch.cuda.memory_allocated(dev)
    else:
        exact = _reset_peak_rss()  # otherwise: growth of the lifetime peak, a lower bound
        base = _status_kib("VmRSS" if exact else "VmHWM") * 1024
    if kind == "plain":
        plain_fwd_bwd(model, x)
    elif kind == "cams":
        cam.compute_cams(model, x, 0)
    elif kind == "features":
        from res2net.analysis.features import capture_features

        capture_features(model, x, tap_names(model))
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        peak = torch.cuda.max_memory_allocated(dev) - base
    else:
        peak = _status_kib("VmHWM") * 1024 - base
    print(json.dumps({"peak_bytes": peak}))


def measure_memory(kind: str, device: str, batch: int) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-worker", kind, "--device", device, "--batch", str(batch)],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_bytes"] / 2**20


# ------------------------------------------------------------------------------------------------ main
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sample-taps", type=int, default=4, help="taps timed for the per-tap package extrapolation")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--memory-worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_worker:
        memory_worker(args.memory_worker, args.device, args.batch)
        return

    dev = torch.device(args.device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device is available")
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} torch threads"
    print(f"device: {name}; model {MODEL} (random init), 224 px; medians of {args.repeats} runs\n")
    torch.manual_seed(0)
    model = res2net.create_model(MODEL).to(dev).eval()
    taps = tap_names(model)
    step = max(1, len(taps) // args.sample_taps)
    sample = taps[::step][: args.sample_taps]

    print(f"1. all-tap Grad-CAM ({len(taps)} taps, one forward + one backward)")
    for batch in (1, 8):
        x = torch.randn(batch, 3, 224, 224, device=dev)
        t_plain = timed(lambda x=x: plain_fwd_bwd(model, x), dev, args.repeats)
        t_ours = timed(lambda x=x: cam.compute_cams(model, x, 0), dev, args.repeats)
        # the model is warm by now; at batch 8 half the sample keeps the run short
        some = sample if batch == 1 else sample[:: 2]
        per_tap = [timed(lambda t=t, x=x: package_gradcam(model, t, x), dev, 1, warmup=False) for t in some]
        t_pkg = statistics.mean(per_tap) * len(taps)
        print(f"   batch {batch}: plain fwd+bwd {t_plain:.3f} s | all-tap CAMs {t_ours:.3f} s | "
              f"ratio {t_ours / t_plain:.2f} (goal <= 1.5)")
        print(f"            grad-cam package, once per tap: {statistics.mean(per_tap):.3f} s/tap, "
              f"x{len(taps)} taps = {t_pkg:.1f} s (extrapolated from {len(some)} timed taps) | "
              f"speedup {t_pkg / t_ours:.1f}x (goal >= 20x)")

    print(f"\n2. ERF of the 4 branches of {ERF_BLOCK}, 16 images")
    branch_taps = branch_tap_names(model, ERF_BLOCK)
    x16 = torch.randn(16, 3, 224, 224, device=dev)
    t_erf = timed(lambda: erf.compute_erf(model, x16, branch_taps), dev, args.repeats)
    t_one = timed(lambda: truncated_fwd_bwd(model, x16, branch_taps[:1]), dev, args.repeats)
    t_four = timed(lambda: truncated_fwd_bwd(model, x16, branch_taps), dev, args.repeats)
    naive_pairs = [(i, t) for i, t in zip(range(2), branch_taps[::2], strict=False)]
    t_naive_each = statistics.mean(
        timed(lambda i=i, t=t: full_fwd_bwd_one(model, x16[i:i + 1], t), dev, 1, warmup=False)
        for i, t in naive_pairs
    )
    t_naive = t_naive_each * 16 * len(branch_taps)
    print(f"   compute_erf {t_erf:.2f} s | forward to {ERF_BLOCK} + one backward {t_one:.2f} s | "
          f"ratio {t_erf / t_one:.2f} (goal <= 1.5)")
    print(f"   (forward + one backward per branch, no ERF bookkeeping: {t_four:.2f} s, "
          f"ratio {t_four / t_one:.2f}: one backward per tap is the floor of this design)")
    print(f"   naive full-model fwd/bwd per image and tap: {t_naive_each:.3f} s x {16 * len(branch_taps)} = "
          f"{t_naive:.1f} s (extrapolated from {len(naive_pairs)} timed pairs) | speedup {t_naive / t_erf:.1f}x "
          f"(goal >= 3x)")

    label = ("torch.cuda.max_memory_allocated above the loaded model" if dev.type == "cuda"
             else "peak RSS (VmHWM, reset after loading) minus RSS of the loaded model, one fresh process each")
    print(f"\n3. peak memory ({label})")
    for batch in (1, 8):
        mem = {k: measure_memory(k, args.device, batch) for k in ("plain", "cams", "features")}
        print(f"   batch {batch}: plain fwd+bwd {mem['plain']:.0f} MiB | all-tap CAMs {mem['cams']:.0f} MiB "
              f"(ratio {mem['cams'] / mem['plain']:.2f}) | all-tap feature capture (no grad) {mem['features']:.0f} MiB")


if __name__ == "__main__":
    main()
