"""Training: exact resume, augmentation against torchvision, release files, and the shipped weights' accuracy."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF

import res2net
from res2net.data.tiny_imagenet import Split, default_data_dir, load_split
from res2net.evaluation.results import load_image_scores
from res2net.models.weights import WeightsUnavailableError, embedded_seeds, read_model_card
from res2net.train import TrainConfig, TrainError, augment, train, write_release

torch.set_num_threads(1)
MODEL = "tiny_resnet26"
ASSETS = Path(__file__).resolve().parent.parent / "assets" / "weights"
RESULTS = ASSETS.parent / "results" / "tiny_imagenet_100.json"
EMBEDDED = ["tiny_resnet26", "tiny_res2net26_2s", "tiny_res2net26_4s", "tiny_res2net26_8s"]


def _toy_split(n: int = 12) -> Split:
    g = torch.Generator().manual_seed(1)
    return Split(
        images=torch.randint(0, 256, (n, 3, 64, 64), dtype=torch.uint8, generator=g),
        labels=torch.randint(0, 100, (n,), generator=g),
        files=[f"img_{i}.JPEG" for i in range(n)],
        boxes=torch.zeros(n, 4, dtype=torch.int16),
        wnids=[f"n{i:08d}" for i in range(100)],
    )


def _cfg(max_steps: int | None) -> TrainConfig:
    # 12 images, batch 4: 3 steps an epoch, so step 4 lies in the second epoch (a new augmentation plan)
    return TrainConfig(model=MODEL, epochs=2, batch_size=4, max_steps=max_steps)


def test_resume_equals_uninterrupted_run(tmp_path: Path) -> None:
    data = _toy_split()
    full = train(_cfg(4), data, tmp_path / "full", progress=False)
    first = train(_cfg(2), data, tmp_path / "cut", progress=False)
    assert first["step"] == 2 and not first["done"]
    resumed = train(_cfg(4), data, tmp_path / "cut", resume=True, progress=False)
    assert resumed["step"] == full["step"] == 4
    a, b = full["model"].state_dict(), resumed["model"].state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ca = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=False)
    cb = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)
    assert ca["scheduler"]["last_epoch"] == cb["scheduler"]["last_epoch"] == 4
    for sa, sb in zip(ca["optimizer"]["state"].values(), cb["optimizer"]["state"].values(), strict=True):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])
    # and the two steps changed something: the check above is not comparing untouched weights
    fresh = res2net.create_model(MODEL).state_dict()
    assert not torch.equal(fresh["fc.weight"], a["fc.weight"])


def test_resume_refuses_other_config_and_fresh_start_refuses_existing_run(tmp_path: Path) -> None:
    data = _toy_split()
    train(_cfg(1), data, tmp_path / "run", progress=False)
    with pytest.raises(TrainError, match="different config"):
        train(TrainConfig(model=MODEL, epochs=3, batch_size=4), data, tmp_path / "run", resume=True, progress=False)
    with pytest.raises(TrainError, match="--resume"):
        train(_cfg(2), data, tmp_path / "run", progress=False)
    with pytest.raises(TrainError, match="no checkpoint"):
        train(_cfg(2), data, tmp_path / "empty", resume=True, progress=False)


def test_augment_matches_torchvision_pad_crop_flip() -> None:
    g = torch.Generator().manual_seed(0)
    imgs = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8, generator=g)
    dx, dy = torch.tensor([0, 8, 3]), torch.tensor([0, 5, 4])
    flip = torch.tensor([False, True, False])
    out = augment(imgs, dx, dy, flip)
    for i in range(3):
        ref = TF.pad(imgs[i].float() / 255.0, [4, 4, 4, 4], padding_mode="reflect")
        ref = TF.crop(ref, int(dy[i]), int(dx[i]), 64, 64)
        if flip[i]:
            ref = TF.hflip(ref)
        torch.testing.assert_close(out[i], ref, rtol=0, atol=0)
    # offset (4, 4) without flip is the identity
    torch.testing.assert_close(augment(imgs, torch.full((3,), 4), torch.full((3,), 4), torch.zeros(3, dtype=bool)),
                               imgs.float() / 255.0, rtol=0, atol=0)


def test_release_files_load_through_create_model(tmp_path: Path) -> None:
    res = train(_cfg(2), _toy_split(), tmp_path / "run", progress=False)
    pth, card_path = write_release(res["model"], _cfg(None), {"top1": 1.0, "top5": 5.0}, tmp_path / "out",
                                   res["train_seconds"], torch.device("cpu"), {"name": "toy"})
    card = json.loads(card_path.read_text())
    assert card["sha256"] == hashlib.sha256(pth.read_bytes()).hexdigest()
    for key in ("name", "arch", "scale", "params", "gmacs", "input_size", "mean", "std", "top1", "top5", "epochs",
                "seed", "recipe", "train_seconds", "device", "data", "sha256", "stem_rationale"):
        assert key in card, key
    state = torch.load(pth, weights_only=True)
    model = res2net.create_model(MODEL)
    assert list(state) == list(model.state_dict())
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())  # half the bytes
    loaded = res2net.create_model(MODEL, pretrained=pth)
    for k, v in res["model"].state_dict().items():
        want = v.half().float() if v.is_floating_point() else v  # what ships is the float16-rounded value
        assert torch.equal(loaded.state_dict()[k], want), k
    assert pth.name == f"{MODEL}.pth" and card["seed"] == 0
    other = write_release(res["model"], TrainConfig(model=MODEL, epochs=1, seed=3, batch_size=4),
                          {"top1": 1.0, "top5": 5.0}, tmp_path / "out", 1.0, torch.device("cpu"), {"name": "toy"})
    assert [p.name for p in other] == [f"{MODEL}-seed3.pth", f"{MODEL}-seed3.json"]
    assert card["params"] == sum(p.numel() for p in model.parameters())


SEEDS = (0, 1, 2, 3, 4)


def test_every_embedded_model_ships_its_five_runs_within_the_size_budget() -> None:
    for name in EMBEDDED:
        assert embedded_seeds(name) == list(SEEDS), name
        recipes = {json.dumps({k: v for k, v in read_model_card(name, s)["recipe"].items()}, sort_keys=True)
                   for s in embedded_seeds(name)}
        assert len(recipes) == 1, f"{name}: runs with different recipes"
        assert [read_model_card(name, s)["seed"] for s in embedded_seeds(name)] == embedded_seeds(name)
    total = sum(p.stat().st_size for p in ASSETS.glob("*.pth"))
    assert total <= 40 * 2**20, f"shipped weights take {total / 2**20:.1f} MB"
    with pytest.raises(ValueError, match="pretrained=True"):
        res2net.create_model(EMBEDDED[0], seed=1)
    with pytest.raises(WeightsUnavailableError, match="seed 99"):
        res2net.create_model(EMBEDDED[0], pretrained=True, seed=99)


SPOT_EVERY = 25  # the independent forward pass checks every 25th val image (200 of 5,000)


@pytest.fixture(scope="module")
def shipped_correct() -> dict[str, np.ndarray]:
    """Per-image top-1 hits of every shipped run over the whole val split, from the shipped results file."""
    return {k: v for k, v in load_image_scores(RESULTS.with_suffix(".npz")).items()
            if k.endswith("/correct") or k == "image_index"}


@pytest.mark.parametrize(("name", "seed"), [(n, s) for n in EMBEDDED for s in embedded_seeds(n)])
def test_shipped_weights_reproduce_card_top1(name: str, seed: int, shipped_correct: dict[str, np.ndarray]) -> None:
    """The card's top-1 is the shipped results' per-image hits over all 5,000 val images, and those hits are this
    run's: an independent forward pass of the stored weights on every 25th image gives the same hits."""
    if not (default_data_dir() / "val.tar.gz").is_file():
        pytest.skip(f"Tiny-ImageNet-100 val split not found at {default_data_dir()} (set RES2NET_DATA)")
    card = read_model_card(name, seed)
    assert card is not None and card["seed"] == seed, f"{name} seed {seed}: no model card shipped"
    key = f"{name}/seed{seed}/correct"
    assert key in shipped_correct, f"{name} seed {seed} is shipped but not in {RESULTS.name}: regenerate the results"
    val = load_split("val")
    assert shipped_correct["image_index"].tolist() == list(range(len(val)))
    hits = shipped_correct[key].astype(bool)
    assert round(100.0 * hits.mean(), 2) == pytest.approx(card["top1"], abs=0.1)  # card: stored float16 values
    assert card["top1"] >= 40.0
    model = res2net.create_model(name, pretrained=True, seed=seed)  # embedded: no network involved
    idx = torch.arange(0, len(val), SPOT_EVERY)
    mean = torch.tensor(card["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(card["std"]).view(1, 3, 1, 1)
    with torch.inference_mode():
        mine = (model((val.images[idx].float() / 255.0 - mean) / std).argmax(1) == val.labels[idx]).numpy()
    differ = int((mine != hits[idx.numpy()]).sum())
    assert differ <= 1, f"{differ} of {len(idx)} images scored differently"  # one: an argmax tie across batchings


def test_evaluate_split_counts_top1_and_top5_of_the_spec_normalised_images() -> None:
    from res2net.train import evaluate_split

    torch.manual_seed(0)
    model = res2net.create_model(MODEL).eval()
    data = _toy_split(10)
    mean = torch.tensor(model.spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(model.spec.std).view(1, 3, 1, 1)
    with torch.no_grad():
        top = model((data.images.float() / 255.0 - mean) / std).topk(5, 1).indices
    data.labels[:4] = top[:4, 0]  # 4 right at top-1, 3 more within the top five, 3 wrong everywhere
    data.labels[4:7] = top[4:7, 3]
    data.labels[7:] = torch.tensor([k for k in range(100) if k not in top[7:].flatten().tolist()][:3])
    assert evaluate_split(model, data, batch_size=3) == {"top1": 40.0, "top5": 70.0}
