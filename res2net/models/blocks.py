"""Residual blocks with parameter-free taps: the Res2Net Bottle2neck and the ResNet Bottleneck.

Both expose the same API: ``block.branch{i}`` taps (``nn.Identity``) on every branch output,
``block.output`` on the block output, ``block.stype`` ('stage' or 'normal') and ``block.num_branches``.
State-dict keys are those of the released checkpoints (taps hold no state).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["Bottle2neck", "Bottleneck", "TappedBlock", "init_weights"]


def init_weights(model: nn.Module) -> None:
    """He (fan-out) init for convs and unit/zero BN affine parameters, the usual ResNet initialisation."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class TappedBlock(nn.Module):
    """Base of every block that carries taps; subclasses call ``_make_taps`` once."""

    stype: str
    num_branches: int

    def _make_taps(self, num_branches: int) -> None:
        self.num_branches = num_branches
        for i in range(num_branches):
            setattr(self, f"branch{i}", nn.Identity())
        self.output = nn.Identity()

    def branch_tap(self, i: int) -> nn.Identity:
        """The tap module on branch ``i`` (0 = smallest receptive field, last = identity/pool)."""
        return getattr(self, f"branch{i}")


class Bottle2neck(TappedBlock):
    """Res2Net block (Gao et al.): hierarchical 3x3 convs over ``scale`` channel groups.

    A 'stage' block (first of a layer) runs its convs in parallel and average-pools the last
    group; a 'normal' block feeds each conv output into the next group, last group untouched.
    """

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        cardinality: int = 1,
        base_width: int = 26,
        scale: int = 4,
        stype: str | None = None,
        expansion: int | None = None,
        outplanes: int | None = None,
    ) -> None:
        super().__init__()
        if scale < 1:
            raise ValueError(f"scale must be >= 1, got {scale}")
        if expansion is not None:
            self.expansion = expansion
        self.scale = scale
        self.stype = stype or ("stage" if stride > 1 or downsample is not None else "normal")
        if self.stype not in ("stage", "normal"):
            raise ValueError(f"stype must be 'stage' or 'normal', got {self.stype!r}")
        self.width = width = int(math.floor(planes * (base_width / 64.0))) * cardinality
        self.num_scales = max(1, scale - 1)
        outplanes = outplanes or planes * self.expansion

        self.conv1 = nn.Conv2d(inplanes, width * scale, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width * scale)
        self.convs = nn.ModuleList(
            nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=cardinality, bias=False)
            for _ in range(self.num_scales)
        )
        self.bns = nn.ModuleList(nn.BatchNorm2d(width) for _ in range(self.num_scales))
        # count_include_pad must stay True: the released weights were trained with it.
        self.pool = nn.AvgPool2d(3, stride=stride, padding=1) if self.stype == "stage" else None
        self.conv3 = nn.Conv2d(width * scale, outplanes, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(outplanes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self._make_taps(scale)

    def forward(self, x: torch.Tensor, shortcut: torch.Tensor | None = None) -> torch.Tensor:
        if shortcut is None:
            shortcut = self.downsample(x) if self.downsample is not None else x
        out = self.relu(self.bn1(self.conv1(x)))
        groups = torch.split(out, self.width, 1)
        branches = []
        sp = groups[0]
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
            sp = groups[i] if i == 0 or self.stype == "stage" else sp + groups[i]
            sp = self.branch_tap(i)(self.relu(bn(conv(sp))))
            branches.append(sp)
        if self.scale > 1:
            last = self.pool(groups[-1]) if self.pool is not None else groups[-1]
            branches.append(self.branch_tap(self.scale - 1)(last))
        out = self.bn3(self.conv3(torch.cat(branches, 1)))
        return self.output(self.relu(out + shortcut))


class Bottleneck(TappedBlock):
    """ResNet/ResNeXt bottleneck (torchvision v1.5 layout, stride on the 3x3).

    Its single 3x3 path is exposed as ``branch0`` so every view treats it like a one-branch block.
    """

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        cardinality: int = 1,
        base_width: int = 64,
        stype: str | None = None,
        **_: object,
    ) -> None:
        super().__init__()
        self.stype = stype or ("stage" if stride > 1 or downsample is not None else "normal")
        width = int(planes * (base_width / 64.0)) * cardinality
        self.width = width
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, groups=cardinality, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self._make_taps(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.downsample(x) if self.downsample is not None else x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.branch0(self.relu(self.bn2(self.conv2(out))))
        out = self.bn3(self.conv3(out))
        return self.output(self.relu(out + shortcut))
