"""Speed of the dataset evaluation, as ratios measured in one run (no thresholds enforced).

  python benchmarks/bench_eval.py [--model tiny_res2net26_4s] [--weights pretrained|random] [--images 96]
                                  [--batch-size 32] [--device cpu|cuda] [--no-procs]

1. Evaluation images/s (``res2net.evaluate.evaluate_dataset``: decoding in loader worker processes, all-tap
   Grad-CAM, registration, every metric, shard files) ÷ plain forward + backward images/s of the same model and
   batch (goal >= 0.7: the metrics and I/O must not dominate).
2. The speed-up of 2 processes over 1 (``torchrun --nproc_per_node=2`` vs one process, gloo, the whole command)
   on this machine's CPUs.
The data is an ILSVRC-val-layout folder built from Tiny-ImageNet-100 val images upscaled to 224 px with VOC XML
boxes (``tests/helpers.imagenet_val_folder``). A shared machine makes times noisy: compare within one run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import res2net  # noqa: E402
from res2net.datasets import imagenet_val  # noqa: E402
from res2net.distributed import Context, pick_device  # noqa: E402
from res2net.evaluate import evaluate_dataset  # noqa: E402

from helpers import imagenet_val_folder  # noqa: E402


def build(name: str, weights: str) -> torch.nn.Module:
    if weights == "random":
        torch.manual_seed(0)
        return res2net.create_model(name)
    return res2net.create_model(name, pretrained=True)


def plain_rate(model: torch.nn.Module, n: int, batch: int, device: torch.device) -> float:
    """Images/s of forward + backward (true-class logit to the input) on random normalised batches."""
    side = model.spec.input_size
    x = torch.randn(batch, 3, side, side, device=device)
    t = torch.randint(0, model.spec.num_classes, (batch,), device=device)
    model(x)  # warm-up
    start = time.perf_counter()
    for _ in range(0, n, batch):
        xi = x.detach().requires_grad_(True)
        model(xi).gather(1, t[:, None]).sum().backward()
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


def command_seconds(procs: int, name: str, weights: str, data: Path, batch: int) -> float:
    out = Path(tempfile.mkdtemp()) / "r.json"
    pre = [sys.executable] if procs == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                              f"--nproc_per_node={procs}"]
    args = ["-m", "res2net.evaluate", "--dataset", "imagenet-val", "--data", str(data), "--models", name,
            "--weights", weights, "--out", str(out), "--batch-size", str(batch), "--loader-workers", "1",
            "--threads", "1", "--device", "cpu"]
    if weights == "pretrained" and res2net.get_spec(name).family == "embedded":
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
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-procs", action="store_true", help="skip the 1 vs 2 process comparison")
    args = ap.parse_args()
    torch.set_num_threads(1)
    device = pick_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        imagenet_val_folder(data, n=args.images)
        model = build(args.model, args.weights).to(device)
        side = model.spec.input_size
        plain = plain_rate(model, args.images, args.batch_size, device)
        ev = eval_rate(args.model, args.weights, data, args.batch_size, device, args.workers)
        print(f"{args.model} ({args.weights}) at {side} px, batch {args.batch_size}, {args.images} images, {device}, "
              f"torch threads 1, {args.workers} loader workers")
        print(f"plain forward+backward: {plain:.1f} img/s ({1000 / plain:.1f} s per 1,000 images)")
        print(f"evaluation:             {ev:.1f} img/s ({1000 / ev:.1f} s per 1,000 images)")
        print(f"evaluation / plain = {ev / plain:.2f} (goal >= 0.7)")
        if not args.no_procs:
            one = command_seconds(1, args.model, args.weights, data, args.batch_size)
            two = command_seconds(2, args.model, args.weights, data, args.batch_size)
            print(f"whole command: 1 process {one:.1f} s, 2 processes (gloo) {two:.1f} s: speed-up {one / two:.2f}x "
                  f"on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
