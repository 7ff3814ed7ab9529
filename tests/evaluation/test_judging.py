"""Rules of judging claims from per-run arrays: one Holm family over every confirmatory claim, 'not tested' after
Holm stops, the target each interval is about, the sensitivity at d/2 and 2d, and localisation claims as gains over
the image-blind controls (saturated metrics leave the family).

The rules, function by function (``res2net/evaluation/judging.py``; README "Claims and verdicts"; DESIGN.md:
intervals at Holm levels, the test against 0 beside each verdict, d/2 and 2d):

- ``sig(x, digits=3)``: x to ``digits`` significant figures (3 unless told), None for None, NaN and +-infinity.
  Rounding again changes nothing, and the relative error is at most half a unit in the third figure.
- ``_num(x)``: a number as the results file writes it, ``table.DIGITS`` (4) decimals; None for None, NaN, inf.
- ``interval_json(iv)``: exactly the keys target, runs, df (2 decimals; null when not finite: a percentile
  bootstrap has no df), method, level (6 decimals), estimate / low / high (4 decimals, null for NaN), p_zero (the
  interval's p against 0, 3 significant figures), resamples, mc_error_low / mc_error_high (3 significant figures)
  and note, each from its own field.
- ``claim_evidence(diffs, keep, clusters)``: with two runs or more (R >= 2) the verdict's evidence is the
  architecture's (runs as the top level, t with Satterthwaite df); with one run it is the weights evidence, its
  note ``inference.ONE_RUN_NOTE``. The weights evidence beside it is always a class bootstrap of
  ``MIN_RESAMPLES`` resamples with seed 0 (its method says so: the same numbers on every rerun), over the images
  ``keep`` keeps.
- ``judge(pending)``: the confirmatory claims (in the order given) are one Holm family over their verdict
  evidence; the k-th of m is judged on its 1 - 0.05 / (m - k) interval (``level``, 6 decimals) and its
  ``low``/``high`` are that interval. After the first inconclusive one every later one is "not tested": no judged
  interval (low/high null), but the level its rank would have had, and the 95% interval beside it. With runs
  between-run spread only (no image error the runs share) the architecture interval is the plain t interval of
  the R run means with R - 1 df, whatever the weights interval (about these weights) says.
  ``p_zero_holm``: the Holm-adjusted p against 0 over the family (3 significant figures); ``excludes_zero``
  from the judged interval.
- An exploratory claim: level 0.95, verdict from its 95% interval and d, tested false, no rank, no Holm p (null,
  the key present), ``excludes_zero`` true only when the 95% interval lies strictly on one side of 0 (an end
  exactly at 0 does not exclude it).
- Every claim: ``low95``/``high95`` its 95% interval, ``min_effect`` d, estimate, runs, target, df (2 decimals),
  method and resamples of the verdict's evidence, ``p_zero`` its raw p against 0 (3 figures), ``sensitivity``
  its verdicts at d/2, d and 2d (for confirmatory claims, the whole family rejudged at f x d: "d" is the verdict
  itself), ``weights``: ``interval_json`` of the weights interval at the claim's own level, and ``note``: the
  claim's own note and the evidence's joined by "; ", empty parts left out.
"""

from __future__ import annotations

import math

import hypothesis_profiles  # noqa: F401  (example counts: few in CI, more in the mutation run)
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats
from test_claims_recomputed import architecture_interval  # the independent numpy routine

from res2net.evaluation.claims import claims
from res2net.evaluation.judging import Pending, _family_level, _num, claim_evidence, interval_json, judge, sig
from res2net.metrics import inference as I
from res2net.metrics import statistics as S

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



# ------------------------------------------------------------------------------------ numbers as the file has them
def test_sig_keeps_three_significant_figures_and_drops_what_is_not_a_number() -> None:
    assert sig(0.123456) == 0.123 and sig(0.000987654) == 0.000988 and sig(-0.0456789) == -0.0457
    assert sig(123456.0) == 123000.0 and sig(0.123456, 2) == 0.12 and sig(0.123456, 5) == 0.12346
    assert sig(None) is None and sig(math.nan) is None and sig(math.inf) is None and sig(-math.inf) is None
    assert _num(0.123456) == 0.1235 and _num(-2.0) == -2.0
    assert _num(None) is None and _num(math.nan) is None and _num(math.inf) is None


