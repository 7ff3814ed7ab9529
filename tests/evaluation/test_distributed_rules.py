"""Rules of the single-process side of torch.distributed setup, shard names and files, and the progress line
(hand-written cases; no process group, no subprocess)."""

from __future__ import annotations

import datetime
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from res2net.evaluation import distributed as D


def test_batch_ranges_hand_cases_and_refusal() -> None:
    """Rule: batches of b images from 0 (the last one shorter); a batch size under 1 is refused with its value."""
    assert D.batch_ranges(7, 3) == [range(0, 3), range(3, 6), range(6, 7)]
    assert D.batch_ranges(6, 3) == [range(0, 3), range(3, 6)]
    assert D.batch_ranges(0, 1) == []
    assert D.batch_ranges(1, 1) == [range(0, 1)]
    with pytest.raises(ValueError, match=r"^batch size must be >= 1, got 0$"):
        D.batch_ranges(5, 0)


def test_shard_batches_hand_cases_and_refusal() -> None:
    """Rule: 7 batches on 3 ranks are [0, 3), [3, 5), [5, 7) (the first ranks take the extra); a rank outside
    [0, world) is refused with both numbers."""
    assert [D.shard_batches(7, r, 3) for r in range(3)] == [range(0, 3), range(3, 5), range(5, 7)]
    assert [D.shard_batches(2, r, 3) for r in range(3)] == [range(0, 1), range(1, 2), range(2, 2)]
    assert D.shard_batches(4, 0, 1) == range(0, 4)
    for rank, world in ((3, 3), (-1, 3), (0, 0)):
        with pytest.raises(ValueError, match=rf"^rank {rank} is outside a world of {world}$"):
            D.shard_batches(4, rank, world)


def test_shard_name_pads_rank_world_and_batch() -> None:
    """Rule: shard-<rank, 3 digits>-of-<world, 3 digits>-b<batch, 7 digits>.npz, which SHARD_RE reads back."""
    assert D.shard_name(2, 16, 35) == "shard-002-of-016-b0000035.npz"
    m = D.SHARD_RE.match(D.shard_name(12, 100, 1234567))
    assert m is not None and m.groups() == ("012", "100", "1234567")
    for bad in ("shard-1-of-2-b3.npzx", "xshard-1-of-2-b3.npz", "shard-1-of-2-3.npz", ".shard-1-of-2-b3.npz.9.tmp"):
        assert D.SHARD_RE.match(bad) is None


def test_write_shard_is_a_deflated_npz_with_fixed_dates_and_no_temp_left(tmp_path: Path) -> None:
    """Rule: one .npy member per column (sorted names), deflated, dated 1980-01-01 so equal rows give equal bytes;
    the folder is created and only the final file remains."""
    folder = tmp_path / "a" / "b"
    rows = {"z": np.arange(3), "a": np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])[:, ::-1]}
    path = D.write_shard(folder, 1, 2, 5, rows)
    assert path == folder / "shard-001-of-002-b0000005.npz"
    assert sorted(p.name for p in folder.iterdir()) == [path.name]
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        assert [i.filename for i in infos] == ["a.npy", "z.npy"]
        assert all(i.compress_type == zipfile.ZIP_DEFLATED and i.date_time == (1980, 1, 1, 0, 0, 0) for i in infos)
        a = np.lib.format.read_array(io.BytesIO(z.read("a.npy")), allow_pickle=False)
    np.testing.assert_array_equal(a, rows["a"])
    again = D.write_shard(tmp_path / "c", 1, 2, 5, rows)
    assert again.read_bytes() == path.read_bytes()
    with pytest.raises(ValueError):
        D.write_shard(tmp_path / "d", 0, 1, 0, {"o": np.array([object()], dtype=object)})


def test_done_and_read_shards_on_a_missing_folder_and_foreign_files(tmp_path: Path) -> None:
    """Rule: a missing folder has no finished batch; files not named like a shard are ignored; the first file of a
    batch (in name order) is the one read."""
    assert D.done_batches(tmp_path / "none") == set() and D.read_shards(tmp_path / "none") == {}
    D.write_shard(tmp_path, 1, 2, 4, {"x": np.array([1])})
    D.write_shard(tmp_path, 0, 3, 4, {"x": np.array([2])})
    (tmp_path / "notes.npz").write_bytes(b"")
    assert D.done_batches(tmp_path) == {4}
    out = D.read_shards(tmp_path)
    assert list(out) == [4] and out[4]["x"].tolist() == [2]


def test_pick_device_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: auto is the CPU without CUDA; cuda without a visible device is refused in words; cpu stays cpu."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert D.pick_device("auto", 3) == torch.device("cpu")
    assert D.pick_device("cpu", 3) == torch.device("cpu")
    with pytest.raises(RuntimeError, match=r"^--device cuda:1: no CUDA device is visible to this process$"):
        D.pick_device("cuda:1")


