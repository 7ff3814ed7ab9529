"""The ``python -m res2net.evaluate`` command: parse and check the flags, then run one evaluation.

Without ``--dataset`` it evaluates the embedded family on the Tiny-ImageNet-100 val split, every training run of
every model (the shipped results); with ``--dataset`` any zoo models on a dataset. Per run: top-1; Grad-CAM of the
true class at every stage output and at the branches of each stage's last block, placed on the image by the cells'
receptive-field centres and scored against the boxes (energy in box and pointing game: concentration; coverage and
MaxBoxAcc: coverage), beside maps that ignore the image (uniform; a centred Gaussian). ERFs from noise inputs,
trained and random-init. Comparisons with the ResNet are paired by run and image; intervals are hierarchical
bootstraps (runs, then classes, then images). The claims get verdicts from where their intervals lie against a
minimum effect, Holm-corrected as one family, at a fixed verdict layer. The results (``.json``) and the per-image
scores (``.npz``) carry no timestamps: a rerun reproduces both byte for byte, with any number of processes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import torch

from res2net.data.tiny_imagenet import DataError
from res2net.evaluation.protocol import DATASET_BATCH, DEFAULT_OUT, ERF_INPUTS, ERF_SIZE, FAMILY_BATCH
from res2net.evaluation.results import image_scores_path
from res2net.evaluation.runs import dataset_evaluation, evaluate, family_evaluation
from res2net.models.weights import WeightsError

__all__ = ["main", "parser"]

ROOT = Path(__file__).resolve().parents[2]
DATASET_ONLY = ("weights", "baseline")  # flags that only a --dataset run reads
FAMILY_ONLY = ("knockout_images", "knockout_means")  # the knock-out study is a step of the embedded family's evaluation


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m res2net.evaluate", allow_abbrev=False,
                                 description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--models", nargs="+", default=None,
                    help="embedded model names (default: all shipped); with --dataset, zoo names (required)")
    ap.add_argument("--seeds", nargs="+", type=int, default=None,
                    help="training runs of the embedded models (default: all shared ones)")
    ap.add_argument("--limit", type=int, default=None, help="evaluate N evenly spaced images (default: all)")
    ap.add_argument("--data", default=None, help="tiny-imagenet-100 folder (default: $RES2NET_DATA or ../shared/data)"
                                                 "; with --dataset, the dataset folder (required)")
    ap.add_argument("--erf-inputs", type=int, default=ERF_INPUTS,
                    help="Gaussian-noise inputs of the ERF study (0: none; dataset runs: released weights only)")
    ap.add_argument("--erf-size", type=int, default=ERF_SIZE, help="side of the noise inputs in px")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads per process")
    ap.add_argument("--workers", type=int, default=1,
                    help="processes scoring batches in parallel: N > 1 runs this command under torchrun with N "
                         "ranks on this machine (one thread each unless --threads); the results are the same")
    ap.add_argument("--knockout-images", type=int, default=None,
                    help="val images of the branch knock-out study (default: knockout_study.KNOCKOUT_IMAGES, or "
                         "--limit when smaller)")
    ap.add_argument("--knockout-means", type=int, default=None,
                    help="evenly spaced train images whose per-channel branch means stand in for a knocked-out "
                         "branch (default: knockout_study.MEAN_IMAGES)")
    ap.add_argument("--out", default=None, help=f"results JSON (default {DEFAULT_OUT.name}; with --dataset "
                                                "assets/results/<dataset>.json); the per-image file goes beside it, "
                                                "shard files in <out>.shards/")
    ap.add_argument("--batch-size", type=int, default=None,
                    help=f"images per fixed batch (default {FAMILY_BATCH}; --dataset: {DATASET_BATCH}); fixed batches "
                         "make results independent of the process count")
    ap.add_argument("--loader-workers", type=int, default=None,
                    help="image-decoding worker processes per rank (default 0; --dataset: 2)")
    ap.add_argument("--device", default="auto", help="auto (this rank's local GPU, else CPU), cpu, cuda or cuda:N")
    ds = ap.add_argument_group("dataset evaluation (any zoo model; under torchrun: one rank per process)")
    ds.add_argument("--dataset", choices=("tiny-imagenet-100", "imagenet-val", "folder"), default=None,
                    help="evaluate --models on this dataset at --data (see res2net.data.datasets for the layouts)")
    ds.add_argument("--weights", default=None,
                    help="pretrained (released or embedded weights; default), random (init, seed 0) or a checkpoint "
                         "file")
    ds.add_argument("--baseline", default=None, help="model the others are compared with (default: the ResNet)")
    return ap


def _check(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse what cannot run, with the flag's name, before any work."""
    for flag, least in (("limit", 1), ("erf_inputs", 0), ("erf_size", 1), ("threads", 1), ("workers", 1),
                        ("knockout_images", 1), ("knockout_means", 1), ("batch_size", 1), ("loader_workers", 0)):
        v = getattr(args, flag)
        if v is not None and v < least:
            ap.error(f"--{flag.replace('_', '-')} must be at least {least}, got {v}")
    if args.seeds is not None and min(args.seeds) < 0:
        ap.error(f"--seeds are training seeds (>= 0), got {args.seeds}")
    if args.dataset is None:
        given = [f"--{f.replace('_', '-')}" for f in DATASET_ONLY if getattr(args, f) is not None]
        if given:
            ap.error(f"{', '.join(given)} apply to --dataset runs; the embedded family is evaluated with its "
                     "released weights against tiny_resnet26")
    else:
        if not args.models or args.data is None:
            ap.error("--dataset needs --models (zoo names) and --data (the dataset folder)")
        given = [f"--{f.replace('_', '-')}" for f in FAMILY_ONLY if getattr(args, f) is not None]
        if given:
            ap.error(f"{', '.join(given)} apply to the embedded family's evaluation (without --dataset)")
    if args.workers > 1 and "WORLD_SIZE" in os.environ:
        ap.error("--workers starts its own torchrun ranks; under torchrun, set --nproc_per_node instead")


