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
    assert datasets.scale_boxes([(50, 20, 50, 20)], (100, 100), 10) == [(5, 2, 6, 3)]  # no width, on a pixel edge


# ------------------------------------------------------------------------------------- loading a record's image
def test_load_refuses_an_image_whose_boxes_all_lie_outside_it(tmp_path: Path) -> None:
    """Rule: a box from a file that states no image size is clipped when the image is decoded; an image left with no
    box is refused with a RecordError that gives the decoded size (w x h), so the evaluation counts it as a skip."""
    import pytest

    root = _folder(tmp_path / "f", "cat\n", "image,label,x0,y0,x1,y1\na.png,cat,40,0,50,10\n", ["a.png"])
    ds = datasets.image_folder(root)
    with pytest.raises(datasets.RecordError) as e:
        ds.load(0, 8)
    assert str(e.value) == "every box lies outside the image (30x20 px)"


def test_load_resizes_with_bilinear_interpolation(tmp_path: Path) -> None:
    """Rule: the resize is bilinear with pixel centres at half-pixels (edges held): columns 0 and 100 of a 2 px wide
    image become 0, 25, 75, 100 at 4 px."""
    root = _folder(tmp_path / "f", "cat\n", "image,label,x0,y0,x1,y1\na.png,cat,0,0,2,2\n", [])
    Image.fromarray(np.array([[[0] * 3, [100] * 3]] * 2, np.uint8)).save(root / "images" / "a.png")
    img, boxes = datasets.image_folder(root).load(0, 4)
    assert img.shape == (3, 4, 4) and boxes == [(0, 0, 4, 4)]
    assert (img.numpy() == np.array([0, 25, 75, 100], np.uint8)).all()


def test_every_image_is_decoded_as_three_channel_rgb(tmp_path: Path) -> None:
    """Rule: grayscale, palette and RGBA files are decoded to RGB: gray repeated on the three channels, the palette
    looked up, alpha dropped."""
    root = _folder(tmp_path / "f", "cat\n", "image,label,x0,y0,x1,y1\ng.png,cat,0,0,2,2\np.png,cat,0,0,2,2\n"
                   "r.png,cat,0,0,2,2\n", [])
    Image.new("L", (2, 2), 77).save(root / "images" / "g.png")
    pal = Image.new("P", (2, 2), 1)
    pal.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    pal.save(root / "images" / "p.png")
    Image.new("RGBA", (2, 2), (1, 2, 3, 0)).save(root / "images" / "r.png")
    ds = datasets.image_folder(root)
    for i, rgb in enumerate(((77, 77, 77), (10, 20, 30), (1, 2, 3))):
        img, _ = ds.load(i, 2)
        assert img.shape == (3, 2, 2) and img[:, 0, 0].tolist() == list(rgb), ds.records[i].image_id


def test_an_undecodable_file_is_refused_naming_the_file_and_the_decoders_error(tmp_path: Path) -> None:
    """Rule: a file that cannot be decoded raises a RecordError naming the file and the decoder's error type."""
    import pytest

    root = _folder(tmp_path / "f", "cat\n", "image,label,x0,y0,x1,y1\na.png,cat,0,0,2,2\n", [])
    (root / "images" / "a.png").write_bytes(b"not a png")
    with pytest.raises(datasets.RecordError) as e:
        datasets.image_folder(root).load(0, 4)
    assert str(e.value).startswith(f"{root / 'images' / 'a.png'}: cannot be decoded as an image "
                                   "(UnidentifiedImageError: ")


def test_an_image_folder_lists_only_image_files_and_no_box_without_area(tmp_path: Path) -> None:
    """Rules: only files with an image suffix under images/ are images (a notes file is neither a record nor a
    skip); a box with no width or no height is no box, so an image with only such boxes is skipped."""
    root = _folder(tmp_path / "f", "cat\n", "image,label,x0,y0,x1,y1\na.png,cat,0,0,5,5\nflat.png,cat,5,5,5,10\n"
                   "thin.png,cat,5,5,10,5\n", ["a.png", "flat.png", "thin.png"])
    (root / "images" / "notes.txt").write_text("not an image")
    ds = datasets.image_folder(root)
    assert [r.image_id for r in ds.records] == ["a.png"]
    assert set(ds.skipped) == {"flat.png", "thin.png"}


# ------------------------------------------------------------------------------------------------- ImageNet val
W1, W2 = "n01440764", "n01443537"


def _inet(root: Path, images: dict[str, tuple[int, int]], xmls: dict[str, str], xml_dir: str = "annotations"
          ) -> Path:
    """An ImageNet-val-like folder: ``images`` (path under root -> (w, h)), VOC files in ``xml_dir``, two classes."""
    for rel, (w, h) in images.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((h, w, 3), 50, np.uint8)).save(root / rel)
    (root / xml_dir).mkdir(parents=True, exist_ok=True)
    for stem, xml in xmls.items():
        (root / xml_dir / f"{stem}.xml").write_text(xml)
    (root / "LOC_synset_mapping.txt").write_text(f"{W1} tench\n{W2} goldfish\n")
    return root


