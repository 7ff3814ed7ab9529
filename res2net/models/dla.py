"""DLA-60 trunks with Res2Net blocks (dla60_res2net, dla60_res2next), keyed like the released checkpoints.

Deep Layer Aggregation (Yu et al., CVPR 2018) joins blocks in trees whose ``root`` nodes fuse children by a
1x1 conv. The blocks are our tapped ``Bottle2neck``, so tap names are block module paths such as
``level3.tree1.tree2.branch0``. Trees deeper than one level keep a ``project`` shortcut that their forward
never uses: the released files contain it and the published parameter counts (21.15M, 17.33M) include it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from res2net.models.blocks import Bottle2neck, init_weights

__all__ = ["DlaBottle2neck", "DlaRoot", "DlaTree", "DLA", "dla60_res2net", "dla60_res2next"]

DLA60_LEVELS = (1, 1, 1, 2, 3, 1)
DLA60_CHANNELS = (16, 32, 128, 256, 512, 1024)


class DlaBottle2neck(Bottle2neck):
    """Bottle2neck sized as DLA sizes it: output width given, inner width from half of it (expansion 2).

    A strided block is a 'stage' block (parallel convs, pooled last group); every other block is 'normal'.
    The tree hands in the shortcut, so the block owns no downsample.
    """

    expansion = 2

    def __init__(
        self, inplanes: int, outplanes: int, stride: int = 1, cardinality: int = 1, base_width: int = 28,
        scale: int = 4,
    ) -> None:
        if outplanes % self.expansion:
            raise ValueError(f"DLA block output width must be even, got {outplanes}")
        super().__init__(
            inplanes, outplanes // self.expansion, stride=stride, cardinality=cardinality, base_width=base_width,
            scale=scale, stype="stage" if stride > 1 else "normal", expansion=self.expansion, outplanes=outplanes,
        )


class DlaRoot(nn.Module):
    """Aggregation node: 1x1 conv over the concatenated children, BN, ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, children: list[torch.Tensor]) -> torch.Tensor:
        return self.relu(self.bn(self.conv(torch.cat(children, 1))))


class DlaTree(nn.Module):
    """Hierarchical aggregation tree of ``levels`` levels; a one-level tree holds two blocks and a root.

    ``tree1`` is registered before ``tree2`` so that module order (and tap order) is forward order.
    """

    def __init__(
        self, levels: int, in_channels: int, out_channels: int, stride: int = 1, level_root: bool = False,
        root_dim: int = 0, **block_kw: int,
    ) -> None:
        super().__init__()
        if levels < 1:
            raise ValueError(f"a tree needs at least one level, got {levels}")
        root_dim = root_dim or 2 * out_channels
        if level_root:
            root_dim += in_channels
        self.levels = levels
        self.level_root = level_root
        if levels == 1:
            self.tree1: nn.Module = DlaBottle2neck(in_channels, out_channels, stride, **block_kw)
            self.tree2: nn.Module = DlaBottle2neck(out_channels, out_channels, 1, **block_kw)
            self.root: DlaRoot | None = DlaRoot(root_dim, out_channels)
        else:
            self.tree1 = DlaTree(levels - 1, in_channels, out_channels, stride, **block_kw)
            self.tree2 = DlaTree(levels - 1, out_channels, out_channels, 1, root_dim=root_dim + out_channels,
                                 **block_kw)
            self.root = None
        self.downsample = nn.MaxPool2d(stride, stride=stride) if stride > 1 else nn.Identity()
        self.project = (
            nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))
            if in_channels != out_channels else None
        )

    def forward(self, x: torch.Tensor, children: list[torch.Tensor] | None = None) -> torch.Tensor:
        children = [] if children is None else children
        bottom = self.downsample(x)
        if self.level_root:
            children.append(bottom)
        if self.root is None:  # deeper tree: the subtrees compute their own shortcuts
            x1 = self.tree1(x)
            return self.tree2(x1, children + [x1])
        shortcut = self.project(bottom) if self.project is not None else bottom
        x1 = self.tree1(x, shortcut)
        x2 = self.tree2(x1)
        return self.root([x2, x1, *children])


def _conv_level(inplanes: int, planes: int, convs: int, stride: int = 1) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [
            nn.Conv2d(inplanes if i == 0 else planes, planes, 3, stride=stride if i == 0 else 1, padding=1,
                      bias=False),
            nn.BatchNorm2d(planes),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)


class DLA(nn.Module):
    """DLA trunk: 7x7 stem at full resolution, two conv levels, four aggregation trees, 1x1-conv classifier."""

    def __init__(
        self,
        levels: Sequence[int] = DLA60_LEVELS,
        channels: Sequence[int] = DLA60_CHANNELS,
        num_classes: int = 1000,
        cardinality: int = 1,
        base_width: int = 28,
        scale: int = 4,
    ) -> None:
        super().__init__()
        if len(levels) != 6 or len(channels) != 6:
            raise ValueError("levels and channels need six entries (level0 .. level5)")
        self.base_layer = nn.Sequential(
            nn.Conv2d(3, channels[0], 7, padding=3, bias=False), nn.BatchNorm2d(channels[0]), nn.ReLU(inplace=True)
        )
        self.level0 = _conv_level(channels[0], channels[0], levels[0])
        self.level1 = _conv_level(channels[0], channels[1], levels[1], stride=2)
        block_kw = dict(cardinality=cardinality, base_width=base_width, scale=scale)
        for i in range(2, 6):
            setattr(self, f"level{i}", DlaTree(levels[i], channels[i - 1], channels[i], 2, level_root=i > 2,
                                               **block_kw))
        self.num_features = channels[-1]
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Conv2d(channels[-1], num_classes, 1, bias=True)
        self.flatten = nn.Flatten(1)
        init_weights(self)

    def unused_keys(self) -> list[str]:
        """State-dict keys of the ``project`` shortcuts that deeper trees keep but never run."""
        return [
            f"{name}.project.{k}"
            for name, m in self.named_modules()
            if isinstance(m, DlaTree) and m.root is None and m.project is not None
            for k in m.project.state_dict()
        ]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.level1(self.level0(self.base_layer(x)))
        return self.level5(self.level4(self.level3(self.level2(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.flatten(self.fc(self.global_pool(self.forward_features(x))))


def dla60_res2net(num_classes: int = 1000, **kw: int) -> DLA:
    """Res2Net-DLA-60: 28w x 4s blocks."""
    return DLA(num_classes=num_classes, **{"cardinality": 1, "base_width": 28, "scale": 4, **kw})


def dla60_res2next(num_classes: int = 1000, **kw: int) -> DLA:
    """Res2NeXt-DLA-60: 4s blocks with cardinality 8, base width 4."""
    return DLA(num_classes=num_classes, **{"cardinality": 8, "base_width": 4, "scale": 4, **kw})
