"""Serving rules written down first, then tested: the byte accounting of a value computed twice, the sizes the
budget counts, the expiry sweeper's period, and the local weights files' budget unit, pruning order and age."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from dashboard.serving import budget, local_weights


# --------------------------------------------------------------------------------------------- the result cache
def test_a_value_computed_twice_is_counted_once() -> None:
    """Rule: when a caller that may not wait computes a key another caller is already computing, the first value
    stored is kept and counted once; the second store of the same key changes neither the value nor the bytes."""
    cache = budget.ByteBudgetCache(max_bytes=1000, ttl_s=60)
    inner = []

    def owner() -> np.ndarray:
        inner.append(cache.get_or_compute("k", lambda: np.zeros(30, np.uint8), wait=False))
        return np.zeros(70, np.uint8)

    assert cache.get_or_compute("k", owner).nbytes == 70
    assert inner[0].nbytes == 30 and cache.bytes == 30 and len(cache) == 1
    assert cache.get_or_compute("k", lambda: np.zeros(5, np.uint8)).nbytes == 30  # the kept value
    assert (cache.hits, cache.misses) == (2, 1)


def test_the_newest_value_is_never_evicted_for_its_own_room() -> None:
    """Rule: storing a value that fits the budget evicts older entries (least recently used first) until the total
    fits; a value of exactly the budget fits, one byte more is not kept."""
    cache = budget.ByteBudgetCache(max_bytes=100, ttl_s=60)
    cache.get_or_compute("old", lambda: np.zeros(60, np.uint8))
    cache.get_or_compute("new", lambda: np.zeros(100, np.uint8))
    assert "new" in cache and "old" not in cache and cache.bytes == 100 and cache.evictions == 1
    cache.get_or_compute("over", lambda: np.zeros(101, np.uint8))
    assert "over" not in cache and "new" in cache and cache.bytes == 100


def test_an_entry_expires_only_after_its_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: an entry lives ``ttl_s`` seconds: still there at exactly ttl_s, gone just after (and counted as an
    eviction); expiry frees its bytes."""
    now = [0.0]
    monkeypatch.setattr(budget.time, "monotonic", lambda: now[0])
    cache = budget.ByteBudgetCache(max_bytes=1000, ttl_s=5)
    cache.get_or_compute("k", lambda: np.zeros(10, np.uint8))
    now[0] = 5.0
    assert "k" in cache and cache.bytes == 10
    now[0] = 5.001
    cache.expire()
    assert "k" not in cache and cache.bytes == 0 and cache.evictions == 1


def test_clear_forgets_every_value_and_its_bytes() -> None:
    """Rule: clear() empties the cache and its byte count; the next request computes again."""
    cache = budget.ByteBudgetCache(max_bytes=1000, ttl_s=60)
    cache.get_or_compute("k", lambda: np.zeros(10, np.uint8))
    cache.clear()
    assert cache.bytes == 0 and len(cache) == 0 and "k" not in cache


@pytest.mark.parametrize("max_bytes, ttl_s", [(-1, 10), (10, 0), (10, -1)])
def test_a_cache_needs_a_budget_and_a_time_limit(max_bytes: int, ttl_s: float) -> None:
    """Rule: the budget is >= 0 bytes and the time limit > 0 s; otherwise the cache refuses, saying both."""
    with pytest.raises(ValueError) as err:
        budget.ByteBudgetCache(max_bytes, ttl_s)
    assert str(err.value) == f"the cache needs max_bytes >= 0 and ttl_s > 0, got {max_bytes} and {ttl_s}"


def test_a_zero_budget_keeps_nothing_but_answers() -> None:
    """Rule: a budget of 0 bytes is allowed: every value is returned, none kept (except empty ones)."""
    cache = budget.ByteBudgetCache(0, 1.0)
    assert cache.max_bytes == 0 and cache.ttl_s == 1.0
    assert cache.get_or_compute("k", lambda: np.zeros(3, np.uint8)).nbytes == 3 and "k" not in cache


@dataclasses.dataclass
class _Pair:
    a: np.ndarray
    b: str


