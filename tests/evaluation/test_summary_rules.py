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
from res2net.evaluation import summary
from res2net.evaluation.claims import claims
from res2net.evaluation.protocol import BRANCH_METRICS, OUTPUT_METRICS
from res2net.evaluation.runs import _top
from res2net.evaluation.summary import (
    image_blind_scores,
    parse_boxes,
    run_arrays,
    size_buckets,
    stored,
    summarise,
    summarise_rows,
)
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


@pytest.fixture
def few_resamples(monkeypatch: pytest.MonkeyPatch) -> None:
    """50 bootstrap resamples instead of thousands: the rules below concern estimates, counts and keys."""
    monkeypatch.setattr(summary, "BOOT_SUMMARY", 50)
    monkeypatch.setattr(summary, "BOOT_COMPARE", 50)


def _quiet_summary(rows: dict[str, np.ndarray], entries: dict, runs: dict[str, list[str]], baseline: str | None,
                   sigma: float | None = None) -> tuple:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the means of empty size buckets
        return summarise_rows(rows, R.CLASSES, entries, runs, baseline, R.SIDE, sigma)


def test_stored_rounds_scores_to_float16_and_keeps_hits_and_counts_exact() -> None:
    """Rule: only float scores are stored as float16; booleans (hits) and integers stay as they are, exactly."""
    out = stored({"s": np.array([0.1, 1 / 3]), "h": np.array([True, False]), "n": np.array([4097, 3])})
    assert out["s"].dtype == np.float16 and out["s"].tolist() == [float(np.float16(0.1)), float(np.float16(1 / 3))]
    assert out["h"].dtype == bool and out["h"].tolist() == [True, False]
    assert out["n"].tolist() == [4097, 3]  # float16 would make 4097 into 4096


def test_run_arrays_follow_the_first_runs_rows_and_realign_the_others() -> None:
    """Rule: the images come in the order of the first run's rows, and the positions returned are that run's rows;
    every other run's values are realigned to those images, whatever order its rows came in."""
    rows = R.make_rows(R.small_boxes(5, np.random.default_rng(21)), seed=22)
    order = np.r_[np.arange(5)[::-1], 5 + np.array([2, 0, 4, 1, 3])]  # base's rows reversed, r2's shuffled
    rows = {k: v[order] for k, v in rows.items()}
    arrays, sel0 = run_arrays(rows, R.entries(), R.run_labels())
    assert rows["model"][sel0].tolist() == ["base"] * 5 and rows["run"][sel0].tolist() == ["seed0"] * 5
    assert rows["image_id"][sel0].tolist() == [f"img{i:03d}" for i in (4, 3, 2, 1, 0)]
    for name in R.MODELS:
        for k, i in enumerate(rows["image_id"][sel0]):
            row = next(j for j in range(10) if rows["model"][j] == name and rows["image_id"][j] == i)
            assert arrays[f"{name}/seed0/correct"][k] == rows["correct"][row]
            assert arrays[f"{name}/seed0/layer3.1/energy"][k] == rows["layer3/output/energy"][row]


def test_a_models_maxboxacc_hit_is_iou_of_at_least_one_half_and_hits_are_booleans() -> None:
    """Rule: a model's MaxBoxAcc counts a threshold as a hit when its IoU is >= 0.5 (exactly 0.5 is a hit); hits
    (MaxBoxAcc, pointing) are booleans in the arrays even where the merged column is float (NaN for a model without
    that tap)."""
    rows = R.make_rows(R.small_boxes(3, np.random.default_rng(23)), seed=24)
    t = len(L.BOXACC_THRESHOLDS)
    rows["layer3/output/maxboxacc_iou"][0] = np.r_[0.5, np.nextafter(0.5, 0.0), np.full(t - 2, 0.9)]
    assert rows["layer3/branch0/pointing"].dtype.kind == "f"  # only the Res2Net model has the branch tap
    arrays, sel0 = run_arrays(rows, R.entries(), R.run_labels())
    hits = arrays["base/seed0/layer3.1/maxboxacc"]
    assert hits.dtype == bool and hits[0, :2].tolist() == [True, False]
    pointing = arrays["r2/seed0/layer3.1.branch0/pointing"]
    assert pointing.dtype == bool
    assert pointing.tolist() == [bool(v) for v in rows["layer3/branch0/pointing"][3:6]]


