"""Our models against independent references: timm (Res2Net, DLA) and torchvision (ResNet baselines).

Each reference gets random weights with non-trivial BN statistics and affine parameters; its state dict must
load into our model with ``strict=True`` and give the same logits in float32.
"""

from __future__ import annotations

import pytest
import timm
import torch
import torchvision
from torch import nn

import res2net
from res2net.models.dla import DLA

from helpers import randomise_bn

TOL = 1e-4
RES2NET = res2net.list_models("res2net")
DLA_NAMES = res2net.list_models("dla")
BASELINES = ["resnet50", "resnet101", "resnext50_32x4d"]

# The official tables (Res2Net release README; torchvision docs for the baselines), in millions.
OFFICIAL_PARAMS_M = {
    "res2net50_26w_4s": 25.70, "res2net50_48w_2s": 25.29, "res2net50_14w_8s": 25.06, "res2net50_26w_6s": 37.05,
    "res2net50_26w_8s": 48.40, "res2net101_26w_4s": 45.21, "res2next50": 24.67, "dla60_res2net": 21.15,
    "dla60_res2next": 17.33, "res2net50d": 25.72, "res2net101d": 45.23,
    "resnet50": 25.56, "resnet101": 44.55, "resnext50_32x4d": 25.03,
}


pytestmark = pytest.mark.usefixtures("one_thread")


def reference(name: str) -> nn.Module:
    """The independent implementation of ``name`` with random weights (no zero-initialised last BN)."""
    torch.manual_seed(0)
    if name in BASELINES:
        model = getattr(torchvision.models, name)(weights=None, zero_init_residual=False)
    elif name in DLA_NAMES:
        model = timm.create_model(name, pretrained=False)
    else:
        model = timm.create_model(name, pretrained=False, zero_init_last=False)
    randomise_bn(model)
    return model.eval()


def ours_loaded(name: str, ref: nn.Module) -> nn.Module:
    """Our model with the reference's weights, loaded strictly (DLA's unused projections filled from ours)."""
    ours = res2net.create_model(name)
    state = dict(ref.state_dict())
    if isinstance(ours, DLA):
        own = ours.state_dict()
        state.update({k: own[k] for k in ours.unused_keys()})
    ours.load_state_dict(state, strict=True)
    return ours.eval()


def max_logit_diff(name: str, size: int, batch: int = 2) -> tuple[float, torch.Tensor]:
    ref = reference(name)
    ours = ours_loaded(name, ref)
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = ref(x), ours(x)
    assert got.shape == expected.shape == (batch, 1000)
    return (got - expected).abs().max().item(), expected


def assert_nontrivial(logits: torch.Tensor) -> None:
    """Logits that vary across classes and inputs, so that a wrong forward could not match by accident."""
    assert torch.isfinite(logits).all()
    assert logits.std(dim=1).min() > 1e-2
    assert (logits[0] - logits[1]).abs().max() > 1e-2


def test_every_registered_family_is_covered():
    assert len(RES2NET) == 9 and len(DLA_NAMES) == 2
    assert set(OFFICIAL_PARAMS_M) == set(RES2NET) | set(DLA_NAMES) | set(BASELINES)


@pytest.mark.parametrize("name", RES2NET + DLA_NAMES)
def test_logits_match_timm(name):
    diff, logits = max_logit_diff(name, 64)
    assert_nontrivial(logits)
    assert diff <= TOL, f"{name}: max |logit diff| {diff:.3g}"


@pytest.mark.parametrize("name", BASELINES)
def test_logits_match_torchvision(name):
    diff, logits = max_logit_diff(name, 64)
    assert_nontrivial(logits)
    assert diff <= TOL, f"{name}: max |logit diff| {diff:.3g}"


def test_logits_match_timm_at_224():
    diff, logits = max_logit_diff("res2net50_26w_4s", 224, batch=2)
    assert_nontrivial(logits)
    assert diff <= TOL, f"max |logit diff| {diff:.3g}"


@pytest.mark.parametrize("name", sorted(OFFICIAL_PARAMS_M))
def test_param_count_matches_official_table(name):
    with torch.device("meta"):  # structure only: no memory, no initialisation cost
        model = res2net.create_model(name)
    assert round(res2net.count_params(model) / 1e6, 2) == OFFICIAL_PARAMS_M[name]


@pytest.mark.parametrize("name", ["res2net50_26w_4s", "resnet50", "dla60_res2net", "tiny_res2net26_8s"])
def test_taps_hold_no_state(name):
    with torch.device("meta"):
        model = res2net.create_model(name)
    tap_paths = set()
    for tap in res2net.tap_names(model):
        module = res2net.get_tap(model, tap)
        assert isinstance(module, nn.Identity)
        assert not list(module.parameters()) and not list(module.buffers())
        tap_paths.add(next(p for p, m in model.named_modules() if m is module))
    for key in model.state_dict():
        assert not any(key.startswith(p + ".") for p in tap_paths), key


@pytest.mark.parametrize("name", DLA_NAMES)
def test_dla_keys_are_timms_plus_the_released_unused_projections(name):
    with torch.device("meta"):
        ours = res2net.create_model(name)
        theirs = set(timm.create_model(name, pretrained=False).state_dict())
    extra = set(ours.state_dict()) - theirs
    assert theirs <= set(ours.state_dict())
    assert extra == set(ours.unused_keys())
    # The released files keep a projection in every tree whose width changes; the deeper trees never run it.
    assert {k.rsplit(".project.", 1)[0] for k in extra} == {"level3", "level4", "level4.tree1"}


