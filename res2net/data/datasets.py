"""Evaluation datasets behind one interface: image records with a class and one or more object boxes.

Three sources give the same ``EvalDataset``:

* ``tiny_imagenet(data_dir)``: the Tiny-ImageNet-100 val split (``data.tiny_imagenet``), 64 px, one box per image;
* ``imagenet_val(root)``: ILSVRC-2012 val in its common layouts. Images in ``val/<wnid>/`` class folders or flat
  in ``val/`` (also ``ILSVRC/Data/CLS-LOC/val/``); boxes from per-image PASCAL VOC XML files
  (``ILSVRC2012_bbox_val_v3.tgz`` unpacked: ``val/*.xml`` beside or below ``annotations/`` / ``bbox/``, or Kaggle's
  ``ILSVRC/Annotations/CLS-LOC/val/``) or from ``LOC_val_solution.csv``; classes from ``LOC_synset_mapping.txt``
  or the ImageNet-1k list; the label of an image in a flat folder comes from its boxes (every ImageNet val box
  is of the image's class) or from a ``labels.txt`` (``<image id> <wnid>`` per line);
* ``image_folder(root)``: a user's own data, ``images/`` (any depth), ``boxes.csv`` with the header
  ``image,label,x0,y0,x1,y1`` (one row per box, exclusive ends, the image's path relative to ``images/``) and
  ``classes.txt`` (one label per line, the class list).

Box convention: ImageNet's XML and CSV coordinates are 0-based pixel indices with inclusive ends (xmax reaches
width - 1, never width; the official IoU adds 1); they are converted once here to this package's exclusive ends
(``data.inclusive_to_exclusive``), and clipped to the image. ``load(i, side)`` resizes the whole image to
``side`` x ``side`` with no crop (the WSOL protocol, Choe et al. 2020, so no box is cut) and scales the boxes
outward to whole pixels. Images without a box, with a class outside the list, or unreadable are skipped and
counted with their reason, never a crash halfway.
"""

from __future__ import annotations

import csv
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from res2net.data.tiny_imagenet import DataError, inclusive_to_exclusive, load_split, read_wnids
from res2net.models.zoo import label_set_wnids

__all__ = ["Record", "EvalDataset", "tiny_imagenet", "imagenet_val", "image_folder", "open_dataset",
           "scale_boxes", "DATASET_KINDS", "IMAGE_SUFFIXES", "DataError", "RecordError"]

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png", ".bmp", ".webp")
DATASET_KINDS = ("tiny-imagenet-100", "imagenet-val", "folder")

Box = tuple[int, int, int, int]


class RecordError(DataError):
    """One record of a dataset cannot be scored (its image cannot be decoded, or every box lies outside it); the
    evaluation skips and counts it. A user's photo that cannot be used raises ``images.ImageError`` instead."""


@dataclass(frozen=True)
class Record:
    """One image: a stable id, its class (an entry of the dataset's class list), and boxes in its own pixels
    (x0, y0, x1, y1, exclusive ends). ``source`` is a file path, or an index into a decoded split."""

    image_id: str
    label: str
    boxes: tuple[Box, ...]
    source: str | int


@dataclass
class EvalDataset:
    """Records sorted by id, the class list, what was skipped while indexing (id -> reason) and a decoder."""

    name: str
    classes: list[str]
    records: list[Record]
    skipped: dict[str, str] = field(default_factory=dict)
    decode: Callable[[Record], tuple[np.ndarray, tuple[int, int]]] | None = None  # -> (H, W, 3) uint8, (w, h)
    describe: str = ""

    def __len__(self) -> int:
        return len(self.records)

    def load(self, i: int, side: int) -> tuple[torch.Tensor, list[Box]]:
        """Image ``i`` as uint8 (3, side, side), resized with no crop, and its boxes scaled to that grid. The tensor
        is a copy the caller owns: writing into it never changes the dataset (a decoded split is shared memory).

        Raises ``RecordError`` for an image that cannot be decoded or whose boxes all lie outside it."""
        rec = self.records[i]
        assert self.decode is not None
        pixels, (w, h) = self.decode(rec)
        # boxes from a file that states no image size (LOC csv, boxes.csv) are clipped here, as XML boxes were
        boxes = [b for b in (_clip(b, (w, h)) for b in rec.boxes) if b is not None]
        if not boxes:
            raise RecordError(f"every box lies outside the image ({w}x{h} px)")  # counted like indexing's skips
        if pixels.shape[:2] != (side, side):
            pixels = np.asarray(Image.fromarray(pixels).resize((side, side), Image.BILINEAR))
        return torch.from_numpy(pixels.transpose(2, 0, 1).copy()), scale_boxes(boxes, (w, h), side)


