"""Download the original Tiny ImageNet zip and build the Tiny-ImageNet-100 folder that ``data.tiny_imagenet`` reads.

    python -m res2net.data.download --dest ~/data/tiny-imagenet-100

The download shows progress, resumes a partial file with an HTTP Range request, and checks the zip's checksum
before anything is built. The build keeps the 100 classes the embedded models were trained on (``WNIDS``, class
index = position) and writes ``train.tar.gz``, ``val.tar.gz``, ``wnids.txt``, ``classes.tsv`` and the box files.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import io
import os
import sys
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

__all__ = ["DownloadError", "ChecksumError", "download", "build_layout", "main", "URL", "MD5", "WNIDS",
           "IMAGENET_INDEX"]

URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
MD5 = "90528d7ca1a48142e341f4ef8d21d0de"  # of tiny-imagenet-200.zip as distributed
CHUNK = 1 << 16

# The 100 classes (wnid:ImageNet-1k index, sorted by wnid; the list position is the embedded models' class index).
_TABLE = """
n01443537:1 n01641577:30 n01644900:32 n01768244:69 n01770393:71 n01774384:75 n01784675:79 n01910747:107
n01917289:109 n01944390:113 n01983481:122 n02056570:145 n02074367:149 n02085620:151 n02099601:207
n02123045:281 n02124075:285 n02125311:286 n02129165:291 n02165456:301 n02190166:308 n02226429:311
n02279972:323 n02281406:325 n02364673:338 n02403003:345 n02410509:347 n02415577:349 n02423022:353
n02437312:354 n02486410:372 n02504458:386 n02509815:387 n02666196:398 n02699494:406 n02730930:411
n02791270:424 n02793495:425 n02795169:427 n02814860:437 n02823428:440 n02841315:447 n02843684:448
n02906734:462 n02927161:467 n03026506:496 n03126707:517 n03160309:525 n03179701:526 n03255030:543
n03355925:557 n03388043:562 n03393912:565 n03400231:567 n03404251:568 n03444034:573 n03447447:576
n03637318:619 n03649909:621 n03670208:627 n03733131:645 n03763968:652 n03796401:675 n03838899:683
n03902125:707 n03976657:733 n03992509:739 n04008634:744 n04099969:765 n04133789:774 n04146614:779
n04254777:806 n04259630:808 n04285008:817 n04356056:837 n04366367:839 n04376876:845 n04398044:849
n04417672:853 n04456115:862 n04465501:866 n04486054:873 n04501370:877 n04532106:887 n04540053:890
n04562935:900 n04597913:910 n07579787:923 n07583066:924 n07614500:928 n07711569:935 n07715103:938
n07734744:947 n07747607:950 n07749582:951 n07768694:957 n07875152:964 n07920052:967 n09246464:972
n09428293:978
"""
IMAGENET_INDEX: dict[str, int] = {w: int(i) for w, i in (t.split(":") for t in _TABLE.split())}
WNIDS: list[str] = list(IMAGENET_INDEX)

Progress = Callable[[int, "int | None"], None]


class DownloadError(RuntimeError):
    """The archive could not be fetched (network, server, or an interrupted transfer that retries did not heal)."""


class ChecksumError(DownloadError):
    """The downloaded file's checksum differs from the expected one (the bad file is removed)."""


class LayoutError(RuntimeError):
    """The zip does not have the tiny-imagenet-200 layout, or lacks one of the wanted classes."""