def test_dla_unused_projections_do_not_affect_the_output():
    model = res2net.create_model("dla60_res2net")
    randomise_bn(model)
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        before = model(x)
        for key in model.unused_keys():
            model.state_dict()[key].fill_(7.0)
        after = model(x)
    assert torch.equal(before, after)


def test_dla_blocks_follow_timm_stage_rule():
    """A DLA block is a 'stage' block (parallel convs, pooled last group) exactly when it is strided."""
    with torch.device("meta"):
        model = res2net.create_model("dla60_res2next")
        ref = timm.create_model("dla60_res2next", pretrained=False)
    blocks = {i.name: i.stype for i in res2net.block_infos(model)}
    expected = {n: ("stage" if m.is_first else "normal") for n, m in ref.named_modules() if hasattr(m, "is_first")}
    assert blocks == expected
    assert sum(s == "stage" for s in blocks.values()) == 4 and len(blocks) == 16


@pytest.mark.parametrize("name", DLA_NAMES)
def test_dla_custom_class_count(name):
    model = res2net.create_model(name, num_classes=10)
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


def test_model_info_fields():
    info = res2net.model_info("res2net50_26w_4s")
    assert info["name"] == "res2net50_26w_4s" and info["family"] == "res2net"
    assert info["params_m"] == 25.70
    assert 4.2 <= info["gmacs"] <= 4.3  # timm and the paper give 4.2-4.3 GMACs at 224 px
    assert info["input_size"] == 224
    assert 70 < info["reported_top1"] < 85 and 90 < info["reported_top5"] < 97 and info["accuracy_source"]
    assert "CC BY-NC-SA 4.0" in info["licence"]
    assert len(info["weights"]) >= 2
    assert info["weights"][0]["url"].startswith("https://shanghuagao.oss-cn-beijing.aliyuncs.com/res2net/")
    assert all(w["filename"] == "res2net50_26w_4s-06e79181.pth" for w in info["weights"])
    pre = info["preprocessing"]
    assert (pre["resize"], pre["crop"]) == (256, 224)
    assert pre["mean"] == pytest.approx([0.485, 0.456, 0.406]) and pre["std"] == pytest.approx([0.229, 0.224, 0.225])


@pytest.mark.parametrize("name", DLA_NAMES)
def test_dla_model_info(name):
    info = res2net.model_info(name)
    assert info["family"] == "dla" and info["params_m"] == OFFICIAL_PARAMS_M[name]
    assert [w["url"].rsplit("/", 1)[0] + "/" for w in info["weights"]] == [
        "https://shanghuagao.oss-cn-beijing.aliyuncs.com/res2net/",
        "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-res2net/",
    ]
    assert len({w["filename"] for w in info["weights"]}) == 1
    release_gflops = {"dla60_res2net": 4.2, "dla60_res2next": 3.6}[name]  # the release table's (multiply-adds)
    assert abs(info["gmacs"] / release_gflops - 1) <= 0.05


def test_embedded_family_is_matched_within_five_percent():
    names = res2net.list_models("embedded")
    assert "tiny_resnet26" in names and len(names) >= 4

    def measure(name: str) -> tuple[int, int]:
        spec = res2net.get_spec(name)
        model = res2net.create_model(name)
        macs = res2net.count_macs(model, spec.input_size)
        info = res2net.model_info(name)
        assert info["params"] == res2net.count_params(model) and info["gmacs"] == round(macs / 1e9, 3)
        return info["params"], macs

    base_params, base_macs = measure("tiny_resnet26")
    for name in names:
        params, macs = measure(name)
        assert abs(params / base_params - 1) <= 0.05, f"{name}: {params} vs {base_params} parameters"
        assert abs(macs / base_macs - 1) <= 0.05, f"{name}: {macs} vs {base_macs} MACs"


@pytest.mark.parametrize("name", res2net.list_models())
def test_spec_facts_match_the_built_model(name):
    """A row's scale, classes and input size are what the built model has; embedded rows ship their weights."""
    spec = res2net.get_spec(name)
    model = res2net.create_model(name)
    blocks = res2net.block_infos(model)
    assert spec.scale == max(len(b.branch_taps) for b in blocks)
    with torch.no_grad():
        logits = model.eval()(torch.zeros(1, 3, 64, 64))  # global pooling: a small input shows the head's width
    assert logits.shape == (1, spec.num_classes) == (1, len(spec.classes))
    assert spec.embedded == name.startswith("tiny_")  # the four trained here, 64 px Tiny-ImageNet-100 inputs
    if spec.embedded:
        assert spec.input_size == 64 and all(w.url is None for w in spec.checkpoints)
        assert (res2net.models.zoo.ASSETS_DIR / spec.checkpoints[0].asset).is_file()
    else:
        assert spec.input_size == 224 and all(w.url for w in spec.checkpoints)


def test_add_model_adds_a_row_and_refuses_a_clash(monkeypatch):
    from dataclasses import replace

    from res2net.models import zoo

    monkeypatch.setattr(zoo, "MODELS", dict(zoo.MODELS))
    row = replace(zoo.get_spec("tiny_resnet26"), name="tiny_resnet26_copy")
    assert zoo.add_model(row) is row and zoo.get_spec("tiny_resnet26_copy") is row
    with pytest.raises(ValueError, match="already in the table"):
        zoo.add_model(row)
    assert len(zoo.TABLE) == len(set(s.name for s in zoo.TABLE))
