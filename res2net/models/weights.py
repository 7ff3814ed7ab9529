"""Resolve, download, verify, cache and strictly load model weights; every failure is specific and loses nothing.

Words used here: a model's *weights* are its trained parameters; a *checkpoint* is a file holding them (a state
dict); a *checkpoint source* (``ModelSpec.checkpoints``) says where one can come from; a model's *weight status*
(``weight_status``) says where its checkpoint would be found right now. (Bootstrap resample weights live in
``res2net.metrics``, and a dashboard's "trained"/"random" choice is which weights a model is built with.)

Where a checkpoint comes from, first match wins:

1. a local override: the ``weights_path=`` argument of :func:`load_pretrained` (a file, or a directory holding
   the model's source file names), else the ``RES2NET_WEIGHTS`` environment variable (same meaning; a file there
   whose name is some registered model's release file applies to that model only, any other file to whichever
   model is loaded, so use a bare file only when one model is meant);
2. embedded models (a source with ``asset`` and no URL): the file under ``assets/``, checked against its model card;
3. the cache, ``torch.hub.get_dir()/checkpoints`` (``TORCH_HOME`` honoured, shared with torch.hub/torchvision),
   hash-checked once per process; a corrupt cached file is moved aside to ``<name>.corrupt`` with a warning;
4. the network: the model's sources in order (official, then mirrors). ``RES2NET_WEIGHTS_MIRROR`` names extra
   base URLs (comma-separated) tried first, each as ``<base>/<filename>`` with the release's hash — the one way to
   redirect downloads (a company mirror, a test server) without touching the model table.

Downloads stream to a temporary file in the cache directory while hashing and are renamed into place only after
the hash matches; on any failure the temporary file is removed. Checkpoints load with ``weights_only=True`` and
are checked key by key and shape by shape before the model is touched, then loaded with ``strict=True``.

Two limits bound a download: ``timeout`` (seconds one connect or read may wait for data) and ``deadline`` (seconds
for the whole file from one source; ``RES2NET_DOWNLOAD_DEADLINE`` or 15 min by default), so a server that sends a
byte now and then cannot hold a caller forever.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import socket
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from res2net.models.zoo import ASSETS_DIR, MODELS, OFFICIAL, CheckpointSource, ModelSpec, get_spec

__all__ = [
    "WeightsError", "WeightsUnavailableError", "HashMismatchError", "CorruptCheckpointError",
    "ArchitectureMismatchError", "cache_dir", "load_pretrained", "load_checkpoint_file", "load_state_dict_file",
    "read_model_card", "embedded_seeds", "embedded_asset", "weight_status", "network_available", "resolve_local",
    "ENV_WEIGHTS", "ENV_MIRROR",
    "resolve_deadline", "ENV_DEADLINE", "DEFAULT_TIMEOUT", "DEFAULT_DEADLINE",
]

ENV_WEIGHTS = "RES2NET_WEIGHTS"
ENV_MIRROR = "RES2NET_WEIGHTS_MIRROR"
ENV_DEADLINE = "RES2NET_DOWNLOAD_DEADLINE"
TRAIN_COMMAND = "python -m res2net.train"
CHUNK = 64 * 1024
DEFAULT_TIMEOUT = 30.0  # seconds one connect or read may wait for data
DEFAULT_DEADLINE = 15 * 60.0  # seconds for a whole file (ImageNet checkpoints are ~100 MB)
MAX_LISTED = 10

Progress = Callable[[int, "int | None", str], None]


class WeightsError(RuntimeError):
    """Base class of every weight-loading failure of this package."""


class WeightsUnavailableError(WeightsError):
    """No source could provide the file (no network, every URL failed, or a local/embedded file is missing)."""

    def __init__(self, message: str, filename: str = "", attempts: list[tuple[str, str]] | None = None,
                 cache_path: Path | None = None) -> None:
        super().__init__(message)
        self.filename = filename
        self.attempts = list(attempts or [])
        self.cache_path = cache_path


class HashMismatchError(WeightsError):
    """A file's SHA-256 differs from the one its source promises."""

    def __init__(self, message: str, expected: str = "", actual: str = "") -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class CorruptCheckpointError(WeightsError):
    """The file is truncated, not a torch checkpoint, or holds something other than a state dict of tensors."""


