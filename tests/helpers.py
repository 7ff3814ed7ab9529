"""Shared test helpers (importable as ``helpers``: pytest puts this folder on sys.path)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from res2net.models.blocks import TappedBlock


def randomise_bn(model: nn.Module, *, seed: int = 0, size: int = 64, channels: int = 3, batches: int = 1) -> nn.Module:
    """Random BN affine parameters and running statistics measured on random batches; returns the model in eval mode.

    Measured (not identity) statistics keep activations of order one through deep trunks, so float32 tolerances
    stay meaningful; the affine parameters are far from their 1/0 initialisation.
    """
    g = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.2)
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
        model.train()
        for _ in range(batches):
            model(torch.randn(4, channels, size, size, generator=g))
    for m in bns:
        m.momentum = 0.1
    return model.eval()


def voc_xml(stem: str, size: tuple[int, int], objects: list[tuple[str, tuple[int, int, int, int]]]) -> str:
    """A PASCAL VOC annotation as ILSVRC2012_bbox_val_v3 ships it (inclusive pixel ends)."""
    objs = "".join(
        f"<object><name>{w}</name><truncated>0</truncated><difficult>0</difficult><bndbox><xmin>{a}</xmin>"
        f"<ymin>{b}</ymin><xmax>{c}</xmax><ymax>{d}</ymax></bndbox></object>" for w, (a, b, c, d) in objects)
    return (f"<annotation><folder>val</folder><filename>{stem}</filename><size><width>{size[0]}</width>"
            f"<height>{size[1]}</height><depth>3</depth></size>{objs}</annotation>")


def imagenet_val_folder(root, n: int = 24, side: int = 224) -> dict:  # noqa: ANN001
    """An ILSVRC-2012-val-layout folder (flat ``val/``, ``annotations/*.xml``) from ``n`` Tiny-ImageNet-100 val
    images upscaled to ``side`` px; every third image gets a second box. Returns {stem: (wnid, inclusive boxes)}."""
    from pathlib import Path

    import numpy as np
    from PIL import Image

    from res2net.data.tiny_imagenet import load_split

    root = Path(root)
    (root / "val").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(exist_ok=True)
    split = load_split("val")
    f = side / split.images.shape[-1]
    truth = {}
    for k, i in enumerate(np.linspace(0, len(split) - 1, n).round().astype(int), 1):
        stem = f"ILSVRC2012_val_{k:08d}"
        pixels = split.images[i].numpy().transpose(1, 2, 0)
        Image.fromarray(pixels).resize((side, side), Image.BICUBIC).save(root / "val" / f"{stem}.JPEG", quality=90)
        x0, y0, x1, y1 = (int(v) for v in split.boxes[i])  # exclusive ends at 64 px
        boxes = [(int(x0 * f), int(y0 * f), int(x1 * f) - 1, int(y1 * f) - 1)]
        if k % 3 == 0:
            boxes.append((5, 5, 60, 80))
        wnid = split.wnids[int(split.labels[i])]
        (root / "annotations" / f"{stem}.xml").write_text(voc_xml(stem, (side, side), [(wnid, b) for b in boxes]))
        truth[stem] = (wnid, boxes)
    return truth


def refuse_downloads(monkeypatch, torch_home) -> list[str]:  # noqa: ANN001
    """No weights cached (``TORCH_HOME`` empty, no local override or mirror) and every URL refused in this process,
    so a download fails the same way online and offline; returns the URLs tried, in order."""
    import urllib.error
    import urllib.request

    from res2net.models import weights

    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.delenv(weights.ENV_WEIGHTS, raising=False)
    monkeypatch.delenv(weights.ENV_MIRROR, raising=False)
    tried: list[str] = []

    def refuse(request: urllib.request.Request, *args: object, **kwargs: object) -> None:
        tried.append(request.full_url)
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return tried


class OpBlock(TappedBlock):
    """A block whose output tap is ``fn(x)`` (a module, or any function of the input): hand-made geometry."""

    stype = "normal"

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self._make_taps(0)
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output(self.fn(x))
