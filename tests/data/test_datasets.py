"""Evaluation datasets: ImageNet val layouts, the image-folder form, Tiny-ImageNet-100, box conventions, errors."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

import res2net
from res2net.data.datasets import DataError, RecordError, image_folder, imagenet_val, scale_boxes, tiny_imagenet
from res2net.data.tiny_imagenet import load_split, read_wnids
from res2net.metrics import boxes as L
from res2net.metrics.boxes import multi_box_scores

from helpers import imagenet_val_folder, voc_xml


@pytest.fixture(scope="module")
def inet(tmp_path_factory):
    root = tmp_path_factory.mktemp("inet")
    return root, imagenet_val_folder(root, n=12)


def test_voc_folder_keeps_every_box_with_exclusive_ends(inet):
    root, truth = inet
    ds = imagenet_val(root)
    assert [r.image_id for r in ds.records] == sorted(truth)
    for r in ds.records:
        wnid, boxes = truth[r.image_id]
        assert r.label == wnid
        assert list(r.boxes) == [(a, b, c + 1, d + 1) for a, b, c, d in boxes]  # inclusive xmax -> exclusive
    assert sum(len(r.boxes) > 1 for r in ds.records) == 4
    assert len(ds.classes) == 1000 and ds.classes == sorted(ds.classes)


def test_loc_csv_and_class_folders_give_the_same_records(inet, tmp_path):
    root, truth = inet
    alt = tmp_path / "kaggle"
    for stem, (wnid, _) in truth.items():
        (alt / "val" / wnid).mkdir(parents=True, exist_ok=True)
        shutil.copy(root / "val" / f"{stem}.JPEG", alt / "val" / wnid / f"{stem}.JPEG")
    lines = ["ImageId,PredictionString"] + [
        f"{stem}," + " ".join(f"{wnid} {a} {b} {c} {d}" for a, b, c, d in boxes)
        for stem, (wnid, boxes) in truth.items()]
    (alt / "LOC_val_solution.csv").write_text("\n".join(lines) + "\n")
    a, b = imagenet_val(root), imagenet_val(alt)
    assert [(r.image_id, r.label, r.boxes) for r in a.records] == [(r.image_id, r.label, r.boxes) for r in b.records]


def test_image_load_resizes_without_crop_and_scales_boxes(inet):
    root, _ = inet
    ds = imagenet_val(root)
    img, boxes = ds.load(0, 64)
    assert img.shape == (3, 64, 64) and img.dtype.__str__() == "torch.uint8"
    assert boxes == scale_boxes(ds.records[0].boxes, (224, 224), 64)


def test_scale_boxes_rounds_outward_by_hand():
    # 10..31 of 100 px at 64 px: 6.4 -> 6, 19.84 -> 20; a sliver keeps one pixel
    assert scale_boxes([(10, 0, 31, 100)], (100, 100), 64) == [(6, 0, 20, 64)]
    assert scale_boxes([(50, 50, 51, 51)], (100, 100), 10) == [(5, 5, 6, 6)]


def test_missing_annotations_name_what_was_expected(tmp_path, inet):
    root, _ = inet
    bare = tmp_path / "bare"
    shutil.copytree(root / "val", bare / "val")
    with pytest.raises(DataError, match=r"LOC_val_solution\.csv.*PASCAL VOC"):
        imagenet_val(bare)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        imagenet_val(bare, images=tmp_path / "empty")


def test_unannotated_image_and_foreign_class_are_counted_skips(tmp_path, inet):
    root, truth = inet
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    first, second = sorted(truth)[:2]
    (copy / "annotations" / f"{first}.xml").unlink()
    (copy / "LOC_synset_mapping.txt").write_text("\n".join(f"{w} name" for w in sorted(
        {w for w, _ in truth.values()} - {truth[second][0]})) + "\n")
    ds = imagenet_val(copy)
    assert first in ds.skipped and "no annotation" in ds.skipped[first]
    assert "not in the class list" in ds.skipped[second]
    assert len(ds) == len(truth) - 2 - sum(w == truth[second][0] for s, (w, _) in truth.items() if s > second)


def test_corrupt_image_raises_image_error_on_load(tmp_path, inet):
    root, truth = inet
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    stem = sorted(truth)[0]
    (copy / "val" / f"{stem}.JPEG").write_bytes(b"not a jpeg")
    ds = imagenet_val(copy)
    with pytest.raises(RecordError, match=stem):
        ds.load(0, 64)


def test_image_folder_form_and_its_errors(tmp_path):
    root = tmp_path / "mine"
    (root / "images" / "sub").mkdir(parents=True)
    Image.new("RGB", (40, 20), (200, 10, 10)).save(root / "images" / "sub" / "a.png")
    Image.new("RGB", (30, 30)).save(root / "images" / "b.png")
    with pytest.raises(DataError, match="boxes.csv, classes.txt"):
        image_folder(root)
    (root / "classes.txt").write_text("cat\ndog\n")
    (root / "boxes.csv").write_text("image,label,x0,y0,x1,y1\nsub/a.png,cat,0,0,10,10\nsub/a.png,cat,20,5,40,20\n"
                                    "b.png,bird,1,1,5,5\nc.png,dog,0,0,3,3\n")
    ds = image_folder(root)
    assert [(r.image_id, r.label, r.boxes) for r in ds.records] == [("sub/a.png", "cat", ((0, 0, 10, 10),
                                                                                         (20, 5, 40, 20)))]
    assert "not in the class list" in ds.skipped["b.png"] and "not under images/" in ds.skipped["c.png"]
    img, boxes = ds.load(0, 20)
    assert boxes == [(0, 0, 5, 10), (10, 5, 20, 20)]
    assert img[0, 0, 0] == 200


def test_tiny_imagenet_records_match_the_split():
    ds = tiny_imagenet(res2net.data.tiny_imagenet.default_data_dir())
    split = load_split("val")
    assert len(ds) == len(split) == 5000
    r = ds.records[123]
    i = int(r.source)
    assert r.label == split.wnids[int(split.labels[i])]
    assert r.boxes == (tuple(int(v) for v in split.boxes[i]),)
    img, boxes = ds.load(123, 64)
    assert (img == split.images[i]).all() and boxes == list(r.boxes)


def test_model_spec_is_attached_with_its_class_list():
    m = res2net.create_model("tiny_resnet26")
    assert m.spec is res2net.get_spec("tiny_resnet26") and m.spec.input_size == 64
    assert list(m.spec.classes) == read_wnids(res2net.data.tiny_imagenet.default_data_dir())
    inet_classes = res2net.get_spec("resnet50").classes
    assert len(inet_classes) == 1000 and inet_classes[0] == "n01440764" and inet_classes[-1] == "n15075141"
    assert res2net.get_spec("dla60_res2net").family == "dla"


def test_multi_box_scores_one_box_equals_localize_and_union_by_hand():
    rng = np.random.default_rng(0)
    maps = rng.random((3, 16, 16))
    boxes = [[(2, 3, 9, 12)], [(0, 0, 16, 5)], [(7, 7, 8, 8)]]
    one = np.array([b[0] for b in boxes])
    got = multi_box_scores(maps, boxes, True)
    np.testing.assert_allclose(got["energy"], L.energy_in_box(maps, one))
    np.testing.assert_array_equal(got["pointing"], L.pointing_game(maps, one))
    np.testing.assert_allclose(got["coverage"], L.coverage(maps, one))
    np.testing.assert_allclose(got["maxboxacc_iou"], L.iou_curve(maps, one))
    # two overlapping boxes: energy counts the overlap once; the peak in the second box is a hit
    m = np.zeros((1, 8, 8))
    m[0, 1, 1], m[0, 2, 2], m[0, 6, 6] = 1.0, 1.0, 2.0
    two = multi_box_scores(m, [[(0, 0, 3, 3), (2, 2, 4, 4)]], True)
    assert two["energy"][0] == pytest.approx(2 / 4)
    assert not multi_box_scores(m, [[(0, 0, 3, 3)]], False)["pointing"][0]
    assert multi_box_scores(m, [[(0, 0, 3, 3), (6, 6, 7, 7)]], False)["pointing"][0]


def test_maxboxacc_curves_of_a_batch_equal_localize_map_by_map():
    """The batched MaxBoxAcc search (all maps and thresholds in few component searches) gives localize.iou_curve's
    numbers map by map and box by box: equal-area ties, odd offsets and heights, flat maps, maps past one call."""
    rng = np.random.default_rng(1)
    h, w = 63, 64
    maps = rng.integers(0, 4, (70, h, w)).astype(np.float64)  # plateaus and many equal-area components
    maps[1] = 0.0  # flat: scores 0
    maps[2] = 0.0  # two one-pixel components tie; cv2 labels the one in the upper 2x2 block-row first
    maps[2, 2, 0] = maps[2, 1, 3] = 1.0
    maps[3] = 0.0  # the same tie with the occupied rows starting on an odd row of the map
    maps[3, 4, 0] = maps[3, 3, 5] = maps[3, 4, 9] = 1.0
    maps[4] = np.add.outer(np.hanning(h), np.hanning(w))  # one smooth blob, its box shrinking with the threshold
    boxes = [[(int(x), int(y), int(x) + 1 + int(dx), int(y) + 1 + int(dy))
              for x, y, dx, dy in rng.integers(0, 30, (1 + i % 3, 4))] for i in range(len(maps))]
    boxes[2], boxes[3] = [(0, 2, 1, 3)], [(0, 4, 1, 5), (9, 4, 10, 5)]  # IoU 1 only if the tie went to the left one
    got = multi_box_scores(maps, boxes, True)["maxboxacc_iou"]
    want = np.stack([np.max([L.iou_curve(m, b) for b in bs], 0) for m, bs in zip(maps, boxes, strict=True)])
    np.testing.assert_array_equal(got, want)
    assert not want[1].any() and want[4].max() > 0


def test_voc_xml_reader_rejects_a_box_without_coordinates(tmp_path, inet):
    root, truth = inet
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    stem = sorted(truth)[0]
    (copy / "annotations" / f"{stem}.xml").write_text(voc_xml(stem, (224, 224), [("n01443537", (1, 2, 3, 4))])
                                                      .replace("<xmin>1</xmin>", "<xmin>x</xmin>"))
    with pytest.raises(DataError, match=f"{stem}.xml.*integer"):
        imagenet_val(copy)


def test_flat_folder_takes_labels_from_labels_txt_and_keeps_only_that_class_boxes(tmp_path, inet):
    root, truth = inet
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    stem = sorted(truth)[0]
    wnid, boxes = truth[stem]
    other = "n01440764" if wnid != "n01440764" else "n01443537"
    xml = copy / "annotations" / f"{stem}.xml"
    xml.write_text(voc_xml(stem, (224, 224), [(wnid, boxes[0]), (other, (0, 0, 9, 9))]))
    (copy / "labels.txt").write_text(f"{stem}.JPEG {wnid}\n")
    rec = next(r for r in imagenet_val(copy).records if r.image_id == stem)
    a, b, c, d = boxes[0]
    assert rec.label == wnid and rec.boxes == ((a, b, c + 1, d + 1),)  # the other class's box is not this object