class ArchitectureMismatchError(WeightsError):
    """The checkpoint's keys or shapes do not fit the model (lists the first offenders of each kind)."""

    def __init__(self, message: str, missing: list[str], unexpected: list[str],
                 mismatched: list[tuple[str, tuple, tuple]]) -> None:
        super().__init__(message)
        self.missing = missing
        self.unexpected = unexpected
        self.mismatched = mismatched


# ----------------------------------------------------------------------------------------------------------------
# Paths, hashes, overrides


def cache_dir() -> Path:
    """The checkpoint cache: ``torch.hub.get_dir()/checkpoints`` (honours ``TORCH_HOME`` at call time)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _hash_ok(actual: str, expected: str | None) -> bool:
    """``expected`` is a full hex digest or a torch.hub file-name prefix; None means unknown (accepted)."""
    return expected is None or actual.lower().startswith(expected.lower())


_verified: dict[Path, tuple[int, int, str]] = {}
_verified_lock = threading.Lock()


def _verify_once(path: Path, expected: str | None) -> str | None:
    """Hash ``path`` unless this process already saw it unchanged; return the digest, or None when it mismatches."""
    st = path.stat()
    key = path.resolve()
    with _verified_lock:
        seen = _verified.get(key)
    if seen is not None and seen[:2] == (st.st_size, st.st_mtime_ns):
        digest = seen[2]
    else:
        digest = sha256_file(path)
    if not _hash_ok(digest, expected):
        return None
    with _verified_lock:
        _verified[key] = (st.st_size, st.st_mtime_ns, digest)
    return digest


def _registered_filenames() -> dict[str, str]:
    return {w.filename: name for name, s in MODELS.items() for w in s.checkpoints}


def _candidate_names(spec: ModelSpec) -> list[str]:
    names = [w.filename for w in spec.checkpoints]
    names += [f"{spec.name}.pth", f"{spec.name}.pt"]
    return list(dict.fromkeys(names))


def resolve_local(spec: ModelSpec, weights_path: str | os.PathLike | None = None) -> Path | None:
    """The local override file for ``spec`` (argument first, then ``RES2NET_WEIGHTS``), or None.

    A named override that does not exist is an error, not a silent fallback to the network.
    """
    if weights_path is not None:
        where, origin = Path(weights_path).expanduser(), "weights_path"
    elif os.environ.get(ENV_WEIGHTS):
        where, origin = Path(os.environ[ENV_WEIGHTS]).expanduser(), ENV_WEIGHTS
    else:
        return None
    if where.is_dir():
        for name in _candidate_names(spec):
            if (where / name).is_file():
                return where / name
        return None
    if where.is_file():
        owner = _registered_filenames().get(where.name)
        if origin == ENV_WEIGHTS and owner is not None and where.name not in _candidate_names(spec):
            return None  # a release file of another registered model
        return where
    raise WeightsUnavailableError(f"{origin} points at {where}, which is neither a file nor a directory")


def _expected_hash_for(spec: ModelSpec, path: Path) -> str | None:
    for w in spec.checkpoints:
        if w.filename == path.name and w.sha256:
            return w.sha256
    return None


def _mirror_sources(spec: ModelSpec) -> list[CheckpointSource]:
    bases = [b.strip() for b in os.environ.get(ENV_MIRROR, "").split(",") if b.strip()]
    released = [w for w in spec.checkpoints if w.url]
    if not bases or not released:
        return []
    ref = released[0]
    return [CheckpointSource(b.rstrip("/") + "/" + ref.filename, ref.filename, ref.sha256, f"mirror {b}")
            for b in bases]


def embedded_asset(name: str, seed: int = 0) -> str:
    """Path under ``assets/`` of an embedded model's weights for one training run: ``weights/<name>.pth`` for seed 0
    (the default run), ``weights/<name>-seed<k>.pth`` for the other runs of the same recipe."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return f"weights/{name}.pth" if seed == 0 else f"weights/{name}-seed{seed}.pth"


