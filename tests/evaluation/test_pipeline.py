"""The evaluate command: tap groups, per-image scores against a hand-written registered Grad-CAM, and the results
files: recomputed from the per-image scores, verdicts equal to the rule on their own intervals, byte-identical
reruns, and the shipped file consistent with the model cards."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import res2net
from res2net.data.tiny_imagenet import Split, default_data_dir, load_split
from res2net.evaluation import protocol as ev
from res2net.evaluation.cli import main as evaluate_main
from res2net.evaluation.results import image_scores_path, load_image_scores, load_results
from res2net.evaluation.scoring import score_batch
from res2net.metrics import boxes as L
from res2net.metrics import statistics as S

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "assets" / "results" / "tiny_imagenet_100.json"
WEIGHTS = ROOT / "assets" / "weights"
needs_data = pytest.mark.skipif(not (default_data_dir() / "val.tar.gz").is_file(),
                                reason="Tiny-ImageNet-100 val split absent")


def _hand_registered_gradcam(model: torch.nn.Module, block: torch.nn.Module, stride: int, x: torch.Tensor,
                             y: torch.Tensor) -> np.ndarray:
    """Grad-CAM of class y at a block's output (forward hook + autograd), each cell placed at input pixel
    stride * i (its receptive-field centre), linear in between and the edge value beyond (np.interp)."""
    store = {}
    h = block.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    try:
        logits = model(x)
    finally:
        h.remove()
    a = store["a"]
    (g,) = torch.autograd.grad(logits.gather(1, y[:, None]).sum(), a)
    cam = torch.relu((g.mean((2, 3), keepdim=True) * a).sum(1)).detach().double().numpy()
    size = x.shape[-1]
    centres = stride * np.arange(cam.shape[-1])
    out = np.empty((cam.shape[0], size, size))
    for n, m in enumerate(cam):
        rows = np.stack([np.interp(np.arange(size), centres, m[:, j]) for j in range(m.shape[1])], 1)
        out[n] = np.stack([np.interp(np.arange(size), centres, r) for r in rows])
    return out


def _toy_split(n: int = 6) -> Split:
    g = torch.Generator().manual_seed(3)
    x0 = torch.randint(0, 30, (n, 2), generator=g)
    boxes = torch.cat([x0, x0 + torch.randint(5, 33, (n, 2), generator=g)], 1).to(torch.int16)
    return Split(torch.randint(0, 256, (n, 3, 64, 64), dtype=torch.uint8, generator=g),
                 torch.randint(0, 100, (n,), generator=g), [f"v{i}" for i in range(n)], boxes, [])


def test_stage_taps_are_the_last_block_of_each_stage_with_its_branches() -> None:
    groups = ev.stage_taps(res2net.create_model("tiny_res2net26_4s"))
    assert list(groups) == ["layer1", "layer2", "layer3", "layer4"]
    assert groups["layer3"] == {"output": "layer3.1", **{f"branch{i}": f"layer3.1.branch{i}" for i in range(4)}}
    assert ev.stage_taps(res2net.create_model("tiny_resnet26"))["layer2"]["output"] == "layer2.1"


def test_scores_match_a_hand_written_registered_gradcam(one_thread) -> None:
    torch.manual_seed(0)
    model = res2net.create_model("tiny_res2net26_4s").eval()
    for m in model.modules():  # non-trivial BN statistics, so random init is not a degenerate case
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    split = _toy_split()
    boxes = split.boxes.numpy().astype(int)
    scores = score_batch(model, split.images, split.labels, [[tuple(b)] for b in boxes.tolist()])
    mean = torch.tensor(model.spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(model.spec.std).view(1, 3, 1, 1)
    x = (split.images.float() / 255.0 - mean) / std
    for stage, block, stride in (("layer2", model.layer2[1], 8), ("layer3", model.layer3[1], 16)):
        ref = _hand_registered_gradcam(model, block, stride, x, split.labels)
        energy = [m[y0:y1, x0:x1].sum() / m.sum() if m.sum() > 0 else 0.0  # a flat map is a miss (every metric)
                  for m, (x0, y0, x1, y1) in zip(ref, boxes, strict=True)]
        np.testing.assert_allclose(scores[f"{stage}/output/energy"], energy, rtol=1e-4, atol=1e-5)
        cover = [(m[y0:y1, x0:x1] >= 0.5 * m.max()).mean() if m.max() > 0 else 0.0  # an all-zero map covers nothing
                 for m, (x0, y0, x1, y1) in zip(ref, boxes, strict=True)]
        np.testing.assert_allclose(scores[f"{stage}/output/coverage"], cover, atol=1e-9)
        assert scores[f"{stage}/output/maxboxacc_iou"].shape == (len(split), len(L.BOXACC_THRESHOLDS))
    assert "layer3/branch2/energy" in scores and "layer3/branch2/coverage" not in scores


def test_subset_indices_are_even_and_cover_the_range() -> None:
    assert ev.even_indices(5000, 5).tolist() == [0, 1250, 2500, 3749, 4999]
    assert ev.even_indices(10, None).tolist() == list(range(10)) == ev.even_indices(10, 12).tolist()


@pytest.fixture(scope="module")
def subset_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (default_data_dir() / "val.tar.gz").is_file():
        pytest.skip("Tiny-ImageNet-100 val split absent")
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("eval") / "r.json"
    argv = ["--models", "tiny_resnet26", "tiny_res2net26_4s", "--seeds", "0", "1", "--limit", "120",
            "--erf-inputs", "3", "--erf-size", "96", "--knockout-images", "30", "--knockout-means", "200",
            "--out", str(out)]
    assert evaluate_main(argv) == 0
    return out


def test_subset_run_top1_and_buckets_recomputed_from_per_image_scores(subset_run: Path) -> None:
    res = load_results(subset_run).to_json()
    scores = load_image_scores(image_scores_path(subset_run))
    val = load_split("val")
    idx = ev.even_indices(len(val), 120)
    assert scores["image_index"].tolist() == idx.tolist()
    # top-1 of seed 1, independently
    model = res2net.create_model("tiny_res2net26_4s", pretrained=True, seed=1)
    mean = torch.tensor(model.spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(model.spec.std).view(1, 3, 1, 1)
    with torch.no_grad():
        pred = model((val.images[idx].float() / 255.0 - mean) / std).argmax(1)
    correct = (pred == val.labels[idx]).numpy()
    assert scores["tiny_res2net26_4s/seed1/correct"].tolist() == correct.tolist()
    run1 = [r for r in res["models"]["tiny_res2net26_4s"]["runs"] if r["seed"] == 1][0]
    assert run1["top1"] == round(100 * correct.mean(), 2)
    # size buckets from the boxes, by hand: area fraction < 0.25 small, >= 0.6 large
    b = val.boxes[idx].numpy().astype(float)
    frac = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) / 64**2
    small, large = frac < 0.25, frac >= 0.6
    for bucket, mask in (("small", small), ("large", large)):
        for metric in ("energy", "coverage"):
            row = [r for r in res["localisation"] if (r["model"], r["stage"], r["group"], r["subset"], r["bucket"],
                                                      r["metric"]) == ("tiny_res2net26_4s", "layer3", "output",
                                                                       "all", bucket, metric)][0]
            vals = np.stack([scores[f"tiny_res2net26_4s/seed{s}/layer3.1/{metric}"] for s in (0, 1)]).astype(float)
            v = vals[:, mask]
            assert row["n"] == int(mask.sum())
            assert row["mean"] == pytest.approx(np.nanmean(v), abs=1e-4)
            assert row["low"] < row["mean"] < row["high"]
            est, samples = S.hierarchical_bootstrap([v], val.labels[idx].numpy()[mask], n=ev.BOOT_SUMMARY, seed=0)
            lo, hi = np.quantile(samples[np.isfinite(samples)], [0.025, 0.975])
            assert (row["low"], row["high"]) == (pytest.approx(lo, abs=1e-4), pytest.approx(hi, abs=1e-4))
    # the uniform baseline is the box fraction; MaxBoxAcc rows are a best-threshold share
    assert res["baselines"]["small"]["uniform_energy"] == pytest.approx(frac[small].mean(), abs=1e-4)
    acc = [r for r in res["localisation"] if r["metric"] == "maxboxacc" and r["bucket"] == "all"
           and r["subset"] == "all" and r["model"] == "tiny_resnet26" and r["stage"] == "layer3"][0]
    hits = np.stack([scores[f"tiny_resnet26/seed{s}/layer3.1/maxboxacc"] for s in (0, 1)]).astype(float)
    assert acc["mean"] == pytest.approx(hits.mean((0, 1)).max(), abs=1e-4)



def _paired(scores: dict, tap: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(runs, images) arrays of the Res2Net and the ResNet, run r of both from the same seed."""
    key = "correct" if metric == "top1" else f"{tap}/{metric}"
    return tuple(np.stack([scores[f"{m}/seed{s}/{key}"] for s in (0, 1)]).astype(float)
                 for m in ("tiny_res2net26_4s", "tiny_resnet26"))