def test_controls_and_placements_are_read_for_output_taps_only() -> None:
    """Rule: an output tap's arrays are its metrics plus the image-blind controls and the other placements its rows
    carry (as float64 scores); a branch tap gets its branch metrics only, never a control or placement column."""
    rows = R.make_rows(R.small_boxes(4, np.random.default_rng(25)), seed=26)
    rng = np.random.default_rng(27)
    extra = ["layer3/output/spread_pointing", "layer3/output/half_pixel/energy",
             "layer3/output/effective_centre/mismatch_coverage",
             "layer3/branch0/spread_pointing", "layer3/branch0/half_pixel/energy"]
    for col in extra:
        rows[col] = rng.random(len(rows["model"])).astype(np.float32)
    arrays, _ = run_arrays(rows, R.entries(), R.run_labels())
    for k, name in enumerate(R.MODELS):
        sel = np.arange(4) + 4 * k
        mine = {key.split("/", 2)[2] for key in arrays if key.startswith(f"{name}/seed0/")}
        want = {"correct", *(f"layer3.1/{m}" for m in OUTPUT_METRICS),
                "layer3.1/spread_pointing", "layer3.1/half_pixel/energy", "layer3.1/effective_centre/mismatch_coverage"}
        if name == "r2":
            want |= {f"layer3.1.branch0/{m}" for m in BRANCH_METRICS}
        assert mine == want
        for key, col in (("spread_pointing", extra[0]), ("half_pixel/energy", extra[1]),
                         ("effective_centre/mismatch_coverage", extra[2])):
            got = arrays[f"{name}/seed0/layer3.1/{key}"]
            assert got.dtype == np.float64 and got.tolist() == rows[col][sel].tolist()


def test_a_single_image_has_its_prior_width_fitted_on_its_own_boxes() -> None:
    """Rule: cross-fitting over a single image (no other half) fits both widths on that image's boxes."""
    box = [(10, 12, 40, 30), (5, 5, 20, 60)]
    _, sigmas = image_blind_scores([box], np.array([0.3]), R.SIDE)
    assert sigmas == pytest.approx([_sigma_by_pixels(box, R.SIDE)] * 2, rel=1e-9)


def test_uniform_energy_comes_back_as_float64_whatever_the_areas_type() -> None:
    """Rule: the uniform map's energy is the boxes' area fraction as a float64 score, for areas given as float32 or
    integers (0 / 1) alike."""
    boxes = [[(0, 0, 64, 64)], [(0, 0, 32, 32)]]
    for area in (np.array([1.0, 0.25], dtype=np.float32), [1, 0]):
        out, _ = image_blind_scores(boxes, area, R.SIDE, sigma=8.0)
        assert out["uniform/energy"].dtype == np.float64 and out["uniform/energy"].tolist() == list(map(float, area))


def test_a_given_width_reaches_the_summarys_prior(few_resamples: None) -> None:
    """Rule: a width passed to the summary (fitted on a train split) scores every image's prior, never a cross-fit."""
    boxes = R.small_boxes(6, np.random.default_rng(28))
    _, _, arrays, _, sigmas = _quiet_summary(R.make_rows(boxes, seed=29), R.entries(), R.run_labels(), "base",
                                             sigma=9.5)
    assert sigmas == [9.5]
    prior = L.centre_prior(R.SIDE, 9.5)
    for i, b in enumerate(boxes):
        mask = L.union_masks([b], (R.SIDE, R.SIDE))[0]
        assert float(arrays["prior/energy"][i]) == pytest.approx(prior[mask].sum() / prior.sum(), abs=1e-3)


def test_unequal_run_counts_are_refused_naming_each_models_count() -> None:
    """Rule: runs pair up by position, so models with different numbers of runs are refused, with every count."""
    runs = {"base": ["seed0", "seed1"], "r2": ["seed0"]}
    with pytest.raises(ValueError, match=r"same number of runs to pair them by position, got base: 2, r2: 1$"):
        summarise({}, R.entries(), runs, np.array([]), np.array([]), "base")