def _hash_file(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _tqdm_progress(label: str) -> Progress:
    from tqdm import tqdm

    bar: dict = {}

    def update(done: int, total: int | None) -> None:
        if "b" not in bar:
            bar["b"] = tqdm(total=total, initial=done, unit="B", unit_scale=True, desc=label, file=sys.stderr)
        b = bar["b"]
        b.update(done - b.n)
        if total is not None and done >= total:
            b.close()

    return update


def _fetch_once(url: str, part: Path, progress: Progress | None, timeout: float) -> None:
    """One HTTP request continuing ``part`` from its current size; raises on a short or failed transfer."""
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # asked past the end: the partial file is already complete
            return
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from e
    with resp:
        if have and resp.status == 206:
            start = int((resp.headers.get("Content-Range") or "bytes 0-").split()[1].split("-")[0])
            if start != have:
                raise DownloadError(f"{url}: server resumed at byte {start}, expected {have}")
            mode = "ab"
        else:  # the server ignored the Range header: start over
            have, mode = 0, "wb"
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        done = have
        with open(part, mode) as f:
            while True:
                chunk = resp.read(CHUNK)
                if not chunk:
                    break
                f.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
        if total is not None and done < total:
            raise DownloadError(f"{url}: connection closed after {done} of {total} bytes")


def download(url: str, dest: str | os.PathLike, md5: str | None = MD5, sha256: str | None = None,
             retries: int = 3, progress: Progress | None = None, timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``dest`` via ``dest.part`` (resumed across calls and retries), then verify its checksum.

    Returns ``dest``. An existing ``dest`` with the right checksum is kept without a request.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    checks = [(a, v.lower()) for a, v in (("md5", md5), ("sha256", sha256)) if v]
    if dest.is_file() and all(_hash_file(dest, a) == v for a, v in checks):
        return dest
    part = dest.with_name(dest.name + ".part")
    last: BaseException | None = None
    for attempt in range(retries + 1):
        try:
            _fetch_once(url, part, progress, timeout)
            last = None
            break
        except (DownloadError, OSError, http.client.HTTPException) as e:
            last = e
            if attempt < retries:
                time.sleep(min(2.0 ** attempt, 10.0) * 0.1)
    if last is not None:
        kept = part.stat().st_size if part.exists() else 0
        raise DownloadError(f"download of {url} failed after {retries + 1} attempt(s): {last}; "
                            f"{kept} bytes kept in {part}, run again to resume") from last
    for algo, want in checks:
        got = _hash_file(part, algo)
        if got != want:
            part.unlink()
            raise ChecksumError(f"{url}: {algo} {got} does not match the expected {want}; the file was removed")
    os.replace(part, dest)
    return dest


def _read_names(z: zipfile.ZipFile, root: str) -> dict[str, str]:
    names: dict[str, str] = {}
    if f"{root}words.txt" in z.namelist():
        for line in z.read(f"{root}words.txt").decode("utf-8", "replace").splitlines():
            if "\t" in line:
                w, n = line.split("\t", 1)
                names[w] = n.strip()
    return names


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def build_layout(zip_path: str | os.PathLike, dest: str | os.PathLike, wnids: list[str] | None = None,
                 imagenet_index: dict[str, int] | None = None) -> Path:
    """Write the 100-class folder (archives, wnids, class names, boxes) from a tiny-imagenet-200 zip."""
    wnids = list(WNIDS if wnids is None else wnids)
    index = IMAGENET_INDEX if imagenet_index is None else imagenet_index
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path) as z:
        files = z.namelist()
        roots = {PurePosixPath(f).parts[0] + "/" for f in files if f.endswith("val_annotations.txt")}
        if len(roots) != 1:
            raise LayoutError(f"{zip_path}: expected one <root>/val/val_annotations.txt (tiny-imagenet-200 layout)")
        root = roots.pop()
        names = _read_names(z, root)
        wanted = set(wnids)
        train_imgs: dict[str, list[str]] = {w: [] for w in wnids}
        for f in files:
            p = PurePosixPath(f)
            if len(p.parts) == 5 and p.parts[1] == "train" and p.parts[3] == "images" and p.parts[2] in wanted:
                train_imgs[p.parts[2]].append(f)
        missing = [w for w in wnids if not train_imgs[w]]
        if missing:
            raise LayoutError(f"{zip_path}: no training images for {len(missing)} wanted class(es): {missing[:5]}")

        train_boxes: list[str] = []
        with tarfile.open(dest / "train.tar.gz.tmp", "w:gz") as tar:
            for w in wnids:
                for f in sorted(train_imgs[w]):
                    _add(tar, f"train/{w}/{PurePosixPath(f).name}", z.read(f))
                box_file = f"{root}train/{w}/{w}_boxes.txt"
                if box_file in files:
                    for line in z.read(box_file).decode().splitlines():
                        if line.strip():
                            train_boxes.append("\t".join(line.split()))
        val_boxes: list[str] = []
        with tarfile.open(dest / "val.tar.gz.tmp", "w:gz") as tar:
            for line in z.read(f"{root}val/val_annotations.txt").decode().splitlines():
                parts = line.split()
                if len(parts) >= 6 and parts[1] in wanted:
                    _add(tar, f"val/{parts[1]}/{parts[0]}", z.read(f"{root}val/images/{parts[0]}"))
                    val_boxes.append("\t".join(parts[:6]))
    os.replace(dest / "train.tar.gz.tmp", dest / "train.tar.gz")
    os.replace(dest / "val.tar.gz.tmp", dest / "val.tar.gz")
    (dest / "wnids.txt").write_text("".join(f"{w}\n" for w in wnids))
    (dest / "classes.tsv").write_text("".join(f"{w}\t{index.get(w, -1)}\t{names.get(w, w)}\n" for w in wnids))
    (dest / "train_boxes.tsv").write_text("".join(f"{b}\n" for b in train_boxes))
    (dest / "val_boxes.tsv").write_text("".join(f"{b}\n" for b in val_boxes))
    return dest


def main(argv: list[str] | None = None) -> int:
    """Command line: download (resumable, checksummed), then build the folder; prints where to point RES2NET_DATA."""
    ap = argparse.ArgumentParser(prog="python -m res2net.data.download", description=__doc__.splitlines()[0])
    ap.add_argument("--dest", default=str(Path.home() / "data" / "tiny-imagenet-100"), help="folder to build")
    ap.add_argument("--url", default=URL)
    ap.add_argument("--zip", default=None, help="where to keep the zip (default: <dest>/tiny-imagenet-200.zip)")
    ap.add_argument("--md5", default=MD5, help="expected MD5 of the zip ('' to skip)")
    ap.add_argument("--sha256", default=None, help="expected SHA-256 of the zip (optional)")
    ap.add_argument("--retries", type=int, default=5)
    ap.add_argument("--keep-zip", action="store_true", help="keep the zip after the build")
    args = ap.parse_args(argv)
    dest = Path(args.dest).expanduser()
    zip_path = Path(args.zip).expanduser() if args.zip else dest / "tiny-imagenet-200.zip"
    try:
        download(args.url, zip_path, md5=args.md5 or None, sha256=args.sha256, retries=args.retries,
                 progress=_tqdm_progress(zip_path.name))
        print(f"building {dest} ...", file=sys.stderr)
        build_layout(zip_path, dest)
    except (DownloadError, LayoutError, zipfile.BadZipFile) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if not args.keep_zip:
        zip_path.unlink()
    print(f"done: export RES2NET_DATA={dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
