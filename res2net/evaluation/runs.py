"""The one evaluation pipeline: dataset -> fixed batches -> shards -> per-image rows -> summary -> steps -> results.

An evaluation is a dataset, the (model, run) jobs scored on it, and the steps on top of the rows. Two kinds exist:

* the embedded family (``family_evaluation``): Tiny-ImageNet-100 val in the split's order, every embedded model with
  each of its training runs; the steps are the ERF study, the claims and the knock-out study with the scale sweep.
  Its results ship in ``assets/results``; its per-image file holds per-run arrays (``<model>/seed<k>/<tap>/<metric>``,
  the knock-out study's beside them).
* a dataset run (``dataset_evaluation``): any zoo models on any ``res2net.data.datasets`` dataset; the steps are the
  ERF study (released weights only) and the claims; its per-image file holds the rows themselves.

Both are scored by ``scoring.evaluate_dataset`` as one process or as the ranks of a torchrun job (each rank its own
batches, written to shard files; a killed run resumes), and rank 0 alone merges the rows and writes the results.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from res2net.data.datasets import EvalDataset, open_dataset, tiny_imagenet
from res2net.data.tiny_imagenet import DataError, Split, default_data_dir, load_split, read_box_array
from res2net.evaluation import knockout_study as K
from res2net.evaluation.claims import PLACEMENT_RULE, claims, inference_info, placement_sensitivity
from res2net.evaluation.controls_table import control_rows
from res2net.evaluation.distributed import setup, teardown
from res2net.evaluation.erf_study import erf_study
from res2net.evaluation.judging import Pending
from res2net.evaluation.protocol import (
    BASELINE,
    DATASET_BATCH,
    FAMILY_BATCH,
    MIN_EFFECT,
    PLACEMENT_PROBES,
    VERDICT_LAYER,
    even_indices,
    results_header,
    scale_of,
    stage_taps,
)
from res2net.evaluation.results import CLAIM_FIELDS, image_scores_path, save_image_scores
from res2net.evaluation.scoring import Job, evaluate_dataset, merge_rows, probe_images, set_placement_probes
from res2net.evaluation.summary import parse_boxes, size_buckets, stored, summarise_rows
from res2net.metrics import boxes as L
from res2net.metrics.controls import contains_centre
from res2net.metrics.table import rounded as _r
from res2net.models.factory import create_model
from res2net.models.weights import embedded_seeds, read_model_card
from res2net.models.zoo import get_spec, list_models

__all__ = ["Evaluation", "family_evaluation", "dataset_evaluation", "evaluate", "family_dataset", "model_jobs"]

POINTING_BASELINE = "its peak is the image centre: 'always the centre'"


@dataclass
class Evaluation:
    """One evaluation: the dataset (records in scoring order), the jobs, where results go and the steps' settings.

    ``family``: the embedded family's evaluation (``data_dir`` then holds Tiny-ImageNet-100 for the prior's train
    boxes and the knock-out study; ``seeds`` its shared training runs)."""

    ds: EvalDataset
    jobs: list[Job]
    out: Path
    batch_size: int
    limit: int | None
    erf_inputs: int
    erf_size: int
    weights: str = "pretrained"
    baseline: str | None = None
    family: bool = False
    data_dir: Path | None = None
    seeds: list[int] | None = None
    knockout_images: int | None = None
    knockout_means: int | None = None

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys(n for n, _, _ in self.jobs))

    @property
    def side(self) -> int:
        return get_spec(self.names[0]).input_size


# ------------------------------------------------------------------------------------------------ the two kinds
def model_jobs(names: list[str], weights: str, seeds: list[int] | None) -> list[Job]:
    """(model, run label, builder) per run: released weights (embedded: one run per training seed), a checkpoint
    file, or random init (seed 0)."""
    jobs: list[Job] = []
    for name in names:
        spec = get_spec(name)
        if weights == "pretrained" and spec.embedded:
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


def family_dataset(data_dir: str | Path, limit: int | None) -> EvalDataset:
    """Tiny-ImageNet-100 val in the split's (class-sorted) order, or ``limit`` evenly spaced images of it; each
    record's ``source`` is its index in the split."""
    ds = tiny_imagenet(data_dir, "val")
    ds.records.sort(key=lambda r: int(r.source))
    if ds.skipped:
        raise DataError(f"{data_dir}: {len(ds.skipped)} val images have no usable box (e.g. "
                        f"{next(iter(ds.skipped.items()))}); the embedded family is scored on every val image")
    ds.records = [ds.records[i] for i in even_indices(len(ds.records), limit).tolist()]
    return ds


