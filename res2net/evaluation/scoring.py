"""Scoring: every (model, run) job over a dataset's fixed batches, one shard file of per-image rows per batch.

Per batch the model stage (forward, true-class Grad-CAM at every scored tap, top-1/top-5) runs on the rank's
device; the metric stage (each map placed on the image by its cells' receptive-field centres and scored against
the image's boxes with every metric) runs in a thread beside the next batch's model stage. Rows are the stored
truth: model, run, image id, class, boxes, box area, correct / correct5 and ``<stage>/<group>/<metric>`` per tap.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from res2net.analysis.cam import compute_cams
from res2net.data.datasets import EvalDataset, RecordError
from res2net.evaluation import distributed as D
from res2net.evaluation.control_scores import placement_scores, tap_scores
from res2net.evaluation.protocol import (
    CONTROL_COLUMN,
    DATASET_BATCH,
    PLACEMENT_PROBES,
    SENSITIVITY_PLACEMENTS,
    stage_taps,
)
from res2net.geometry.cell_centres import CellCentres, centres_for
from res2net.geometry.receptive_field import tap_rf_info
from res2net.geometry.registration import register_maps, register_maps_between
from res2net.metrics import boxes as L
from res2net.models.preprocessing import normalize

__all__ = ["score_batch", "ImageItems", "evaluate_dataset", "merge_rows", "Job", "set_placement_probes",
           "probe_images"]

Job = tuple[str, str, Callable[[], torch.nn.Module]]  # (model, run label, builder of the run's model)


_PLANS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_OTHER_PLACEMENTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def probe_images(ds: EvalDataset, side: int, n: int = PLACEMENT_PROBES) -> torch.Tensor:
    """Up to ``n`` evenly spaced decodable images of ``ds`` (uint8, side x side): the same on every rank and in
    every resumed run, so every process places the maps alike."""
    idx = sorted({int(i) for i in np.linspace(0, len(ds) - 1, min(n, len(ds))).round()})
    got = []
    for i in idx:
        try:
            got.append(ds.load(i, side)[0])
        except RecordError:
            continue
    if not got:
        raise RecordError(f"none of the {len(idx)} probe images of {ds.name} could be decoded")
    return torch.stack(got)


def set_placement_probes(model: torch.nn.Module, images: torch.Tensor) -> dict[str, CellCentres]:
    """Give ``model`` the other placements of its control column's tap (effective centres over ``images``, uint8
    at the model's input size; half-pixel): its batches then also score the maps placed those ways."""
    col = next((t for t, (c, _, _) in _tap_plan(model).items() if c == CONTROL_COLUMN), None)
    if col is None:  # no verdict layer (its claims are not made): nothing to place another way
        _OTHER_PLACEMENTS[model] = {}
        return {}
    x = normalize(images, model.spec, next(model.parameters()).device)
    with torch.no_grad():
        grid = tuple(_grid(model, col, x[:1]))
    size = tuple(images.shape[-2:])
    _OTHER_PLACEMENTS[model] = {r: centres_for(model, col, grid, size, r, x) for r in SENSITIVITY_PLACEMENTS}
    return _OTHER_PLACEMENTS[model]


def _grid(model: torch.nn.Module, tap: str, x: torch.Tensor) -> tuple[int, int]:
    from res2net.models.taps import TapCapture

    with TapCapture(model, [tap], stop_at_last=True) as cap:
        cap.run(x)
    return tuple(cap.activations[tap].shape[-2:])


def _tap_plan(model: torch.nn.Module) -> dict[str, tuple[str, tuple, tuple]]:
    """Per tap scored: its column ``<stage>/<group>`` and its cells' placement (start, jump); found once per model,
    not per batch (both walk the module graph)."""
    if model not in _PLANS:
        groups = stage_taps(model)
        rf = {t: tap_rf_info(model, t) for gs in groups.values() for t in gs.values()}
        _PLANS[model] = {t: (f"{stage}/{g}", rf[t].start, rf[t].jump) for stage, gs in groups.items()
                         for g, t in gs.items()}
    return _PLANS[model]


Staged = tuple[dict[str, np.ndarray], list[tuple[str, torch.Tensor, tuple, tuple]], tuple[int, int],
               dict[str, CellCentres]]


def _model_stage(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor) -> Staged:
    """The model's part of a batch: correct / correct5, each tap's raw Grad-CAM with its column and placement, the
    image size and the control column's other placements (registration is left to the metric stage, which runs
    beside the next batch's model pass)."""
    plan = _tap_plan(model)
    x = normalize(images, model.spec, next(model.parameters()).device)
    cams, logits = compute_cams(model, x, targets=targets, taps=list(plan), return_logits=True)
    top5 = logits.topk(min(5, logits.shape[1]), 1).indices
    out = {"correct": (top5[:, 0] == targets).numpy(), "correct5": (top5 == targets[:, None]).any(1).numpy()}
    return (out, [(col, cams[t], start, jump) for t, (col, start, jump) in plan.items()], tuple(images.shape[-2:]),
            _OTHER_PLACEMENTS.get(model, {}))


def _metric_stage(out: dict[str, np.ndarray], cams: list[tuple[str, torch.Tensor, tuple, tuple]],
                  size: tuple[int, int], others: dict[str, CellCentres], boxes: list[list[tuple[int, int, int, int]]]
                  ) -> dict[str, np.ndarray]:
    """The CPU part of a batch (no model): each tap's map placed on the image (``cam.register``) and scored
    against the boxes with every metric; the control column also at its other placements
    (``<column>/<placement>/<metric>``)."""
    out = dict(out)
    union = L.union_masks(boxes, size)
    for col, cam, start, jump in cams:
        m = register_maps(cam, start, jump, size)
        for k, v in tap_scores(m, boxes, col.endswith("/output"), union, col == CONTROL_COLUMN).items():
            out[f"{col}/{k}"] = v
        if col == CONTROL_COLUMN:
            for rule, centres in others.items():
                for k, v in placement_scores(register_maps_between(cam, centres, size), boxes, union).items():
                    out[f"{col}/{rule}/{k}"] = v
    return out