@pytest.mark.parametrize("value, size", [
    (np.zeros((3, 4), np.float64), 96),
    (torch.zeros(5, dtype=torch.float16), 10),
    (torch.zeros(2, 3, dtype=torch.int64), 48),
    (Image.new("L", (4, 3)), 12), (Image.new("RGB", (4, 3)), 36), (Image.new("RGBA", (2, 2)), 16),
    (Image.new("I", (4, 3)), 48), (Image.new("F", (2, 5)), 40),
    (b"abcd", 4), (bytearray(b"abcdef"), 6), ("héllo", 5),
    ({"ab": np.zeros(4, np.uint8)}, 6), ([np.zeros(2, np.uint8), b"xyz"], 5), ((b"a", b"bc"), 3),
    ({b"abc", b"de"}, 5), (frozenset({b"abcd"}), 4),
    (_Pair(np.zeros(8, np.uint8), "xy"), 10), (7, 64), (None, 64), (_Pair, 64),
])
def test_sizes_count_buffers_exactly_and_small_objects_as_64_bytes(value: object, size: int) -> None:
    """Rule: arrays, tensors and images count their pixel buffers (4 bytes a band for 32-bit modes I and F), bytes
    and strings their length, containers and dataclass instances the sum of their parts (dict keys too), anything
    else 64 bytes."""
    assert budget.nbytes(value) == size


def test_the_sweeper_runs_every_minute_or_every_time_limit_if_shorter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: the server's cache is swept of expired entries every min(60 s, time limit), even when idle."""
    periods = []
    monkeypatch.setattr(budget, "_sweep_forever", lambda cache, every_s: periods.append((cache, every_s)))
    for ttl, period in (("30", 30.0), ("3600", 60.0), ("60", 60.0), ("0.5", 0.5)):
        monkeypatch.setenv(budget.ENV_TTL_S, ttl)
        cache = budget.cache_from_env()
        assert periods[-1] == (cache, period)


def test_the_sweeper_expires_entries_periodically_in_a_daemon_thread() -> None:
    """Rule: the sweeper is a daemon thread (it never keeps the server alive) that calls expire() every period."""
    calls, enough = [], threading.Event()

    class _Cache:
        def expire(self) -> None:
            calls.append(time.monotonic())
            if len(calls) >= 3:
                enough.set()
                threading.Event().wait()  # park this daemon thread for good

    before = set(threading.enumerate())
    budget._sweep_forever(_Cache(), every_s=0.05)
    assert enough.wait(5)
    (sweeper,) = [t for t in threading.enumerate() if t not in before]
    assert sweeper.daemon and sweeper.name == "res2scope-cache-sweeper"
    assert all(b - a >= 0.04 for a, b in zip(calls, calls[1:], strict=False))


def test_cache_settings_come_from_the_environment_in_mebibytes_and_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: ``$RES2SCOPE_CACHE_MB`` is in MiB (2**20 bytes, fractions allowed), ``$RES2SCOPE_CACHE_TTL_S`` in
    seconds; unset or blank means 1024 MiB and 3600 s; a non-number or a value <= 0 is refused by name."""
    monkeypatch.setattr(budget, "_sweep_forever", lambda cache, every_s: None)
    monkeypatch.delenv(budget.ENV_BUDGET_MB, raising=False)
    monkeypatch.setenv(budget.ENV_TTL_S, "  ")
    cache = budget.cache_from_env()
    assert cache.max_bytes == 1024 * 2**20 and cache.ttl_s == 3600.0
    monkeypatch.setenv(budget.ENV_BUDGET_MB, "1.5")
    assert budget.cache_from_env().max_bytes == int(1.5 * 2**20)
    for raw, message in (("lots", "RES2SCOPE_CACHE_MB='lots' is not a number"),
                         ("0", "RES2SCOPE_CACHE_MB='0' must be positive"),
                         ("-2", "RES2SCOPE_CACHE_MB='-2' must be positive")):
        monkeypatch.setenv(budget.ENV_BUDGET_MB, raw)
        with pytest.raises(ValueError) as err:
            budget.cache_from_env()
        assert str(err.value) == message


def test_large_frees_go_back_to_the_system_through_mallopt(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: glibc's mallopt(M_MMAP_THRESHOLD = -3, 1 MiB) is set (two C ints); without mallopt it answers False."""
    seen = []

    class _Lib:
        class mallopt:  # noqa: N801  (stands in for the C function)
            argtypes = None

            def __new__(cls, param: int, value: int) -> int:
                seen.append((param, value, cls.argtypes))
                return 1

    monkeypatch.setattr(budget.ctypes, "CDLL", lambda name: _Lib)
    assert budget.return_large_frees_to_os.__wrapped__() is True
    assert seen == [(-3, 1 << 20, [budget.ctypes.c_int, budget.ctypes.c_int])]

    def no_library(name: object) -> object:
        raise OSError("no C library")

    monkeypatch.setattr(budget.ctypes, "CDLL", no_library)
    assert budget.return_large_frees_to_os.__wrapped__() is False