def family_evaluation(models: list[str] | None, limit: int | None, data_dir: str | Path | None, out: Path,
                      erf_inputs: int, erf_size: int, seeds: list[int] | None = None,
                      knockout_images: int | None = None, batch_size: int = FAMILY_BATCH,
                      knockout_means: int | None = None) -> Evaluation:
    """The embedded family (default: every embedded model with shipped weights) over the runs all of them share."""
    embedded = list_models("embedded")
    other = [m for m in models or [] if m not in embedded]
    if other:
        raise SystemExit(f"error: {', '.join(other)} are not embedded models ({', '.join(embedded)}); evaluate other "
                         "zoo models with --dataset")
    names = models or [m for m in embedded if embedded_seeds(m)]
    if not names:
        raise SystemExit("error: no embedded model has shipped weights; train them with `python -m res2net.train`")
    names = sorted(names, key=lambda n: (n != BASELINE, names.index(n)))  # the baseline first in every table
    shared = sorted(set.intersection(*(set(embedded_seeds(n)) for n in names)))
    missing = {n: sorted(set(seeds) - set(embedded_seeds(n))) for n in names} if seeds is not None else {}
    if any(missing.values()):
        raise SystemExit("error: no shipped weights for " + "; ".join(f"{n} seed(s) {s}" for n, s in missing.items()
                                                                     if s) + f" (shared seeds: {shared})")
    run_seeds = seeds if seeds is not None else shared
    if not run_seeds:
        raise SystemExit(f"error: {', '.join(names)} share no training run (seed); ship the same seeds for each")
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    return Evaluation(family_dataset(data_dir, limit), model_jobs(names, "pretrained", run_seeds), out, batch_size,
                      limit, erf_inputs, erf_size, baseline=BASELINE if BASELINE in names else None, family=True,
                      data_dir=data_dir, seeds=list(run_seeds), knockout_images=knockout_images,
                      knockout_means=knockout_means)


def dataset_evaluation(kind: str, root: str | Path, models: list[str], out: Path, weights: str = "pretrained",
                       seeds: list[int] | None = None, limit: int | None = None, batch_size: int = DATASET_BATCH,
                       baseline: str | None = None, erf_inputs: int = 0, erf_size: int = 256) -> Evaluation:
    """Zoo ``models`` (one input size) on a dataset, records sorted by image id."""
    unknown = [m for m in models if m not in list_models()]
    if unknown:
        raise SystemExit(f"error: unknown model(s) {', '.join(unknown)}; available: {', '.join(list_models())}")
    sides = {get_spec(n).input_size for n in models}
    if len(sides) != 1:
        raise SystemExit(f"error: {', '.join(models)} have different input sizes ({sorted(sides)}); rows are paired "
                         "per image at one size, so evaluate models of one input size together")
    if baseline is not None and baseline not in models:
        raise SystemExit(f"error: --baseline {baseline} is not among --models ({', '.join(models)})")
    ds = open_dataset(kind, root)
    ds.records = [ds.records[i] for i in even_indices(len(ds), limit).tolist()]
    if baseline is None:
        baseline = next((n for n in models if (get_spec(n).family == "resnet" or get_spec(n).embedded)
                         and get_spec(n).scale == 1), None)
    return Evaluation(ds, model_jobs(models, weights, seeds), out, batch_size, limit, erf_inputs, erf_size, weights,
                      baseline)


