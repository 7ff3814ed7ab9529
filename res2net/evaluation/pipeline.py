"""Evaluate the embedded family on the Tiny-ImageNet-100 val split, every training run of every model.

    python -m res2net.evaluate [--models ...] [--limit N] [--out assets/results/tiny_imagenet_100.json]

Per run: top-1; Grad-CAM of the true class at every stage output and at the branches of each stage's last block,
placed on the image by the cells' receptive-field centres (``cam.register``) and scored against the val boxes:
energy in box and pointing game (concentration), coverage of the box and MaxBoxAcc (coverage), beside maps that
ignore the image (uniform; a centred Gaussian fitted on the train boxes). ERFs from 256 px noise, trained and
random-init, with intervals over runs and inputs. Comparisons of each Res2Net with the ResNet are paired by seed
and image; intervals are hierarchical bootstraps (runs, then classes, then images). The claims on the Claims page
get verdicts from where their intervals lie against a minimum effect, Holm-corrected as one family; the layer the
verdicts use (``VERDICT_LAYER``) is fixed here, and every stage appears in the tables. Writes the summaries
(``.json``) and the per-image scores (``.npz``) with no timestamps: a rerun reproduces both files byte for byte.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from res2net.analysis.cam import compute_cams, register_all
from res2net.analysis.erf import compute_erf, erf_metrics, radius_samples, tap_rf_info
from res2net.data.tiny_imagenet import Split, default_data_dir, load_split, read_box_array
from res2net.evaluation.results import SCHEMA_VERSION, image_scores_path, save_image_scores
from res2net.geometry.registration import register_maps
from res2net.metrics import boxes as L
from res2net.metrics import statistics as S
from res2net.metrics import table as T
from res2net.models.factory import create_model
from res2net.models.preprocessing import normalize
from res2net.models.taps import block_infos
from res2net.models.weights import embedded_seeds, read_model_card
from res2net.models.zoo import get_spec, list_models
from res2net.train import evaluate_split, normalizer

__all__ = ["stage_taps", "subset_indices", "score_run", "prior_scores", "run", "main", "VERDICT_LAYER",
           "MIN_EFFECT", "STAGES"]

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "assets" / "results" / "tiny_imagenet_100.json"
BASELINE = "tiny_resnet26"
STAGES = ("layer1", "layer2", "layer3", "layer4")
VERDICT_LAYER = "layer3"  # fixed before any result: mid-level, 4x4 cells at 64 px (layer4 is 2x2)
ERF_STAGES = ("layer2", "layer3")  # stages whose last block's branches get ERFs
ERF_SIZE = 256  # noise inputs large enough that the 99% mass of layer1-3 ERFs fits (flagged where it does not)
ERF_INPUTS = 16
BOOT_SUMMARY = 1000
BOOT_COMPARE = 2000
DIGITS = T.DIGITS
OUTPUT_METRICS = T.map_metrics()
BRANCH_METRICS = T.branch_metrics()
# The smallest difference that would matter, per metric (``res2net.metrics.table``).
MIN_EFFECT = T.min_effects()
# How a verdict is reached, written into every results file.
VERDICT_RULE = {"rule": "interval above +d: supported; below -d: contradicted; inside [-d, +d]: no meaningful "
                        "difference; otherwise inconclusive",
                "min_effect": MIN_EFFECT,
                "correction": "Holm over the confirmatory claims: the k-th most significant of m is judged on its "
                              "1 - 0.05/(m-k) interval; exploratory rows use their 95% interval"}
METRICS = T.metrics_json()
PAPER = {
    "accuracy": "Res2Net improves top-1 over ResNet at similar parameters and FLOPs (Gao et al., TPAMI 2021, "
                "Table 1; the scale ablation of Table 3)",
    "small": "Res2Net's Grad-CAM maps are more concentrated on small objects (§4.5, Fig. 4)",
    "large": "Res2Net's Grad-CAM maps cover the whole of large objects (§4.5, Fig. 4)",
    "branch_erf": "later branches of a block see larger receptive fields: 3x3, 5x5, 7x7 … in one block (§3.1, Fig. 2)",
    "block_erf": "a Res2Net block covers a wider range of receptive fields than a ResNet block (§3.1, §1)",
}


# ------------------------------------------------------------------------------------------------------- scoring
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


def _map_scores(maps: np.ndarray, boxes: np.ndarray, full: bool) -> dict[str, np.ndarray]:
    """Per image: energy and pointing hit; with ``full`` also coverage and the MaxBoxAcc hits per threshold."""
    out = {"energy": L.energy_in_box(maps, boxes), "pointing": L.pointing_game(maps, boxes).astype(bool)}
    if full:
        out["coverage"] = L.coverage(maps, boxes)
        out["maxboxacc"] = L.iou_curve(maps, boxes) >= L.BOXACC_IOU
    return out


def score_run(model: torch.nn.Module, name: str, split: Split, idx: torch.Tensor, batch_size: int = 100
              ) -> dict[str, np.ndarray]:
    """Per image of ``split[idx]``: ``correct`` and, per tap ``<tap>/<metric>``, the registered true-class Grad-CAM's
    scores (all metrics at stage outputs, energy and pointing at branches)."""
    mean, std = normalizer(name, torch.device("cpu"))
    groups = stage_taps(model)
    taps = [t for g in groups.values() for t in g.values()]
    outputs = {g["output"] for g in groups.values()}
    size = tuple(split.images.shape[-2:])
    parts: dict[str, list[np.ndarray]] = {}
    for s in range(0, len(idx), batch_size):
        sel = idx[s:s + batch_size]
        x = (split.images[sel].float() / 255.0 - mean) / std
        cams, logits = compute_cams(model, x, targets=split.labels[sel], taps=taps, return_logits=True)
        parts.setdefault("correct", []).append((logits.argmax(1) == split.labels[sel]).numpy())
        placed = register_all(model, cams, size)
        boxes = split.boxes[sel].numpy().astype(np.int64)
        for t in taps:
            for k, v in _map_scores(placed[t].double().numpy(), boxes, t in outputs).items():
                parts.setdefault(f"{t}/{k}", []).append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}


def prior_scores(boxes: np.ndarray, size: tuple[int, int], sigma: float) -> dict[str, np.ndarray]:
    """Scores of the image-blind baselines per image: the uniform map's energy (the box fraction) and every metric
    of the centred Gaussian prior (its peak is "always the centre")."""
    prior = L.centre_prior(size, sigma)
    maps = np.broadcast_to(prior, (len(boxes), *prior.shape))
    out = {f"prior/{k}": v for k, v in _map_scores(maps, boxes, True).items()}
    out["uniform/energy"] = np.array([L.box_fraction(b, size) for b in boxes])
    return out


def _score_job(job: tuple[str, int, str, list[int]], val: Split | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """Top-1/top-5 and per-image scores of one (model, seed) run; runs in a worker process when asked (one thread)."""
    name, seed, data_dir, index = job
    if val is None:
        torch.set_num_threads(1)
        val = load_split("val", data_dir)
    idx = torch.tensor(index, dtype=torch.long)
    model = create_model(name, pretrained=True, seed=seed)
    scores = score_run(model, name, val, idx)
    sub = Split(val.images[idx], val.labels[idx], [val.files[i] for i in idx], val.boxes[idx], val.wnids)
    return evaluate_split(model, sub, *normalizer(name, torch.device("cpu"))), scores


def _stored(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The per-image values as they are stored (float16 scores, booleans), so summaries use exactly those."""
    return {k: (v.astype(np.float16) if v.dtype.kind == "f" else v) for k, v in arrays.items()}


# -------------------------------------------------------------------------------------------------- statistics
def _r(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), DIGITS)


def _stat(metric: str) -> Callable[[list[np.ndarray]], np.ndarray]:
    """Weighted means -> the metric's value per resample (MaxBoxAcc: best threshold; top-1 in points)."""
    if metric == "maxboxacc":
        return lambda ms: ms[0].max(1)
    if metric == "top1":
        return lambda ms: 100.0 * ms[0]
    return lambda ms: ms[0]


def _diff_stat(metric: str) -> Callable[[list[np.ndarray]], np.ndarray]:
    one = _stat(metric)
    return lambda ms: one([ms[0]]) - one([ms[1]])