def test_imagenet_skips_each_unusable_image_with_its_own_reason(tmp_path: Path) -> None:
    """Rules: an image with no annotation, no class label (a flat folder, no labels.txt, no object), a class outside
    the list, no box of its class (labels.txt names the class, the boxes are of another) or only boxes outside its
    stated size is skipped with that reason. When nothing is left, the error counts the skips and names the first
    three reasons in sorted order."""
    import pytest

    size = {f"val/{s}.png": (30, 20) for s in ("good", "nolabel", "foreign", "nobox", "outside", "noann")}
    xmls = {"good": voc_xml("good", (30, 20), [(W1, (1, 1, 5, 5))]),
            "nolabel": voc_xml("nolabel", (30, 20), []),
            "foreign": voc_xml("foreign", (30, 20), [("n09999999", (1, 1, 5, 5))]),
            "nobox": voc_xml("nobox", (30, 20), [(W1, (1, 1, 5, 5))]),
            "outside": voc_xml("outside", (30, 20), [(W1, (40, 0, 50, 10))])}
    root = _inet(tmp_path / "a", size, xmls)
    (root / "labels.txt").write_text("nobox.png n01443537\n\n")
    ds = datasets.imagenet_val(root)
    assert [(r.image_id, r.label, r.boxes) for r in ds.records] == [("good", W1, ((1, 1, 6, 6),))]
    assert ds.skipped == {"noann": f"no annotation for noann.png in {root / 'annotations'}",
                          "nolabel": "no class label", "foreign": "class 'n09999999' is not in the class list",
                          "nobox": "no object box", "outside": "every box lies outside the image"}
    assert ds.name == "imagenet-val" and ds.describe == f"ImageNet val at {root} (boxes: {root / 'annotations'})"
    (root / "val" / "good.png").unlink()
    with pytest.raises(datasets.DataError) as e:
        datasets.imagenet_val(root)
    assert str(e.value) == (f"ImageNet val at {root} (boxes: {root / 'annotations'}): no image can be scored "
                            f"(5 skipped: class 'n09999999' is not in the class list; every box lies outside the "
                            f"image; no annotation for noann.png in {root / 'annotations'})")


def test_a_voc_size_of_one_pixel_clips_and_a_zero_side_states_nothing(tmp_path: Path) -> None:
    """Rule: a stated size of 1 x 1 px or more is the image's size (boxes are clipped to it when indexing); a zero
    width or height states no size, and boxes are kept as written."""
    for name, wh, want in (("one", (1, 1), (0, 0, 1, 1)), ("zero-h", (100, 0), (0, 0, 10, 10))):
        root = _inet(tmp_path / name, {"val/a.png": (30, 20)}, {"a": voc_xml("a", wh, [(W1, (0, 0, 9, 9))])})
        assert datasets.imagenet_val(root).records[0].boxes == (want,), name


def test_a_bad_voc_file_is_refused_with_its_path_and_fault(tmp_path: Path) -> None:
    """Rule: a VOC file that is not XML, or an <object> without a <name> or a <bndbox>, stops indexing with an error
    naming the file and what is wrong."""
    import pytest

    good = voc_xml("a", (30, 20), [(W1, (0, 0, 9, 9))])
    cases = {"broken": (good[:-5], "{xml}: not a PASCAL VOC XML file ("),
             "noname": (good.replace(f"<name>{W1}</name>", ""), "{xml}: an <object> lacks <name> or <bndbox>"),
             "blank": (good.replace(f"<name>{W1}</name>", "<name> </name>"),
                       "{xml}: an <object> lacks <name> or <bndbox>"),
             "nobox": (good.replace("<bndbox>", "<other>").replace("</bndbox>", "</other>"),
                       "{xml}: an <object> lacks <name> or <bndbox>")}
    for name, (xml, message) in cases.items():
        root = _inet(tmp_path / name, {"val/a.png": (30, 20)}, {"a": xml})
        with pytest.raises(datasets.DataError) as e:
            datasets.imagenet_val(root)
        want = message.format(xml=root / "annotations" / "a.xml")
        assert str(e.value) == want if not want.endswith("(") else str(e.value).startswith(want), name


def _loc(root: Path, text: str) -> Path:
    """An image folder (val/a.png, val/b.png) with a LOC csv at a path the folder search does not look at."""
    _inet(root, {"val/a.png": (30, 20), "val/b.png": (30, 20)}, {})
    (root / "my_boxes.csv").write_text(text)
    return root / "my_boxes.csv"