# ----------------------------------------------------------------------------------------------------- the run
def evaluate(ev: Evaluation, loader_workers: int = 2, device: str = "auto", progress: bool = True) -> dict | None:
    """Score ``ev``'s jobs (this process's share under torchrun), then on rank 0 merge the rows, run the steps and
    write ``ev.out`` (results) and the per-image file beside it; returns the results on rank 0, None elsewhere."""
    ctx = setup(device)
    try:
        ds = ev.ds
        shard_dir = ev.out.with_suffix(".shards")
        _check_manifest(shard_dir, {"dataset": ds.describe, "images": len(ds), "batch_size": ev.batch_size,
                                    "first": ds.records[0].image_id, "last": ds.records[-1].image_id}, ctx.main)
        if ctx.main and progress:
            print(f"{ds.describe}: {len(ds)} images ({len(ds.skipped)} skipped while indexing), {len(ev.jobs)} runs, "
                  f"{ctx.world} process(es), batches of {ev.batch_size}; shards in {shard_dir}", file=sys.stderr)
        evaluate_dataset(ds, ev.jobs, shard_dir, ev.batch_size, loader_workers, ctx, progress)
        ctx.barrier()
        if not ctx.main:
            return None
        log = (lambda msg: print(msg, file=sys.stderr, flush=True)) if progress else (lambda msg: None)
        res, per_image = _finish(ev, merge_rows(shard_dir, [(n, r) for n, r, _ in ev.jobs], len(ds)),
                                 ctx.device.type, log)
        ev.out.parent.mkdir(parents=True, exist_ok=True)
        save_image_scores(image_scores_path(ev.out), per_image)
        ev.out.write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
        return res
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


def _finish(ev: Evaluation, rows: dict[str, np.ndarray], device_type: str, log: Callable[[str], None]
            ) -> tuple[dict, dict[str, np.ndarray]]:
    """Rank 0: from the merged rows, the summary, the steps on top (ERF study, claims, knock-out study) and the
    header; returns (results, per-image arrays to store)."""
    names, side = ev.names, ev.side
    runs = {n: [r for m, r, _ in ev.jobs if m == n] for n in names}
    taps = {n: stage_taps(create_model(n)) for n in names}
    entries = {n: (_family_entry if ev.family else _dataset_entry)(n, runs[n], taps[n], rows, ev.weights)
               for n in names}
    sigma = None
    if ev.family:  # the prior's width from the train split's boxes
        train_boxes = read_box_array(ev.data_dir, "train")
        sigma = L.fit_centre_prior_sigma(train_boxes, side)
    res, paired, arrays, sel0, sigmas = summarise_rows(rows, ev.ds.classes, entries, runs, ev.baseline, side, sigma)
    cls = {w: k for k, w in enumerate(ev.ds.classes)}
    labels = np.array([cls[c] for c in rows["class"][sel0]], dtype=np.int64)
    buckets = size_buckets(rows["box_area"][sel0].astype(np.float64))
    centre = np.array([bool(contains_centre(np.array(parse_boxes(t)), side).any()) for t in rows["boxes"][sel0]])
    arrays.update({"class_index": labels, "contains_centre": centre})
    res["controls"] = control_rows(arrays, entries, runs, labels, buckets, centre)
    if ev.family:
        res["prior"] = {"sigma_px": sigma, "fitted_on": f"{len(train_boxes)} train boxes (the objects' spread about "
                                                        "the image centre)", "pointing": POINTING_BASELINE}
        # the first run's rows are the records in order, so its row positions are record positions
        arrays.update({"image_index": np.array([ev.ds.records[i].source for i in sel0], dtype=np.int64),
                       "seeds": np.array(ev.seeds)})
    else:
        res["prior"] = {"sigma_px": float(np.mean(sigmas)), "sigmas_px": sigmas,
                        "fitted_on": "the other half of the images' boxes (2-fold by position, never the boxes "
                                     "scored)", "pointing": POINTING_BASELINE}

    judged = [n for n in names if VERDICT_LAYER in taps[n]]
    res["erf"], erf_claims = [], []
    if ev.erf_inputs > 0 and ev.weights == "pretrained" and (ev.family or res["baseline"] in judged):
        seeds = ev.seeds or sorted({int(r[4:]) if r.startswith("seed") else 0 for _, r, _ in ev.jobs})
        log(f"ERFs from {ev.erf_inputs} noise inputs of {ev.erf_size} px ...")
        own = None
        if ev.family:  # the models' own val images: evenly spaced over the split, every class represented
            val = load_split("val", ev.data_dir)
            own = val.images[even_indices(len(val), ev.erf_inputs)]
        res["erf"], erf_claims = erf_study(judged, seeds, ev.erf_inputs, ev.erf_size, res["baseline"], own)
    epochs = {r.get("epochs") for e in entries.values() for r in e["runs"]}
    models_note = (f"{epochs.pop()}-epoch models on {side} px images" if ev.family and len(epochs) == 1
                   else f"{ev.weights} weights, {side} px inputs")
    ko_val, ko_pending = None, []
    if ev.family:
        log("branch knock-out study ...")
        ko_val, ko_pending = _knockout_scores(ev, arrays, log)
    every = (claims(res, arrays, entries, judged, runs, labels, buckets, centre, erf_claims,
                    model_caveat=models_note,
                    map_caveat=f"{VERDICT_LAYER} maps are {side // 16}x{side // 16} cells at {side} px",
                    extra=ko_pending) if res["baseline"] in judged else [])
    res["claims"] = [{k: v for k, v in c.items() if k in CLAIM_FIELDS} for c in every]
    sensitivity = placement_sensitivity(res["claims"], res, arrays, entries, judged, runs, labels, buckets, centre,
                                        ko_pending)
    if sensitivity:
        res["placement_sensitivity"] = {"rule": PLACEMENT_RULE, "probes": PLACEMENT_PROBES,
                                        "centres": _effective_centres(ev), "rows": sensitivity}
    res["inference"] = inference_info(min(len(r) for r in runs.values()),
                                      sum(c["family"] == "confirmatory" for c in res["claims"]), bool(res["controls"]))
    if ev.family:
        res.update(_knockout_summary(ev, res, arrays, ko_val, [c for c in every if c["section"] == "knockout"]))
        res.update(_family_header(ev, res["erf"]))
        return res, arrays
    res.update(_dataset_header(ev, rows, res["erf"], device_type))
    return res, rows