def test_a_baseline_not_among_the_models_gives_no_comparisons(few_resamples: None) -> None:
    """Rule: comparisons are made only to a baseline that is one of the models; otherwise there are none."""
    rows = R.make_rows(R.small_boxes(4, np.random.default_rng(30)), seed=31)
    res, paired, *_ = _quiet_summary(rows, R.entries(), R.run_labels(), "resnet50")
    assert res["baseline"] is None and res["comparisons"] == [] and paired == {}
    assert not [r for r in res["accuracy_by_size"] if r["kind"] != "top1"]


def test_paired_top1_difference_is_in_points_over_every_image_of_the_bucket(few_resamples: None) -> None:
    """Rule: the claims get, per bucket, the top-1 difference to the baseline in points (hits over all images of
    the bucket, pooled over runs) with its resamples and the bucket's image count, under stage 'logits'."""
    boxes = R.small_boxes(9, np.random.default_rng(32), most=50)
    rows = R.make_rows(boxes, seed=33, runs=2)
    _, paired, _, sel0, _ = _quiet_summary(rows, R.entries(2), R.run_labels(2), "base")
    area = rows["box_area"][sel0]
    for bucket, m in (("all", np.ones(9, bool)), ("small", area < 0.25), ("medium", (area >= 0.25) & (area < 0.6))):
        if not m.any():
            continue
        top = {n: np.mean([rows["correct"][k] for k in range(len(rows["model"]))
                           if rows["model"][k] == n and m[int(rows["image_id"][k][3:])]]) for n in R.MODELS}
        est, smp, n = paired[("r2", "logits", bucket, "all", "top1")]
        assert est == pytest.approx(100 * (top["r2"] - top["base"]), abs=1e-9)
        assert smp.shape == (50,) and n == int(m.sum())


def test_comparisons_only_at_stages_both_models_tap(few_resamples: None) -> None:
    """Rule: a stage is compared only where both the model and the baseline have an output tap there."""
    rows = R.make_rows(R.small_boxes(4, np.random.default_rng(34)), seed=35)
    for k in [k for k in rows if k.startswith("layer3/output/")]:
        rows["layer2" + k[len("layer3"):]] = rows[k]
    entries = R.entries()
    entries["r2"]["taps"] = {"layer2": {"output": "layer2.1"}, **entries["r2"]["taps"]}
    res, paired, *_ = _quiet_summary(rows, entries, R.run_labels(), "base")
    assert {r["stage"] for r in res["comparisons"]} == {"layer3"}
    assert {k[1] for k in paired} == {"logits", "layer3"}
    assert {r["stage"] for r in res["localisation"] if r["model"] == "r2"} == {"layer2", "layer3"}


def test_both_correct_comparison_pools_the_images_both_models_got_right(few_resamples: None) -> None:
    """Rule: the 'both correct' comparison of a metric is the mean over the (run, image) pairs where both models
    are right of the model's score minus the baseline's, and rests on the mean number of such images per run."""
    rows = R.make_rows(R.small_boxes(10, np.random.default_rng(36), most=50), seed=37, runs=2)
    _, paired, *_ = _quiet_summary(rows, R.entries(2), R.run_labels(2), "base")
    at = {(rows["model"][k], rows["run"][k], rows["image_id"][k]): k for k in range(len(rows["model"]))}
    for metric in ("energy", "pointing"):
        diffs, per_run = [], []
        for run in ("seed0", "seed1"):
            both = [i for (n, r, i), k in at.items() if n == "base" and r == run
                    and rows["correct"][k] and rows["correct"][at[("r2", run, i)]]]
            per_run.append(len(both))
            diffs += [(float(np.float16(rows[f"layer3/output/{metric}"][at[("r2", run, i)]])),
                       float(np.float16(rows[f"layer3/output/{metric}"][at[("base", run, i)]]))) for i in both]
        est, smp, n = paired[("r2", "layer3", "all", "both correct", metric)]
        assert est == pytest.approx(np.mean([a for a, _ in diffs]) - np.mean([b for _, b in diffs]), abs=1e-9)
        assert n == round(np.mean(per_run)) and smp.shape == (50,)
        assert per_run[0] != per_run[1] or n != 10  # the subset is not every image
