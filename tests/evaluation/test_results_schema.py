"""The results file's declared types against the shipped file: it loads into them, they hold every key it has and
nothing it lacks, a round trip gives back the same bytes, and a file that is not one is refused by name."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from res2net.evaluation.results import (
    READABLE_VERSIONS,
    SCHEMA_VERSION,
    BucketBaselines,
    Claim,
    ErfRow,
    KnockoutStudy,
    Results,
    ResultsError,
    ScaleSweep,
    load_results,
    validate_results,
)

SHIPPED = Path(__file__).resolve().parents[2] / "assets" / "results" / "tiny_imagenet_100.json"


@pytest.fixture(scope="module")
def raw() -> dict:
    return json.loads(SHIPPED.read_text())


def _differences(a: object, b: object, path: str = "") -> list[str]:
    """Paths where two JSON values differ (a key on one side only, a value, a type), for a readable failure."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}: only in the file" for k in a.keys() - b.keys()]
        out += [f"{path}.{k}: only in the round trip" for k in b.keys() - a.keys()]
        return out + [d for k in a.keys() & b.keys() for d in _differences(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _differences(x, y, f"{path}[{i}]")]
    return [] if a == b and type(a) is type(b) else [f"{path}: {a!r} != {b!r}"]


def test_the_shipped_file_loads_into_the_declared_types(raw: dict) -> None:
    res = load_results(SHIPPED)
    assert isinstance(res, Results) and res.schema_version in READABLE_VERSIONS
    assert all(isinstance(c, Claim) for c in res.claims) and len(res.claims) == len(raw["claims"])
    first = raw["claims"][0]
    assert (res.claims[0].id, res.claims[0].verdict, res.claims[0].low95) == (first["id"], first["verdict"],
                                                                              first["low95"])
    assert isinstance(res.knockout, KnockoutStudy) and isinstance(res.scale_sweep, ScaleSweep)
    assert [r.scale for r in res.scale_sweep.rows] == [r["scale"] for r in raw["scale_sweep"]["rows"]]
    assert res.models["tiny_res2net26_4s"].runs[1].top1 == raw["models"]["tiny_res2net26_4s"]["runs"][1]["top1"]
    small = res.baselines["small"]
    assert isinstance(small, BucketBaselines)
    assert small.prior == {k[6:]: v for k, v in raw["baselines"]["small"].items() if k.startswith("prior_")}
    branch_rows = [r for r in res.erf if r.branch is not None]
    assert branch_rows and all(isinstance(r, ErfRow) and r.group == f"branch{r.branch}" for r in branch_rows)
    assert res.skipped is None and res.weights is None  # dataset-run fields: absent from the embedded run
    assert res.metric_label("maxboxacc") == raw["metrics"]["maxboxacc"]["label"]
    assert res.metric_label("not a metric") == "not a metric"


def test_every_key_of_the_file_is_declared_and_a_round_trip_keeps_every_byte(raw: dict) -> None:
    """A key the types do not declare is dropped by ``to_json``, a declared key the file lacks fails the load:
    so an equal round trip means the declarations and the file have the same fields."""
    back = load_results(SHIPPED).to_json()
    assert _differences(raw, back) == []
    assert json.dumps(back, indent=1, sort_keys=True) + "\n" == SHIPPED.read_text()  # as the evaluation writes it


def test_a_renamed_or_undeclared_field_is_seen(raw: dict) -> None:
    renamed = copy.deepcopy(raw)
    renamed["knockout"]["interactions"][7]["verdikt"] = renamed["knockout"]["interactions"][7].pop("verdict")
    with pytest.raises(ResultsError, match=r"knockout\.interactions\[7\] lacks verdict"):
        validate_results(renamed, "r.json")
    extra = copy.deepcopy(raw)
    extra["claims"][2]["p_value"] = 0.01
    assert _differences(extra, validate_results(extra).to_json()) == [".claims[2].p_value: only in the file"]


def test_a_wrong_schema_version_is_refused_before_any_field(raw: dict) -> None:
    for version in (1, None, "2"):
        old = {k: v for k, v in raw.items() if k not in ("claims", "baselines")} | {"schema_version": version}
        with pytest.raises(ResultsError) as e:
            validate_results(old, "old.json")
        assert str(e.value).startswith(f"old.json has schema version {version!r}; this version of res2scope reads "
                                       f"version {SCHEMA_VERSION}")
        assert "claims" not in str(e.value)


def test_missing_fields_are_named_at_their_place_and_briefly(raw: dict) -> None:
    cases = [
        (lambda d: d.pop("baselines"), "r.json lacks baselines"),
        (lambda d: d["claims"][4].pop("level"), f"r.json: claims[4] ({raw['claims'][4]['id']!r}) lacks level"),
        (lambda d: d["models"]["tiny_resnet26"]["runs"][2].pop("top5"), "r.json: models.tiny_resnet26.runs[2] "
                                                                        "lacks top5"),
        (lambda d: d["scale_sweep"]["rows"][3]["energy"].pop("per_run"), "r.json: scale_sweep.rows[3].energy lacks "
                                                                          "per_run"),
        (lambda d: d["erf"][0].update(touches_border="no"), "r.json: erf[0].touches_border is 'no', not true or "
                                                             "false"),
        (lambda d: d["localisation"][1].update(n=12.5), "r.json: localisation[1].n is '12.5', not an integer"),
        (lambda d: d.update(claims={}), "r.json: claims is not a list"),
    ]
    for mutate, message in cases:
        bad = copy.deepcopy(raw)
        mutate(bad)
        with pytest.raises(ResultsError) as e:
            validate_results(bad, "r.json")
        assert str(e.value) == message
    bare = {"schema_version": SCHEMA_VERSION, "dataset": "x"}
    with pytest.raises(ResultsError) as e:
        validate_results(bare, "bare.json")
    assert re.fullmatch(r"bare\.json lacks images, limit, models and 1\d more fields", str(e.value))  # not a list
    with pytest.raises(ResultsError, match="not a JSON object"):
        validate_results([raw], "list.json")


def test_null_numbers_and_optional_fields_survive_a_round_trip(raw: dict) -> None:
    """Where rounding leaves no number the file holds null; a dataset run adds fields the embedded run lacks."""
    run = copy.deepcopy(raw)
    run["localisation"][0].update(mean=None, low=None, high=None)
    run["models"]["tiny_resnet26"]["runs"][0]["epochs"] = None  # optional and present as null: kept as null
    del run["models"]["tiny_resnet26"]["runs"][1]["epochs"]  # optional and absent: kept absent
    del run["knockout"], run["scale_sweep"]
    run["models"]["tiny_resnet26"] |= {"weights": "pretrained", "input_size": 64}
    run["models"]["tiny_resnet26"]["runs"][0]["run"] = "pretrained"
    run["prior"]["sigmas_px"] = [16.5, 16.9]
    run |= {"weights": "pretrained", "batch_size": 32, "environment": {"torch": "2.14.1", "cudnn": None,
                                                                       "device": "cpu"},
            "skipped": {"count": 1, "reasons": {"no annotation": 1}, "examples": {"ILSVRC2012_val_1": "no boxes"}}}
    res = validate_results(run)
    assert res.localisation[0].mean is None and res.knockout is None and res.scale_sweep is None
    assert res.models["tiny_resnet26"].runs[0].name == "pretrained" and res.models["tiny_resnet26"].runs[1].name \
        == "seed 1"
    assert res.skipped.count == 1 and res.environment.cudnn is None and res.prior.sigmas_px == (16.5, 16.9)
    assert _differences(run, res.to_json()) == []