def _effective_centres(ev: Evaluation) -> dict[str, dict[str, dict[str, list[float]]]]:
    """Each run's effective row and column centres at the verdict layer's output, as the scoring found them (the
    same probe images, so the same numbers)."""
    out: dict[str, dict[str, dict[str, list[float]]]] = {}
    for name, run, build in ev.jobs:
        model = build()
        placed = set_placement_probes(model, probe_images(ev.ds, model.spec.input_size))
        if "effective_centre" in placed:
            c = placed["effective_centre"]
            out.setdefault(name, {})[run] = {"rows": [_r(v) for v in c.rows], "cols": [_r(v) for v in c.cols]}
    return out


def _top(rows: dict[str, np.ndarray], name: str, run: str, key: str) -> tuple[int, int]:
    """(hits, images) of a run's ``correct`` or ``correct5`` column over the images it scored."""
    m = (rows["model"] == name) & (rows["run"] == run) & (rows["skipped"] == "")
    return int(rows[key][m].sum()), int(m.sum())


def _family_entry(name: str, runs: list[str], taps: dict, rows: dict[str, np.ndarray], weights: str) -> dict:
    """A family model's entry: its training runs with top-1/top-5 (points, 2 decimals) and their model cards."""
    out = []
    for run in runs:
        seed = int(run[len("seed"):])
        card = read_model_card(name, seed) or {}
        (c1, n), (c5, _) = _top(rows, name, run, "correct"), _top(rows, name, run, "correct5")
        out.append({"seed": seed, "top1": round(100.0 * c1 / n, 2), "top5": round(100.0 * c5 / n, 2),
                    "weights_sha256": card.get("sha256"), "epochs": card.get("epochs")})
    card = read_model_card(name) or {}
    return {"scale": get_spec(name).scale, "runs": out, "run_count": len(out), "taps": taps,
            "params": card.get("params"), "gmacs": card.get("gmacs")}


def _dataset_entry(name: str, runs: list[str], taps: dict, rows: dict[str, np.ndarray], weights: str) -> dict:
    """A dataset run's model entry: its runs (``seed``: the run's position among them) with top-1/top-5."""
    out = []
    for position, run in enumerate(runs):
        (c1, n), (c5, _) = _top(rows, name, run, "correct"), _top(rows, name, run, "correct5")
        out.append({"seed": position, "run": run, "top1": _r(100.0 * (c1 / n)), "top5": _r(100.0 * (c5 / n)),
                    "weights_sha256": None})
    spec = get_spec(name)
    return {"scale": spec.scale or scale_of(taps), "runs": out, "run_count": len(out), "taps": taps,
            "params": None, "gmacs": None, "weights": weights, "input_size": spec.input_size}


