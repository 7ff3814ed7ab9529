"""Rules of the dataset pipeline's summary, written down first (each test's docstring), then tested on rows built by
hand: top-1 when images were skipped, which boxes the centre prior's width is fitted on, the prior's MaxBoxAcc
threshold, and a run with an empty size bucket carried through the summary and the claims."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import summary_rows as R

from res2net.data.tiny_imagenet import default_data_dir, read_box_array
from res2net.evaluation.claims import claims
from res2net.evaluation.runs import _top
from res2net.evaluation.summary import image_blind_scores, parse_boxes, size_buckets, summarise_rows
from res2net.metrics import boxes as L

REPO = Path(__file__).resolve().parents[2]


def _sigma_by_pixels(boxes: list[tuple[int, int, int, int]], side: int) -> float:
    """The prior's width by brute force: sqrt(mean over every box pixel of ((y - c)^2 + (x - c)^2) / 2)."""
    c = (side - 1) / 2
    num, den = 0.0, 0
    for x0, y0, x1, y1 in boxes:
        ys, xs = np.mgrid[y0:y1, x0:x1]
        num += float((((ys - c) ** 2 + (xs - c) ** 2) / 2).sum())
        den += (x1 - x0) * (y1 - y0)
    return float(np.sqrt(num / den))


def test_top1_counts_only_the_images_a_run_scored() -> None:
    """Rule: a run's top-1 is its hits over the images it scored; an image it skipped (unreadable, a class the model
    lacks) is neither a hit nor a miss. The summary's top-1 rests on the images every run scored."""
    boxes = R.small_boxes(12, np.random.default_rng(1))
    skip = {("r2", "seed0", i): "cannot be decoded" for i in (0, 4, 5)}
    rows = R.make_rows(boxes, seed=2, skipped=skip)
    for name in R.MODELS:
        hits = n = 0
        for k in range(len(rows["model"])):
            if rows["model"][k] == name and rows["skipped"][k] == "":
                hits += int(rows["correct"][k])
                n += 1
        assert _top(rows, name, "seed0", "correct") == (hits, n)
    assert _top(rows, "r2", "seed0", "correct")[1] == 9
    res, *_ = summarise_rows(rows, R.CLASSES, R.entries(), R.run_labels(), "base", R.SIDE)
    assert res["images"] == 9
    for name in R.MODELS:
        mine = [k for k in range(len(rows["model"])) if rows["model"][k] == name
                and int(rows["image_id"][k][3:]) not in (0, 4, 5)]
        want = 100 * np.mean([rows["correct"][k] for k in mine])
        assert res["models"][name]["top1"]["mean"] == pytest.approx(want, abs=1e-3)
        all_row = next(r for r in res["accuracy_by_size"] if r["model"] == name and r["bucket"] == "all"
                       and r["kind"] == "top1")
        assert all_row["n"] == 9 and all_row["mean"] == pytest.approx(want, abs=1e-3)


def test_cross_fitted_prior_width_never_sees_the_boxes_it_scores() -> None:
    """Rule: with no width given (a dataset run), the images at even positions are scored with the width fitted on
    the boxes of the images at odd positions, and the other way round; an image's own box never shapes the prior
    it is scored with."""
    rng = np.random.default_rng(3)
    boxes = R.small_boxes(10, rng)
    area = np.array([L.union_masks([b], (R.SIDE, R.SIDE)).mean() for b in boxes])
    out, sigmas = image_blind_scores(boxes, area, R.SIDE)
    even = [b for i in range(0, 10, 2) for b in boxes[i]]
    odd = [b for i in range(1, 10, 2) for b in boxes[i]]
    assert sigmas[0] == pytest.approx(_sigma_by_pixels(odd, R.SIDE), rel=1e-9)
    assert sigmas[1] == pytest.approx(_sigma_by_pixels(even, R.SIDE), rel=1e-9)
    assert abs(sigmas[0] - sigmas[1]) > 0.1  # the two folds differ, so a swap would be seen
    for i, b in enumerate(boxes):  # every score of image i is the prior of the other fold's width
        prior = L.centre_prior(R.SIDE, sigmas[(i % 2)])
        mask = L.union_masks([b], (R.SIDE, R.SIDE))[0]
        assert out["prior/energy"][i] == pytest.approx(prior[mask].sum() / prior.sum(), rel=1e-9)
    # changing the even images' boxes leaves the width the even images are scored with
    moved = [[(0, 0, 60, 60)] if i % 2 == 0 else b for i, b in enumerate(boxes)]
    _, again = image_blind_scores(moved, area, R.SIDE)
    assert again[0] == sigmas[0] and again[1] != sigmas[1]


