"""Rules of the knock-out study and the scale sweep (``res2net/evaluation/knockout_study.py``; README "Branch
knock-out"), written down first and then tested on hand-made cases, synthetic per-image arrays with a known truth
and tiny models on a few images (seconds in all: the study on the embedded models is test_knockout_study.py's).

The study
- ``study_blocks``: the normal (hierarchical) blocks, in forward order; stage blocks are never knocked out.
- ``control_channels(model, block)``: the control lesion's channels of the fusion conv's input (n channels): one
  branch's width, n // branches (a one-branch ResNet block: a quarter of its 3x3, at least one channel), drawn
  without replacement, sorted, with ``numpy.random.default_rng([CONTROL_SEED, stage, index])`` for a block named
  ``layer<stage>.<index>`` (a number that is missing counts as 0): the same group on every rerun, a different one
  per block.
- ``score_pass``: per image, in the images' order whatever the batch size: top-1 correct as 1.0/0.0, the true
  class's log-softmax in float64, and the energy in box and coverage of the true-class Grad-CAM at ``tap`` (one
  ``compute_cams`` call per batch, for the batch's labels, with the logits), registered on the images' (H, W);
  a flat map (all values equal) is a miss: energy 0 and coverage 0. Every array is float64.
- ``_strength``: per image ||changed - intact|| / ||intact|| over the flattened block output; 0 where the intact
  output is all zero (never a division by zero), whatever the size of a non-zero norm.
- ``block_knockout``: {'intact', '<block>.branch<i>' for every branch of ``block``, and with ``control``
  '<block>.group'}; the intact scores given are reused (the same object, no pass); by default a branch's lesion is
  its direct mean lesion (only its slice of the fusion conv's input takes the given per-channel mean), the
  control replaces the ``control_channels`` of the fusion input by the branch means concatenated; each lesion's
  scores carry its ``strength`` on ``block``'s output.
- ``train_images``: the n (default ``MEAN_IMAGES``) evenly spaced training images, normalised for the model.
- ``run_study``: ``KNOCKOUT_IMAGES`` evenly spaced val images (``knockout/image_index``), ``MEAN_IMAGES`` evenly
  spaced train images for the branch means (``knockout/mean_index``, normalised with the model's spec); per model
  and seed the trained model of that seed, its verdict tap (the last block of the verdict stage), the intact
  pass once, and ``block_knockout`` with the control for every study block; arrays
  ``knockout/<model>/seed<s>/<intact | lesion>/<metric>``.

The summary
- harm = intact minus ablated per image and run (top-1 x 100: points); a row is the mean harm over runs and the
  images of a size bucket (small, medium, large, all), with the mean strength over the same entries (None for an
  empty bucket, whose harm and interval are None too), n images and the number of runs; its interval is the 95%
  percentile interval of the hierarchical bootstrap (runs, classes, images; ``BOOT`` resamples, seed 0).
- interaction = mean harm on large objects minus mean harm on small ones, its interval from the same resamples,
  its verdict ``statistics.verdict`` against the metric's d (log-probability: ``LOGPROB_MIN_EFFECT``, whatever
  the dict says), the lesion's mean strength, the bucket sizes; a lesion is 'branch' or 'random group' (branch
  -1, label 'random group of k channels'); the ResNet reference is every interaction of scale 1.
- ``knockout_pending``: per Res2Net with s >= 3 and normal block of ``CONFIRM_STAGES``, per metric of
  ``CONFIRM_METRICS``: diffs = (harm(branch s-2) - harm(branch 0)) x w with w = N / n_large on large, -N / n_small
  on small and 0 on medium images (each run's mean is its interaction contrast), kept everywhere, clusters = the
  images' classes, d from ``min_effect``, confirmatory; nothing without a small or a large image.

The sweep
- ``_run_interval``: the mean over runs with a Student-t 95% interval (df = runs - 1; the tabulated quantile up to
  df 10, 1.96 beyond); one run: no interval.
- ``trend_per_doubling``: least-squares slope of the scale means on log2(s), variance from each scale's runs,
  Welch-Satterthwaite df (2 decimals); no slope with one scale, no interval when a scale has one run or every
  variance is 0; words only from the interval.
- ``scale_sweep``: rows sorted by s; the ERF radius of the trained model at the verdict tap (None without one);
  "rises" means strictly rising means, for ours and the paper's (scales it lacks left out); the Res2Net-only trend
  needs two Res2Nets.
"""

from __future__ import annotations

import inspect
import math
import warnings
from types import SimpleNamespace

import hypothesis_profiles  # noqa: F401  (example counts: few in CI, more in the mutation run)
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from torch import nn

import res2net
from res2net.data.tiny_imagenet import Split
from res2net.evaluation import knockout_study as K
from res2net.evaluation.protocol import PAPER
from res2net.metrics import statistics as S
from res2net.metrics import table as T
from res2net.models.blocks import Bottle2neck, Bottleneck

SEEDS = [0, 1, 2]
BLOCKS = ["layer1.1", "layer2.1", "layer3.1", "layer4.1"]  # the normal blocks of the embedded 26-layer models


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _sweep(top1_by_scale: dict[int, list[float]], order: list[int] | None = None) -> dict:
    """The sweep of models named m<s> at scales s, each with these per-run top-1 values (given in ``order`` of s)."""
    res: dict = {"models": {}, "erf": []}
    arrays = {}
    for s, runs in top1_by_scale.items():
        name = f"m{s}"
        res["models"][name] = {"scale": s, "runs": [{"top1": t} for t in runs],
                               "taps": {"layer3": {"output": "layer3.1"}}}
        for sd in SEEDS:
            arrays[f"{name}/seed{sd}/layer3.1/energy"] = np.array([0.4, 0.5])
            arrays[f"{name}/seed{sd}/layer3.1/coverage"] = np.array([0.5, 0.6])
    names = [f"m{s}" for s in (order or list(top1_by_scale))]
    return K.scale_sweep(res, arrays, names, SEEDS, "layer3")


def test_top1_rises_with_s_when_each_larger_s_has_a_higher_mean_over_runs() -> None:
    """Rule: "top-1 rises with s" holds when, models sorted by s, each model's mean top-1 over its runs is above the
    previous one's (strictly); the order the models are named in does not matter."""
    rising = {1: [50.0, 51.0, 49.0], 2: [52.0, 51.5, 52.5], 4: [55.0, 54.0, 56.0], 8: [55.5, 55.5, 55.6]}
    out = _sweep(rising, order=[8, 1, 4, 2])
    assert [r["scale"] for r in out["rows"]] == [1, 2, 4, 8]
    assert out["top1_rises_with_s"] is True
    # the means rise although single runs fall: run 0 of s=2 is below run 1 of s=1, ...
    assert _sweep({1: [50.0, 60.0, 55.0], 2: [54.0, 58.0, 56.0]})["top1_rises_with_s"] is True


@pytest.mark.parametrize("top1", [
    {1: [52.0, 52.0, 52.0], 2: [52.0, 52.0, 52.0], 4: [52.0, 52.0, 52.0]},  # no trend at all
    {1: [50.0, 50.0, 50.0], 2: [56.0, 56.0, 56.0], 4: [53.0, 53.0, 53.0]},  # up, then down
    {1: [50.0, 51.0, 52.0], 2: [53.0, 53.0, 53.0], 4: [53.0, 53.0, 53.0]},  # up, then flat: not strictly rising
    {1: [50.0, 50.0, 65.0], 2: [54.0, 54.0, 54.0]},  # the median rises, the mean (55 -> 54) falls
    {1: [56.0, 56.0, 56.0], 2: [54.0, 54.0, 54.0], 4: [52.0, 52.0, 52.0]},  # falling
])
def test_no_rise_without_a_strictly_rising_mean(top1: dict[int, list[float]]) -> None:
    """Rule: a flat, falling or non-monotone sequence of means is not a rise (nor is a rise of the median alone)."""
    assert _sweep(top1, order=sorted(top1, reverse=True))["top1_rises_with_s"] is False


