"""The scoring pipeline's rules (``res2net/evaluation/scoring.py``), written down first, then tested on a synthetic
``EvalDataset`` of a few images and the embedded tiny models (shipped weights, 64 px inputs), each built fresh in its
test (the per-model caches of tap plans and placements must not outlive a test).

Rows of a batch (one per image, in the batch's order; README ``ROW_COLUMNS``):

- ``model``, ``run``, ``image_id`` and ``class`` name the job and the record; ``boxes`` is the image's boxes at the
  model's input size as ``"x0 y0 x1 y1"`` joined by ``";"`` (empty for an image that could not be decoded);
  ``box_area`` is the area of the union of the boxes over the image's area (overlaps counted once).
- An image that cannot be scored is skipped, with its reason in ``skipped`` (empty for a scored image): the
  ``RecordError`` text of an undecodable image or of one whose boxes all lie outside it, or
  ``"class <label> is not among <model>'s outputs"``. A skipped image has NaN scores and box area and False
  ``correct`` / ``correct5`` / pointing hits; the other images of its batch are scored as if it were absent.
- ``correct``: the model's top-1 class (from its own logits) is the true class; ``correct5``: the true class is
  among its 5 highest logits (the 6th is a miss).
- The columns are exactly: per stage of ``protocol.STAGES`` and group of ``protocol.stage_taps``,
  ``<stage>/output/{energy, pointing, coverage, maxboxacc_iou}`` (the IoU per MaxBoxAcc threshold) and
  ``<stage>/branch<k>/{energy, pointing}``; the verdict layer's output (``CONTROL_COLUMN``) also both controls'
  ``{mismatch, spread}_{energy, pointing, coverage}``; and, once ``set_placement_probes`` has given the model its
  other placements, ``<CONTROL_COLUMN>/<placement>/<metric>`` for each of ``SENSITIVITY_PLACEMENTS`` (energy,
  pointing, coverage and the controls'); without probes, no placement columns.
- A tap's scores are those of the true-class Grad-CAM (ReLU of the channel sum of activations weighted by their
  spatially averaged gradients), cell (i, j) placed at its receptive-field centre ``stride * (i, j)`` (every
  convolution is padded "same", so cell 0 sits on pixel 0), linear in between, edge values beyond; at the other
  placements, the same map placed at the half-pixel centres ``(i + 0.5) * 64 / cells - 0.5`` or at the effective
  centres of ``cell_centres.effective_centres`` over the probe images. A model without the verdict layer has no
  control column and gets no other placements (``set_placement_probes`` returns ``{}``).

Probes and placements:

- ``probe_images(ds, side, n)``: the images at ``even_indices(len(ds), n)`` (by default ``PLACEMENT_PROBES``), loaded
  at ``side``, leaving out those that cannot be loaded; when none can, ``RecordError("none of the <k> probe images
  of <dataset> could be decoded")``.
- ``set_placement_probes(model, images)`` returns (and keeps for the model's batches) one ``CellCentres`` per
  sensitivity placement, in ``SENSITIVITY_PLACEMENTS`` order, for the control column's tap.
- ``ImageItems`` gives ``(position, image, boxes, "")`` or, for an image that cannot be loaded,
  ``(position, None, [], reason)``.

Running a dataset (``evaluate_dataset``):

- One shard file per fixed batch of ``batch_size`` images, named for the rank, the world size and the batch, holding
  that batch's rows; a rank writes only its share of the batches, and the ranks' shards merge to the rows of one
  process.
- Resume: batches already in a shard file are not scored again; when every batch of a job is done the job's model
  is not even built (and the next job still runs); after a shard is removed, a rerun writes that shard only (the
  others stay the same files) and the merged rows are identical.
- Each job's model is moved to the rank's device, and every batch and probe image is normalised onto the device the
  model's parameters are on. By default: batches of ``DATASET_BATCH`` (32), decoded in 2 loader
  worker processes that are not kept between jobs, each batch's positions in order, with a progress line.
- OpenCV runs on one thread while scoring, and its thread count is restored afterwards, also when scoring fails.
- An error in any batch's metric stage (the first or the last) surfaces from ``evaluate_dataset``.
- The progress line (rank 0, when asked) names the job ``<model> (<run>)`` and counts the job's images to do;
  nothing is printed without ``progress``.

Merging (``merge_rows``):

- Rows in (job, image) order; columns in name order; a column a job lacks is NaN there (with the column's trailing
  shape, bool columns becoming float); a batch in which every image was skipped (no score columns of its own) merges
  with its job's other batches, its images NaN / False like any skipped image.
- A job whose shards hold fewer images than the dataset is refused: ``"<model> (<run>): the shard files in <dir> hold
  <k> of <n> images; rerun the same command to finish the missing batches"``.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import res2net
from res2net.data.datasets import EvalDataset, Record, RecordError
from res2net.evaluation import distributed as D
from res2net.evaluation import scoring
from res2net.evaluation.control_scores import CONTROL_METRICS, CONTROLS
from res2net.evaluation.protocol import (
    CONTROL_COLUMN,
    PLACEMENT_PROBES,
    SENSITIVITY_PLACEMENTS,
    STAGES,
    even_indices,
    stage_taps,
)
from res2net.evaluation.scoring import (
    ImageItems,
    evaluate_dataset,
    merge_rows,
    probe_images,
    score_batch,
    set_placement_probes,
)
from res2net.geometry.cell_centres import effective_centres
from res2net.metrics import boxes as L

SIDE = 64
RESNET, RES2NET = "tiny_resnet26", "tiny_res2net26_4s"
BASE = ("model", "run", "image_id", "class", "skipped", "box_area", "boxes")


@pytest.fixture(autouse=True)
def _one_thread(one_thread) -> None:  # noqa: ANN001  (conftest's fixture: one torch thread on shared CPUs)
    return None


def _model(name: str = RES2NET) -> torch.nn.Module:
    """A fresh model with the shipped weights of seed 0 (nothing cached for it yet)."""
    return res2net.create_model(name, pretrained=True, seed=0).eval()


def _pixels(seed: int, h: int = SIDE, w: int = SIDE) -> np.ndarray:
    """A smooth random (h, w, 3) uint8 image: noise on an 8 x 8 grid, upsampled."""
    g = np.random.default_rng(seed)
    coarse = g.integers(0, 256, (8, 8, 3)).astype(np.uint8)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)


def _dataset(specs: list[tuple[str, tuple, np.ndarray | None]], classes: list[str], name: str = "synth"
             ) -> EvalDataset:
    """Records img0, img1, ... of (label, boxes, pixels); ``None`` pixels cannot be decoded."""
    pixels = [p for _, _, p in specs]
    records = [Record(f"img{k}", label, tuple(boxes), k) for k, (label, boxes, _) in enumerate(specs)]

    def decode(rec: Record) -> tuple[np.ndarray, tuple[int, int]]:
        p = pixels[int(rec.source)]
        if p is None:
            raise RecordError(f"{rec.image_id}: cannot be decoded as an image (synthetic)")
        return p, (p.shape[1], p.shape[0])

    return EvalDataset(name, classes, records, {}, decode, f"synthetic {name}")


def _hand_gradcam(model: torch.nn.Module, tap: str, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Grad-CAM of class y at a tap (forward hook + autograd): ReLU(sum_c mean_hw(dy/dA_c) * A_c), float64."""
    store = {}
    h = model.get_submodule(tap).register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    try:
        logits = model(x)
    finally:
        h.remove()
    (g,) = torch.autograd.grad(logits.gather(1, y[:, None]).sum(), store["a"])
    return torch.relu((g.mean((2, 3), keepdim=True) * store["a"]).sum(1)).detach().double().numpy()