def embedded_seeds(name: str) -> list[int]:
    """The training runs (seeds) of an embedded model whose weights and card ship in ``assets/weights``."""
    found = []
    for card in sorted((ASSETS_DIR / "weights").glob(f"{name}*.json")):
        stem = card.stem
        if stem == name:
            found.append(0)
        elif stem.startswith(f"{name}-seed") and stem[len(name) + 5:].isdigit():
            found.append(int(stem[len(name) + 5:]))
    return sorted(s for s in found if (ASSETS_DIR / embedded_asset(name, s)).is_file())


def read_model_card(name: str, seed: int = 0) -> dict | None:
    """The embedded model's card (``assets/weights/<name>.json``, or ``<name>-seed<k>.json``), or None if absent."""
    return _read_card((ASSETS_DIR / embedded_asset(name, seed)).with_suffix(".json"))


def _read_card(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise WeightsError(f"model card {path} is unreadable: {e}") from e
    if not isinstance(card, dict):
        raise WeightsError(f"model card {path} must hold a JSON object, got {type(card).__name__}")
    return card


# ----------------------------------------------------------------------------------------------------------------
# Status helpers for the dashboard


def weight_status(name: str | ModelSpec) -> str:
    """'local' (override present), 'embedded', 'embedded-missing', 'cached' or 'downloadable'; touches no network."""
    spec = get_spec(name) if isinstance(name, str) else name
    try:
        if resolve_local(spec) is not None:
            return "local"
    except WeightsError:
        pass
    embedded = [w for w in spec.checkpoints if w.url is None and w.asset]
    if embedded:
        return "embedded" if any((ASSETS_DIR / w.asset).is_file() for w in embedded) else "embedded-missing"
    if any((cache_dir() / w.filename).is_file() for w in spec.checkpoints):
        return "cached"
    return "downloadable"


def network_available(url: str = OFFICIAL, timeout: float = 2.0) -> bool:
    """Whether a TCP connection to ``url``'s host opens within ``timeout`` seconds (never raises)."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if not parts.hostname:
            return False
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except Exception:  # noqa: BLE001  (a status probe: any failure means "not available")
        return False


# ----------------------------------------------------------------------------------------------------------------
# Download


def _print_progress(done: int, total: int | None, label: str) -> None:
    pct = f"{100 * done / total:5.1f}%" if total else f"{done / 1e6:.1f} MB"
    print(f"\r{label}: {pct}", end="\n" if total and done >= total else "", file=sys.stderr, flush=True)


@dataclass
class _Attempt:
    url: str
    error: str
    hash_error: HashMismatchError | None = None


def resolve_deadline(deadline: float | None = None) -> float:
    """``deadline`` if given, else ``$RES2NET_DOWNLOAD_DEADLINE``, else ``DEFAULT_DEADLINE``; seconds, positive."""
    origin = "deadline"
    if deadline is None:
        raw = os.environ.get(ENV_DEADLINE, "").strip()
        if not raw:
            return DEFAULT_DEADLINE
        origin = ENV_DEADLINE
        try:
            deadline = float(raw)
        except ValueError:
            raise WeightsError(f"{ENV_DEADLINE} must be a number of seconds, got {raw!r}") from None
    if not deadline > 0:  # also refuses NaN
        raise WeightsError(f"{origin} must be a positive number of seconds, got {deadline!r}")
    return float(deadline)


def _response_socket(response: object) -> socket.socket | None:
    """The socket under an ``http.client`` response (to bound each read by the deadline), or None."""
    sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def _download(source: CheckpointSource, dest: Path, progress: Progress | None, timeout: float,
              deadline: float = DEFAULT_DEADLINE) -> None:
    """Stream ``source.url`` to a temp file beside ``dest`` while hashing; rename only if complete and matching.

    Each connect/read waits at most ``timeout`` s and never past ``deadline`` s after the start; on either limit
    a ``TimeoutError`` says which one and how many bytes arrived, and the temp file is removed.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    start = time.monotonic()
    done = 0
    total: int | None = None

    def over_deadline() -> TimeoutError:
        of = f" of {total}" if total is not None else ""
        return TimeoutError(f"download deadline of {deadline:g} s exceeded after {time.monotonic() - start:.1f} s: "
                            f"{done}{of} bytes arrived; the partial file was removed")

    def wait_limit() -> float:
        left = deadline - (time.monotonic() - start)
        if left <= 0:
            raise over_deadline()
        return min(timeout, left)

    try:
        request = urllib.request.Request(source.url, headers={"User-Agent": "res2scope-weights/0.1"})
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=wait_limit()) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            sock = _response_socket(response)
            read = getattr(response, "read1", response.read)  # read1: one recv, never waits for a full chunk
            while True:
                limit = wait_limit()
                if sock is not None:
                    sock.settimeout(limit)
                try:
                    chunk = read(CHUNK)
                except TimeoutError:
                    if limit < timeout or time.monotonic() - start >= deadline:  # this read was cut by the deadline
                        raise over_deadline() from None
                    of = f" of {total}" if total is not None else ""
                    raise TimeoutError(f"no data for {timeout:g} s after {done}{of} bytes; "
                                       "the partial file was removed") from None
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total, source.label)
        if total is not None and done != total:
            raise ConnectionError(f"transfer cut short: received {done} of {total} bytes")
        actual = digest.hexdigest()
        if not _hash_ok(actual, source.sha256):
            raise HashMismatchError(
                f"{source.filename} from {source.url}: SHA-256 {actual} does not match the expected {source.sha256}; "
                "the file was discarded", expected=source.sha256 or "", actual=actual,
            )
        os.replace(tmp, dest)
        st = dest.stat()
        with _verified_lock:
            _verified[dest.resolve()] = (st.st_size, st.st_mtime_ns, actual)
    finally:
        tmp.unlink(missing_ok=True)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot connect ({exc.reason})"
    return f"{type(exc).__name__}: {exc}"


