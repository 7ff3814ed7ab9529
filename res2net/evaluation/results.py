"""The evaluation results file: its schema version, what every field means, loading and validation.

``python -m res2net.evaluate`` writes two files side by side: ``<name>.json`` (summaries, baselines, claims with
verdicts) and ``<name>.npz`` (the per-image scores they were computed from, so that any bucket, interval or new
comparison can be recomputed without running a model; labels and boxes are not copied, they are read from the
dataset by ``image_index``). A dataset run (``--dataset``, any zoo model, one process or torchrun) writes per-image
rows instead (``ROW_COLUMNS``), with the boxes it scored against, and a few more fields (``DATASET_FIELDS``).
This module owns these formats; the dashboard and the tests read them only through ``load_results`` and
``load_image_scores``.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ["SCHEMA_VERSION", "FIELDS", "STUDY_FIELDS", "CLAIM_FIELDS", "DATASET_FIELDS", "ROW_COLUMNS",
           "ResultsError", "load_results", "validate_results", "save_image_scores", "load_image_scores",
           "image_scores_path"]

SCHEMA_VERSION = 2

FIELDS: dict[str, str] = {
    "schema_version": "integer; this file's format (see res2net.evaluation.results.SCHEMA_VERSION)",
    "dataset": "dataset name and split, e.g. tiny-imagenet-100 val",
    "images": "number of images scored (all of the split unless limit is set)",
    "limit": "null, or N evenly spaced images (a subset run)",
    "models": "per model: scale, the runs (seed, top-1/top-5, weights sha256), the run count, top-1 with its interval",
    "cam": "CAM method, target class, how maps are placed on the image (registration by receptive-field centres)",
    "metrics": "per metric: what it measures, whether it is concentration or coverage, its minimum effect",
    "size_buckets": "object-size buckets by box area / image area, fixed before any result",
    "baselines": "per bucket: scores of maps that ignore the image (uniform map, centred Gaussian prior)",
    "prior": "the centred Gaussian prior: its sigma in pixels, fitted on the training split's boxes",
    "localisation": "rows: model, stage, tap, subset, bucket, metric, mean, low, high, n images (for a subset: the "
                    "mean kept per run), runs",
    "comparisons": "rows: Res2Net minus ResNet, paired by seed and image, per stage, bucket, subset and metric",
    "accuracy_by_size": "rows: top-1 per model and bucket, and the paired difference to the baseline",
    "erf": "rows: ERF radii (50/90% with intervals, 99%), area ratios (published and scale-free), border flags",
    "claims": "the paper's statements, each with its metric, numbers, interval, family-wise interval and verdict",
    "verdict_rule": "how a verdict follows from an interval, the minimum effects, and the correction for many claims",
    "intervals": "how intervals are computed (hierarchical bootstrap: runs, then classes, then images)",
    "verdict_layer": "the stage whose output the localisation and ERF verdicts use, fixed in code before looking",
    "caveats": "what limits the reading of these numbers (map resolution, runs, image size)",
}

# Fields only a dataset run (``python -m res2net.evaluate --dataset ...``) writes; its ``.npz`` holds per-image rows
# (see ROW_COLUMNS) instead of the embedded run's per-run arrays.
DATASET_FIELDS: dict[str, str] = {
    "weights": "which weights every model ran with: pretrained (released or embedded), random-init, or a file name",
    "batch_size": "images per fixed batch (batches, not processes, decide which images share a forward pass)",
    "environment": "torch and cuDNN versions and the device type the rows were computed with (not the process "
                   "count, which does not change them)",
    "skipped": "images not scored: count, count per reason (no annotation, unreadable image, class not among the "
               "model's outputs, ...) and up to ten examples",
}

ROW_COLUMNS: dict[str, str] = {
    "model": "zoo name", "run": "pretrained, random-init, a checkpoint name, or seed<k> for embedded runs",
    "image_id": "the image's file stem (ImageNet) or path under images/ (image folder)",
    "class": "the image's class (a wnid for ImageNet)", "skipped": "empty when scored, else why not",
    "correct": "top-1 hit", "correct5": "top-5 hit",
    "box_area": "area of the union of the image's boxes / image area (the size bucket's input)",
    "boxes": "the boxes at the model's input size, 'x0 y0 x1 y1' (exclusive ends) joined by ';'",
    "<stage>/<group>/<metric>": "a tap's score: group 'output' or 'branch<k>'; energy, pointing (all taps), "
                                "coverage and maxboxacc_iou (the IoU per MaxBoxAcc threshold; outputs); NaN "
                                "where the model has no such tap or the image was skipped",
}

# Written by the embedded family's evaluation (``knockout_study``); absent from evaluations of other models.
STUDY_FIELDS: dict[str, str] = {
    "knockout": "branch knock-out study: hypothesis (stated before any run), lesion (mean ablation over "
                "mean_images train images, total effect), harm and interaction definitions, score_tap, images, runs, "
                "intervals, min_effect; rows (model, scale, block, stype, branch, label, metric, bucket, harm with "
                "low/high, n, runs); interactions (harm on large minus harm on small per branch, with interval and "
                "verdict); claims (confirmatory: branch s-2 minus branch 0 at the verdict block, Holm-corrected); "
                "resnet_reference (the ResNet's single 3x3 removed). Per-image scores in the .npz under knockout/",
    "scale_sweep": "rows per scale s (model, top1, energy, coverage at the verdict stage's output with a Student-t "
                   "95% interval over runs and the per-run values, erf_radius_50 with its interval, paper_top1); "
                   "top1_rises_with_s and paper_top1_rises_with_s; where the paper's numbers come from",
}

CLAIM_FIELDS: dict[str, str] = {
    "id": "stable identifier",
    "section": "accuracy, localisation or erf",
    "paper": "the paper's statement and where it is made",
    "metric": "the metric tested and why it fits the statement",
    "model": "the Res2Net model compared with the baseline",
    "layer": "tap or stage the verdict uses",
    "subset": "which images (all, or the ones both models classify correctly)",
    "family": "confirmatory (in the Holm-corrected family) or exploratory (unadjusted 95% interval)",
    "estimate": "the difference (Res2Net minus baseline, or larger branch minus smaller)",
    "low95": "unadjusted 95% interval, low end", "high95": "unadjusted 95% interval, high end",
    "low": "interval the verdict uses (Holm-adjusted level for the confirmatory family), low end",
    "high": "interval the verdict uses, high end", "level": "coverage level of that interval",
    "min_effect": "the minimum meaningful effect d of the metric",
    "verdict": "supported / contradicted / no meaningful difference / inconclusive",
    "runs": "training runs per model the claim rests on", "images": "images the claim rests on",
    "baseline_note": "what the image-blind baselines score on the same images",
    "caveat": "what limits this claim",
}


class ResultsError(ValueError):
    """A results file that is not one, or of another schema version; the message says what is wrong."""


def validate_results(res: object, origin: str = "results") -> dict:
    """Check that ``res`` is a results dict of this schema version; return it."""
    if not isinstance(res, Mapping):
        raise ResultsError(f"{origin} is not a JSON object of evaluation results")
    version = res.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ResultsError(f"{origin} has schema version {version!r}; this version of res2scope reads version "
                           f"{SCHEMA_VERSION} (regenerate it with `python -m res2net.evaluate`)")
    missing = [k for k in FIELDS if k not in res]
    if missing:
        raise ResultsError(f"{origin} lacks the fields {', '.join(missing)}")
    for c in res["claims"]:
        lacking = [k for k in CLAIM_FIELDS if k not in c]
        if lacking:
            raise ResultsError(f"{origin}: claim {c.get('id', '?')!r} lacks {', '.join(lacking)}")
    return dict(res)


def load_results(path: str | os.PathLike) -> dict:
    """Read and validate a results JSON file."""
    p = Path(path)
    try:
        res = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ResultsError(f"{p} cannot be read as JSON: {e}") from e
    return validate_results(res, str(p))


def image_scores_path(results_path: str | os.PathLike) -> Path:
    """The per-image scores file beside a results JSON file."""
    return Path(results_path).with_suffix(".npz")


def save_image_scores(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Write named arrays to a compressed ``.npz`` that is byte-identical for identical arrays (fixed zip dates)."""
    p = Path(path)
    tmp = p.with_suffix(".npz.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, buf.getvalue())
    os.replace(tmp, p)


def load_image_scores(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read the per-image scores written by ``save_image_scores`` (no pickles)."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
