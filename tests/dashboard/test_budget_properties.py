"""The result cache's byte accounting under any sequence of puts, gets, values computed twice and expiries
(a hypothesis state machine against a plain model of a least-recently-used, time-limited store)."""

from __future__ import annotations

from collections import OrderedDict

import hypothesis_profiles  # noqa: F401  (example counts: few in CI, more in the mutation run)
import numpy as np
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from dashboard.serving import budget

KEYS = st.sampled_from("abcde")
SIZES = st.integers(0, 120)
TTL = 10.0


class CacheMachine(RuleBasedStateMachine):
    """Rule: after every step, the cache's byte count is the sum of the sizes of the values it keeps, it never
    passes its budget, and it keeps exactly what a least-recently-used store with a time limit keeps: a value over
    the whole budget is returned but not kept; an entry older than the time limit is gone when next touched; a
    value computed twice (a second computation while the first is running) is stored and counted once."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0
        self.model: OrderedDict[str, tuple[int, float]] = OrderedDict()  # key -> (size, stored at)
        self.hits = self.misses = self.evictions = 0

    @initialize(max_bytes=st.integers(0, 300))
    def start(self, max_bytes: int) -> None:
        budget.time.monotonic = lambda: self.now  # restored in teardown
        self.cache = budget.ByteBudgetCache(max_bytes, TTL)
        self.max_bytes = max_bytes

    def teardown(self) -> None:
        budget.time.monotonic = _MONOTONIC

    # --- the model
    def _expire(self) -> None:
        for k in [k for k, (_, t) in self.model.items() if self.now - t > TTL]:
            del self.model[k]
            self.evictions += 1

    def _store(self, key: str, size: int) -> None:
        if size > self.max_bytes or key in self.model:
            return
        self.model[key] = (size, self.now)
        while sum(s for s, _ in self.model.values()) > self.max_bytes:
            self.model.popitem(last=False)
            self.evictions += 1

    # --- the steps
    @rule(key=KEYS, size=SIZES)
    def get_or_put(self, key: str, size: int) -> None:
        self._expire()
        value = self.cache.get_or_compute(key, lambda: np.zeros(size, np.uint8))
        if key in self.model:
            self.model.move_to_end(key)
            self.hits += 1
            assert value.nbytes == self.model[key][0]
        else:
            self.misses += 1
            assert value.nbytes == size
            self._store(key, size)

    @rule(key=KEYS, first=SIZES, second=SIZES)
    def computed_twice(self, key: str, first: int, second: int) -> None:
        """While ``key`` is being computed, another caller that may not wait computes it too and stores it first."""
        self._expire()
        if key in self.model:
            return
        inner: list[np.ndarray] = []

        def owner() -> np.ndarray:
            inner.append(self.cache.get_or_compute(key, lambda: np.zeros(second, np.uint8), wait=False))
            return np.zeros(first, np.uint8)

        got = self.cache.get_or_compute(key, owner)
        assert got.nbytes == first and inner[0].nbytes == second
        self.misses += 1
        self.hits += 1  # the second caller found the computation running
        self._store(key, second)
        self._store(key, first)

    @rule(dt=st.sampled_from([0.5, 3.0, 9.9, 10.0, 10.1, 25.0]))
    def time_passes_and_sweeper_runs(self, dt: float) -> None:
        self.now += dt
        self.cache.expire()
        self._expire()

    @rule(key=KEYS)
    def ask_whether_kept(self, key: str) -> None:
        self._expire()
        assert (key in self.cache) == (key in self.model)

    @rule()
    def clear(self) -> None:
        self.cache.clear()
        self.model.clear()

    @invariant()
    def bytes_are_the_sum_of_the_kept_sizes(self) -> None:
        if not hasattr(self, "cache"):
            return
        assert self.cache.bytes == sum(s for s, _ in self.model.values())
        assert self.cache.bytes <= self.cache.max_bytes
        assert len(self.cache) == len(self.model)
        assert (self.cache.hits, self.cache.misses, self.cache.evictions) == (self.hits, self.misses, self.evictions)


_MONOTONIC = budget.time.monotonic
TestCacheMachine = CacheMachine.TestCase