def test_a_loc_csv_given_by_path_is_read_row_by_row(tmp_path: Path) -> None:
    """Rules: ``annotations`` names the box file wherever it lies; its header starts ImageId,PredictionString (more
    columns may follow); an empty line is skipped and reading goes on after it."""
    import pytest

    csv_path = _loc(tmp_path / "a", f"ImageId,PredictionString,Note\na,{W1} 1 2 3 4 {W1} 0 0 9 9,x\n\nb,{W2} 5 5 6 6\n")
    with pytest.raises(datasets.DataError):  # the default search finds no box file
        datasets.imagenet_val(tmp_path / "a")
    ds = datasets.imagenet_val(tmp_path / "a", annotations=csv_path)
    assert [(r.image_id, r.label, r.boxes) for r in ds.records] == [("a", W1, ((1, 2, 4, 5), (0, 0, 10, 10))),
                                                                   ("b", W2, ((5, 5, 7, 7),))]
    assert ds.describe == f"ImageNet val at {tmp_path / 'a'} (boxes: {csv_path})"


def test_a_bad_loc_csv_is_refused_naming_the_line_and_the_fault(tmp_path: Path) -> None:
    """Rule: a LOC csv fault names the file, the line (the header is line 1) and what was expected: the header,
    groups of five (an id with no boxes, a short group), integer coordinates."""
    import pytest

    groups = "PredictionString must be groups of 'wnid xmin ymin xmax ymax'"
    cases = {"": "{csv}: expected the header ImageId,PredictionString, got None",
             "Id,Boxes\n": "{csv}: expected the header ImageId,PredictionString, got ['Id', 'Boxes']",
             f"ImageId,PredictionString\na,{W1} 1 2 3 4\nb,{W1} 1 2 3\n": "{csv}:3: " + groups,
             "ImageId,PredictionString\na\n": "{csv}:2: " + groups,
             "ImageId,PredictionString\na,\n": "{csv}:2: " + groups,
             f"ImageId,PredictionString\na,{W1} 1 2 x 4\n": "{csv}:2: box coordinates must be integers"}
    for i, (text, message) in enumerate(cases.items()):
        csv_path = _loc(tmp_path / str(i), text)
        with pytest.raises(datasets.DataError) as e:
            datasets.imagenet_val(tmp_path / str(i), annotations=csv_path)
        assert str(e.value) == message.format(csv=csv_path), text


def test_imagenet_folder_search(tmp_path: Path) -> None:
    """Rules: a missing root is named; without val/ the images are looked for in the root itself; a box folder
    counts only if it holds XML files (an empty annotations/ is passed over); XML files beside the images are found
    last; when no box file is found the error lists the first three folders searched."""
    import pytest

    with pytest.raises(datasets.DataError) as e:
        datasets.imagenet_val(tmp_path / "none")
    assert str(e.value) == f"ImageNet folder {tmp_path / 'none'} does not exist"
    xml = {"a": voc_xml("a", (30, 20), [(W1, (0, 0, 9, 9))])}
    flat = _inet(tmp_path / "flat", {"a.png": (30, 20)}, {})
    (flat / "LOC_val_solution.csv").write_text(f"ImageId,PredictionString\na,{W1} 0 0 9 9\n")
    assert [r.image_id for r in datasets.imagenet_val(flat).records] == ["a"]
    bbox = _inet(tmp_path / "bbox", {"val/a.png": (30, 20)}, xml, xml_dir="bbox/val")
    (bbox / "annotations").mkdir()  # empty: passed over
    assert datasets.imagenet_val(bbox).describe.endswith(f"(boxes: {bbox / 'bbox' / 'val'})")
    beside = _inet(tmp_path / "beside", {"val/a.png": (30, 20)}, xml, xml_dir="val")
    ds = datasets.imagenet_val(beside)
    assert ds.describe.endswith(f"(boxes: {beside / 'val'})") and ds.records[0].boxes == ((0, 0, 10, 10),)
    bare = _inet(tmp_path / "bare", {"val/a.png": (30, 20)}, {})
    with pytest.raises(datasets.DataError) as e:
        datasets.imagenet_val(bare)
    assert str(e.value) == (f"{bare}: no box annotations found; expected {bare}/LOC_val_solution.csv or per-image "
                            "PASCAL VOC files (ILSVRC2012_val_*.xml from ILSVRC2012_bbox_val_v3.tgz) in one of "
                            f"{bare}/annotations/*.xml, {bare}/Annotations/CLS-LOC/val/*.xml, "
                            f"{bare}/ILSVRC/Annotations/CLS-LOC/val/*.xml")


