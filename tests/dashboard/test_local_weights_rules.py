"""Rules of a user's weights file, written down first and then tested on real files:

- every refusal names the file and why, and the page's one-line headline (``refusal``) maps each kind of bad file to
  its own plain words (empty, empty state dict, Python objects, not a state dict, unreadable, does not fit, hash);
- a server path is taken only if it is a full path to a non-empty file, inside ``$RES2SCOPE_WEIGHTS_ROOTS`` (a list
  joined by ``os.pathsep``) when that is set, and no larger than the files budget (MiB = 2**20 bytes, a file of
  exactly the budget fits); each refusal carries the file's name;
- a file is checked inside this process's private folder, under its own name only when that is a release's name.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
import torch

import res2net
from dashboard.serving import local_weights as lw
from res2net.models import weights

NAME = "tiny_resnet26"


def _saved(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


class _Thing:
    """A Python object a safe load refuses."""


@pytest.mark.parametrize(("data", "headline"), [
    (b"", "the file is empty"),
    (_saved({}), "it holds an empty state dict"),
    (_saved({"w": torch.zeros(1), "extra": _Thing()}),
     "it holds Python objects besides tensors, which are not loaded (save a plain state dict)"),
    (_saved([torch.zeros(1)]), "it is a checkpoint but not a state dict of tensors"),
    (_saved({"w": torch.zeros(1), "n": 3}), "it is a checkpoint but not a state dict of tensors"),
    (b"PK\x03\x04 not really a zip", "it is not a readable PyTorch checkpoint (truncated, or another kind of file)"),
])
def test_each_kind_of_bad_file_gets_its_own_headline(data: bytes, headline: str) -> None:
    with pytest.raises(weights.CorruptCheckpointError) as e:
        lw.check(NAME, data, "mine.pth")
    assert lw.refusal(e.value) == headline
    if not data:
        assert str(e.value) == "mine.pth is empty (0 bytes)"


def test_a_file_of_another_model_is_counted_by_kind_of_offence() -> None:
    other = res2net.create_model("tiny_res2net26_4s").state_dict()
    with pytest.raises(weights.ArchitectureMismatchError) as e:
        lw.check(NAME, _saved(other), "other.pth")
    exc = e.value
    parts = [f"{len(v)} {w}" for v, w in ((exc.missing, "keys missing"), (exc.unexpected, "unexpected"),
                                           (exc.mismatched, "of other shapes")) if v]
    assert len(parts) >= 2
    assert lw.refusal(exc) == "it does not fit the model (" + ", ".join(parts) + ")"
    only = weights.ArchitectureMismatchError("x", ["a", "b"], [], [("c", (1,), (2,))])
    assert lw.refusal(only) == "it does not fit the model (2 keys missing, 1 of other shapes)"
    assert lw.refusal(weights.ArchitectureMismatchError("x", [], ["u"], [])) == \
        "it does not fit the model (1 unexpected)"


def test_other_refusals_in_plain_words() -> None:
    assert lw.refusal(weights.HashMismatchError("x")) == \
        "it is named like the official release but its SHA-256 differs (a damaged or different file)"
    assert lw.refusal(weights.WeightsUnavailableError("'/srv/w.pth' is gone\"")) == "/srv/w.pth' is gone"
    assert lw.refusal(weights.WeightsUnavailableError("X.pth is gone X")) == "X.pth is gone X"  # only quotes go
    assert lw.refusal(weights.CorruptCheckpointError("/w.pth holds a list")) == \
        "it is a checkpoint but not a state dict of tensors"
    assert lw.refusal(weights.WeightsError("first line\nsecond line")) == "WeightsError: first line"
    assert lw.refusal(weights.WeightsError("")) == "WeightsError: no reason given"


def test_a_server_path_is_refused_with_the_reason_and_the_file_name(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(lw.ENV_ROOTS, raising=False)
    monkeypatch.delenv(lw.ENV_FILES_MB, raising=False)
    with pytest.raises(weights.WeightsUnavailableError) as e:
        lw.server_path("  '' ")
    assert str(e.value) == "no path was given: type the full path of a .pth file on the server"
    with pytest.raises(weights.WeightsUnavailableError) as e:
        lw.server_path("rel/w.pth")
    assert str(e.value) == "rel/w.pth is not a full path: start it with / (or ~ for your home folder)"
    assert e.value.filename == "w.pth"
    with pytest.raises(weights.WeightsUnavailableError) as e:
        lw.server_path(str(tmp_path))
    assert str(e.value) == f"{tmp_path.resolve()} is a folder: give the weights file inside it"
    assert e.value.filename == tmp_path.name
    gone = tmp_path / "gone.pth"
    with pytest.raises(weights.WeightsUnavailableError) as e:
        lw.server_path(f'"{gone}"')  # quotes as a file manager copies them
    assert str(e.value) == f"there is no file {gone.resolve()} on the server" and e.value.filename == "gone.pth"
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(weights.CorruptCheckpointError) as e:
        lw.server_path(str(empty))
    assert str(e.value) == f"{empty.resolve()} is empty (0 bytes)"
    one = tmp_path / "one.pth"
    one.write_bytes(b"x")
    assert lw.server_path(f"'{one}'") == one.resolve()  # one byte is not empty: the load judges it
    with pytest.raises(weights.WeightsUnavailableError) as e:
        lw.server_path("'Xw.pthX'")  # the quotes go, not the name's own letters
    assert str(e.value).startswith("Xw.pthX is not a full path")


def test_the_files_budget_is_in_mib_and_a_file_of_exactly_the_budget_fits(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(lw.ENV_ROOTS, raising=False)
    monkeypatch.setenv(lw.ENV_FILES_MB, "2")
    exact = tmp_path / "exact.pth"
    with exact.open("wb") as f:
        f.truncate(2 * 2**20)
    assert lw.server_path(str(exact)) == exact.resolve()
    big = tmp_path / "big.pth"
    with big.open("wb") as f:
        f.truncate(3 * 2**20)
    with pytest.raises(weights.WeightsUnavailableError) as e:
        lw.server_path(str(big))
    assert str(e.value) == (f"{big.resolve()} is 3 MiB, more than the 2 MiB this server keeps for weights files "
                            f"({lw.ENV_FILES_MB})")
    assert e.value.filename == "big.pth"


def test_roots_are_a_pathsep_list_and_a_path_outside_them_is_refused(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    a, b, c = (tmp_path / n for n in ("a", "b", "c"))
    for d in (a, b, c):
        d.mkdir()
        (d / "w.pth").write_bytes(b"x")
    monkeypatch.delenv(lw.ENV_FILES_MB, raising=False)
    monkeypatch.setenv(lw.ENV_ROOTS, f"{a}{os.pathsep}{b}")
    assert lw.allowed_roots() == [a.resolve(), b.resolve()]
    assert lw.server_path(str(b / "w.pth")) == (b / "w.pth").resolve()
    with pytest.raises(weights.WeightsUnavailableError) as e:
        lw.server_path(str(c / "w.pth"))
    assert str(e.value) == (f"{(c / 'w.pth').resolve()} is outside the folders this server reads weights from "
                            f"({a.resolve()}, {b.resolve()}; set by {lw.ENV_ROOTS})")
    assert e.value.filename == "w.pth"


def test_an_unreadable_server_file_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(lw.ENV_ROOTS, raising=False)
    monkeypatch.delenv(lw.ENV_FILES_MB, raising=False)
    f = tmp_path / "locked.pth"
    f.write_bytes(b"x")

    def denied(src: object, dst: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(lw.shutil, "copyfile", denied)
    with pytest.raises(weights.WeightsUnavailableError) as e:
        lw.check_path(NAME, str(f))
    assert str(e.value) == f"{f.resolve()} cannot be read: Permission denied" and e.value.filename == "locked.pth"


def test_a_file_is_checked_in_the_private_folder_under_a_release_name_only(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Path] = []

    def keep(name: str, candidate: Path, filename: str) -> lw.LocalWeights:
        seen.append(candidate)
        return lw.LocalWeights(filename, "0" * 64)

    monkeypatch.setattr(lw, "_keep", keep)
    released = sorted(w.filename for w in res2net.get_spec("resnet50").checkpoints)
    assert released
    lw.check("resnet50", b"x", f"downloads/{released[0]}")
    lw.check("resnet50", b"x", "my-weights.pth")
    assert [p.name for p in seen] == [released[0], "checked.pth"]
    assert all(p.parent.parent == lw.private_dir() for p in seen)


def test_a_server_file_is_checked_in_the_private_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: a server path's copy is checked inside the private folder (never in a shared temporary folder), like an
    upload."""
    monkeypatch.delenv(lw.ENV_ROOTS, raising=False)
    seen: list[Path] = []
    monkeypatch.setattr(lw, "_keep", lambda name, candidate, filename: seen.append(candidate)
                        or lw.LocalWeights(filename, "0" * 64))
    f = tmp_path / "mine.pth"
    f.write_bytes(b"x")
    lw.check_path("resnet50", str(f))
    assert len(seen) == 1 and seen[0].parent.parent == lw.private_dir()


def test_pruning_goes_on_when_another_session_deleted_a_file_first(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: two sessions may prune one folder at once; a file the other one deleted first is simply gone."""
    files = []
    for k in range(3):
        p = tmp_path / f"w{k}.pth"
        p.write_bytes(b"x" * 10)
        os.utime(p, (1000 + k, 1000 + k))
        files.append(p)
    real = Path.unlink

    def raced(self: Path, missing_ok: bool = False) -> None:
        if self.exists():
            real(self)  # the other session was first
        real(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", raced)
    lw.prune(tmp_path, 20, keep=files[2])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w1.pth", "w2.pth"]
