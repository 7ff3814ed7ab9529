"""The Claims page against a constructed results file that covers every verdict, section and failure mode."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from res2net.evaluation.results import SCHEMA_VERSION, Claim, Results, ResultsError, field_docs, validate_results
from res2net.metrics.statistics import VERDICTS

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")
MODELS = ("tiny_resnet26", "tiny_res2net26_4s")


def _claim(cid: str, section: str, metric: str, verdict: str, est: float, low: float, high: float) -> dict:
    # ids as the evaluation writes them: <metric>-<bucket>-<model>[-both-correct]
    return {"id": cid.replace("-x", f"-{MODELS[1]}"), "section": section,
            "paper": f"statement of {cid} (paper, Table 9)", "metric": metric,
            "model": MODELS[1], "layer": "layer3 output (layer3.1)", "subset": "all", "family": "confirmatory",
            "estimate": est, "low95": low, "high95": high, "low": low - 0.05, "high": high + 0.05,
            "level": 0.9875, "min_effect": 0.02, "verdict": verdict, "runs": 3, "images": 1241,
            "baseline_note": "centred Gaussian prior: 0.31", "caveat": f"caveat of {cid}"}


def constructed() -> dict:
    """A schema-valid results file (its JSON form): one claim per verdict across the three sections, one
    exploratory claim."""
    loc, cmp_rows = [], []
    for m in MODELS:
        for stage in ("layer1", "layer2", "layer3", "layer4"):
            for b in ("small", "medium", "large", "all"):
                for metric in ("energy", "pointing", "coverage", "maxboxacc"):
                    for subset in ("all", "correct"):
                        loc.append({"model": m, "stage": stage, "tap": f"{stage}.1", "group": "output",
                                    "subset": subset, "bucket": b, "metric": metric, "mean": 0.5, "low": 0.4,
                                    "high": 0.6, "n": 40, "runs": 3})
                    if m == MODELS[1]:
                        cmp_rows.append({"model": m, "baseline": MODELS[0], "stage": stage, "subset": "all",
                                         "bucket": b, "metric": metric, "diff": 0.01, "low": -0.02, "high": 0.04,
                                         "n": 40, "runs": 3})
    erf = [{"model": m, "weights": w, "tap": f"layer3.1.branch{i}", "stage": "layer3", "group": f"branch{i}",
            "branch": i, "radius_50": 10.0 + i, "radius_50_low": 9.0 + i, "radius_50_high": 11.0 + i,
            "radius_90": 20.0, "radius_90_low": 19.0, "radius_90_high": 22.0, "radius_99": 40.0,
            "touches_border": i == 3, "area_ratio_20_published": 0.1, "area_ratio_20_scale_free": 0.05,
            "area_ratio_50_published": 0.2, "area_ratio_50_scale_free": 0.1, "inputs": 16, "size": 256, "runs": 3}
           for m in MODELS for w in ("trained", "random init") for i in range(4 if m == MODELS[1] else 1)]
    erf += [{**erf[0], "model": m, "weights": w, "tap": "layer3.1", "group": "output", "branch": None,
             "radius_50": 13.0 + 2 * (m == MODELS[1])} for m in MODELS for w in ("trained", "random init")]
    claims = [
        _claim("top1-x", "accuracy", "top1: top-1 accuracy (points)", "supported", 2.2, 1.1, 3.3),
        _claim("energy-small-x", "localisation", "energy: energy inside the box", "contradicted", -0.05, -0.08,
               -0.03),
        _claim("coverage-large-x", "localisation", "coverage: coverage of the box", "no meaningful difference",
               0.001, -0.01, 0.012),
        {**_claim("erf-branches-256px-noise-x", "erf", "erf_radius: 50% ERF radius (px)", "inconclusive", 1.5, -0.5,
                  3.5), "layer": "layer3.1.branch0 -> layer3.1.branch2", "min_effect": 1.0, "subset": "256 px noise"},
        {**_claim("erf-block-256px-noise-x", "erf", "erf_radius: 50% ERF radius (px)", "supported", 2.0, 1.5, 2.5),
         "layer": "layer3.1", "min_effect": 1.0, "subset": "256 px noise"},
        {**_claim("maxboxacc-large-x", "localisation", "maxboxacc: MaxBoxAcc", "inconclusive", 0.01, -0.02, 0.04),
         "min_effect": 0.03},
        {**_claim("energy-small-x-both-correct", "localisation", "energy: energy inside the box", "inconclusive",
                  0.01, -0.01, 0.03), "family": "exploratory", "subset": "both correct", "level": 0.95},
    ]
    labels = {"energy": "energy inside the box", "pointing": "pointing game hit rate",
              "coverage": "coverage of the box", "maxboxacc": "MaxBoxAcc", "top1": "top-1 accuracy (points)",
              "erf_radius": "50% ERF radius (px)"}
    metrics = {k: {"label": v, "kind": "concentration", "min_effect": 0.02} | ({} if k in ("top1", "erf_radius")
                                                                                else {"why": f"why {k}"})
               for k, v in labels.items()}
    res = {
        "schema_version": SCHEMA_VERSION, "dataset": "tiny-imagenet-100 val", "images": 5000, "limit": None,
        "models": {m: {"scale": 1 if m == MODELS[0] else 4, "run_count": 3, "params": 930308, "gmacs": 0.0126,
                       "runs": [{"seed": s, "top1": 42.0 + s, "top5": 72.0, "weights_sha256": None}
                                for s in range(3)],
                       "top1": {"mean": 43.0, "low": 41.9, "high": 44.1}, "taps": {}} for m in MODELS},
        "cam": {"method": "gradcam", "target": "the true class", "placement": "registered", "boxes": "val boxes"},
        "size_buckets": {},
        "metrics": metrics,
        "baselines": {b: {"images": 40, "uniform_energy": 0.2, "prior_energy": 0.31, "prior_pointing": 0.9,
                          "prior_coverage": 0.7, "prior_maxboxacc": 1.0 if b == "large" else 0.4}
                      for b in ("small", "medium", "large", "all")},  # the prior's MaxBoxAcc saturates on large
        "prior": {"sigma_px": 16.7, "fitted_on": "50000 train boxes", "pointing": "always the centre"},
        "localisation": loc, "comparisons": cmp_rows,
        "accuracy_by_size": [{"model": m, "bucket": "small", "kind": "top1", "mean": 40.0, "low": 38.0,
                              "high": 42.0, "n": 1241, "runs": 3} for m in MODELS],
        "erf": erf, "claims": claims, "baseline": MODELS[0], "verdict_layer": "layer3",
        "verdict_rule": {"rule": "interval above +d: supported", "min_effect": {"top1": 1.0, "energy": 0.02},
                         "correction": "Holm over the confirmatory claims"},
        "intervals": "hierarchical bootstrap", "caveats": ["CAVEAT-RUNS: 3 runs", "layer4 is 2x2 at 64 px"],
    }
    validate_results(res)
    return res


def _page(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, res: object | None) -> AppTest:
    from dashboard.services import study_data

    path = tmp_path / "tiny_imagenet_100.json"
    if res is not None:
        path.write_text(json.dumps(res))
    monkeypatch.setattr(study_data, "RESULTS_FILE", path)
    monkeypatch.setattr(study_data, "REPO_ROOT", tmp_path)
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["device"] = "cpu"
    at.run()
    at.switch_page("views/claims.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _text(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [h.value for h in at.header]
    for df in [*at.dataframe, *at.table]:
        parts += [str(v) for v in df.value.to_numpy().ravel()]
    parts += [str(m.label) for m in at.metric]
    return " ".join(parts)


def _figures(at: AppTest) -> dict[str, dict]:
    """The page's plotly figures by their widget key (the key ends the element id)."""
    out = {}
    for e in at.get("plotly_chart"):
        out[e.proto.id.rsplit("-", 1)[-1]] = json.loads(e.proto.spec)
    return out


