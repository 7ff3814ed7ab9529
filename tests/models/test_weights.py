"""Weight loading tested for real over HTTP on loopback: download, cache, mirrors, and every failure mode.

The server serves checkpoints this file makes (named ``<name>-<true sha256 prefix>.pth`` like torch.hub files), logs
each request and can answer 404, cut the connection mid-file, send wrong bytes, stall after a few bytes or drip one
byte at a time. TORCH_HOME points at a temp dir.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import pickle
import socket
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

import res2net
from res2net.models import weights
from res2net.models.weights import (
    ArchitectureMismatchError,
    CorruptCheckpointError,
    HashMismatchError,
    WeightsError,
    WeightsUnavailableError,
)
from res2net.models.zoo import CheckpointSource, get_spec

NAME = "tiny_res2net26_4s"


# ---------------------------------------------------------------------------------------------------------------
# Loopback server


class _State:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.modes: dict[str, str] = {}  # path -> 'ok' | '404' | 'cut' | 'wrong' | 'stall' | 'drip'
        self.log: list[str] = []
        self.url = ""
        self.release = threading.Event()  # ends stalling and dripping responses when a test is over


def _handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802  (http.server's naming)
            state.log.append(self.path)
            mode = state.modes.get(self.path, "ok")
            body = state.files.get(self.path)
            if body is None or mode == "404":
                self.send_error(404)
                return
            if mode == "wrong":  # same length, last byte flipped
                body = body[:-1] + bytes([body[-1] ^ 0xFF])
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if mode == "cut":
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if mode in ("stall", "drip"):
                self._slow(body, mode, state.release)
                return
            self.wfile.write(body)

        def _slow(self, body: bytes, mode: str, release: threading.Event) -> None:
            """Five bytes, then one byte every 0.2 s: for ever ('drip': the whole file would take hours), or for
            1.8 s and then nothing ('stall')."""
            self.close_connection = True
            t0 = time.monotonic()
            try:
                self.wfile.write(body[:5])
                self.wfile.flush()
                sent = 5
                while not release.wait(0.2) and sent < len(body):
                    if mode == "stall" and time.monotonic() - t0 > 1.8:
                        continue
                    self.wfile.write(body[sent:sent + 1])
                    self.wfile.flush()
                    sent += 1
            except OSError:  # the client gave up and closed the connection
                pass

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def server():
    state = _State()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def srv(server):
    server.files.clear()
    server.modes.clear()
    server.log.clear()
    yield server
    server.release.set()  # let a stalled or dripping handler of this test finish
    server.release = threading.Event()


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.delenv(weights.ENV_WEIGHTS, raising=False)
    monkeypatch.delenv(weights.ENV_MIRROR, raising=False)
    torch.set_num_threads(1)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints made here


def _random_model(seed: int, name: str = NAME) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = res2net.create_model(name)
    with torch.no_grad():  # non-trivial BN statistics so that buffers matter for the logits
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
    return model.eval()


def _to_bytes(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


@dataclasses.dataclass
class Checkpoint:
    data: bytes
    sha: str
    filename: str


def _checkpoint(data: bytes, stem: str = NAME) -> Checkpoint:
    sha = hashlib.sha256(data).hexdigest()
    return Checkpoint(data, sha, f"{stem}-{sha[:8]}.pth")


@pytest.fixture(scope="module")
def source():
    model = _random_model(seed=1)
    return model, _checkpoint(_to_bytes(model.state_dict()))


@pytest.fixture(scope="module")
def image():
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def _logits(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(x)


def _fresh() -> torch.nn.Module:
    return _random_model(seed=99)


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _unchanged(model: torch.nn.Module, before: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def _spec(base: str, ckpt: Checkpoint, folders: tuple[str, ...] = ("a", "b")):
    labels = ["official"] + [f"mirror {i}" for i in range(1, len(folders))]
    sources = tuple(CheckpointSource(f"{base}/{d}/{ckpt.filename}", ckpt.filename, ckpt.sha[:8], label)
                    for d, label in zip(folders, labels, strict=True))
    return dataclasses.replace(get_spec(NAME), checkpoints=sources)


def _publish(srv: _State, ckpt: Checkpoint, folders: tuple[str, ...] = ("a", "b")) -> None:
    for d in folders:
        srv.files[f"/{d}/{ckpt.filename}"] = ckpt.data


def _cache_entries() -> list[str]:
    folder = weights.cache_dir()
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# ---------------------------------------------------------------------------------------------------------------
# Happy paths


def test_cache_dir_honours_torch_home(tmp_path):
    assert weights.cache_dir() == tmp_path / "torch_home" / "hub" / "checkpoints"


def test_download_reports_progress_and_reproduces_the_source_logits(srv, source, image):
    src_model, ckpt = source
    _publish(srv, ckpt)
    spec = _spec(srv.url, ckpt)
    model = _fresh()
    assert not torch.equal(_logits(model, image), _logits(src_model, image))
    assert weights.weight_status(spec) == "downloadable"

    calls: list[tuple[int, int | None, str]] = []
    weights.load_pretrained(model, spec, progress=lambda d, t, lab: calls.append((d, t, lab)))

    assert srv.log == [f"/a/{ckpt.filename}"]
    assert len(calls) > 1
    done = [c[0] for c in calls]
    assert done == sorted(set(done)), "bytes reported must strictly increase"
    assert calls[-1][:2] == (len(ckpt.data), len(ckpt.data))
    assert {c[2] for c in calls} == {"official"}
    assert torch.equal(_logits(model, image), _logits(src_model, image))
    cached = weights.cache_dir() / ckpt.filename
    assert cached.read_bytes() == ckpt.data
    assert _cache_entries() == [ckpt.filename]
    assert weights.weight_status(spec) == "cached"


def test_cache_hit_makes_no_request(srv, source, image):
    src_model, ckpt = source
    _publish(srv, ckpt)
    spec = _spec(srv.url, ckpt)
    weights.load_pretrained(_fresh(), spec)
    srv.log.clear()
    model = weights.load_pretrained(_fresh(), spec)
    assert srv.log == []
    assert torch.equal(_logits(model, image), _logits(src_model, image))


def test_file_placed_in_cache_by_hand_is_used_offline(srv, source, image):
    src_model, ckpt = source
    spec = _spec(f"http://127.0.0.1:{_closed_port()}", ckpt)
    weights.cache_dir().mkdir(parents=True)
    (weights.cache_dir() / ckpt.filename).write_bytes(ckpt.data)
    model = weights.load_pretrained(_fresh(), spec)
    assert torch.equal(_logits(model, image), _logits(src_model, image))


def test_mirror_used_after_404(srv, source, image):
    src_model, ckpt = source
    _publish(srv, ckpt)
    srv.modes[f"/a/{ckpt.filename}"] = "404"
    labels: set[str] = set()
    model = weights.load_pretrained(_fresh(), _spec(srv.url, ckpt), progress=lambda d, t, lab: labels.add(lab))
    assert srv.log == [f"/a/{ckpt.filename}", f"/b/{ckpt.filename}"]
    assert labels == {"mirror 1"}
    assert torch.equal(_logits(model, image), _logits(src_model, image))


def test_mirror_env_var_is_tried_first(srv, source, image, monkeypatch):
    src_model, ckpt = source
    _publish(srv, ckpt, ("m",))
    monkeypatch.setenv(weights.ENV_MIRROR, f"{srv.url}/m/")
    spec = _spec(f"http://127.0.0.1:{_closed_port()}", ckpt)
    model = weights.load_pretrained(_fresh(), spec)
    assert srv.log == [f"/m/{ckpt.filename}"]
    assert torch.equal(_logits(model, image), _logits(src_model, image))


def test_wrappers_and_module_prefix_are_accepted(tmp_path, source, image):
    src_model, _ = source
    path = tmp_path / "wrapped.pth"
    wrapped = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in src_model.state_dict().items()}}
    torch.save(wrapped, path)
    model = weights.load_checkpoint_file(_fresh(), path, get_spec(NAME))
    assert torch.equal(_logits(model, image), _logits(src_model, image))


def test_missing_num_batches_tracked_is_tolerated(tmp_path, source, image):
    """Old releases lack BatchNorm's num_batches_tracked; they must still load strictly."""
    src_model, _ = source
    state = {k: v for k, v in src_model.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "old.pth"
    torch.save(state, path)
    model = weights.load_checkpoint_file(_fresh(), path)
    assert torch.equal(_logits(model, image), _logits(src_model, image))


# ---------------------------------------------------------------------------------------------------------------
# Failures: nothing half-done, nothing corrupt left behind


def test_hash_mismatch_leaves_no_cache_entry_and_no_temp_file(srv, source):
    _, ckpt = source
    _publish(srv, ckpt, ("a",))
    srv.modes[f"/a/{ckpt.filename}"] = "wrong"
    model = _fresh()
    before = _snapshot(model)
    with pytest.raises(HashMismatchError) as info:
        weights.load_pretrained(model, _spec(srv.url, ckpt, ("a",)))
    err = info.value
    assert err.expected == ckpt.sha[:8]
    assert len(err.actual) == 64 and not err.actual.startswith(ckpt.sha[:8])
    assert ckpt.sha[:8] in str(err) and err.actual in str(err)
    assert _cache_entries() == []
    assert _unchanged(model, before)


def test_hash_mismatch_on_official_falls_back_to_a_good_mirror(srv, source, image):
    src_model, ckpt = source
    _publish(srv, ckpt)
    srv.modes[f"/a/{ckpt.filename}"] = "wrong"
    model = weights.load_pretrained(_fresh(), _spec(srv.url, ckpt))
    assert srv.log == [f"/a/{ckpt.filename}", f"/b/{ckpt.filename}"]
    assert torch.equal(_logits(model, image), _logits(src_model, image))
    assert _cache_entries() == [ckpt.filename]


def test_connection_cut_mid_file_leaves_nothing(srv, source):
    _, ckpt = source
    _publish(srv, ckpt, ("a",))
    srv.modes[f"/a/{ckpt.filename}"] = "cut"
    calls: list[int] = []
    model = _fresh()
    before = _snapshot(model)
    with pytest.raises(WeightsUnavailableError) as info:
        weights.load_pretrained(model, _spec(srv.url, ckpt, ("a",)), progress=lambda d, t, lab: calls.append(d))
    assert calls and max(calls) < len(ckpt.data)
    assert f"{srv.url}/a/{ckpt.filename}" in str(info.value)
    assert _cache_entries() == []
    assert _unchanged(model, before)


def test_cut_on_official_then_mirror_succeeds(srv, source, image):
    src_model, ckpt = source
    _publish(srv, ckpt)
    srv.modes[f"/a/{ckpt.filename}"] = "cut"
    model = weights.load_pretrained(_fresh(), _spec(srv.url, ckpt))
    assert torch.equal(_logits(model, image), _logits(src_model, image))
    assert _cache_entries() == [ckpt.filename]


@pytest.mark.parametrize("kind", ["random-bytes", "list-pickle", "truncated", "dict-of-strings"])
def test_corrupt_downloads_raise_and_are_removed_from_cache(srv, source, kind):
    src_model, good = source
    data = {
        "random-bytes": os.urandom(50_000),
        "list-pickle": _to_bytes([torch.zeros(3), torch.ones(2)]),
        "truncated": good.data[: len(good.data) // 3],
        "dict-of-strings": _to_bytes({"conv1.weight": "not a tensor"}),
    }[kind]
    ckpt = _checkpoint(data)  # the hash is right: the file itself is bad
    _publish(srv, ckpt, ("a",))
    model = _fresh()
    before = _snapshot(model)
    with pytest.raises(CorruptCheckpointError) as info:
        weights.load_pretrained(model, _spec(srv.url, ckpt, ("a",)))
    assert ckpt.filename in str(info.value)
    reason = {"random-bytes": "not a readable torch checkpoint", "truncated": "not a readable torch checkpoint",
              "list-pickle": "holds a list, not a state dict", "dict-of-strings": "not a state dict of tensors"}[kind]
    assert reason in str(info.value)
    assert _cache_entries() == []
    assert _unchanged(model, before)


def test_object_pickle_is_refused_by_weights_only(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        # an arbitrary class, which weights_only must refuse to unpickle
        pickle.dump({"conv1.weight": Path("/etc/passwd")}, f, protocol=2)
    with pytest.raises(CorruptCheckpointError, match="weights_only") as info:
        weights.load_checkpoint_file(_fresh(), path)
    assert "PosixPath" in str(info.value)


def test_foreign_checkpoint_lists_keys_and_leaves_model_unchanged(srv):
    resnet = _random_model(seed=5, name="tiny_resnet26")
    ckpt = _checkpoint(_to_bytes(resnet.state_dict()))
    _publish(srv, ckpt, ("a",))
    model = _fresh()
    before = _snapshot(model)
    with pytest.raises(ArchitectureMismatchError) as info:
        weights.load_pretrained(model, _spec(srv.url, ckpt, ("a",)))
    err, msg = info.value, str(info.value)
    assert "layer1.0.convs.0.weight" in err.missing and "layer1.0.conv2.weight" in err.unexpected
    assert "layer1.0.convs.0.weight" in msg and "layer1.0.conv2.weight" in msg
    assert "missing keys" in msg and "unexpected keys" in msg
    assert _unchanged(model, before)
    assert isinstance(err, WeightsError)


def test_shape_mismatch_is_listed(tmp_path):
    other = _random_model(seed=6, name="tiny_res2net26_2s")  # same key names in part, other widths
    path = tmp_path / "s2.pth"
    torch.save(other.state_dict(), path)
    model = _fresh()
    before = _snapshot(model)
    with pytest.raises(ArchitectureMismatchError) as info:
        weights.load_checkpoint_file(model, path)
    err = info.value
    assert err.mismatched and all(a != b for _, a, b in err.mismatched)
    key, got, want = err.mismatched[0]
    assert key in str(err) and str(list(got)) in str(err) and str(list(want)) in str(err)
    assert "layer1.0.convs.1.weight" in err.missing  # s=2 has one 3x3 conv per block, s=4 has three
    assert _unchanged(model, before)


def test_no_network_names_every_url_and_where_to_put_the_file(source):
    _, ckpt = source
    base = f"http://127.0.0.1:{_closed_port()}"
    spec = _spec(base, ckpt)
    with pytest.raises(WeightsUnavailableError) as info:
        weights.load_pretrained(_fresh(), spec, timeout=2.0)
    err, msg = info.value, str(info.value)
    for w in spec.checkpoints:
        assert w.url in msg
    assert [u for u, _ in err.attempts] == [w.url for w in spec.checkpoints]
    assert ckpt.filename in msg
    assert str(weights.cache_dir() / ckpt.filename) in msg
    assert weights.ENV_WEIGHTS in msg
    assert err.cache_path == weights.cache_dir() / ckpt.filename
    assert _cache_entries() == []


@pytest.mark.parametrize("mode", ["stall", "drip"])
def test_download_deadline_bounds_a_slow_server_and_leaves_nothing(srv, source, mode):
    """Both end at the 2 s deadline for the whole file, with its own message and nothing in the cache.

    'drip' (a byte per 0.2 s) keeps a 1 s per-read timeout alive for ever. 'stall' goes silent 1.8 s in, under a
    10 s per-read timeout: the read after the last byte must be cut at the deadline (0.2 s later), not when a
    fixed per-read limit runs out (the whole 10 s, or 2 s more even if that limit were capped by the deadline).
    """
    _, ckpt = source
    _publish(srv, ckpt, ("a",))
    srv.modes[f"/a/{ckpt.filename}"] = mode
    calls: list[int] = []
    model = _fresh()
    before = _snapshot(model)
    t0 = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as info:
        weights.load_pretrained(model, _spec(srv.url, ckpt, ("a",)), progress=lambda d, t, lab: calls.append(d),
                                timeout=10.0 if mode == "stall" else 1.0, deadline=2.0)
    elapsed = time.monotonic() - t0
    assert 1.9 < elapsed < 3.2, elapsed
    (url, error), = info.value.attempts
    assert url == f"{srv.url}/a/{ckpt.filename}"
    assert "deadline of 2 s exceeded" in error and "partial file was removed" in error
    arrived = calls[-1]
    assert 5 < arrived < 20  # five bytes, then about one per 0.2 s
    assert f"{arrived} of {len(ckpt.data)} bytes arrived" in error
    assert "deadline of 2 s exceeded" in str(info.value)
    assert _cache_entries() == []
    assert _unchanged(model, before)


def test_per_read_timeout_still_ends_a_stall_before_the_deadline(srv, source):
    _, ckpt = source
    _publish(srv, ckpt, ("a",))
    srv.modes[f"/a/{ckpt.filename}"] = "stall"
    calls: list[int] = []
    t0 = time.monotonic()
    with pytest.raises(WeightsUnavailableError) as info:
        weights.load_pretrained(_fresh(), _spec(srv.url, ckpt, ("a",)), progress=lambda d, t, lab: calls.append(d),
                                timeout=0.5, deadline=60.0)
    assert time.monotonic() - t0 < 10.0
    (_, error), = info.value.attempts
    assert f"no data for 0.5 s after {calls[-1]} of {len(ckpt.data)} bytes" in error and "deadline" not in error
    assert _cache_entries() == []


def test_deadline_comes_from_the_argument_then_the_environment(monkeypatch):
    monkeypatch.delenv(weights.ENV_DEADLINE, raising=False)
    assert weights.resolve_deadline() == 15 * 60
    monkeypatch.setenv(weights.ENV_DEADLINE, "2.5")
    assert weights.resolve_deadline() == 2.5
    assert weights.resolve_deadline(7) == 7.0
    monkeypatch.setenv(weights.ENV_DEADLINE, "soon")
    with pytest.raises(WeightsError, match=weights.ENV_DEADLINE):
        weights.resolve_deadline()
    with pytest.raises(WeightsError, match="positive"):
        weights.resolve_deadline(0)


def test_deadline_from_the_environment_applies_to_downloads(srv, source, monkeypatch):
    _, ckpt = source
    _publish(srv, ckpt, ("a",))
    srv.modes[f"/a/{ckpt.filename}"] = "drip"
    monkeypatch.setenv(weights.ENV_DEADLINE, "1")
    t0 = time.monotonic()
    with pytest.raises(WeightsUnavailableError, match="deadline of 1 s exceeded"):
        weights.load_pretrained(_fresh(), _spec(srv.url, ckpt, ("a",)), timeout=1.0)
    assert time.monotonic() - t0 < 6.0
    assert _cache_entries() == []


def test_corrupt_cached_file_is_moved_aside_and_fetched_again(srv, source, image):
    src_model, ckpt = source
    _publish(srv, ckpt)
    weights.cache_dir().mkdir(parents=True)
    (weights.cache_dir() / ckpt.filename).write_bytes(os.urandom(1000))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = weights.load_pretrained(_fresh(), _spec(srv.url, ckpt))
    assert any("moved aside" in str(w.message) for w in caught)
    assert srv.log == [f"/a/{ckpt.filename}"]
    assert torch.equal(_logits(model, image), _logits(src_model, image))
    assert _cache_entries() == [ckpt.filename, ckpt.filename + ".corrupt"]


# ---------------------------------------------------------------------------------------------------------------
# Local overrides and create_model(pretrained=<path>)


def test_env_file_override_wins_over_network(srv, source, image, tmp_path, monkeypatch):
    src_model, ckpt = source
    _publish(srv, ckpt)
    path = tmp_path / "my_weights.pth"
    path.write_bytes(ckpt.data)
    monkeypatch.setenv(weights.ENV_WEIGHTS, str(path))
    spec = _spec(srv.url, ckpt)
    assert weights.weight_status(spec) == "local"
    model = weights.load_pretrained(_fresh(), spec)
    assert srv.log == []
    assert torch.equal(_logits(model, image), _logits(src_model, image))


def test_env_directory_override_is_searched_for_the_source_filename(srv, source, image, tmp_path, monkeypatch):
    src_model, ckpt = source
    _publish(srv, ckpt)
    (tmp_path / ckpt.filename).write_bytes(ckpt.data)
    (tmp_path / "unrelated.pth").write_bytes(b"junk")
    monkeypatch.setenv(weights.ENV_WEIGHTS, str(tmp_path))
    model = weights.load_pretrained(_fresh(), _spec(srv.url, ckpt))
    assert srv.log == []
    assert torch.equal(_logits(model, image), _logits(src_model, image))


def test_env_directory_without_the_file_falls_back_to_download(srv, source, tmp_path, monkeypatch):
    _, ckpt = source
    _publish(srv, ckpt)
    monkeypatch.setenv(weights.ENV_WEIGHTS, str(tmp_path))
    weights.load_pretrained(_fresh(), _spec(srv.url, ckpt))
    assert srv.log == [f"/a/{ckpt.filename}"]


def test_env_file_of_another_registered_release_is_not_applied(srv, source, tmp_path, monkeypatch):
    _, ckpt = source
    _publish(srv, ckpt)
    other = tmp_path / get_spec("res2net50_26w_4s").checkpoints[0].filename
    other.write_bytes(b"never read")
    monkeypatch.setenv(weights.ENV_WEIGHTS, str(other))
    weights.load_pretrained(_fresh(), _spec(srv.url, ckpt))
    assert srv.log == [f"/a/{ckpt.filename}"]


def test_local_release_file_is_hash_checked_and_kept(source, tmp_path):
    _, ckpt = source
    path = tmp_path / ckpt.filename
    path.write_bytes(ckpt.data[:-1] + bytes([ckpt.data[-1] ^ 0xFF]))
    with pytest.raises(HashMismatchError):
        weights.load_pretrained(_fresh(), _spec("http://127.0.0.1:9", ckpt), weights_path=path)
    assert path.exists(), "a user's own file is never deleted"


def test_missing_override_path_is_an_error(source, tmp_path, monkeypatch):
    _, ckpt = source
    monkeypatch.setenv(weights.ENV_WEIGHTS, str(tmp_path / "nope.pth"))
    with pytest.raises(WeightsUnavailableError, match="nope.pth"):
        weights.load_pretrained(_fresh(), _spec("http://127.0.0.1:9", ckpt))


def test_create_model_pretrained_path(source, image, tmp_path):
    src_model, ckpt = source
    path = tmp_path / "anything.pth"
    path.write_bytes(ckpt.data)
    model = res2net.create_model(NAME, pretrained=path)
    assert not model.training
    assert torch.equal(_logits(model, image), _logits(src_model, image))


def test_create_model_pretrained_truncated_path(source, tmp_path):
    _, ckpt = source
    path = tmp_path / "cut.pth"
    path.write_bytes(ckpt.data[:1000])
    with pytest.raises(CorruptCheckpointError, match="cut.pth"):
        res2net.create_model(NAME, pretrained=str(path))
    assert path.exists()


# ---------------------------------------------------------------------------------------------------------------
# Embedded models, status helpers


def _embedded_spec(path: Path):
    # an absolute asset path is kept as is when joined onto assets/ (pathlib semantics)
    source = CheckpointSource(None, path.name, None, "embedded (assets/weights)", asset=str(path))
    return dataclasses.replace(get_spec(NAME), checkpoints=(source,))


def test_embedded_missing_names_the_path_and_the_training_command(tmp_path):
    path = tmp_path / "weights" / f"{NAME}.pth"
    spec = _embedded_spec(path)
    assert weights.weight_status(spec) == "embedded-missing"
    with pytest.raises(WeightsUnavailableError) as info:
        weights.load_pretrained(_fresh(), spec)
    assert str(path) in str(info.value) and "python -m res2net.train" in str(info.value)


def test_embedded_is_checked_against_its_model_card(source, image, tmp_path):
    src_model, ckpt = source
    path = tmp_path / f"{NAME}.pth"
    path.write_bytes(ckpt.data)
    card = path.with_suffix(".json")
    card.write_text(f'{{"name": "{NAME}", "sha256": "{ckpt.sha}"}}')
    spec = _embedded_spec(path)
    assert weights.weight_status(spec) == "embedded"
    model = weights.load_pretrained(_fresh(), spec)
    assert torch.equal(_logits(model, image), _logits(src_model, image))

    card.write_text(f'{{"name": "{NAME}", "sha256": "{"0" * 64}"}}')
    with pytest.raises(HashMismatchError, match="model card"):
        weights.load_pretrained(_fresh(), spec)


def test_read_model_card_of_unknown_model_is_none():
    assert weights.read_model_card("no_such_model_here") is None


def test_network_available(srv):
    assert weights.network_available(srv.url, timeout=2.0) is True
    assert weights.network_available(f"http://127.0.0.1:{_closed_port()}", timeout=2.0) is False
    assert weights.network_available("not a url", timeout=0.5) is False
