"""Rules of the scale sweep, written down first and then tested on per-run values with a known trend and with none:
what "top-1 rises with s" means."""

from __future__ import annotations

import numpy as np
import pytest

from res2net.evaluation import knockout_study as K

SEEDS = [0, 1, 2]


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


def test_the_trend_per_doubling_of_s_by_hand() -> None:
    """Rule: slope of the scale means against log2(s), t interval with Welch-Satterthwaite df. Two scales, two runs
    each: slope = 55 - 51 = 4, variance 2/2 + 2/2 = 2, df = 2^2 / (1 + 1) = 2, half width t(0.975, 2) * sqrt(2)."""
    out = K.trend_per_doubling({1: [50.0, 52.0], 2: [54.0, 56.0]})
    half = 4.302653 * np.sqrt(2.0)
    assert out["slope"] == pytest.approx(4.0) and out["df"] == pytest.approx(2.0)
    assert (out["low"], out["high"]) == (pytest.approx(4 - half, abs=1e-4), pytest.approx(4 + half, abs=1e-4))
    assert out["words"] == "no detectable trend"


def test_a_trend_is_named_only_when_its_interval_excludes_zero() -> None:
    rising = K.trend_per_doubling({1: [50.0, 50.2, 49.8], 2: [52.0, 52.1, 51.9], 4: [54.0, 54.2, 53.8]})
    assert rising["words"] == "rises with s" and rising["low"] > 0
    falling = K.trend_per_doubling({1: [54.0, 54.2, 53.8], 2: [52.0, 52.1, 51.9], 4: [50.0, 50.2, 49.8]})
    assert falling["words"] == "falls with s" and falling["high"] < 0
    assert K.trend_per_doubling({1: [50.0, 56.0], 2: [53.0, 51.0]})["words"] == "no detectable trend"


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