def scale_boxes(boxes: tuple[Box, ...] | list[Box], size: tuple[int, int], side: int) -> list[Box]:
    """Exclusive-end boxes in a (w, h) image -> the same boxes on a ``side`` x ``side`` resize, rounded outward to
    whole pixels (a box never shrinks below what it covered) and at least one pixel wide."""
    w, h = size
    out = []
    for x0, y0, x1, y1 in boxes:
        a = min(side - 1, math.floor(x0 * side / w))
        b = min(side - 1, math.floor(y0 * side / h))
        c = max(a + 1, min(side, math.ceil(x1 * side / w)))
        d = max(b + 1, min(side, math.ceil(y1 * side / h)))
        out.append((a, b, c, d))
    return out


def _decode_file(rec: Record) -> tuple[np.ndarray, tuple[int, int]]:
    try:
        with Image.open(rec.source) as im:
            rgb = im.convert("RGB")
            return np.asarray(rgb, dtype=np.uint8), rgb.size
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
        raise RecordError(f"{rec.source}: cannot be decoded as an image ({type(e).__name__}: {e})") from e


def _clip(box: Box, size: tuple[int, int] | None) -> Box | None:
    """Clip an exclusive-end box to the image; None when nothing is left."""
    x0, y0, x1, y1 = box
    if size is not None:
        w, h = size
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 and min(x0, y0) >= 0 else None


def _finish(name: str, classes: list[str], found: dict[str, tuple[str, str | None, list[Box], tuple | None]],
            skipped: dict[str, str], describe: str) -> EvalDataset:
    """Records from id -> (path, label, boxes, size), skipping (with the reason) what cannot be scored."""
    known = set(classes)
    records = []
    for image_id in sorted(found):
        path, label, boxes, size = found[image_id]
        clipped = [b for b in (_clip(b, size) for b in boxes) if b is not None]
        if label is None:
            skipped[image_id] = "no class label"
        elif label not in known:
            skipped[image_id] = f"class {label!r} is not in the class list"
        elif not clipped:
            skipped[image_id] = "no object box" if not boxes else "every box lies outside the image"
        else:
            records.append(Record(image_id, label, tuple(clipped), path))
    if not records:
        reasons = sorted(set(skipped.values()))[:3]
        raise DataError(f"{describe}: no image can be scored ({len(skipped)} skipped: {'; '.join(reasons)})")
    return EvalDataset(name, classes, records, skipped, _decode_file, describe)


# ------------------------------------------------------------------------------------------------ Tiny-ImageNet
def tiny_imagenet(data_dir: str | os.PathLike, split: str = "val") -> EvalDataset:
    """Tiny-ImageNet-100 (decoded by ``res2net.data.tiny_imagenet``, 64 px, one box per image) as an ``EvalDataset``."""
    s = load_split(split, data_dir)
    found = {Path(f).stem: (i, s.wnids[int(y)], [tuple(int(v) for v in b)] if int(b.min()) >= 0 else [],
                            (s.images.shape[-1], s.images.shape[-2]))
             for i, (f, y, b) in enumerate(zip(s.files, s.labels, s.boxes, strict=True))}
    ds = _finish("tiny-imagenet-100", list(s.wnids), found, {}, f"{data_dir} ({split})")
    images = s.images

    def decode(rec: Record) -> tuple[np.ndarray, tuple[int, int]]:
        a = images[int(rec.source)].numpy().transpose(1, 2, 0)
        return a, (a.shape[1], a.shape[0])

    ds.decode = decode
    return ds


# --------------------------------------------------------------------------------------------------- ImageNet
def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def _first_dir(root: Path, candidates: tuple[str, ...]) -> Path | None:
    for c in candidates:
        if (root / c).is_dir():
            return root / c
    return None


