"""Admission control for heavy work (decoding, CAMs, features, ERFs): a fixed number of slots, a first-come queue.

Sessions run on threads of one server; without a bound, eight sessions on two cores each start a forward pass
and all of them (and the server's own replies) slow down together. Requests are served in the order their page
runs started, so a page's later analyses do not queue behind pages that started after it (each page finishes in
turn instead of all finishing last). A session that has to wait is told its place.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

ENV_WORKERS = "RES2SCOPE_WORKERS"
POLL_S = 0.5  # how often a waiting session refreshes its place in the queue


class FairGate:
    """At most ``workers`` holders at once; waiters are admitted by (priority, arrival), lowest first.

    A thread that holds a slot and asks again (a cached result computed inside another's computation) goes on in
    the slot it holds, instead of waiting for a second one (with one worker, it would wait forever)."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self._cond = threading.Condition()
        self._queue: list[tuple[float, int]] = []  # sorted tickets
        self._arrivals = itertools.count()
        self._running = 0
        self._held = threading.local()  # per thread: how deep in nested slots it is (0: holds none)

    @property
    def running(self) -> int:
        return self._running

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def holds(self) -> bool:
        """Whether the calling thread holds a slot now."""
        return bool(getattr(self._held, "depth", 0))

    @contextmanager
    def slot(self, on_wait: Callable[[int], None] | None = None, priority: float = 0.0) -> Iterator[None]:
        """Hold one slot for the ``with`` body; while waiting, ``on_wait(n_ahead)`` is called when the place changes
        (``n_ahead``: holders and waiters that go first). ``priority``: lower goes first (the time the asking page
        run started); equal priorities go in arrival order."""
        if self.holds():  # this thread already holds a slot (a result needing another)
            self._held.depth += 1
            try:
                yield
            finally:
                self._held.depth -= 1
            return
        ticket = (priority, next(self._arrivals))
        last = None
        with self._cond:
            self._queue.append(ticket)
            self._queue.sort()
            try:
                while not (self._queue[0] == ticket and self._running < self.workers):
                    ahead = self._queue.index(ticket) + self._running
                    if on_wait is not None and ahead != last:
                        on_wait(ahead)  # may raise (a session's rerun interrupts its wait)
                        last = ahead
                    self._cond.wait(POLL_S)
            except BaseException:
                self._queue.remove(ticket)
                self._cond.notify_all()
                raise
            self._queue.pop(0)
            self._running += 1
            self._cond.notify_all()
        self._held.depth = 1
        try:
            yield
        finally:
            self._held.depth = 0
            with self._cond:
                self._running -= 1
                self._cond.notify_all()


def default_workers(cores: int | None = None) -> int:
    """``$RES2SCOPE_WORKERS``, else one slot per two cores (at least one, at most four)."""
    raw = os.environ.get(ENV_WORKERS, "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"{ENV_WORKERS}={raw!r} must be a whole number of at least 1")
        return int(raw)
    cores = cores or os.cpu_count() or 1
    return max(1, min(4, cores // 2))


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Torch threads for each slot so that all slots together use the cores once."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // workers)


_GATE: FairGate | None = None
_GATE_LOCK = threading.Lock()


def gate() -> FairGate:
    """The server's gate, made on first use with ``default_workers()`` slots."""
    global _GATE
    with _GATE_LOCK:
        if _GATE is None:
            _GATE = FairGate(default_workers())
        return _GATE