def _forest_markers(fig: dict) -> list[dict]:
    """The forest plot's estimate markers (one trace per claim)."""
    return [t for t in fig["data"] if t.get("mode") == "markers"]


def test_every_section_and_every_verdict_is_shown(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    at = _page(monkeypatch, tmp_path, constructed())
    headers = [h.value for h in at.header]
    assert headers == ["1 · Accuracy", "2 · Localisation by object size", "3 · Receptive fields",
                       "4 · Branch knock-out and the scale sweep"]
    text = _text(at)
    for verdict in VERDICTS:
        assert verdict in text, verdict
    for cid, shown in (("top1-x", "2.20"), ("energy-small-x", "-0.050"), ("coverage-large-x", "0.001"),
                       ("erf-branches-256px-noise-x", "1.5")):
        assert shown in text, cid
    assert "2.20 [1.05, 3.35] at 98.8%" in text  # the Holm-level interval the verdict used, with its level
    assert "caveat of erf-branches-256px-noise-x" in text and "statement of top1-x" in text  # the paper's words, folded
    assert "exploratory" in text and "CAVEAT-RUNS" in text and "layer3" in text
    counts = {m.label.split(": ", 1)[-1]: m.value for m in at.metric}  # after the icon
    assert counts == {"supported": "2", "contradicted": "1", "no meaningful difference": "1",
                      "inconclusive": "2"}  # the exploratory claim is not counted
    assert "inconclusive (exploratory)" in text
    figures = _figures(at)
    assert {"claims_forest", "claims_loc", "claims_erf_layer3.1"} <= set(figures)
    # the forest plot's thin whisker of top1-x is its unadjusted 95% interval, in units of d (d = 0.02 here)
    whiskers = [t for t in figures["claims_forest"]["data"] if t.get("mode") == "lines"
                and t["y"][0] == "top-1 · s=4" and t["line"]["width"] == 1]
    assert [pytest.approx(v) for v in whiskers[0]["x"]] == [1.1 / 0.02, 3.3 / 0.02]


def test_forest_plot_has_one_row_per_claim_with_its_family_and_verdict(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    res = constructed()
    at = _page(monkeypatch, tmp_path, res)
    markers = _forest_markers(_figures(at)["claims_forest"])
    assert len(markers) == len(res["claims"])  # one row per claim
    assert len({m["y"][0] for m in markers}) == len(res["claims"])  # each on its own row
    by_row = {m["y"][0]: m for m in markers}
    energy = by_row["energy in box, small objects · s=4"]
    assert energy["x"] == [pytest.approx(-0.05 / 0.02)]  # in units of d
    assert energy["marker"]["symbol"] == "circle" and energy["name"] == "contradicted · confirmatory"
    both = by_row["energy in box, small objects (both correct) · s=4"]
    assert both["marker"]["symbol"] == "circle-open" and both["name"].endswith("exploratory")
    assert by_row["ERF branch 0 → branch 2, 256 px noise · s=4"]["name"].startswith("inconclusive")
    colours = {m["name"].split(" · ")[0]: m["marker"]["color"] for m in markers}
    assert len(set(colours.values())) == len(colours) == 4  # one colour per verdict
    band = [s for s in _figures(at)["claims_forest"]["layout"]["shapes"] if s["type"] == "rect"]
    assert [(b["x0"], b["x1"]) for b in band] == [(-1, 1)]  # the ±d band


def test_every_table_row_names_its_claim_and_shows_values_beside_the_baselines(monkeypatch: pytest.MonkeyPatch,
                                                                               tmp_path: Path) -> None:
    at = _page(monkeypatch, tmp_path, constructed())
    tables = [t.value for t in at.table]
    erf = next(t for t in tables if "ERF" in " ".join(t["claim"]))
    claims = list(erf["claim"])
    # the two ERF statements are two rows, each named, not one metric label
    assert any("training widens the ERF from branch 0 to branch 2" in c and "256 px noise" in c for c in claims)
    assert any("beyond the ResNet's" in c for c in claims)
    assert len(set(claims)) == len(claims)
    loc = next(t for t in tables if "centre prior" in t.columns)
    row = loc[loc["claim"].str.startswith("energy in box higher on small")].iloc[0]
    assert row["values"] == "0.500 → 0.500"  # ResNet → Res2Net, absolute, at the verdict stage
    assert row["centre prior"] == "0.310" and row["uniform map"] == "0.200"
    assert row["minus prior"] == "+0.190 → +0.190"


def test_a_saturated_metric_is_flagged(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    at = _page(monkeypatch, tmp_path, constructed())
    loc = next(t.value for t in at.table if "centre prior" in t.value.columns)
    flags = dict(zip(loc["claim"], loc["flags"], strict=True))
    maxbox = next(v for k, v in flags.items() if k.startswith("MaxBoxAcc higher on large"))
    assert "saturated (prior 1)" in maxbox  # the prior's MaxBoxAcc is 1.0 on large objects
    # coverage on large objects: the prior scores 0.7, below 1 - d: not saturated, but it beats both models
    coverage = next(v for k, v in flags.items() if k.startswith("coverage higher on large"))
    assert "saturated" not in coverage and "neither beats the prior" in coverage
    energy = next(v for k, v in flags.items() if k.startswith("energy in box higher on small"))
    assert "saturated" not in energy and "neither" not in energy  # 0.5 beats the prior's 0.31


def test_claims_without_a_section_show_that_it_is_empty(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    res = constructed()
    res["claims"] = [c for c in res["claims"] if c["section"] != "erf"]
    at = _page(monkeypatch, tmp_path, res)
    assert any("No claims of this kind" in i.value for i in at.info)


def test_a_file_of_another_schema_gets_a_specific_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    old = copy.deepcopy(constructed())
    old["schema_version"] = 1
    at = _page(monkeypatch, tmp_path, old)
    assert any("schema version 1" in e.value for e in at.error)
    at = _page(monkeypatch, tmp_path, {"models": {}})
    assert any("schema version None" in e.value for e in at.error)


def test_results_validation_names_what_is_missing() -> None:
    res = constructed()
    del res["baselines"]
    with pytest.raises(ResultsError, match="baselines"):
        validate_results(res)
    res = constructed()
    del res["claims"][0]["verdict"]
    with pytest.raises(ResultsError, match=f"top1-{MODELS[1]}.*verdict"):
        validate_results(res)
    assert "claims" in field_docs(Results) and "verdict" in field_docs(Claim)


def test_picker_offers_every_results_file_and_states_dataset_and_weights(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    other = copy.deepcopy(constructed())
    other.update(dataset="imagenet-val: ImageNet val at /data", images=50000, weights="pretrained",
                 skipped={"count": 3, "reasons": {"unreadable image": 3}, "examples": {}})
    (tmp_path / "imagenet-val.json").write_text(json.dumps(other))
    (tmp_path / "broken.json").write_text("{}")
    at = _page(monkeypatch, tmp_path, constructed())
    picker = at.selectbox(key="claims_file")
    assert picker.options == ["tiny_imagenet_100.json", "broken.json", "imagenet-val.json", "Upload a results file…"]
    assert "weights: embedded" in _text(at)
    picker.set_value("imagenet-val.json").run()
    assert not at.exception, [e.value for e in at.exception]
    text = _text(at)
    assert "imagenet-val: ImageNet val at /data, 50000 images, 3 skipped" in text and "weights: pretrained" in text
    picker.set_value("broken.json").run()
    assert any("schema version None" in e.value for e in at.error)


def test_uploaded_file_that_is_not_results_gets_a_clear_message() -> None:
    from dashboard.services import study_data

    with pytest.raises(ResultsError, match="up.json is not a JSON file"):
        study_data.uploaded_results(b"\x89PNG", "up.json")
    with pytest.raises(ResultsError, match="up.json has schema version 1"):
        study_data.uploaded_results(json.dumps({"schema_version": 1}).encode(), "up.json")
    assert study_data.uploaded_results(json.dumps(constructed()).encode(), "ok.json").images == constructed()["images"]


def test_localisation_metrics_are_the_metric_tables_map_metrics_the_file_describes(monkeypatch: pytest.MonkeyPatch,
                                                                                  tmp_path: Path) -> None:
    from res2net.metrics.table import METRIC_TABLE

    res = constructed()
    at = _page(monkeypatch, tmp_path, res)
    expected = [res["metrics"][m.name]["label"] for m in METRIC_TABLE if m.source == "map"]
    assert at.selectbox(key="claims_metric").options == expected and "MaxBoxAcc" in expected
    kinds = at.selectbox(key="claims_metric").help
    assert "Concentration: energy inside the box, pointing game hit rate (" in kinds
    assert "Coverage: coverage of the box, MaxBoxAcc (" in kinds
    del res["metrics"]["maxboxacc"]  # a file that does not describe a metric is not asked for it
    at = _page(monkeypatch, tmp_path, res)
    assert at.selectbox(key="claims_metric").options == expected[:-1]


def test_an_upload_gets_its_own_message_and_clears_the_previous_one(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    at = _page(monkeypatch, tmp_path, constructed())
    at.selectbox(key="claims_file").set_value("Upload a results file…").run()
    uploader = at.get("file_uploader")[0]
    assert list(uploader.proto.type) == []  # no type filter in the browser: a .txt reaches our own check
    uploader.upload("broken.json", b"{", "application/json")
    at.run()
    assert [e.value for e in at.error if "broken.json is not a JSON file" in e.value]
    at.get("file_uploader")[0].upload("notes.txt", b"some notes", "text/plain")
    at.run()
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "notes.txt is not a results file" in errors[0], errors  # the old one is gone
    at.get("file_uploader")[0].upload("ok.json", json.dumps(constructed()).encode(), "application/json")
    at.run()
    assert not at.error and "1 · Accuracy" in [h.value for h in at.header]


def test_erf_branches_are_placed_by_receptive_field_with_the_resnet_path_apart(monkeypatch: pytest.MonkeyPatch,
                                                                               tmp_path: Path) -> None:
    from res2net.geometry.receptive_field import theoretical_rf
    from res2net.models.factory import create_model

    at = _page(monkeypatch, tmp_path, constructed())
    fig = _figures(at)["claims_erf_layer3.1"]
    traces = {t["name"]: t for t in fig["data"]}
    conv, path = traces[MODELS[1]], traces[f"{MODELS[0]}: 3×3 path"]
    model = create_model(MODELS[1], pretrained=False)
    # conv branches 0..2 of the s=4 block at their receptive fields in px, not at their indices
    assert conv["x"] == [theoretical_rf(model, f"layer3.1.branch{i}") for i in range(3)]
    assert conv["y"] == [10.0, 11.0, 12.0] and conv["x"][0] > 2 and conv["x"] == sorted(conv["x"])
    assert path["marker"]["symbol"] == "star" and path["x"] == [theoretical_rf(create_model(MODELS[0]),
                                                                                 "layer3.1.branch0")]
    identity = traces[f"{MODELS[1]}: identity"]  # branch 3 stands apart, in its own panel
    assert identity["xaxis"] == "x2" and identity["y"] == [13.0]
    assert fig["layout"]["shapes"][0]["y0"] == 10.0  # the ResNet path's level: a reference line across
