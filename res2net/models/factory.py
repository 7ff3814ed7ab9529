"""The model factory: build a zoo model by name, load its weights, and describe it (params, GMACs, weights)."""

from __future__ import annotations

import os
from functools import cache

from torch import nn

from res2net.models.complexity import count_macs, count_params
from res2net.models.zoo import get_spec


def create_model(
    name: str,
    pretrained: bool | str | os.PathLike = False,
    num_classes: int | None = None,
    progress=None,  # noqa: ANN001  (callable(done_bytes, total_bytes | None, source_label))
    seed: int | None = None,
    **kw: object,
) -> nn.Module:
    """Build model ``name``; ``pretrained`` is False, True (resolve and load the released weights) or a path.

    ``seed`` (embedded models, with ``pretrained=True``): which training run of the recipe to load; the default
    (None or 0) is the seed-0 run, ``weights.embedded_seeds(name)`` lists the shipped ones. Weights always
    load with ``weights_only=True`` and ``strict=True``; on any failure no model is returned.
    """
    spec = get_spec(name)
    n = spec.num_classes if num_classes is None else num_classes
    if pretrained is not False and pretrained is not None and n != spec.num_classes:
        raise ValueError(
            f"{name}'s weights have {spec.num_classes} classes; build with pretrained=False for num_classes={n}"
        )
    model = spec.builder(num_classes=n, **kw)
    model.spec = spec  # input size, mean/std and class list, read by the analyses from this one place
    if seed not in (None, 0) and pretrained is not True:
        raise ValueError(f"seed={seed} picks a training run's weights: pass pretrained=True with it")
    if pretrained is True:
        from res2net.models.weights import load_pretrained

        load_pretrained(model, spec, progress=progress, seed=seed)
    elif pretrained:
        from res2net.models.weights import load_checkpoint_file

        load_checkpoint_file(model, os.fspath(pretrained), spec)
    model.eval()
    return model


@cache
def _measure(name: str) -> tuple[int, int]:
    spec = get_spec(name)
    model = spec.builder(num_classes=spec.num_classes)
    return count_params(model), count_macs(model, spec.input_size)


def model_info(name: str) -> dict:
    """Params, GMACs at the model's input size (measured here), reported accuracy, weights, licence, preprocessing."""
    spec = get_spec(name)
    params, macs = _measure(name)
    info = {
        "name": name,
        "family": spec.family,
        "description": spec.description,
        "params": params,
        "params_m": round(params / 1e6, 2),
        "gmacs": round(macs / 1e9, 3),
        "input_size": spec.input_size,
        "reported_top1": spec.reported_top1,
        "reported_top5": spec.reported_top5,
        "accuracy_source": spec.accuracy_source,
        "licence": spec.licence,
        "weights": [
            {"label": w.label, "url": w.url, "filename": w.filename, "sha256": w.sha256, "asset": w.asset}
            for w in spec.checkpoints
        ],
        "preprocessing": {
            "resize": spec.resize, "crop": spec.input_size, "mean": list(spec.mean), "std": list(spec.std),
            "interpolation": "bilinear",
        },
    }
    if spec.embedded:
        from res2net.models.weights import read_model_card

        card = read_model_card(name)
        if card is not None:
            info["reported_top1"] = card.get("top1")
            info["reported_top5"] = card.get("top5")
            info["card"] = card
    return info