@given(st.floats(1e-300, 1e300) | st.floats(-1e300, -1e-300))
def test_sig_is_within_half_a_unit_of_the_third_figure_and_rounding_again_changes_nothing(x: float) -> None:
    s = sig(x)
    assert abs(s - x) <= 0.005 * abs(x) * (1 + 1e-12)
    assert sig(s) == s


def test_an_interval_is_written_with_every_field_rounded_as_the_file_has_it() -> None:
    iv = I.Interval(target="architecture", runs=3, df=4.56789, method="t over runs", level=1 - 0.05 / 3,
                    estimate=0.12345678, low=-0.5, high=math.nan, p_value=0.0123456, resamples=20_000,
                    mc_error_low=0.000123456, mc_error_high=math.inf, note="a note")
    assert interval_json(iv) == {"target": "architecture", "runs": 3, "df": 4.57, "method": "t over runs",
                                 "level": 0.983333, "estimate": 0.1235, "low": -0.5, "high": None,
                                 "p_zero": 0.0123, "resamples": 20_000, "mc_error_low": 0.000123,
                                 "mc_error_high": None, "note": "a note"}
    boot = I.Interval(target="weights", runs=1, df=math.nan, method="b", level=0.95, estimate=1.0, low=0.98765,
                      high=1.01234, p_value=math.nan)
    out = interval_json(boot)
    assert out["df"] is None and out["p_zero"] is None and (out["low"], out["high"]) == (0.9877, 1.0123)


def test_a_claim_without_a_holm_rank_is_at_95_and_the_kth_of_m_at_one_minus_005_over_m_minus_k() -> None:
    assert _family_level(4, None) == 0.95
    assert _family_level(4, 0) == pytest.approx(1 - 0.05 / 4) and _family_level(4, 2) == pytest.approx(0.975)


# ------------------------------------------------------------------------------------------- hand-made claims
def _spread(mus: list[float], a: float = 0.3) -> np.ndarray:
    """(runs, N): run r's images are mus[r] +- a, alternately, so each class (ten images in a row) sums to its
    run's mean: no image/class error at all, only the spread of the run means. Every class bootstrap resample
    of a run is its mean exactly; the architecture interval is the t interval of the run means with R - 1 df."""
    sign = np.where(np.arange(N) % 2 == 0, 1.0, -1.0)
    return np.asarray(mus, dtype=np.float64)[:, None] + a * sign[None, :]


def _claim(name: str, diffs: np.ndarray, d: float, confirmatory: bool = True, keep: np.ndarray | None = None,
           **fields: object) -> Pending:
    keep = np.ones(diffs.shape, bool) if keep is None else keep
    return Pending({"id": name, **fields}, diffs, keep, LABELS, d, confirmatory)


def _t(mus: list[float], level: float) -> tuple[float, float, float]:
    """(low, high, p against 0) of the t interval of the run means at ``level``, R - 1 df, by hand."""
    r = len(mus)
    mean = sum(mus) / r
    se = math.sqrt(sum((m - mean) ** 2 for m in mus) / (r - 1) / r)
    half = stats.t.ppf(0.5 + level / 2, r - 1) * se
    return mean - half, mean + half, 2 * stats.t.sf(abs(mean) / se, r - 1)


def test_the_verdict_is_about_the_architecture_not_about_these_weights() -> None:
    """Run means 0.4, 1.0, 1.6 and no image error: these weights' interval is [1, 1] (they would support d = 0.5)
    but the architecture's, t with 2 df, is [-0.49, 2.49]: inconclusive."""
    mus = [0.4, 1.0, 1.6]
    (c,) = judge([_claim("spread", _spread(mus), 0.5)])
    low, high, p = _t(mus, 0.95)
    assert c["target"] == "architecture" and c["runs"] == 3 and c["df"] == 2.0 and c["level"] == 0.95
    assert c["verdict"] == "inconclusive" and c["tested"] is True and c["holm_rank"] == 0
    assert (c["low"], c["high"]) == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))
    assert (c["low95"], c["high95"]) == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))
    assert c["estimate"] == 1.0 and c["min_effect"] == 0.5 and c["excludes_zero"] is False
    assert c["p_zero"] == sig(p) and c["p_zero_holm"] == sig(p)  # a family of one: Holm changes nothing
    assert c["mc_error_low"] == 0 and c["mc_error_high"] == 0 and c["resamples"] == 0  # analytic
    w = c["weights"]
    assert (w["target"], w["runs"], w["level"], w["df"]) == ("weights", 3, 0.95, None)
    assert (w["estimate"], w["low"], w["high"]) == (1.0, 1.0, 1.0)
    assert w["method"] == "percentile bootstrap over 12 classes (seed 0)" and w["resamples"] == I.MIN_RESAMPLES