def _without_workers(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--workers":
            skip = True
        elif not a.startswith("--workers="):
            out.append(a)
    return out


def _relaunch(argv: list[str], workers: int) -> int:
    """This command as ``workers`` torchrun ranks on this machine (torch.distributed as it is, gloo on CPUs)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={workers}",
           "-m", "res2net.evaluate", *_without_workers(argv)]
    return subprocess.run(cmd, env=env, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    """Command line: write the results JSON (sorted keys, no timestamps) and the per-image scores beside it."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = parser()
    args = ap.parse_args(argv)
    _check(ap, args)
    if args.workers > 1:
        return _relaunch(argv, args.workers)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if args.dataset is not None:
            out = Path(args.out or DEFAULT_OUT.with_name(f"{args.dataset}.json"))
            ev = dataset_evaluation(args.dataset, args.data, args.models, out, args.weights or "pretrained",
                                    args.seeds, args.limit, args.batch_size or DATASET_BATCH, args.baseline,
                                    args.erf_inputs, args.erf_size)
            loader_workers = 2 if args.loader_workers is None else args.loader_workers
        else:
            out = Path(args.out or DEFAULT_OUT)
            torch.manual_seed(0)
            ev = family_evaluation(args.models, args.limit, args.data, out, args.erf_inputs, args.erf_size,
                                   args.seeds, args.knockout_images, args.batch_size or FAMILY_BATCH,
                                   args.knockout_means)
            loader_workers = args.loader_workers or 0
        res = evaluate(ev, loader_workers, args.device)
    except (DataError, WeightsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        if "CUDA" not in str(e):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    if res is None:  # a rank other than 0: rank 0 writes and reports
        return 0
    for name, r in res["models"].items():
        t = r["top1"]
        print(f"{name}: top-1 {t['mean']:.2f} [{t['low']:.2f}, {t['high']:.2f}] over {r['run_count']} runs")
    for c in res["claims"]:  # the knock-out study's confirmatory claims are among them (one family)
        print(f"{c['verdict']:>26}  {c['id']}: {c['estimate']} [{c['low']}, {c['high']}]")
    if "skipped" in res:
        print(f"{res['images']} images scored, {res['skipped']['count']} skipped")
    print(f"wrote {out} and {image_scores_path(out)}")
    return 0
