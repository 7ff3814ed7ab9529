"""Pruning the checked weights files keeps the newest ones, for any sizes, ages and budget (hypothesis)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import hypothesis_profiles  # noqa: F401  (example counts: few in CI, more in the mutation run)
from hypothesis import given
from hypothesis import strategies as st

from dashboard.serving import local_weights

files = st.lists(st.tuples(st.integers(1, 50), st.integers(0, 10_000)), min_size=0, max_size=8,
                 unique_by=lambda f: f[1])  # (size, age in seconds), distinct ages


@given(files, st.integers(1, 50), st.integers(0, 200))
def test_pruning_keeps_the_newest_files_that_fit_and_the_one_just_checked(others, keep_size, max_bytes) -> None:
    """Rule: prune deletes files oldest first (by modification time) until the total fits ``max_bytes``, never the
    file just checked; so what stays is that file plus the newest others, and one more of the deleted (the newest
    deleted) would not have fitted. The file just checked stays even when it alone is over the budget."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        now = 1_700_000_000
        paths = []
        for k, (size, age) in enumerate(others):
            p = folder / f"{k:02d}.pth"
            p.write_bytes(b"x" * size)
            os.utime(p, (now - age, now - age))
            paths.append((p, size, age))
        keep = folder / "kept.pth"
        keep.write_bytes(b"k" * keep_size)
        os.utime(keep, (now - 99_999, now - 99_999))  # the oldest of all, and still kept
        (folder / "notes.txt").write_bytes(b"n" * 500)  # not a checked file: never counted nor deleted
        local_weights.prune(folder, max_bytes, keep)
        assert keep.is_file() and (folder / "notes.txt").is_file()
        left = [(p, s, a) for p, s, a in paths if p.is_file()]
        gone = [(p, s, a) for p, s, a in paths if not p.is_file()]
        if gone:
            assert all(a_left < a_gone for _, _, a_left in left for _, _, a_gone in gone)  # the older ones went
            assert keep_size + sum(s for _, s, _ in left) <= max_bytes or not left  # the checked file may not fit
            newest_gone = min(gone, key=lambda f: f[2])
            assert keep_size + sum(s for _, s, _ in left) + newest_gone[1] > max_bytes
        else:
            total = keep_size + sum(s for _, s, _ in paths)
            assert total <= max_bytes or not paths