def score_batch(model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor,
                boxes: list[list[tuple[int, int, int, int]]]) -> dict[str, np.ndarray]:
    """One batch of uint8 images at the model's input size: correct / correct5 and, per ``<stage>/<group>``, the
    registered true-class Grad-CAM's scores (all metrics at stage outputs, energy and pointing at branches)."""
    return _metric_stage(*_model_stage(model, images, targets), boxes)


class ImageItems(torch.utils.data.Dataset):
    """Dataset images by position, decoded in loader workers; an unreadable image comes back as its error."""

    def __init__(self, ds: EvalDataset, side: int) -> None:
        self.ds, self.side = ds, side

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, list, str]:
        try:
            img, boxes = self.ds.load(i, self.side)
            return i, img, boxes, ""
        except RecordError as e:
            return i, None, [], str(e)


def _as_list(batch: list) -> list:
    return batch


def _skipped_rows(n: int, like: np.ndarray) -> np.ndarray:
    """``n`` rows of a score column as a skipped image has them: NaN (False for a hit column), ``like``'s dtype."""
    return np.full((n, *like.shape[1:]), np.nan if like.dtype.kind == "f" else False, dtype=like.dtype)


def _batch_rows(model: torch.nn.Module, ds: EvalDataset, items: list, name: str, run_label: str
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
            "box_area": np.array([L.union_masks([b], (side, side)).mean() if i in pos else np.nan
                                  for i, _, b, _ in items]),
            "boxes": np.array([";".join(" ".join(map(str, bx)) for bx in b) for _, _, b, _ in items]),
        }
        for key, v in scores.items():
            full = _skipped_rows(n, v)
            full[[k for k, (i, *_) in enumerate(items) if i in pos]] = v
            rows[key] = full
        return rows

    return finish


def evaluate_dataset(ds: EvalDataset, jobs: list[Job], shard_dir: Path, batch_size: int = DATASET_BATCH,
                     loader_workers: int = 2, ctx: D.Context | None = None, progress: bool = True) -> None:
    """Score every (model, run) job on this rank's share of ``ds``'s fixed batches, writing one shard file per
    batch; batches any rank already finished are skipped (resume). ``loader_workers``: image-decoding processes
    (0: decode in this process)."""
    import cv2

    ctx = ctx or D.Context()
    batches = D.batch_ranges(len(ds), batch_size)
    cv2_threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # the metrics thread overlaps the model pass: one core for each, not both for OpenCV
    try:
        _evaluate_jobs(ds, jobs, shard_dir, batches, D.shard_batches(len(batches), ctx.rank, ctx.world),
                       loader_workers, ctx, progress)
    finally:
        cv2.setNumThreads(cv2_threads)


def _evaluate_jobs(ds: EvalDataset, jobs: list[Job], shard_dir: Path, batches: list[range], mine: range,
                   loader_workers: int, ctx: D.Context, progress: bool) -> None:
    """``evaluate_dataset``'s loop over the jobs: this rank's unfinished batches, decoded in loader workers."""
    for name, run_label, build in jobs:
        folder = shard_dir / name / run_label
        todo = [b for b in mine if b not in D.done_batches(folder)]
        if not todo:
            continue
        model = build().to(ctx.device)
        side = model.spec.input_size
        set_placement_probes(model, probe_images(ds, side))
        bar = D.Progress(sum(len(batches[b]) for b in todo), progress and ctx.main, f"{name} ({run_label})")
        loader = torch.utils.data.DataLoader(
            ImageItems(ds, side), batch_sampler=[list(batches[b]) for b in todo], num_workers=loader_workers,
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


def _write_batch(folder: Path, ctx: D.Context, batch: int, finish: Callable[[], dict], bar: D.Progress, n: int) -> None:
    D.write_shard(folder, ctx.rank, ctx.world, batch, finish())
    bar.update(n)


def merge_rows(shard_dir: Path, jobs: list[tuple[str, str]], n_images: int) -> dict[str, np.ndarray]:
    """All jobs' rows in (job, image) order from the shard files, metric columns aligned (NaN where a model has
    no such tap); every image must be present once per job."""
    parts = []
    for name, run_label in jobs:
        shards = D.read_shards(shard_dir / name / run_label)
        cols = [shards[b] for b in sorted(shards)]
        got = sum(len(c["image_id"]) for c in cols)
        if got != n_images:
            raise RuntimeError(f"{name} ({run_label}): the shard files in {shard_dir} hold {got} of {n_images} "
                               "images; rerun the same command to finish the missing batches")
        # a batch whose every image was skipped has no score columns: its rows get a skipped image's NaN / False
        ref: dict[str, np.ndarray] = {}
        for c in cols:
            for k, v in c.items():
                ref.setdefault(k, v)
        parts.append({k: np.concatenate([c[k] if k in c else _skipped_rows(len(c["image_id"]), r) for c in cols])
                      for k, r in ref.items()})
    keys = sorted({k for p in parts for k in p})
    out = {}
    for k in keys:
        ref = next(p[k] for p in parts if k in p)
        out[k] = np.concatenate([p[k] if k in p else np.full((len(p["image_id"]), *ref.shape[1:]), np.nan)
                                 for p in parts])
    return out


