"""The metric table against the shipped results file (written by the code before the table existed)."""

import json
from pathlib import Path

import pytest

from res2net.metrics import table as T

SHIPPED = Path(__file__).resolve().parents[2] / "assets" / "results" / "tiny_imagenet_100.json"


def test_table_writes_the_shipped_metrics_section_and_min_effects():
    res = json.loads(SHIPPED.read_text())
    assert T.metrics_json() == res["metrics"]
    assert T.min_effects() == res["verdict_rule"]["min_effect"]


def test_lookup_and_groups():
    assert T.metric("maxboxacc").best_threshold and not T.metric("energy").best_threshold
    assert T.metric("top1").scale == 100.0 and T.metric("top1").source == "logits"
    assert not T.metric("erf_radius").per_image_mean and T.metric("pointing").per_image_mean
    assert T.map_metrics() == ("energy", "pointing", "coverage", "maxboxacc")
    assert T.branch_metrics() == ("energy", "pointing")
    assert [m.name for m in T.METRIC_TABLE if m.hit] == ["top1", "pointing", "maxboxacc"]
    with pytest.raises(KeyError, match="known: top1"):
        T.metric("iou")


def test_rounded():
    assert T.rounded(0.123456) == 0.1235
    assert T.rounded(float("nan")) is None and T.rounded(None) is None
