"""A weights file a user loads for a zoo model, for that user's session only.

The file is checked like the library checks every file (a safe load, strict keys and shapes, the release hash when it
is named like a release), then kept under its SHA-256 in a folder private to this server process (removed when the
process ends). Nothing global changes: the session records which file each model uses, and models are cached by
(name, device, weights identity), so two sessions can use different weights for the same model at once.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from res2net.models import weights

PREFIX = "file:"  # a weights identity naming a user file: 'file:<sha256>'
ENV_FILES_MB = "RES2SCOPE_WEIGHT_FILES_MB"
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
    import res2net

    if not data:
        raise weights.CorruptCheckpointError(f"{filename} is empty")
    spec = res2net.get_spec(name)
    digest = hashlib.sha256(data).hexdigest()
    folder = private_dir()
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        # a file named like a release keeps its name, so that the library checks the release hash
        named = filename if filename in {w.filename for w in spec.weights} else "checked.pth"
        candidate = Path(tmp) / named
        candidate.write_bytes(data)
        weights.load_checkpoint_file(res2net.create_model(name, pretrained=False), candidate, spec)
        dest = folder / f"{digest}.pth"
        if dest.is_file():
            dest.touch()  # the same content again: it counts as the newest
        else:
            os.replace(candidate, dest)
    prune(folder, files_budget(), keep=dest)
    return LocalWeights(Path(filename).name, digest)


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