def _knockout_scores(ev: Evaluation, arrays: dict[str, np.ndarray], log: Callable[[str], None]
                     ) -> tuple[Split, list[Pending]]:
    """The knock-out study's per-image scores (joining ``arrays``, as stored) and its confirmatory claims for the
    one family."""
    val = load_split("val", ev.data_dir)
    n = ev.knockout_images or min(ev.limit or K.KNOCKOUT_IMAGES, K.KNOCKOUT_IMAGES)
    arrays.update(stored(K.run_study(ev.names, ev.seeds, ev.data_dir, val, VERDICT_LAYER, n,
                                     ev.knockout_means or K.MEAN_IMAGES, log=log)))
    return val, K.knockout_pending(arrays, ev.names, ev.seeds, val, MIN_EFFECT)


def _knockout_summary(ev: Evaluation, res: dict, arrays: dict[str, np.ndarray], val: Split, judged: list[dict]
                      ) -> dict:
    """The knock-out study (rows, interactions, its judged claims) and the scale sweep (``knockout_study``)."""
    return {"knockout": K.summarise_study(arrays, ev.names, ev.seeds, val, VERDICT_LAYER, MIN_EFFECT, judged),
            "scale_sweep": K.scale_sweep(res, arrays, ev.names, ev.seeds, VERDICT_LAYER)}


def _erf_caveat(ev: Evaluation, erf_rows: list[dict], released_only: bool) -> str:
    if not erf_rows:
        return "no ERFs in this run (--erf-inputs 0, weights other than the released ones, or no baseline)"
    return (f"ERFs from {ev.erf_inputs} Gaussian-noise inputs of {ev.erf_size} px"
            + (", released weights only" if released_only else "")
            + " (the rows; interpolated radii); the ERF claims are trained minus random init per run, also on "
              "noise at the model's input size" + (" and its own val images" if ev.family else "")
            + "; radii of maps flagged 'touches_border' are lower bounds")


def _family_header(ev: Evaluation, erf_rows: list[dict]) -> dict:
    side, runs = ev.side, len(ev.seeds)
    return results_header(
        "tiny-imagenet-100 val", ev.limit, "val_boxes.tsv, exclusive ends as res2net.data hands them out", "box area",
        [f"{runs} training runs per model (seeds {ev.seeds}): the confirmatory claims are about the architecture "
         f"(t over runs, Satterthwaite df); the tables' bootstraps over {runs} runs understate the run level",
         f"maps are coarse at {side} px: layer3 is {side // 16}x{side // 16} cells (stride 16), layer4 "
         f"{side // 32}x{side // 32} (stride 32)",
         "CAMs target the true class; the 'both correct' rows remove misclassified images",
         _erf_caveat(ev, erf_rows, False)],
        erf_intervals=True)


def _dataset_header(ev: Evaluation, rows: dict[str, np.ndarray], erf_rows: list[dict], device_type: str) -> dict:
    side = ev.side
    skipped = {**ev.ds.skipped, **{i: s for i, s in zip(rows["image_id"].tolist(), rows["skipped"].tolist(),
                                                           strict=True) if s}}
    reasons: dict[str, int] = {}
    for s in skipped.values():
        reasons[_skip_kind(s)] = reasons.get(_skip_kind(s), 0) + 1
    family_runs = ev.weights == "pretrained" and any(get_spec(n).embedded for n in ev.names)
    res = results_header(
        f"{ev.ds.name}: {ev.ds.describe}", ev.limit,
        f"every box of an image (energy and coverage over their union, pointing and MaxBoxAcc on any box); images "
        f"resized to {side}x{side} with no crop, boxes scaled outward", "union of boxes",
        ["embedded models: runs are training seeds" if family_runs else
         f"{ev.weights} weights, one run per model: intervals cover images and classes, not training runs",
         f"{len(skipped)} images skipped (see 'skipped')",
         _erf_caveat(ev, erf_rows, True)],
        erf_intervals=False)
    res.update({"weights": ev.weights, "batch_size": ev.batch_size,
                "environment": {"torch": torch.__version__, "cudnn": torch.backends.cudnn.version(),
                                "device": device_type},
                "skipped": {"count": len(skipped), "reasons": dict(sorted(reasons.items())),
                            "examples": dict(sorted(skipped.items())[:10])}})
    return res


def _skip_kind(reason: str) -> str:
    if "is not among" in reason:
        return "class not among the model's outputs"
    if "is not in the class list" in reason:
        return "class not in the dataset's class list"
    if "cannot be decoded" in reason:
        return "unreadable image"
    return reason.split(" for ")[0].split(" (")[0]
