"""Every flag of ``python -m res2net.evaluate`` works or is refused with a message naming it, before any work."""

from __future__ import annotations

import pytest

from res2net.evaluation import cli


def _refused(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    with pytest.raises(SystemExit) as info:
        cli.main(argv)
    assert info.value.code not in (0, None)
    return capsys.readouterr().err + str(info.value.code)


@pytest.mark.parametrize(("argv", "message"), [
    (["--limit", "0"], "--limit must be at least 1, got 0"),
    (["--erf-inputs", "-1"], "--erf-inputs must be at least 0, got -1"),
    (["--erf-size", "0"], "--erf-size must be at least 1"),
    (["--threads", "0"], "--threads must be at least 1"),
    (["--workers", "0"], "--workers must be at least 1"),
    (["--knockout-images", "0"], "--knockout-images must be at least 1"),
    (["--knockout-means", "0"], "--knockout-means must be at least 1"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--loader-workers", "-1"], "--loader-workers must be at least 0"),
    (["--seeds", "-1"], "--seeds are training seeds"),
    (["--weights", "random"], "--weights apply to --dataset runs"),
    (["--baseline", "tiny_resnet26"], "--baseline apply to --dataset runs"),
    (["--dataset", "folder", "--models", "tiny_resnet26"], "--dataset needs --models (zoo names) and --data"),
    (["--dataset", "folder", "--data", "x", "--models", "tiny_resnet26", "--knockout-images", "5"],
     "--knockout-images apply to the embedded family"),
    (["--dataset", "folder", "--data", "x", "--models", "tiny_resnet26", "--knockout-means", "5"],
     "--knockout-means apply to the embedded family"),
    (["--models", "resnet50"], "resnet50 are not embedded models"),
    (["--models", "tiny_resnet26", "--seeds", "0", "97"], "no shipped weights for tiny_resnet26 seed(s) [97]"),
    (["--dataset", "folder", "--data", "x", "--models", "nonesuch"], "unknown model(s) nonesuch"),
    (["--dataset", "folder", "--data", "x", "--models", "tiny_resnet26", "--baseline", "resnet50"],
     "--baseline resnet50 is not among --models"),
    (["--dataset", "folder", "--data", "x", "--models", "tiny_resnet26", "resnet50"], "different input sizes"),
    (["--worker", "2"], "unrecognized arguments: --worker"),  # no abbreviations: --worker is not --workers
])
def test_bad_flags_are_refused_with_their_name(argv: list[str], message: str, capsys) -> None:
    assert message in _refused(argv, capsys)


def test_workers_under_torchrun_are_refused(monkeypatch, capsys) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert "under torchrun, set --nproc_per_node" in _refused(["--workers", "2"], capsys)


def test_workers_relaunch_drops_only_the_workers_flag() -> None:
    argv = ["--models", "a", "--workers", "3", "--limit", "5", "--workers=2", "--out", "x.json"]
    assert cli._without_workers(argv) == ["--models", "a", "--limit", "5", "--out", "x.json"]


def test_every_flag_has_help_and_a_default_that_passes_the_checks() -> None:
    ap = cli.parser()
    flags = [a for a in ap._actions if a.option_strings and a.dest != "help"]
    assert len(flags) == 17 and all(a.help for a in flags)  # a new flag gets a refusal case above
    cli._check(ap, ap.parse_args([]))  # the defaults (the shipped run) are accepted