def test_the_papers_trend_is_read_from_its_scale_ablation_in_order_of_s() -> None:
    """Rule: the paper's top-1 (ImageNet, its scale ablation) is reported beside each s it has, and judged by the same
    rule; scales the paper lacks are left out of its trend."""
    out = _sweep({8: [50.0] * 3, 1: [50.0] * 3, 3: [50.0] * 3, 2: [50.0] * 3})
    assert [r["paper_top1"] for r in out["rows"]] == [76.15, K.paper_scale_top1()[2], None, K.paper_scale_top1()[8]]
    assert out["paper_top1_rises_with_s"] is True and out["top1_rises_with_s"] is False


def test_the_papers_scale_ablation_by_hand() -> None:
    """Rule: s = 1 is the paper's ResNet-50 (23.85% error: 76.15), s = 2, 4, 8 its 48w x 2s, 26w x 4s and 14w x 8s
    Res2Net-50 (77.32, 77.99, 78.14 top-1 in the zoo's reported column)."""
    assert K.paper_scale_top1() == {1: 76.15, 2: 77.32, 4: 77.99, 8: 78.14}


def test_the_papers_rise_is_judged_strictly_too(monkeypatch) -> None:
    """Rule: the paper's values are judged by the same strict rule: equal neighbours are no rise."""
    monkeypatch.setattr(K, "paper_scale_top1", lambda: {1: 70.0, 2: 70.0, 4: 71.0})
    assert _sweep({1: [50.0] * 3, 2: [51.0] * 3, 4: [52.0] * 3})["paper_top1_rises_with_s"] is False
    monkeypatch.setattr(K, "paper_scale_top1", lambda: {1: 70.0, 2: 70.5, 4: 71.0})
    assert _sweep({1: [50.0] * 3, 2: [51.0] * 3, 4: [52.0] * 3})["paper_top1_rises_with_s"] is True


def test_the_trend_per_doubling_of_s_by_hand() -> None:
    """Rule: slope of the scale means against log2(s), t interval with Welch-Satterthwaite df. Two scales, two runs
    each: slope = 55 - 51 = 4, variance 2/2 + 2/2 = 2, df = 2^2 / (1 + 1) = 2, half width t(0.975, 2) * sqrt(2)."""
    out = K.trend_per_doubling({1: [50.0, 52.0], 2: [54.0, 56.0]})
    half = 4.302653 * np.sqrt(2.0)
    assert out["slope"] == pytest.approx(4.0) and out["df"] == pytest.approx(2.0)
    assert (out["low"], out["high"]) == (pytest.approx(4 - half, abs=1e-4), pytest.approx(4 + half, abs=1e-4))
    assert out["words"] == "no detectable trend"


def test_the_trend_on_unequally_spaced_scales_by_hand() -> None:
    """Hand case: s = 1, 2, 8 (x = 0, 1, 3, mean 4/3), weights (x - 4/3) / (42/9) = (-12, -3, 15) / 42; means 50, 51,
    56: slope 87/42; each scale's runs (+-1) give variance 2 / 2 = 1, so var = (144 + 9 + 225) / 42^2 = 3/14 and
    df = var^2 / sum(part^2) = 2 exactly; t(0.975, 2) * sqrt(3/14) = 1.9917 < 87/42: the interval is above 0. The
    scales may come in any order."""
    out = K.trend_per_doubling({8: [55.0, 57.0], 1: [49.0, 51.0], 2: [50.0, 52.0]})
    half = 4.302652729749462 * math.sqrt(3 / 14)
    assert out == {"slope": round(87 / 42, 4), "low": round(87 / 42 - half, 4), "high": round(87 / 42 + half, 4),
                   "df": 2.0, "words": "rises with s"}


def test_the_trend_df_is_welch_satterthwaite_rounded_to_two_decimals() -> None:
    """Hand case: s = 1 runs 50, 52 (var 2, n 2: 1), s = 2 runs 54, 55, 59 (var 7, n 3: 7/3); weights -1, +1:
    var = 10/3, df = (10/3)^2 / (1^2 / 1 + (7/3)^2 / 2) = 200/67 = 2.985 -> 2.99; at level 0.9 the quantile is
    t(0.95, 200/67)."""
    out = K.trend_per_doubling({1: [50.0, 52.0], 2: [54.0, 55.0, 59.0]}, level=0.9)
    half = float(stats.t.ppf(0.95, 200 / 67)) * math.sqrt(10 / 3)
    assert out == {"slope": 5.0, "low": round(5 - half, 4), "high": round(5 + half, 4), "df": 2.99,
                   "words": "rises with s"}
    wide = K.trend_per_doubling({1: [50.0, 52.0], 2: [54.0, 55.0, 59.0]})  # level 0.95 by default
    assert wide["low"] == round(5 - float(stats.t.ppf(0.975, 200 / 67)) * math.sqrt(10 / 3), 4)