# --------------------------------------------------------------------------------------------- local weights
def test_weights_files_budget_is_in_mebibytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: ``$RES2SCOPE_WEIGHT_FILES_MB`` is in MiB (2**20 bytes, fractions allowed); unset or blank means 2048
    MiB; a non-number or a value <= 0 is refused by name."""
    monkeypatch.delenv(local_weights.ENV_FILES_MB, raising=False)
    assert local_weights.files_budget() == 2048 * 2**20
    monkeypatch.setenv(local_weights.ENV_FILES_MB, " ")
    assert local_weights.files_budget() == 2048 * 2**20
    monkeypatch.setenv(local_weights.ENV_FILES_MB, "0.5")
    assert local_weights.files_budget() == 2**19
    for raw, message in (("big", "RES2SCOPE_WEIGHT_FILES_MB='big' is not a number"),
                         ("0", "RES2SCOPE_WEIGHT_FILES_MB='0' must be positive"),
                         ("-1", "RES2SCOPE_WEIGHT_FILES_MB='-1' must be positive")):
        monkeypatch.setenv(local_weights.ENV_FILES_MB, raw)
        with pytest.raises(ValueError) as err:
            local_weights.files_budget()
        assert str(err.value) == message


def _aged(folder: Path, name: str, size: int, age_s: float) -> Path:
    p = folder / name
    p.write_bytes(b"w" * size)
    t = time.time() - age_s
    os.utime(p, (t, t))
    return p


def test_the_oldest_file_is_pruned_first(tmp_path: Path) -> None:
    """Rule: over the budget, the least recently checked file goes first, then the next oldest, until it fits."""
    old = _aged(tmp_path, "old.pth", 40, 300)
    mid = _aged(tmp_path, "mid.pth", 40, 200)
    new = _aged(tmp_path, "new.pth", 40, 100)
    keep = _aged(tmp_path, "keep.pth", 40, 0)
    local_weights.prune(tmp_path, 120, keep)
    assert not old.exists() and mid.exists() and new.exists() and keep.exists()
    local_weights.prune(tmp_path, 80, keep)
    assert not mid.exists() and new.exists()
    local_weights.prune(tmp_path, 160, keep)  # within the budget: nothing goes
    assert new.exists() and keep.exists()


def test_a_file_checked_again_counts_as_the_newest(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Rule: checking a file whose content is already kept makes it the newest, so the next prune drops an older
    other file rather than it."""
    monkeypatch.setattr(local_weights, "private_dir", lambda: tmp_path)
    monkeypatch.setattr(local_weights.weights, "load_checkpoint_file", lambda model, path, spec: None)
    monkeypatch.setattr(local_weights, "files_budget", lambda: 10**9)
    first = local_weights.check("tiny_resnet26", b"A" * 50, "a.pth")
    second = local_weights.check("tiny_resnet26", b"B" * 50, "b.pth")
    kept_a = local_weights.path_of(first.identity)
    kept_b = local_weights.path_of(second.identity)
    t = time.time()
    os.utime(kept_a, (t - 500, t - 500))
    os.utime(kept_b, (t - 100, t - 100))
    again = local_weights.check("tiny_resnet26", b"A" * 50, "a-again.pth")  # the same content as a.pth
    assert again.sha256 == first.sha256 and kept_a.stat().st_mtime > kept_b.stat().st_mtime
    monkeypatch.setattr(local_weights, "files_budget", lambda: 120)
    third = local_weights.check("tiny_resnet26", b"C" * 50, "c.pth")
    assert kept_a.exists() and not kept_b.exists() and local_weights.path_of(third.identity).exists()


def test_a_kept_file_is_named_by_its_content() -> None:
    """Rule: a user file's identity is 'file:<sha256>', its label names the upload and the hash's first 12 digits,
    and only such identities have a path."""
    lw = local_weights.LocalWeights("mine.pth", "ab" * 32)
    assert lw.identity == "file:" + "ab" * 32 and local_weights.is_local(lw.identity)
    assert lw.label == f"your file mine.pth, sha256 {'ab' * 6}"
    assert local_weights.path_of(lw.identity).name == "ab" * 32 + ".pth"
    assert not local_weights.is_local("trained")
    with pytest.raises(ValueError) as err:
        local_weights.path_of("trained")
    assert str(err.value) == "'trained' is not a user file's weights identity"
