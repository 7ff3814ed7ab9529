"""Shard files give the same rows whatever the order they were written in, the number of processes, or where a
run was interrupted and resumed (hypothesis over synthetic rows, using the shard functions directly)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import hypothesis_profiles  # noqa: F401  (example counts: few in CI, more in the mutation run)
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from res2net.evaluation import distributed as D
from res2net.evaluation.scoring import merge_rows


def _rows(n: int, seed: int) -> dict[str, np.ndarray]:
    """Synthetic per-image rows: an id, a boolean, a float score and a per-threshold curve."""
    rng = np.random.default_rng(seed)
    return {"image_id": np.array([f"img{i:04d}" for i in range(n)]), "correct": rng.random(n) < 0.5,
            "layer3/output/energy": rng.random(n).astype(np.float16), "curve": rng.random((n, 3))}


def _batch(rows: dict[str, np.ndarray], r: range) -> dict[str, np.ndarray]:
    return {k: v[r.start:r.stop] for k, v in rows.items()}


def _equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)


@given(st.integers(0, 60), st.integers(1, 9), st.integers(1, 5))
def test_ranks_take_contiguous_balanced_shares_of_every_batch(n, batch_size, world) -> None:
    """Rule: batches are [0, b), [b, 2b), ... covering every image once; each rank takes a contiguous range of
    batch numbers, the ranges tile all batches in rank order, and their sizes differ by at most one."""
    batches = D.batch_ranges(n, batch_size)
    assert [i for r in batches for i in r] == list(range(n))
    assert all(len(r) == batch_size for r in batches[:-1])
    shares = [D.shard_batches(len(batches), rank, world) for rank in range(world)]
    assert [b for s in shares for b in s] == list(range(len(batches)))
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


@given(st.integers(1, 40), st.integers(1, 7), st.permutations(range(8)), st.integers(1, 4), st.integers(0, 99))
def test_shards_written_in_any_order_by_any_ranks_merge_to_the_same_rows(n, batch_size, order, world, seed) -> None:
    """Rule: the merged rows are in image order whatever order the batches were written in and whichever rank wrote
    them; a batch written twice (after a restart) is read once."""
    rows = _rows(n, seed)
    batches = D.batch_ranges(n, batch_size)
    sequence = [b for b in order if b < len(batches)] + [b for b in range(8, len(batches))]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "m" / "seed0"
        for k, b in enumerate(sequence):
            D.write_shard(folder, k % world, world, b, _batch(rows, batches[b]))
        D.write_shard(folder, world, world + 1, sequence[0], _batch(rows, batches[sequence[0]]))  # a rewrite
        assert D.done_batches(folder) == set(range(len(batches)))
        merged = merge_rows(Path(tmp), [("m", "seed0")], n)
    assert _equal(merged, rows)


@given(st.integers(1, 40), st.integers(1, 7), st.integers(0, 10), st.integers(1, 3), st.integers(1, 3),
       st.integers(0, 99))
def test_resuming_after_any_prefix_of_batches_equals_an_uninterrupted_run(n, batch_size, stop, world1, world2,
                                                                          seed) -> None:
    """Rule: a run stopped after any number of finished batches and restarted (with any number of processes) only
    scores the batches no shard file holds, and ends with exactly the rows of a run that was never stopped."""
    rows = _rows(n, seed)
    batches = D.batch_ranges(n, batch_size)
    scored: list[int] = []

    def run(folder: Path, world: int, budget: int | None) -> None:
        for rank in range(world):
            for b in D.shard_batches(len(batches), rank, world):
                if b in D.done_batches(folder):
                    continue
                if budget is not None and len(scored) >= budget:
                    return
                scored.append(b)
                D.write_shard(folder, rank, world, b, _batch(rows, batches[b]))

    with tempfile.TemporaryDirectory() as tmp:
        whole, resumed = Path(tmp) / "whole", Path(tmp) / "resumed"
        run(whole / "m" / "r", 1, None)
        scored.clear()
        run(resumed / "m" / "r", world1, stop)
        run(resumed / "m" / "r", world2, None)
        assert sorted(scored) == list(range(len(batches)))  # every batch scored once, none twice
        a = merge_rows(whole, [("m", "r")], n)
        b = merge_rows(resumed, [("m", "r")], n)
    assert _equal(a, b) and _equal(a, rows)


def test_merging_refuses_a_run_with_missing_images(tmp_path: Path) -> None:
    """Rule: every image must be present once per run; otherwise merging stops and says how many are there."""
    rows = _rows(10, 0)
    D.write_shard(tmp_path / "m" / "r", 0, 1, 0, _batch(rows, range(0, 5)))
    with pytest.raises(RuntimeError, match="hold 5 of 10 images"):
        merge_rows(tmp_path, [("m", "r")], 10)
