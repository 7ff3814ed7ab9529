"""A weights file the user has on disk, for any zoo model: checked like the library checks every file (a safe load,
strict keys and shapes, the release hash when it is named like a release), then kept where ``create_model`` looks
(the ``RES2NET_WEIGHTS`` directory) so that every page uses it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from res2net import weights

DEFAULT_DIR = Path.home() / ".cache" / "res2scope" / "weights"


def weights_dir() -> Path:
    """Where user files go: the ``RES2NET_WEIGHTS`` directory, or ``DEFAULT_DIR`` (then named in that variable).

    A ``RES2NET_WEIGHTS`` that names a single file is left alone: the user chose that file for every model.
    """
    current = os.environ.get(weights.ENV_WEIGHTS)
    if current:
        where = Path(current).expanduser()
        if where.is_file():
            raise weights.WeightsError(f"{weights.ENV_WEIGHTS} names one file ({where}); point it at a directory to "
                                       "add files from the page")
        return where
    return DEFAULT_DIR


def install(name: str, data: bytes, filename: str) -> Path:
    """Check ``data`` as weights of zoo model ``name`` and keep it as ``<dir>/<name>.pth``; raises ``WeightsError``
    (the model and the directory untouched) when it is not a checkpoint or does not fit the model."""
    import res2net

    if not data:
        raise weights.CorruptCheckpointError(f"{filename} is empty")
    spec = res2net.get_spec(name)
    folder = weights_dir()
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".pth", dir=folder)
    tmp_path = Path(tmp)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        checked = tmp_path if filename not in {w.filename for w in spec.weights} else tmp_path.with_name(filename)
        if checked != tmp_path:  # a release file: keep its name for the hash check
            tmp_path.rename(checked)
            tmp_path = checked
        weights.load_checkpoint_file(res2net.create_model(name, pretrained=False), tmp_path, spec)
        dest = folder / f"{name}.pth"
        tmp_path.replace(dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
    os.environ.setdefault(weights.ENV_WEIGHTS, str(folder))
    return dest
