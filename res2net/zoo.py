"""The model table: one row per model — constructor, weight sources, licence, reported accuracy.

Adding a variant is adding a row. Constructors are built from ``ResNetTrunk`` (and ``dla.py`` for DLA).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from .blocks import Bottle2neck, Bottleneck
from .nets import ResNetTrunk

__all__ = ["WeightSource", "ModelSpec", "MODELS", "register", "get_spec", "list_models", "ASSETS_DIR"]

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

OFFICIAL = "https://shanghuagao.oss-cn-beijing.aliyuncs.com/res2net/"
TIMM_RELEASE = "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-res2net/"
TORCHVISION = "https://download.pytorch.org/models/"
RES2NET_LICENCE = "CC BY-NC-SA 4.0 (official Res2Net weights; non-commercial)"
TORCHVISION_LICENCE = "BSD-3-Clause (torchvision); trained on ImageNet, non-commercial research terms"
EMBEDDED_LICENCE = "MIT (this project); trained on Tiny-ImageNet-100, whose ImageNet terms apply"


@dataclass(frozen=True)
class WeightSource:
    """Where one checkpoint file can come from: a URL, or a file shipped in ``assets/``.

    ``sha256`` is the full digest or the prefix torch.hub puts in file names (``NAME-<prefix>.pth``).
    """

    url: str | None
    filename: str
    sha256: str | None
    label: str
    asset: str | None = None  # path relative to assets/ for embedded weights


@dataclass(frozen=True)
class ModelSpec:
    """Everything the package knows about a model besides its weights' values."""

    name: str
    family: str  # 'res2net', 'resnet', 'dla' or 'embedded'
    builder: Callable[..., nn.Module]
    weights: tuple[WeightSource, ...]
    licence: str
    input_size: int = 224
    resize: int = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    num_classes: int = 1000
    reported_top1: float | None = None
    reported_top5: float | None = None
    accuracy_source: str = ""
    description: str = ""
    extra: dict = field(default_factory=dict)


MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add a row to the table (name clashes are a programming error)."""
    if spec.name in MODELS:
        raise ValueError(f"model {spec.name!r} is already registered")
    MODELS[spec.name] = spec
    return spec


def get_spec(name: str) -> ModelSpec:
    """The row for ``name``; an unknown name lists the valid ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}") from None


def list_models(family: str | None = None) -> list[str]:
    """Registered model names, optionally of one family."""
    return [n for n, s in MODELS.items() if family is None or s.family == family]


def _trunk(block: type, layers: list[int], **kw: object) -> Callable[..., nn.Module]:
    def build(num_classes: int = 1000, **extra: object) -> nn.Module:
        return ResNetTrunk(block, layers, num_classes=num_classes, **{**kw, **extra})

    return build


def _res2net_sources(official_file: str) -> tuple[WeightSource, ...]:
    prefix = official_file.rsplit("-", 1)[1].split(".")[0]
    return (
        WeightSource(OFFICIAL + official_file, official_file, prefix, "official Res2Net release"),
        WeightSource(TIMM_RELEASE + official_file, official_file, prefix, "timm GitHub release mirror"),
    )


_PAPER = "Gao et al., TPAMI 2021, Tables 1-3 (100 - reported error, single 224 px crop)"
_R50 = [3, 4, 6, 3]
_R101 = [3, 4, 23, 3]

