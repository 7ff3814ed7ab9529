"""Rules of the admission gate's sizing, written down first and then tested: how many slots a server gets and how
many torch threads each slot runs."""

from __future__ import annotations

import pytest

from dashboard.serving import admission


def test_a_gate_needs_one_slot_at_least() -> None:
    """Rule: a gate of no slots would never admit anyone: refused, with the number given."""
    with pytest.raises(ValueError, match=r"^workers must be at least 1, got 0$"):
        admission.FairGate(0)
    assert admission.FairGate(1).workers == 1


def test_the_environment_sets_any_whole_number_of_slots_from_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: ``$RES2SCOPE_WORKERS`` = n (a whole number >= 1) gives n slots, one included; anything else is refused."""
    for raw, n in (("1", 1), ("2", 2), (" 7 ", 7)):
        monkeypatch.setenv(admission.ENV_WORKERS, raw)
        assert admission.default_workers(cores=64) == n
    for raw in ("0", "-1", "1.5", "two"):
        monkeypatch.setenv(admission.ENV_WORKERS, raw)
        with pytest.raises(ValueError, match="must be a whole number of at least 1"):
            admission.default_workers()


def test_one_slot_per_two_cores_between_one_and_four(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: without the variable, a slot per two whole cores (an odd core left over adds none), at least one and at
    most four; a machine that does not report its cores counts as one core."""
    monkeypatch.delenv(admission.ENV_WORKERS, raising=False)
    assert [admission.default_workers(cores=c) for c in (1, 2, 3, 5, 6, 7, 8, 9, 64)] == [1, 1, 1, 2, 3, 3, 4, 4, 4]
    monkeypatch.setattr(admission.os, "cpu_count", lambda: None)
    assert admission.default_workers() == 1
    assert admission.threads_per_worker(1) == 1
    monkeypatch.setattr(admission.os, "cpu_count", lambda: 6)
    assert admission.default_workers() == 3 and admission.threads_per_worker(3) == 2


def test_threads_share_the_cores_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: each slot gets cores // slots torch threads (at least one), so all slots together use the cores once."""
    assert [admission.threads_per_worker(w, cores=8) for w in (1, 2, 3, 4, 8, 16)] == [8, 4, 2, 2, 1, 1]
    assert admission.threads_per_worker(3, cores=7) == 2


def test_the_server_has_one_gate_made_on_first_use_with_the_default_slots(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: every session shares one gate, made when first asked for, with ``default_workers()`` slots."""
    monkeypatch.setattr(admission, "_GATE", None)
    monkeypatch.setenv(admission.ENV_WORKERS, "3")
    first = admission.gate()
    assert isinstance(first, admission.FairGate) and first.workers == 3
    monkeypatch.setenv(admission.ENV_WORKERS, "1")
    assert admission.gate() is first  # made once: a later setting does not make a second gate