def test_two_runs_already_make_an_architecture_claim_and_one_run_a_weights_claim_that_says_so() -> None:
    two, w2 = claim_evidence(_spread([0.9, 1.1]), np.ones((2, N), bool), LABELS)
    assert (two.target, two.runs, w2.target) == ("architecture", 2, "weights") and two.df == pytest.approx(1.0)
    one, w1 = claim_evidence(_spread([1.0]), np.ones((1, N), bool), LABELS)
    assert (one.target, one.runs, one.note, one.samples is w1.samples) == ("weights", 1, I.ONE_RUN_NOTE, True)
    assert w1.note == "" and w1.resamples == I.MIN_RESAMPLES and "(seed 0)" in w1.method
    (c,) = judge([_claim("two", _spread([0.9, 1.1]), 0.5)])
    assert c["target"] == "architecture" and c["runs"] == 2 and c["df"] == 1.0


def test_the_images_keep_leaves_out_are_in_neither_interval() -> None:
    diffs = _spread([0.9, 1.0, 1.1])
    keep = np.ones(diffs.shape, bool)
    keep[:, :20] = False  # the first two classes' images are not in any run's mean
    diffs[:, :20] = 100.0
    (c,) = judge([_claim("kept", diffs, 0.5, keep=keep)])
    assert c["estimate"] == 1.0 and c["weights"]["estimate"] == 1.0
    assert (c["weights"]["low"], c["weights"]["high"]) == (1.0, 1.0)
    assert c["weights"]["method"] == "percentile bootstrap over 10 classes (seed 0)"


def test_holm_levels_ranks_and_adjusted_p_in_a_family_that_stops_at_its_second_claim() -> None:
    """One tight one-run claim (judged about these weights: supported first) and three with run means c - 0.6,
    c, c + 0.6 (inconclusive at any level): the second stops Holm; the last two are not tested but keep the
    level of their rank, 1 - 0.05 / (4 - k), and the weights interval at that level."""
    centres = {"a": 0.5, "b": 0.8, "c": 0.3}
    pend = [_claim("one", _spread([1.0]), 0.5)] + [_claim(n, _spread([c - 0.6, c, c + 0.6]), 0.5)
                                                   for n, c in centres.items()]
    out = {c["id"]: c for c in judge(pend)}
    one = out["one"]
    assert one["holm_rank"] == 0 and one["verdict"] == "supported" and one["level"] == 0.9875
    assert one["target"] == "weights" and one["note"] == I.ONE_RUN_NOTE and one["excludes_zero"] is True
    # b has the smallest p against 0 of the three, so it comes next, is judged, and stops the procedure
    b = out["b"]
    assert b["holm_rank"] == 1 and b["tested"] is True and b["verdict"] == "inconclusive"
    assert b["level"] == 0.983333 and b["weights"]["level"] == 0.983333
    low, high, _ = _t([0.2, 0.8, 1.4], 1 - 0.05 / 3)
    assert (b["low"], b["high"]) == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))
    assert b["excludes_zero"] is False
    for name, rank, level in (("c", 2, 0.975), ("a", 3, 0.95)):
        c = out[name]
        assert (c["holm_rank"], c["verdict"], c["tested"]) == (rank, I.NOT_TESTED, False), name
        assert c["level"] == level and c["weights"]["level"] == level, name
        assert c["low"] is None and c["high"] is None and c["excludes_zero"] is None, name
        low, high, _ = _t([centres[name] - 0.6, centres[name], centres[name] + 0.6], 0.95)
        assert (c["low95"], c["high95"]) == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))
        assert c["sensitivity"]["d"] == I.NOT_TESTED
    # Holm over the four tests against 0: p sorted ascending, p_(k) x (4 - k), made monotone
    raw = {"one": 2 / (I.MIN_RESAMPLES + 1)} | {n: _t([c - 0.6, c, c + 0.6], 0.95)[2] for n, c in centres.items()}
    running, adjusted = 0.0, {}
    for k, n in enumerate(sorted(raw, key=raw.get)):
        running = max(running, min(1.0, (4 - k) * raw[n]))
        adjusted[n] = running
    for n, c in out.items():
        assert c["p_zero"] == pytest.approx(raw[n], rel=5e-3), n
        assert c["p_zero_holm"] == pytest.approx(adjusted[n], rel=5e-3), n
    assert adjusted["a"] == adjusted["c"] != 3 * raw["a"]  # the monotone step matters here