for _name, _layers, _kw, _file, _acc, _desc in [
    ("res2net50_26w_4s", _R50, dict(base_width=26, scale=4), "res2net50_26w_4s-06e79181.pth", (77.99, 93.85),
     "Res2Net-50, 26w x 4s: the paper's main model"),
    ("res2net50_48w_2s", _R50, dict(base_width=48, scale=2), "res2net50_48w_2s-afed724a.pth", (77.32, 93.53),
     "Res2Net-50, 48w x 2s"),
    ("res2net50_14w_8s", _R50, dict(base_width=14, scale=8), "res2net50_14w_8s-6527dddc.pth", (78.14, 93.86),
     "Res2Net-50, 14w x 8s"),
    ("res2net50_26w_6s", _R50, dict(base_width=26, scale=6), "res2net50_26w_6s-19041792.pth", (78.58, 94.13),
     "Res2Net-50, 26w x 6s (wider: more parameters)"),
    ("res2net50_26w_8s", _R50, dict(base_width=26, scale=8), "res2net50_26w_8s-2c7c9f12.pth", (79.20, 94.37),
     "Res2Net-50, 26w x 8s (wider: more parameters)"),
    ("res2net101_26w_4s", _R101, dict(base_width=26, scale=4), "res2net101_26w_4s-02a759a1.pth", (79.19, 94.43),
     "Res2Net-101, 26w x 4s"),
    ("res2next50", _R50, dict(base_width=4, cardinality=8, scale=4), "res2next50_4s-6ef7e7bf.pth", (78.24, 93.91),
     "Res2NeXt-50, 4s, cardinality 8"),
    ("res2net50d", _R50, dict(base_width=26, scale=4, stem_type="deep", downsample="avg"),
     "res2net50_v1b_26w_4s-3cf99910.pth", (80.27, 95.04), "Res2Net-50 v1b: deep stem, avg-pool shortcuts, CutMix"),
    ("res2net101d", _R101, dict(base_width=26, scale=4, stem_type="deep", downsample="avg"),
     "res2net101_v1b_26w_4s-0812c246.pth", (81.23, 95.36), "Res2Net-101 v1b: deep stem, avg-pool shortcuts, CutMix"),
]:
    register(ModelSpec(
        name=_name, family="res2net", builder=_trunk(Bottle2neck, _layers, **_kw),
        weights=_res2net_sources(_file), licence=RES2NET_LICENCE,
        reported_top1=_acc[0], reported_top5=_acc[1], accuracy_source=_PAPER, description=_desc,
    ))

for _name, _layers, _kw, _file, _acc, _desc in [
    ("resnet50", _R50, {}, "resnet50-0676ba61.pth", (76.13, 92.862),
     "ResNet-50, torchvision IMAGENET1K_V1 weights (the paper's baseline recipe)"),
    ("resnet101", _R101, {}, "resnet101-63fe2227.pth", (77.374, 93.546),
     "ResNet-101, torchvision IMAGENET1K_V1 weights"),
    ("resnext50_32x4d", _R50, dict(cardinality=32, base_width=4), "resnext50_32x4d-7cdf4587.pth", (77.618, 93.698),
     "ResNeXt-50 32x4d, torchvision IMAGENET1K_V1 weights"),
]:
    register(ModelSpec(
        name=_name, family="resnet", builder=_trunk(Bottleneck, _layers, **_kw),
        weights=(WeightSource(TORCHVISION + _file, _file, _file.rsplit("-", 1)[1][:-4], "torchvision IMAGENET1K_V1"),),
        licence=TORCHVISION_LICENCE, reported_top1=_acc[0], reported_top5=_acc[1],
        accuracy_source="torchvision weight metadata (IMAGENET1K_V1)", description=_desc,
    ))

# The embedded family: one trunk for 64 px inputs, ResNet baseline and Res2Net at s = 2, 4, 8 with widths
# chosen so that parameters and MACs match within 5% (see the model cards in assets/weights/).
EMBEDDED_TRUNK = dict(planes=(16, 32, 64, 128), stem_type="small", stem_width=32)
EMBEDDED_LAYERS = [2, 2, 2, 2]
EMBEDDED_FAMILY = {
    "tiny_resnet26": (Bottleneck, dict(base_width=64), 1),
    "tiny_res2net26_2s": (Bottle2neck, dict(base_width=48, scale=2), 2),
    "tiny_res2net26_4s": (Bottle2neck, dict(base_width=26, scale=4), 4),
    "tiny_res2net26_8s": (Bottle2neck, dict(base_width=14, scale=8), 8),
}
for _name, (_block, _kw, _scale) in EMBEDDED_FAMILY.items():
    register(ModelSpec(
        name=_name, family="embedded",
        builder=_trunk(_block, EMBEDDED_LAYERS, **EMBEDDED_TRUNK, **_kw),
        weights=(WeightSource(None, f"{_name}.pth", None, "embedded (assets/weights)", asset=f"weights/{_name}.pth"),),
        licence=EMBEDDED_LICENCE, input_size=64, resize=64, num_classes=100,
        accuracy_source="this project's model card (Tiny-ImageNet-100 val)",
        description=f"Embedded {'ResNet' if _scale == 1 else f'Res2Net s={_scale}'} trained on Tiny-ImageNet-100",
        extra={"scale": _scale},
    ))
