"""Fixtures shared by several test modules, the CI rule that a skipped test is a failed one, and the CPU share of
each pytest-xdist worker."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # helpers.py, for the test modules in subfolders


def _worker_threads() -> int | None:
    """Torch threads for this pytest-xdist worker: the CPUs divided among the workers, so that N workers on N cores
    do not each start N threads and stall one another. None outside xdist (torch's default)."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not workers:
        return None
    return max(1, (os.cpu_count() or 1) // int(workers))


# The test files that take longest, measured (CPU time per file), run first: pytest-xdist with ``--dist loadfile
# --no-loadscope-reorder`` (scripts/test) hands files to the workers in this order, so no long file starts last and
# keeps one worker busy after the other is done. Files not listed follow in their usual order.
SLOWEST_FIRST = (
    "tests/evaluation/test_pipeline.py",
    "tests/dashboard/test_browser.py",
    "tests/evaluation/test_distributed.py",
    "tests/dashboard/test_app.py",
    "tests/evaluation/test_knockout_study.py",
    "tests/models/test_models.py",
    "tests/dashboard/test_serving_memory.py",
    "tests/dashboard/test_app_readability.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {f: i for i, f in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: the rest keep their order


def pytest_configure(config: pytest.Config) -> None:
    threads = _worker_threads()
    if threads is not None:
        torch.set_num_threads(threads)
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))  # for the subprocesses a test starts


def in_ci() -> bool:
    """Whether this run is CI's (``CI`` is "true" or "1", as ``.ci/run``'s environment sets it)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def _skip_reason(longrepr: object) -> str:
    """The reason of a skip report (pytest keeps it as (file, line, "Skipped: reason"))."""
    return str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)


def _fail_skip(report: pytest.TestReport | pytest.CollectReport) -> None:
    """In CI a skip hides a test that did not run (missing data, browser, package): report it as a failure."""
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every test must run: {_skip_reason(report.longrepr)}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> pytest.TestReport:
    """skip marks, ``pytest.skip`` in a test or fixture, and ``importorskip`` inside a test."""
    report = yield
    _fail_skip(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> pytest.CollectReport:
    """Module-level ``pytest.skip(allow_module_level=True)`` and ``importorskip`` skip at collection."""
    report = yield
    _fail_skip(report)
    return report


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tests on one torch thread: on shared CPUs it avoids oversubscription stalls."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