def _place(cam: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Each (h, w) map on the 64 x 64 input: linear between the cells' centres, the edge value beyond (np.interp)."""
    px = np.arange(SIDE)
    out = np.empty((len(cam), SIDE, SIDE))
    for n, m in enumerate(cam):
        r = np.stack([np.interp(px, rows, m[:, j]) for j in range(m.shape[1])], 1)
        out[n] = np.stack([np.interp(px, cols, line) for line in r])
    return out


def _union(boxes: list, side: int = SIDE) -> np.ndarray:
    u = np.zeros((side, side), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        u[y0:y1, x0:x1] = True
    return u


def _energy(m: np.ndarray, boxes: list) -> float:
    return float(m[_union(boxes)].sum() / m.sum()) if m.max() > m.min() else 0.0  # a flat map is a miss


def _coverage(m: np.ndarray, boxes: list) -> float:
    return float((m[_union(boxes)] >= 0.5 * m.max()).mean()) if m.max() > m.min() else 0.0


def _x(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(model.spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(model.spec.std).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


def _expected_columns(model: torch.nn.Module, placements: bool) -> set[str]:
    cols = {"correct", "correct5"}
    assert tuple(stage_taps(model)) == STAGES
    for stage, groups in stage_taps(model).items():
        for g in groups:
            col = f"{stage}/{g}"
            metrics = ("energy", "pointing", "coverage", "maxboxacc_iou") if g == "output" else ("energy", "pointing")
            cols |= {f"{col}/{m}" for m in metrics}
            if col == CONTROL_COLUMN:
                controls = {f"{c}_{m}" for c in CONTROLS for m in CONTROL_METRICS}
                cols |= {f"{col}/{c}" for c in controls}
                if placements:
                    cols |= {f"{col}/{p}/{m}" for p in SENSITIVITY_PLACEMENTS for m in (*CONTROL_METRICS, *controls)}
    return cols


def _ranked_dataset(model: torch.nn.Module) -> tuple[EvalDataset, list[int]]:
    """Seven images: four scored, labelled with the class the model ranks 0th, 1st, 4th and 5th on them (its own
    logits, computed here), and three skipped (undecodable; every box outside; a class the model lacks)."""
    classes = list(model.spec.classes)
    imgs = [_pixels(s) for s in range(4)] + [_pixels(9, 96, 128)]
    specs = [("", [(4, 6, 30, 40), (20, 30, 50, 60)], imgs[0]),  # overlapping boxes: union by hand below
             ("n00000000", [(0, 0, 10, 10)], imgs[1]),  # not among the model's classes
             ("", [(10, 10, 20, 20)], imgs[1]),
             (classes[0], [(0, 0, 64, 32)], None),  # cannot be decoded
             ("", [(0, 0, 64, 32)], imgs[2]),
             (classes[1], [(200, 200, 220, 230)], imgs[3]),  # every box lies outside the 64 x 64 image
             ("", [(16, 12, 80, 60), (0, 90, 3, 96)], imgs[4])]  # a 128 x 96 image: boxes scaled outward
    ds = _dataset(specs, [*classes, "n00000000"])
    keep, ranks = [0, 2, 4, 6], [0, 5, 1, 4]
    with torch.no_grad():
        order = model(_x(model, torch.stack([ds.load(k, SIDE)[0] for k in keep]))).argsort(1, descending=True)
    for n, (k, r) in enumerate(zip(keep, ranks, strict=True)):
        ds.records[k] = dataclasses.replace(ds.records[k], label=classes[int(order[n, r])])
    return ds, ranks


# ------------------------------------------------------------------------------------------------ rows of a batch
def test_rows_name_skip_and_score_images_in_order() -> None:
    model = _model(RESNET)
    ds, ranks = _ranked_dataset(model)
    items = [ImageItems(ds, SIDE)[i] for i in range(len(ds))]
    rows = scoring._batch_rows(model, ds, items, "mod", "run7")()
    n = len(ds)
    assert rows["model"].tolist() == ["mod"] * n and rows["run"].tolist() == ["run7"] * n
    assert rows["image_id"].tolist() == [f"img{k}" for k in range(n)]
    assert rows["class"].tolist() == [r.label for r in ds.records]
    assert rows["skipped"].tolist() == [
        "", "class n00000000 is not among mod's outputs", "", "img3: cannot be decoded as an image (synthetic)", "",
        "every box lies outside the image (64x64 px)", ""]
    assert rows["boxes"].tolist() == ["4 6 30 40;20 30 50 60", "0 0 10 10", "10 10 20 20", "", "0 0 64 32", "",
                                      "8 8 40 40;0 60 2 64"]
    # union of the boxes by hand: 26*34 + 30*30 - overlap (x 20..30, y 30..40) = 884 + 900 - 100
    area = [(884 + 900 - 100) / 64**2, np.nan, 100 / 64**2, np.nan, 0.5, np.nan, (32 * 32 + 2 * 4) / 64**2]
    np.testing.assert_array_equal(rows["box_area"], area)
    scored = np.array([s == "" for s in rows["skipped"]])
    # correct / correct5 from the model's own ranking: ranks 0, 5, 1, 4 for images 0, 2, 4, 6
    assert rows["correct"].tolist() == [True, False, False, False, False, False, False]
    assert rows["correct5"].tolist() == [True, False, False, False, True, False, True]
    assert ranks == [0, 5, 1, 4]
    assert set(rows) == set(BASE) | _expected_columns(model, placements=False)
    for key, v in rows.items():
        if key in BASE:
            continue
        assert len(v) == n
        if v.dtype == bool:
            assert not v[~scored].any(), key
        else:
            assert v.dtype == np.float64 and np.isnan(v[~scored]).all(), key
    assert np.isfinite(rows["layer3/output/maxboxacc_iou"][scored]).all()
    assert rows["layer3/output/maxboxacc_iou"].shape == (n, len(L.BOXACC_THRESHOLDS))


def test_scores_are_the_true_class_gradcam_placed_at_rf_centres() -> None:
    """The scored images' energy and coverage against a hand Grad-CAM; a skipped image in the batch changes nothing."""
    model = _model(RES2NET)
    ds, _ = _ranked_dataset(model)
    items = [ImageItems(ds, SIDE)[i] for i in range(len(ds))]
    rows = scoring._batch_rows(model, ds, items, RES2NET, "seed0")()
    keep = [0, 2, 4, 6]
    imgs = torch.stack([items[k][1] for k in keep])
    cls = {w: k for k, w in enumerate(model.spec.classes)}
    y = torch.tensor([cls[ds.records[k].label] for k in keep])
    x = _x(model, imgs)
    for tap, col, stride in (("layer3.1", "layer3/output", 16), ("layer2.1.branch1", "layer2/branch1", 8),
                             ("layer1.1", "layer1/output", 4)):
        cam = _hand_gradcam(model, tap, x, y)
        c = stride * np.arange(cam.shape[-1])
        maps = _place(cam, c, c)
        want = [_energy(m, items[k][2]) for m, k in zip(maps, keep, strict=True)]
        np.testing.assert_allclose(rows[f"{col}/energy"][keep], want, rtol=1e-4, atol=1e-5)
        if col.endswith("output"):
            want = [_coverage(m, items[k][2]) for m, k in zip(maps, keep, strict=True)]
            np.testing.assert_allclose(rows[f"{col}/coverage"][keep], want, atol=0.02)
    # the same scores from score_batch on the scored images alone
    alone = score_batch(_model(RES2NET), imgs, y, [items[k][2] for k in keep])
    for key, v in alone.items():
        np.testing.assert_array_equal(rows[key][keep], v, err_msg=key)


def test_other_placements_score_the_same_map_at_half_pixel_and_effective_centres() -> None:
    model = _model(RESNET)
    imgs = torch.stack([torch.from_numpy(_pixels(s).transpose(2, 0, 1).copy()) for s in range(3)])
    y = torch.tensor([3, 50, 99])
    boxes = [[(0, 0, 32, 32)], [(10, 20, 60, 50)], [(30, 0, 64, 64), (0, 40, 20, 64)]]
    plain = score_batch(model, imgs, y, boxes)
    assert set(plain) == _expected_columns(model, placements=False)  # no probes given: no placement columns

    model = _model(RESNET)
    probes = torch.stack([torch.from_numpy(_pixels(s).transpose(2, 0, 1).copy()) for s in (7, 8)])
    placed = set_placement_probes(model, probes)
    assert list(placed) == list(SENSITIVITY_PLACEMENTS) == ["effective_centre", "half_pixel"]
    half = (np.arange(4) + 0.5) * 16 - 0.5
    assert placed["half_pixel"].rows == placed["half_pixel"].cols == tuple(half)
    eff = effective_centres(_model(RESNET), "layer3.1", _x(model, probes))
    np.testing.assert_allclose(placed["effective_centre"].rows, eff.rows, rtol=1e-6)
    np.testing.assert_allclose(placed["effective_centre"].cols, eff.cols, rtol=1e-6)
    assert placed["effective_centre"].rule == "effective_centre"

    rows = score_batch(model, imgs, y, boxes)
    assert set(rows) == _expected_columns(model, placements=True)
    for key, v in plain.items():
        np.testing.assert_array_equal(rows[key], v, err_msg=key)
    cam = _hand_gradcam(model, "layer3.1", _x(model, imgs), y)
    for p, (r, c) in (("half_pixel", (half, half)),
                      ("effective_centre", (np.array(eff.rows), np.array(eff.cols)))):
        maps = _place(cam, r, c)
        want = [_energy(m, b) for m, b in zip(maps, boxes, strict=True)]
        np.testing.assert_allclose(rows[f"{CONTROL_COLUMN}/{p}/energy"], want, rtol=1e-4, atol=1e-5)
        want = [_coverage(m, b) for m, b in zip(maps, boxes, strict=True)]
        np.testing.assert_allclose(rows[f"{CONTROL_COLUMN}/{p}/coverage"], want, atol=0.02)
    # the RF placement of the same map (centres 16 i) is another map: the placements differ somewhere
    rf = [_energy(m, b) for m, b in zip(_place(cam, 16 * np.arange(4), 16 * np.arange(4)), boxes, strict=True)]
    np.testing.assert_allclose(rows[f"{CONTROL_COLUMN}/energy"], rf, rtol=1e-4, atol=1e-5)
    assert not np.allclose(rows[f"{CONTROL_COLUMN}/half_pixel/energy"], rf, rtol=1e-4, atol=1e-5)


class _Wrapped(torch.nn.Module):
    """A zoo model under another module name: its blocks' stage is ``net``, so it has no verdict layer."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net, self.spec = net, net.spec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def test_a_model_without_the_verdict_layer_gets_no_other_placements() -> None:
    model = _Wrapped(_model(RESNET)).eval()
    imgs = torch.stack([torch.from_numpy(_pixels(s).transpose(2, 0, 1).copy()) for s in range(2)])
    assert set_placement_probes(model, imgs) == {}
    rows = score_batch(model, imgs, torch.tensor([1, 2]), [[(0, 0, 30, 30)]] * 2)
    assert set(rows) == {"correct", "correct5", "net/branch0/energy", "net/branch0/pointing",
                         *(f"net/output/{m}" for m in ("energy", "pointing", "coverage", "maxboxacc_iou"))}


def test_batches_and_probes_are_normalised_onto_the_models_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the model lives, its inputs go (on a GPU rank, a CPU batch would fail or be slow): recorded here, since
    this machine has only a CPU."""
    seen: list = []
    real = scoring.normalize
    monkeypatch.setattr(scoring, "normalize", lambda images, spec, device=None: seen.append(device)
                        or real(images, spec, device))
    model = _model(RESNET)
    imgs = torch.stack([torch.from_numpy(_pixels(s).transpose(2, 0, 1).copy()) for s in range(2)])
    set_placement_probes(model, imgs)
    score_batch(model, imgs, torch.tensor([1, 2]), [[(0, 0, 30, 30)]] * 2)
    assert len(seen) == 2 and all(d is not None and torch.device(d) == torch.device("cpu") for d in seen)

def test_correct5_is_top_five_of_the_logits() -> None:
    """The true class at rank 0 .. 6 of the model's own logits: correct only at rank 0, correct5 at ranks 0-4."""
    model = _model(RES2NET)
    imgs = torch.stack([torch.from_numpy(_pixels(s).transpose(2, 0, 1).copy()) for s in range(7)])
    with torch.no_grad():
        order = model(_x(model, imgs)).argsort(1, descending=True)
    y = order[torch.arange(7), torch.arange(7)]
    rows = score_batch(model, imgs, y, [[(0, 0, 32, 32)]] * 7)
    assert rows["correct"].tolist() == [True] + [False] * 6
    assert rows["correct5"].tolist() == [True] * 5 + [False] * 2


# ------------------------------------------------------------------------------------------ probes and placements
def _indexed(n: int, bad: tuple[int, ...] = (), outside: tuple[int, ...] = ()) -> EvalDataset:
    """n 8 x 8 images whose pixels all hold their own index (so a probe names the image it came from)."""
    specs = [("a", [(300, 300, 301, 301)] if k in outside else [(0, 0, 4, 4)],
              None if k in bad else np.full((8, 8, 3), k, dtype=np.uint8)) for k in range(n)]
    return _dataset(specs, ["a"], name="idx")


def test_probe_images_are_evenly_spaced_decodable_images() -> None:
    ds = _indexed(10)
    got = probe_images(ds, 16, 4)
    assert got.dtype == torch.uint8 and got.shape == (4, 3, 16, 16)
    assert got[:, 0, 0, 0].tolist() == [0, 3, 6, 9] == even_indices(10, 4).tolist()
    assert torch.equal(got[1], ds.load(3, 16)[0])
    # undecodable or unplaceable probes are left out, not replaced
    assert probe_images(_indexed(10, bad=(3,), outside=(6,)), 8, 4)[:, 0, 0, 0].tolist() == [0, 9]
    assert probe_images(ds, 8, 30)[:, 0, 0, 0].tolist() == list(range(10))  # more probes than images: all of them
    big = _indexed(40)
    assert probe_images(big, 8)[:, 0, 0, 0].tolist() == even_indices(40, PLACEMENT_PROBES).tolist()
    assert len(probe_images(big, 8)) == PLACEMENT_PROBES == 32
    assert probe_images(_indexed(1), 8, 4)[:, 0, 0, 0].tolist() == [0]


def test_probe_images_refuse_when_none_decodes() -> None:
    with pytest.raises(RecordError, match=r"^none of the 3 probe images of idx could be decoded$"):
        probe_images(_indexed(5, bad=(0, 2), outside=(4,)), 8, 3)


def test_image_items_give_the_image_or_its_error() -> None:
    ds = _indexed(3, bad=(1,))
    items = ImageItems(ds, 8)
    assert len(items) == 3
    i, img, boxes, err = items[2]
    assert (i, boxes, err) == (2, [(0, 0, 4, 4)], "") and torch.equal(img, ds.load(2, 8)[0])
    assert items[1] == (1, None, [], "img1: cannot be decoded as an image (synthetic)")


# -------------------------------------------------------------------------------------------- running a dataset
def _small_dataset(model_name: str = RESNET) -> EvalDataset:
    classes = list(res2net.models.zoo.get_spec(model_name).classes)
    specs = [(classes[(7 * k) % 100], [(k, 2 * k, 30 + k, 40)], _pixels(20 + k)) for k in range(5)]
    specs[3] = (specs[3][0], specs[3][1], None)
    return _dataset(specs, classes)


def _builder(name: str, calls: list) -> scoring.Job:
    def build() -> torch.nn.Module:
        calls.append(cv2.getNumThreads())
        return _model(name)
    return (name, "seed0", build)


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f"), k


def test_one_shard_per_batch_and_resume(tmp_path: Path) -> None:
    ds = _small_dataset()
    calls: list = []
    job = _builder(RESNET, calls)
    old = cv2.getNumThreads()
    cv2.setNumThreads(3)
    try:
        evaluate_dataset(ds, [job], tmp_path, batch_size=2, loader_workers=0, progress=False)
        assert cv2.getNumThreads() == 3 and calls == [1]  # one OpenCV thread while scoring, restored after
    finally:
        cv2.setNumThreads(old)
    folder = tmp_path / RESNET / "seed0"
    names = [f"shard-000-of-001-b{b:07d}.npz" for b in range(3)]
    assert sorted(p.name for p in folder.iterdir()) == names
    shards = D.read_shards(folder)
    assert [shards[b]["image_id"].tolist() for b in range(3)] == [["img0", "img1"], ["img2", "img3"], ["img4"]]
    first = merge_rows(tmp_path, [(RESNET, "seed0")], 5)
    assert first["skipped"].tolist() == ["", "", "", "img3: cannot be decoded as an image (synthetic)", ""]
    assert set(first) == set(BASE) | _expected_columns(_model(RESNET), placements=True)

    def never() -> torch.nn.Module:
        raise AssertionError("a job whose batches are all done must not be built")

    stat = {n: os.stat(folder / n) for n in names}
    other: list = []
    evaluate_dataset(ds, [(RESNET, "seed0", never), (RESNET, "seed1", _builder(RESNET, other)[2])], tmp_path,
                     batch_size=2, loader_workers=0, progress=False)  # a done job is passed over, not the next one
    assert other == [1] and sorted(p.name for p in (tmp_path / RESNET / "seed1").iterdir()) == names
    os.remove(folder / names[1])
    evaluate_dataset(ds, [job], tmp_path, batch_size=2, loader_workers=0, progress=False)
    assert len(calls) == 2
    assert sorted(p.name for p in folder.iterdir()) == names
    for n in (names[0], names[2]):
        now = os.stat(folder / n)
        assert (now.st_ino, now.st_mtime_ns) == (stat[n].st_ino, stat[n].st_mtime_ns), n
    _same(merge_rows(tmp_path, [(RESNET, "seed0")], 5), first)


def test_ranks_write_their_share_and_merge_to_one_process_rows(tmp_path: Path) -> None:
    ds = _small_dataset()
    calls: list = []
    evaluate_dataset(ds, [_builder(RESNET, calls)], tmp_path / "one", batch_size=2, loader_workers=0, progress=False)
    moved: list = []

    def build() -> torch.nn.Module:  # the model goes to the rank's device (recorded: there is only a CPU here)
        model = _model(RESNET)
        model.to = lambda device: moved.append(device) or model
        return model

    for rank, want in ((1, ["shard-001-of-002-b0000002.npz"]),
                       (0, ["shard-000-of-002-b0000000.npz", "shard-000-of-002-b0000001.npz"])):
        evaluate_dataset(ds, [(RESNET, "seed0", build)], tmp_path / "two", batch_size=2, loader_workers=0,
                         ctx=D.Context(rank, 2, 0, torch.device("cpu", 0)), progress=False)
        if rank == 1:
            assert sorted(p.name for p in (tmp_path / "two" / RESNET / "seed0").iterdir()) == want
    assert {p.name for p in (tmp_path / "two" / RESNET / "seed0").iterdir()} == {
        "shard-001-of-002-b0000002.npz", "shard-000-of-002-b0000000.npz", "shard-000-of-002-b0000001.npz"}
    _same(merge_rows(tmp_path / "two", [(RESNET, "seed0")], 5), merge_rows(tmp_path / "one", [(RESNET, "seed0")], 5))
    assert moved == [torch.device("cpu", 0)] * 2


def test_defaults_decode_in_two_workers_in_batches_of_32_with_progress(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """By default: batches of ``DATASET_BATCH`` (32) images, decoded in 2 loader worker processes (not kept between
    jobs), each batch's positions in order, and a progress line. (The loader is recorded, then run in-process.)"""
    loaders: list[dict] = []
    real = torch.utils.data.DataLoader

    def loader(dataset: object, **kw: object) -> torch.utils.data.DataLoader:
        loaders.append(kw)
        return real(dataset, **{**kw, "num_workers": 0, "persistent_workers": False})

    bars: list[D.Progress] = []

    class Spy(D.Progress):
        def __init__(self, total: int, enabled: bool, label: str = "", stream: object = None) -> None:
            super().__init__(total, enabled, label, io.StringIO())
            bars.append(self)

    monkeypatch.setattr(torch.utils.data, "DataLoader", loader)
    monkeypatch.setattr(D, "Progress", Spy)
    ds = _indexed(40)
    ds.records = [dataclasses.replace(r, label=res2net.models.zoo.get_spec(RESNET).classes[0]) for r in ds.records]
    evaluate_dataset(ds, [_builder(RESNET, [])], tmp_path)
    assert [(kw["num_workers"], kw["persistent_workers"], kw["batch_sampler"]) for kw in loaders] == [
        (2, False, [list(range(32)), list(range(32, 40))])]
    assert D.done_batches(tmp_path / RESNET / "seed0") == {0, 1}
    assert [(p.enabled, p.total, p.done) for p in bars] == [(True, 40, 40)]


def test_opencv_threads_restored_when_scoring_fails(tmp_path: Path) -> None:
    def broken() -> torch.nn.Module:
        raise RuntimeError("cannot build")

    old = cv2.getNumThreads()
    cv2.setNumThreads(2)
    try:
        with pytest.raises(RuntimeError, match="cannot build"):
            evaluate_dataset(_small_dataset(), [("m", "r", broken)], tmp_path, loader_workers=0, progress=False)
        assert cv2.getNumThreads() == 2
    finally:
        cv2.setNumThreads(old)


@pytest.mark.parametrize("fail_at", [1, 3])
def test_a_metric_stage_error_in_any_batch_surfaces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    fail_at: int) -> None:
    real, calls = scoring._metric_stage, []

    def flaky(*a: object) -> dict:
        calls.append(1)
        if len(calls) == fail_at:
            raise ValueError(f"metric stage failed in batch {fail_at - 1}")
        return real(*a)

    monkeypatch.setattr(scoring, "_metric_stage", flaky)
    with pytest.raises(ValueError, match=f"metric stage failed in batch {fail_at - 1}"):
        evaluate_dataset(_small_dataset(), [_builder(RESNET, [])], tmp_path, batch_size=2, loader_workers=0,
                         progress=False)
    done = D.done_batches(tmp_path / RESNET / "seed0")
    assert fail_at - 1 not in done


def test_progress_line_names_the_job_and_counts_its_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bars: list[D.Progress] = []

    class Spy(D.Progress):
        def __init__(self, total: int, enabled: bool, label: str = "", stream: object = None) -> None:
            super().__init__(total, enabled, label, io.StringIO())
            bars.append(self)

    monkeypatch.setattr(D, "Progress", Spy)
    ds = _small_dataset()
    evaluate_dataset(ds, [_builder(RESNET, [])], tmp_path / "quiet", batch_size=2, loader_workers=0, progress=False)
    assert [(p.total, p.enabled, p.done, p.stream.getvalue()) for p in bars] == [(5, False, 5, "")]
    evaluate_dataset(ds, [_builder(RESNET, [])], tmp_path / "loud", batch_size=2, loader_workers=0, progress=True)
    assert (bars[1].label, bars[1].total, bars[1].enabled, bars[1].done) == (f"{RESNET} (seed0)", 5, True, 5)
    assert re.search(rf"{RESNET} \(seed0\) \[#+\] 5/5 ", bars[1].stream.getvalue())
    os.remove(tmp_path / "loud" / RESNET / "seed0" / "shard-000-of-001-b0000001.npz")
    evaluate_dataset(ds, [_builder(RESNET, [])], tmp_path / "loud", batch_size=2, loader_workers=0, progress=True)
    assert (bars[2].total, bars[2].done) == (2, 2) and "2/2" in bars[2].stream.getvalue()
    evaluate_dataset(ds, [_builder(RESNET, [])], tmp_path / "rank1", batch_size=2, loader_workers=0, progress=True,
                     ctx=D.Context(1, 2))
    assert (bars[3].total, bars[3].enabled, bars[3].stream.getvalue()) == (1, False, "")  # only rank 0 reports


# ---------------------------------------------------------------------------------------------------- merging
def _write(folder: Path, batches: list[dict]) -> None:
    for b, rows in enumerate(batches):
        D.write_shard(folder, 0, 1, b, rows)


def _ids(*ids: str) -> np.ndarray:
    return np.array(list(ids))


def test_merge_orders_jobs_then_images_and_fills_what_a_model_lacks(tmp_path: Path) -> None:
    curve = np.arange(12.0).reshape(3, 4)
    _write(tmp_path / "b" / "r1", [{"image_id": _ids("i0", "i1"), "x/pointing": np.array([True, False]),
                                    "x/curve": curve[:2]},
                                   {"image_id": _ids("i2"), "x/pointing": np.array([True]), "x/curve": curve[2:]}])
    _write(tmp_path / "a" / "r0", [{"image_id": _ids("i0"), "a/energy": np.array([0.5])},
                                   {"image_id": _ids("i1", "i2"), "a/energy": np.array([0.25, 0.125])}])
    out = merge_rows(tmp_path, [("b", "r1"), ("a", "r0")], 3)
    assert list(out) == ["a/energy", "image_id", "x/curve", "x/pointing"]
    assert out["image_id"].tolist() == ["i0", "i1", "i2"] * 2
    np.testing.assert_array_equal(out["a/energy"], [np.nan] * 3 + [0.5, 0.25, 0.125])
    assert out["x/curve"].shape == (6, 4)
    np.testing.assert_array_equal(out["x/curve"], np.concatenate([curve, np.full((3, 4), np.nan)]))
    np.testing.assert_array_equal(out["x/pointing"], [1.0, 0.0, 1.0, np.nan, np.nan, np.nan])


def test_an_all_skipped_batch_keeps_each_columns_dtype(tmp_path: Path) -> None:
    """A score column keeps its dtype (float16 or float32 as stored, bool hits) when a batch without score columns,
    every image of it skipped, is filled in: NaN scores, False hits, nothing upcast."""
    _write(tmp_path / "m" / "r", [{"image_id": _ids("i0")},
                                  {"image_id": _ids("i1", "i2"), "e16": np.array([0.5, 0.25], dtype=np.float16),
                                   "e32": np.array([1.5, 2.5], dtype=np.float32), "hit": np.array([True, True])}])
    out = merge_rows(tmp_path, [("m", "r")], 3)
    assert (out["e16"].dtype, out["e32"].dtype, out["hit"].dtype) == (np.float16, np.float32, np.bool_)
    np.testing.assert_array_equal(out["e16"], [np.nan, 0.5, 0.25])
    np.testing.assert_array_equal(out["hit"], [False, True, True])

def test_merge_refuses_an_incomplete_job(tmp_path: Path) -> None:
    _write(tmp_path / "m" / "r", [{"image_id": _ids("i0", "i1")}, {"image_id": _ids("i2")}])
    _write(tmp_path / "n" / "r", [{"image_id": _ids("i0", "i1")}])
    assert merge_rows(tmp_path, [("m", "r")], 3)["image_id"].tolist() == ["i0", "i1", "i2"]
    msg = (f"n (r): the shard files in {tmp_path} hold 2 of 3 images; rerun the same command to finish the missing "
           "batches")
    with pytest.raises(RuntimeError, match=f"^{re.escape(msg)}$"):
        merge_rows(tmp_path, [("m", "r"), ("n", "r")], 3)
    with pytest.raises(RuntimeError, match=re.escape("m (r): the shard files in")):
        merge_rows(tmp_path, [("m", "r")], 4)


def test_a_batch_of_skipped_images_merges_with_its_job(tmp_path: Path) -> None:
    """A batch whose every image is skipped has no score columns of its own: the merge gives its images NaN scores
    and False hits, as any skipped image has, whichever batch it is."""
    classes = list(res2net.models.zoo.get_spec(RESNET).classes)
    specs = [("n00000000", [(0, 0, 8, 8)], _pixels(1)), ("n00000000", [(0, 0, 8, 8)], _pixels(2)),
             (classes[5], [(0, 0, 40, 40)], _pixels(3)), (classes[6], [(10, 10, 40, 40)], _pixels(4)),
             (classes[7], [(0, 0, 8, 8)], None)]
    ds = _dataset(specs, [*classes, "n00000000"])
    evaluate_dataset(ds, [_builder(RESNET, [])], tmp_path, batch_size=2, loader_workers=0, progress=False)
    rows = merge_rows(tmp_path, [(RESNET, "seed0")], 5)
    assert set(rows) == set(BASE) | _expected_columns(_model(RESNET), placements=True)
    scored = np.array([False, False, True, True, False])
    assert [s == "" for s in rows["skipped"]] == scored.tolist()
    for key, v in rows.items():
        if key in BASE:
            continue
        if key in ("correct", "correct5") or re.fullmatch(r"layer\d/\w+/pointing", key):
            assert v.dtype == bool and not v[~scored].any(), key
        else:
            assert v.dtype == np.float64 and np.isnan(v[~scored]).all(), key
        assert v.shape[1:] == ((len(L.BOXACC_THRESHOLDS),) if key.endswith("maxboxacc_iou") else ()), key
    assert np.isfinite(rows["layer3/output/energy"][scored]).all()
