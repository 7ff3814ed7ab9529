"""The CI rule of ``conftest.py``: with ``CI=true`` every kind of skip fails the run; without it, skips stay skips."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).parent / "conftest.py").read_text()

TESTS = '''
import pytest

def test_runs():
    assert True

@pytest.mark.skip(reason="marked skip")
def test_marked():
    pass

@pytest.mark.skipif(True, reason="condition holds")
def test_skipif():
    pass

def test_skips_inside():
    pytest.skip("data folder absent")

def test_importorskip_inside():
    pytest.importorskip("no_such_module_anywhere_xyz")

@pytest.fixture
def needs_thing():
    pytest.skip("fixture says no")

def test_fixture_skip(needs_thing):
    pass

@pytest.mark.xfail(reason="known bug", strict=False)
def test_expected_failure():
    assert False
'''

MODULE_SKIP = '''
import pytest
pytest.importorskip("no_such_module_anywhere_xyz")

def test_never_collected():
    pass
'''


@pytest.mark.parametrize(("value", "workers"), [("true", ()), ("1", ()), ("TRUE", ()), ("true", ("-n", "1"))],
                         ids=["true", "1", "TRUE", "true-xdist"])
def test_every_skip_fails_in_ci(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, value: str,
                                workers: tuple[str, ...]) -> None:
    """Also under pytest-xdist (as scripts/test runs), where reports travel from a worker process to the controller."""
    monkeypatch.setenv("CI", value)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_some=TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", *workers)
    # skips decided at setup (marks, fixtures) fail as errors, skips inside a test as failures; xfail is no skip
    result.assert_outcomes(passed=1, failed=2, errors=3, xfailed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*skipped in CI, where every test must run*data folder absent*"])


@pytest.mark.parametrize("value", [None, "false", "0", ""])
def test_skips_stay_skips_outside_ci(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                     value: str | None) -> None:
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_some=TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=5, xfailed=1)
    assert result.ret == pytest.ExitCode.OK


def test_module_level_skip_fails_collection_in_ci(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_mod=MODULE_SKIP)
    monkeypatch.delenv("CI", raising=False)
    assert pytester.runpytest("-p", "no:cacheprovider").ret == pytest.ExitCode.NO_TESTS_COLLECTED
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*skipped in CI*no_such_module_anywhere_xyz*"])
