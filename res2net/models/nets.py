"""The ResNet-style trunk shared by Res2Net, ResNet/ResNeXt and the embedded family.

Stems: 'default' (7x7/2 + max-pool), 'deep' (three 3x3 convs, the v1b/'d' models) and 'small'
(one 3x3/2 + max-pool, for 64 px inputs). Shortcuts: 'conv' (strided 1x1) or 'avg' (avg-pool then 1x1).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from res2net.models.blocks import Bottle2neck, Bottleneck, init_weights

__all__ = ["ResNetTrunk"]


def _make_stem(stem_type: str, stem_width: int) -> nn.Module:
    if stem_type == "default":
        return nn.Conv2d(3, stem_width, 7, stride=2, padding=3, bias=False)
    if stem_type == "deep":
        mid = stem_width // 2
        return nn.Sequential(
            nn.Conv2d(3, mid, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, stem_width, 3, stride=1, padding=1, bias=False),
        )
    if stem_type == "small":
        return nn.Conv2d(3, stem_width, 3, stride=2, padding=1, bias=False)
    raise ValueError(f"unknown stem_type {stem_type!r}; expected 'default', 'deep' or 'small'")


def _make_downsample(kind: str, inplanes: int, outplanes: int, stride: int) -> nn.Sequential:
    if kind == "conv":
        return nn.Sequential(
            nn.Conv2d(inplanes, outplanes, 1, stride=stride, bias=False), nn.BatchNorm2d(outplanes)
        )
    if kind == "avg":
        pool: nn.Module = (
            nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False) if stride > 1 else nn.Identity()
        )
        return nn.Sequential(pool, nn.Conv2d(inplanes, outplanes, 1, bias=False), nn.BatchNorm2d(outplanes))
    raise ValueError(f"unknown downsample kind {kind!r}; expected 'conv' or 'avg'")


class ResNetTrunk(nn.Module):
    """Stem, four stages of tapped blocks, global average pool and a linear classifier.

    ``stem_width`` is the stem's output width (the deep stem's inner convs use half of it).
    """

    def __init__(
        self,
        block: type[Bottle2neck] | type[Bottleneck],
        layers: Sequence[int],
        num_classes: int = 1000,
        planes: Sequence[int] = (64, 128, 256, 512),
        stem_type: str = "default",
        stem_width: int = 64,
        downsample: str = "conv",
        cardinality: int = 1,
        base_width: int = 64,
        scale: int = 4,
    ) -> None:
        super().__init__()
        if len(layers) != 4 or len(planes) != 4:
            raise ValueError("layers and planes need four entries, one per stage")
        self.conv1 = _make_stem(stem_type, stem_width)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        inplanes = stem_width
        for i, (n, p) in enumerate(zip(layers, planes, strict=True)):
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(n):
                s = stride if j == 0 else 1
                ds = None
                if j == 0 and (s != 1 or inplanes != p * block.expansion):
                    ds = _make_downsample(downsample, inplanes, p * block.expansion, s)
                blocks.append(
                    block(inplanes, p, stride=s, downsample=ds, cardinality=cardinality,
                          base_width=base_width, scale=scale, stype="stage" if j == 0 else "normal")
                )
                inplanes = p * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.num_features = inplanes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)
        init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.forward_features(x)), 1))
