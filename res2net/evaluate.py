"""Evaluate the embedded family on the Tiny-ImageNet-100 val split: accuracy, CAM localisation by object size, ERFs.

    python -m res2net.evaluate [--models ...] [--limit N] [--out assets/results/tiny_imagenet_100.json]

For every embedded model with shipped weights: top-1/top-5; Grad-CAM of the true class at the last block of each
stage (block output and every branch), upsampled to 64 px and scored against the val boxes with the analysis
engine's metrics (energy in box, pointing game, thresholded-CAM box IoU at block outputs), bucketed by object
size with bootstrap intervals and the uniform map's chance level; ERF metrics per branch; and paired comparisons
of each Res2Net against the ResNet baseline at the block outputs. The output has no timestamps, so a rerun on
the same machine regenerates the file exactly.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

from . import create_model, get_spec, list_models
from . import localize as L
from .cam import compute_cams, upsample
from .data import Split, default_data_dir, load_split
from .erf import compute_erf
from .taps import block_infos
from .train import evaluate_split, normalizer
from .weights import read_model_card

__all__ = ["stage_taps", "subset_indices", "localisation_scores", "summarise", "evaluate_model", "run", "main"]

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "assets" / "results" / "tiny_imagenet_100.json"
BASELINE = "tiny_resnet26"
ERF_IMAGES = 64
DIGITS = 4
IOU_THRESHOLD = 0.5
IOU_REGION = "all"  # box around every pixel >= 0.5 x max (the component variant costs ~100x more)


def stage_taps(model: torch.nn.Module) -> dict[str, dict[str, str]]:
    """Per stage, the last block's taps keyed by group: ``output`` and ``branch0..branch{s-1}`` (ResNet: output)."""
    last: dict[str, object] = {}
    for info in block_infos(model):
        last[info.name.split(".")[0]] = info
    out: dict[str, dict[str, str]] = {}
    for stage, info in last.items():
        groups = {"output": info.name}
        for t in info.branch_taps:
            groups[t.rsplit(".", 1)[1]] = t
        out[stage] = groups
    return out


def subset_indices(n: int, limit: int | None) -> torch.Tensor:
    """All images, or ``limit`` evenly spaced ones (every class represented in a class-sorted split)."""
    if limit is None or limit >= n:
        return torch.arange(n)
    return torch.linspace(0, n - 1, limit).round().long().unique()


def _exclusive(boxes: torch.Tensor) -> np.ndarray:
    """Tiny ImageNet boxes have inclusive ends (x1 = 63 is the last column); the metrics take exclusive ends."""
    b = boxes.numpy().astype(np.int64).copy()
    b[:, 2:] += 1
    return b


def localisation_scores(model: torch.nn.Module, name: str, split: Split, idx: torch.Tensor, taps: list[str],
                        iou_taps: set[str], batch_size: int = 100) -> dict[str, dict[str, np.ndarray]]:
    """Per tap, per image: energy in box, pointing-game hit, and (for ``iou_taps``) box IoU of the true-class CAM."""
    mean, std = normalizer(name, torch.device("cpu"))
    out: dict[str, dict[str, list]] = {t: {"energy": [], "pointing": [], "iou": []} for t in taps}
    size = split.images.shape[-1]
    for s in range(0, len(idx), batch_size):
        sel = idx[s:s + batch_size]
        x = (split.images[sel].float() / 255.0 - mean) / std
        cams = upsample(compute_cams(model, x, targets=split.labels[sel], taps=taps), size)
        boxes = _exclusive(split.boxes[sel])
        for t in taps:
            out[t]["energy"].append(L.energy_in_box(cams[t], boxes))
            out[t]["pointing"].append(L.pointing_game(cams[t], boxes).astype(np.float64))
            if t in iou_taps:
                out[t]["iou"].append(L.cam_box_iou(cams[t], boxes, IOU_THRESHOLD, IOU_REGION))
    return {t: {k: np.concatenate(v) for k, v in d.items() if v} for t, d in out.items()}


def _r(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), DIGITS)


def _ci(values: np.ndarray) -> dict:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return {"n": 0, "mean": None, "low": None, "high": None}
    c = L.bootstrap_ci(v, n=1000, seed=0)
    return {"n": int(v.size), "mean": _r(c.estimate), "low": _r(c.low), "high": _r(c.high)}


def summarise(scores: dict[str, np.ndarray], buckets: np.ndarray, fractions: np.ndarray) -> dict:
    """Per size bucket (and ``all``): metric means with bootstrap intervals, and the chance level (box fraction)."""
    out = {}
    for b in (*L.SIZE_BUCKETS, "all"):
        m = np.ones_like(buckets, dtype=bool) if b == "all" else buckets == b
        entry = {"images": int(m.sum()), "chance_energy": _r(fractions[m].mean()) if m.any() else None}
        for k, v in scores.items():
            entry[k] = _ci(v[m])
        entry["nan_maps"] = int((~np.isfinite(scores["energy"][m])).sum())
        out[b] = entry
    return out