def _hand_difference(xa: np.ndarray, xb: np.ndarray, keep: np.ndarray, metric: str) -> float:
    """Mean over the kept (run, image) pairs finite in both, Res2Net minus ResNet (MaxBoxAcc: best threshold each)."""
    keep = keep & np.isfinite(xa.reshape(*keep.shape, -1)).all(-1) & np.isfinite(xb.reshape(*keep.shape, -1)).all(-1)
    if metric == "maxboxacc":
        return float(xa[keep].mean(0).max() - xb[keep].mean(0).max())
    return float(xa[keep].mean() - xb[keep].mean())


def _paired_interval(xa: np.ndarray, xb: np.ndarray, labels: np.ndarray, keep: np.ndarray, metric: str
                     ) -> tuple[float, float]:
    """95% percentile interval of the paired hierarchical bootstrap of the difference (2000 resamples, seed 0)."""
    stat = (lambda ms: ms[0].max(1) - ms[1].max(1)) if metric == "maxboxacc" else None
    _, samples = S.hierarchical_bootstrap([xa, xb], labels, statistic=stat, mask=keep, n=ev.BOOT_COMPARE, seed=0)
    lo, hi = np.quantile(samples[np.isfinite(samples)], [0.025, 0.975])
    return float(lo), float(hi)


