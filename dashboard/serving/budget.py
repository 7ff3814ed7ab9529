"""A cache bounded in bytes and in time, shared by every session of the server.

Decoded images and analysis results go through one ``ByteBudgetCache``: the least recently used entries are
dropped when the total size passes the budget, entries older than the time limit are dropped when next touched,
and two sessions asking for the same key at once share one computation instead of running it twice.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import TypeVar

import numpy as np
import torch
from PIL import Image

T = TypeVar("T")

ENV_BUDGET_MB = "RES2SCOPE_CACHE_MB"
ENV_TTL_S = "RES2SCOPE_CACHE_TTL_S"
DEFAULT_BUDGET_MB = 1024
DEFAULT_TTL_S = 3600.0


def nbytes(value: object) -> int:
    """Approximate memory held by ``value``: array and image buffers counted exactly, containers summed."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, torch.Tensor):
        return int(value.element_size() * value.nelement())
    if isinstance(value, Image.Image):
        return int(value.width * value.height * len(value.getbands()) * (4 if value.mode in ("I", "F") else 1))
    if isinstance(value, (bytes, bytearray, str)):
        return len(value)
    if isinstance(value, dict):
        return sum(nbytes(k) + nbytes(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return sum(nbytes(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(nbytes(getattr(value, f.name)) for f in dataclasses.fields(value))
    return 64  # numbers, None, small objects


class _Abandoned(Exception):
    """The computation a waiter was sharing stopped without a result or an error of its own."""


@dataclasses.dataclass
class _Entry:
    value: object
    size: int
    stored_at: float


class ByteBudgetCache:
    """Least-recently-used cache holding at most ``max_bytes`` of values, each for at most ``ttl_s`` seconds.

    A value larger than the whole budget is returned but not kept. Thread-safe; a computation that raises is not
    cached, and sessions waiting on it receive the same exception; one interrupted by a ``BaseException`` that is
    not an ``Exception`` (a session's rerun) is taken over by a waiting session.
    """

    def __init__(self, max_bytes: int, ttl_s: float) -> None:
        if max_bytes < 0 or ttl_s <= 0:
            raise ValueError(f"the cache needs max_bytes >= 0 and ttl_s > 0, got {max_bytes} and {ttl_s}")
        self.max_bytes = int(max_bytes)
        self.ttl_s = float(ttl_s)
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._running: dict[Hashable, Future] = {}
        self._lock = threading.Lock()
        self._bytes = 0
        self.hits = self.misses = self.evictions = 0

    @property
    def bytes(self) -> int:
        """Bytes held by the cached values now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            self._expire(time.monotonic())
            return key in self._entries

    def expire(self) -> None:
        """Drop the entries older than the time limit now (they are also dropped whenever the cache is used)."""
        with self._lock:
            self._expire(time.monotonic())

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def get_or_compute(self, key: Hashable, compute: Callable[[], T], wait: bool = True) -> T:
        """The cached value of ``key``, or ``compute()``'s (stored within the budget); one computation per key.

        ``wait=False``: when another thread is computing ``key``, compute it here too instead of waiting for it (a
        caller holding a compute slot must not wait for a computation that may be queued behind that slot)."""
        with self._lock:
            self._expire(time.monotonic())
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry.value  # type: ignore[return-value]
            running = self._running.get(key)
            if running is None:
                running = self._running[key] = Future()
                owner = True
                self.misses += 1
            else:
                owner = False
                self.hits += 1
        if not owner and not wait:
            value = compute()
            self._store(key, value, owner=False)
            return value
        if not owner:
            try:
                return running.result()
            except _Abandoned:  # the session computing it was interrupted (a rerun): compute it here instead
                return self.get_or_compute(key, compute)
        try:
            value = compute()
        except BaseException as exc:
            with self._lock:
                del self._running[key]
            # an error reaches every waiter; an interruption (not an Exception) is the owner's alone
            running.set_exception(exc if isinstance(exc, Exception) else _Abandoned())
            raise
        self._store(key, value)
        running.set_result(value)
        return value

    def _store(self, key: Hashable, value: object, owner: bool = True) -> None:
        size = nbytes(value)
        with self._lock:
            if owner:
                del self._running[key]
            if size > self.max_bytes or key in self._entries:  # the same value may already be kept
                return
            self._entries[key] = _Entry(value, size, time.monotonic())
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, old = self._entries.popitem(last=False)
                self._bytes -= old.size
                self.evictions += 1

    def _expire(self, now: float) -> None:
        for key in [k for k, e in self._entries.items() if now - e.stored_at > self.ttl_s]:
            self._bytes -= self._entries.pop(key).size
            self.evictions += 1


M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


@functools.cache
def return_large_frees_to_os(threshold: int = 1 << 20) -> bool:
    """Serve allocations of ``threshold`` bytes or more by mmap, so that freeing a decoded image gives its memory
    back to the system. Otherwise glibc raises that threshold by itself (up to 32 MB) after the first large free, and
    the freed buffers of every later decode stay in the C heap: a server's resident memory then only grows. Returns
    False where the C library has no ``mallopt`` (not glibc)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise ValueError(f"{name}={raw!r} must be positive")
    return value


def cache_from_env() -> ByteBudgetCache:
    """The server's result cache: ``$RES2SCOPE_CACHE_MB`` (default 1024) MB, entries kept ``$RES2SCOPE_CACHE_TTL_S``
    (default 3600) s; a background thread drops expired entries even when nobody uses the server."""
    mb = _env_number(ENV_BUDGET_MB, DEFAULT_BUDGET_MB)
    cache = ByteBudgetCache(int(mb * 2**20), _env_number(ENV_TTL_S, DEFAULT_TTL_S))
    _sweep_forever(cache, every_s=min(60.0, cache.ttl_s))
    return cache


def _sweep_forever(cache: ByteBudgetCache, every_s: float) -> None:
    def sweep() -> None:
        while True:
            time.sleep(every_s)
            cache.expire()

    threading.Thread(target=sweep, name="res2scope-cache-sweeper", daemon=True).start()
