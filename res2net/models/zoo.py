"""The model table: one row per model of every family — constructor, weight sources, licence, accuracy, inputs.

Adding a variant is adding a keyword row to ``TABLE``. Constructors are built from ``ResNetTrunk`` (and ``dla.py``
for DLA). ``create_model`` attaches a model's row to it as ``model.spec``: input size, mean/std and the class list
(``ModelSpec.classes``, WordNet ids in output order) come from that one place.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path

from torch import nn

from res2net.models.blocks import Bottle2neck, Bottleneck
from res2net.models.dla import dla60_res2net, dla60_res2next
from res2net.models.nets import ResNetTrunk

__all__ = ["CheckpointSource", "ModelSpec", "MODELS", "TABLE", "add_model", "get_spec", "as_spec", "list_models",
           "ASSETS_DIR", "LABEL_SETS", "label_set_wnids", "spec_of"]

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

OFFICIAL = "https://shanghuagao.oss-cn-beijing.aliyuncs.com/res2net/"
TIMM_RELEASE = "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-res2net/"
TORCHVISION = "https://download.pytorch.org/models/"
RES2NET_LICENCE = "CC BY-NC-SA 4.0 (official Res2Net weights; non-commercial)"
TORCHVISION_LICENCE = "BSD-3-Clause (torchvision); trained on ImageNet, non-commercial research terms"
EMBEDDED_LICENCE = "MIT (this project); trained on Tiny-ImageNet-100, whose ImageNet terms apply"


@dataclass(frozen=True)
class CheckpointSource:
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
    family: str  # 'res2net', 'resnet', 'dla' or 'embedded': the group the Models page lists it under
    builder: Callable[..., nn.Module]
    checkpoints: tuple[CheckpointSource, ...]  # where its parameter file can come from, in order
    licence: str
    input_size: int = 224
    resize: int = 256
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    num_classes: int = 1000
    scale: int = 1  # branches per block: Res2Net's s (1 for a ResNet/ResNeXt block)
    reported_top1: float | None = None
    reported_top5: float | None = None
    accuracy_source: str = ""
    description: str = ""
    label_set: str = "imagenet-1k"  # which classes the outputs are, in order (see LABEL_SETS)

    @property
    def embedded(self) -> bool:
        """Trained by this project: its weights ship in ``assets/`` (no release to download), one file per run."""
        return any(w.url is None and w.asset is not None for w in self.checkpoints)

    @property
    def classes(self) -> tuple[str, ...]:
        """The WordNet id of each output, in output order (ImageNet-1k: sorted wnids; embedded: the model card's)."""
        if self.label_set == "tiny-imagenet-100":
            return _card_wnids(self.name)
        return label_set_wnids(self.label_set)


LABEL_SETS = {
    "imagenet-1k": "the 1,000 ILSVRC-2012 classes, output k = the k-th wnid in sorted order (torchvision, timm)",
    "tiny-imagenet-100": "the 100 Tiny-ImageNet-100 classes of wnids.txt, as recorded in the model card",
}


@cache
def label_set_wnids(label_set: str) -> tuple[str, ...]:
    """The wnids of a shared label set, in output order."""
    if label_set != "imagenet-1k":
        raise KeyError(f"unknown label set {label_set!r}; known: {', '.join(LABEL_SETS)}")
    path = Path(__file__).with_name("imagenet1k_wnids.txt")
    return tuple(w.strip() for w in path.read_text().splitlines() if w.strip())


@cache
def _card_wnids(name: str) -> tuple[str, ...]:
    card = ASSETS_DIR / "weights" / f"{name}.json"
    try:
        return tuple(json.loads(card.read_text())["wnids"])
    except (OSError, ValueError, KeyError) as e:
        raise FileNotFoundError(f"the class list of {name} is in its model card {card}, which cannot be read "
                                f"({type(e).__name__}: {e}); train the model with `python -m res2net.train`") from e


def spec_of(model: nn.Module) -> ModelSpec | None:
    """The table row ``create_model`` attached to ``model``, or None for a model built another way."""
    spec = getattr(model, "spec", None)
    return spec if isinstance(spec, ModelSpec) else None


def get_spec(name: str) -> ModelSpec:
    """The row for ``name``; an unknown name lists the valid ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(sorted(MODELS))}") from None


def as_spec(spec_or_name: ModelSpec | str) -> ModelSpec:
    """``spec_or_name`` itself, or the row of the model of that name."""
    return get_spec(spec_or_name) if isinstance(spec_or_name, str) else spec_or_name


def list_models(family: str | None = None) -> list[str]:
    """Registered model names, optionally of one family."""
    return [n for n, s in MODELS.items() if family is None or s.family == family]


def _trunk(block: type, layers: list[int], **kw: object) -> Callable[..., nn.Module]:
    """``ResNetTrunk(block, layers, **kw)``, called by the factory with ``num_classes`` (and any override)."""
    return partial(ResNetTrunk, block, layers, **kw)


def _release_sources(release_file: str) -> tuple[CheckpointSource, ...]:
    """The official Res2Net release and its timm mirror (Res2Net, Res2NeXt and the DLA variants)."""
    prefix = release_file.rsplit("-", 1)[1].split(".")[0]
    return (
        CheckpointSource(OFFICIAL + release_file, release_file, prefix, "official Res2Net release"),
        CheckpointSource(TIMM_RELEASE + release_file, release_file, prefix, "timm GitHub release mirror"),
    )


def _torchvision_sources(release_file: str) -> tuple[CheckpointSource, ...]:
    return (CheckpointSource(TORCHVISION + release_file, release_file, release_file.rsplit("-", 1)[1][:-4],
                         "torchvision IMAGENET1K_V1"),)


_PAPER = "Gao et al., TPAMI 2021, Tables 1-3 (100 - reported error, single 224 px crop)"
_TORCHVISION_ACC = "torchvision weight metadata (IMAGENET1K_V1)"
_R50 = [3, 4, 6, 3]
_R101 = [3, 4, 23, 3]
# The embedded family: one trunk for 64 px inputs, ResNet baseline and Res2Net at s = 2, 4, 8 with widths
# chosen so that parameters and MACs match within 5% (see the model cards in assets/weights/).
EMBEDDED_TRUNK = dict(planes=(16, 32, 64, 128), stem_type="small", stem_width=32)
EMBEDDED_LAYERS = [2, 2, 2, 2]


def _row(name: str, family: str, build: Callable[..., nn.Module], acc: tuple[float, float] | None = None,
         release: str | None = None, **kw: object) -> ModelSpec:
    """One table row as keywords; the family fills in weight sources, licence and where accuracy comes from, and a
    trunk's own ``scale`` argument is the row's scale."""
    if isinstance(build, partial):
        kw.setdefault("scale", build.keywords.get("scale", 1))
    if family in ("res2net", "dla"):
        kw.update(checkpoints=_release_sources(release), licence=RES2NET_LICENCE, accuracy_source=_PAPER)
    elif family == "resnet":
        kw.update(checkpoints=_torchvision_sources(release), licence=TORCHVISION_LICENCE,
                  accuracy_source=_TORCHVISION_ACC)
    else:
        kw.update(checkpoints=(CheckpointSource(None, f"{name}.pth", None, "embedded (assets/weights)",
                                        asset=f"weights/{name}.pth"),),
                  licence=EMBEDDED_LICENCE, input_size=64, resize=64, num_classes=100,
                  label_set="tiny-imagenet-100", accuracy_source="this project's model card (Tiny-ImageNet-100 val)")
    if acc is not None:
        kw.update(reported_top1=acc[0], reported_top5=acc[1])
    return ModelSpec(name=name, family=family, builder=build, **kw)


def _embedded(name: str, block: type, **kw: object) -> ModelSpec:
    scale = int(kw.get("scale", 1))
    return _row(name, "embedded", _trunk(block, EMBEDDED_LAYERS, **EMBEDDED_TRUNK, **kw),
                description=f"Embedded {'ResNet' if scale == 1 else f'Res2Net s={scale}'} trained on "
                            "Tiny-ImageNet-100")


TABLE: tuple[ModelSpec, ...] = (
    _row("res2net50_26w_4s", "res2net", _trunk(Bottle2neck, _R50, base_width=26, scale=4), (77.99, 93.85),
         "res2net50_26w_4s-06e79181.pth", description="Res2Net-50, 26w x 4s: the paper's main model"),
    _row("res2net50_48w_2s", "res2net", _trunk(Bottle2neck, _R50, base_width=48, scale=2), (77.32, 93.53),
         "res2net50_48w_2s-afed724a.pth", description="Res2Net-50, 48w x 2s"),
    _row("res2net50_14w_8s", "res2net", _trunk(Bottle2neck, _R50, base_width=14, scale=8), (78.14, 93.86),
         "res2net50_14w_8s-6527dddc.pth", description="Res2Net-50, 14w x 8s"),
    _row("res2net50_26w_6s", "res2net", _trunk(Bottle2neck, _R50, base_width=26, scale=6), (78.58, 94.13),
         "res2net50_26w_6s-19041792.pth", description="Res2Net-50, 26w x 6s (wider: more parameters)"),
    _row("res2net50_26w_8s", "res2net", _trunk(Bottle2neck, _R50, base_width=26, scale=8), (79.20, 94.37),
         "res2net50_26w_8s-2c7c9f12.pth", description="Res2Net-50, 26w x 8s (wider: more parameters)"),
    _row("res2net101_26w_4s", "res2net", _trunk(Bottle2neck, _R101, base_width=26, scale=4), (79.19, 94.43),
         "res2net101_26w_4s-02a759a1.pth", description="Res2Net-101, 26w x 4s"),
    _row("res2next50", "res2net", _trunk(Bottle2neck, _R50, base_width=4, cardinality=8, scale=4), (78.24, 93.91),
         "res2next50_4s-6ef7e7bf.pth", description="Res2NeXt-50, 4s, cardinality 8"),
    _row("res2net50d", "res2net",
         _trunk(Bottle2neck, _R50, base_width=26, scale=4, stem_type="deep", downsample="avg"), (80.27, 95.04),
         "res2net50_v1b_26w_4s-3cf99910.pth", description="Res2Net-50 v1b: deep stem, avg-pool shortcuts, CutMix"),
    _row("res2net101d", "res2net",
         _trunk(Bottle2neck, _R101, base_width=26, scale=4, stem_type="deep", downsample="avg"), (81.23, 95.36),
         "res2net101_v1b_26w_4s-0812c246.pth", description="Res2Net-101 v1b: deep stem, avg-pool shortcuts, CutMix"),
    _row("resnet50", "resnet", _trunk(Bottleneck, _R50), (76.13, 92.862), "resnet50-0676ba61.pth",
         description="ResNet-50, torchvision IMAGENET1K_V1 weights (the paper's baseline recipe)"),
    _row("resnet101", "resnet", _trunk(Bottleneck, _R101), (77.374, 93.546), "resnet101-63fe2227.pth",
         description="ResNet-101, torchvision IMAGENET1K_V1 weights"),
    _row("resnext50_32x4d", "resnet", _trunk(Bottleneck, _R50, cardinality=32, base_width=4), (77.618, 93.698),
         "resnext50_32x4d-7cdf4587.pth", description="ResNeXt-50 32x4d, torchvision IMAGENET1K_V1 weights"),
    _embedded("tiny_resnet26", Bottleneck, base_width=64),
    _embedded("tiny_res2net26_2s", Bottle2neck, base_width=48, scale=2),
    _embedded("tiny_res2net26_4s", Bottle2neck, base_width=26, scale=4),
    _embedded("tiny_res2net26_8s", Bottle2neck, base_width=14, scale=8),
    _row("dla60_res2net", "dla", dla60_res2net, (78.47, 94.20), "res2net_dla60_4s-d88db7f9.pth", scale=4,
         description="Res2Net-DLA-60: DLA-60 aggregation trees with 28w x 4s Res2Net blocks"),
    _row("dla60_res2next", "dla", dla60_res2next, (78.45, 94.14), "res2next_dla60_4s-d327927b.pth", scale=4,
         description="Res2NeXt-DLA-60: DLA-60 aggregation trees with 4s Res2NeXt blocks (cardinality 8)"),
)
MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in TABLE}  # every lookup by name reads this
if len(MODELS) != len(TABLE):
    raise ValueError("two rows of TABLE share a model name")


def add_model(spec: ModelSpec) -> ModelSpec:
    """Add a model row at run time (a variant built in a notebook); name clashes are a programming error."""
    if spec.name in MODELS:
        raise ValueError(f"model {spec.name!r} is already in the table")
    MODELS[spec.name] = spec
    return spec
