"""The knock-out study: at most (branches + 1) scored passes per block, per-image scores equal to a hand-made direct
lesion (a hook writing the hand-computed train mean into the fusion conv's input), the lesion strength by hand, rows
and interactions recomputed from the per-image scores, the confirmatory contrasts as linear per-run interactions
judged in the one family, and the scale sweep's run intervals by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import res2net
import res2net.analysis.cam
import res2net.geometry.registration
import res2net.models.taps
from res2net.data.tiny_imagenet import default_data_dir, load_split
from res2net.evaluation import knockout_study as K
from res2net.evaluation.judging import judge
from res2net.evaluation.protocol import MIN_EFFECT
from res2net.evaluation.summary import stored
from res2net.metrics import statistics as S

NAMES = ["tiny_resnet26", "tiny_res2net26_4s"]
SEEDS = [0, 1]


@pytest.fixture(scope="module")
def study(one_thread) -> tuple[dict, dict]:
    if not (default_data_dir() / "val.tar.gz").is_file():
        pytest.skip("Tiny-ImageNet-100 absent")
    val = load_split("val")
    arrays = K.run_study(NAMES, SEEDS, default_data_dir(), val, "layer3", n_images=60, n_means=30, log=lambda m: None)
    arrays = stored(arrays)
    return arrays, K.summarise_study(arrays, NAMES, SEEDS, val, "layer3", MIN_EFFECT)


def test_a_block_costs_at_most_branches_plus_one_passes(one_thread) -> None:
    model = res2net.create_model("tiny_res2net26_4s")
    x = torch.randn(10, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(10)
    boxes = np.tile(np.array([[8, 8, 40, 40]]), (10, 1))
    res2net.geometry.registration.register(model, "layer3.1", torch.zeros(4, 4), 64)  # geometry probe, no image
    seen = []
    h = model.register_forward_pre_hook(lambda m, i: seen.append(i[0].shape[0]))
    try:
        out = K.block_knockout(model, x, labels, boxes, "layer3.1", "layer3.1", mode="zero", batch_size=4)
        # intact + 4 branches scored, and the block's output once intact and once per lesion for the strength
        assert sum(seen) == (4 + 1) * 10 + (4 + 1) * 10
        assert set(out) == {"intact", *(f"layer3.1.branch{i}" for i in range(4))}
        seen.clear()
        K.block_knockout(model, x, labels, boxes, "layer2.1", "layer3.1", mode="zero", intact=out["intact"])
        assert sum(seen) == 4 * 10 + (4 + 1) * 10  # the intact pass is shared between blocks
    finally:
        h.remove()
    assert not np.array_equal(out["layer3.1.branch0"]["logprob"], out["intact"]["logprob"])


def _hand_means(model: torch.nn.Module, tap: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    store = {}
    h = tap.register_forward_hook(lambda m, i, o: store.__setitem__("a", o.clone()))
    with torch.no_grad():
        model(images)
    h.remove()
    return store["a"].double().mean((0, 2, 3)).float()


def test_per_image_scores_and_strength_equal_a_hand_made_direct_lesion(study) -> None:
    arrays, _ = study
    val, train = load_split("val"), load_split("train")
    idx = torch.as_tensor(arrays["knockout/image_index"])
    midx = torch.as_tensor(arrays["knockout/mean_index"])
    assert idx.tolist() == torch.linspace(0, len(val) - 1, 60).round().long().tolist()
    spec = res2net.get_spec("tiny_res2net26_4s")
    mean, std = torch.tensor(spec.mean).view(1, 3, 1, 1), torch.tensor(spec.std).view(1, 3, 1, 1)
    model = res2net.create_model("tiny_res2net26_4s", pretrained=True, seed=1).eval()
    block = model.layer2[1]
    mu = _hand_means(model, block.branch0, (train.images[midx].float() / 255 - mean) / std)
    w = block.width

    def direct(m, i):  # only the fusion conv's input slice of branch 0 takes the train mean; branch 1 still sees it
        z = i[0].clone()
        z[:, 0:w] = mu.view(1, -1, 1, 1)
        return (z,)

    xv = (val.images[idx].float() / 255 - mean) / std
    outs = {}
    hb = block.register_forward_hook(lambda m, i, o: outs.__setitem__("block", o.clone()))
    with torch.no_grad():
        model(xv)
        intact = outs["block"].flatten(1).double()
        h = block.conv3.register_forward_pre_hook(direct)
        logits = model(xv)
        h.remove()
    hb.remove()
    changed = outs["block"].flatten(1).double()
    y = val.labels[idx]
    key = "knockout/tiny_res2net26_4s/seed1/layer2.1.branch0"
    want = torch.log_softmax(logits.double(), 1).gather(1, y[:, None])[:, 0].numpy()
    np.testing.assert_allclose(arrays[f"{key}/logprob"].astype(float), want, rtol=2e-3, atol=2e-3)  # float16 stored
    assert arrays[f"{key}/top1"].astype(bool).tolist() == (logits.argmax(1) == y).tolist()
    strength = ((changed - intact).norm(dim=1) / intact.norm(dim=1)).numpy()
    np.testing.assert_allclose(arrays[f"{key}/strength"].astype(float), strength, rtol=2e-3, atol=1e-4)
    assert strength.mean() > 0


def test_rows_and_interactions_are_recomputed_from_the_per_image_scores(study) -> None:
    arrays, res = study
    val = load_split("val")
    idx = torch.as_tensor(arrays["knockout/image_index"])
    b = val.boxes[idx].numpy().astype(float)
    frac = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) / 64 ** 2
    small, large = frac < 0.25, frac >= 0.6
    rows = {(r["model"], r["block"], r["branch"], r["metric"], r["bucket"]): r for r in res["rows"]}
    inter = {(r["model"], r["block"], r["branch"], r["metric"]): r for r in res["interactions"]}
    for name, block, branch, key, metric in (("tiny_res2net26_4s", "layer3.1", 2, "branch2", "energy"),
                                             ("tiny_res2net26_4s", "layer2.1", 0, "branch0", "top1"),
                                             ("tiny_res2net26_4s", "layer1.1", -1, "group", "coverage"),
                                             ("tiny_resnet26", "layer3.1", 0, "branch0", "logprob")):
        pre = f"knockout/{name}/seed"
        h = np.stack([arrays[f"{pre}{s}/intact/{metric}"].astype(float)
                      - arrays[f"{pre}{s}/{block}.{key}/{metric}"].astype(float) for s in SEEDS])
        h = 100 * h if metric == "top1" else h
        strength = np.stack([arrays[f"{pre}{s}/{block}.{key}/strength"].astype(float) for s in SEEDS])
        for bucket, mask in (("small", small), ("large", large)):
            r = rows[(name, block, branch, metric, bucket)]
            assert r["n"] == int(mask.sum()) and r["runs"] == 2
            assert r["harm"] == pytest.approx(h[:, mask].mean(), abs=1e-4)
            assert r["strength"] == pytest.approx(strength[:, mask].mean(), abs=1e-4)
            assert r["low"] <= r["harm"] <= r["high"]
        it = inter[(name, block, branch, metric)]
        assert it["interaction"] == pytest.approx(h[:, large].mean() - h[:, small].mean(), abs=1e-4)
        assert it["verdict"] == S.verdict((it["low"], it["high"]), it["min_effect"])
        assert it["lesion"] == ("random group" if branch < 0 else "branch")
    # every normal block, each with its random channel group of one branch's width (ResNet: a quarter of its 3x3)
    assert {r["block"] for r in res["rows"] if r["model"] == "tiny_res2net26_4s"} == {
        "layer1.1", "layer2.1", "layer3.1", "layer4.1"}
    model = res2net.create_model("tiny_res2net26_4s")
    for blk in ("layer1.1", "layer3.1"):
        group = K.control_channels(model, blk)
        n = dict(res2net.models.taps.iter_blocks(model))[blk].conv3.in_channels
        assert len(group) == n // 4 and len(set(group)) == len(group) and max(group) < n
    rn = res2net.create_model("tiny_resnet26")
    assert len(K.control_channels(rn, "layer2.1")) == rn.layer2[1].conv3.in_channels // 4
    assert {(r["model"], r["block"], r["branch"]) for r in res["resnet_reference"]} == {
        ("tiny_resnet26", f"layer{k}.1", b) for k in range(1, 5) for b in (0, -1)}


def test_confirmatory_contrasts_are_per_run_interactions_judged_in_the_one_family(study) -> None:
    """Each pending claim's per-run mean is that run's interaction(branch s-2) - interaction(branch 0) by hand,
    at layer1 and layer2 only; judged with runs as the top level, its estimate is their mean."""
    arrays, _ = study
    val = load_split("val")
    pending = K.knockout_pending(arrays, NAMES, SEEDS, val, MIN_EFFECT)
    assert [p.fields["id"] for p in pending] == [f"knockout-{m}-{b}-tiny_res2net26_4s" for b in ("layer1.1", "layer2.1")
                                                 for m in ("top1", "energy", "coverage")]
    idx = torch.as_tensor(arrays["knockout/image_index"])
    b = val.boxes[idx].numpy().astype(float)
    frac = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) / 64 ** 2
    small, large = frac < 0.25, frac >= 0.6
    for p in pending:
        block, metric = p.fields["block"], p.fields["metric_name"]
        per_run = []
        for s in SEEDS:
            pre = f"knockout/tiny_res2net26_4s/seed{s}"
            got = {k: arrays[f"{pre}/{k}/{metric}"].astype(float) for k in ("intact", f"{block}.branch2",
                                                                             f"{block}.branch0")}
            d = (got["intact"] - got[f"{block}.branch2"]) - (got["intact"] - got[f"{block}.branch0"])
            d = 100 * d if metric == "top1" else d
            per_run.append(d[large].mean() - d[small].mean())
        np.testing.assert_allclose(p.diffs.mean(1), per_run, atol=1e-9)
        assert p.confirmatory and p.d == MIN_EFFECT[metric]
    judged = judge(pending)
    for c, p in zip(judged, pending, strict=True):
        assert c["target"] == "architecture" and c["runs"] == 2
        assert c["estimate"] == pytest.approx(p.diffs.mean(), abs=1e-4)


def test_scale_sweep_intervals_over_runs_by_hand() -> None:
    res = {"models": {}, "erf": []}
    arrays = {}
    for name, s, top1 in (("a", 1, [50.0, 52.0, 54.0]), ("b", 4, [55.0, 55.0, 58.0])):
        res["models"][name] = {"scale": s, "runs": [{"top1": t} for t in top1],
                               "taps": {"layer3": {"output": "layer3.1"}}}
        res["erf"].append({"model": name, "weights": "trained", "tap": "layer3.1", "radius_50": 3.0,
                           "radius_50_low": 2.0, "radius_50_high": 4.0})
        for sd in range(3):
            arrays[f"{name}/seed{sd}/layer3.1/energy"] = np.array([0.1 * (sd + 1), 0.3, np.nan])  # NaN: zero map
            arrays[f"{name}/seed{sd}/layer3.1/coverage"] = np.array([0.5, 0.5])
    out = K.scale_sweep(res, arrays, ["b", "a"], [0, 1, 2], "layer3")
    a, b = out["rows"]
    assert (a["scale"], b["scale"]) == (1, 4) and a["paper_top1"] == 76.15 and b["paper_top1"] == 77.99
    assert a["top1"]["mean"] == 52.0
    assert a["top1"]["high"] == pytest.approx(52.0 + 4.303 * 2.0 / np.sqrt(3), abs=1e-4)  # t(0.975, df=2)
    assert a["energy"]["per_run"] == [0.2, 0.25, 0.3] and a["coverage"]["low"] == a["coverage"]["high"] == 0.5
    assert out["top1_rises_with_s"] and out["paper_top1_rises_with_s"]
    assert b["erf_radius_50"] == {"mean": 3.0, "low": 2.0, "high": 4.0}


def test_the_view_knocks_out_on_a_users_image_and_toggling_back_recomputes_nothing(monkeypatch, one_thread) -> None:
    import io
    import re
    from pathlib import Path

    from PIL import Image
    from streamlit.testing.v1 import AppTest

    from dashboard.services import shared_cache, sources

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (80, 96, 3), dtype=np.uint8)).save(buf, "PNG")
    calls = []
    real = res2net.analysis.cam.compute_cams
    monkeypatch.setattr(res2net.analysis.cam, "compute_cams", lambda *a, **k: calls.append(1) or real(*a, **k))
    shared_cache.RESULTS.clear()  # knock-out results live in the server's shared cache: start from none
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py"), default_timeout=300)
    at.session_state["device"] = "cpu"
    at.session_state[sources.PICKED] = ("noise.png", buf.getvalue(), None)
    at.run()
    at.switch_page("views/knockout.py").run()
    assert not at.exception, [e.value for e in at.exception]
    key = "ko_branch_tiny_res2net26_4s_layer3.1_0"
    before = len(calls)
    at.checkbox(key=key).check().run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(calls) == before + 1  # one pass with branch 0 knocked out
    top5 = at.table[0].value  # the probability table comes first, as a plain table
    assert (top5["p knocked out"] != top5["p intact"]).any()
    at.checkbox(key=key).uncheck().run()
    at.checkbox(key=key).check().run()
    assert len(calls) == before + 1  # both states came from the cache
    sums = [c.value for c in at.caption if "Sum check" in c.value]
    err = float(re.search(r"block map\| = \*\*([0-9.e+-]+)\*\*", sums[0]).group(1))
    assert err < 1e-4


def test_the_claims_page_shows_the_shipped_knockout_verdicts(one_thread) -> None:
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from res2net.evaluation.results import load_results

    root = Path(__file__).resolve().parents[2]
    res = load_results(root / "assets" / "results" / "tiny_imagenet_100.json").to_json()
    assert {c["model"] for c in res["knockout"]["claims"]} == {"tiny_res2net26_4s", "tiny_res2net26_8s"}
    at = AppTest.from_file(str(root / "dashboard" / "app.py"), default_timeout=300)
    at.session_state["device"] = "cpu"
    at.run()
    at.switch_page("views/claims.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "4 · Branch knock-out and the scale sweep" in [s.value for s in at.header]
    table = next(d.value for d in at.table if "claim" in d.value.columns and "contrast" in d.value.columns)
    assert len(table["claim"]) == len(res["knockout"]["claims"])  # rows name their claims in words, one per claim
    assert all(str(v).endswith(c["verdict"]) for v, c in zip(table["verdict"], res["knockout"]["claims"], strict=True))
    sweep = [r["scale"] for r in res["scale_sweep"]["rows"]]
    assert sweep == [1, 2, 4, 8]


def test_knockout_scores_follow_the_flat_map_rule(monkeypatch, one_thread) -> None:
    """A flat (all-zero) map is a miss, energy 0 and coverage 0, as in every other score: never NaN."""
    model = res2net.create_model("tiny_res2net26_4s")
    x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    boxes = np.tile(np.array([[8, 8, 40, 40]]), (4, 1))
    real = K.compute_cams

    def flat_first_two(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        cams, logits = real(*args, **kwargs)
        return {t: torch.cat([torch.zeros_like(c[:2]), c[2:]]) for t, c in cams.items()}, logits

    monkeypatch.setattr(K, "compute_cams", flat_first_two)
    got = K.score_pass(model, x, torch.arange(4), boxes, "layer3.1")
    assert got["energy"][:2].tolist() == [0.0, 0.0] and got["coverage"][:2].tolist() == [0.0, 0.0]
    assert np.isfinite(got["energy"]).all() and np.isfinite(got["coverage"]).all()