@pytest.mark.parametrize("values, slope", [
    ({4: [50.0, 51.0, 52.0]}, None),  # one scale: no slope
    ({1: [50.0], 2: [54.0, 56.0]}, 5.0),  # a scale with one run: no variance of its mean
    ({1: [50.0, 50.0], 2: [52.0, 52.0]}, 2.0),  # every run alike: variance 0, no interval
])
def test_no_interval_without_a_variance_from_every_scale(values: dict, slope: float | None) -> None:
    """Rule: a scale of one run has no variance (never the NaN of a variance with ddof 1, nor its warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = K.trend_per_doubling(values)
    assert got == {"slope": slope, "low": None, "high": None, "df": None,
                                            "words": "no detectable trend"}


def test_a_trend_is_named_only_when_its_interval_excludes_zero() -> None:
    rising = K.trend_per_doubling({1: [50.0, 50.2, 49.8], 2: [52.0, 52.1, 51.9], 4: [54.0, 54.2, 53.8]})
    assert rising["words"] == "rises with s" and rising["low"] > 0
    falling = K.trend_per_doubling({1: [54.0, 54.2, 53.8], 2: [52.0, 52.1, 51.9], 4: [50.0, 50.2, 49.8]})
    assert falling["words"] == "falls with s" and falling["high"] < 0
    assert K.trend_per_doubling({1: [50.0, 56.0], 2: [53.0, 51.0]})["words"] == "no detectable trend"


def test_an_interval_that_touches_zero_names_no_trend() -> None:
    """Rule: a trend is named when its interval lies strictly above (below) 0. Hand case: runs -1, 1 at s = 1 and
    h - 1, h + 1 at s = 2 with h = t(0.975, 2) x sqrt(2), the half width (variance 1 + 1, df 2): slope h, so the
    interval is [0, 2h] exactly; mirrored, [-2h, 0]."""
    h = float(stats.t.ppf(0.975, 2)) * math.sqrt(2.0)
    up = K.trend_per_doubling({1: [-1.0, 1.0], 2: [h - 1, h + 1]})
    assert (up["low"], up["words"]) == (0.0, "no detectable trend")
    down = K.trend_per_doubling({1: [-1.0, 1.0], 2: [-h - 1, -h + 1]})
    assert (down["high"], down["words"]) == (0.0, "no detectable trend")


def test_the_trend_interval_covers_a_known_slope_at_its_level() -> None:
    """Simulation with a known truth: slope 0.5 per doubling, run SD 1, R = 3 at s = 1, 2, 4, 8; the 95% interval
    must cover the truth in 93-97% of 2,000 simulated studies."""
    rng = np.random.default_rng(0)
    cover = 0
    for _ in range(2000):
        vals = {s: list(40 + 0.5 * np.log2(s) + rng.normal(0, 1, 3)) for s in (1, 2, 4, 8)}
        t = K.trend_per_doubling(vals)
        cover += t["low"] <= 0.5 <= t["high"]
    assert 0.93 <= cover / 2000 <= 0.97


def test_a_step_from_resnet_to_res2net_is_not_a_trend_among_the_res2nets() -> None:
    """Rule: the sweep's second trend leaves s = 1 (the ResNet) out, so one step from ResNet to any Res2Net, flat
    after it, rises over s = 1..8 but shows no trend among s = 2, 4, 8; with fewer than two Res2Nets it is absent."""
    step = {1: [50.0, 50.2, 49.8], 2: [54.0, 54.3, 53.7], 4: [54.1, 53.8, 54.2], 8: [53.9, 54.2, 54.0]}
    out = _sweep(step)
    assert out["top1_trend"]["words"] == "rises with s"
    assert out["top1_trend_res2net"]["words"] == "no detectable trend"
    assert out["top1_trend_res2net"] == K.trend_per_doubling({s: v for s, v in step.items() if s > 1})
    assert _sweep({1: [50.0, 50.2, 49.8], 2: [54.0, 54.3, 53.7]})["top1_trend_res2net"] is None
    two = {1: [50.0, 50.2, 49.8], 2: [54.0, 54.3, 53.7], 4: [56.0, 56.3, 55.7]}  # exactly two Res2Nets: a trend
    assert _sweep(two)["top1_trend_res2net"] == K.trend_per_doubling({2: two[2], 4: two[4]})
    assert _sweep(two)["top1_trend"] == K.trend_per_doubling(two)


def test_the_sweep_rows_by_hand() -> None:
    """Rule: per model its scale, the top-1 and localisation (the mean over an image set ignoring NaN, per run) run
    intervals, the ERF radius of the trained model at the verdict tap (another model's, the random-init weights' or
    another tap's row is never taken; None without one), the paper's top-1, the runs; the layer named."""
    res = {"models": {}, "erf": [
        {"model": "a", "weights": "random", "tap": "layer3.1", "radius_50": 9.0, "radius_50_low": 8.0,
         "radius_50_high": 10.0},
        {"model": "a", "weights": "trained", "tap": "layer2.1", "radius_50": 7.0, "radius_50_low": 6.0,
         "radius_50_high": 8.0},
        {"model": "b", "weights": "trained", "tap": "layer3.1", "radius_50": 5.0, "radius_50_low": 4.0,
         "radius_50_high": 6.0},
        {"model": "a", "weights": "trained", "tap": "layer3.1", "radius_50": 3.0, "radius_50_low": 2.0,
         "radius_50_high": 4.0}]}
    arrays = {}
    for name, s in (("a", 2), ("c", 4)):
        res["models"][name] = {"scale": s, "runs": [{"top1": 50.0 + s}, {"top1": 52.0 + s}],
                               "taps": {"layer3": {"output": "layer3.1"}, "layer2": {"output": "layer2.1"}}}
        for sd in (3, 5):
            arrays[f"{name}/seed{sd}/layer3.1/energy"] = np.array([0.1 * sd, np.nan, 0.3], dtype=np.float16)
            arrays[f"{name}/seed{sd}/layer3.1/coverage"] = np.array([0.2 * sd, 0.4])
            arrays[f"{name}/seed{sd}/layer2.1/energy"] = np.array([9.0])
    out = K.scale_sweep(res, arrays, ["c", "a"], [3, 5], "layer3")
    a, c = out["rows"]
    f16 = lambda v: float(np.float16(v))  # noqa: E731
    e3, e5 = (f16(0.3) + f16(0.3)) / 2, (f16(0.5) + f16(0.3)) / 2  # the NaN image left out
    assert a == {"model": "a", "scale": 2, "top1": K._run_interval([52.0, 54.0]),
                 "energy": K._run_interval([e3, e5]), "coverage": K._run_interval([0.5, 0.7]),
                 "erf_radius_50": {"mean": 3.0, "low": 2.0, "high": 4.0}, "paper_top1": 77.32, "runs": 2}
    assert a["energy"]["per_run"] == [round(e3, 4), round(e5, 4)]
    assert c["erf_radius_50"] is None and c["paper_top1"] == 77.99 and c["top1"]["mean"] == 55.0
    assert out["layer"] == "layer3 output"
    assert out["top1_trend"] == K.trend_per_doubling({2: [52.0, 54.0], 4: [54.0, 56.0]})
    assert out["paper"] == ("Gao et al., TPAMI 2021, scale ablation of Res2Net-50 at matched complexity (ImageNet "
                            "top-1: 100 - reported error; s = 1 is their ResNet-50)")
    assert out["intervals"] == ("top-1 and localisation: mean over runs with a Student-t 95% interval (per-run "
                                "values given); ERF radius: the ERF table's interval (runs, then noise inputs)")


# ------------------------------------------------------------------------------------------- run intervals
@pytest.mark.parametrize("values, t", [
    ([1.0, 3.0], 12.706), ([50.0, 52.0, 54.0], 4.303), (list(range(11)), 2.228), (list(range(12)), 1.96),
    (list(range(30)), 1.96)])
def test_a_run_interval_is_student_t_by_hand(values: list[float], t: float) -> None:
    """Rule: mean +- t(0.975, runs - 1) x SD / sqrt(runs), SD with ddof 1; df 1 uses 12.706, df 10 the last tabulated
    2.228, df 11 and beyond 1.96; every number rounded to 4 decimals."""
    v = np.asarray(values, dtype=float)
    half = t * v.std(ddof=1) / math.sqrt(v.size)
    assert K._run_interval(values) == {"mean": round(v.mean(), 4), "low": round(v.mean() - half, 4),
                                       "high": round(v.mean() + half, 4), "per_run": [round(x, 4) for x in v]}


def test_one_run_has_no_interval() -> None:
    assert K._run_interval([52.123456]) == {"mean": 52.1235, "low": None, "high": None, "per_run": [52.1235]}
    assert K._run_interval([1.23456, 2.0])["per_run"] == [1.2346, 2.0]


@given(st.lists(st.floats(-100, 100, allow_nan=False), min_size=2, max_size=15))
def test_a_run_interval_holds_its_mean(values: list[float]) -> None:
    """Property: low <= mean <= high, symmetric about the mean (up to rounding)."""
    out = K._run_interval(values)
    assert out["low"] <= out["mean"] <= out["high"]
    assert (out["high"] - out["mean"]) == pytest.approx(out["mean"] - out["low"], abs=2e-4)


# ------------------------------------------------------------------------------------------- blocks and groups
def _bottlenecks(n: int = 2) -> list[nn.Module]:
    return [Bottleneck(24, 6) for _ in range(n)]  # fusion input of 6 channels: a quarter is one channel


def test_the_study_blocks_are_the_normal_blocks_in_forward_order() -> None:
    for name in ("tiny_resnet26", "tiny_res2net26_4s"):
        assert K.study_blocks(res2net.create_model(name)) == BLOCKS
    assert K._verdict_tap(res2net.create_model("tiny_res2net26_4s"), "layer3") == "layer3.1"
    assert K._verdict_tap(res2net.create_model("tiny_resnet26"), "layer2") == "layer2.1"
    three = nn.Module()
    three.layer1, three.layer2 = nn.Sequential(*_bottlenecks(3)), nn.Sequential(*_bottlenecks(2))
    assert K._verdict_tap(three, "layer1") == "layer1.2"  # the stage's last block, not its second


def test_control_groups_by_hand() -> None:
    """Rule: one branch's width (Res2Net 4s at layer2.1: 52 // 4 = 13) drawn with default_rng([0, 2, 1]); a ResNet's
    quarter (layer1.1: 16 // 4 = 4) with default_rng([0, 1, 1]); sorted and distinct."""
    want = sorted(int(c) for c in np.random.default_rng([K.CONTROL_SEED, 2, 1]).choice(52, 13, replace=False))
    got = K.control_channels(res2net.create_model("tiny_res2net26_4s"), "layer2.1")
    assert got == want == [6, 10, 11, 13, 18, 21, 22, 24, 28, 35, 37, 38, 49]
    assert all(type(c) is int for c in got)
    assert K.control_channels(res2net.create_model("tiny_resnet26"), "layer1.1") == [4, 8, 11, 12]


def test_a_missing_stage_or_index_counts_as_zero_and_a_group_has_a_channel_at_least() -> None:
    """Rule: a block 'layer.1' draws with [0, 0, 1] (channel 5 of 6), a block '1' of a plain sequence with [0, 1, 0]
    (channel 3), 'layer1.1' with [0, 1, 1] (channel 4): a ResNet block of 6 channels loses 1 (6 // 4 = 1, never 0
    nor 2)."""
    named = nn.Module()
    named.layer = nn.Sequential(*_bottlenecks())
    assert K.control_channels(named, "layer.1") == [5]
    assert K.control_channels(nn.Sequential(*_bottlenecks()), "1") == [3]
    staged = nn.Module()
    staged.layer1 = nn.Sequential(*_bottlenecks())
    assert K.control_channels(staged, "layer1.1") == [4]
    small = nn.Module()
    small.layer1 = nn.Sequential(Bottleneck(8, 2), Bottleneck(8, 2))  # 2 channels: 2 // 4 = 0, still one
    assert len(K.control_channels(small, "layer1.1")) == 1


@given(st.sampled_from(BLOCKS), st.sampled_from(["tiny_resnet26", "tiny_res2net26_2s", "tiny_res2net26_8s"]))
def test_a_control_group_is_one_branch_wide_and_the_same_on_every_call(block: str, name: str) -> None:
    model = _model(name)
    b = dict(res2net.models.taps.iter_blocks(model))[block]
    n = b.conv3.in_channels
    got = K.control_channels(model, block)
    assert len(got) == (n // b.num_branches if b.num_branches > 1 else n // 4)
    assert got == sorted(set(got)) and 0 <= got[0] and got[-1] < n
    assert got == K.control_channels(model, block)


_MODELS: dict[str, nn.Module] = {}


def _model(name: str) -> nn.Module:
    if name not in _MODELS:
        _MODELS[name] = res2net.create_model(name)
    return _MODELS[name]


# ------------------------------------------------------------------------------------------- one scored pass
# ids 0..5: logits over 3 classes, the true class, the registered 8 x 6 map and the box (x0 y0 x1 y1, exclusive)
_LOGITS = torch.tensor([[0.0, 1.0, 2.0], [0.0, 1.0, 2.0], [3.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 5.0, 2.0],
                        [2.0, 2.0, 0.0]])
_LABELS = torch.tensor([2, 0, 0, 1, 1, 2])


def _maps() -> tuple[torch.Tensor, np.ndarray]:
    m = torch.zeros(6, 8, 6)
    m[0, 1, 1], m[0, 6, 5] = 1.0, 3.0  # box [0,0,3,4]: energy 1/4; nothing in the box reaches 0.5 x 3: coverage 0
    m[1, 0, 0], m[1, 3, 2], m[1, 7, 5] = 2.0, 2.0, 1.0  # energy 4/5; 2 of the box's 12 pixels >= 1: coverage 1/6
    m[3] = 5.0  # constant: flat, a miss (else energy 12/48 and coverage 1)
    m[4, 2:6, 1:4] = 1.0  # exactly the box [1,2,4,6]: energy 1, coverage 1
    m[5, 0, 0] = 1.0  # a peak outside its box [2,2,5,5]: energy 0, coverage 0
    boxes = np.array([[0, 0, 3, 4], [0, 0, 3, 4], [0, 0, 3, 4], [0, 0, 3, 4], [1, 2, 4, 6], [2, 2, 5, 5]])
    return m.to(torch.float32), boxes  # map 2 is all zero: flat


def _lse(row: list[float]) -> float:
    return math.log(sum(math.exp(v) for v in row))


_WANT = {"top1": [1.0, 0.0, 1.0, 0.0, 1.0, 0.0],
         "logprob": [2 - _lse([0, 1, 2]), -_lse([0, 1, 2]), 3 - _lse([3, 0, 0]), -math.log(3), 5 - _lse([1, 5, 2]),
                     -_lse([2, 2, 0])],
         "energy": [0.25, 0.8, 0.0, 0.0, 1.0, 0.0], "coverage": [0.0, 1 / 6, 0.0, 0.0, 1.0, 0.0]}


def _fake_cams(monkeypatch) -> list:
    """compute_cams and register_all replaced by tables: the image's id is its pixel value."""
    calls = []
    maps, _ = _maps()

    def cams(model, images, targets=None, taps=None, method="gradcam", *, return_logits=False):  # noqa: ANN001, ANN202
        ids = images[:, 0, 0, 0].long()
        calls.append(("cams", ids.tolist(), targets.tolist(), list(taps), return_logits))
        return {t: ids.double()[:, None, None].expand(-1, 2, 2).clone() for t in taps}, _LOGITS[ids]

    def register(model, cams_, size):  # noqa: ANN001, ANN202
        calls.append(("register", tuple(size)))
        return {t: maps[m[:, 0, 0].long()] for t, m in cams_.items()}

    monkeypatch.setattr(K, "compute_cams", cams)
    monkeypatch.setattr(K, "register_all", register)
    return calls


@pytest.mark.parametrize("batch_size", [250, 4, 1])
def test_a_scored_pass_by_hand_in_any_batch_size(monkeypatch, batch_size: int) -> None:
    """Hand case: top-1 (argmax is the label), the true class's log-softmax in float64 (2 - log(1 + e + e^2), ...),
    energy and coverage of hand-made maps, a flat map (all-zero, constant) a miss; the same per image whatever
    the batches, one compute_cams per batch for its labels at the tap with the logits, the maps placed on (8, 6)."""
    calls = _fake_cams(monkeypatch)
    _, boxes = _maps()
    images = torch.arange(6, dtype=torch.float32)[:, None, None, None].expand(6, 3, 8, 6).clone()
    kw = {} if batch_size == 250 else {"batch_size": batch_size}
    got = K.score_pass(None, images, _LABELS, boxes, "layer3.1", **kw)
    assert list(got) == list(K.KNOCKOUT_METRICS)
    for k, v in _WANT.items():
        assert got[k].dtype == np.float64 and got[k].shape == (6,)
        np.testing.assert_allclose(got[k], v, rtol=1e-13, atol=1e-15, err_msg=k)
    batches = [list(range(s, min(s + batch_size, 6))) for s in range(0, 6, batch_size)]
    assert calls == [c for b in batches for c in (("cams", b, _LABELS[b].tolist(), ["layer3.1"], True),
                                                   ("register", (8, 6)))]


def test_a_scored_pass_takes_250_images_at_a_time_by_default(monkeypatch) -> None:
    """Rule: a pass over 300 images is two compute_cams calls, of 250 and of 50 images, in order."""
    calls = _fake_cams(monkeypatch)
    _, boxes = _maps()
    ids = torch.arange(300) % 6
    images = ids.float()[:, None, None, None].expand(300, 3, 8, 6).clone()
    got = K.score_pass(None, images, _LABELS[ids], boxes[ids.numpy()], "layer3.1")
    assert [len(c[1]) for c in calls if c[0] == "cams"] == [250, 50]
    np.testing.assert_allclose(got["logprob"], np.array(_WANT["logprob"])[ids.numpy()], rtol=1e-13)


# ------------------------------------------------------------------------------------------- strength
def test_strength_by_hand() -> None:
    """Hand case: intact (3, 4) (norm 5) changed by (0, 5): 1; unchanged: 0; intact all zero: 0 (not inf, not NaN);
    small intact norms 0.001 and 1e-35 changed by twice themselves: 2 (no floor on a non-zero norm)."""
    intact = torch.tensor([[3.0, 4.0], [3.0, 4.0], [0.0, 0.0], [0.001, 0.0], [0.0, 1e-35]], dtype=torch.float64)
    changed = torch.tensor([[3.0, 9.0], [3.0, 4.0], [1.0, 2.0], [0.003, 0.0], [0.0, 3e-35]], dtype=torch.float64)
    np.testing.assert_allclose(K._strength(changed, intact), [1.0, 0.0, 0.0, 2.0, 2.0], rtol=1e-12)


_COORD = st.floats(-10, 10).filter(lambda v: v == 0 or abs(v) > 1e-100)  # squares stay normal float64 numbers


@given(st.lists(_COORD, min_size=3, max_size=3), st.lists(_COORD, min_size=3, max_size=3))
def test_strength_is_the_relative_change(a: list[float], b: list[float]) -> None:
    """Property: the relative change by the definition, for any output (norms down to 1e-100 included)."""
    intact, changed = torch.tensor([a], dtype=torch.float64), torch.tensor([b], dtype=torch.float64)
    norm = math.sqrt(sum(x * x for x in a))
    want = math.dist(a, b) / norm if norm > 0 else 0.0
    assert K._strength(changed, intact)[0] == pytest.approx(want, rel=1e-9)


# ------------------------------------------------------------------------------------------- lesions
def _direct(block: nn.Module, lo: int, hi: int, values: torch.Tensor):  # noqa: ANN202
    """A hand-made lesion: channels ``lo:hi`` (or the index tensor ``lo``) of the fusion conv's input take
    ``values``."""
    def hook(m, i):  # noqa: ANN001, ANN202
        z = i[0].clone()
        idx = slice(lo, hi) if hi is not None else lo
        z[:, idx] = values.to(z.dtype).view(1, -1, 1, 1)
        return (z,)

    return block.conv3.register_forward_pre_hook(hook)


def _block_out(model: nn.Module, block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    store = {}
    h = block.register_forward_hook(lambda m, i, o: store.__setitem__("o", o.detach().clone()))
    with torch.no_grad():
        model.eval()(x)
    h.remove()
    return store["o"].flatten(1).double()


def test_a_branch_knock_out_is_its_direct_mean_lesion_and_the_control_its_channel_group() -> None:
    """Rule: by default (mode 'mean', effect 'direct') branch i's lesion writes the given mean of branch i into its
    slice of the fusion conv's input only (the later branches still see the branch); the control writes the branch
    means, concatenated, into the ``control_channels``; the intact scores given are reused as they are; each
    lesion's strength is the relative change of the block's output, by hand."""
    model = res2net.create_model("tiny_res2net26_4s").eval()
    block, w = model.layer2[1], model.layer2[1].width
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 3, 64, 64, generator=gen)
    labels, boxes = torch.tensor([0, 5, 9]), np.array([[8, 8, 40, 40], [0, 0, 64, 64], [20, 4, 30, 60]])
    means = {f"layer2.1.branch{i}": torch.randn(w, generator=gen, dtype=torch.float64) + 3.0 for i in range(4)}
    intact = K.score_pass(model, x, labels, boxes, "layer3.1")
    out = K.block_knockout(model, x, labels, boxes, "layer2.1", "layer3.1", means, intact, control=True)
    assert list(out) == ["intact", *(f"layer2.1.branch{i}" for i in range(4)), "layer2.1.group"]
    assert out["intact"] is intact and "strength" not in intact
    base = _block_out(model, block, x)
    lesions = {f"layer2.1.branch{i}": (i * w, (i + 1) * w, means[f"layer2.1.branch{i}"]) for i in (1, 3)}
    group = torch.tensor(K.control_channels(model, "layer2.1"))
    lesions["layer2.1.group"] = (group, None, torch.cat([means[f"layer2.1.branch{i}"] for i in range(4)])[group])
    for key, (lo, hi, values) in lesions.items():
        h = _direct(block, lo, hi, values)
        try:
            want = K.score_pass(model, x, labels, boxes, "layer3.1")
            changed = _block_out(model, block, x)
        finally:
            h.remove()
        assert set(out[key]) == {*K.KNOCKOUT_METRICS, "strength"}
        for metric in K.KNOCKOUT_METRICS:
            np.testing.assert_allclose(out[key][metric], want[metric], rtol=1e-5, atol=1e-6, err_msg=key)
        strength = ((changed - base).norm(dim=1) / base.norm(dim=1)).numpy()
        np.testing.assert_allclose(out[key]["strength"], strength, rtol=1e-6)
        assert (strength > 0).all()
    assert not np.allclose(out["layer2.1.branch1"]["logprob"], intact["logprob"])


class _Mixed(nn.Module):
    """A ResNet block (1 branch) before a Res2Net block (4 branches of 6 channels)."""

    def __init__(self) -> None:
        super().__init__()
        self.layer1 = nn.Sequential(Bottleneck(24, 6))
        self.layer2 = nn.Sequential(Bottle2neck(24, 16, outplanes=24))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer2(self.layer1(x)).mean((2, 3))


def test_a_block_is_knocked_out_branch_by_branch_with_its_own_branch_count(monkeypatch) -> None:
    """Rule: the lesions are the branches of the block named (4 here, although the model's first block has 1), no
    control unless asked; with no intact scores given, one intact pass comes first (and a pass per lesion)."""
    seen = []

    def fake_pass(model, images, labels, boxes, tap, batch_size=250):  # noqa: ANN001, ANN202
        with torch.no_grad():
            logits = model(images)
        seen.append(batch_size)
        assert labels is y and boxes is b and tap == "layer2.0"
        return {"top1": np.zeros(len(images)), "logprob": logits[:, 0].double().numpy()}

    monkeypatch.setattr(K, "score_pass", fake_pass)
    model = _Mixed().eval()
    x = torch.randn(2, 24, 4, 4, generator=torch.Generator().manual_seed(1))
    y, b = torch.zeros(2, dtype=torch.long), np.zeros((2, 4))
    out = K.block_knockout(model, x, y, b, "layer2.0", "layer2.0", mode="zero", batch_size=7)
    assert list(out) == ["intact", *(f"layer2.0.branch{i}" for i in range(4))]
    assert seen == [7] * 5  # the intact pass and one per branch, in batches of the size given (250 by default)
    seen.clear()
    K.block_knockout(model, x, y, b, "layer2.0", "layer2.0", mode="zero")
    assert seen == [250] * 5
    assert all((out[f"layer2.0.branch{i}"]["strength"] > 0).all() for i in range(4))
    one = K.block_knockout(model, x, y, b, "layer1.0", "layer2.0",
                           {"layer1.0.branch0": torch.ones(6, dtype=torch.float64)}, mode="zero", control=True)
    assert list(one) == ["intact", "layer1.0.branch0", "layer1.0.group"]  # the group takes the means given


def test_the_lesion_defaults_are_the_direct_mean_lesion_of_one_batch() -> None:
    """Rule: the study's lesion is 'mean' / 'direct', and a pass is at most 250 images."""
    p = inspect.signature(K.block_knockout).parameters
    assert (p["mode"].default, p["effect"].default, p["control"].default) == ("mean", "direct", False)
    assert inspect.signature(K.train_images).parameters["n"].default == K.MEAN_IMAGES == 2000
    assert K.KNOCKOUT_IMAGES == 500


# ------------------------------------------------------------------------------------------- the study's arrays
def _split(n: int, side: int = 2, seed: int = 0) -> Split:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, side, side), generator=gen, dtype=torch.uint8)
    boxes = torch.randint(0, side + 1, (n, 4), generator=gen, dtype=torch.int16)
    return Split(images, torch.arange(n) % 7, [f"f{i}" for i in range(n)], boxes, [f"n{i}" for i in range(7)])


def _normalised(images: torch.Tensor, name: str) -> torch.Tensor:
    spec = res2net.get_spec(name)
    mean, std = torch.tensor(spec.mean).view(1, 3, 1, 1), torch.tensor(spec.std).view(1, 3, 1, 1)
    return (images.float() / 255 - mean) / std


def test_train_images_are_evenly_spaced_and_normalised() -> None:
    """Hand case: 12 images, n = 5: indices round(linspace(0, 11, 5)) = 0, 3, 6, 8, 11; all of them when n >= 12."""
    train = _split(12)
    got = K.train_images(train, "tiny_res2net26_4s", 5)
    torch.testing.assert_close(got, _normalised(train.images[[0, 3, 6, 8, 11]], "tiny_res2net26_4s"))
    torch.testing.assert_close(K.train_images(train, "tiny_resnet26"), _normalised(train.images, "tiny_resnet26"))


def test_the_study_runs_every_model_seed_and_block_on_fixed_images(monkeypatch) -> None:
    """Rule: KNOCKOUT_IMAGES evenly spaced val images and MEAN_IMAGES evenly spaced train images (read from the data
    folder given); per model and seed the trained model of that seed, branch means of the study blocks on the
    model's normalised train images, one intact pass at the verdict tap, block_knockout with the control per block
    (those images, labels, boxes as int64, the means, the intact scores); arrays under knockout/<model>/seed<s>/."""
    val, train = _split(1100, seed=1), _split(2100, seed=2)
    log, made, passes, knocks, loads = [], [], [], [], []
    real = res2net.create_model

    def load(which, data_dir):  # noqa: ANN001, ANN202
        loads.append((which, data_dir))
        return train

    def create(name, pretrained=False, seed=None, **kw):  # noqa: ANN001, ANN202
        made.append((name, pretrained, seed))
        model = real(name)
        model.tag = (name, seed)
        return model

    def means(model, images, blocks):  # noqa: ANN001, ANN202
        return {"tag": model.tag, "images": images, "blocks": list(blocks)}

    def score(model, images, labels, boxes, tap, batch_size=250):  # noqa: ANN001, ANN202
        passes.append((model.tag, images, labels, boxes, tap))
        return {"top1": np.full(len(images), float(model.tag[1])), "logprob": np.full(len(images), -1.0)}

    def knock(model, images, labels, boxes, block, tap, m=None, intact=None, control=False):  # noqa: ANN001, ANN202
        knocks.append((model.tag, images, labels, boxes, block, tap, m, intact, control))
        return {"intact": intact, f"{block}.branch0": {"top1": np.full(3, 7.0), "strength": np.full(3, 0.5)}}

    for name, f in (("load_split", load), ("create_model", create), ("branch_means", means),
                    ("score_pass", score), ("block_knockout", knock)):
        monkeypatch.setattr(K, name, f)
    names, seeds = ["tiny_resnet26", "tiny_res2net26_4s"], [3, 1]
    arrays = K.run_study(names, seeds, "/data/here", val, "layer3", log=log.append)
    idx = torch.linspace(0, 1099, 500).round().long()
    midx = torch.linspace(0, 2099, 2000).round().long()
    assert arrays["knockout/image_index"].tolist() == idx.tolist() and len(set(idx.tolist())) == 500
    assert arrays["knockout/mean_index"].tolist() == midx.tolist()
    assert loads == [("train", "/data/here")]
    assert made == [(n, True, s) for n in names for s in seeds]
    assert log == [f"knock-out: {n} seed {s}, 4 blocks ..." for n in names for s in seeds]
    assert [p[0] for p in passes] == [(n, s) for n in names for s in seeds]
    for tag, images, labels, boxes, tap in passes:
        torch.testing.assert_close(images, _normalised(val.images[idx], tag[0]))
        assert labels.tolist() == val.labels[idx].tolist() and tap == "layer3.1"
        assert boxes.dtype == np.int64 and boxes.tolist() == val.boxes[idx].tolist()
    assert [(k[0], k[4]) for k in knocks] == [((n, s), b) for n in names for s in seeds for b in BLOCKS]
    for tag, images, labels, boxes, _block, tap, m, intact, control in knocks:
        torch.testing.assert_close(images, _normalised(val.images[idx], tag[0]))
        assert labels.tolist() == val.labels[idx].tolist() and boxes.tolist() == val.boxes[idx].tolist()
        assert tap == "layer3.1" and control is True and intact["top1"][0] == tag[1]
        assert m["tag"] == tag and m["blocks"] == BLOCKS
        torch.testing.assert_close(m["images"], _normalised(train.images[midx], tag[0]))
    want = {"knockout/image_index", "knockout/mean_index"}
    for n in names:
        for s in seeds:
            want |= {f"knockout/{n}/seed{s}/intact/top1", f"knockout/{n}/seed{s}/intact/logprob"}
            want |= {f"knockout/{n}/seed{s}/{b}.branch0/{m}" for b in BLOCKS for m in ("top1", "strength")}
    assert set(arrays) == want
    assert arrays["knockout/tiny_resnet26/seed3/intact/top1"].tolist() == [3.0] * 500
    assert arrays["knockout/tiny_res2net26_4s/seed1/layer2.1.branch0/strength"].tolist() == [0.5] * 3
    small = K.run_study(["tiny_resnet26"], [0], "/d", _split(10), "layer2", n_images=4, n_means=5, log=log.append)
    assert small["knockout/image_index"].tolist() == [0, 3, 6, 9]
    assert small["knockout/mean_index"].tolist() == [0, 525, 1050, 1574, 2099]
    assert passes[-1][4] == "layer2.1"


# ------------------------------------------------------------------------------------------- the summary
SMALL, MEDIUM, LARGE = [0, 0, 10, 10], [0, 0, 40, 40], [0, 0, 64, 64]
VAL_BOXES = [SMALL, SMALL, LARGE, MEDIUM, LARGE, SMALL, LARGE, MEDIUM, SMALL, LARGE]
VAL_LABELS = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
LESIONS = {"tiny_resnet26": ["branch0", "group"], "tiny_res2net26_4s": [f"branch{i}" for i in range(4)] + ["group"],
           "toy3": [f"branch{i}" for i in range(4)] + ["group"]}
MIN_EFFECT = {"top1": 1.0, "energy": 0.02, "coverage": 0.03}  # no log-probability: its d is the study's own


def _val() -> Split:
    return Split(torch.zeros(10, 3, 64, 64, dtype=torch.uint8), torch.tensor(VAL_LABELS),
                 [f"v{i}" for i in range(10)], torch.tensor(VAL_BOXES, dtype=torch.int16), ["a", "b", "c", "d", "e"])


def _study_arrays(names: list[str], seeds: list[int], image_index: list[int], harm=None, seed: int = 0) -> dict:
    """Random per-image scores of every lesion, or those of ``harm(name, key, metric, run, image) -> harm`` on an
    intact score of 1."""
    rng = np.random.default_rng(seed)
    n = len(image_index)
    arrays = {"knockout/image_index": np.array(image_index), "knockout/mean_index": np.arange(5)}
    for name in names:
        for r, s in enumerate(seeds):
            pre = f"knockout/{name}/seed{s}"
            for m in K.KNOCKOUT_METRICS:
                arrays[f"{pre}/intact/{m}"] = np.ones(n) if harm else rng.normal(size=n).astype(np.float16)
            for b in BLOCKS:
                for lesion in LESIONS[name]:
                    key = f"{b}.{lesion}"
                    for m in K.KNOCKOUT_METRICS:
                        arrays[f"{pre}/{key}/{m}"] = (1 - np.array([harm(name, key, m, r, j) for j in range(n)])
                                                      if harm else rng.normal(size=n).astype(np.float16))
                    arrays[f"{pre}/{key}/strength"] = rng.uniform(0, 1, n)
    return arrays


def _hand_harm(arrays: dict, name: str, seeds: list[int], key: str, metric: str) -> np.ndarray:
    h = np.stack([arrays[f"knockout/{name}/seed{s}/intact/{metric}"].astype(np.float64)
                  - arrays[f"knockout/{name}/seed{s}/{key}/{metric}"].astype(np.float64) for s in seeds])
    return 100 * h if metric == "top1" else h


def _label(name: str, lesion: str, block: str) -> str:
    if lesion == "group":
        n = dict(res2net.models.taps.iter_blocks(_model(name)))[block].conv3.in_channels
        return f"random group of {n // 4} channels"
    i = int(lesion.removeprefix("branch"))
    return f"branch {i}" + (" (identity)" if name != "tiny_resnet26" and i == 3 else "")


def test_rows_and_interactions_by_hand_on_random_scores() -> None:
    """Rule: rows (model, block, lesion, metric, bucket) in this order, the mean harm over runs and the bucket's
    images (top-1 in points), the bucket's mean strength, n and runs; interactions large minus small, the lesion's
    mean strength and the buckets' sizes; d of log-probability 0.05; the ResNet reference is the scale-1 rows;
    an empty bucket (no medium image here) has no harm, interval or strength (and no mean of nothing is taken:
    no warning)."""
    names, seeds = ["tiny_resnet26", "tiny_res2net26_4s"], [0, 2]
    image_index = [9, 0, 2, 5, 6, 8]  # large, small, large, small, large, small
    arrays = _study_arrays(names, seeds, image_index)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = K.summarise_study(arrays, names, seeds, _val(), "layer3", MIN_EFFECT)
    large = np.array([True, False, True, False, True, False])
    masks = {"small": ~large, "medium": np.zeros(6, bool), "large": large, "all": np.ones(6, bool)}
    order = [(n, b, lesion, m, k) for n in names for b in BLOCKS for lesion in LESIONS[n] for m in K.KNOCKOUT_METRICS
             for k in masks]
    assert [(r["model"], r["block"], r["label"], r["metric"], r["bucket"]) for r in out["rows"]] == [
        (n, b, _label(n, lesion, b), m, k) for n, b, lesion, m, k in order]
    inter = iter(out["interactions"])
    for r, (n, b, lesion, m, k) in zip(out["rows"], order, strict=True):
        key = f"{b}.{lesion}"
        h = _hand_harm(arrays, n, seeds, key, m)
        strength = np.stack([arrays[f"knockout/{n}/seed{s}/{key}/strength"] for s in seeds])
        branch = -1 if lesion == "group" else int(lesion[-1])
        common = {"model": n, "scale": 1 if n == "tiny_resnet26" else 4, "block": b, "stype": "normal",
                  "branch": branch, "label": _label(n, lesion, b), "lesion": "random group" if branch < 0 else "branch",
                  "metric": m}
        assert {k2: r[k2] for k2 in common} == common
        assert (r["n"], r["runs"]) == (int(masks[k].sum()), 2)
        if k == "medium":
            assert (r["harm"], r["low"], r["high"], r["strength"]) == (None, None, None, None)
            continue
        assert r["harm"] == pytest.approx(round(h[:, masks[k]].mean(), 4), abs=1e-12)
        assert r["strength"] == pytest.approx(round(strength[:, masks[k]].mean(), 4), abs=1e-12)
        assert r["low"] <= r["harm"] <= r["high"]
        if k == "all":
            it = next(inter)
            est = h[:, large].mean() - h[:, ~large].mean()
            d = 0.05 if m == "logprob" else MIN_EFFECT[m]
            assert {k2: it[k2] for k2 in common} == common
            assert it["interaction"] == pytest.approx(round(est, 4), abs=1e-12)
            assert it["low"] <= it["interaction"] <= it["high"]
            assert (it["min_effect"], it["verdict"]) == (d, S.verdict((it["low"], it["high"]), d))
            assert it["strength"] == pytest.approx(round(strength.mean(), 4), abs=1e-12)
            assert (it["small"], it["large"], it["runs"]) == (3, 3, 2)
    assert next(inter, None) is None
    assert out["resnet_reference"] == [r for r in out["interactions"] if r["model"] == "tiny_resnet26"]
    assert out["min_effect"] == {"top1": 1.0, "logprob": 0.05, "energy": 0.02, "coverage": 0.03}
    assert (out["images"], out["mean_images"], out["runs"], out["claims"]) == (6, 5, 2, [])


def test_intervals_are_the_hierarchical_bootstrap_with_seed_0() -> None:
    """Rule: a row's interval is the 95% percentile interval of the mean harm over BOOT resamples of runs, classes,
    then images (seed 0), leaving out resamples that draw no image of the bucket; an interaction's is that of the
    resampled large minus small means."""
    names, seeds = ["tiny_res2net26_4s"], [0, 1, 2]
    image_index = [0, 2, 3, 4, 5, 6, 8, 9]
    arrays = _study_arrays(names, seeds, image_index, seed=3)
    out = K.summarise_study(arrays, names, seeds, _val(), "layer3", MIN_EFFECT)
    labels = np.array(VAL_LABELS)[image_index]
    buckets = np.array(["small", "large", "medium", "large", "small", "large", "small", "large"])
    run_w, img_w = S.bootstrap_weights(3, labels, 2000, seed=0)
    h = _hand_harm(arrays, "tiny_res2net26_4s", seeds, "layer3.1.branch2", "energy")
    samples = {k: S.weighted_means([h], run_w, img_w, np.broadcast_to(buckets == k, h.shape))[0]
               for k in ("small", "large", "medium")}
    for k in ("small", "medium", "large"):
        row = next(r for r in out["rows"] if (r["block"], r["branch"], r["metric"], r["bucket"]) ==
                   ("layer3.1", 2, "energy", k))
        finite = samples[k][np.isfinite(samples[k])]  # a resample that draws none of the bucket's images is left out
        lo, hi = np.quantile(finite, [0.025, 0.975])
        assert (row["low"], row["high"]) == (round(lo, 4), round(hi, 4)) and row["n"] == int((buckets == k).sum())
    it = next(r for r in out["interactions"] if (r["block"], r["branch"], r["metric"]) == ("layer3.1", 2, "energy"))
    diff = samples["large"] - samples["small"]
    lo, hi = np.quantile(diff[np.isfinite(diff)], [0.025, 0.975])
    assert (it["low"], it["high"]) == (round(lo, 4), round(hi, 4)) and (it["small"], it["large"]) == (3, 4)


def _truth(name: str, key: str, metric: str, run: int, image: int) -> float:
    """Known harms on images large, small, large, small, large, small: branch 2 of every block hurts large objects
    (top-1 lost on them, energy down by 0.1 there), branch 0 small ones (log-probability down by 0.5), the rest
    nothing."""
    large = image % 2 == 0
    if key.endswith("branch2"):
        return {"top1": 1.0, "energy": 0.1, "logprob": 0.0, "coverage": 0.01}[metric] if large else 0.0
    if key.endswith("branch0"):
        return {"logprob": 0.5, "energy": -0.1}.get(metric, 0.0) if not large else 0.0
    return 0.0


def test_a_known_interaction_gets_its_verdict() -> None:
    """Simulation with a known truth (the same in every run and image of a bucket, so every interval is the point):
    branch 2's top-1 interaction is +100 points (supported, d = 1), its energy +0.1 (supported, d = 0.02), its
    coverage +0.01 (no meaningful difference, d = 0.03); branch 0's log-probability -0.5 (contradicted, d = 0.05),
    its energy +0.1 (harm -0.1 on small ones); the group's 0 (no meaningful difference)."""
    names, seeds = ["tiny_res2net26_4s"], [0, 1]
    arrays = _study_arrays(names, seeds, [9, 0, 2, 5, 6, 8], harm=_truth)
    out = K.summarise_study(arrays, names, seeds, _val(), "layer3", MIN_EFFECT)
    got = {(r["block"], r["branch"], r["metric"]): (r["interaction"], r["low"], r["high"], r["verdict"])
           for r in out["interactions"]}
    for b in BLOCKS:
        assert got[(b, 2, "top1")] == (100.0, 100.0, 100.0, "supported")
        assert got[(b, 2, "energy")] == (0.1, 0.1, 0.1, "supported")
        assert got[(b, 2, "coverage")] == (0.01, 0.01, 0.01, "no meaningful difference")
        assert got[(b, 0, "logprob")] == (-0.5, -0.5, -0.5, "contradicted")
        assert got[(b, 0, "energy")] == (0.1, 0.1, 0.1, "supported")
        assert got[(b, -1, "top1")] == (0.0, 0.0, 0.0, "no meaningful difference")
    rows = {(r["block"], r["branch"], r["metric"], r["bucket"]): r["harm"] for r in out["rows"]}
    assert rows[("layer1.1", 2, "top1", "large")] == 100.0 and rows[("layer1.1", 2, "top1", "all")] == 50.0
    assert rows[("layer1.1", 0, "logprob", "small")] == 0.5 and rows[("layer1.1", 0, "logprob", "large")] == 0.0


def test_the_summary_states_its_rules_in_words() -> None:
    names, seeds = ["tiny_res2net26_4s"], [0]
    arrays = _study_arrays(names, seeds, [0, 2])
    claim = {"metric_name": "energy", "id": "k1", "model": "m", "scale": 4, "block": "layer1.1", "contrast": "c",
             "estimate": 0.1, "low": 0.0, "high": 0.2, "low95": -0.1, "high95": 0.3, "level": 0.01,
             "min_effect": 0.02, "verdict": "inconclusive", "small": 1, "large": 1, "runs": 1, "strength": {},
             "p": 0.5, "section": "knockout"}
    out = K.summarise_study(arrays, names, seeds, _val(), "layer4", MIN_EFFECT, [claim])
    assert out["hypothesis"] == (
        "stated before any run: removing a large-receptive-field branch hurts large objects more than small ones "
        "(interaction > 0), removing a small-receptive-field branch the reverse (interaction < 0); confirmatory "
        "test per Res2Net with s >= 3 at the normal blocks of layer1 and layer2 (receptive fields smaller than the "
        "image): interaction(branch s-2) minus interaction(branch 0) above +d")
    assert out["lesion"] == (
        "mean ablation (per-channel mean over training images), direct effect: only the branch's own input to the "
        "1x1 fusion conv is replaced, so later branches still receive it; control: a random channel group of one "
        "branch's width from the whole fusion input (ResNet: a quarter of its 3x3); Grad-CAM recomputed after the "
        "lesion; strength: ||ablated - intact|| / ||intact|| of the lesioned block's output, per image")
    assert out["harm"] == ("intact minus ablated, per image and run (top-1 in points, log-probability in nats); "
                           "positive hurts")
    assert out["interaction"] == "harm on large objects minus harm on small ones (size buckets as in size_buckets)"
    assert out["score_tap"] == "layer4 output (the verdict stage's last block)"
    assert out["intervals"] == (
        "rows and interactions: 95% percentile, hierarchical paired bootstrap (runs, then classes, then images; "
        "2000 resamples, seed 0), exploratory; the confirmatory claims are judged in the one Holm family with every "
        "other claim")
    assert out["claims"] == [{"metric": "energy", **{k: v for k, v in claim.items()
                                                    if k not in ("metric_name", "p", "section")}}]
    assert list(out["claims"][0])[:2] == ["metric", "id"]
    assert out["resnet_reference"] == [] and out["images"] == 2
    with pytest.raises(IndexError):  # a verdict stage the model lacks has no last block: no summary names it
        K.summarise_study(arrays, names, seeds, _val(), "layer5", MIN_EFFECT)


# ------------------------------------------------------------------------------------------- confirmatory claims
def _pending(monkeypatch, names: list[str], image_index: list[int], seeds: list[int] | None = None,
             harm=None) -> tuple[list, dict]:
    real_spec, real_create = K.get_spec, K.create_model
    monkeypatch.setattr(K, "get_spec", lambda n: SimpleNamespace(scale=3) if n == "toy3" else real_spec(n))
    monkeypatch.setattr(K, "create_model", lambda n, **kw: real_create("tiny_res2net26_4s" if n == "toy3" else n, **kw))
    seeds = seeds or [0, 1]
    arrays = _study_arrays(names, seeds, image_index, harm=harm, seed=5)
    return K.knockout_pending(arrays, names, seeds, _val(), MIN_EFFECT), arrays


def test_confirmatory_contrasts_by_hand(monkeypatch) -> None:
    """Rule: per Res2Net with s >= 3 (s = 3 included: branch 1 minus branch 0; s = 2 and the ResNet have none), per
    normal block of layer1 and layer2, per metric of top-1, energy, coverage: D = harm(branch s-2) - harm(branch 0)
    weighted N / n_large on large objects, -N / n_small on small ones, 0 on medium ones (N = 7, 3 large, 3 small:
    +7/3, -7/3, 0); kept everywhere; the classes as clusters; d of the metric; confirmatory."""
    names = ["tiny_resnet26", "tiny_res2net26_2s", "tiny_res2net26_4s", "toy3"]
    LESIONS["tiny_res2net26_2s"] = ["branch0", "branch1", "group"]
    image_index = [0, 2, 3, 5, 6, 8, 9]  # small, large, medium, small, large, small, large
    pending, arrays = _pending(monkeypatch, names, image_index)
    assert [p.fields["id"] for p in pending] == [f"knockout-{m}-{b}-{n}" for n in ("tiny_res2net26_4s", "toy3")
                                                 for b in ("layer1.1", "layer2.1") for m in ("top1", "energy",
                                                                                             "coverage")]
    w = np.array([-7 / 3, 7 / 3, 0.0, -7 / 3, 7 / 3, -7 / 3, 7 / 3])
    for p in pending:
        n, b, m = p.fields["model"], p.fields["block"], p.fields["metric_name"]
        big = 2 if n == "tiny_res2net26_4s" else 1
        d = _hand_harm(arrays, n, [0, 1], f"{b}.branch{big}", m) - _hand_harm(arrays, n, [0, 1], f"{b}.branch0", m)
        np.testing.assert_allclose(p.diffs, d * w, rtol=1e-12, atol=1e-12)
        assert p.keep.dtype == bool and p.keep.shape == (2, 7) and p.keep.all()
        assert p.clusters.tolist() == [0, 1, 1, 2, 3, 4, 4]
        assert (p.d, p.confirmatory) == (MIN_EFFECT[m], True)
        sb, sl = (np.stack([arrays[f"knockout/{n}/seed{s}/{b}.branch{i}/strength"] for s in (0, 1)]).mean()
                  for i in (big, 0))
        scale = 4 if n == "tiny_res2net26_4s" else 3
        assert p.fields == {
            "id": f"knockout-{m}-{b}-{n}", "section": "knockout", "paper": PAPER["knockout"],
            "metric": f"{m}: {T.metric(m).label}", "metric_name": m, "model": n, "scale": scale,
            "layer": f"{b} (branch {big} minus branch 0)", "block": b, "contrast": f"branch {big} minus branch 0",
            "subset": "all", "bucket": "large minus small", "control": "none", "baseline_note": "", "small": 3,
            "large": 3, "strength": {"branch s-2": round(sb, 4), "branch 0": round(sl, 4)},
            "caveat": f"direct mean lesion; relative change of {b}'s output: branch {big} {sb:.3f}, branch 0 {sl:.3f}",
            "note": "interaction contrast (large minus small harm), runs as the top level", "family": "confirmatory",
            "images": 7}


def test_each_runs_contrast_is_its_interaction_difference(monkeypatch) -> None:
    """Known truth: branch 2 hurts top-1 on large objects by 100 points in every run, branch 0 nothing: each run's
    mean of the diffs is 100 (large minus small harm, branch 2 minus branch 0); energy: branch 2 harms large objects
    by 0.1 (interaction +0.1), branch 0 helps small ones by 0.1 (harm -0.1: interaction +0.1 too): contrast 0."""
    pending, _ = _pending(monkeypatch, ["tiny_res2net26_4s"], [9, 0, 2, 5, 6, 8], harm=_truth)
    got = {(p.fields["block"], p.fields["metric_name"]): p.diffs.mean(1) for p in pending}
    np.testing.assert_allclose(got[("layer1.1", "top1")], [100.0, 100.0], atol=1e-9)
    np.testing.assert_allclose(got[("layer2.1", "energy")], [0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(got[("layer2.1", "coverage")], [0.01, 0.01], atol=1e-9)


@pytest.mark.parametrize("image_index", [[0, 1, 3, 5], [2, 3, 4, 6], [3, 7]])
def test_no_confirmatory_claim_without_small_and_large_objects(monkeypatch, image_index: list[int]) -> None:
    """Rule: an interaction needs both buckets: no small image, or no large one, or neither: no claims."""
    pending, _ = _pending(monkeypatch, ["tiny_res2net26_4s"], image_index)
    assert pending == []
