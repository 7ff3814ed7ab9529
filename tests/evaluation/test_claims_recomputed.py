"""The shipped claims recomputed from the per-image rows of the ``.npz`` by a separate numpy routine written here
(per-run means, class-clustered standard errors, Satterthwaite degrees of freedom, the t quantile), and every
claim stating what its interval is about and how exact it is."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from res2net.evaluation.results import image_scores_path, load_image_scores

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "assets" / "results" / "tiny_imagenet_100.json"
MODEL, BASE = "tiny_res2net26_4s", "tiny_resnet26"


def architecture_interval(diffs: np.ndarray, labels: np.ndarray, level: float) -> tuple[float, float, float, float]:
    """(estimate, low, high, df) of the mean over runs of per-run mean differences, runs as the top level.

    Var = S^2 / R (the spread of the R per-run means) + b (the image/class error the runs share: the mean over run
    pairs r != s of the class-clustered covariance of their means, G / (G - 1) x sum over classes of the products of
    the class totals of (d - mean) / n); df by Welch-Satterthwaite from R - 1 and G - 1."""
    runs, n = diffs.shape
    means = [float(np.mean(diffs[r])) for r in range(runs)]
    classes = sorted(set(labels.tolist()))
    g = len(classes)
    totals = np.zeros((runs, g))
    for r in range(runs):
        for j, c in enumerate(classes):
            totals[r, j] = sum((diffs[r, i] - means[r]) / n for i in range(n) if labels[i] == c)
    shared_terms = [g / (g - 1) * float(np.dot(totals[r], totals[s])) for r in range(runs) for s in range(runs)
                    if r != s]
    shared = max(sum(shared_terms) / len(shared_terms), 0.0)
    grand = sum(means) / runs
    between = sum((m - grand) ** 2 for m in means) / (runs - 1) / runs
    var = between + shared
    df = var**2 / (between**2 / (runs - 1) + shared**2 / (g - 1))
    half = stats.t.ppf(0.5 + level / 2, df) * math.sqrt(var)
    return grand, grand - half, grand + half, df


def _shipped() -> tuple[dict, dict[str, np.ndarray]]:
    res = json.loads(RESULTS.read_text())
    if res["schema_version"] < 3:
        pytest.skip("the shipped results predate schema 3 (claims with targets and controls): regenerate them")
    return res, load_image_scores(image_scores_path(RESULTS))


def _runs(scores: dict[str, np.ndarray], name: str) -> list[str]:
    return [f"seed{int(s)}" for s in scores["seeds"]]


@pytest.mark.skipif(not RESULTS.is_file(), reason="assets/results/tiny_imagenet_100.json not generated yet")
def test_an_architecture_claim_is_recomputed_from_the_per_image_rows() -> None:
    res, scores = _shipped()
    claim = {c["id"]: c for c in res["claims"]}[f"top1-{MODEL}"]
    assert claim["target"] == "architecture" and claim["runs"] == len(scores["seeds"]) >= 2
    runs = _runs(scores, MODEL)
    diffs = np.stack([100.0 * (scores[f"{MODEL}/{r}/correct"].astype(float) - scores[f"{BASE}/{r}/correct"]
                               .astype(float)) for r in runs])
    labels = scores["class_index"]
    est, lo, hi, df = architecture_interval(diffs, labels, 0.95)
    assert claim["estimate"] == pytest.approx(est, abs=1e-4)
    assert (claim["low95"], claim["high95"]) == (pytest.approx(lo, abs=1e-4), pytest.approx(hi, abs=1e-4))
    assert claim["df"] == pytest.approx(df, abs=0.01)
    if claim["tested"]:  # the judged interval at its Holm level too
        _, lo, hi, _ = architecture_interval(diffs, labels, claim["level"])
        assert (claim["low"], claim["high"]) == (pytest.approx(lo, abs=1e-4), pytest.approx(hi, abs=1e-4))


@pytest.mark.skipif(not RESULTS.is_file(), reason="assets/results/tiny_imagenet_100.json not generated yet")
def test_a_localisation_claim_is_the_gain_over_its_control_recomputed_from_the_rows() -> None:
    res, scores = _shipped()
    claim = {c["id"]: c for c in res["claims"]}[f"energy-small-{MODEL}-over-mismatch"]
    runs = _runs(scores, MODEL)
    tap = res["models"][MODEL]["taps"][res["verdict_layer"]]["output"]
    base_tap = res["models"][BASE]["taps"][res["verdict_layer"]]["output"]
    small = scores["uniform/energy"].astype(float) < 0.25
    gains = np.stack([(scores[f"{MODEL}/{r}/{tap}/energy"].astype(float)
                       - scores[f"{MODEL}/{r}/{tap}/mismatch_energy"].astype(float))
                      - (scores[f"{BASE}/{r}/{base_tap}/energy"].astype(float)
                         - scores[f"{BASE}/{r}/{base_tap}/mismatch_energy"].astype(float)) for r in runs])
    ok = small & np.isfinite(gains).all(0)
    # the stored area fraction is float16: an image within its rounding of the 25% edge may sit in either bucket
    assert abs(int(ok.sum()) - claim["images"]) <= 3
    est, lo, hi, _ = architecture_interval(gains[:, ok], scores["class_index"][ok], 0.95)
    assert claim["estimate"] == pytest.approx(est, abs=2e-3)
    assert (claim["low95"], claim["high95"]) == (pytest.approx(lo, abs=2e-3), pytest.approx(hi, abs=2e-3))


@pytest.mark.skipif(not RESULTS.is_file(), reason="assets/results/tiny_imagenet_100.json not generated yet")
def test_every_claim_states_its_target_runs_df_method_resamples_and_monte_carlo_error() -> None:
    res, _ = _shipped()
    assert res["schema_version"] >= 3 and "are in this family" in res["inference"]["knockout"]
    confirmatory = [c for c in res["claims"] if c["family"] == "confirmatory"]
    # one Holm family: the knock-out's confirmatory contrasts are ranked with the others, the ranks one permutation
    assert f"over the {len(confirmatory)} confirmatory claims" in res["inference"]["family"]
    assert sorted(c["holm_rank"] for c in confirmatory) == list(range(len(confirmatory)))
    assert {c["section"] for c in confirmatory} >= {"knockout", "localisation", "accuracy"}
    for c in res["claims"]:
        for key in ("target", "runs", "df", "method", "level", "resamples", "mc_error_low", "mc_error_high",
                    "p_zero", "sensitivity", "control", "tested"):
            assert key in c, (c["id"], key)
        if c["family"] == "confirmatory":
            assert c["target"] == "architecture" and c["df"] > 0 and "Satterthwaite" in c["method"]
            assert c["weights"]["target"] == "weights" and c["weights"]["resamples"] >= 20_000
            assert c["weights"]["mc_error_low"] is not None and c["weights"]["mc_error_high"] is not None
            assert set(c["sensitivity"]) == {"d/2", "d", "2d"}
            assert c["verdict"] == "not tested" or c["p_zero_holm"] is not None
    assert any(c["family"] == "confirmatory" for c in res["claims"])
    d = res["effect_size"]["d"]
    assert d["energy"]["small"] > 0 and "reason" in res["effect_size"]["floors"]["energy"]
    assert {r["region"] for r in res["controls"]} == {"all", "centre", "off-centre"}