def test_a_given_width_scores_every_image_with_that_one_prior() -> None:
    """Rule: a width fitted elsewhere (the family's train split) is used for every image, whatever the scored boxes."""
    boxes = R.small_boxes(7, np.random.default_rng(4))
    area = np.array([L.union_masks([b], (R.SIDE, R.SIDE)).mean() for b in boxes])
    out, sigmas = image_blind_scores(boxes, area, R.SIDE, sigma=9.5)
    assert sigmas == [9.5]
    prior = L.centre_prior(R.SIDE, 9.5)
    for i, b in enumerate(boxes):
        mask = L.union_masks([b], (R.SIDE, R.SIDE))[0]
        assert out["prior/energy"][i] == pytest.approx(prior[mask].sum() / prior.sum(), rel=1e-9)
    np.testing.assert_array_equal(out["uniform/energy"], area)


@pytest.mark.skipif(not (default_data_dir() / "train.tar.gz").is_file()
                    and not (default_data_dir() / "val.tar.gz").is_file(),
                    reason=f"Tiny-ImageNet-100 not found at {default_data_dir()} (set RES2NET_DATA)")
def test_the_shipped_family_prior_was_fitted_on_the_train_boxes_not_the_val_images() -> None:
    """Rule: the embedded family's prior width is fitted on the train split's boxes, never on the val images it is
    compared on; the results file says so."""
    res = json.loads((REPO / "assets" / "results" / "tiny_imagenet_100.json").read_text())
    train, val = read_box_array(default_data_dir(), "train"), read_box_array(default_data_dir(), "val")
    want, other = L.fit_centre_prior_sigma(train, 64), L.fit_centre_prior_sigma(val, 64)
    assert abs(want - other) > 1e-3  # the two splits give different widths, so the test tells them apart
    assert res["prior"]["sigma_px"] == pytest.approx(want, abs=1e-9)
    assert res["prior"]["fitted_on"].startswith(f"{len(train)} train boxes")


