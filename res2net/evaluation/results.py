"""The evaluation results file: its schema version, its fields declared as types, loading and validation.

``python -m res2net.evaluate`` writes two files side by side: ``<name>.json`` (summaries, baselines, claims with
verdicts) and ``<name>.npz`` (the per-image scores they were computed from, so that any bucket, interval or new
comparison can be recomputed without running a model; labels and boxes are not copied, they are read from the
dataset by ``image_index``). A dataset run (``--dataset``, any zoo model, one process or torchrun) writes per-image
rows instead (``ROW_COLUMNS``), with the boxes it scored against, and a few more fields (those of ``Results`` marked
"dataset run").

The JSON's fields are declared below as frozen dataclasses (``Results`` and the records it holds); each field's
``doc`` says what it means. ``load_results`` returns a ``Results``, checked against these declarations; the
dashboard reads results only through it. ``Results.to_json`` gives back the JSON form, value for value.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from res2net.evaluation.records import Record, ResultsError, doc, field_docs

__all__ = ["SCHEMA_VERSION", "Results", "ModelEntry", "RunEntry", "Interval", "RunInterval", "CamInfo", "MetricInfo",
           "BucketBaselines", "PriorInfo", "LocalisationRow", "ComparisonRow", "AccuracyRow", "ErfRow", "Claim",
           "VerdictRule", "KnockoutStudy", "KnockoutRow", "Interaction", "KnockoutClaim", "ScaleSweep",
           "ScaleSweepRow", "Environment", "Skipped", "ClaimInterval", "ControlRow", "GainInterval",
           "EffectSizeRule", "FloorInfo", "Inference", "READABLE_VERSIONS",
           "ROW_COLUMNS", "field_docs", "ResultsError", "load_results",
           "validate_results", "save_image_scores", "load_image_scores", "image_scores_path"]

SCHEMA_VERSION = 3
READABLE_VERSIONS = (2, 3)  # 2: before the claims stated their target, df and controls (those fields are absent)


# ----------------------------------------------------------------------------------------------- declared fields
@dataclass(frozen=True, kw_only=True)
class Interval(Record):
    """A value with its 95% interval (None where it cannot be computed)."""

    mean: float | None = doc("the estimate")
    low: float | None = doc("interval, low end")
    high: float | None = doc("interval, high end")


@dataclass(frozen=True, kw_only=True)
class RunInterval(Interval):
    """A mean over training runs with a Student-t 95% interval, and the per-run values."""

    per_run: tuple[float | None, ...] = doc("the value of each run, in run order")


@dataclass(frozen=True, kw_only=True)
class RunEntry(Record):
    """One run of a model: a training seed (embedded family) or a weights setting (dataset run)."""

    seed: int = doc("training seed (embedded family); in a dataset run the run's position")
    top1: float = doc("top-1 accuracy in percent over the scored images")
    top5: float = doc("top-5 accuracy in percent")
    weights_sha256: str | None = doc("sha256 of the weights file, None where there is none")
    epochs: int | None = doc("training epochs of the weights (embedded family)", optional=True)
    run: str | None = doc("dataset run: pretrained, random-init or a checkpoint name", optional=True)

    @property
    def name(self) -> str:
        """How the page names the run: its label, or 'seed k'."""
        return self.run if self.run is not None else f"seed {self.seed}"


@dataclass(frozen=True, kw_only=True)
class ModelEntry(Record):
    """One model of the evaluation."""

    scale: int = doc("Res2Net scale s (1: a ResNet)")
    runs: tuple[RunEntry, ...] = doc("its runs")
    run_count: int = doc("number of runs")
    taps: Mapping[str, Mapping[str, str]] = doc("stage -> group ('output', 'branch<k>') -> tap (module name)")
    params: int | None = doc("parameter count (None in a dataset run)")
    gmacs: float | None = doc("multiply-accumulates in billions at the input size (None in a dataset run)")
    top1: Interval = doc("top-1 over runs and images with its interval")
    weights: str | None = doc("dataset run: which weights the model ran with", optional=True)
    input_size: int | None = doc("dataset run: the model's input side in pixels", optional=True)


@dataclass(frozen=True, kw_only=True)
class CamInfo(Record):
    """How the maps were made and placed."""

    method: str = doc("CAM method")
    target: str = doc("which class the maps explain")
    placement: str = doc("how maps are placed on the image (registration by receptive-field centres)")
    boxes: str = doc("which boxes the maps were scored against")


@dataclass(frozen=True, kw_only=True)
class MetricInfo(Record):
    """One metric as the results file describes it (a row of ``res2net.metrics.table``)."""

    label: str = doc("readable name")
    kind: str = doc("concentration, coverage, accuracy or receptive field: which claim it tests")
    min_effect: float = doc("the minimum meaningful effect d")
    why: str | None = doc("what it measures and why it fits", optional=True)


@dataclass(frozen=True, kw_only=True)
class BucketBaselines(Record):
    """Scores of maps that ignore the image, over one size bucket's images."""

    images: int = doc("images in the bucket")
    uniform_energy: float | None = doc("a uniform map's energy in the box: the box's area fraction")
    prior: Mapping[str, float | None] = doc("per map metric: the centred Gaussian prior's score, written as "
                                            "prior_<metric>")

    @classmethod
    def _json_in(cls, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        out = {k: v for k, v in obj.items() if not k.startswith("prior_")}
        return out | {"prior": {k.removeprefix("prior_"): v for k, v in obj.items() if k.startswith("prior_")}}

    def _json_out(self, out: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in out.items() if k != "prior"} | {f"prior_{k}": v for k, v in out["prior"].items()}


@dataclass(frozen=True, kw_only=True)
class PriorInfo(Record):
    """The centred Gaussian prior."""

    sigma_px: float = doc("its sigma in pixels, fitted on the training split's boxes")
    fitted_on: str = doc("which boxes it was fitted on")
    pointing: str = doc("how it plays the pointing game")
    sigmas_px: tuple[float, ...] | None = doc("dataset run: the sigma of each half of the images (2-fold)",
                                              optional=True)


@dataclass(frozen=True, kw_only=True)
class LocalisationRow(Interval):
    """A model's localisation score at one tap, subset, size bucket and metric."""

    model: str = doc("zoo name")
    stage: str = doc("stage (layer1..layer4)")
    tap: str = doc("the tap scored (a block output or a branch)")
    group: str = doc("'output' or 'branch<k>'")
    subset: str = doc("'all' images or the ones the model classifies 'correct'ly (mean kept per run)")
    bucket: str = doc("size bucket or 'all'")
    metric: str = doc("metric name")
    n: int = doc("images")
    runs: int = doc("runs")


@dataclass(frozen=True, kw_only=True)
class ComparisonRow(Record):
    """Res2Net minus ResNet, paired by seed and image, at one stage, bucket, subset and metric."""

    model: str = doc("the Res2Net")
    baseline: str = doc("the ResNet it is compared with")
    stage: str = doc("stage output")
    subset: str = doc("'all' or 'correct' (images both classify correctly)")
    bucket: str = doc("size bucket or 'all'")
    metric: str = doc("metric name")
    diff: float | None = doc("the paired difference")
    low: float | None = doc("95% interval, low end")
    high: float | None = doc("95% interval, high end")
    n: int = doc("images")
    runs: int = doc("runs")


@dataclass(frozen=True, kw_only=True)
class AccuracyRow(Interval):
    """Top-1 of a model in one size bucket, or its paired difference to the baseline."""

    model: str = doc("zoo name")
    bucket: str = doc("size bucket or 'all'")
    kind: str = doc("'top1' or 'top1 difference to <baseline>'")
    n: int = doc("images")
    runs: int = doc("runs")


@dataclass(frozen=True, kw_only=True)
class ErfRow(Record):
    """The effective receptive field of one tap's centre unit over runs and noise inputs."""

    model: str = doc("zoo name")
    weights: str = doc("'trained' or 'random init'")
    tap: str = doc("the tap")
    stage: str = doc("its stage")
    group: str = doc("'output' or 'branch<k>'")
    branch: int | None = doc("branch index, None for a block output")
    radius_50: float | None = doc("half-side of the centred square holding 50% of the ERF mass (px, interpolated "
                                  "between whole pixels)")
    radius_50_low: float | None = doc("its 95% interval, low end")
    radius_50_high: float | None = doc("its 95% interval, high end")
    radius_90: float | None = doc("the same for 90% of the mass")
    radius_90_low: float | None = doc("its 95% interval, low end")
    radius_90_high: float | None = doc("its 95% interval, high end")
    radius_99: float | None = doc("the same for 99% of the mass (no interval)")
    touches_border: bool = doc("the 99% mass reaches the input's border: the radii are lower bounds")
    area_ratio_20_published: float | None = doc("RepLKNet's area ratio at 20% (log10(x + 1) of raw gradients)")
    area_ratio_20_scale_free: float | None = doc("the same after dividing by the maximum (compares shapes)")
    area_ratio_50_published: float | None = doc("RepLKNet's area ratio at 50%")
    area_ratio_50_scale_free: float | None = doc("its scale-free variant")
    inputs: int = doc("Gaussian-noise inputs per run")
    size: int = doc("their side in pixels")
    runs: int = doc("runs")


@dataclass(frozen=True, kw_only=True)
class ClaimInterval(Record):
    """An interval of a claim with what it is about and how exact it is (``metrics.inference.Interval``)."""

    target: str = doc("'weights' (classes and images random) or 'architecture' (training runs random)")
    runs: int = doc("runs R the interval rests on")
    df: float | None = doc("degrees of freedom of its t quantile; null for a percentile bootstrap")
    method: str = doc("how it was made")
    level: float = doc("its coverage level")
    estimate: float | None = doc("the estimate")
    low: float | None = doc("low end")
    high: float | None = doc("high end")
    p_zero: float | None = doc("two-sided p-value against 0")
    resamples: int = doc("bootstrap resamples (0: analytic)")
    mc_error_low: float | None = doc("Monte-Carlo standard error of the low end (0: analytic)")
    mc_error_high: float | None = doc("Monte-Carlo standard error of the high end")
    note: str = doc("what limits it (e.g. one run: about these weights only)")


@dataclass(frozen=True, kw_only=True)
class Claim(Record):
    """One of the paper's statements tested here, with its numbers and verdict."""

    id: str = doc("stable identifier")
    section: str = doc("accuracy, localisation, erf or knockout")
    paper: str = doc("the paper's statement and where it is made")
    metric: str = doc("the metric tested and its label, 'name: label'")
    model: str = doc("the Res2Net model compared with the baseline")
    layer: str = doc("tap or stage the verdict uses")
    subset: str = doc("which images (all, or the ones both models classify correctly); an ERF claim: its probe")
    family: str = doc("confirmatory (in the Holm-corrected family) or exploratory (unadjusted 95% interval)")
    estimate: float | None = doc("the difference (Res2Net minus baseline, or larger branch minus smaller)")
    low95: float | None = doc("unadjusted 95% interval, low end")
    high95: float | None = doc("unadjusted 95% interval, high end")
    low: float | None = doc("interval the verdict uses (Holm-adjusted level for the confirmatory family), low end")
    high: float | None = doc("interval the verdict uses, high end")
    level: float = doc("coverage level of that interval")
    min_effect: float = doc("the minimum meaningful effect d of the metric")
    verdict: str = doc("supported / contradicted / no meaningful difference / inconclusive")
    runs: int = doc("training runs per model the claim rests on")
    images: int = doc("images the claim rests on (0: noise inputs)")
    baseline_note: str = doc("what the image-blind baselines score on the same images")
    caveat: str = doc("what limits this claim")
    target: str | None = doc("what the verdict's interval is about: 'architecture' (runs are the random part) or "
                             "'weights' (these trained weights; classes and images random)", optional=True)
    df: float | None = doc("degrees of freedom of the verdict's t interval (Satterthwaite); null for a bootstrap",
                           optional=True)
    method: str | None = doc("how the verdict's interval was made", optional=True)
    resamples: int | None = doc("bootstrap resamples of the verdict's interval (0: analytic)", optional=True)
    mc_error_low: float | None = doc("Monte-Carlo standard error of the judged interval's low end", optional=True)
    mc_error_high: float | None = doc("Monte-Carlo standard error of its high end", optional=True)
    p_zero: float | None = doc("two-sided p-value against 0 of the verdict's evidence", optional=True)
    p_zero_holm: float | None = doc("that p-value Holm-adjusted over the family (confirmatory only)", optional=True)
    excludes_zero: bool | None = doc("the judged interval excludes 0 (null when not tested)", optional=True)
    tested: bool | None = doc("judged in the Holm family (false: exploratory, or Holm stopped before it)",
                              optional=True)
    holm_rank: int | None = doc("its place in Holm's step-down order (0: judged first)", optional=True)
    control: str | None = doc("the image-blind control subtracted ('mismatch', 'spread' or 'none'; an ERF claim: "
                              "'random init')", optional=True)
    bucket: str | None = doc("the size bucket the claim is about", optional=True)
    sensitivity: Mapping[str, str] | None = doc("the verdict with d/2, d and 2d (the whole family rejudged)",
                                                optional=True)
    weights: ClaimInterval | None = doc("the interval about these weights at the judged level, beside the verdict's",
                                        optional=True)
    note: str | None = doc("why a claim is exploratory or what else limits it", optional=True)

    @property
    def confirmatory(self) -> bool:
        return self.family == "confirmatory"


CLAIM_FIELDS = frozenset(field_docs(Claim))  # what a claim of the results file holds


@dataclass(frozen=True, kw_only=True)
class GainInterval(Record):
    """A model's gain over a control with its 95% interval."""

    mean: float | None = doc("the gain (score minus control)")
    low: float | None = doc("95% interval, low end")
    high: float | None = doc("95% interval, high end")
    target: str = doc("'architecture' (two runs or more) or 'weights'")
    df: float | None = doc("degrees of freedom of the t interval")


@dataclass(frozen=True, kw_only=True)
class ControlRow(Record):
    """A model's maps beside the image-blind controls at one stage, bucket and box position."""

    model: str = doc("zoo name")
    stage: str = doc("stage")
    tap: str = doc("the block output scored")
    bucket: str = doc("size bucket or 'all'")
    region: str = doc("'all', 'centre' (the box holds the image centre) or 'off-centre'")
    metric: str = doc("energy, pointing or coverage")
    score: float | None = doc("the maps' mean score")
    mismatch: float | None = doc("the same maps scored against another image's box of the bucket")
    spread: float | None = doc("a centred Gaussian with each map's own spread, scored against the image's box")
    gain_over_mismatch: GainInterval = doc("score minus the mismatched-box control")
    gain_over_spread: GainInterval = doc("score minus the spread-matched prior")
    n: int = doc("images")
    runs: int = doc("runs")


@dataclass(frozen=True, kw_only=True)
class PlacedVerdict(Record):
    """A claim judged with the verdict layer's maps placed one way."""

    estimate: float | None = doc("the claim's estimate")
    low: float | None = doc("interval at the claim's Holm level, low end")
    high: float | None = doc("interval at the claim's Holm level, high end")
    verdict: str = doc("the four-way verdict, or 'not tested'")
    family: str = doc("'confirmatory' or 'exploratory' under this placement (saturation can differ)")


@dataclass(frozen=True, kw_only=True)
class PlacementRow(Record):
    """One confirmatory claim's verdict under each placement of the maps: RF centres (the claims), effective
    centres and half-pixel spreading, each placement's family judged as a whole."""

    id: str = doc("the claim's id")
    model: str = doc("zoo name")
    metric: str = doc("the claim's metric")
    bucket: str | None = doc("size bucket")
    control: str = doc("the control its gain is over ('none' for top-1)")
    placements: Mapping[str, PlacedVerdict] = doc("'rf_centre' | 'effective_centre' | 'half_pixel' -> verdict")
    changes: bool = doc("whether any placement gives another verdict than the RF centres")


@dataclass(frozen=True, kw_only=True)
class PlacementSensitivity(Record):
    """How much the confirmatory verdicts rest on where the maps' cells are put."""

    rule: str = doc("the three placements and how the effective centres are found")
    probes: int = doc("images whose gradients give the effective centres")
    centres: Mapping[str, Mapping[str, Mapping[str, tuple[float, ...]]]] = doc(
        "model -> run -> 'rows' | 'cols' -> effective centre of each row / column (input px)")
    rows: tuple[PlacementRow, ...] = doc("per confirmatory claim")


@dataclass(frozen=True, kw_only=True)
class FloorInfo(Record):
    """The smallest change that matters in a metric's units."""

    value: float = doc("the floor")
    grid: float = doc("the step d is rounded up to")
    reason: str = doc("why")


@dataclass(frozen=True, kw_only=True)
class EffectSizeRule(Record):
    """The d rule (``metrics.effect_size``), its inputs and its output."""

    rule: str = doc("the rule in words")
    floors: Mapping[str, FloorInfo] = doc("per metric: the floor and its reason")
    run_sd: Mapping[str, float] = doc("'metric/bucket' -> the pilot's pooled run-to-run SD")
    run_sd_source: str = doc("where the run SDs come from")
    d: Mapping[str, Mapping[str, float]] = doc("metric -> bucket -> d")
    sensitivity: tuple[str, ...] = doc("the multiples of d every verdict is also given at")


@dataclass(frozen=True, kw_only=True)
class Inference(Record):
    """How the claims were judged: targets, the family, the test against 0, controls, saturation."""

    confirmatory_target: str = doc("'architecture' or 'weights'")
    targets: Mapping[str, str] = doc("what each target means and how its interval is made")
    runs: int = doc("runs per model")
    single_run: str = doc("with one run: what that leaves (empty otherwise)")
    family: str = doc("the Holm family")
    knockout: str = doc("whether the knock-out study's claims are in the family")
    test_against_zero: str = doc("the test beside each verdict")
    controls: str = doc("the image-blind controls localisation claims are judged against")
    saturation: str = doc("when a metric leaves the confirmatory set")
    flat_maps: str = doc("the flat-map rule every metric follows")
    maxboxacc: str = doc("how MaxBoxAcc's threshold is chosen")
    sensitivity: str = doc("the sensitivity to d")


@dataclass(frozen=True, kw_only=True)
class VerdictRule(Record):
    """How a verdict follows from an interval."""

    rule: str = doc("the rule, in words")
    min_effect: Mapping[str, float] = doc("metric -> its minimum meaningful effect d, fixed before any result")
    correction: str = doc("the correction for many claims")


@dataclass(frozen=True, kw_only=True)
class KnockoutRow(Record):
    """Harm of knocking out one branch, on one size bucket and metric."""

    model: str = doc("zoo name")
    scale: int = doc("its scale s")
    block: str = doc("the block")
    stype: str = doc("the block's type ('normal' or 'stage')")
    branch: int = doc("branch index (0: smallest receptive field)")
    label: str = doc("the branch's readable label")
    metric: str = doc("top1, logprob, energy or coverage")
    bucket: str = doc("size bucket or 'all'")
    harm: float | None = doc("intact minus knocked out (positive hurts)")
    low: float | None = doc("95% interval, low end")
    high: float | None = doc("95% interval, high end")
    n: int = doc("images")
    runs: int = doc("runs")
    lesion: str | None = doc("'branch' or 'random group' (the control: a random channel group of one branch's width)",
                             optional=True)
    strength: float | None = doc("the lesion's strength on these images: ||ablated - intact|| / ||intact|| of the "
                                 "lesioned block's output, mean over images and runs", optional=True)


@dataclass(frozen=True, kw_only=True)
class Interaction(Record):
    """Harm on large objects minus harm on small ones for one branch, with an exploratory verdict."""

    model: str = doc("zoo name")
    scale: int = doc("its scale s")
    block: str = doc("the block")
    stype: str = doc("the block's type")
    branch: int = doc("branch index")
    label: str = doc("the branch's readable label")
    metric: str = doc("metric name")
    interaction: float | None = doc("harm on large minus harm on small")
    low: float | None = doc("95% interval, low end")
    high: float | None = doc("95% interval, high end")
    min_effect: float = doc("the metric's minimum meaningful effect")
    verdict: str = doc("verdict of the unadjusted 95% interval (exploratory)")
    small: int = doc("small-object images")
    large: int = doc("large-object images")
    runs: int = doc("runs")
    lesion: str | None = doc("'branch' or 'random group'", optional=True)
    strength: float | None = doc("the lesion's strength (relative change of the block's output), mean over images "
                                 "and runs", optional=True)


@dataclass(frozen=True, kw_only=True)
class KnockoutClaim(Record):
    """Confirmatory knock-out claim: interaction of branch s-2 minus that of branch 0 at a block, judged in the one
    family of ``claims`` (the same numbers as its entry there)."""

    id: str = doc("stable identifier")
    model: str = doc("the Res2Net")
    scale: int = doc("its scale s")
    block: str = doc("the lesioned block")
    metric: str = doc("metric name")
    contrast: str = doc("which branches are compared")
    estimate: float | None = doc("the contrast")
    low: float | None = doc("interval the verdict uses (Holm over the one family), low end")
    high: float | None = doc("interval the verdict uses, high end")
    low95: float | None = doc("unadjusted 95% interval, low end")
    high95: float | None = doc("unadjusted 95% interval, high end")
    level: float = doc("coverage level of the judged interval")
    min_effect: float = doc("the metric's minimum meaningful effect")
    verdict: str = doc("the verdict")
    small: int = doc("small-object images")
    large: int = doc("large-object images")
    runs: int = doc("runs")
    strength: Mapping[str, float] | None = doc("each lesion's strength: 'branch s-2' and 'branch 0' -> relative "
                                               "change of the block's output", optional=True)


@dataclass(frozen=True, kw_only=True)
class KnockoutStudy(Record):
    """The branch knock-out study (embedded family only). Per-image scores in the .npz under knockout/."""

    hypothesis: str = doc("the hypothesis, stated before any run")
    lesion: str = doc("how a branch is removed (mean ablation, its direct effect) and the control lesion")
    harm: str = doc("how harm is defined")
    interaction: str = doc("how the interaction is defined")
    score_tap: str = doc("the tap whose map is scored")
    images: int = doc("val images")
    mean_images: int = doc("train images the branch means come from")
    runs: int = doc("runs per model")
    intervals: str = doc("how intervals are computed")
    min_effect: Mapping[str, float] = doc("metric -> minimum meaningful effect")
    rows: tuple[KnockoutRow, ...] = doc("harm per model, block, branch, metric and bucket")
    interactions: tuple[Interaction, ...] = doc("large minus small harm per branch")
    claims: tuple[KnockoutClaim, ...] = doc("the confirmatory claims, as judged in the one Holm family")
    resnet_reference: tuple[Interaction, ...] = doc("the ResNet's lesions (its whole 3x3, a random quarter) per block")


@dataclass(frozen=True, kw_only=True)
class ScaleSweepRow(Record):
    """One scale s of the sweep at the verdict stage's output."""

    model: str = doc("zoo name")
    scale: int = doc("scale s")
    runs: int = doc("runs")
    top1: RunInterval = doc("top-1 (%) over runs")
    energy: RunInterval = doc("energy in the box over runs")
    coverage: RunInterval = doc("coverage of the box over runs")
    erf_radius_50: Interval | None = doc("50% ERF radius (px) with its interval; None without ERFs")
    paper_top1: float | None = doc("the paper's ImageNet top-1 at this s, None where it gives none")


@dataclass(frozen=True, kw_only=True)
class TrendTest(Record):
    """A trend of top-1 over s: least-squares slope against log2(s), t interval over runs."""

    slope: float | None = doc("points per doubling of s")
    low: float | None = doc("95% interval, low end")
    high: float | None = doc("95% interval, high end")
    df: float | None = doc("Welch-Satterthwaite degrees of freedom")
    words: str = doc("'rises with s', 'falls with s' or 'no detectable trend'")


@dataclass(frozen=True, kw_only=True)
class ScaleSweep(Record):
    """Top-1, localisation and ERF against the scale s, beside the paper's trend (embedded family only)."""

    rows: tuple[ScaleSweepRow, ...] = doc("one row per scale")
    layer: str = doc("where localisation is scored")
    top1_rises_with_s: bool = doc("our mean top-1 rises strictly with s (descriptive; the test is top1_trend)")
    top1_trend: TrendTest | None = doc("the slope of top-1 per doubling of s with its t interval and words",
                                       optional=True)
    top1_trend_res2net: TrendTest | None = doc("the same slope over the Res2Nets alone (s >= 2): whether s itself "
                                               "matters, not the step from ResNet to Res2Net", optional=True)
    paper_top1_rises_with_s: bool = doc("the paper's does")
    paper: str = doc("where the paper's numbers come from")
    intervals: str = doc("how intervals are computed")


@dataclass(frozen=True, kw_only=True)
class Environment(Record):
    """What the rows were computed with (not the process count, which does not change them)."""

    torch: str = doc("torch version")
    cudnn: int | None = doc("cuDNN version, None without one")
    device: str = doc("device type")


@dataclass(frozen=True, kw_only=True)
class Skipped(Record):
    """Images not scored."""

    count: int = doc("how many")
    reasons: Mapping[str, int] = doc("count per reason (no annotation, unreadable image, class not among the "
                                     "model's outputs, ...)")
    examples: Mapping[str, str] = doc("up to ten: image id -> why")


@dataclass(frozen=True, kw_only=True)
class Results(Record):
    """A results file of ``python -m res2net.evaluate``."""

    schema_version: int = doc("this file's format (SCHEMA_VERSION)")
    dataset: str = doc("dataset name and split, e.g. tiny-imagenet-100 val")
    images: int = doc("number of images scored (all of the split unless limit is set)")
    limit: int | None = doc("null, or N evenly spaced images (a subset run)")
    models: Mapping[str, ModelEntry] = doc("per model: scale, runs, taps, top-1 with its interval")
    baseline: str | None = doc("the ResNet the Res2Nets are compared with (None: no comparison)")
    cam: CamInfo = doc("CAM method, target class, placement, boxes")
    metrics: Mapping[str, MetricInfo] = doc("per metric: what it measures, its kind, its minimum effect")
    size_buckets: Mapping[str, str] = doc("object-size buckets by box area / image area, fixed before any result")
    baselines: Mapping[str, BucketBaselines] = doc("per bucket: scores of maps that ignore the image")
    prior: PriorInfo = doc("the centred Gaussian prior")
    localisation: tuple[LocalisationRow, ...] = doc("per model, stage, tap, subset, bucket and metric")
    comparisons: tuple[ComparisonRow, ...] = doc("Res2Net minus ResNet, paired by seed and image")
    accuracy_by_size: tuple[AccuracyRow, ...] = doc("top-1 per model and bucket, and the paired difference")
    erf: tuple[ErfRow, ...] = doc("ERF radii, area ratios and border flags per tap")
    claims: tuple[Claim, ...] = doc("the paper's statements, each with its numbers, interval and verdict")
    verdict_rule: VerdictRule = doc("how a verdict follows from an interval, the minimum effects, the correction")
    intervals: str = doc("how intervals are computed (hierarchical bootstrap: runs, then classes, then images)")
    verdict_layer: str = doc("the stage whose output the localisation and ERF verdicts use, fixed before looking")
    caveats: tuple[str, ...] = doc("what limits the reading of these numbers (map resolution, runs, image size)")
    controls: tuple[ControlRow, ...] | None = doc("the maps beside the image-blind controls", optional=True)
    effect_size: EffectSizeRule | None = doc("the d rule per metric and bucket, with its reasoning", optional=True)
    inference: Inference | None = doc("how the claims were judged (targets, family, controls)", optional=True)
    knockout: KnockoutStudy | None = doc("embedded family: the branch knock-out study", optional=True)
    placement_sensitivity: PlacementSensitivity | None = doc("the confirmatory verdicts under three placements of "
                                                             "the maps", optional=True)
    scale_sweep: ScaleSweep | None = doc("embedded family: the scale sweep", optional=True)
    weights: str | None = doc("dataset run: pretrained (released or embedded), random-init, or a file name",
                              optional=True)
    batch_size: int | None = doc("dataset run: images per fixed batch (batches, not processes, decide which images "
                                 "share a forward pass)", optional=True)
    environment: Environment | None = doc("dataset run: torch, cuDNN and device type", optional=True)
    skipped: Skipped | None = doc("dataset run: images not scored", optional=True)

    @classmethod
    def from_json(cls, obj: object, where: str = "results") -> Results:
        """Check the schema version first: a file of another version gets that message, not a list of fields."""
        version = obj.get("schema_version") if isinstance(obj, Mapping) else None
        if not isinstance(obj, Mapping):
            raise ResultsError(f"{where} is not a JSON object of evaluation results")
        if isinstance(version, bool) or version not in READABLE_VERSIONS:
            raise ResultsError(f"{where} has schema version {version!r}; this version of res2scope reads version "
                               f"{SCHEMA_VERSION} (and {READABLE_VERSIONS[0]}, whose newer fields are absent"
                               "; regenerate it with `python -m res2net.evaluate`)")
        return super().from_json(obj, where)

    def metric_label(self, key: str) -> str:
        """The metric's readable name (the key itself when the file does not describe it)."""
        return self.metrics[key].label if key in self.metrics else key


# The per-image rows of a dataset run's ``.npz`` (one entry per model, run and image).
ROW_COLUMNS: dict[str, str] = {
    "model": "zoo name", "run": "pretrained, random-init, a checkpoint name, or seed<k> for embedded runs",
    "image_id": "the image's file stem (ImageNet) or path under images/ (image folder)",
    "class": "the image's class (a wnid for ImageNet)", "skipped": "empty when scored, else why not",
    "correct": "top-1 hit", "correct5": "top-5 hit",
    "box_area": "area of the union of the image's boxes / image area (the size bucket's input)",
    "boxes": "the boxes at the model's input size, 'x0 y0 x1 y1' (exclusive ends) joined by ';'",
    "<stage>/<group>/<metric>": "a tap's score: group 'output' or 'branch<k>'; energy, pointing (all taps), "
                                "coverage and maxboxacc_iou (the IoU per MaxBoxAcc threshold; outputs); NaN "
                                "where the model has no such tap or the image was skipped",
    "<stage>/<group>/<placement>/<metric>": "the verdict layer's output placed another way (placement "
                                            "'effective_centre' or 'half_pixel'): energy, pointing, coverage and "
                                            "both controls' (mismatch_<metric>, spread_<metric>), for the "
                                            "placement sensitivity",
}


def validate_results(res: object, origin: str = "results") -> Results:
    """``res`` (a parsed JSON object) as ``Results``; ``ResultsError`` says what keeps it from being one."""
    return Results.from_json(res, origin)


def load_results(path: str | os.PathLike) -> Results:
    """Read and validate a results JSON file."""
    p = Path(path)
    try:
        res = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ResultsError(f"{p} cannot be read as JSON: {e}") from e
    return validate_results(res, str(p))


def image_scores_path(results_path: str | os.PathLike) -> Path:
    """The per-image scores file beside a results JSON file."""
    return Path(results_path).with_suffix(".npz")


def save_image_scores(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Write named arrays to a compressed ``.npz`` that is byte-identical for identical arrays (fixed zip dates)."""
    p = Path(path)
    tmp = p.with_suffix(".npz.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            for key in sorted(arrays):
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.ascontiguousarray(arrays[key]), allow_pickle=False)
                info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                z.writestr(info, buf.getvalue())
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a failed save leaves the previous file as it was, and nothing beside it
        raise


def load_image_scores(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read the per-image scores written by ``save_image_scores`` (no pickles)."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
