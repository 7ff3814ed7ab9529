"""Tiny-ImageNet-100 reader: the archives decoded once into uint8 tensors, cached, with labels and object boxes.

Layout read (see ``res2net.data.download`` to build it from the original Tiny ImageNet zip): ``train.tar.gz``
(``train/<wnid>/<file>.JPEG``), ``val.tar.gz`` (``val/<wnid>/<file>.JPEG``), ``wnids.txt`` (class index = line
number), ``classes.tsv`` (wnid, ImageNet-1k index, names) and ``{train,val}_boxes.tsv`` (x0 y0 x1 y1, 64 px).

Box convention: the tsv files keep Tiny ImageNet's inclusive ends (x1 = 63 is the last column); every box this
module hands out (``read_boxes``, ``Split.boxes``, ``TinyImageNet[i]["box"]``) has exclusive ends, so it covers
columns x0 .. x1 - 1 and rows y0 .. y1 - 1, the convention of ``res2net.metrics.localize`` and the plots. The conversion
happens once, in ``read_boxes``; ``NO_BOX`` = (-1, -1, -1, -1) marks an image the box file does not list.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

__all__ = [
    "DataError", "Split", "TinyImageNet", "default_data_dir", "default_cache_dir", "load_split", "read_wnids",
    "read_classes", "read_boxes", "read_box_array", "inclusive_to_exclusive", "NO_BOX", "SPLITS", "IMAGE_SIZE",
]

SPLITS = ("train", "val")
IMAGE_SIZE = 64
CACHE_VERSION = 2  # 2: cached boxes have exclusive ends
NO_BOX = (-1, -1, -1, -1)
REPO_ROOT = Path(__file__).resolve().parents[2]


class DataError(RuntimeError):
    """The data folder is missing, incomplete or inconsistent."""


def default_data_dir() -> Path:
    """``$RES2NET_DATA`` if set, else ``<repo>/../shared/data/tiny-imagenet-100``."""
    env = os.environ.get("RES2NET_DATA")
    return Path(env).expanduser() if env else (REPO_ROOT.parent / "shared" / "data" / "tiny-imagenet-100").resolve()


def default_cache_dir() -> Path:
    """``$RES2NET_CACHE`` if set, else ``~/.cache/res2scope``: where decoded splits are kept."""
    env = os.environ.get("RES2NET_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "res2scope"


def _need(path: Path) -> Path:
    if not path.is_file():
        raise DataError(
            f"missing {path}; point RES2NET_DATA (or --data) at a tiny-imagenet-100 folder, "
            "or build one with `python -m res2net.data.download`"
        )
    return path


def read_wnids(data_dir: str | os.PathLike) -> list[str]:
    """The class WordNet ids in class-index order (line number of ``wnids.txt``)."""
    wnids = [w.strip() for w in _need(Path(data_dir) / "wnids.txt").read_text().splitlines() if w.strip()]
    if len(set(wnids)) != len(wnids):
        raise DataError(f"{data_dir}/wnids.txt lists a wnid twice")
    return wnids


def read_classes(data_dir: str | os.PathLike) -> list[str]:
    """Human-readable class names in class-index order (first WordNet name of ``classes.tsv``; wnid if absent)."""
    wnids = read_wnids(data_dir)
    names: dict[str, str] = {}
    path = Path(data_dir) / "classes.tsv"
    if path.is_file():
        for line in path.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 3:
                names[parts[0]] = parts[2].split(",")[0].strip()
    return [names.get(w, w) for w in wnids]


def inclusive_to_exclusive(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) with inclusive ends -> exclusive ends (x1 + 1, y1 + 1); a box with a negative value stays
    as it is, because negative values mark "no box" (``NO_BOX``), not a position."""
    x0, y0, x1, y1 = (int(v) for v in box)
    if min(x0, y0, x1, y1) < 0:
        return x0, y0, x1, y1
    return x0, y0, x1 + 1, y1 + 1


def read_boxes(data_dir: str | os.PathLike, split: str) -> dict[str, tuple[int, int, int, int]]:
    """File name -> object box (x0, y0, x1, y1) in 64x64 pixel coordinates with exclusive ends.

    ``<split>_boxes.tsv`` stores inclusive ends (x1 = 63 is the last column); this is the one place they are
    converted, so that every box of this package means the same pixels.
    """
    _check_split(split)
    out: dict[str, tuple[int, int, int, int]] = {}
    path = _need(Path(data_dir) / f"{split}_boxes.tsv")
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        try:
            x0, y0, x1, y1 = (int(v) for v in parts[-4:])
        except ValueError:
            raise DataError(f"{path}:{n}: expected four integer box coordinates, got {parts[-4:]}") from None
        out[parts[0]] = inclusive_to_exclusive((x0, y0, x1, y1))
    return out


def read_box_array(data_dir: str | os.PathLike, split: str) -> np.ndarray:
    """The split's object boxes as an (N, 4) int64 array (exclusive ends), images without a box left out."""
    boxes = np.array(list(read_boxes(data_dir, split).values()), dtype=np.int64).reshape(-1, 4)
    return boxes[boxes.min(1) >= 0]


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")


@dataclass
class Split:
    """One decoded split: ``images`` uint8 (N, 3, 64, 64), ``labels`` int64 (N,), ``files`` and ``boxes`` (N, 4).

    ``boxes`` are x0 y0 x1 y1 with exclusive ends (a box reaching the right edge has x1 = 64), ``NO_BOX`` (-1s)
    where the box file has no entry.
    """

    images: torch.Tensor
    labels: torch.Tensor
    files: list[str]
    boxes: torch.Tensor  # int16 (N, 4) x0 y0 x1 y1, exclusive ends; -1 where the box file has no entry
    wnids: list[str]

    def __len__(self) -> int:
        return len(self.files)


