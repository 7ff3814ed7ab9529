"""Rules of the dataset adapters, written down first and then tested: how a PASCAL VOC file's ``<size>`` is used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from res2net.data import datasets

from helpers import voc_xml

WNID = "n01440764"
STEM = "ILSVRC2012_val_00000001"


def _voc_dataset(root: Path, image_wh: tuple[int, int], xml: str) -> Path:
    (root / "val").mkdir(parents=True)
    w, h = image_wh
    Image.fromarray(np.full((h, w, 3), 90, np.uint8)).save(root / "val" / f"{STEM}.png")
    (root / "LOC_synset_mapping.txt").write_text(f"{WNID} tench\n")
    (root / "annotations").mkdir()
    (root / "annotations" / f"{STEM}.xml").write_text(xml)
    return root


def test_voc_size_is_width_then_height_and_clips_the_boxes_when_indexing(tmp_path: Path) -> None:
    """Rule: a VOC file's ``<size>`` states the image's width and height; boxes are clipped to it as the dataset is
    indexed (x to the width, y to the height), before any image is decoded."""
    root = _voc_dataset(tmp_path / "a", (100, 40), voc_xml(STEM, (100, 40), [(WNID, (10, 5, 149, 59))]))
    ds = datasets.imagenet_val(root)
    assert ds.records[0].boxes == ((10, 5, 100, 40),)  # inclusive 149 / 59 -> exclusive 150 / 60, clipped


def test_a_voc_box_outside_the_stated_size_is_skipped_when_indexing(tmp_path: Path) -> None:
    """Rule: an image whose boxes all lie outside the ``<size>`` its file states is skipped while indexing, with
    that reason; an image with one box inside keeps only that box."""
    xml = voc_xml(STEM, (100, 40), [(WNID, (10, 45, 20, 50))])  # below the 40 px height, inside the width
    ds_root = _voc_dataset(tmp_path / "a", (100, 40), xml)
    try:
        datasets.imagenet_val(ds_root)
    except datasets.DataError as e:
        assert "every box lies outside the image" in str(e)
    else:
        raise AssertionError("an image with no box inside its stated size was indexed")
    xml = voc_xml(STEM, (100, 40), [(WNID, (10, 45, 20, 50)), (WNID, (1, 2, 3, 4))])
    ds = datasets.imagenet_val(_voc_dataset(tmp_path / "b", (100, 40), xml))
    assert ds.records[0].boxes == ((1, 2, 4, 5),)


def test_a_voc_file_without_a_usable_size_leaves_clipping_to_the_decoded_image(tmp_path: Path) -> None:
    """Rule: a ``<size>`` of 0 (some tools write it) or none at all states nothing: boxes are kept as written when
    indexing and clipped to the decoded image's size when it is loaded."""
    for name, xml in (("zero", voc_xml(STEM, (0, 0), [(WNID, (10, 5, 149, 59))])),
                      ("zero-w", voc_xml(STEM, (0, 40), [(WNID, (10, 5, 149, 59))])),
                      ("none", voc_xml(STEM, (100, 40), [(WNID, (10, 5, 149, 59))]).replace(
                          "<size><width>100</width><height>40</height><depth>3</depth></size>", ""))):
        ds = datasets.imagenet_val(_voc_dataset(tmp_path / name, (100, 40), xml))
        assert ds.records[0].boxes == ((10, 5, 150, 60),), name
        _, boxes = ds.load(0, 50)
        assert boxes == [(5, 6, 50, 50)], name  # (10, 5, 100, 40) of 100 x 40 on a 50 x 50 grid, rounded outward
