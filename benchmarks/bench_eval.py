"""Speed of the dataset evaluation, as ratios measured in one run (no thresholds enforced).

  python benchmarks/bench_eval.py [--model tiny_res2net26_4s] [--weights pretrained|random] [--images 96]
                                  [--batch-size 32] [--rounds 3] [--device cpu|cuda] [--no-procs]

1. Evaluation images/s (``res2net.evaluation.scoring.evaluate_dataset``: decoding in loader worker processes, all-tap
   Grad-CAM, registration, every metric, shard files) ÷ plain forward + backward images/s of the same model and
   batch (goal >= 0.7: the metrics and I/O must not dominate). The plain pass is what the evaluation's model part
   needs at least: one forward and one backward of the true-class logits per batch, in eval mode, to the input with
   no weight gradient (the Grad-CAM backward needs none; it stops at the earliest tap, so it is a little shorter).
   The same with weight gradients accumulated (a training step's backward, a slower reference) is printed too.
   Plain and evaluation alternate over ``--rounds``; the ratio is the median of the rounds' ratios.
2. The speed-up of 2 processes over 1 (``torchrun --nproc_per_node=2`` vs one process, gloo, the whole command)
   on this machine's CPUs.
The data is an ILSVRC-val-layout folder built from Tiny-ImageNet-100 val images upscaled to 224 px with VOC XML
boxes (``tests/helpers.imagenet_val_folder``). A shared machine makes times noisy: compare within one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import res2net  # noqa: E402
from res2net.data.datasets import imagenet_val  # noqa: E402
from res2net.evaluation.distributed import Context, pick_device  # noqa: E402
from res2net.evaluation.scoring import evaluate_dataset  # noqa: E402

from helpers import imagenet_val_folder  # noqa: E402


def build(name: str, weights: str) -> torch.nn.Module:
    if weights == "random":
        torch.manual_seed(0)
        return res2net.create_model(name)
    return res2net.create_model(name, pretrained=True)


def plain_pass(model: torch.nn.Module, x: torch.Tensor, t: torch.Tensor, weight_grads: bool = False) -> None:
    xi = x.detach().requires_grad_(True)
    score = model(xi).gather(1, t[:, None]).sum()
    if weight_grads:
        score.backward()
    else:
        torch.autograd.grad(score, xi)


def plain_rate(model: torch.nn.Module, n: int, batch: int, device: torch.device, weight_grads: bool = False
               ) -> float:
    """Images/s of one forward + one backward (sum of the true-class logits) per batch, on random normalised
    inputs, to the input only or (``weight_grads``) also into every weight's ``.grad``."""
    side = model.spec.input_size
    x = torch.randn(batch, 3, side, side, device=device)
    t = torch.randint(0, model.spec.num_classes, (batch,), device=device)
    model(x)  # warm-up
    start = time.perf_counter()
    for _ in range(0, n, batch):
        plain_pass(model, x, t, weight_grads)
    model.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return n / (time.perf_counter() - start)


def eval_rate(name: str, weights: str, data: Path, batch: int, device: torch.device, workers: int) -> float:
    ds = imagenet_val(data)
    with tempfile.TemporaryDirectory() as shards:
        start = time.perf_counter()
        evaluate_dataset(ds, [(name, weights, lambda: build(name, weights))], Path(shards), batch, workers,
                         Context(device=device), progress=False)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return len(ds) / (time.perf_counter() - start)