def test_the_whole_family_is_rejudged_at_half_and_double_d_and_an_exploratory_claim_at_95() -> None:
    """Run means 0.98, 1.0, 1.02: the 95% interval is about [0.95, 1.05]. With d = 0.5 it is above d/2 and d
    and straddles 2d = 1."""
    mus = [0.98, 1.0, 1.02]
    conf, expl = judge([_claim("conf", _spread(mus), 0.5), _claim("expl", _spread(mus), 0.5, False)])
    low, high, p = _t(mus, 0.95)
    for c in (conf, expl):
        assert c["sensitivity"] == {"d/2": "supported", "d": "supported", "2d": "inconclusive"}, c["id"]
        assert c["verdict"] == "supported" and c["min_effect"] == 0.5 and c["level"] == 0.95
        assert (c["low95"], c["high95"]) == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))
        assert (c["low"], c["high"]) == (c["low95"], c["high95"]) and c["excludes_zero"] is True
        assert c["weights"]["level"] == 0.95 and c["p_zero"] == sig(p)
    assert conf["tested"] is True and conf["holm_rank"] == 0 and conf["p_zero_holm"] == sig(p)
    assert expl["tested"] is False and expl["holm_rank"] is None and expl["p_zero_holm"] is None
    assert "p_zero_holm" in expl


def test_an_exploratory_interval_excludes_zero_only_when_it_lies_strictly_on_one_side() -> None:
    """One run, one class of twelve at +-1 and the rest at 0: a class bootstrap draws no image of that class in
    about a third of its resamples, so one end of the 95% interval is 0 exactly: it does not exclude 0."""
    up = np.zeros((1, N))
    up[0, LABELS == 0] = 1.0
    out = {c["id"]: c for c in judge([
        _claim("up", up, 0.5, False), _claim("down", -up, 0.5, False),
        _claim("half", _spread([0.5], 0.01), 1.0, False), _claim("minus-half", _spread([-0.5], 0.01), 1.0, False),
        _claim("straddles", _spread([-0.3, 0.0, 0.3]), 1.0, False)])}
    assert out["up"]["low95"] == 0.0 and out["up"]["high95"] > 0 and out["up"]["excludes_zero"] is False
    assert out["down"]["high95"] == 0.0 and out["down"]["low95"] < 0 and out["down"]["excludes_zero"] is False
    assert (out["half"]["low95"], out["half"]["high95"], out["half"]["excludes_zero"]) == (0.5, 0.5, True)
    assert out["minus-half"]["excludes_zero"] is True
    s = out["straddles"]
    assert s["low95"] < 0 < s["high95"] < 1 and s["excludes_zero"] is False
    assert out["half"]["verdict"] == "no meaningful difference" and s["verdict"] == "no meaningful difference"


def test_a_claims_note_and_the_evidences_note_are_joined_and_empty_ones_left_out() -> None:
    out = judge([_claim("own-and-one-run", _spread([1.0]), 0.5, False, note="own note"),
                 _claim("one-run", _spread([1.0]), 0.5, False),
                 _claim("own", _spread([0.9, 1.0, 1.1]), 0.5, False, note="own note"),
                 _claim("none", _spread([0.9, 1.0, 1.1]), 0.5, False)])
    assert [c["note"] for c in out] == [f"own note; {I.ONE_RUN_NOTE}", I.ONE_RUN_NOTE, "own note", ""]