def test_subset_run_comparisons_and_claims_recomputed_from_per_image_scores(subset_run: Path) -> None:
    """Res2Net minus ResNet per bucket, all images and those both models classify correctly: the difference by hand
    from the stored per-image scores, the interval from the bootstrap of the same seed's runs paired image by image."""
    res = load_results(subset_run).to_json()
    scores = load_image_scores(image_scores_path(subset_run))
    val = load_split("val")  # labels and boxes come from the dataset, by the stored image index
    idx = torch.as_tensor(scores["image_index"])
    labels = val.labels[idx].numpy()
    b = val.boxes[idx].numpy().astype(float)
    frac = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) / 64**2
    buckets = {"small": frac < 0.25, "large": frac >= 0.6}
    ca, cb = _paired(scores, "", "top1")
    both = (ca == 1) & (cb == 1)
    assert 0 < both.sum() < (ca == 1).sum()  # the 'both correct' rows drop images one model gets right
    claims = {c["id"]: c for c in res["claims"]}
    cmp_rows = {(r["bucket"], r["subset"], r["metric"]): r for r in res["comparisons"]
                if (r["model"], r["stage"]) == ("tiny_res2net26_4s", "layer3")}
    checked = 0
    for bucket, metrics in (("small", ("energy", "pointing")), ("large", ("coverage", "maxboxacc"))):
        m = buckets[bucket]
        for metric in metrics:
            xa, xb = (x[:, m] for x in _paired(scores, "layer3.1", metric))
            for subset, keep in (("all", np.ones_like(both[:, m])), ("both correct", both[:, m])):
                want = _hand_difference(xa, xb, keep, metric)
                lo, hi = _paired_interval(xa, xb, labels[m], keep, metric)
                row = cmp_rows[(bucket, subset, metric)]
                kept = int(m.sum()) if subset == "all" else round(float(keep.sum(1).mean()))  # per run, on average
                assert row["n"] == kept
                assert (row["diff"], row["low"], row["high"]) == (pytest.approx(want, abs=1e-4),
                                                                  pytest.approx(lo, abs=1e-4),
                                                                  pytest.approx(hi, abs=1e-4)), (bucket, subset, metric)
                if subset == "all" and metric != "maxboxacc":  # the raw difference, beside the control gains
                    c = claims[f"{metric}-{bucket}-tiny_res2net26_4s-raw"]
                    assert c["images"] == kept and c["control"] == "none" and c["family"] == "exploratory"
                    assert c["estimate"] == pytest.approx(want, abs=1e-4)
                checked += 1
    assert checked == 8
    top1 = claims["top1-tiny_res2net26_4s"]
    assert top1["estimate"] == pytest.approx(100 * (ca.mean() - cb.mean()), abs=1e-4)