def _read_voc(path: Path) -> tuple[list[tuple[str, Box]], tuple[int, int] | None]:
    """Every ``object`` of a PASCAL VOC file as (wnid, exclusive-end box), and the image size it states."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise DataError(f"{path}: not a PASCAL VOC XML file ({e})") from e
    size = None
    w, h = root.findtext("size/width"), root.findtext("size/height")
    if w and h and int(w) > 0 and int(h) > 0:
        size = (int(w), int(h))
    objects = []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        name = (obj.findtext("name") or "").strip()
        if bb is None or not name:
            raise DataError(f"{path}: an <object> lacks <name> or <bndbox>")
        try:
            box = tuple(int(float(bb.findtext(k) or "")) for k in ("xmin", "ymin", "xmax", "ymax"))
        except ValueError:
            raise DataError(f"{path}: <bndbox> needs integer xmin, ymin, xmax, ymax") from None
        objects.append((name, inclusive_to_exclusive(box)))
    return objects, size


def _read_loc_csv(path: Path) -> dict[str, list[tuple[str, Box]]]:
    """``LOC_val_solution.csv``: ImageId -> [(wnid, exclusive-end box)], from groups of ``wnid x0 y0 x1 y1``."""
    out: dict[str, list[tuple[str, Box]]] = {}
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["ImageId", "PredictionString"]:
            raise DataError(f"{path}: expected the header ImageId,PredictionString, got {header}")
        for n, row in enumerate(reader, 2):
            if not row:
                continue
            parts = row[1].split() if len(row) > 1 else []
            if len(parts) % 5 or not parts:
                raise DataError(f"{path}:{n}: PredictionString must be groups of 'wnid xmin ymin xmax ymax'")
            try:
                out[row[0].strip()] = [(parts[k], inclusive_to_exclusive(tuple(int(v) for v in parts[k + 1:k + 5])))
                                       for k in range(0, len(parts), 5)]
            except ValueError:
                raise DataError(f"{path}:{n}: box coordinates must be integers") from None
    return out


XML_DIRS = ("annotations", "Annotations/CLS-LOC/val", "ILSVRC/Annotations/CLS-LOC/val", "bbox/val", "bbox",
            "val_annotations", "annotations/val")
IMAGE_DIRS = ("val", "ILSVRC/Data/CLS-LOC/val", "images")


def imagenet_val(root: str | os.PathLike, images: str | os.PathLike | None = None,
                 annotations: str | os.PathLike | None = None) -> EvalDataset:
    """ILSVRC-2012 val (or any subset of it) with its object boxes; see the module docstring for the layouts.

    ``images`` / ``annotations`` override the folder search (``annotations``: a folder of XML files or a
    ``LOC_val_solution.csv``). Every box of an image counts (11,715 of the 50,000 have several)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"ImageNet folder {root} does not exist")
    img_dir = Path(images) if images is not None else (_first_dir(root, IMAGE_DIRS) or root)
    files = _images_under(img_dir)
    if not files:
        raise DataError(f"{img_dir}: no images (expected ILSVRC2012_val_*.JPEG in {root}/val/, flat or in "
                        f"<wnid>/ class folders, or in {root}/ILSVRC/Data/CLS-LOC/val/)")
    ann = Path(annotations) if annotations is not None else None
    if ann is None:
        for cand in (root / "LOC_val_solution.csv", *(root / d for d in XML_DIRS)):
            if cand.is_file() or (cand.is_dir() and any(cand.glob("*.xml"))):
                ann = cand
                break
        else:
            if any(img_dir.rglob("*.xml")):
                ann = img_dir
    if ann is None or not ann.exists():
        where = ", ".join(f"{root}/{d}/*.xml" for d in XML_DIRS[:3])
        raise DataError(f"{root}: no box annotations found; expected {root}/LOC_val_solution.csv or per-image "
                        f"PASCAL VOC files (ILSVRC2012_val_*.xml from ILSVRC2012_bbox_val_v3.tgz) in one of {where}")
    mapping = root / "LOC_synset_mapping.txt"
    if mapping.is_file():
        classes = [line.split()[0] for line in mapping.read_text().splitlines() if line.strip()]
    else:
        classes = list(label_set_wnids("imagenet-1k"))
    labels: dict[str, str] = {}
    if (root / "labels.txt").is_file():
        for line in (root / "labels.txt").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2:
                labels[Path(parts[0]).stem] = parts[1]
    class_folders = set(classes)
    if ann.is_file():
        boxes_of = _read_loc_csv(ann)
        sizes: dict[str, tuple[int, int] | None] = {}
    else:
        xmls = {p.stem: p for p in ann.rglob("*.xml")}
        boxes_of, sizes = {}, {}
        for stem, p in xmls.items():
            boxes_of[stem], sizes[stem] = _read_voc(p)
    found: dict[str, tuple] = {}
    skipped: dict[str, str] = {}
    for f in files:
        image_id = f.stem
        objects = boxes_of.get(image_id)
        if objects is None:
            skipped[image_id] = f"no annotation for {f.name} in {ann}"
            continue
        label = labels.get(image_id)
        if label is None and f.parent.name in class_folders and f.parent != img_dir:
            label = f.parent.name
        if label is None:
            label = objects[0][0] if objects else None
        found[image_id] = (str(f), label, [b for w, b in objects if w == label], sizes.get(image_id))
    return _finish("imagenet-val", classes, found, skipped, f"ImageNet val at {root} (boxes: {ann})")