def evaluate_model(name: str, val: Split, idx: torch.Tensor, erf_images: int = ERF_IMAGES) -> tuple[dict, dict]:
    """(results entry, per-image scores at block outputs) for one embedded model with shipped weights."""
    model = create_model(name, pretrained=True)
    sub = Split(val.images[idx], val.labels[idx], [val.files[i] for i in idx], val.boxes[idx], val.wnids)
    mean, std = normalizer(name, torch.device("cpu"))
    acc = evaluate_split(model, sub, mean, std)
    with torch.no_grad():
        correct = np.concatenate([
            (model((sub.images[i:i + 500].float() / 255.0 - mean) / std).argmax(1) == sub.labels[i:i + 500]).numpy()
            for i in range(0, len(sub), 500)]).astype(np.float64)
    groups = stage_taps(model)
    taps = [t for g in groups.values() for t in g.values()]
    outputs = {g["output"] for g in groups.values()}
    scores = localisation_scores(model, name, val, idx, taps, outputs)
    size = val.images.shape[-1]
    boxes = _exclusive(val.boxes[idx])
    buckets = np.array([L.size_bucket(b, size) for b in boxes])
    fractions = np.array([L.box_fraction(b, size) for b in boxes])
    loc = {stage: {group: summarise(scores[tap], buckets, fractions) for group, tap in g.items()}
           for stage, g in groups.items()}
    erf_idx = subset_indices(len(idx), erf_images)
    x = (sub.images[erf_idx].float() / 255.0 - mean) / std
    erf_taps = [t for g in groups.values() for k, t in g.items() if k != "output"] or sorted(outputs)
    erfs = compute_erf(model, x, erf_taps, batch_size=16)
    erf = {t: {k: _r(v) for k, v in e.metrics.items()} for t, e in erfs.items()}
    spec = get_spec(name)
    card = read_model_card(name) or {}
    entry = {"scale": spec.extra.get("scale", 1), "top1": acc["top1"], "top5": acc["top5"],
             "params": card.get("params"), "gmacs": card.get("gmacs"), "seed": card.get("seed"),
             "epochs": card.get("epochs"), "taps": groups, "localisation": loc,
             "erf": {"images": int(len(erf_idx)), "taps": erf}}
    per_image = {stage: scores[g["output"]] for stage, g in groups.items()}
    return entry, {"per_image": per_image, "buckets": buckets, "correct": correct}


def _comparisons(per_model: dict[str, dict]) -> dict:
    """Paired (same images) energy/pointing differences of each Res2Net minus the ResNet baseline per stage output."""
    if BASELINE not in per_model:
        return {}
    base = per_model[BASELINE]
    out = {}
    for name, d in per_model.items():
        if name == BASELINE:
            continue
        by_stage = {}
        for stage, sc in d["per_image"].items():
            by_bucket = {}
            for b in (*L.SIZE_BUCKETS, "all"):
                m = np.ones_like(d["buckets"], dtype=bool) if b == "all" else d["buckets"] == b
                entry = {}
                for metric in ("energy", "pointing"):
                    a, r = sc[metric][m], base["per_image"][stage][metric][m]
                    ok = np.isfinite(a) & np.isfinite(r)
                    if not ok.any():
                        continue
                    c = L.paired_diff_ci(a[ok], r[ok], n=1000, seed=0)
                    entry[metric] = {"diff": _r(c.estimate), "low": _r(c.low), "high": _r(c.high), "n": int(ok.sum()),
                                     "verdict": L.verdict(c)}
                by_bucket[b] = entry
            by_stage[stage] = by_bucket
        out[f"{name} - {BASELINE}"] = by_stage
    return out


def run(models: list[str] | None = None, limit: int | None = None, data_dir: str | Path | None = None,
        erf_images: int = ERF_IMAGES, progress: bool = True) -> dict:
    """Evaluate ``models`` (default: every embedded model whose weights are shipped); return the results dict."""
    torch.manual_seed(0)
    names = models or [m for m in list_models("embedded") if read_model_card(m) is not None]
    if not names:
        raise SystemExit("error: no embedded model has shipped weights; train them with `python -m res2net.train`")
    val = load_split("val", data_dir)
    idx = subset_indices(len(val), limit)
    results, per_model = {}, {}
    for name in names:
        if progress:
            print(f"evaluating {name} on {len(idx)} val images ...", file=sys.stderr, flush=True)
        card = read_model_card(name) or {}
        entry, extra = evaluate_model(name, val, idx, erf_images)
        entry["weights_sha256"] = card.get("sha256")
        results[name], per_model[name] = entry, extra
    return {
        "dataset": "tiny-imagenet-100", "split": "val", "images": int(len(idx)), "limit": limit,
        "cam": {"method": "gradcam", "target": "true class", "upsample": "bilinear to 64 px",
                "boxes": "val_boxes.tsv, inclusive ends converted to exclusive",
                "iou": f"box around CAM >= {IOU_THRESHOLD} x max (region '{IOU_REGION}'), block outputs only"},
        "size_buckets": {"small": f"box area < {L.SMALL_BELOW:.0%} of the image",
                         "medium": f"{L.SMALL_BELOW:.0%} to {L.LARGE_FROM:.0%}", "large": f">= {L.LARGE_FROM:.0%}"},
        "intervals": "95% percentile bootstrap over images, 1000 resamples, seed 0",
        "baseline": BASELINE, "models": results, "comparisons": _comparisons(per_model),
        "localisation": _localisation_rows(results), "erf": _erf_rows(results),
        "verdicts": _verdicts(results, per_model),
    }


