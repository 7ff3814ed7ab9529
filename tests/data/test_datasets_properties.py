"""A box is the same box whichever file it comes from: a PASCAL VOC XML file, ImageNet's LOC_val_solution.csv, or
our own boxes.csv (hypothesis over image sizes and boxes, inside, across or outside the image)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import hypothesis_profiles  # noqa: F401  (example counts: few in CI, more in the mutation run)
import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from res2net.data import datasets

WNID = "n01440764"
STEM = "ILSVRC2012_val_00000001"


def _write_all(root: Path, size: tuple[int, int], box: tuple[int, int, int, int]) -> dict[str, Path]:
    """The same image and box (exclusive ends) as an XML-annotated, a CSV-annotated and an image-folder dataset."""
    w, h = size
    img = Image.fromarray(np.full((h, w, 3), 120, np.uint8))
    x0, y0, x1, y1 = box
    out = {}
    for kind in ("xml", "csv"):
        r = root / kind
        (r / "val").mkdir(parents=True)
        img.save(r / "val" / f"{STEM}.png")
        (r / "LOC_synset_mapping.txt").write_text(f"{WNID} tench\nn01443537 goldfish\n")
        out[kind] = r
    (root / "xml" / "annotations").mkdir()
    (root / "xml" / "annotations" / f"{STEM}.xml").write_text(
        f"<annotation><size><width>{w}</width><height>{h}</height><depth>3</depth></size><object><name>{WNID}"
        f"</name><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1 - 1}</xmax><ymax>{y1 - 1}</ymax></bndbox>"
        "</object></annotation>")
    (root / "csv" / "LOC_val_solution.csv").write_text(
        f"ImageId,PredictionString\n{STEM},{WNID} {x0} {y0} {x1 - 1} {y1 - 1}\n")
    folder = root / "folder"
    (folder / "images").mkdir(parents=True)
    img.save(folder / "images" / "a.png")
    (folder / "classes.txt").write_text(f"{WNID}\n")
    (folder / "boxes.csv").write_text(f"image,label,x0,y0,x1,y1\na.png,{WNID},{x0},{y0},{x1},{y1}\n")
    out["folder"] = folder
    return out


def _scored(kind: str, root: Path, side: int) -> object:
    """What an evaluation scores: the image's boxes at ``side`` px, or why the image is skipped."""
    try:
        ds = datasets.imagenet_val(root) if kind != "folder" else datasets.image_folder(root)
    except datasets.DataError as e:
        return ("skipped", "no image" if "no image can be scored" in str(e) else str(e))
    try:
        return ds.load(0, side)[1]
    except datasets.RecordError:
        return ("skipped", "no image")


coord = st.integers(-8, 60)


@given(st.integers(4, 40), st.integers(4, 40), coord, coord, st.integers(1, 30), st.integers(1, 30),
       st.sampled_from([16, 32, 64]))
def test_a_box_is_the_same_from_voc_xml_the_loc_csv_and_boxes_csv(w, h, x0, y0, bw, bh, side) -> None:
    """Rule: the three box files describe one box the same way (XML and CSV with inclusive ends, boxes.csv with
    exclusive ends): the boxes an evaluation scores are equal, after clipping to the image; a box with nothing left
    inside the image leaves the image unscored in every form."""
    box = (x0, y0, x0 + bw, y0 + bh)
    if min(box) < 0:  # ImageNet's files never hold negative coordinates (they would mean "no box")
        box = (max(0, x0), max(0, y0), max(0, x0) + bw, max(0, y0) + bh)
    with tempfile.TemporaryDirectory() as tmp:
        roots = _write_all(Path(tmp), (w, h), box)
        got = {kind: _scored(kind, r, side) for kind, r in roots.items()}
    assert got["xml"] == got["csv"] == got["folder"], got
    inside = box[0] < w and box[1] < h
    assert (got["xml"] == ("skipped", "no image")) == (not inside)
