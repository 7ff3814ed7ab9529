"""Data reader on the real Tiny-ImageNet-100 folder, and the download command against a loopback HTTP server."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from res2net.data.download import ChecksumError, DownloadError, build_layout, download
from res2net.data.tiny_imagenet import (
    NO_BOX,
    DataError,
    TinyImageNet,
    default_data_dir,
    inclusive_to_exclusive,
    load_split,
    read_boxes,
    read_wnids,
)

DATA = default_data_dir()
needs_data = pytest.mark.skipif(not (DATA / "val.tar.gz").is_file(),
                                reason=f"Tiny-ImageNet-100 not found at {DATA} (set RES2NET_DATA)")


# ------------------------------------------------------------------------------------------------ real data

@needs_data
def test_val_split_counts_labels_and_boxes() -> None:
    wnids = read_wnids(DATA)
    assert len(wnids) == 100 and wnids == sorted(wnids)
    val = load_split("val")
    assert val.images.shape == (5000, 3, 64, 64) and val.images.dtype == torch.uint8
    assert torch.bincount(val.labels, minlength=100).tolist() == [50] * 100
    # labels (from the archive's folders) agree with the independent box file's wnid column; the file's inclusive
    # ends (x1 = 63 is the last column) come out exclusive: one more at x1 and y1
    rows = {line.split("\t")[0]: line.split("\t") for line in (DATA / "val_boxes.tsv").read_text().splitlines()}
    for f, y, b in zip(val.files, val.labels.tolist(), val.boxes.tolist(), strict=True):
        assert rows[f][1] == wnids[y]
        x0, y0, x1, y1 = (int(v) for v in rows[f][2:6])
        assert b == [x0, y0, x1 + 1, y1 + 1]
    assert (val.boxes >= 0).all() and (val.boxes <= 64).all()
    assert (val.boxes[:, 2] > val.boxes[:, 0]).all() and (val.boxes[:, 3] > val.boxes[:, 1]).all()
    assert (val.boxes[:, 2] == 64).any() and (val.boxes[:, 3] == 64).any()  # boxes reaching the last column/row


@needs_data
def test_greyscale_images_become_rgb_with_equal_channels() -> None:
    val = load_split("val")
    pos = {f: i for i, f in enumerate(val.files)}
    found = 0
    with tarfile.open(DATA / "val.tar.gz") as tar:
        for m in tar:
            if not m.isfile():
                continue
            with Image.open(io.BytesIO(tar.extractfile(m).read())) as im:
                if im.mode != "L":
                    continue
                grey = np.asarray(im)
            img = val.images[pos[Path(m.name).name]].numpy()
            for c in range(3):
                np.testing.assert_array_equal(img[c], grey)
            found += 1
            if found == 5:
                break
    assert found == 5, "expected greyscale images in the val split (about 2% of Tiny ImageNet)"


@needs_data
def test_train_split_counts_and_labels_match_file_names() -> None:
    wnids = read_wnids(DATA)
    train = load_split("train")
    assert len(train) == 50_000 and train.images.shape[1:] == (3, 64, 64)
    assert torch.bincount(train.labels, minlength=100).tolist() == [500] * 100
    assert all(f.split("_")[0] == wnids[y] for f, y in zip(train.files, train.labels.tolist(), strict=True))
    assert (train.boxes >= 0).all() and (train.boxes <= 64).all()


def _tsv_box(path: Path, name: str) -> tuple[int, int, int, int]:
    """The inclusive box of ``name`` as the tsv stores it, read without the package."""
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if parts[0] == name:
            return tuple(int(v) for v in parts[-4:])
    raise AssertionError(f"{name} is not in {path}")


@needs_data
def test_dataset_item_carries_class_name_and_box() -> None:
    ds = TinyImageNet("val")
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and item["wnid"] == read_wnids(DATA)[item["label"]]
    assert isinstance(item["class_name"], str) and item["class_name"]
    x0, y0, x1, y1 = _tsv_box(DATA / "val_boxes.tsv", item["file"])
    assert item["box"] == (x0, y0, x1 + 1, y1 + 1)


@needs_data
def test_val_box_touching_the_right_edge_ends_at_64() -> None:
    """A tsv box whose x1 is 63 (the last column) covers that column: its exclusive end is the image width."""
    ds = TinyImageNet("val")
    i = next(k for k in range(len(ds)) if _tsv_box(DATA / "val_boxes.tsv", ds.data.files[k])[2] == 63)
    item = ds[i]
    x0, y0, _, y1 = _tsv_box(DATA / "val_boxes.tsv", item["file"])
    assert item["box"] == (x0, y0, 64, y1 + 1)
    mask = np.zeros((64, 64), bool)
    bx0, by0, bx1, by1 = item["box"]
    mask[by0:by1, bx0:bx1] = True  # exclusive ends index numpy slices directly
    assert mask[:, 63].any() and mask.sum() == (64 - x0) * (y1 + 1 - y0)


def test_inclusive_to_exclusive_by_hand() -> None:
    assert inclusive_to_exclusive((0, 0, 63, 63)) == (0, 0, 64, 64)
    assert inclusive_to_exclusive((5, 7, 5, 7)) == (5, 7, 6, 8)  # a one-pixel box
    assert inclusive_to_exclusive(NO_BOX) == (-1, -1, -1, -1)  # the "no box" marker is not a position


def test_missing_folder_and_bad_split_are_clear(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_split("val", tmp_path / "nowhere", tmp_path / "cache")
    with pytest.raises(ValueError, match="unknown split"):
        load_split("test", tmp_path, tmp_path / "cache")
    (tmp_path / "wnids.txt").write_text("n1\n")
    with pytest.raises(DataError, match="val.tar.gz"):
        load_split("val", tmp_path, tmp_path / "cache")


# --------------------------------------------------------------------------------------- fake tiny-imagenet-200

def _jpeg(mode: str, value: int) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (64, 64), value if mode == "L" else (value, 0, 255 - value)).save(buf, "JPEG", quality=95)
    return buf.getvalue()


def _fake_zip() -> bytes:
    """tiny-imagenet-200 layout with three classes (two wanted), two train and two val images each."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        r = "tiny-imagenet-200/"
        wn = ["n00000001", "n00000002", "n00000003"]
        z.writestr(r + "wnids.txt", "\n".join(wn) + "\n")
        z.writestr(r + "words.txt", "".join(f"{w}\tthing {i}, other\n" for i, w in enumerate(wn)))
        ann = []
        for i, w in enumerate(wn):
            boxes = []
            for k in range(2):
                mode = "L" if (i, k) == (1, 0) else "RGB"
                z.writestr(f"{r}train/{w}/images/{w}_{k}.JPEG", _jpeg(mode, 40 * i + 10 * k))
                boxes.append(f"{w}_{k}.JPEG\t{k}\t{i}\t{60 - k}\t63")
                v = 2 * i + k
                z.writestr(f"{r}val/images/val_{v}.JPEG", _jpeg("RGB", 100 + v))
                ann.append(f"val_{v}.JPEG\t{w}\t1\t2\t{30 + v}\t40")
            z.writestr(f"{r}train/{w}/{w}_boxes.txt", "\n".join(boxes) + "\n")
        z.writestr(r + "val/val_annotations.txt", "\n".join(ann) + "\n")
        z.writestr(r + "test/images/test_0.JPEG", _jpeg("RGB", 7))
    return buf.getvalue()