LOC_VIEWS = (("energy", "layer2"), ("energy", "layer3"), ("energy", "layer4"), ("pointing", "layer3"))
METRIC_NAMES = {"energy": "energy inside the box", "pointing": "pointing game hit rate", "iou": "CAM box IoU"}


def _localisation_rows(results: dict) -> list[dict]:
    """Flat rows (model, metric, bucket, mean, lo, hi, chance, n) at stage outputs, for plotting by object size."""
    rows = []
    for metric, stage in LOC_VIEWS:
        for name, e in results.items():
            for b in L.SIZE_BUCKETS:
                v = e["localisation"][stage]["output"][b]
                if v[metric]["mean"] is None:
                    continue
                rows.append({"model": name, "metric": f"{METRIC_NAMES[metric]} · {stage} output", "tap": f"{stage}.1",
                             "bucket": b, "mean": v[metric]["mean"], "lo": v[metric]["low"], "hi": v[metric]["high"],
                             "chance": v["chance_energy"] if metric == "energy" else None, "n": v[metric]["n"]})
    return rows


def _erf_rows(results: dict) -> list[dict]:
    """One row per model and branch tap: ERF radii (50/90% mass, square) and Gaussian sigma, in input pixels."""
    rows = []
    for name, e in results.items():
        for tap, m in e["erf"]["taps"].items():
            rows.append({"model": name, "tap": tap, "branch": int(tap.rsplit("branch", 1)[1]),
                         "radius_50": m["radius_50_square"], "radius_90": m["radius_90_square"],
                         "sigma": m["gaussian_sigma"]})
    return rows


def _verdicts(results: dict, per_model: dict) -> dict:
    """The paper's claims, each with the paired interval of (Res2Net - ResNet) or the measured ERF growth."""
    out: dict[str, list[dict]] = {"accuracy": [], "localisation": [], "erf": []}
    base = per_model.get(BASELINE)
    for name, e in results.items():
        if name == BASELINE or base is None:
            continue
        s = e["scale"]
        c = L.paired_diff_ci(per_model[name]["correct"] * 100, base["correct"] * 100, n=1000, seed=0)
        out["accuracy"].append({"claim": f"Res2Net s={s} has a higher top-1 than the matched ResNet",
                                "diff_ci": [_r(c.estimate), _r(c.low), _r(c.high)],
                                "detail": f"(top-1 difference in points, {name} - {BASELINE})"})
        for bucket, what in (("small", "concentrates more energy on small objects"),
                             ("large", "covers more of large objects")):
            cmp = _comparisons({name: per_model[name], BASELINE: base})[f"{name} - {BASELINE}"]["layer3"][bucket]
            if "energy" in cmp:
                d = cmp["energy"]
                out["localisation"].append({
                    "claim": f"Res2Net s={s}'s Grad-CAM (layer3 output) {what} than ResNet's",
                    "diff_ci": [d["diff"], d["low"], d["high"]],
                    "detail": f"(energy-in-box difference, {bucket} objects, n={d['n']})"})
    for name, e in results.items():
        s = e["scale"]
        if s < 3:
            continue
        for stage in ("layer2", "layer3"):
            taps = e["erf"]["taps"]
            r0, rl = taps.get(f"{stage}.1.branch0"), taps.get(f"{stage}.1.branch{s - 2}")
            if r0 is None or rl is None:
                continue
            d = rl["radius_50_square"] - r0["radius_50_square"]
            out["erf"].append({
                "claim": f"{name}: the ERF grows from branch 0 to branch {s - 2} ({stage}.1)",
                "verdict": L.VERDICTS[0] if d > 0 else L.VERDICTS[1] if d < 0 else L.VERDICTS[2],
                "detail": f"(50% radius {r0['radius_50_square']} -> {rl['radius_50_square']} px over "
                          f"{e['erf']['images']} val images; one ERF, no interval)"})
    return out


def main(argv: list[str] | None = None) -> int:
    """Command line: write the results JSON (sorted keys, no timestamps)."""
    ap = argparse.ArgumentParser(prog="python -m res2net.evaluate", description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=None, help="embedded model names (default: all shipped)")
    ap.add_argument("--limit", type=int, default=None, help="evaluate N evenly spaced val images (default: all)")
    ap.add_argument("--data", default=None, help="tiny-imagenet-100 folder (default: $RES2NET_DATA or ../shared/data)")
    ap.add_argument("--erf-images", type=int, default=ERF_IMAGES)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=str(DEFAULT_OUT))
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    res = run(args.models, args.limit, args.data or default_data_dir(), args.erf_images)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
    for name, r in res["models"].items():
        print(f"{name}: top1 {r['top1']:.2f} top5 {r['top5']:.2f}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