def _fetch(spec: ModelSpec, progress: Progress | None, timeout: float,
           deadline: float = DEFAULT_DEADLINE) -> tuple[Path, CheckpointSource]:
    """A verified file for ``spec`` from the cache or the network, with the source it stands for."""
    sources = _mirror_sources(spec) + [w for w in spec.checkpoints if w.url]
    if not sources:
        raise WeightsUnavailableError(f"{spec.name} has no downloadable weight source")
    folder = cache_dir()
    for source in sources:  # cache first: a hit costs no network request
        path = folder / source.filename
        if not path.is_file():
            continue
        if _verify_once(path, source.sha256) is not None:
            return path, source
        aside = path.with_name(path.name + ".corrupt")
        os.replace(path, aside)
        warnings.warn(f"cached {path} does not match its SHA-256 {source.sha256}; moved aside to {aside} "
                      "and downloading again", RuntimeWarning, stacklevel=3)
    attempts: list[_Attempt] = []
    for source in sources:
        path = folder / source.filename
        try:
            _download(source, path, progress, timeout, deadline)
            return path, source
        except HashMismatchError as e:
            attempts.append(_Attempt(source.url, str(e), e))
        except (OSError, http.client.HTTPException, ValueError) as e:  # URLError, timeouts, cut transfers
            attempts.append(_Attempt(source.url, _describe(e)))
    filename = sources[0].filename
    tried = "\n".join(f"  - {a.url}: {a.error}" for a in attempts)
    target = folder / filename
    where = (f"To install it by hand, download {filename} from one of the URLs above and put it at\n  {target}\n"
             f"or set {ENV_WEIGHTS} to that file or to a directory holding it "
             f"(e.g. export {ENV_WEIGHTS}=/path/to/dir); {ENV_MIRROR} adds a mirror base URL.")
    hashed = [a.hash_error for a in attempts if a.hash_error is not None]
    if hashed:
        msg = f"no verified copy of {filename} for {spec.name}; sources tried:\n{tried}\n{where}"
        raise HashMismatchError(msg, expected=hashed[0].expected, actual=hashed[0].actual)
    raise WeightsUnavailableError(
        f"could not download {filename} for {spec.name}; sources tried:\n{tried}\n{where}",
        filename=filename, attempts=[(a.url, a.error) for a in attempts], cache_path=target,
    )