def test_a_class_folder_names_the_label_and_another_subfolder_does_not(tmp_path: Path) -> None:
    """Rules: an image in a folder named after a listed class has that class (only its boxes are kept); an image in
    any other subfolder takes its label from its boxes (the first object's class)."""
    xmls = {"a": voc_xml("a", (30, 20), [(W1, (0, 0, 4, 4)), (W2, (5, 5, 9, 9))]),
            "b": voc_xml("b", (30, 20), [(W1, (1, 1, 4, 4)), (W2, (5, 5, 9, 9))])}
    root = _inet(tmp_path / "a", {f"val/{W2}/a.png": (30, 20), "val/batch1/b.png": (30, 20)}, xmls)
    ds = datasets.imagenet_val(root)
    assert [(r.image_id, r.label, r.boxes) for r in ds.records] == [("a", W2, ((5, 5, 10, 10),)),
                                                                   ("b", W1, ((1, 1, 5, 5),))]


# ------------------------------------------------------------------------------------ Tiny-ImageNet and the kinds
def _tiny(root: Path) -> Path:
    """A two-class Tiny-ImageNet-100-like folder: val/<wnid>/ images a, b (with boxes) and c (not in the box file)."""
    import io
    import tarfile

    root.mkdir(parents=True)
    (root / "wnids.txt").write_text(f"{W1}\n{W2}\n")
    (root / "val_boxes.tsv").write_text(f"a.png\t{W1}\t2\t3\t10\t20\nb.png\t{W2}\t0\t0\t63\t63\n")
    with tarfile.open(root / "val.tar.gz", "w:gz") as tar:
        for name, wnid, value in (("a.png", W1, 10), ("b.png", W2, 20), ("c.png", W2, 30)):
            buf = io.BytesIO()
            Image.fromarray(np.full((64, 64, 3), value, np.uint8)).save(buf, format="PNG")
            info = tarfile.TarInfo(f"val/{wnid}/{name}")
            info.size = buf.tell()
            buf.seek(0)
            tar.addfile(info, buf)
    return root


def test_tiny_imagenet_reads_the_folder_given_and_skips_an_image_without_a_box(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """Rules: the Tiny-ImageNet-100 dataset is the val split of the folder given (boxes with exclusive ends); an
    image the box file does not list is skipped as having no object box; it is named 'tiny-imagenet-100' and
    described by its folder and split."""
    monkeypatch.setenv("RES2NET_CACHE", str(tmp_path / "cache"))
    root = _tiny(tmp_path / "tiny")
    ds = datasets.tiny_imagenet(root)
    assert [(r.image_id, r.label, r.boxes) for r in ds.records] == [("a", W1, ((2, 3, 11, 21),)),
                                                                   ("b", W2, ((0, 0, 64, 64),))]
    assert ds.skipped == {"c": "no object box"} and ds.classes == [W1, W2]
    assert ds.name == "tiny-imagenet-100" and ds.describe == f"{root} (val)"
    img, boxes = ds.load(1, 64)
    assert (img.numpy() == 20).all() and boxes == [(0, 0, 64, 64)]


def test_open_dataset_opens_each_kind_and_refuses_others(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """Rule: ``open_dataset`` gives the dataset of each of ``DATASET_KINDS`` as its own function does, and refuses
    any other kind, listing the kinds."""
    import pytest

    monkeypatch.setenv("RES2NET_CACHE", str(tmp_path / "cache"))
    tiny = _tiny(tmp_path / "tiny")
    inet = _inet(tmp_path / "inet", {"val/a.png": (30, 20)}, {"a": voc_xml("a", (30, 20), [(W1, (0, 0, 9, 9))])})
    folder = _folder(tmp_path / "f", "cat\n", "image,label,x0,y0,x1,y1\na.png,cat,0,0,5,5\n", ["a.png"])
    for kind, root, own in (("tiny-imagenet-100", tiny, datasets.tiny_imagenet),
                            ("imagenet-val", inet, datasets.imagenet_val), ("folder", folder, datasets.image_folder)):
        got, want = datasets.open_dataset(kind, root), own(root)
        assert (got.name, got.records, got.skipped, got.describe) == (want.name, want.records, want.skipped,
                                                                      want.describe), kind
    with pytest.raises(ValueError) as e:
        datasets.open_dataset("coco", folder)
    assert str(e.value) == "unknown dataset kind 'coco'; expected one of tiny-imagenet-100, imagenet-val, folder"


def test_a_loaded_image_is_the_callers_own_copy(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """Rule: writing into a loaded image changes neither the dataset nor a later load of that image, also for a
    Tiny-ImageNet-100 split read back from its cache (one array shared by every record) at its own 64 px."""
    monkeypatch.setenv("RES2NET_CACHE", str(tmp_path / "cache"))
    root = _tiny(tmp_path / "tiny")
    datasets.tiny_imagenet(root)  # decodes the archive and fills the cache
    ds = datasets.tiny_imagenet(root)  # reads the cache
    img, _ = ds.load(0, 64)
    img[:] = 0
    assert (ds.load(0, 64)[0] == 10).all()