def _check_verdicts(res: dict) -> None:
    """Each verdict is the rule applied to its own interval; confirmatory claims are one Holm family judged in rank
    order at 1 - 0.05/(m - k) until the first inconclusive one, and the rest are 'not tested' (no judged interval)."""
    confirm = [c for c in res["claims"] if c["family"] == "confirmatory"]
    m = len(confirm)
    tested = sorted((c for c in confirm if c["tested"]), key=lambda c: c["holm_rank"])
    assert [c["holm_rank"] for c in tested] == list(range(len(tested)))
    for k, c in enumerate(tested):
        assert c["level"] == pytest.approx(1 - 0.05 / (m - k), abs=1e-6), c["id"]
        assert c["verdict"] == S.verdict((c["low"], c["high"]), c["min_effect"]), c["id"]
        assert c["verdict"] != "inconclusive" or k == len(tested) - 1, c["id"]  # an inconclusive one stops Holm
    assert len(tested) == m or tested[-1]["verdict"] == "inconclusive"
    for c in confirm:
        if not c["tested"]:
            assert c["verdict"] == "not tested" and c["low"] is None and c["high"] is None, c["id"]
    for c in res["claims"]:
        assert c["low"] is None or c["low"] <= c["estimate"] <= c["high"], c["id"]
        assert c["low95"] <= c["estimate"] <= c["high95"], c["id"]
        if c["family"] == "exploratory":
            assert c["verdict"] == S.verdict((c["low"], c["high"]), c["min_effect"])


def test_subset_run_claims_follow_their_intervals(subset_run: Path) -> None:
    res = load_results(subset_run).to_json()
    _check_verdicts(res)
    ids = {c["id"] for c in res["claims"]}
    assert {"top1-tiny_res2net26_4s", "energy-small-tiny_res2net26_4s-over-mismatch",
            "energy-small-tiny_res2net26_4s-over-spread", "pointing-small-tiny_res2net26_4s-over-mismatch",
            "coverage-large-tiny_res2net26_4s-over-mismatch", "maxboxacc-large-tiny_res2net26_4s",
            } <= ids
    probes = ("96px-noise", "own-size-noise", "own-val-images")  # the study's noise, noise and images at 64 px
    assert {f"erf-{k}-{p}-tiny_res2net26_4s" for k in ("branches", "block") for p in probes} <= ids
    assert {c["target"] for c in res["claims"]} == {"architecture"}  # two runs: claims about the architecture
    for c in res["claims"]:
        if c["section"] == "erf":  # what training adds: the trained difference minus the random-init one
            trained, init = (float(v) for v in re.findall(r"trained (-?[\d.]+) px, random init (-?[\d.]+) px",
                                                          c["caveat"])[0])
            assert c["estimate"] == pytest.approx(trained - init, abs=2e-4), c["id"]
            assert c["runs"] == 2 and c["df"] == 1 and c["control"] == "random init"
    assert all(c["layer"].startswith(res["verdict_layer"]) for c in res["claims"]
               if c["section"] not in ("accuracy", "knockout"))
    knockout = [c for c in res["claims"] if c["section"] == "knockout"]  # one family: lesions below the verdict layer
    assert {c["layer"].split()[0] for c in knockout} == {"layer1.1", "layer2.1"}
    assert all(c["family"] == "confirmatory" for c in knockout)
    assert [c["id"] for c in res["knockout"]["claims"]] == [c["id"] for c in knockout]
    stages = {r["stage"] for r in res["localisation"]}
    assert stages == {"layer1", "layer2", "layer3", "layer4"}  # every stage in the tables


