"""A weights file a user loads for a zoo model, for that user's session only: uploaded, or a path on the server.

The file is checked like the library checks every file (a safe load, strict keys and shapes, the release hash when it
is named like a release), then a copy is kept under its SHA-256 in a folder private to this server process (removed
when the process ends). A path on the server may be any readable file unless ``$RES2SCOPE_WEIGHTS_ROOTS`` lists the
folders (``os.pathsep``-separated) that paths must lie in, as a shared server should.
Nothing global changes: the session records which file each model uses, and models are cached by
(name, device, weights identity), so two sessions can use different weights for the same model at once.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from res2net.models import weights

PREFIX = "file:"  # a weights identity naming a user file: 'file:<sha256>'
ENV_FILES_MB = "RES2SCOPE_WEIGHT_FILES_MB"
ENV_ROOTS = "RES2SCOPE_WEIGHTS_ROOTS"
DEFAULT_FILES_MB = 2048  # checked files kept at once; the oldest go first (a session using one is told)


@dataclass(frozen=True)
class LocalWeights:
    """A checked user file: the name it was uploaded under and its content's SHA-256."""

    filename: str
    sha256: str

    @property
    def identity(self) -> str:
        """The weights identity that keys models and results computed with this file."""
        return PREFIX + self.sha256

    @property
    def label(self) -> str:
        """How pages and exports name these weights."""
        return f"your file {self.filename}, sha256 {self.sha256[:12]}"


@functools.cache
def private_dir() -> Path:
    """This process's folder of checked user files (owner-only, removed at exit)."""
    folder = Path(tempfile.mkdtemp(prefix="res2scope-weights-"))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def path_of(identity: str) -> Path:
    """Where the file of weights identity ``'file:<sha256>'`` is kept (it may be gone: check before use)."""
    if not is_local(identity):
        raise ValueError(f"{identity!r} is not a user file's weights identity")
    return private_dir() / f"{identity[len(PREFIX):]}.pth"


def is_local(identity: str) -> bool:
    """Whether a weights identity names a user file (not 'trained' or 'random')."""
    return identity.startswith(PREFIX)


def check(name: str, data: bytes, filename: str) -> LocalWeights:
    """Check ``data`` as weights of zoo model ``name`` and keep it under its SHA-256; raises ``WeightsError`` (nothing
    kept) when it is not a checkpoint or does not fit the model."""
    if not data:
        raise weights.CorruptCheckpointError(f"{filename} is empty (0 bytes)")
    with tempfile.TemporaryDirectory(dir=private_dir()) as tmp:
        candidate = _candidate(name, filename, Path(tmp))
        candidate.write_bytes(data)
        return _keep(name, candidate, filename)


def check_path(name: str, path_text: str) -> LocalWeights:
    """Check the server file at ``path_text`` as weights of ``name`` and keep a copy under its SHA-256 (the original
    may change or go later); raises ``WeightsError`` saying why a path cannot be used (nothing kept)."""
    path = server_path(path_text)
    with tempfile.TemporaryDirectory(dir=private_dir()) as tmp:
        candidate = _candidate(name, path.name, Path(tmp))
        try:
            shutil.copyfile(path, candidate)
        except OSError as e:
            raise weights.WeightsUnavailableError(f"{path} cannot be read: {e.strerror or e}",
                                                  filename=path.name) from None
        return _keep(name, candidate, path.name)


def server_path(path_text: str) -> Path:
    """The file a typed server path names, or ``WeightsUnavailableError`` saying why it is not one we may read."""
    text = path_text.strip().strip("'\"")
    if not text:
        raise weights.WeightsUnavailableError("no path was given: type the full path of a .pth file on the server")
    path = Path(text).expanduser()
    if not path.is_absolute():
        raise weights.WeightsUnavailableError(f"{text} is not a full path: start it with / (or ~ for your home "
                                              "folder)", filename=path.name)
    path = path.resolve()
    roots = allowed_roots()
    if roots is not None and not any(path.is_relative_to(r) for r in roots):
        raise weights.WeightsUnavailableError(
            f"{path} is outside the folders this server reads weights from ({', '.join(map(str, roots))}; "
            f"set by {ENV_ROOTS})", filename=path.name)
    if path.is_dir():
        raise weights.WeightsUnavailableError(f"{path} is a folder: give the weights file inside it",
                                              filename=path.name)
    if not path.is_file():
        raise weights.WeightsUnavailableError(f"there is no file {path} on the server", filename=path.name)
    size = path.stat().st_size
    if size == 0:
        raise weights.CorruptCheckpointError(f"{path} is empty (0 bytes)")
    if size > files_budget():
        raise weights.WeightsUnavailableError(
            f"{path} is {size / 2**20:.0f} MiB, more than the {files_budget() / 2**20:.0f} MiB this server keeps for "
            f"weights files ({ENV_FILES_MB})", filename=path.name)
    return path