def test_pick_device_cuda_takes_the_local_rank_unless_indexed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: with CUDA, auto and cuda mean cuda:<local_rank>; an explicit index is kept."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert D.pick_device("auto", 2) == torch.device("cuda", 2)
    assert D.pick_device("cuda", 3) == torch.device("cuda", 3)
    assert D.pick_device("cuda") == torch.device("cuda", 0)
    assert D.pick_device("cuda:1", 3) == torch.device("cuda", 1)


def test_setup_without_world_size_is_one_ungrouped_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: no WORLD_SIZE (or 1) means rank 0 of 1, local rank 0, on the picked device, no group; teardown and the
    barrier then do nothing."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for env in ({}, {"WORLD_SIZE": "1", "LOCAL_RANK": "0"}):
        ctx = D.setup("cpu", env)
        assert ctx == D.Context(0, 1, 0, torch.device("cpu"), False) and ctx.main
        ctx.barrier()
        D.teardown(ctx)
    assert not D.Context(rank=1).main


def test_progress_line_hand_case(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: rank 0 prints done/total, a 30-wide bar, images/s and the ETA, at most once a second until the end,
    ending with a newline; disabled or empty progress prints nothing."""
    clock = iter([0.0, 2.0, 2.5, 4.0, 0.0, 0.0, 0.0, 0.0])
    monkeypatch.setattr(D.time, "monotonic", lambda: next(clock))
    out = io.StringIO()
    p = D.Progress(10, True, "m", stream=out)
    p.update(4)  # t=2: 2 img/s, 6 left -> 3 s
    assert out.getvalue() == "\rm [############..................] 4/10 2.0 img/s ETA 3 s"
    p.update(1)  # t=2.5: under a second since the last line, not the end
    assert out.getvalue().count("\r") == 1
    p.update(5)  # t=4: the end
    assert out.getvalue().endswith("\rm [##############################] 10/10 2.5 img/s ETA 0 s\n")
    quiet = io.StringIO()
    for p in (D.Progress(3, False, stream=quiet), D.Progress(0, True, stream=quiet)):
        p.update(3)
    assert quiet.getvalue() == ""


class _FakeDist:
    """Stands in for torch.distributed: records the calls, reports a given rank and world size."""

    def __init__(self, initialized: bool = False, rank: int = 2, world: int = 3) -> None:
        self.initialized, self.rank, self.world, self.calls = initialized, rank, world, []

    def is_initialized(self) -> bool:
        return self.initialized

    def init_process_group(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        self.calls.append(("init", args, kwargs))

    def get_rank(self) -> int:
        return self.rank

    def get_world_size(self) -> int:
        return self.world

    def barrier(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        self.calls.append(("barrier", args, kwargs))

    def destroy_process_group(self) -> None:
        self.calls.append(("destroy", (), {}))


def test_setup_reads_its_given_environment_not_the_process_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: a given env is the only one read (WORLD_SIZE, LOCAL_RANK); device defaults to auto."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert D.setup(env={}) == D.Context(0, 1, 0, torch.device("cpu"), False)


def test_setup_on_cpus_joins_a_gloo_group_with_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: WORLD_SIZE >= 2 on CPUs starts a gloo group (timeout $RES2NET_DIST_TIMEOUT_MIN minutes, default 12 h)
    unless one is already started, and the context holds the group's rank and size, the local rank and grouped."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    fake = _FakeDist()
    monkeypatch.setattr(D, "dist", fake)
    ctx = D.setup("cpu", {"WORLD_SIZE": "2", "LOCAL_RANK": "1", "RES2NET_DIST_TIMEOUT_MIN": "2.5"})
    assert ctx == D.Context(2, 3, 1, torch.device("cpu"), True) and not ctx.main
    assert fake.calls == [("init", ("gloo",), {"timeout": datetime.timedelta(minutes=2.5)})]
    fake.calls.clear()
    D.setup("cpu", {"WORLD_SIZE": "3"})
    assert fake.calls == [("init", ("gloo",), {"timeout": datetime.timedelta(hours=12)})]
    fake.calls.clear()
    fake.initialized = True
    assert D.setup("cpu", {"WORLD_SIZE": "3"}) == D.Context(2, 3, 0, torch.device("cpu"), True)
    assert fake.calls == []


def test_setup_on_gpus_is_deterministic_and_joins_an_nccl_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: on CUDA the process uses cuda:<LOCAL_RANK>, sets deterministic cuBLAS (unless already set), cuDNN
    without benchmarking and deterministic algorithms (warn only), and joins an NCCL group bound to its device."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    picked, algorithms = [], []
    monkeypatch.setattr(torch.cuda, "set_device", picked.append)
    monkeypatch.setattr(torch, "use_deterministic_algorithms", lambda *a, **k: algorithms.append((a, k)))
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    fake = _FakeDist()
    monkeypatch.setattr(D, "dist", fake)
    ctx = D.setup("cuda", {"WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    cuda1 = torch.device("cuda", 1)
    assert ctx == D.Context(2, 3, 1, cuda1, True)
    assert picked == [cuda1] and algorithms == [((True,), {"warn_only": True})]
    assert torch.backends.cudnn.benchmark is False and torch.backends.cudnn.deterministic is True
    assert D.os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert fake.calls == [("init", ("nccl",), {"timeout": datetime.timedelta(hours=12), "device_id": cuda1})]
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    assert D.setup("cuda", {}) == D.Context(0, 1, 0, torch.device("cuda", 0), False)
    assert D.os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"


def test_barrier_and_teardown_only_act_in_a_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: a grouped barrier names the GPU on CUDA and none on CPUs; teardown ends a started group only."""
    fake = _FakeDist(initialized=True)
    monkeypatch.setattr(D, "dist", fake)
    D.Context(device=torch.device("cuda", 1), grouped=True).barrier()
    D.Context(grouped=True).barrier()
    D.Context(device=torch.device("cuda", 1)).barrier()
    assert fake.calls == [("barrier", (), {"device_ids": [1]}), ("barrier", (), {})]
    fake.calls.clear()
    D.teardown(D.Context())
    assert fake.calls == []
    D.teardown(D.Context(grouped=True))
    assert fake.calls == [("destroy", (), {})]
    fake.calls.clear()
    fake.initialized = False
    D.teardown(D.Context(grouped=True))
    assert fake.calls == []


def test_read_shards_refuses_pickled_objects(tmp_path: Path) -> None:
    """Rule: shard files are read without unpickling, so a column of Python objects is refused, not run."""
    np.savez(tmp_path / D.shard_name(0, 1, 0), x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        D.read_shards(tmp_path)


class _Stream(io.StringIO):
    """A text stream that counts flushes."""

    flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        super().flush()


def _progress(monkeypatch: pytest.MonkeyPatch, times: list[float], total: int, **kw) -> tuple[D.Progress, _Stream]:  # noqa: ANN003
    clock = iter(times)
    monkeypatch.setattr(D.time, "monotonic", lambda: next(clock))
    out = _Stream()
    return D.Progress(total, True, stream=out, **kw), out


def test_progress_timing_edges(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: the first update prints; later ones print once at least 1 s passed since the last line, or at the end
    (even within that second); each line is flushed; the rate counts from the start; no label means none."""
    p, out = _progress(monkeypatch, [100.0, 101.5, 102.5, 102.9, 103.0], 4)
    p.update(1)  # t=101.5: first line, 1 img in 1.5 s
    assert out.getvalue() == "\r [#######.......................] 1/4 0.7 img/s ETA 4 s" and out.flushes >= 1
    p.update(1)  # t=102.5: exactly 1 s later
    assert out.getvalue().count("\r") == 2
    p.update(1)  # t=102.9: 0.4 s later
    assert out.getvalue().count("\r") == 2
    p.update(1)  # t=103.0: the end, 0.5 s after the last line
    assert out.getvalue().endswith("\r [##############################] 4/4 1.3 img/s ETA 0 s\n")
    one, out = _progress(monkeypatch, [50.0, 50.5], 1)
    one.update(1)  # a one-image share prints; 0.5 s since the start -> 2 img/s
    assert out.getvalue() == "\r [##############################] 1/1 2.0 img/s ETA 0 s\n"


def test_progress_eta_is_infinite_without_a_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: with nothing done yet the ETA is inf; a slow rate (under 1 img/s) still gives a finite ETA."""
    p, out = _progress(monkeypatch, [10.0, 12.0, 14.0], 3)
    p.update(0)
    assert out.getvalue().endswith("0/3 0.0 img/s ETA inf s")
    p.update(1)  # 1 img in 4 s: 0.25 img/s, 2 left -> 8 s
    assert out.getvalue().endswith("1/3 0.2 img/s ETA 8 s")


def test_setup_without_env_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: with no env given, the process environment is read (torchrun sets WORLD_SIZE and LOCAL_RANK there)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    fake = _FakeDist()
    monkeypatch.setattr(D, "dist", fake)
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("LOCAL_RANK", "2")
    monkeypatch.delenv("RES2NET_DIST_TIMEOUT_MIN", raising=False)
    assert D.setup("cpu") == D.Context(2, 3, 2, torch.device("cpu"), True)


def test_progress_first_line_needs_no_previous_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: no line was printed before the first update (the last one counts as at time 0), so a clock reading
    1.5 s prints it."""
    p, out = _progress(monkeypatch, [0.0, 1.5], 4)
    p.update(1)
    assert out.getvalue().startswith("\r [#######")