class _Server:
    """Loopback server for one payload; honours Range; can cut the first response after ``cut`` bytes."""

    def __init__(self, payload: bytes, cut: int | None = None) -> None:
        self.payload, self.cut, self.ranges = payload, cut, []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                rng = self.headers.get("Range")
                outer.ranges.append(rng)
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                body = outer.payload[start:]
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(outer.payload) - 1}/{len(outer.payload)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if outer.cut is not None:
                    self.wfile.write(body[: outer.cut])
                    outer.cut = None
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/tiny-imagenet-200.zip"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def payload() -> bytes:
    return _fake_zip()


def test_download_resumes_after_a_cut_and_checks_md5(tmp_path: Path, payload: bytes) -> None:
    srv = _Server(payload, cut=1000)
    try:
        md5 = hashlib.md5(payload).hexdigest()
        dest = tmp_path / "t.zip"
        with pytest.raises(DownloadError, match="run again to resume"):
            download(srv.url, dest, md5=md5, retries=0)
        part = tmp_path / "t.zip.part"
        assert part.stat().st_size == 1000 and not dest.exists()
        seen: list[tuple[int, int | None]] = []
        download(srv.url, dest, md5=md5, retries=0, progress=lambda d, t: seen.append((d, t)))
        assert dest.read_bytes() == payload and not part.exists()
        assert srv.ranges == [None, "bytes=1000-"]
        assert seen[-1] == (len(payload), len(payload))
    finally:
        srv.close()


def test_download_retries_within_one_call(tmp_path: Path, payload: bytes) -> None:
    srv = _Server(payload, cut=500)
    try:
        download(srv.url, tmp_path / "t.zip", md5=hashlib.md5(payload).hexdigest(), retries=2)
        assert (tmp_path / "t.zip").read_bytes() == payload and srv.ranges == [None, "bytes=500-"]
    finally:
        srv.close()


def test_download_checksum_mismatch_is_an_error_and_removes_the_file(tmp_path: Path, payload: bytes) -> None:
    srv = _Server(payload)
    try:
        with pytest.raises(ChecksumError, match="does not match"):
            download(srv.url, tmp_path / "t.zip", md5="0" * 32, retries=0)
        assert not (tmp_path / "t.zip").exists() and not (tmp_path / "t.zip.part").exists()
    finally:
        srv.close()


def test_build_layout_reads_back_as_the_100_class_folder(tmp_path: Path, payload: bytes) -> None:
    zpath = tmp_path / "t.zip"
    zpath.write_bytes(payload)
    wanted = ["n00000001", "n00000002"]
    out = build_layout(zpath, tmp_path / "ds", wnids=wanted, imagenet_index={"n00000001": 5, "n00000002": 9})
    assert read_wnids(out) == wanted
    assert (out / "classes.tsv").read_text().splitlines()[1] == "n00000002\t9\tthing 1, other"
    tr = load_split("train", out, tmp_path / "cache")
    assert tr.files == ["n00000001_0.JPEG", "n00000001_1.JPEG", "n00000002_0.JPEG", "n00000002_1.JPEG"]
    assert tr.labels.tolist() == [0, 0, 1, 1]
    assert tr.boxes.tolist()[3] == [1, 1, 60, 64]  # the zip's inclusive (1, 1, 59, 63), exclusive ends
    grey = tr.images[2].int()  # n00000002_0 was saved greyscale: three equal channels
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    va = load_split("val", out, tmp_path / "cache")
    assert va.files == ["val_0.JPEG", "val_1.JPEG", "val_2.JPEG", "val_3.JPEG"] and va.labels.tolist() == [0, 0, 1, 1]
    assert read_boxes(out, "val")["val_3.JPEG"] == (1, 2, 34, 41)  # the zip's inclusive (1, 2, 33, 40)
    assert va.boxes.tolist()[3] == [1, 2, 34, 41]
    again = load_split("val", out, tmp_path / "cache")  # from the cache
    assert torch.equal(again.images, va.images) and again.files == va.files
    assert again.boxes.tolist() == [[1, 2, 31, 41], [1, 2, 32, 41], [1, 2, 33, 41], [1, 2, 34, 41]]


def test_image_without_a_box_keeps_the_no_box_marker(tmp_path: Path, payload: bytes) -> None:
    zpath = tmp_path / "t.zip"
    zpath.write_bytes(payload)
    out = build_layout(zpath, tmp_path / "ds", wnids=["n00000001", "n00000002"])
    tsv = out / "val_boxes.tsv"
    tsv.write_text("".join(line + "\n" for line in tsv.read_text().splitlines() if not line.startswith("val_1.")))
    for _ in range(2):  # decoded, then from the cache
        va = load_split("val", out, tmp_path / "cache")
        assert va.boxes.tolist()[1] == [-1, -1, -1, -1]
        assert va.boxes.tolist()[0] == [1, 2, 31, 41]
    item = TinyImageNet("val", out, tmp_path / "cache")[1]
    assert item["file"] == "val_1.JPEG" and item["box"] == NO_BOX


def test_a_new_decode_replaces_the_folders_earlier_one_and_is_mapped_not_read(tmp_path: Path, payload: bytes) -> None:
    """Rule: the cache dir holds one decode per data folder and split. When a folder's archive changes, its new
    decode replaces the old one; another folder's decode, the other split's, a file another process is writing and
    unrelated files stay; decodes in the old naming (no folder part), which nothing reads, go. A cached decode is
    mapped, not read, and writing into the loaded images leaves the file as it was."""
    zpath = tmp_path / "t.zip"
    zpath.write_bytes(payload)
    wnids = ["n00000001", "n00000002"]
    a = build_layout(zpath, tmp_path / "a", wnids=wnids)
    b = build_layout(zpath, tmp_path / "b", wnids=wnids)
    cache = tmp_path / "cache"

    def added(split: str, folder: Path) -> set[str]:
        before = {p.name for p in cache.iterdir()} if cache.is_dir() else set()
        load_split(split, folder, cache)
        return {p.name for p in cache.iterdir()} - before

    a_val, a_train, b_val = added("val", a), added("train", a), added("val", b)
    assert len(a_val) == len(a_train) == len(b_val) == 2  # images (.npy) and labels, files, boxes (.json)
    stem = sorted(a_val)[0].rsplit(".", 1)[0]
    writing = cache / f"{stem}.99999.tmp.npy"
    writing.write_bytes(b"half written")
    other = cache / "notes.txt"
    other.write_text("mine")
    legacy = {"tiny-imagenet-100-val-0123456789abcdef.npy", "tiny-imagenet-100-val-0123456789abcdef.json"}
    for name in legacy:
        (cache / name).write_bytes(b"old")
    t = (a / "val.tar.gz").stat().st_mtime + 100
    os.utime(a / "val.tar.gz", (t, t))  # the archive changed: a new key
    a_val2 = added("val", a)
    assert len(a_val2) == 2 and not a_val2 & a_val
    assert {p.name for p in cache.iterdir()} == a_val2 | a_train | b_val | {writing.name, other.name}

    npy = cache / next(n for n in a_val2 if n.endswith(".npy"))
    on_disk = npy.read_bytes()
    cached = load_split("val", a, cache)
    assert str(npy) in Path("/proc/self/maps").read_text()  # mapped into this process, not copied
    first = cached.images[0].clone()
    cached.images[0] += 1
    assert npy.read_bytes() == on_disk
    assert torch.equal(load_split("val", a, cache).images[0], first)
