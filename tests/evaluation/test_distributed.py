"""Distributed dataset evaluation: sharding, 1 vs 2 gloo processes, kill-and-resume, skips instead of crashes."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from res2net.data.tiny_imagenet import default_data_dir
from res2net.evaluation.distributed import batch_ranges, done_batches, read_shards, shard_batches
from res2net.evaluation.results import ROW_COLUMNS, image_scores_path, load_image_scores, load_results

from helpers import imagenet_val_folder

ROOT = Path(__file__).resolve().parents[2]
MODELS = ["tiny_resnet26", "tiny_res2net26_4s"]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _args(data: Path, out: Path, batch: int = 5, erf_inputs: int = 2) -> list[str]:
    return ["-m", "res2net.evaluate", "--dataset", "imagenet-val", "--data", str(data), "--models", *MODELS,
            "--seeds", "0", "--out", str(out), "--batch-size", str(batch), "--loader-workers", "1", "--threads", "1",
            "--erf-inputs", str(erf_inputs), "--erf-size", "64"]


def _run(data: Path, out: Path, procs: int = 1, batch: int = 5, erf_inputs: int = 2) -> subprocess.CompletedProcess:
    pre = [sys.executable] if procs == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                              f"--nproc_per_node={procs}"]
    r = subprocess.run(pre + _args(data, out, batch, erf_inputs), env=_env(), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return r


@pytest.fixture(scope="module")
def inet(tmp_path_factory):
    root = tmp_path_factory.mktemp("inet")
    imagenet_val_folder(root, n=23)  # 23 images in batches of 5: 5 batches, the last one short
    return root


@pytest.fixture(scope="module")
def single(inet, tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "r.json"
    _run(inet, out)
    return out


def test_shards_are_contiguous_balanced_and_cover_every_batch():
    for n, world in [(5, 2), (7, 3), (2, 4), (0, 2), (12, 4)]:
        parts = [shard_batches(n, r, world) for r in range(world)]
        assert [b for p in parts for b in p] == list(range(n))
        sizes = [len(p) for p in parts]
        assert max(sizes) - min(sizes) <= 1
    assert [len(r) for r in batch_ranges(23, 5)] == [5, 5, 5, 5, 3]
    with pytest.raises(ValueError):
        shard_batches(4, 2, 2)


def test_one_and_two_gloo_processes_give_identical_rows_and_results(inet, single, tmp_path):
    out = tmp_path / "two" / "r.json"
    r = _run(inet, out, procs=2)
    bars = [line for line in r.stderr.replace("\r", "\n").splitlines() if "img/s" in line and "ETA" in line]
    assert bars and all("/15 " in b for b in bars)  # rank 0's share of 3 batches (15 images) only
    writers = {p.name.split("-b")[0] for p in (out.with_suffix(".shards") / MODELS[0] / "seed0").iterdir()}
    assert writers == {"shard-000-of-002", "shard-001-of-002"}  # both ranks did work
    assert out.read_bytes() == single.read_bytes()
    a, b = load_image_scores(image_scores_path(single)), load_image_scores(image_scores_path(out))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_rows_hold_every_image_per_run_and_results_validate(single):
    rows = load_image_scores(image_scores_path(single))
    assert len(rows["image_id"]) == 2 * 23
    assert sorted(set(rows["model"])) == sorted(MODELS)
    for k in ("run", "class", "correct", "box_area", "boxes", "layer3/output/energy", "layer3/branch0/pointing",
              "layer3/output/maxboxacc_iou"):
        assert k in rows
    placed = {k for k in rows if k.count("/") == 3}  # the verdict layer's output placed the two other ways
    assert placed and {k.split("/")[2] for k in placed} == {"effective_centre", "half_pixel"}
    assert "<stage>/<group>/<placement>/<metric>" in ROW_COLUMNS
    assert all(k in ROW_COLUMNS or k.count("/") == 2 or k in placed for k in rows)  # every column is documented
    res = load_results(single).to_json()
    assert res["images"] == 23 and res["skipped"]["count"] == 0
    m = rows["model"] == MODELS[0]
    assert res["models"][MODELS[0]]["runs"][0]["top1"] == pytest.approx(100 * rows["correct"][m].mean(), abs=1e-4)
    assert {c["verdict"] for c in res["claims"]} <= {"supported", "contradicted", "no meaningful difference",
                                                     "inconclusive", "not tested"}
    assert {c["target"] for c in res["claims"] if c["section"] != "erf"} == {"weights"}  # one run: these weights
    assert any(c["id"].startswith("energy-small-") for c in res["claims"])
    ids = {c["id"] for c in res["claims"]}
    assert {"erf-branches-64px-noise-tiny_res2net26_4s", "erf-block-own-size-noise-tiny_res2net26_4s"} <= ids
    assert not any("own-val-images" in i for i in ids)  # a dataset run has no Tiny-ImageNet val images of its own
    assert {r["weights"] for r in res["erf"]} == {"trained", "random init"} and res["erf"][0]["inputs"] == 2


def test_lost_batches_are_redone_and_the_rest_kept(inet, single, tmp_path):
    out = tmp_path / "r.json"
    shutil.copytree(single.with_suffix(".shards"), out.with_suffix(".shards"))
    folder = out.with_suffix(".shards") / MODELS[1] / "seed0"
    lost = sorted(folder.iterdir())[2:]
    kept = {p: p.stat().st_mtime_ns for p in sorted(folder.iterdir())[:2]}
    for p in lost:
        p.unlink()
    (folder / ".shard-000-of-001-b0000004.npz.123.tmp").write_bytes(b"half")  # a write cut by the kill
    _run(inet, out)
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    assert done_batches(folder) == set(range(5))
    assert out.read_bytes() == single.read_bytes()


def test_killed_run_resumes_to_the_uninterrupted_result(inet, single, tmp_path):
    out = tmp_path / "killed" / "r.json"
    proc = subprocess.Popen([sys.executable, *_args(inet, out)], env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    first = out.with_suffix(".shards") / MODELS[0] / "seed0"
    deadline = time.monotonic() + 300
    while not (first.is_dir() and done_batches(first)) and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = sum(len(read_shards(out.with_suffix(".shards") / m / "seed0")) for m in MODELS)
    assert 0 < finished < 2 * 23 and not out.exists()
    _run(inet, out)
    assert out.read_bytes() == single.read_bytes()
    assert image_scores_path(out).read_bytes() == image_scores_path(single).read_bytes()


def test_corrupt_image_foreign_class_and_missing_box_are_counted_not_fatal(inet, single, tmp_path):
    data = tmp_path / "bad"
    shutil.copytree(inet, data)
    stems = sorted(p.stem for p in (data / "val").iterdir())
    (data / "val" / f"{stems[0]}.JPEG").write_bytes(b"\xff\xd8 truncated")
    xml = data / "annotations" / f"{stems[1]}.xml"
    # tench: an ImageNet-1k class the embedded models (100 classes) lack
    xml.write_text(re.sub(r"<name>n\d+</name>", "<name>n01440764</name>", xml.read_text()))
    (data / "annotations" / f"{stems[2]}.xml").unlink()
    out = tmp_path / "r.json"
    r = _run(data, out)
    res = json.loads(out.read_text())
    assert res["images"] == 20
    assert res["skipped"]["count"] == 3
    assert set(res["skipped"]["reasons"]) == {"unreadable image", "class not among the model's outputs",
                                              "no annotation"}
    assert "20 images scored, 3 skipped" in r.stdout
    rows = load_image_scores(image_scores_path(out))
    ok = rows["skipped"] == ""
    assert ok.sum() == 2 * 20 and np.isnan(rows["layer3/output/energy"][~ok]).all()


def test_shards_of_another_batching_are_refused_not_mixed(inet, single):
    before = single.read_bytes()
    r = subprocess.run([sys.executable, *_args(inet, single, batch=4)], env=_env(), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode != 0 and "holds shards of another run (batch_size: 5 there, 4 now)" in r.stderr
    assert single.read_bytes() == before


def test_tables_are_recomputed_from_the_rows_alone(single):
    from res2net import create_model
    from res2net.evaluation.protocol import stage_taps
    from res2net.evaluation.summary import summarise_rows
    from res2net.models.zoo import label_set_wnids

    rows = load_image_scores(image_scores_path(single))
    res = load_results(single).to_json()
    entries = {n: {"scale": 1, "runs": [], "run_count": 1, "taps": stage_taps(create_model(n))} for n in MODELS}
    again, _, _, _, sigmas = summarise_rows(rows, list(label_set_wnids("imagenet-1k")), entries,
                                            {n: ["seed0"] for n in MODELS}, MODELS[0], 64)
    for key in ("localisation", "comparisons", "accuracy_by_size", "baselines"):
        assert json.loads(json.dumps(again[key])) == res[key], key
    assert sigmas == res["prior"]["sigmas_px"]


def test_one_process_without_torchrun_and_device_choice():
    from res2net.evaluation.distributed import pick_device, setup

    ctx = setup("auto", env={})
    assert (ctx.rank, ctx.world, ctx.grouped, ctx.main) == (0, 1, False, True)
    assert pick_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert pick_device("auto").type == "cpu"
        with pytest.raises(RuntimeError, match="no CUDA device"):
            pick_device("cuda", 1)
    else:
        assert pick_device("cuda", 1) == torch.device("cuda", 1)


def test_more_ranks_than_batches_leaves_a_rank_idle_and_changes_nothing(inet, tmp_path):
    one, two = tmp_path / "one" / "r.json", tmp_path / "two" / "r.json"
    _run(inet, one, batch=23, erf_inputs=0)  # 23 images: 1 batch for 2 ranks, rank 1 has none and waits at the end
    _run(inet, two, procs=2, batch=23, erf_inputs=0)  # (no ERFs: the two-process test compares those)
    writers = {p.name.split("-b")[0] for p in (two.with_suffix(".shards") / MODELS[0] / "seed0").iterdir()
               if p.suffix == ".npz"}
    assert writers == {"shard-000-of-002"}
    assert two.read_bytes() == one.read_bytes()
    assert image_scores_path(two).read_bytes() == image_scores_path(one).read_bytes()


def _family_args(out: Path) -> list[str]:
    # 40 images in 4 batches of 10: two for each rank; no ERFs (--erf-inputs 0: none), a small knock-out study
    return ["-m", "res2net.evaluate", "--models", *MODELS, "--seeds", "0", "--limit", "40", "--batch-size", "10",
            "--erf-inputs", "0", "--knockout-images", "8", "--knockout-means", "50", "--threads", "1",
            "--out", str(out)]


@pytest.mark.skipif(not (default_data_dir() / "val.tar.gz").is_file(), reason="Tiny-ImageNet-100 val split absent")
def test_embedded_family_under_torchrun_splits_batches_and_equals_one_process(tmp_path):
    one, two = tmp_path / "one" / "r.json", tmp_path / "two" / "r.json"
    r = subprocess.run([sys.executable, *_family_args(one)], env=_env(), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    # --workers 2: the command starts torchrun itself (the dataset tests above call torchrun directly)
    r = subprocess.run([sys.executable, *_family_args(two), "--workers", "2"], env=_env(), capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    for name in MODELS:  # each rank scored its own two batches of every run, into its own shard files
        files = sorted(p.name for p in (two.with_suffix(".shards") / name / "seed0").iterdir())
        assert files == ["shard-000-of-002-b0000000.npz", "shard-000-of-002-b0000001.npz",
                         "shard-001-of-002-b0000002.npz", "shard-001-of-002-b0000003.npz"], files
    assert r.stdout.count("wrote ") == 1  # rank 0 alone reports and writes
    assert two.read_bytes() == one.read_bytes()
    assert image_scores_path(two).read_bytes() == image_scores_path(one).read_bytes()
    res = json.loads(one.read_text())
    assert res["images"] == 40 and res["erf"] == [] and "no ERFs in this run" in res["caveats"][-1]
    assert not [c for c in res["claims"] if c["section"] == "erf"]
    assert (res["knockout"]["images"], res["knockout"]["mean_images"]) == (8, 50)
    scores = load_image_scores(image_scores_path(one))
    assert scores["image_index"].tolist() == torch.linspace(0, 4999, 40).round().long().tolist()
    assert scores[f"{MODELS[1]}/seed0/layer3.1/energy"].dtype == np.float16
