"""The evaluate command: tap groups, localisation scores against a hand-written Grad-CAM, and the results file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import res2net
from res2net import evaluate as ev
from res2net.data import Split, default_data_dir, load_split

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "assets" / "results" / "tiny_imagenet_100.json"
WEIGHTS = ROOT / "assets" / "weights"


def _hand_gradcam_energy(model: torch.nn.Module, block: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                         boxes: np.ndarray) -> np.ndarray:
    """Grad-CAM of class y at a block's output, written out with a forward hook and autograd, energy in box."""
    store = {}
    h = block.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
    try:
        logits = model(x)
    finally:
        h.remove()
    a = store["a"]
    (g,) = torch.autograd.grad(logits.gather(1, y[:, None]).sum(), a)
    cam = torch.relu((g.mean((2, 3), keepdim=True) * a).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0].detach().numpy()
    out = []
    for m, (x0, y0, x1, y1) in zip(cam, boxes, strict=True):
        total = m.sum()
        out.append(m[y0:y1 + 1, x0:x1 + 1].sum() / total if total > 0 else np.nan)  # inclusive box ends
    return np.array(out)


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


def test_energy_scores_match_a_hand_written_gradcam() -> None:
    torch.manual_seed(0)
    model = res2net.create_model("tiny_res2net26_4s").eval()
    for m in model.modules():  # non-trivial BN statistics, so random init is not a degenerate case
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    split = _toy_split()
    idx = torch.arange(len(split))
    scores = ev.localisation_scores(model, "tiny_res2net26_4s", split, idx, ["layer2.1", "layer3.1"], {"layer3.1"})
    mean, std = ev.normalizer("tiny_res2net26_4s", torch.device("cpu"))
    x = (split.images.float() / 255.0 - mean) / std
    for tap, block in (("layer2.1", model.layer2[1]), ("layer3.1", model.layer3[1])):
        ref = _hand_gradcam_energy(model, block, x, split.labels, split.boxes.numpy().astype(int))
        np.testing.assert_allclose(scores[tap]["energy"], ref, rtol=1e-4, atol=1e-5)
    assert "iou" in scores["layer3.1"] and "iou" not in scores["layer2.1"]
    assert ((scores["layer3.1"]["iou"] >= 0) & (scores["layer3.1"]["iou"] <= 1)).all()


def test_subset_indices_are_even_and_cover_the_range() -> None:
    assert ev.subset_indices(5000, 5).tolist() == [0, 1250, 2500, 3749, 4999]
    assert ev.subset_indices(10, None).tolist() == list(range(10))


@pytest.mark.skipif(not (default_data_dir() / "val.tar.gz").is_file(), reason="Tiny-ImageNet-100 val split absent")
@pytest.mark.skipif(not (WEIGHTS / "tiny_resnet26.pth").is_file(), reason="tiny_resnet26 weights not shipped yet")
def test_evaluate_on_a_subset_reproduces_independent_numbers(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert ev.main(["--models", "tiny_resnet26", "--limit", "40", "--erf-images", "4", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    entry = res["models"]["tiny_resnet26"]
    val = load_split("val")
    idx = ev.subset_indices(len(val), 40)
    model = res2net.create_model("tiny_resnet26", pretrained=True)
    mean, std = ev.normalizer("tiny_resnet26", torch.device("cpu"))
    x = (val.images[idx].float() / 255.0 - mean) / std
    with torch.no_grad():
        top1 = 100.0 * float((model(x).argmax(1) == val.labels[idx]).float().mean())
    assert entry["top1"] == pytest.approx(top1, abs=1e-6)
    ref = _hand_gradcam_energy(model, model.layer3[1], x, val.labels[idx], val.boxes[idx].numpy().astype(int))
    got = entry["localisation"]["layer3"]["output"]["all"]["energy"]
    assert got["mean"] == pytest.approx(float(np.nanmean(ref)), abs=1e-3)
    assert got["low"] <= got["mean"] <= got["high"]
    assert set(entry["erf"]["taps"]) == {f"layer{i}.1.branch0" for i in range(1, 5)}


@pytest.mark.skipif(not RESULTS.is_file(), reason="assets/results/tiny_imagenet_100.json not generated yet")
def test_results_file_agrees_with_the_model_cards() -> None:
    res = json.loads(RESULTS.read_text())
    for name, entry in res["models"].items():
        card = json.loads((WEIGHTS / f"{name}.json").read_text())
        assert entry["weights_sha256"] == card["sha256"], f"{name}: results made with other weights; rerun evaluate"
        if res["limit"] is None:
            assert entry["top1"] == pytest.approx(card["top1"], abs=0.5)
            for stage in entry["localisation"].values():
                chance = stage["output"]["all"]["chance_energy"]
                assert 0 < chance < 1
