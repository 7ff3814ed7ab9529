"""Properties of the summary (hypothesis): the order in which per-image rows arrive never changes it.

Rows are (job, image) pairs; the summary reads each job's images in the order of the first job's rows. So any
arrangement of the rows that keeps the images' order (jobs' blocks in any order, or interleaved) gives the same
summary to the last digit, and any arrangement at all gives the same point estimates and image counts. (The
intervals and the cross-fitted prior follow the images' order: the bootstrap's seeded draws and the prior's two
folds are by position, and the rows always come in the dataset's record order.)"""

from __future__ import annotations

import warnings

import hypothesis_profiles  # noqa: F401  (example counts: few in CI, more in the mutation run)
import numpy as np
import summary_rows as R
from hypothesis import given, settings
from hypothesis import strategies as st

from res2net.evaluation import summary
from res2net.evaluation.summary import summarise_rows

RUNS = 2
ROWS = R.make_rows(R.small_boxes(8, np.random.default_rng(11), most=50), seed=12, runs=RUNS,
                   skipped={("r2", "seed1", 3): "cannot be decoded"})
N_JOBS = len(R.MODELS) * RUNS
N_IMAGES = len(ROWS["model"]) // N_JOBS


def _summary(order: np.ndarray) -> dict:
    """The summary of the rows in ``order``, with 100 bootstrap resamples (the rule does not depend on how many)."""
    sizes = summary.BOOT_SUMMARY, summary.BOOT_COMPARE
    summary.BOOT_SUMMARY = summary.BOOT_COMPARE = 100
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            res, *_ = summarise_rows({k: v[order] for k, v in ROWS.items()}, R.CLASSES, R.entries(RUNS),
                                     R.run_labels(RUNS), "base", R.SIDE)
    finally:
        summary.BOOT_SUMMARY, summary.BOOT_COMPARE = sizes
    return res


BASE = _summary(np.arange(len(ROWS["model"])))


def _estimates(res: dict) -> list:
    return [(r["model"], r.get("stage"), r["bucket"], r.get("subset"), r.get("metric", r.get("kind")),
             r.get("mean", r.get("diff")), r["n"])
            for k in ("localisation", "accuracy_by_size", "comparisons") for r in res[k]]


@settings(max_examples=min(settings().max_examples, 6))
@given(st.permutations([j for j in range(N_JOBS) for _ in range(N_IMAGES)]))
def test_rows_interleaved_in_any_order_keeping_the_images_order_give_the_same_summary(jobs: list[int]) -> None:
    nxt = [0] * N_JOBS
    order = []
    for j in jobs:  # the next image of job j
        order.append(j * N_IMAGES + nxt[j])
        nxt[j] += 1
    assert _summary(np.array(order)) == BASE


@settings(max_examples=min(settings().max_examples, 6))
@given(st.permutations(range(N_JOBS * N_IMAGES)))
def test_rows_in_any_order_give_the_same_estimates_and_counts(order: list[int]) -> None:
    res = _summary(np.array(order))
    assert _estimates(res) == _estimates(BASE)
    assert res["images"] == BASE["images"] == N_IMAGES - 1
    assert [e["top1"]["mean"] for e in res["models"].values()] == [e["top1"]["mean"] for e in BASE["models"].values()]