def test_subset_results_render_on_the_claims_page(subset_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    from dashboard.services import study_data

    monkeypatch.setattr(study_data, "RESULTS_FILE", subset_run)
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.session_state["device"] = "cpu"
    at.run()
    at.switch_page("views/claims.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.header) == 4 and len(at.get("plotly_chart")) >= 2  # accuracy, localisation, ERF, knock-out
    res = load_results(subset_run)
    ps = res.placement_sensitivity
    changed = sum(r.changes for r in ps.rows)
    label = f"{changed} of {len(ps.rows)} confirmatory verdicts change with the placement"
    assert any(label in e.label for e in at.expander)
    table = next(d.value for d in at.dataframe if "effective centre" in d.value.columns)
    assert len(table) == len(ps.rows)
    for row, r in zip(table.to_dict("records"), ps.rows, strict=True):  # each cell: verdict (estimate)
        for rule, words in (("rf_centre", "RF centre (the claims)"), ("effective_centre", "effective centre"),
                            ("half_pixel", "half-pixel")):
            assert row[words].startswith(r.placements[rule].verdict)
        assert row["verdict changes"] == ("yes" if r.changes else "no")


@pytest.mark.skipif(not RESULTS.is_file(), reason="assets/results/tiny_imagenet_100.json not generated yet")
def test_shipped_results_agree_with_the_model_cards_and_the_rule() -> None:
    res = load_results(RESULTS).to_json()
    assert res["limit"] is None and res["images"] == 5000
    for name, entry in res["models"].items():
        assert entry["run_count"] >= 3, name
        for r in entry["runs"]:
            card = res2net.models.weights.read_model_card(name, r["seed"])
            assert r["weights_sha256"] == card["sha256"], f"{name} seed {r['seed']}: other weights; rerun evaluate"
            assert r["top1"] == pytest.approx(card["top1"], abs=0.1)
    if res["schema_version"] < 3:
        pytest.skip("the shipped results predate schema 3 (claims with targets and controls): regenerate them")
    _check_verdicts(res)
    scores = load_image_scores(image_scores_path(RESULTS))
    assert scores["image_index"].shape == (5000,)


def test_subset_run_rejudges_every_confirmatory_claim_under_three_placements(subset_run: Path) -> None:
    """Placement sensitivity: the RF-centre column is the claim itself; the effective centres are each run's
    gradient centroids (increasing, pulled inside the RF grid at the border); half-pixel and effective-centre scores
    differ from the RF ones where the maps are not flat."""
    res = load_results(subset_run)
    arrays = load_image_scores(image_scores_path(subset_run))
    ps = res.placement_sensitivity
    assert ps is not None and ps.probes == ev.PLACEMENT_PROBES
    by_id = {c.id: c for c in res.claims}
    confirmatory = {c.id for c in res.claims if c.family == "confirmatory"}
    assert {r.id for r in ps.rows} == confirmatory
    for r in ps.rows:
        assert set(r.placements) == {"rf_centre", "effective_centre", "half_pixel"}
        rf = r.placements["rf_centre"]
        assert (rf.estimate, rf.low, rf.high, rf.verdict) == (by_id[r.id].estimate, by_id[r.id].low,
                                                              by_id[r.id].high, by_id[r.id].verdict)
        assert r.changes == (len({p.verdict for p in r.placements.values()}) > 1)
    assert set(ps.centres) == {"tiny_resnet26", "tiny_res2net26_4s"}
    for runs in ps.centres.values():
        assert set(runs) == {"seed0", "seed1"}
        for c in runs.values():
            rows = np.asarray(c["rows"])
            assert rows.size == 4 and (np.diff(rows) > 0).all() and rows[0] > 0 and rows[-1] < 48
    tap = res.models["tiny_res2net26_4s"].taps["layer3"]["output"]
    rf_energy = arrays[f"tiny_res2net26_4s/seed0/{tap}/energy"].astype(np.float64)
    for rule in ev.SENSITIVITY_PLACEMENTS:
        other = arrays[f"tiny_res2net26_4s/seed0/{tap}/{rule}/energy"].astype(np.float64)
        ok = np.isfinite(rf_energy) & np.isfinite(other)
        assert ok.sum() > 50 and not np.allclose(rf_energy[ok], other[ok])
