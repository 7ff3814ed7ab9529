"""The evaluation protocol, fixed before any result: which stages and taps are scored, the verdict layer, bootstrap
sizes, the paper's statements, the verdict rule, the image subsets, and the header every results file starts from."""

from __future__ import annotations

from pathlib import Path

import torch

from res2net.evaluation.results import SCHEMA_VERSION
from res2net.metrics import boxes as L
from res2net.metrics import effect_size as E
from res2net.metrics import table as T
from res2net.models.taps import block_infos

__all__ = ["DEFAULT_OUT", "BASELINE", "STAGES", "VERDICT_LAYER", "ERF_STAGES", "ERF_SIZE", "ERF_INPUTS",
           "BOOT_SUMMARY", "BOOT_COMPARE", "CONTROL_COLUMN", "PLACEMENT_PROBES", "SENSITIVITY_PLACEMENTS",
           "OUTPUT_METRICS", "BRANCH_METRICS", "MIN_EFFECT", "VERDICT_RULE",
           "METRICS", "PAPER", "FAMILY_BATCH", "DATASET_BATCH", "stage_taps", "scale_of", "even_indices",
           "results_header"]

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "assets" / "results" / "tiny_imagenet_100.json"
BASELINE = "tiny_resnet26"
STAGES = ("layer1", "layer2", "layer3", "layer4")
VERDICT_LAYER = "layer3"  # fixed before any result: mid-level, 4x4 cells at 64 px (layer4 is 2x2)
CONTROL_COLUMN = f"{VERDICT_LAYER}/output"  # the tap scored against the image-blind controls too
ERF_STAGES = ("layer2", "layer3")  # stages whose last block's branches get ERFs
ERF_SIZE = 256  # noise inputs large enough that the 99% mass of layer1-3 ERFs fits (flagged where it does not)
ERF_INPUTS = 16
SENSITIVITY_PLACEMENTS = ("effective_centre", "half_pixel")  # scored beside the RF centres at CONTROL_COLUMN
PLACEMENT_PROBES = 32  # evenly spaced images whose gradients give the effective cell centres (placement sensitivity)
BOOT_SUMMARY = 1000
BOOT_COMPARE = 2000
FAMILY_BATCH = 100  # images per fixed batch of the embedded family's run (the shipped results were scored so)
DATASET_BATCH = 32  # of a --dataset run
OUTPUT_METRICS = T.map_metrics()
BRANCH_METRICS = T.branch_metrics()
MIN_EFFECT = T.min_effects()  # the smallest difference that would matter, per metric (res2net.metrics.table)
METRICS = T.metrics_json()
# How a verdict is reached, written into every results file.
VERDICT_RULE = {"rule": "interval above +d: supported; below -d: contradicted; inside [-d, +d]: no meaningful "
                        "difference; otherwise inconclusive; 'not tested' once Holm has stopped",
                "min_effect": {m: E.min_effect(m, "all") for m in E.FLOORS},
                "correction": "one Holm family over every confirmatory claim: ranked by the p-value of the "
                              "best-supported decision, the k-th of m is judged on its 1 - 0.05/(m-k) interval; the "
                              "first inconclusive one stops it and the rest are 'not tested'; exploratory rows use "
                              "their 95% interval; d per metric and bucket in 'effect_size'"}
PAPER = {
    "knockout": "each branch of a Res2Net block serves the object scales its receptive field suits: the granular "
                "multi-scale features of §3.1 (tested by knocking a branch out)",
    "accuracy": "Res2Net improves top-1 over ResNet at similar parameters and FLOPs (Gao et al., TPAMI 2021, "
                "Table 1; the scale ablation of Table 3)",
    "small": "Res2Net's Grad-CAM maps are more concentrated on small objects (§4.5, Fig. 4)",
    "large": "Res2Net's Grad-CAM maps cover the whole of large objects (§4.5, Fig. 4)",
    "branch_erf": "later branches of a block see larger receptive fields: 3x3, 5x5, 7x7 … in one block (§3.1, Fig. 2)",
    "block_erf": "a Res2Net block covers a wider range of receptive fields than a ResNet block (§3.1, §1)",
}
PLACEMENT = ("registered: cell (i, j) of a tap at its receptive-field centre start + stride * (i, j) "
             "(res2net.geometry.registration.register); bilinear between centres, edge values beyond; the verdict "
             "layer's maps also placed at their effective centres and spread half-pixel for the placement "
             "sensitivity")


def stage_taps(model: torch.nn.Module) -> dict[str, dict[str, str]]:
    """Per stage, the last block's taps keyed by group: ``output`` and ``branch0..branch{s-1}`` (ResNet: output)."""
    last: dict[str, object] = {}
    for info in block_infos(model):
        last[info.name.split(".")[0]] = info
    out: dict[str, dict[str, str]] = {}
    for stage, info in last.items():
        groups = {"output": info.name}
        for t in info.branch_taps:
            groups[t.rsplit(".", 1)[1]] = t
        out[stage] = groups
    return out


def scale_of(groups: dict[str, dict[str, str]]) -> int:
    """A block's scale s from its taps: the number of branches (1 for a ResNet block)."""
    return max(sum(g.startswith("branch") for g in gs) for gs in groups.values())


def even_indices(n: int, k: int | None) -> torch.Tensor:
    """``k`` evenly spaced indices of ``range(n)``, or all of them (``k`` None or >= n): every class represented in a
    class-sorted split. The one way the evaluation and the knock-out study take a subset."""
    if k is None or k >= n:
        return torch.arange(n)
    return torch.linspace(0, n - 1, k).round().long().unique()


def results_header(dataset: str, limit: int | None, boxes: str, bucket_area: str, caveats: list[str],
                   erf_intervals: bool) -> dict:
    """The fields every results file carries: what was scored, how maps are placed and scored, the metric table,
    the size buckets, the intervals and the verdict rule. ``boxes``: how the boxes were read; ``bucket_area``: what
    the size buckets measure ("box area", "union of boxes")."""
    return {
        "schema_version": SCHEMA_VERSION, "dataset": dataset, "limit": limit,
        "cam": {"method": "gradcam", "target": "the true class", "placement": PLACEMENT, "boxes": boxes},
        "metrics": METRICS,
        "size_buckets": {"small": f"{bucket_area} < {L.SMALL_BELOW:.0%} of the image",
                         "medium": f"{L.SMALL_BELOW:.0%} to {L.LARGE_FROM:.0%}", "large": f">= {L.LARGE_FROM:.0%}"},
        "intervals": f"tables: 95% percentile, hierarchical bootstrap: runs, then classes, then images within "
                     f"classes ({BOOT_SUMMARY} resamples for single models, {BOOT_COMPARE} for comparisons; seed 0)"
                     + ("; ERFs: runs, then noise inputs" if erf_intervals else "") + ". Claims: each states its "
                     "target (the architecture: t over runs with Satterthwaite df; these weights: a class bootstrap "
                     "of >= 20,000 resamples with the Monte-Carlo error of each end); see 'inference'",
        "verdict_layer": VERDICT_LAYER,
        "verdict_rule": VERDICT_RULE,
        "effect_size": E.rule_json(),
        "caveats": caveats,
    }