def _decode(data: bytes, name: str) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        im = im.convert("RGB")
        if im.size != (IMAGE_SIZE, IMAGE_SIZE):
            im = im.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)
        return np.asarray(im, dtype=np.uint8).transpose(2, 0, 1)


def _decode_archive(data_dir: Path, split: str, wnids: list[str]) -> Split:
    index = {w: i for i, w in enumerate(wnids)}
    items: list[tuple[str, int, np.ndarray]] = []
    with tarfile.open(_need(data_dir / f"{split}.tar.gz"), "r:gz") as tar:
        for member in tar:
            if not member.isfile() or not member.name.lower().endswith((".jpeg", ".jpg", ".png")):
                continue
            parts = Path(member.name).parts
            if len(parts) < 3 or parts[-2] not in index:
                raise DataError(f"{split}.tar.gz: {member.name} is not under {split}/<wnid listed in wnids.txt>/")
            fh = tar.extractfile(member)
            assert fh is not None
            items.append((parts[-1], index[parts[-2]], _decode(fh.read(), member.name)))
    if not items:
        raise DataError(f"{data_dir / (split + '.tar.gz')} holds no images")
    items.sort(key=lambda t: (t[1], t[0]))
    boxes = read_boxes(data_dir, split) if (data_dir / f"{split}_boxes.tsv").is_file() else {}
    files = [f for f, _, _ in items]
    return Split(
        images=torch.from_numpy(np.stack([a for _, _, a in items])),
        labels=torch.tensor([y for _, y, _ in items], dtype=torch.int64),
        files=files,
        boxes=torch.tensor([boxes.get(f, NO_BOX) for f in files], dtype=torch.int16),
        wnids=wnids,
    )


def _cache_key(data_dir: Path, split: str) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION}".encode())
    for name in (f"{split}.tar.gz", "wnids.txt", f"{split}_boxes.tsv"):
        p = data_dir / name
        if p.is_file():
            st = p.stat()
            h.update(f"{name}:{st.st_size}:{int(st.st_mtime)}".encode())
    h.update(str(data_dir.resolve()).encode())
    return h.hexdigest()[:16]


def _cache_prefix(data_dir: Path, split: str) -> str:
    """The name every cached decode of this folder's split starts with; the archive's state follows it."""
    return f"tiny-imagenet-100-{split}-{hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:8]}-"


def _prune_stale(cache: Path, split: str, prefix: str, keep: str) -> None:
    """Delete the earlier decodes of a split that ``keep`` replaces (the folder's archive changed: train's hold 614 MB
    each), and those in the old unprefixed naming, which nothing reads. Other folders' decodes and files being
    written stay."""
    old = re.compile(rf"tiny-imagenet-100-{split}-[0-9a-f]{{16}}\.(npy|json)")
    for p in cache.iterdir():
        if ".tmp." not in p.name and ((p.name.startswith(prefix) and p.stem != keep) or old.fullmatch(p.name)):
            p.unlink(missing_ok=True)


def load_split(
    split: str, data_dir: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None
) -> Split:
    """Decode ``split`` once (about 12 s for train) and keep it in the cache dir, in place of the folder's earlier
    decodes; later calls map that file instead of reading it (copy-on-write), so a caller that uses 2,000 of train's
    50,000 images reads only those pages."""
    _check_split(split)
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    if not data_dir.is_dir():
        raise DataError(f"data folder {data_dir} does not exist; set RES2NET_DATA or pass the folder explicitly")
    wnids = read_wnids(data_dir)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    prefix = _cache_prefix(data_dir, split)
    stem = cache / f"{prefix}{_cache_key(data_dir, split)}"
    npy, meta = stem.with_suffix(".npy"), stem.with_suffix(".json")
    if npy.is_file() and meta.is_file():
        m = json.loads(meta.read_text())
        return Split(
            images=torch.from_numpy(np.load(npy, mmap_mode="c")),
            labels=torch.tensor(m["labels"], dtype=torch.int64),
            files=m["files"],
            boxes=torch.tensor(m["boxes"], dtype=torch.int16),
            wnids=wnids,
        )
    s = _decode_archive(data_dir, split, wnids)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = stem.with_suffix(f".{os.getpid()}.tmp.npy")  # one per process: concurrent writers never share a file
        np.save(tmp, s.images.numpy())
        os.replace(tmp, npy)
        meta_tmp = stem.with_suffix(f".{os.getpid()}.tmp.json")
        meta_tmp.write_text(json.dumps({"labels": s.labels.tolist(), "files": s.files, "boxes": s.boxes.tolist()}))
        os.replace(meta_tmp, meta)
        _prune_stale(cache, split, prefix, stem.name)
    except OSError:
        pass  # a read-only cache only costs the decode next time
    return s


class TinyImageNet(torch.utils.data.Dataset):
    """Single images with label, box and file name, for inspection and evaluation (uint8 CHW tensors).

    ``item["box"]`` is (x0, y0, x1, y1) with exclusive ends, or ``NO_BOX`` when the image has none.
    """

    def __init__(self, split: str = "val", data_dir: str | os.PathLike | None = None,
                 cache_dir: str | os.PathLike | None = None) -> None:
        self.split_name = split
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self.data = load_split(split, self.data_dir, cache_dir)
        self.classes = read_classes(self.data_dir)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict:
        d = self.data
        return {
            "image": d.images[i], "label": int(d.labels[i]), "box": tuple(int(v) for v in d.boxes[i]),
            "file": d.files[i], "wnid": d.wnids[int(d.labels[i])], "class_name": self.classes[int(d.labels[i])],
        }