def cpu_breakdown(model: torch.nn.Module, name: str, data: Path, batch: int) -> dict[str, float]:
    """CPU ms per image of each part of the evaluation done one after another on this thread, and of the plain
    forward+backward; thread CPU time, so other jobs on a shared machine barely move it."""
    from res2net.evaluation.distributed import write_shard
    from res2net.evaluation.scoring import ImageItems, _batch_rows

    ds = imagenet_val(data)
    side = model.spec.input_size
    items_of = ImageItems(ds, side)
    parts = dict.fromkeys(("decoding", "model", "metrics", "shard", "plain"), 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        for b, s in enumerate(range(0, len(ds), batch)):
            c0 = time.thread_time()
            items = [items_of[i] for i in range(s, min(s + batch, len(ds)))]
            c1 = time.thread_time()
            finish = _batch_rows(model, ds, items, name, "r")
            c2 = time.thread_time()
            rows = finish()
            c3 = time.thread_time()
            write_shard(Path(tmp), 0, 1, b, rows)
            c4 = time.thread_time()
            x, t = torch.randn(len(items), 3, side, side), torch.randint(0, model.spec.num_classes, (len(items),))
            c5 = time.thread_time()
            plain_pass(model, x, t)
            c6 = time.thread_time()
            for k, v in zip(parts, (c1 - c0, c2 - c1, c3 - c2, c4 - c3, c6 - c5), strict=True):
                parts[k] += v
    return {k: 1000 * v / len(ds) for k, v in parts.items()}


def command_seconds(procs: int, name: str, weights: str, data: Path, batch: int) -> float:
    out = Path(tempfile.mkdtemp()) / "r.json"
    pre = [sys.executable] if procs == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                              f"--nproc_per_node={procs}"]
    args = ["-m", "res2net.evaluate", "--dataset", "imagenet-val", "--data", str(data), "--models", name,
            "--weights", weights, "--out", str(out), "--batch-size", str(batch), "--loader-workers", "1",
            "--threads", "1", "--device", "cpu"]
    if weights == "pretrained" and res2net.get_spec(name).embedded:
        args += ["--seeds", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    subprocess.run(pre + args, env=env, check=True, capture_output=True, timeout=1800)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny_res2net26_4s")
    ap.add_argument("--weights", default="pretrained", choices=("pretrained", "random"))
    ap.add_argument("--images", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--workers", type=int, default=2, help="loader worker processes")
    ap.add_argument("--rounds", type=int, default=3, help="alternations of plain and evaluation runs")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-procs", action="store_true", help="skip the 1 vs 2 process comparison")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)  # as the evaluation does
    device = pick_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        imagenet_val_folder(data, n=args.images)
        model = build(args.model, args.weights).to(device)
        side = model.spec.input_size
        print(f"{args.model} ({args.weights}) at {side} px, batch {args.batch_size}, {args.images} images, {device}, "
              f"torch threads 1, {args.workers} loader workers")
        plain, weighted, ev = [], [], []
        for r in range(args.rounds):
            plain.append(plain_rate(model, args.images, args.batch_size, device))
            weighted.append(plain_rate(model, args.images, args.batch_size, device, weight_grads=True))
            ev.append(eval_rate(args.model, args.weights, data, args.batch_size, device, args.workers))
            print(f"round {r + 1}: plain {plain[-1]:.2f} img/s, with weight gradients {weighted[-1]:.2f} img/s, "
                  f"evaluation {ev[-1]:.2f} img/s: evaluation / plain = {ev[-1] / plain[-1]:.2f}", flush=True)
        p, w, e = (statistics.median(v) for v in (plain, weighted, ev))
        print(f"plain forward+backward (to the input): {p:.1f} img/s ({1000 / p:.1f} s per 1,000 images)")
        print(f"the same with weight gradients:        {w:.1f} img/s ({1000 / w:.1f} s per 1,000 images)")
        print(f"evaluation:                            {e:.1f} img/s ({1000 / e:.1f} s per 1,000 images)")
        ratio = statistics.median(a / b for a, b in zip(ev, plain, strict=True))
        ratio_w = statistics.median(a / b for a, b in zip(ev, weighted, strict=True))
        print(f"evaluation / plain = {ratio:.2f} (goal >= 0.7); / plain with weight gradients = {ratio_w:.2f}")
        if device.type == "cpu":
            ms = cpu_breakdown(model, args.model, data, args.batch_size)
            print("CPU ms per image, parts one after another on one thread: " + ", ".join(
                f"{k} {v:.1f}" for k, v in ms.items()) + " (plain: forward + backward to the input)")
            work = ms["decoding"] + ms["model"] + ms["metrics"] + ms["shard"]
            busiest = max(ms["model"], ms["metrics"] + ms["shard"], ms["decoding"] / max(1, args.workers))
            print(f"from these: evaluation / plain on one core = {ms['plain'] / work:.2f}; with a free core each for "
                  f"the model, the metrics thread and the {args.workers} loader workers = {ms['plain'] / busiest:.2f}")
        if not args.no_procs:
            one = command_seconds(1, args.model, args.weights, data, args.batch_size)
            two = command_seconds(2, args.model, args.weights, data, args.batch_size)
            print(f"whole command: 1 process {one:.1f} s, 2 processes (gloo) {two:.1f} s: speed-up {one / two:.2f}x "
                  f"on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
