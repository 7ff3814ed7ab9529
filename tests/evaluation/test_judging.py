"""Rules of judging claims from per-run arrays: one Holm family over every confirmatory claim, 'not tested' after
Holm stops, the target each interval is about, the sensitivity at d/2 and 2d, and localisation claims as gains over
the image-blind controls (saturated metrics leave the family)."""

from __future__ import annotations

import numpy as np
import pytest

from res2net.evaluation.claims import claims
from res2net.evaluation.judging import Pending, judge
from res2net.metrics import inference as I

RUNS, N, CLASSES = 3, 120, 12
LABELS = np.repeat(np.arange(CLASSES), N // CLASSES)


def _pending(name: str, mean: float, noise: float, d: float = 1.0, confirmatory: bool = True, runs: int = RUNS,
             seed: int = 0) -> Pending:
    rng = np.random.default_rng(seed)
    diffs = mean + noise * rng.standard_normal((runs, N)) + 0.01 * rng.standard_normal((runs, 1))
    return Pending({"id": name}, diffs, np.ones(diffs.shape, bool), LABELS, d, confirmatory)


def test_every_confirmatory_claim_is_judged_in_one_holm_family_and_exploratory_ones_at_95() -> None:
    out = judge([_pending("a", 5.0, 0.1), _pending("b", 6.0, 0.1, seed=1),
                 _pending("x", 5.0, 0.1, confirmatory=False, seed=2), _pending("c", 7.0, 0.1, seed=3)])
    conf = [out[0], out[1], out[3]]
    assert sorted(c["level"] for c in conf) == pytest.approx([1 - 0.05 / 1, 1 - 0.05 / 2, 1 - 0.05 / 3])
    assert sorted(c["holm_rank"] for c in conf) == [0, 1, 2]
    assert all(c["verdict"] == "supported" and c["tested"] for c in conf)
    assert out[2]["level"] == 0.95 and out[2]["holm_rank"] is None and not out[2]["tested"]
    for c in out:  # every claim states what its interval is about and how it was made
        assert c["target"] == "architecture" and c["runs"] == RUNS and c["df"] > 0 and "Satterthwaite" in c["method"]
        assert c["p_zero"] < 0.01 and c["excludes_zero"]
        assert c["weights"]["target"] == "weights" and c["weights"]["resamples"] >= 20_000
        assert c["weights"]["mc_error_low"] > 0 and c["weights"]["mc_error_high"] > 0


def test_claims_after_holm_stops_are_not_tested_not_judged_at_95() -> None:
    # the strong claim is judged first; the noisy one straddles d and stops the procedure; the third comes after it
    out = judge([_pending("strong", 5.0, 0.1), _pending("noisy", 1.0, 8.0, seed=4),
                 _pending("later", 1.0, 9.0, seed=5)])
    verdicts = {c["id"]: c["verdict"] for c in out}
    assert verdicts["strong"] == "supported"
    assert sorted(verdicts.values()).count("inconclusive") == 1
    assert list(verdicts.values()).count(I.NOT_TESTED) == 1
    untested = next(c for c in out if c["verdict"] == I.NOT_TESTED)
    assert untested["low"] is None and untested["high"] is None and not untested["tested"]
    assert untested["low95"] is not None  # the 95% interval is still shown beside it


def test_one_run_is_judged_about_these_weights_only_and_says_so() -> None:
    (c,) = judge([_pending("one", 2.0, 1.0, runs=1)])
    assert c["target"] == "weights" and c["runs"] == 1 and c["df"] is None
    assert c["resamples"] >= 20_000 and c["mc_error_low"] > 0 and c["mc_error_high"] > 0
    assert "one run" in c["note"]


def test_the_family_is_rejudged_at_half_and_double_d() -> None:
    (c,) = judge([_pending("near", 1.5, 0.05)])  # 1.5 d, a tight interval
    assert c["sensitivity"] == {"d/2": "supported", "d": "supported", "2d": "no meaningful difference"}


# ------------------------------------------------------------------------------- claims as gains over controls
def _family(saturate: bool = False) -> tuple[dict, dict, dict, dict]:
    """Two models 'r' (baseline) and 'x', three runs; half the images small, half large. The Res2Net's maps score
    0.1 more than the ResNet's everywhere, and so does its mismatched-box control: its gain over that control is
    0 while its raw difference and its gain over the spread-matched control are 0.1."""
    rng = np.random.default_rng(0)
    arrays: dict[str, np.ndarray] = {}
    shared = {(k, m): 0.3 + 0.05 * rng.standard_normal(N) for k in range(RUNS) for m in ("energy", "pointing",
                                                                                         "coverage")}
    for name, lift in (("r", 0.0), ("x", 0.1)):
        for k in range(RUNS):
            pre = f"{name}/seed{k}"
            arrays[f"{pre}/correct"] = rng.random(N) < 0.6 + lift
            for metric in ("energy", "pointing", "coverage"):
                base = shared[(k, metric)]
                arrays[f"{pre}/L3/{metric}"] = base + lift
                arrays[f"{pre}/L3/mismatch_{metric}"] = base - 0.2 + lift
                arrays[f"{pre}/L3/spread_{metric}"] = np.full(N, 1.0 if saturate and metric == "coverage" else 0.1)
            arrays[f"{pre}/L3/maxboxacc"] = rng.random((N, 5)) < 0.5
    res = {"baseline": "r", "baselines": {b: {f"prior_{m}": 0.2 for m in ("energy", "pointing", "coverage",
                                                                          "maxboxacc")} for b in ("small", "large")}}
    entries = {n: {"scale": s, "taps": {"layer3": {"output": "L3"}}} for n, s in (("r", 1), ("x", 4))}
    runs = {n: [f"seed{k}" for k in range(RUNS)] for n in ("r", "x")}
    return res, arrays, entries, runs


def _claims(saturate: bool = False) -> dict[str, dict]:
    res, arrays, entries, runs = _family(saturate)
    buckets = np.where(np.arange(N) % 2 == 0, "small", "large")
    centre = np.arange(N) % 3 == 0
    out = claims(res, arrays, entries, ["r", "x"], runs, LABELS, buckets, centre, [], "m", "c")
    return {c["id"]: c for c in out}


def test_localisation_claims_are_the_gain_over_each_control() -> None:
    cl = _claims()
    _, arrays, _, _ = _family()
    small = np.arange(N) % 2 == 0
    both = [(arrays[f"x/seed{k}/correct"] & arrays[f"r/seed{k}/correct"] & small).sum() for k in range(RUNS)]
    assert cl["energy-small-x-over-mismatch-both-correct"]["images"] == round(float(np.mean(both)))
    assert cl["energy-small-x-over-mismatch-both-correct"]["subset"] == "both correct"
    assert cl["energy-small-x-over-mismatch"]["estimate"] == pytest.approx(0.0, abs=1e-3)
    assert cl["energy-small-x-over-spread"]["estimate"] == pytest.approx(0.1, abs=1e-3)
    assert cl["energy-small-x-raw"]["estimate"] == pytest.approx(0.1, abs=1e-3)
    assert cl["energy-small-x-over-mismatch"]["family"] == "confirmatory"
    assert cl["energy-small-x-raw"]["family"] == "exploratory"
    assert cl["energy-small-x-over-mismatch-centre"]["images"] + cl["energy-small-x-over-mismatch-off-centre"][
        "images"] == N // 2
    conf = [c for c in cl.values() if c["family"] == "confirmatory"]
    # top-1 and the gains over both controls of energy, pointing (small) and coverage (large); MaxBoxAcc has none
    assert sorted(c["id"] for c in conf) == sorted(
        ["top1-x"] + [f"{m}-{b}-x-over-{c}" for m, b in (("energy", "small"), ("pointing", "small"),
                                                         ("coverage", "large")) for c in ("mismatch", "spread")])
    first = next(c for c in conf if c["holm_rank"] == 0)
    assert first["level"] == pytest.approx(1 - 0.05 / 7)  # one family of seven
    assert cl["maxboxacc-large-x"]["family"] == "exploratory"


def test_a_metric_a_control_saturates_leaves_the_confirmatory_family() -> None:
    cl = _claims(saturate=True)
    for c in ("mismatch", "spread"):
        assert cl[f"coverage-large-x-over-{c}"]["family"] == "exploratory"
        assert "saturated" in cl[f"coverage-large-x-over-{c}"]["note"]
    assert cl["energy-small-x-over-spread"]["family"] == "confirmatory"