def _interval(est: float, samples: np.ndarray) -> dict:
    c = S.percentile_ci(samples, est, 0.95)
    return {"mean": _r(c.estimate), "low": _r(c.low), "high": _r(c.high)}


class _Weights:
    """Bootstrap weights per (bucket mask, count), drawn once and reused by every metric of that bucket."""

    def __init__(self, runs: int, labels: np.ndarray, n: int) -> None:
        self.runs, self.labels, self.n, self.cache = runs, labels, n, {}

    def get(self, key: str, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if key not in self.cache:
            sel = np.flatnonzero(mask)
            rw, iw = S.bootstrap_weights(self.runs, self.labels[sel], self.n, seed=0)
            self.cache[key] = (sel, rw, iw)
        return self.cache[key]


def _estimate(arrays: list[np.ndarray], stat: Callable, keep: np.ndarray | None, w: tuple) -> tuple[float, np.ndarray]:
    sel, rw, iw = w
    xs = [a[:, sel] for a in arrays]
    k = None if keep is None else keep[:, sel]
    r, m = xs[0].shape[:2]
    est = float(np.asarray(stat(S.weighted_means(xs, np.ones((1, r)), np.ones((1, m)), k)))[0])
    return est, np.asarray(stat(S.weighted_means(xs, rw, iw, k)), dtype=np.float64)


# ---------------------------------------------------------------------------------------------------------- ERF
def _erf_taps(model: torch.nn.Module) -> list[str]:
    groups = stage_taps(model)
    taps = [groups[s]["output"] for s in STAGES if s in groups]
    for s in ERF_STAGES:
        taps += [t for k, t in groups.get(s, {}).items() if k != "output"]
    return taps


def _erf_maps(name: str, seeds: list[int], trained: bool, taps: list[str], n_inputs: int, size: int
              ) -> tuple[dict[str, np.ndarray], dict[str, tuple[float, float]]]:
    """Per tap: per-input ERF contributions stacked over runs, (runs, inputs, H, W) float32, and the unit's centre.

    Every run sees the same noise inputs (seed 0), so runs and models are paired input by input.
    """
    per_tap: dict[str, list[np.ndarray]] = {t: [] for t in taps}
    centres: dict[str, tuple[float, float]] = {}
    for seed in seeds:
        if trained:
            model = create_model(name, pretrained=True, seed=seed)
        else:
            torch.manual_seed(seed)
            model = create_model(name)
        erfs = compute_erf(model, n_inputs, taps, size=size, seed=0, batch_size=8, keep_inputs=True)
        for t in taps:
            per_tap[t].append(erfs[t].per_input)
            centres[t] = erfs[t].centre
    return {t: np.stack(v) for t, v in per_tap.items()}, centres


def _erf_weights(runs: int, inputs: int, n: int) -> np.ndarray:
    """(n, runs * inputs) weights: runs resampled, then inputs (one draw of inputs shared by the drawn runs)."""
    rng = np.random.default_rng(0)
    rw = rng.multinomial(runs, np.full(runs, 1.0 / runs), size=n).astype(np.float64)
    iw = rng.multinomial(inputs, np.full(inputs, 1.0 / inputs), size=n).astype(np.float64)
    return (rw[:, :, None] * iw[:, None, :]).reshape(n, runs * inputs)


def _erf_summary(maps: np.ndarray, centre: tuple[float, float], weights: np.ndarray) -> tuple[dict, np.ndarray]:
    """Radii with intervals, area ratios and border flags of one tap's ERF over runs and inputs."""
    flat = maps.reshape(-1, *maps.shape[-2:]).astype(np.float64)
    raw = flat.mean(0)
    m = raw / raw.sum() if raw.sum() > 0 else raw
    metrics = erf_metrics(m, centre, raw)
    out = {"radius_99": _r(metrics["radius_99_square"]), "touches_border": bool(metrics["touches_border"]),
           "area_ratio_20_published": _r(metrics["area_ratio_20"]),
           "area_ratio_20_scale_free": _r(metrics["area_ratio_20_scale_free"]),
           "area_ratio_50_published": _r(metrics["area_ratio_50"]),
           "area_ratio_50_scale_free": _r(metrics["area_ratio_50_scale_free"])}
    samples50 = radius_samples(flat, centre, 0.5, weights)
    for level, key in ((0.5, "radius_50"), (0.9, "radius_90")):
        s = samples50 if level == 0.5 else radius_samples(flat, centre, level, weights)
        c = S.percentile_ci(s, metrics[f"radius_{int(level * 100)}_square"], 0.95)
        out[key], out[f"{key}_low"], out[f"{key}_high"] = _r(c.estimate), _r(c.low), _r(c.high)
    return out, samples50


# -------------------------------------------------------------------------------------------------------- run
def run(models: list[str] | None = None, limit: int | None = None, data_dir: str | Path | None = None,
        erf_inputs: int = ERF_INPUTS, erf_size: int = ERF_SIZE, seeds: list[int] | None = None,
        progress: bool = True, workers: int = 1, knockout_images: int | None = None
        ) -> tuple[dict, dict[str, np.ndarray]]:
    """Evaluate ``models`` (default: every embedded model with shipped weights) over their shipped runs.

    Returns (results dict, per-image arrays). Every model must have the same runs (seeds), so runs pair up.
    ``workers`` > 1 scores runs in that many processes (one thread each); the results are the same.
    ``knockout_images``: val images of the branch knock-out study (``knockout_study``; default its own size, or
    ``limit`` when that is smaller).
    """
    torch.manual_seed(0)
    names = models or [m for m in list_models("embedded") if embedded_seeds(m)]
    names = sorted(names, key=lambda n: (n != BASELINE, names.index(n)))  # the baseline first in every table
    if not names:
        raise SystemExit("error: no embedded model has shipped weights; train them with `python -m res2net.train`")
    run_seeds = seeds if seeds is not None else sorted(set.intersection(*(set(embedded_seeds(n)) for n in names)))
    if not run_seeds:
        raise SystemExit(f"error: {', '.join(names)} share no training run (seed); ship the same seeds for each")
    log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if progress else (lambda msg: None)
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    val = load_split("val", data_dir)
    idx = subset_indices(len(val), limit)
    size = tuple(int(v) for v in val.images.shape[-2:])
    boxes = val.boxes[idx].numpy().astype(np.int64)
    labels = val.labels[idx].numpy()
    buckets = np.array([L.size_bucket(b, size) for b in boxes])
    train_boxes = read_box_array(data_dir, "train")
    sigma = L.fit_centre_prior_sigma(train_boxes, size)
    # scores only: labels and boxes stay in the dataset, found again by image_index
    arrays: dict[str, np.ndarray] = {"image_index": idx.numpy(), "seeds": np.array(run_seeds)}
    arrays.update(prior_scores(boxes, size, sigma))

    entries: dict[str, dict] = {}
    jobs = [(name, seed) for name in names for seed in run_seeds]
    log(f"scoring {len(jobs)} runs on {len(idx)} val images with {workers} worker(s) ...")
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            done = list(pool.map(_score_job, [(n, s, str(data_dir), idx.tolist()) for n, s in jobs]))
    else:
        done = [_score_job((n, s, str(data_dir), idx.tolist()), val) for n, s in jobs]
    for name in names:
        runs = []
        for (n, seed), (acc, scores) in zip(jobs, done, strict=True):
            if n != name:
                continue
            card = read_model_card(name, seed) or {}
            runs.append({"seed": seed, "top1": acc["top1"], "top5": acc["top5"], "weights_sha256": card.get("sha256"),
                         "epochs": card.get("epochs")})
            for k, v in scores.items():
                arrays[f"{name}/seed{seed}/{k}"] = v
        card = read_model_card(name) or {}
        entries[name] = {"scale": get_spec(name).extra.get("scale", 1), "runs": runs, "run_count": len(runs),
                         "taps": stage_taps(create_model(name)), "params": card.get("params"),
                         "gmacs": card.get("gmacs")}
    arrays = _stored(arrays)
    res, paired = summarise(arrays, entries, names, buckets, labels)
    log("ERFs from noise inputs ...")
    res["erf"], erf_claims = _erf_study(names, run_seeds, erf_inputs, erf_size)
    res["claims"] = _claims(res, paired, entries, names, len(run_seeds), erf_claims)
    log("branch knock-out study ...")
    res.update(_knockout(res, arrays, names, run_seeds, data_dir, val, knockout_images, limit, log))
    res.update({
        "schema_version": SCHEMA_VERSION, "dataset": "tiny-imagenet-100 val", "images": int(len(idx)),
        "limit": limit,
        "cam": {"method": "gradcam", "target": "the true class",
                "placement": "registered: cell (i, j) of a tap at its receptive-field centre start + stride * (i, j) "
                             "(res2net.cam.register); bilinear between centres, edge values beyond",
                "boxes": "val_boxes.tsv, exclusive ends as res2net.data hands them out"},
        "metrics": METRICS,
        "size_buckets": {"small": f"box area < {L.SMALL_BELOW:.0%} of the image",
                         "medium": f"{L.SMALL_BELOW:.0%} to {L.LARGE_FROM:.0%}", "large": f">= {L.LARGE_FROM:.0%}"},
        "prior": {"sigma_px": sigma,
                  "fitted_on": f"{len(train_boxes)} train boxes (the objects' spread about the image centre)",
                  "pointing": "its peak is the image centre: 'always the centre'"},
        "intervals": f"95% percentile, hierarchical bootstrap: runs, then classes, then images within classes "
                     f"({BOOT_SUMMARY} resamples for single models, {BOOT_COMPARE} for comparisons; seed 0); "
                     f"ERFs: runs, then noise inputs",
        "verdict_layer": VERDICT_LAYER,
        "verdict_rule": VERDICT_RULE,
        "caveats": [f"{len(run_seeds)} training runs per model (seeds {run_seeds}); with so few runs the run level "
                    "of the bootstrap has few distinct resamples",
                    "maps are coarse at 64 px: layer3 is 4x4 cells (stride 16), layer4 2x2 (stride 32)",
                    "CAMs target the true class; the 'both correct' rows remove misclassified images",
                    f"ERFs from {erf_inputs} Gaussian-noise inputs of {erf_size} px; radii of maps flagged "
                    "'touches_border' are lower bounds"],
    })
    return res, arrays


def _knockout(res: dict, arrays: dict, names: list[str], seeds: list[int], data_dir: Path, val: Split,
              n_images: int | None, limit: int | None, log: Callable[[str], None]) -> dict:
    """The knock-out study and the scale sweep (``knockout_study``); their per-image scores join ``arrays``."""
    from res2net.evaluation import knockout_study as K

    n = n_images or min(limit or K.KNOCKOUT_IMAGES, K.KNOCKOUT_IMAGES)
    arrays.update(_stored(K.run_study(names, seeds, data_dir, val, VERDICT_LAYER, n, log=log)))
    return {"knockout": K.summarise_study(arrays, names, seeds, val, VERDICT_LAYER, MIN_EFFECT),
            "scale_sweep": K.scale_sweep(res, arrays, names, seeds, VERDICT_LAYER)}


def _kept(mask: np.ndarray, keep: np.ndarray | None) -> int:
    """Images a row rests on: the bucket's, or (for a subset such as 'both correct') the mean kept per run."""
    return int(mask.sum()) if keep is None else int(round(float(keep[:, mask].sum(1).mean())))


def _metric_arrays(arrays: dict, name: str, seeds: list[int], tap: str, metric: str) -> np.ndarray:
    key = "correct" if metric == "top1" else f"{tap}/{metric}"
    return np.stack([arrays[f"{name}/seed{s}/{key}"].astype(np.float64) for s in seeds])


def summarise(arrays: dict, entries: dict, names: list[str], buckets: np.ndarray, labels: np.ndarray,
              baseline: str | None = BASELINE) -> tuple[dict, dict]:
    """Tables: per-model metrics with intervals, baselines, paired comparisons and accuracy by object size.

    Also returns every paired comparison's (estimate, bootstrap samples, images) keyed by (model, stage, bucket,
    subset, metric), top-1 under stage "logits", for the claims, which judge some of them. Comparisons are to
    ``baseline`` when it is among ``names``.
    """
    seeds = [int(s) for s in arrays["seeds"]]
    wsum, wcmp = _Weights(len(seeds), labels, BOOT_SUMMARY), _Weights(len(seeds), labels, BOOT_COMPARE)
    masks = {b: (buckets == b) if b != "all" else np.ones(len(buckets), bool) for b in (*L.SIZE_BUCKETS, "all")}
    loc_rows, cmp_rows, acc_rows = [], [], []
    paired: dict[tuple[str, str, str, str, str], tuple[float, np.ndarray, int]] = {}
    baselines = {}
    for b, m in masks.items():
        bl = {"images": int(m.sum()), "uniform_energy": _r(arrays["uniform/energy"][m].astype(np.float64).mean())}
        for k in OUTPUT_METRICS:
            v = arrays[f"prior/{k}"][m].astype(np.float64)
            bl[f"prior_{k}"] = _r(v.mean(0).max() if k == "maxboxacc" else v.mean())
        baselines[b] = bl
    for name in names:
        e = entries[name]
        correct = _metric_arrays(arrays, name, seeds, "", "top1")
        est, smp = _estimate([correct], _stat("top1"), None, wsum.get("all", masks["all"]))
        e["top1"] = _interval(est, smp)
        for b, m in masks.items():
            est, smp = _estimate([correct], _stat("top1"), None, wsum.get(b, m))
            acc_rows.append({"model": name, "bucket": b, "kind": "top1", **_interval(est, smp), "n": int(m.sum()),
                             "runs": len(seeds)})
        for stage, groups in e["taps"].items():
            for group, tap in groups.items():
                metrics = OUTPUT_METRICS if group == "output" else BRANCH_METRICS
                for b, m in masks.items():
                    for subset in ("all", "correct"):
                        if subset == "correct" and group != "output":
                            continue
                        keep = correct.astype(bool) if subset == "correct" else None
                        for metric in metrics:
                            x = _metric_arrays(arrays, name, seeds, tap, metric)
                            est, smp = _estimate([x], _stat(metric), keep, wsum.get(b, m))
                            loc_rows.append({"model": name, "stage": stage, "tap": tap, "group": group,
                                             "subset": subset, "bucket": b, "metric": metric, **_interval(est, smp),
                                             "n": _kept(m, keep), "runs": len(seeds)})
    base = baseline if baseline in names else None
    for name in names:
        if base is None or name == base:
            continue
        ca = _metric_arrays(arrays, name, seeds, "", "top1")
        cb = _metric_arrays(arrays, base, seeds, "", "top1")
        for b, m in masks.items():
            est, smp = _estimate([ca, cb], _diff_stat("top1"), None, wcmp.get(b, m))
            paired[(name, "logits", b, "all", "top1")] = (est, smp, int(m.sum()))
            acc_rows.append({"model": name, "bucket": b, "kind": f"top1 difference to {base}",
                             **_interval(est, smp), "n": int(m.sum()), "runs": len(seeds)})
        both = (ca * cb).astype(bool)
        for stage in STAGES:
            ta, tb = entries[name]["taps"].get(stage, {}).get("output"), entries[base]["taps"].get(stage, {}).get(
                "output")
            if ta is None or tb is None:
                continue
            for b, m in masks.items():
                for subset, keep in (("all", None), ("both correct", both)):
                    for metric in OUTPUT_METRICS:
                        xa = _metric_arrays(arrays, name, seeds, ta, metric)
                        xb = _metric_arrays(arrays, base, seeds, tb, metric)
                        est, smp = _estimate([xa, xb], _diff_stat(metric), keep, wcmp.get(b, m))
                        paired[(name, stage, b, subset, metric)] = (est, smp, _kept(m, keep))
                        c = S.percentile_ci(smp, est, 0.95)
                        cmp_rows.append({"model": name, "baseline": base, "stage": stage, "subset": subset,
                                         "bucket": b, "metric": metric, "diff": _r(est), "low": _r(c.low),
                                         "high": _r(c.high), "n": _kept(m, keep), "runs": len(seeds)})
    return {"models": entries, "baselines": baselines, "localisation": loc_rows, "comparisons": cmp_rows,
            "accuracy_by_size": acc_rows, "baseline": base}, paired


def _erf_study(names: list[str], seeds: list[int], n_inputs: int, size: int, baseline: str | None = BASELINE
               ) -> tuple[list[dict], list[dict]]:
    """ERF rows (trained and random-init, every tap of ``_erf_taps``) and the samples the ERF claims need."""
    rows, claims = [], []
    weights = _erf_weights(len(seeds), n_inputs, BOOT_COMPARE)
    verdict_outputs: dict[str, tuple[np.ndarray, str]] = {}  # trained, VERDICT_LAYER output, per model
    for init in ("trained", "random init"):
        for name in names:
            model = create_model(name)
            taps = _erf_taps(model)
            maps, centres = _erf_maps(name, seeds, init == "trained", taps, n_inputs, size)
            samples = {}
            for t in taps:
                summary, samples[t] = _erf_summary(maps[t], centres[t], weights)
                stage = t.split(".")[0]
                rows.append({"model": name, "weights": init, "tap": t, "stage": stage,
                             "group": "output" if "branch" not in t else t.rsplit(".", 1)[1],
                             "branch": int(t.rsplit("branch", 1)[1]) if "branch" in t else None,
                             **summary, "inputs": n_inputs, "size": size, "runs": len(seeds)})
            groups = stage_taps(model)
            scale = get_spec(name).extra.get("scale") or _scale_of(groups)
            if init == "trained" and scale >= 3:
                b0, bl = groups[VERDICT_LAYER]["branch0"], groups[VERDICT_LAYER][f"branch{scale - 2}"]
                est = rows_value(rows, name, init, bl) - rows_value(rows, name, init, b0)
                claims.append({"id": f"erf-branches-{name}", "kind": "branch_erf", "model": name,
                               "layer": f"{b0} -> {bl}", "estimate": est, "samples": samples[bl] - samples[b0],
                               "size": size})
            if init == "trained" and VERDICT_LAYER in groups:
                tap = groups[VERDICT_LAYER]["output"]
                verdict_outputs[name] = (samples[tap], tap)
    if baseline in names:
        for name in names:
            if name == baseline:
                continue
            a, ta = verdict_outputs[name]
            b, tb = verdict_outputs[baseline]
            est = rows_value(rows, name, "trained", ta) - rows_value(rows, baseline, "trained", tb)
            claims.append({"id": f"erf-block-{name}", "kind": "block_erf", "model": name, "layer": ta,
                           "estimate": est, "samples": a - b, "size": size})
    return rows, claims


def _scale_of(groups: dict[str, dict[str, str]]) -> int:
    """A block's scale s from its taps: the number of branches (1 for a ResNet block)."""
    return max(sum(g.startswith("branch") for g in gs) for gs in groups.values())


def rows_value(rows: list[dict], name: str, init: str, tap: str, key: str = "radius_50") -> float:
    """The value of ``key`` in the ERF row of (model, weights, tap)."""
    for r in rows:
        if r["model"] == name and r["weights"] == init and r["tap"] == tap:
            return float(r[key])
    raise KeyError((name, init, tap))


def _claims(res: dict, paired: dict, entries: dict, names: list[str], runs: int, erf_claims: list[dict],
            model_caveat: str = "6-epoch models on 64 px images",
            map_caveat: str = f"{VERDICT_LAYER} maps are 4x4 cells at 64 px") -> list[dict]:
    """The Claims page's statements with numbers, intervals and Holm-corrected verdicts (confirmatory family).

    The localisation and accuracy claims judge comparisons ``summarise`` already bootstrapped (``paired``).
    """
    base = res["baseline"]
    if base is None:
        return []
    pending: list[dict] = []
    bl = res["baselines"]
    for name in names:
        if name == base:
            continue
        s = entries[name]["scale"]
        est, smp, n = paired[(name, "logits", "all", "all", "top1")]
        pending.append({"id": f"top1-{name}", "section": "accuracy", "paper": PAPER["accuracy"], "metric": "top1",
                        "model": name, "layer": "logits", "subset": "all", "family": "confirmatory",
                        "estimate": est, "samples": smp, "images": n,
                        "baseline_note": "", "caveat": f"s={s}; {model_caveat}"})
        ta = entries[name]["taps"][VERDICT_LAYER]["output"]
        for bucket, metrics in (("small", ("energy", "pointing")), ("large", ("coverage", "maxboxacc"))):
            for metric in metrics:
                for subset in ("all", "both correct"):
                    est, smp, n = paired[(name, VERDICT_LAYER, bucket, subset, metric)]
                    prior = bl[bucket][f"prior_{metric}"]
                    uni = bl[bucket]["uniform_energy"] if metric == "energy" else None
                    note = f"centred Gaussian prior: {prior}" + (f"; uniform map: {uni}" if uni is not None else "")
                    pending.append({
                        "id": f"{metric}-{bucket}-{name}" + ("-both-correct" if subset != "all" else ""),
                        "section": "localisation", "paper": PAPER[bucket], "metric": metric, "model": name,
                        "layer": f"{VERDICT_LAYER} output ({ta})", "subset": subset,
                        "family": "confirmatory" if subset == "all" else "exploratory", "estimate": est,
                        "samples": smp, "images": n, "baseline_note": note,
                        "caveat": f"{bucket} objects; {map_caveat}"})
    for c in erf_claims:
        pending.append({"id": c["id"], "section": "erf", "paper": PAPER[c["kind"]], "metric": "erf_radius",
                        "model": c["model"], "layer": c["layer"], "subset": "noise inputs", "family": "confirmatory",
                        "estimate": c["estimate"], "samples": c["samples"], "images": 0, "baseline_note": "",
                        "caveat": f"trained weights; ERF of the centre unit, {c['size']} px Gaussian noise"})
    confirm = [c for c in pending if c["family"] == "confirmatory"]
    decided = S.holm_verdicts([(c["estimate"], c["samples"], MIN_EFFECT[c["metric"]]) for c in confirm])
    for c, d in zip(confirm, decided, strict=True):
        c.update(low=d["low"], high=d["high"], level=d["level"], verdict=d["verdict"])
    out = []
    for c in pending:
        smp = c.pop("samples")
        raw = S.percentile_ci(smp, c["estimate"], 0.95)
        d = MIN_EFFECT[c["metric"]]
        if c["family"] == "exploratory":
            c.update(low=raw.low, high=raw.high, level=0.95, verdict=S.verdict(raw, d))
        c.update(metric=f"{c['metric']}: {METRICS[c['metric']]['label']}", low95=raw.low, high95=raw.high,
                 min_effect=d, runs=runs)
        for k in ("estimate", "low", "high", "low95", "high95"):
            c[k] = _r(c[k])
        c["level"] = round(float(c["level"]), 6)
        out.append(c)
    return out


# ------------------------------------------------------------------------------------------ dataset evaluation
# Any zoo model on any ``res2net.data.datasets`` dataset, one process or many under torchrun. Per-image rows are the
# stored truth (model, run, image id, class, correct, box area, every metric per tap); summaries, intervals and
# verdicts are computed from them by rank 0, so a new bucket or comparison never needs the models again.
DATASET_BATCH = 32
ROW_FIELDS = ("model", "run", "image_id", "class", "correct", "correct5", "box_area")


def union_masks(boxes: list[list[tuple[int, int, int, int]]], size: tuple[int, int]) -> np.ndarray:
    """(N, H, W) boolean masks: the union of each image's boxes (exclusive ends)."""
    h, w = size
    out = np.zeros((len(boxes), h, w), dtype=bool)
    for i, bs in enumerate(boxes):
        for x0, y0, x1, y1 in bs:
            out[i, y0:y1, x0:x1] = True
    return out


def _largest_components(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per (H, W) mask of a (K, H, W) stack: the (x0, y0, x1, y1) box of its largest 8-connected component and
    whether it has one. Ties go to the component cv2 labels first, as ``argmax`` over one mask's labels does.

    One component search over the masks' occupied rows stacked into one image, each mask's rows from an even row
    of the mask onto an even row of the stack (cv2 scans 2x2 blocks in raster order and numbers components by the
    block it meets first, so a mask's components keep their order) and a zero row before the next mask's."""
    import cv2

    k, h, w = masks.shape
    rows = masks.any(2)
    has = rows.any(1)
    top = rows.argmax(1) // 2 * 2
    bottom = h - rows[:, ::-1].argmax(1)
    pitch = np.where(has, bottom - top + 1, 0)
    pitch += pitch % 2
    start = np.concatenate([[0], np.cumsum(pitch)])
    out = np.zeros((k, 4))
    found = np.zeros(k, dtype=bool)
    per_call = 1 << 22  # pixels of the stacked image per call: a few MB of labels
    first = 0
    while first < k:
        last = max(first + 1, int(np.searchsorted(start, start[first] + per_call // w, "right")) - 1)
        last = min(last, k)
        big = np.zeros((int(start[last] - start[first]), w), dtype=np.uint8)
        for i in range(first, last):
            if has[i]:
                at = int(start[i] - start[first])
                big[at:at + bottom[i] - top[i]] = masks[i, top[i]:bottom[i]]
        # Grana's block-based algorithm: the same labels and stats as cv2's default here, found faster
        _, _, stats, _ = cv2.connectedComponentsWithStatsWithAlgorithm(big, 8, cv2.CV_32S, cv2.CCL_GRANA)
        x, y, bw, bh, area = stats[1:].T.astype(np.int64)
        which = first + np.searchsorted(start[first + 1:last + 1] - start[first], y, "right")
        y = y - (start[which] - start[first]) + top[which]
        order = np.lexsort((np.arange(len(area)), -area, which))  # per mask: largest area, then first label
        if len(order):
            pick = order[np.r_[True, which[order][1:] != which[order][:-1]]]
            m = which[pick]
            out[m] = np.stack([x[pick], y[pick], x[pick] + bw[pick], y[pick] + bh[pick]], 1)
            found[m] = True
        first = last
    return out, found


def _iou_curves(maps: np.ndarray, boxes: list[list[tuple[int, int, int, int]]]) -> np.ndarray:
    """(N, thresholds): per MaxBoxAcc threshold, the best IoU over an image's boxes of the box around the largest
    component of its min-max normalised map (``localize.iou_curve``, with one box per image); 0 for a flat map."""
    thr = L.BOXACC_THRESHOLDS
    n, h, w = maps.shape
    out = np.zeros((n, len(thr)))
    lo, hi = maps.min((1, 2)), maps.max((1, 2))
    ok = np.flatnonzero(hi > lo)
    if not len(ok):
        return out
    norm = (maps[ok] - lo[ok, None, None]) / (hi[ok] - lo[ok])[:, None, None]
    pred, found = _largest_components((norm[:, None] >= thr[None, :, None, None]).reshape(-1, h, w))
    pred, found = pred.reshape(len(ok), len(thr), 1, 4), found.reshape(len(ok), len(thr))
    most = max(len(boxes[i]) for i in ok)
    g = np.zeros((len(ok), 1, most, 4))  # padded with empty boxes, whose IoU is 0 and never the best
    for j, i in enumerate(ok):
        g[j, 0, :len(boxes[i])] = boxes[i]
    ix = np.clip(np.minimum(pred[..., 2], g[..., 2]) - np.maximum(pred[..., 0], g[..., 0]), 0, None)
    iy = np.clip(np.minimum(pred[..., 3], g[..., 3]) - np.maximum(pred[..., 1], g[..., 1]), 0, None)
    inter = ix * iy
    union = (pred[..., 2] - pred[..., 0]) * (pred[..., 3] - pred[..., 1]) + \
        (g[..., 2] - g[..., 0]) * (g[..., 3] - g[..., 1]) - inter
    iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0).max(2)
    out[ok] = np.where(found, iou, 0.0)
    return out


def multi_box_scores(maps: np.ndarray, boxes: list[list[tuple[int, int, int, int]]], full: bool,
                     union: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per image with one or more boxes: energy over the union of its boxes, pointing hit on any box; with ``full``
    also coverage of the union and the IoU curve of MaxBoxAcc (best box per threshold, as wsolevaluation).

    With one box per image these are ``localize``'s energy_in_box, pointing_game, coverage and iou_curve.
    ``union``: ``union_masks(boxes, size)`` when the caller scores several maps against the same boxes."""
    maps = np.asarray(maps, dtype=np.float64)
    if not np.isfinite(maps).all():
        raise ValueError("the maps contain NaN or infinite values")
    n, h, w = maps.shape
    union = union_masks(boxes, (h, w)) if union is None else union
    total = maps.sum((1, 2))
    inside = (maps * union).sum((1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {"energy": np.where(total > 0, inside / np.where(total > 0, total, 1.0), np.nan)}
    peaks = L._peaks(maps)  # (y, x) per map, NaN for a flat map: computed once for all of an image's boxes
    reach = L.POINTING_TOLERANCE * max(h, w)
    hit = np.zeros(n, dtype=bool)
    for i, bs in enumerate(boxes):
        py, px = peaks[i]
        if np.isnan(py):
            continue
        b = np.asarray(bs, dtype=np.float64)
        dx = np.maximum(np.maximum(b[:, 0] - px, 0), px - (b[:, 2] - 1))
        dy = np.maximum(np.maximum(b[:, 1] - py, 0), py - (b[:, 3] - 1))
        hit[i] = bool((np.hypot(dx, dy) <= reach).any())
    out["pointing"] = hit
    if full:
        peak = maps.max((1, 2))
        above = (maps >= L.COVERAGE_THRESHOLD * peak[:, None, None]) & (peak > 0)[:, None, None]
        out["coverage"] = (above & union).sum((1, 2)) / union.sum((1, 2))
        out["maxboxacc_iou"] = _iou_curves(maps, boxes)
    return out


_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _tap_plan(model: torch.nn.Module) -> dict[str, tuple[str, tuple, tuple]]:
    """Per tap scored: its column ``<stage>/<group>`` and its cells' placement (start, jump); found once per model,
    not per batch (both walk the module graph)."""
    if model not in _PLANS:
        groups = stage_taps(model)
        rf = {t: tap_rf_info(model, t) for gs in groups.values() for t in gs.values()}
        _PLANS[model] = {t: (f"{stage}/{g}", rf[t].start, rf[t].jump) for stage, gs in groups.items()
                         for g, t in gs.items()}
    return _PLANS[model]


def _model_stage(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor
                 ) -> tuple[dict[str, np.ndarray], list[tuple[str, torch.Tensor, tuple, tuple]], tuple[int, int]]:
    """The model's part of a batch: correct / correct5, each tap's raw Grad-CAM with its column and placement, and
    the image size (registration is left to the metric stage, which runs beside the next batch's model pass)."""
    plan = _tap_plan(model)
    x = normalize(images, model.spec, next(model.parameters()).device)
    cams, logits = compute_cams(model, x, targets=targets, taps=list(plan), return_logits=True)
    top5 = logits.topk(min(5, logits.shape[1]), 1).indices
    out = {"correct": (top5[:, 0] == targets).numpy(), "correct5": (top5 == targets[:, None]).any(1).numpy()}
    return out, [(col, cams[t], start, jump) for t, (col, start, jump) in plan.items()], tuple(images.shape[-2:])


def _metric_stage(out: dict[str, np.ndarray], cams: list[tuple[str, torch.Tensor, tuple, tuple]],
                  size: tuple[int, int], boxes: list[list[tuple[int, int, int, int]]]) -> dict[str, np.ndarray]:
    """The CPU part of a batch (no model): each tap's map placed on the image (``cam.register``) and scored
    against the boxes with every metric."""
    out = dict(out)
    union = union_masks(boxes, size)
    for col, cam, start, jump in cams:
        m = register_maps(cam, start, jump, size)
        for k, v in multi_box_scores(m, boxes, col.endswith("/output"), union).items():
            out[f"{col}/{k}"] = v
    return out


def score_batch(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor,
                boxes: list[list[tuple[int, int, int, int]]]) -> dict[str, np.ndarray]:
    """One batch of uint8 images at the model's input size: correct / correct5 and, per ``<stage>/<group>``, the
    registered true-class Grad-CAM's scores (all metrics at stage outputs, energy and pointing at branches)."""
    return _metric_stage(*_model_stage(model, images, targets), boxes)


class _Items(torch.utils.data.Dataset):
    """Dataset images by position, decoded in loader workers; an unreadable image comes back as its error."""

    def __init__(self, ds: object, side: int) -> None:
        self.ds, self.side = ds, side

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, list, str]:
        from res2net.data.datasets import ImageError

        try:
            img, boxes = self.ds.load(i, self.side)
            return i, img, boxes, ""
        except ImageError as e:
            return i, None, [], str(e)


def _as_list(batch: list) -> list:
    return batch


def _batch_rows(model: torch.nn.Module, ds: object, items: list, name: str, run_label: str
                ) -> Callable[[], dict[str, np.ndarray]]:
    """Run the model on one batch now; return the rest (metrics, row assembly) as a call that needs no model:
    scores for decodable images of a class the model knows, a reason for the others."""
    classes = {w: k for k, w in enumerate(model.spec.classes)}
    ok = [(i, img, b) for i, img, b, err in items if not err and ds.records[i].label in classes]
    reason = {i: err or f"class {ds.records[i].label} is not among {name}'s outputs" for i, _, _, err in items}
    staged = None
    if ok:
        images = torch.stack([img for _, img, _ in ok])
        targets = torch.tensor([classes[ds.records[i].label] for i, _, _ in ok])
        staged = _model_stage(model, images, targets)
    side = model.spec.input_size

    def finish() -> dict[str, np.ndarray]:
        scores = _metric_stage(*staged, [b for _, _, b in ok]) if staged is not None else {}
        pos = {i: k for k, (i, _, _) in enumerate(ok)}
        n = len(items)
        rows: dict[str, np.ndarray] = {
            "model": np.array([name] * n), "run": np.array([run_label] * n),
            "image_id": np.array([ds.records[i].image_id for i, *_ in items]),
            "class": np.array([ds.records[i].label for i, *_ in items]),
            "skipped": np.array(["" if i in pos else reason[i] for i, *_ in items]),
            "box_area": np.array([union_masks([b], (side, side)).mean() if i in pos else np.nan
                                  for i, _, b, _ in items]),
            "boxes": np.array([";".join(" ".join(map(str, bx)) for bx in b) for _, _, b, _ in items]),
        }
        for key, v in scores.items():
            full = np.full((n, *v.shape[1:]), np.nan if v.dtype.kind == "f" else False, dtype=v.dtype)
            full[[k for k, (i, *_) in enumerate(items) if i in pos]] = v
            rows[key] = full
        return rows

    return finish


def evaluate_dataset(ds: object, jobs: list[tuple[str, str, Callable[[], torch.nn.Module]]], shard_dir: Path,
                     batch_size: int = DATASET_BATCH, workers: int = 2, ctx: object = None,
                     progress: bool = True) -> None:
    """Score every (model, run) job on this rank's share of ``ds``'s fixed batches, writing one shard file per
    batch; batches any rank already finished are skipped (resume)."""
    import cv2

    from res2net.evaluation.distributed import Context, batch_ranges, shard_batches

    ctx = ctx or Context()
    batches = batch_ranges(len(ds), batch_size)
    cv2_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # the metrics thread overlaps the model pass: one core for each, not both for OpenCV
    try:
        _evaluate_jobs(ds, jobs, shard_dir, batches, shard_batches(len(batches), ctx.rank, ctx.world), workers, ctx,
                       progress)
    finally:
        cv2.setNumThreads(cv2_threads)


def _evaluate_jobs(ds: object, jobs: list, shard_dir: Path, batches: list, mine: list[int], workers: int,
                   ctx: object, progress: bool) -> None:
    """``evaluate_dataset``'s loop over the jobs: this rank's unfinished batches, decoded in loader workers."""
    from res2net.evaluation.distributed import Progress, done_batches

    for name, run_label, build in jobs:
        folder = shard_dir / name / run_label
        todo = [b for b in mine if b not in done_batches(folder)]
        if not todo:
            continue
        model = build().to(ctx.device)
        side = model.spec.input_size
        bar = Progress(sum(len(batches[b]) for b in todo), progress and ctx.main, f"{name} ({run_label})")
        loader = torch.utils.data.DataLoader(
            _Items(ds, side), batch_sampler=[list(batches[b]) for b in todo], num_workers=workers,
            collate_fn=_as_list, persistent_workers=False)
        # the metrics of batch k (numpy/OpenCV, which release the GIL) run in a thread while the model runs
        # batch k + 1; at most one batch waits, and an error in either surfaces here
        with ThreadPoolExecutor(1) as pool:
            pending = None
            for b, items in zip(todo, loader, strict=True):
                finish = _batch_rows(model, ds, items, name, run_label)
                if pending is not None:
                    pending.result()
                pending = pool.submit(_write_batch, folder, ctx, b, finish, bar, len(items))
            if pending is not None:
                pending.result()


def _write_batch(folder: Path, ctx: object, batch: int, finish: Callable, bar: object, n: int) -> None:
    from res2net.evaluation.distributed import write_shard

    write_shard(folder, ctx.rank, ctx.world, batch, finish())
    bar.update(n)


def merge_rows(shard_dir: Path, jobs: list[tuple[str, str]], n_images: int) -> dict[str, np.ndarray]:
    """All jobs' rows in (job, image) order from the shard files, metric columns aligned (NaN where a model has
    no such tap); every image must be present once per job."""
    from res2net.evaluation.distributed import read_shards

    parts = []
    for name, run_label in jobs:
        shards = read_shards(shard_dir / name / run_label)
        cols = [shards[b] for b in sorted(shards)]
        got = sum(len(c["image_id"]) for c in cols)
        if got != n_images:
            raise RuntimeError(f"{name} ({run_label}): the shard files in {shard_dir} hold {got} of {n_images} "
                               "images; rerun the same command to finish the missing batches")
        parts.append({k: np.concatenate([c[k] for c in cols]) for k in cols[0]})
    keys = sorted({k for p in parts for k in p})
    out = {}
    for k in keys:
        ref = next(p[k] for p in parts if k in p)
        out[k] = np.concatenate([p[k] if k in p else np.full((len(p["image_id"]), *ref.shape[1:]), np.nan)
                                 for p in parts])
    return out


def summarise_rows(rows: dict[str, np.ndarray], classes: list[str], baseline: str | None, side: int,
                   entries: dict) -> tuple[dict, dict]:
    """Results tables (and the paired samples the claims judge) from merged per-image rows, over the images every
    run scored, without running any model: new buckets or comparisons start here."""
    names = list(dict.fromkeys(rows["model"].tolist()))
    jobs = list(dict.fromkeys(zip(rows["model"].tolist(), rows["run"].tolist(), strict=True)))
    scored = rows["skipped"] == ""
    ids = sorted(set.intersection(*(set(rows["image_id"][(rows["model"] == n) & (rows["run"] == r) & scored])
                                    for n, r in jobs)))
    first = (rows["model"] == jobs[0][0]) & (rows["run"] == jobs[0][1])
    where = {i: k for k, i in enumerate(rows["image_id"][first])}
    sel0 = np.flatnonzero(first)[[where[i] for i in ids]]
    cls = {w: k for k, w in enumerate(classes)}
    labels = np.array([cls[c] for c in rows["class"][sel0]])
    area = rows["box_area"][sel0].astype(np.float64)
    buckets = np.where(area < L.SMALL_BELOW, "small", np.where(area >= L.LARGE_FROM, "large", "medium"))
    arrays: dict[str, np.ndarray] = {"seeds": np.arange(max(sum(1 for n, _ in jobs if n == m) for m in names))}
    for name in names:
        for r, (_, run_label) in enumerate([j for j in jobs if j[0] == name]):
            m = (rows["model"] == name) & (rows["run"] == run_label)
            pos = {i: k for k, i in enumerate(rows["image_id"][m])}
            sel = np.flatnonzero(m)[[pos[i] for i in ids]]
            arrays[f"{name}/seed{r}/correct"] = rows["correct"][sel]
            for stage, groups in entries[name]["taps"].items():
                for group, tap in groups.items():
                    for metric in OUTPUT_METRICS if group == "output" else BRANCH_METRICS:
                        col = f"{stage}/{group}/{'maxboxacc_iou' if metric == 'maxboxacc' else metric}"
                        v = rows[col][sel]
                        arrays[f"{name}/seed{r}/{tap}/{metric}"] = v >= L.BOXACC_IOU if metric == "maxboxacc" else v
    prior, sigmas = rows_prior(rows, sel0, side)
    arrays.update(prior)
    arrays = _stored(arrays)
    res, paired = summarise(arrays, entries, names, buckets, labels, baseline=baseline)
    res["prior"] = {"sigma_px": float(np.mean(sigmas)), "sigmas_px": sigmas,
                    "fitted_on": "the other half of the images' boxes (2-fold by position, never the boxes scored)",
                    "pointing": "its peak is the image centre: 'always the centre'"}
    res["images"] = len(ids)
    return res, paired


def parse_boxes(text: str) -> list[tuple[int, int, int, int]]:
    """The ``boxes`` column of a row ("x0 y0 x1 y1;..." at the model's input size) as a list of boxes."""
    return [tuple(int(v) for v in part.split()) for part in text.split(";") if part]


def rows_prior(rows: dict, sel: np.ndarray, side: int) -> tuple[dict[str, np.ndarray], list[float]]:
    """The image-blind baselines per image (uniform map's energy = union fraction; the centred Gaussian prior's
    scores), the prior of each half of the images (even / odd position) fitted on the other half's boxes."""
    boxes = [parse_boxes(t) for t in rows["boxes"][sel]]
    half = np.arange(len(boxes)) % 2
    sigmas = [L.fit_centre_prior_sigma(np.array([b for i in np.flatnonzero(half != h) for b in boxes[i]]), side)
              if (half != h).any() else L.fit_centre_prior_sigma(np.array([b for bs in boxes for b in bs]), side)
              for h in (0, 1)]
    parts: dict[str, list] = {}
    for h in (0, 1):
        prior = L.centre_prior(side, sigmas[h])
        idx = np.flatnonzero(half == h)
        for s in range(0, len(idx), 256):
            chunk = [boxes[i] for i in idx[s:s + 256]]
            maps = np.broadcast_to(prior, (len(chunk), side, side))
            for k, v in multi_box_scores(maps, chunk, True).items():
                parts.setdefault(k, []).append((idx[s:s + 256], v))
    out = {}
    for k, pieces in parts.items():
        first = pieces[0][1]
        arr = np.zeros((len(boxes), *first.shape[1:]), dtype=first.dtype)
        for where, v in pieces:
            arr[where] = v
        key = "maxboxacc" if k == "maxboxacc_iou" else k
        out[f"prior/{key}"] = arr >= L.BOXACC_IOU if k == "maxboxacc_iou" else arr
    out["uniform/energy"] = rows["box_area"][sel].astype(np.float64)
    return out, sigmas


def _jobs(names: list[str], weights: str, seeds: list[int] | None) -> list[tuple[str, str, Callable]]:
    """(model, run label, builder) per run: released weights, a checkpoint file, or random init (seed 0)."""
    jobs = []
    for name in names:
        spec = get_spec(name)
        if weights == "pretrained" and spec.family == "embedded":
            for s in seeds if seeds is not None else embedded_seeds(name):
                jobs.append((name, f"seed{s}", lambda n=name, s=s: create_model(n, pretrained=True, seed=s)))
        elif weights == "pretrained":
            jobs.append((name, "pretrained", lambda n=name: create_model(n, pretrained=True)))
        elif weights == "random":
            def build(n: str = name) -> torch.nn.Module:
                torch.manual_seed(0)
                return create_model(n)
            jobs.append((name, "random-init", build))
        else:
            jobs.append((name, Path(weights).name, lambda n=name: create_model(n, pretrained=weights)))
    return jobs


def _skip_kind(reason: str) -> str:
    if "is not among" in reason:
        return "class not among the model's outputs"
    if "is not in the class list" in reason:
        return "class not in the dataset's class list"
    if "cannot be decoded" in reason:
        return "unreadable image"
    return reason.split(" for ")[0].split(" (")[0]


def run_dataset(kind: str, root: str | Path, models: list[str], out: Path, weights: str = "pretrained",
                seeds: list[int] | None = None, limit: int | None = None, batch_size: int = DATASET_BATCH,
                workers: int = 2, device: str = "auto", baseline: str | None = None, progress: bool = True,
                erf_inputs: int = 0, erf_size: int = ERF_SIZE) -> dict | None:
    """Evaluate zoo ``models`` on a dataset, as one process or as one rank of a torchrun job; rank 0 merges the
    shard files into ``<out>.npz`` (per-image rows) and ``<out>.json`` (summaries, claims) and returns the results."""
    from res2net.data.datasets import open_dataset
    from res2net.evaluation.distributed import setup, teardown

    unknown = [m for m in models if m not in list_models()]
    if unknown:
        raise SystemExit(f"error: unknown model(s) {', '.join(unknown)}; available: {', '.join(list_models())}")
    sides = {get_spec(n).input_size for n in models}
    if len(sides) != 1:
        raise SystemExit(f"error: {', '.join(models)} have different input sizes ({sorted(sides)}); rows are paired "
                         "per image at one size, so evaluate models of one input size together")
    ctx = setup(device)
    try:
        ds = open_dataset(kind, root)
        keep = subset_indices(len(ds), limit).tolist()
        ds.records = [ds.records[i] for i in keep]
        jobs = _jobs(models, weights, seeds)
        shard_dir = out.with_suffix(".shards")
        _check_manifest(shard_dir, {"dataset": ds.describe, "images": len(ds), "batch_size": batch_size,
                                    "first": ds.records[0].image_id, "last": ds.records[-1].image_id},
                        ctx.main)
        if ctx.main and progress:
            print(f"{ds.describe}: {len(ds)} images ({len(ds.skipped)} skipped while indexing), {len(jobs)} runs, "
                  f"{ctx.world} process(es), batches of {batch_size}; shards in {shard_dir}", file=sys.stderr)
        evaluate_dataset(ds, jobs, shard_dir, batch_size, workers, ctx, progress)
        ctx.barrier()
        if not ctx.main:
            return None
        return _finish_dataset(ds, kind, jobs, shard_dir, out, weights, limit, batch_size, baseline, erf_inputs,
                               erf_size, ctx.device.type)
    finally:
        teardown(ctx)


def _check_manifest(shard_dir: Path, manifest: dict, write: bool) -> None:
    """Shards from a run with other images or batches cannot be resumed: refuse them instead of mixing rows."""
    path = shard_dir / "manifest.json"
    if path.is_file():
        old = json.loads(path.read_text())
        if old != manifest:
            diff = ", ".join(f"{k}: {old.get(k)!r} there, {v!r} now" for k, v in manifest.items() if old.get(k) != v)
            raise SystemExit(f"error: {shard_dir} holds shards of another run ({diff}); use another --out or "
                             "delete that folder")
    elif write:
        shard_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
        os.replace(tmp, path)


def _finish_dataset(ds: object, kind: str, jobs: list, shard_dir: Path, out: Path, weights: str,
                    limit: int | None, batch_size: int, baseline: str | None, erf_inputs: int = 0,
                    erf_size: int = ERF_SIZE, device_type: str = "cpu") -> dict:
    """Rank 0: merge the shards, write the per-image rows and the results file."""
    rows = merge_rows(shard_dir, [(n, r) for n, r, _ in jobs], len(ds))
    names = list(dict.fromkeys(n for n, _, _ in jobs))
    if baseline is None:
        baseline = next((n for n in names if get_spec(n).family in ("resnet", "embedded")
                         and get_spec(n).extra.get("scale", 1) == 1), None)
    entries = {}
    for name in names:
        model = create_model(name)
        runs = []
        for r, (_, run_label, _) in enumerate([j for j in jobs if j[0] == name]):
            m = (rows["model"] == name) & (rows["run"] == run_label) & (rows["skipped"] == "")
            runs.append({"seed": r, "run": run_label, "top1": _r(100.0 * rows["correct"][m].mean()),
                         "top5": _r(100.0 * rows["correct5"][m].mean()), "weights_sha256": None})
        spec = get_spec(name)
        taps = stage_taps(model)
        scale = spec.extra.get("scale") or _scale_of(taps)
        entries[name] = {"scale": scale, "runs": runs,
                         "run_count": len(runs), "taps": stage_taps(model), "params": None, "gmacs": None,
                         "weights": weights, "input_size": spec.input_size}
    side = get_spec(names[0]).input_size
    res, paired = summarise_rows(rows, ds.classes, baseline, side, entries)
    judged = [n for n in names if VERDICT_LAYER in entries[n]["taps"]]
    erf_claims: list[dict] = []
    res["erf"] = []
    if erf_inputs > 0 and weights == "pretrained" and res["baseline"] in judged:
        seeds = sorted({int(r[4:]) if r.startswith("seed") else 0 for n, r, _ in jobs})
        print(f"ERFs from {erf_inputs} noise inputs of {erf_size} px ...", file=sys.stderr, flush=True)
        res["erf"], erf_claims = _erf_study(judged, seeds, erf_inputs, erf_size, res["baseline"])
    res["claims"] = (_claims(res, paired, entries, judged, max(e["run_count"] for e in entries.values()), erf_claims,
                             model_caveat=f"{weights} weights, {side} px inputs",
                             map_caveat=f"{VERDICT_LAYER} maps are {side // 16}x{side // 16} cells at {side} px")
                     if res["baseline"] in judged else [])
    skipped = {**ds.skipped, **{i: s for i, s in zip(rows["image_id"].tolist(), rows["skipped"].tolist(),
                                                        strict=True) if s}}
    reasons: dict[str, int] = {}
    for s in skipped.values():
        reasons[_skip_kind(s)] = reasons.get(_skip_kind(s), 0) + 1
    res.update({
        "schema_version": SCHEMA_VERSION, "dataset": f"{ds.name}: {ds.describe}", "limit": limit,
        "weights": weights, "batch_size": batch_size,
        "environment": {"torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
                        "device": device_type},
        "skipped": {"count": len(skipped), "reasons": dict(sorted(reasons.items())),
                    "examples": dict(sorted(skipped.items())[:10])},
        "cam": {"method": "gradcam", "target": "the true class",
                "placement": "registered: cell (i, j) of a tap at its receptive-field centre start + stride * (i, j) "
                             "(res2net.cam.register); bilinear between centres, edge values beyond",
                "boxes": f"every box of an image (energy and coverage over their union, pointing and MaxBoxAcc on "
                         f"any box); images resized to {side}x{side} with no crop, boxes scaled outward"},
        "metrics": METRICS,
        "size_buckets": {"small": f"union of boxes < {L.SMALL_BELOW:.0%} of the image",
                         "medium": f"{L.SMALL_BELOW:.0%} to {L.LARGE_FROM:.0%}", "large": f">= {L.LARGE_FROM:.0%}"},
        "intervals": f"95% percentile, hierarchical bootstrap: runs, then classes, then images within classes "
                     f"({BOOT_SUMMARY} resamples for single models, {BOOT_COMPARE} for comparisons; seed 0)",
        "verdict_layer": VERDICT_LAYER,
        "verdict_rule": VERDICT_RULE,
        "caveats": [f"{weights} weights, one run per model: intervals cover images and classes, not training runs"
                    if weights != "pretrained" or all(get_spec(n).family != "embedded" for n in names)
                    else "embedded models: runs are training seeds",
                    f"{len(skipped)} images skipped (see 'skipped')",
                    f"ERFs from {erf_inputs} Gaussian-noise inputs of {erf_size} px, released weights only; radii of "
                    "maps flagged 'touches_border' are lower bounds" if res["erf"] else
                    "no ERFs in this run (--erf-inputs 0, weights other than the released ones, or no baseline)"],
    })
    out.parent.mkdir(parents=True, exist_ok=True)
    save_image_scores(image_scores_path(out), rows)
    out.write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
    return res


def main(argv: list[str] | None = None) -> int:
    """Command line: write the results JSON (sorted keys, no timestamps) and the per-image scores beside it."""
    ap = argparse.ArgumentParser(prog="python -m res2net.evaluate", description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=None, help="embedded model names (default: all shipped)")
    ap.add_argument("--seeds", nargs="*", type=int, default=None, help="training runs (default: all shared ones)")
    ap.add_argument("--limit", type=int, default=None, help="evaluate N evenly spaced val images (default: all)")
    ap.add_argument("--data", default=None, help="tiny-imagenet-100 folder (default: $RES2NET_DATA or ../shared/data)")
    ap.add_argument("--erf-inputs", type=int, default=ERF_INPUTS,
                    help="Gaussian-noise inputs of the ERF study (0: none; dataset runs: released weights only)")
    ap.add_argument("--erf-size", type=int, default=ERF_SIZE, help="side of the noise inputs in px")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--workers", type=int, default=1, help="processes scoring runs in parallel (one thread each)")
    ap.add_argument("--knockout-images", type=int, default=None,
                    help="val images of the branch knock-out study (default: knockout_study.KNOCKOUT_IMAGES)")
    ap.add_argument("--out", default=None, help=f"results JSON (default {DEFAULT_OUT.name}; with --dataset "
                                                "assets/results/<dataset>.json); the per-image file goes beside it")
    ds = ap.add_argument_group("dataset evaluation (any zoo model; under torchrun: one rank per process)")
    ds.add_argument("--dataset", choices=("tiny-imagenet-100", "imagenet-val", "folder"), default=None,
                    help="evaluate --models on this dataset at --data (see res2net.data.datasets for the layouts)")
    ds.add_argument("--weights", default="pretrained",
                    help="pretrained (released or embedded weights), random (init, seed 0) or a checkpoint file")
    ds.add_argument("--batch-size", type=int, default=DATASET_BATCH,
                    help="images per batch; fixed batches make results independent of the process count")
    ds.add_argument("--loader-workers", type=int, default=2, help="image-decoding worker processes per rank")
    ds.add_argument("--device", default="auto", help="auto (this rank's local GPU, else CPU), cpu, cuda or cuda:N")
    ds.add_argument("--baseline", default=None, help="model the others are compared with (default: the ResNet)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.limit is not None and args.limit < 1:
        ap.error(f"--limit must be at least 1, got {args.limit}")
    if args.dataset is not None:
        if not args.models or args.data is None:
            ap.error("--dataset needs --models (zoo names) and --data (the dataset folder)")
        out = Path(args.out or DEFAULT_OUT.with_name(f"{args.dataset}.json"))
        from res2net.data.tiny_imagenet import DataError
        from res2net.models.weights import WeightsError

        try:
            res = run_dataset(args.dataset, args.data, args.models, out, args.weights, args.seeds, args.limit,
                              args.batch_size, args.loader_workers, args.device, args.baseline,
                              erf_inputs=args.erf_inputs, erf_size=args.erf_size)
        except (DataError, WeightsError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        if res is not None:
            for name, r in res["models"].items():
                print(f"{name}: top-1 {r['top1']['mean']:.2f} [{r['top1']['low']:.2f}, {r['top1']['high']:.2f}]")
            print(f"{res['images']} images scored, {res['skipped']['count']} skipped; wrote {out} and "
                  f"{image_scores_path(out)}")
        return 0
    args.out = args.out or str(DEFAULT_OUT)
    res, arrays = run(args.models, args.limit, args.data or default_data_dir(), args.erf_inputs, args.erf_size,
                      args.seeds, workers=args.workers, knockout_images=args.knockout_images)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
    save_image_scores(image_scores_path(out), arrays)
    for name, r in res["models"].items():
        t = r["top1"]
        print(f"{name}: top-1 {t['mean']:.2f} [{t['low']:.2f}, {t['high']:.2f}] over {r['run_count']} runs")
    for c in res["claims"] + res["knockout"]["claims"]:
        print(f"{c['verdict']:>26}  {c['id']}: {c['estimate']} [{c['low']}, {c['high']}]")
    print(f"wrote {out} and {image_scores_path(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
