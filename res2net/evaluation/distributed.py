"""torch.distributed around the evaluation: process setup, deterministic shards, shard files, resume, progress.

Without ``WORLD_SIZE`` in the environment there is one process and no process group; under ``torchrun`` each
rank joins the group (NCCL with ``set_device(LOCAL_RANK)`` on GPUs, gloo on CPUs). Work is cut into fixed
batches of the sorted image list; each rank takes a contiguous, balanced range of batches (sizes differ by at
most one batch, no padding, no shuffle), so every image is scored in the same batch whatever the number of
processes and the per-image rows are identical. After each batch a rank writes that batch's rows to its own
shard file (``shard-<rank>-of-<world>-b<batch>.npz``, temp file then atomic rename). A restarted run skips every
batch already in any shard file, whichever rank wrote it (restarts may renumber ranks); rank 0 merges the files.
No collective runs inside the loop: the ranks meet only at the final barrier.
"""

from __future__ import annotations

import datetime
import io
import os
import re
import sys
import time
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

__all__ = ["Context", "setup", "teardown", "batch_ranges", "shard_batches", "write_shard", "read_shards",
           "done_batches", "Progress", "pick_device", "shard_name"]

SHARD_RE = re.compile(r"^shard-(\d+)-of-(\d+)-b(\d+)\.npz$")
# Ranks meet once, at the end; after a restart one rank may have nothing left while another has most of its
# share, so the wait can be as long as a whole shard: hours on CPUs. $RES2NET_DIST_TIMEOUT_MIN overrides it.
TIMEOUT_MIN = 12 * 60


@dataclass(frozen=True)
class Context:
    """Where this process stands: rank, world size, local rank, its device, and whether a group was started."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    grouped: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.grouped:
            if self.device.type == "cuda":
                dist.barrier(device_ids=[self.device.index])
            else:
                dist.barrier()


def pick_device(device: str, local_rank: int = 0) -> torch.device:
    """``auto``: this rank's local GPU when there is one, else the CPU; ``cuda`` means ``cuda:<local_rank>``."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"--device {device}: no CUDA device is visible to this process")
        dev = torch.device("cuda", local_rank if dev.index is None else dev.index)
    return dev


def setup(device: str = "auto", env: Mapping[str, str] | None = None) -> Context:
    """One process without ``WORLD_SIZE``; else join the torchrun group (NCCL on GPUs, gloo on CPUs)."""
    env = os.environ if env is None else env
    world = int(env.get("WORLD_SIZE", "1"))
    local = int(env.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local)
    if dev.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS, before its first use
        torch.cuda.set_device(dev)
        torch.backends.cudnn.benchmark = False  # benchmarking picks algorithms per run: results would vary
        torch.backends.cudnn.deterministic = True
        # warn_only: the CUDA backward of adaptive average pooling (Grad-CAM through the head) has no deterministic
        # kernel; every image is in the same fixed batch whatever the world size, so only that op may vary
        torch.use_deterministic_algorithms(True, warn_only=True)
    if world <= 1:
        return Context(0, 1, 0, dev, False)
    if not dist.is_initialized():
        timeout = datetime.timedelta(minutes=float(env.get("RES2NET_DIST_TIMEOUT_MIN", TIMEOUT_MIN)))
        if dev.type == "cuda":
            dist.init_process_group("nccl", timeout=timeout, device_id=dev)
        else:
            dist.init_process_group("gloo", timeout=timeout)
    return Context(dist.get_rank(), dist.get_world_size(), local, dev, True)


def teardown(ctx: Context) -> None:
    if ctx.grouped and dist.is_initialized():
        dist.destroy_process_group()


def batch_ranges(n: int, batch_size: int) -> list[range]:
    """The fixed batches of ``n`` sorted images: [0, b), [b, 2b), ... (the last one shorter)."""
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    return [range(s, min(n, s + batch_size)) for s in range(0, n, batch_size)]


def shard_batches(n_batches: int, rank: int, world: int) -> range:
    """Rank ``rank``'s contiguous range of batch numbers: balanced (sizes differ by at most one), no padding."""
    if not 0 <= rank < world:
        raise ValueError(f"rank {rank} is outside a world of {world}")
    base, extra = divmod(n_batches, world)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (1 if rank < extra else 0))


def shard_name(rank: int, world: int, batch: int) -> str:
    return f"shard-{rank:03d}-of-{world:03d}-b{batch:07d}.npz"


def write_shard(folder: str | os.PathLike, rank: int, world: int, batch: int, rows: Mapping[str, np.ndarray]) -> Path:
    """Write one batch's rows (named equal-length columns) atomically: a temp file renamed into place."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / shard_name(rank, world, batch)
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for key in sorted(rows):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(rows[key]), allow_pickle=False)
            z.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0)), buf.getvalue(),
                       compress_type=zipfile.ZIP_DEFLATED)
    os.replace(tmp, path)
    return path


def _shard_files(folder: Path) -> Iterator[tuple[int, Path]]:
    if folder.is_dir():
        for p in sorted(folder.iterdir()):
            m = SHARD_RE.match(p.name)
            if m:
                yield int(m.group(3)), p


def done_batches(folder: str | os.PathLike) -> set[int]:
    """Batch numbers some rank already finished (a shard file exists; files appear only once complete)."""
    return {b for b, _ in _shard_files(Path(folder))}


def read_shards(folder: str | os.PathLike) -> dict[int, dict[str, np.ndarray]]:
    """Every finished batch's rows, by batch number (a batch written twice after a restart is read once)."""
    out: dict[int, dict[str, np.ndarray]] = {}
    for b, p in _shard_files(Path(folder)):
        if b not in out:
            with np.load(p, allow_pickle=False) as z:
                out[b] = {k: z[k] for k in z.files}
    return out


class Progress:
    """Rank 0's progress line: images done of its share, images/s and the ETA (other ranks stay silent)."""

    def __init__(self, total: int, enabled: bool, label: str = "", stream=sys.stderr) -> None:  # noqa: ANN001
        self.total, self.enabled, self.label, self.stream = total, enabled and total > 0, label, stream
        self.done, self.start, self.last = 0, time.monotonic(), 0.0

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if not self.enabled or (now - self.last < 1.0 and self.done < self.total):
            return
        self.last = now
        rate = self.done / max(now - self.start, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        width = 30
        fill = int(width * self.done / self.total)
        print(f"\r{self.label} [{'#' * fill}{'.' * (width - fill)}] {self.done}/{self.total} "
              f"{rate:.1f} img/s ETA {eta:.0f} s", end="" if self.done < self.total else "\n",
              file=self.stream, flush=True)