def allowed_roots() -> list[Path] | None:
    """The folders server paths must lie in (``$RES2SCOPE_WEIGHTS_ROOTS``), or None when any path may be read."""
    raw = os.environ.get(ENV_ROOTS, "").strip()
    if not raw:
        return None
    return [Path(p).expanduser().resolve() for p in raw.split(os.pathsep) if p.strip()]


def _candidate(name: str, filename: str, folder: Path) -> Path:
    """Where a file is checked: a file named like a release keeps its name, so that the library checks its hash."""
    import res2net

    released = {w.filename for w in res2net.get_spec(name).checkpoints}
    return folder / (Path(filename).name if Path(filename).name in released else "checked.pth")


def _keep(name: str, candidate: Path, filename: str) -> LocalWeights:
    """Load ``candidate`` strictly into a fresh ``name`` model (raises ``WeightsError``), then keep it by SHA-256."""
    import res2net

    spec = res2net.get_spec(name)
    weights.load_checkpoint_file(res2net.create_model(name, pretrained=False), candidate, spec)
    digest = weights.sha256_file(candidate)
    folder = private_dir()
    dest = folder / f"{digest}.pth"
    if dest.is_file():
        dest.touch()  # the same content again: it counts as the newest
    else:
        os.replace(candidate, dest)
    prune(folder, files_budget(), keep=dest)
    return LocalWeights(Path(filename).name, digest)


def refusal(exc: weights.WeightsError) -> str:
    """Why a file was refused, in a few plain words for the page's headline (the full report goes under Details)."""
    if isinstance(exc, weights.ArchitectureMismatchError):
        counts = [f"{len(v)} {what}" for v, what in ((exc.missing, "keys missing"), (exc.unexpected, "unexpected"),
                                                     (exc.mismatched, "of other shapes")) if v]
        return "it does not fit the model (" + ", ".join(counts) + ")"
    if isinstance(exc, weights.HashMismatchError):
        return "it is named like the official release but its SHA-256 differs (a damaged or different file)"
    if isinstance(exc, weights.CorruptCheckpointError):
        text = str(exc)
        if "is empty (0 bytes)" in text:
            return "the file is empty"
        if "holds an empty state dict" in text:
            return "it holds an empty state dict"
        if "Python objects" in text:
            return "it holds Python objects besides tensors, which are not loaded (save a plain state dict)"
        if "not a state dict" in text or "holds a" in text:
            return "it is a checkpoint but not a state dict of tensors"
        return "it is not a readable PyTorch checkpoint (truncated, or another kind of file)"
    if isinstance(exc, weights.WeightsUnavailableError):
        return str(exc).strip("'\"")
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no reason given'}"


def files_budget() -> int:
    """Bytes of checked files kept at once: ``$RES2SCOPE_WEIGHT_FILES_MB`` (default 2048) MB."""
    raw = os.environ.get(ENV_FILES_MB, "").strip()
    try:
        mb = float(raw) if raw else DEFAULT_FILES_MB
    except ValueError:
        raise ValueError(f"{ENV_FILES_MB}={raw!r} is not a number") from None
    if mb <= 0:
        raise ValueError(f"{ENV_FILES_MB}={raw!r} must be positive")
    return int(mb * 2**20)


def prune(folder: Path, max_bytes: int, keep: Path) -> None:
    """Delete the oldest checked files in ``folder`` until they fit ``max_bytes``; ``keep`` (just checked) stays."""
    files = sorted((p for p in folder.glob("*.pth") if p != keep), key=lambda p: p.stat().st_mtime)
    total = sum(p.stat().st_size for p in files) + keep.stat().st_size
    for p in files:
        if total <= max_bytes:
            break
        total -= p.stat().st_size
        p.unlink(missing_ok=True)
