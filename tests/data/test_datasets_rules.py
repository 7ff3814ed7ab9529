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


def _folder(root: Path, classes: str, csv_text: str, images: list[str]) -> Path:
    (root / "images").mkdir(parents=True)
    for name in images:
        (root / "images" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((20, 30, 3), 7, np.uint8)).save(root / "images" / name)
    (root / "classes.txt").write_text(classes)
    (root / "boxes.csv").write_text(csv_text)
    return root


def test_an_image_folder_skips_each_unusable_image_with_its_own_reason(tmp_path: Path) -> None:
    """Rules: an image with no row, a row with no image and a label not in classes.txt are skipped, each with its
    reason (boxes are clipped when the image is decoded: the CSV states no size); the rest are records, named
    'folder', described by their root. When nothing is left, the error says how many were skipped and names up to
    three reasons, sorted."""
    import pytest

    csv_text = ("image,label,x0,y0,x1,y1\n"
                "a.png,cat,0,0,10,10\n"
                "b.png,dog,0,0,5,5\n"  # dog is not a class
                "gone.png,cat,0,0,1,1\n")
    root = _folder(tmp_path / "f", "cat\n\n", csv_text, ["a.png", "b.png", "extra.png"])
    ds = datasets.image_folder(root)
    assert [r.image_id for r in ds.records] == ["a.png"] and ds.name == "folder"
    assert ds.describe == f"image folder {root}"
    assert ds.skipped == {"b.png": "class 'dog' is not in the class list",
                          "extra.png": "no row in boxes.csv",
                          "gone.png": "listed in boxes.csv but not under images/"}
    none = _folder(tmp_path / "g", "cat\n", "image,label,x0,y0,x1,y1\nb.png,dog,0,0,5,5\nx.png,cat,0,0,1,1\n"
                   "y.png,cat,0,0,1,1\n", ["b.png", "e.png", "f.png"])
    with pytest.raises(datasets.DataError) as e:
        datasets.image_folder(none)
    assert str(e.value) == (f"image folder {none}: no image can be scored (5 skipped: class 'dog' is not in the "
                            "class list; listed in boxes.csv but not under images/; no row in boxes.csv)")


def test_an_image_folder_names_the_line_and_the_fault_of_a_bad_boxes_csv(tmp_path: Path) -> None:
    """Rule: a boxes.csv fault names the file, the line (the header is line 1) and what was expected."""
    import pytest

    cases = {
        "image,label,x0,y0,x1\na.png,cat,0,0,1\n":
            "{csv}: expected the header image,label,x0,y0,x1,y1, got ['image', 'label', 'x0', 'y0', 'x1']",
        "": "{csv}: expected the header image,label,x0,y0,x1,y1, got None",
        "image,label,x0,y0,x1,y1\na.png,cat,0,0,1,1\na.png,cat,0,0,1.5,1\n":
            "{csv}:3: x0, y0, x1, y1 must be integers",
        "image,label,x0,y0,x1,y1\na.png,cat,0,0,1,1\nb.png,cat,0,0,1,1\na.png,dog,0,0,2,2\n":
            "{csv}:4: a.png has two labels, 'cat' and 'dog'",
    }
    for i, (text, message) in enumerate(cases.items()):
        root = _folder(tmp_path / str(i), "cat\ndog\n", text, ["a.png"])
        with pytest.raises(datasets.DataError) as e:
            datasets.image_folder(root)
        assert str(e.value) == message.format(csv=root / "boxes.csv")
    bare = tmp_path / "bare"
    bare.mkdir()
    with pytest.raises(datasets.DataError) as e:
        datasets.image_folder(bare)
    assert str(e.value) == (f"{bare} lacks images/, boxes.csv, classes.txt; an image folder dataset is images/ (the "
                            "photos), boxes.csv (header image,label,x0,y0,x1,y1; one row per box, exclusive ends) "
                            "and classes.txt (one class label per line)")


def test_scaled_boxes_stay_inside_the_resize_and_at_least_one_pixel_wide() -> None:
    """Rule: on a side x side resize a box is rounded outward, its start at most side - 1 and its end at least one
    pixel past its start (a box at the far edge, or thinner than a resized pixel, keeps one pixel)."""
    assert datasets.scale_boxes([(99, 49, 100, 50)], (100, 50), 10) == [(9, 9, 10, 10)]
    assert datasets.scale_boxes([(100, 50, 100, 50)], (100, 50), 10) == [(9, 9, 10, 10)]  # degenerate at the edge
    assert datasets.scale_boxes([(41, 21, 42, 22)], (100, 50), 10) == [(4, 4, 5, 5)]  # thinner than a pixel
    assert datasets.scale_boxes([(12, 7, 58, 33)], (100, 50), 10) == [(1, 1, 6, 7)]  # outward: floor, ceil