# ----------------------------------------------------------------------------------------------------------------
# Reading and loading


def load_state_dict_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint safely (``weights_only=True``); return its plain state dict (wrappers, ``module.`` removed)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsUnavailableError(f"checkpoint file {path} does not exist", filename=path.name)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  (torch raises many types for bad files; all mean "not a checkpoint")
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        if found:
            raise CorruptCheckpointError(
                f"{path} holds Python objects ({found.group(1)}) besides tensors and containers; refusing to unpickle "
                "it (weights_only=True). Save a plain state dict: torch.save(model.state_dict(), path)"
            ) from e
        raise CorruptCheckpointError(
            f"{path} ({path.stat().st_size} bytes) is not a readable torch checkpoint (truncated, or not a zip/pickle "
            f"file): {_load_failure_reason(e)}"
        ) from e
    return _as_state_dict(obj, path)


def _load_failure_reason(e: BaseException) -> str:
    """The informative part of torch.load's error (its weights_only messages bury it under generic advice)."""
    text = str(e)
    found = re.search(r"WeightsUnpickler error:\s*(.+)", text)
    reason = found.group(1) if found else (text.splitlines()[0] if text else "empty or incomplete file")
    return f"{type(e).__name__}: {reason.strip()}"


def _as_state_dict(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model", "model_state_dict", "module"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping):
        raise CorruptCheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict (a mapping of "
                                     "parameter names to tensors)")
    bad = [(k, type(v).__name__) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        shown = ", ".join(f"{k!r}: {t}" for k, t in bad[:MAX_LISTED])
        raise CorruptCheckpointError(f"{path} is not a state dict of tensors; {len(bad)} entries are not "
                                     f"str -> Tensor, e.g. {shown}")
    if not obj:
        raise CorruptCheckpointError(f"{path} holds an empty state dict")
    state = dict(obj)
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _listing(items: list[str]) -> str:
    more = f" (+{len(items) - MAX_LISTED} more)" if len(items) > MAX_LISTED else ""
    return ", ".join(items[:MAX_LISTED]) + more


def check_state_dict(model: nn.Module, state: Mapping[str, torch.Tensor], origin: str = "checkpoint") -> dict:
    """Compare keys and shapes with ``model`` without touching it; return the dict ``load_state_dict`` should get.

    BatchNorm's ``num_batches_tracked`` (absent from old releases) is filled from the model when missing.
    """
    own = model.state_dict()
    full = dict(state)
    for key, value in own.items():
        if key.endswith("num_batches_tracked") and key not in full:
            full[key] = value
    missing = [k for k in own if k not in full]
    unexpected = [k for k in full if k not in own]
    mismatched = [(k, tuple(full[k].shape), tuple(own[k].shape)) for k in own
                  if k in full and full[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        parts = [f"{origin} does not fit {type(model).__name__}:"]
        if missing:
            parts.append(f"  {len(missing)} missing keys: {_listing(missing)}")
        if unexpected:
            parts.append(f"  {len(unexpected)} unexpected keys: {_listing(unexpected)}")
        if mismatched:
            shapes = [f"{k} (checkpoint {list(a)} vs model {list(b)})" for k, a, b in mismatched]
            parts.append(f"  {len(mismatched)} shape mismatches: {_listing(shapes)}")
        parts.append("  the model was left unchanged")
        raise ArchitectureMismatchError("\n".join(parts), missing, unexpected, mismatched)
    return full


def _load_into(model: nn.Module, path: Path, origin: str) -> None:
    state = check_state_dict(model, load_state_dict_file(path), origin)
    model.load_state_dict(state, strict=True)


def load_checkpoint_file(model: nn.Module, path: str | os.PathLike, spec: ModelSpec | None = None) -> nn.Module:
    """Load a local checkpoint into ``model`` (strict); a file named like one of ``spec``'s releases is hash-checked."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise WeightsUnavailableError(f"checkpoint file {path} does not exist", filename=path.name)
    expected = _expected_hash_for(spec, path) if spec is not None else None
    if expected is not None and _verify_once(path, expected) is None:
        actual = sha256_file(path)
        raise HashMismatchError(f"{path}: SHA-256 {actual} does not match the expected {expected} of "
                                f"{spec.name}'s release {path.name}", expected=expected, actual=actual)
    _load_into(model, path, str(path))
    return model


def _load_embedded(model: nn.Module, spec: ModelSpec, source: CheckpointSource, seed: int = 0) -> None:
    path = ASSETS_DIR / (source.asset if seed == 0 else embedded_asset(spec.name, seed))
    if not path.is_file():
        shipped = embedded_seeds(spec.name)
        raise WeightsUnavailableError(
            f"embedded weights for {spec.name} (seed {seed}) are missing: {path} does not exist. Train them with "
            f"`{TRAIN_COMMAND} --model {spec.name} --seed {seed}` (it writes {path} and its model card), or set "
            f"{ENV_WEIGHTS} to a checkpoint file" + (f"; shipped seeds: {shipped}" if shipped else ""),
            filename=path.name,
        )
    card = _read_card(path.with_suffix(".json"))
    expected = card.get("sha256") if card else None
    if expected and _verify_once(path, expected) is None:
        actual = sha256_file(path)
        raise HashMismatchError(f"{path}: SHA-256 {actual} does not match its model card's {expected}; "
                                f"retrain with `{TRAIN_COMMAND}` or restore the file", expected=expected, actual=actual)
    _load_into(model, path, str(path))


def load_pretrained(
    model: nn.Module,
    spec: ModelSpec | str,
    progress: Progress | bool | None = None,
    weights_path: str | os.PathLike | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    deadline: float | None = None,
    seed: int | None = None,
) -> nn.Module:
    """Resolve ``spec``'s weights (override, embedded, cache, network in that order) and load them strictly.

    ``progress(done_bytes, total_bytes | None, source_label)`` is called while downloading (True prints to stderr).
    ``timeout``: seconds one connect or read may wait; ``deadline``: seconds for a whole file from one source
    (None: ``$RES2NET_DOWNLOAD_DEADLINE`` or 15 min). ``seed``: which training run of an embedded model (None or
    0: the default run; see ``embedded_seeds``). On any failure a :class:`WeightsError` subclass is raised and
    ``model`` is unchanged.
    """
    spec = get_spec(spec) if isinstance(spec, str) else spec
    embedded = [w for w in spec.checkpoints if w.url is None and w.asset]
    if seed not in (None, 0):
        if not embedded:
            raise ValueError(f"{spec.name} has one released set of weights; seed= picks a training run of an "
                             "embedded model")
        _load_embedded(model, spec, embedded[0], seed)
        return model
    callback: Progress | None = _print_progress if progress is True else (progress or None)
    local = resolve_local(spec, weights_path)
    if local is not None:
        return load_checkpoint_file(model, local, spec)
    if embedded and not any(w.url for w in spec.checkpoints):
        _load_embedded(model, spec, embedded[0])
        return model
    path, source = _fetch(spec, callback, timeout, resolve_deadline(deadline))
    try:
        _load_into(model, path, f"{path} (from {source.label})")
    except CorruptCheckpointError as e:
        path.unlink(missing_ok=True)  # never leave an unreadable file in the cache
        raise CorruptCheckpointError(f"{e}\nThe cached copy was removed.") from e
    return model