# ------------------------------------------------------------------------------------------ generic image folder
def image_folder(root: str | os.PathLike) -> EvalDataset:
    """A user's data: ``images/``, ``boxes.csv`` (image,label,x0,y0,x1,y1; exclusive ends) and ``classes.txt``."""
    root = Path(root)
    need = {"images/": root / "images", "boxes.csv": root / "boxes.csv", "classes.txt": root / "classes.txt"}
    missing = [k for k, p in need.items() if not p.exists()]
    if missing:
        raise DataError(f"{root} lacks {', '.join(missing)}; an image folder dataset is images/ (the photos), "
                        "boxes.csv (header image,label,x0,y0,x1,y1; one row per box, exclusive ends) and "
                        "classes.txt (one class label per line)")
    classes = [c.strip() for c in need["classes.txt"].read_text().splitlines() if c.strip()]
    rows: dict[str, tuple[str, list[Box]]] = {}
    with need["boxes.csv"].open(newline="") as fh:
        reader = csv.DictReader(fh)
        want = ["image", "label", "x0", "y0", "x1", "y1"]
        if reader.fieldnames is None or any(k not in reader.fieldnames for k in want):
            raise DataError(f"{need['boxes.csv']}: expected the header {','.join(want)}, got {reader.fieldnames}")
        for n, r in enumerate(reader, 2):
            try:
                box = tuple(int(r[k]) for k in want[2:])
            except (TypeError, ValueError):
                raise DataError(f"{need['boxes.csv']}:{n}: x0, y0, x1, y1 must be integers") from None
            label, boxes = rows.setdefault(r["image"], (r["label"], []))
            if label != r["label"]:
                raise DataError(f"{need['boxes.csv']}:{n}: {r['image']} has two labels, {label!r} and {r['label']!r}")
            boxes.append(box)
    found: dict[str, tuple] = {}
    skipped: dict[str, str] = {}
    for f in _images_under(need["images/"]):
        rel = f.relative_to(need["images/"]).as_posix()
        if rel not in rows:
            skipped[rel] = "no row in boxes.csv"
            continue
        label, boxes = rows[rel]
        found[rel] = (str(f), label, boxes, None)
    for rel in rows.keys() - found.keys() - skipped.keys():
        skipped[rel] = "listed in boxes.csv but not under images/"
    return _finish("folder", classes, found, skipped, f"image folder {root}")


def open_dataset(kind: str, root: str | os.PathLike) -> EvalDataset:
    """The dataset of ``kind`` (one of ``DATASET_KINDS``) at ``root``."""
    if kind == "tiny-imagenet-100":
        read_wnids(root)  # names the missing file before any decoding
        return tiny_imagenet(root)
    if kind == "imagenet-val":
        return imagenet_val(root)
    if kind == "folder":
        return image_folder(root)
    raise ValueError(f"unknown dataset kind {kind!r}; expected one of {', '.join(DATASET_KINDS)}")