def _prior_box(side: int, sigma: float, t: float) -> tuple[int, int, int, int]:
    """Box around the prior's pixels >= t after min-max normalisation, found by hand (the level set is a disc)."""
    p = L.centre_prior(side, sigma)
    norm = (p - p.min()) / (p.max() - p.min())
    ys, xs = np.nonzero(norm >= t)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def test_prior_maxboxacc_hit_is_iou_of_at_least_one_half() -> None:
    """Rule: the prior's MaxBoxAcc counts an image as a hit at a threshold when the box of its thresholded map has
    IoU >= 0.5 with the object's box (Choe et al.); exactly 0.5 is a hit, just below is a miss."""
    side, sigma = 64, 12.0
    k, pred = next((k, b) for k, t in enumerate(L.BOXACC_THRESHOLDS)
                   if ((b := _prior_box(side, sigma, t))[2] - b[0]) % 2 == 0 and b[2] - b[0] >= 8)
    x0, y0, x1, y1 = pred
    half = [(x0, y0, x0 + (x1 - x0) // 2, y1)]  # inside the predicted box, half its area: IoU exactly 0.5
    less = [(x0, y0, x0 + (x1 - x0) // 2 - 1, y1)]
    out, _ = image_blind_scores([half, less], np.zeros(2), side, sigma)
    assert out["prior/maxboxacc"].dtype == bool
    assert out["prior/maxboxacc"][0, k] and not out["prior/maxboxacc"][1, k]


def test_prior_maxboxacc_picks_one_threshold_for_the_whole_bucket() -> None:
    """Rule: the prior's MaxBoxAcc in a bucket is the share of its images that hit at the one threshold best for
    that bucket, as for the models' maps; not each image's own best threshold."""
    rng = np.random.default_rng(5)
    boxes = [[(32 - h, 32 - h, 32 + h, 32 + h)] for h in rng.integers(3, 30, 24)]  # centred squares of many sizes
    rows = R.make_rows(boxes, seed=6)
    res, _, arrays, sel0, _ = summarise_rows(rows, R.CLASSES, R.entries(), R.run_labels(), "base", R.SIDE)
    hits = arrays["prior/maxboxacc"].astype(bool)
    area = rows["box_area"][sel0]
    for bucket, m in (("all", np.ones(len(area), bool)), ("small", area < 0.25),
                      ("medium", (area >= 0.25) & (area < 0.6)), ("large", area >= 0.6)):
        if not m.any():
            continue
        want = max(hits[m][:, t].mean() for t in range(hits.shape[1]))
        assert res["baselines"][bucket]["prior_maxboxacc"] == pytest.approx(want, abs=1e-4), bucket
    assert hits.any(1).mean() > res["baselines"]["all"]["prior_maxboxacc"]  # per-image best would score higher


def test_a_run_without_large_objects_finishes_and_says_the_bucket_is_empty() -> None:
    """Rule: a dataset with no image in a size bucket (a small folder without large objects) is summarised and
    judged to the end: the bucket's rows say 0 images and carry no numbers, and it has no claims (nothing to judge),
    never a crash after all the scoring."""
    boxes = R.small_boxes(12, np.random.default_rng(7), most=40)
    rows = R.make_rows(boxes, seed=8, runs=2)
    assert (rows["box_area"] < L.LARGE_FROM).all()
    runs, entries = R.run_labels(2), R.entries(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the mean of an empty bucket
        res, _, arrays, sel0, _ = summarise_rows(rows, R.CLASSES, entries, runs, "base", R.SIDE)
        labels = np.array([R.CLASSES.index(c) for c in rows["class"][sel0]], dtype=np.int64)
        buckets = size_buckets(rows["box_area"][sel0].astype(np.float64))
        centre = np.zeros(len(sel0), bool)
        out = claims(res, arrays, entries, list(R.MODELS), runs, labels, buckets, centre, [], model_caveat="m",
                     map_caveat="c")
    assert res["baselines"]["large"]["images"] == 0
    assert all(v is None for k, v in res["baselines"]["large"].items() if k != "images")
    large = [r for r in res["localisation"] + res["accuracy_by_size"] + res["comparisons"] if r["bucket"] == "large"]
    assert large and all(r["n"] == 0 for r in large)
    assert all(r.get("mean", r.get("diff")) is None and r["low"] is None and r["high"] is None for r in large)
    small = [r for r in res["localisation"] if r["bucket"] == "small"]
    assert small and all(r["n"] > 0 and r["mean"] is not None for r in small)
    assert not [c for c in out if "-large-" in c["id"]]  # nothing to judge on an empty bucket: no claim
    assert {"top1-r2", "energy-small-r2-raw", "pointing-small-r2-raw"} <= {c["id"] for c in out}
    json.dumps(out)  # a results file can hold them


def test_parse_boxes_reads_the_rows_boxes_column() -> None:
    """Rule: the boxes column is 'x0 y0 x1 y1' per box, ';' between boxes, as the scoring writes it."""
    assert parse_boxes("1 2 30 40;0 0 5 6") == [(1, 2, 30, 40), (0, 0, 5, 6)]
    assert parse_boxes("") == []