def test_df_is_the_satterthwaite_df_to_two_decimals_recomputed_independently() -> None:
    rng = np.random.default_rng(7)
    diffs = 0.5 + 0.3 * rng.standard_normal((3, N)) + 0.1 * rng.standard_normal((3, 1))
    diffs += 0.2 * rng.standard_normal(CLASSES)[LABELS]  # a class effect the runs share
    (c,) = judge([_claim("mixed", diffs, 0.5, False)])
    est, low, high, df = architecture_interval(diffs, LABELS, 0.95)
    assert df != round(df) and c["df"] == round(df, 2)
    assert c["estimate"] == pytest.approx(est, abs=1e-4)
    assert (c["low95"], c["high95"]) == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))


# ---------------------------------------------------------------------------- the family's rules for any claims
CLAIM = st.tuples(st.sampled_from([1, 2, 3]),  # runs
                  st.sampled_from([-3.0, -1.0, 0.0, 0.5, 1.0, 3.0]),  # true effect, in units of d
                  st.sampled_from([0.05, 0.3, 1.0]),  # run spread, in units of d
                  st.sampled_from([0.25, 1.0, 4.0]),  # d
                  st.booleans())  # confirmatory
SMALL = np.repeat(np.arange(4), 3)  # four classes of three images: the bootstrap stays cheap


@given(st.lists(CLAIM, min_size=1, max_size=4), st.integers(0, 2**16))
def test_every_family_is_one_step_down_procedure(spec: list, seed: int) -> None:
    """Rules for any claims: the confirmatory ones hold the ranks 0..m-1, the k-th at 1 - 0.05 / (m - k); every
    rank up to the first inconclusive one is judged on an interval at its level, every later one is not
    tested; "d" of the sensitivity is the verdict; exploratory claims are at 95% with no rank and no Holm p."""
    rng = np.random.default_rng(seed)
    pend = []
    for k, (runs, effect, spread, d, conf) in enumerate(spec):
        diffs = d * (effect + spread * rng.standard_normal((runs, 1)) + 0.1 * rng.standard_normal((runs, 12)))
        pend.append(Pending({"id": str(k)}, diffs, np.ones(diffs.shape, bool), SMALL, d, conf))
    out = judge(pend)
    conf = [c for c, p in zip(out, pend, strict=True) if p.confirmatory]
    m = len(conf)
    assert sorted(c["holm_rank"] for c in conf) == list(range(m))
    stop = min((c["holm_rank"] for c in conf if c["verdict"] == "inconclusive"), default=m)
    for c, p in zip(out, pend, strict=True):
        assert c["sensitivity"]["d"] == c["verdict"] and c["min_effect"] == p.d
        assert c["weights"]["level"] == c["level"] and c["target"] == ("weights" if p.diffs.shape[0] == 1
                                                                         else "architecture")
        if not p.confirmatory:
            assert (c["level"], c["holm_rank"], c["p_zero_holm"], c["tested"]) == (0.95, None, None, False)
            assert (c["low"], c["high"]) == (c["low95"], c["high95"])
            continue
        assert c["level"] == round(1 - 0.05 / (m - c["holm_rank"]), 6)
        assert c["p_zero_holm"] >= c["p_zero"] or c["p_zero_holm"] == pytest.approx(c["p_zero"], rel=5e-3)
        if c["holm_rank"] > stop:
            assert (c["verdict"], c["tested"], c["low"], c["high"]) == (I.NOT_TESTED, False, None, None)
            continue
        assert c["tested"] is True and c["low"] <= c["low95"] and c["high"] >= c["high95"]
        if min(abs(abs(e) - p.d) for e in (c["low"], c["high"])) > 1e-3:  # clear of d after rounding
            assert c["verdict"] == S.verdict((c["low"], c["high"]), p.d)
        if c["low"] > 0 or c["high"] < 0:
            assert c["excludes_zero"] is True
        elif c["low"] < 0 < c["high"]:
            assert c["excludes_zero"] is False
