"""The images behind a Claims bucket: per-image gains from the stored per-image scores, against hand-worked cases
and against the shipped results file's own summaries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from res2net.evaluation import evidence
from res2net.evaluation.results import image_scores_path, load_image_scores, load_results

SHIPPED = Path(__file__).resolve().parents[2] / "assets" / "results" / "tiny_imagenet_100.json"


def _scores() -> dict[str, np.ndarray]:
    """Five images (val indices 10..14), two runs each of a ResNet 'r' and a Res2Net 'x' at tap 't'."""
    nan = np.nan
    return {
        "image_index": np.array([10, 11, 12, 13, 14]),
        "uniform/energy": np.array([0.10, 0.30, 0.70, 0.24, 0.60]),  # small, medium, large, small, large
        "r/seed0/t/energy": np.array([0.2, 0.5, 0.9, 0.4, 0.8]),
        "r/seed1/t/energy": np.array([0.4, 0.5, 0.7, nan, 0.6]),
        "x/seed0/t/energy": np.array([0.6, 0.1, 0.9, 0.1, 0.7]),
        "x/seed1/t/energy": np.array([0.8, 0.3, 0.9, 0.3, nan]),
        # hits per MaxBoxAcc threshold (3 thresholds)
        "r/seed0/t/maxboxacc": np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 1], [1, 1, 0]], dtype=bool),
        "x/seed0/t/maxboxacc": np.array([[1, 1, 0], [0, 0, 1], [0, 0, 1], [1, 1, 1], [0, 1, 1]], dtype=bool),
    }


def test_buckets_follow_the_size_rule() -> None:
    assert evidence.image_buckets(_scores()).tolist() == ["small", "medium", "large", "small", "large"]


def test_values_average_runs_and_skip_missing_ones() -> None:
    v = evidence.image_values(_scores(), "r", "t", "energy")
    assert v == pytest.approx([0.3, 0.5, 0.8, 0.4, 0.7])  # image 13: seed1 is NaN, seed0's 0.4 stands
    assert evidence.runs_of(_scores(), "x", "t", "energy") == ["seed0", "seed1"]
    with pytest.raises(KeyError, match="coverage scores of r at t"):
        evidence.image_values(_scores(), "r", "t", "coverage")


def test_gains_are_sorted_largest_first_with_val_indices() -> None:
    gains = evidence.image_gains(_scores(), "x", "r", "t", "energy")
    # x: 0.7, 0.2, 0.9, 0.2, 0.7 ; r: 0.3, 0.5, 0.8, 0.4, 0.7 -> gains 0.4, -0.3, 0.1, -0.2, 0.0
    assert [g.image_index for g in gains] == [10, 12, 14, 13, 11]
    assert [g.gain for g in gains] == pytest.approx([0.4, 0.1, 0.0, -0.2, -0.3])
    small = evidence.image_gains(_scores(), "x", "r", "t", "energy", "small")
    assert [(g.row, g.image_index) for g in small] == [(0, 10), (3, 13)]


def test_maxboxacc_scores_each_image_at_the_runs_best_threshold_over_the_bucket() -> None:
    large = evidence.image_gains(_scores(), "x", "r", "t", "maxboxacc", "large")
    # over rows 2 and 4: r's hit rates per threshold (0.5, 1, 0) -> threshold 1: hits 1, 1
    # x's (0, 0.5, 1) -> threshold 2: hits 1, 1
    assert sorted((g.image_index, g.reference, g.value) for g in large) == [(12, 1.0, 1.0), (14, 1.0, 1.0)]
    every = evidence.image_gains(_scores(), "x", "r", "t", "maxboxacc")
    # over all rows: r (0.6, 0.8, 0.2) -> threshold 1: 0, 1, 1, 1, 1; x (0.4, 0.6, 0.8) -> threshold 2: 0, 1, 1, 1, 1
    assert {g.image_index: g.gain for g in every} == {10: 0.0, 11: 0.0, 12: 0.0, 13: 0.0, 14: 0.0}


@pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped results file")
def test_shipped_file_bucket_means_match_its_own_summaries() -> None:
    res = load_results(SHIPPED)
    scores = load_image_scores(image_scores_path(SHIPPED))
    buckets = evidence.image_buckets(scores)
    for b, base in res.baselines.items():
        assert (b == "all" and len(buckets) == base.images) or int((buckets == b).sum()) == base.images, b
    tap = res.models[res.baseline].taps[res.verdict_layer]["output"]
    for row in res.localisation:
        if (row.stage, row.group, row.subset, row.metric) != (res.verdict_layer, "output", "all", "energy") \
                or row.bucket == "all":
            continue
        rows = np.flatnonzero(buckets == row.bucket)
        mean = np.nanmean(evidence.image_values(scores, row.model, tap, "energy", rows))
        assert mean == pytest.approx(row.mean, abs=2e-3), (row.model, row.bucket)  # float16 per-image scores
