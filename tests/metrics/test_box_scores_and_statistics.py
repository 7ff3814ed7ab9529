"""Peaks without tie artefacts, coverage, MaxBoxAcc, the centre prior, the hierarchical bootstrap and Holm verdicts,
each against a hand-computed answer or a simulation with a known truth."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import res2net
from res2net.geometry import registration
from res2net.metrics import boxes as L
from res2net.metrics import statistics as S


def test_centred_plateau_peak_hits_a_centred_small_box() -> None:
    m = np.zeros((64, 64))
    m[31:33, 31:33] = 1.0  # a centred 2x2 peak: argmax would say (31, 31), the plateau's centroid is (31.5, 31.5)
    assert L.peak_location(m) == (31.5, 31.5)
    assert L.pointing_game(m, (30, 30, 34, 34), tolerance=0.0)
    # a layer4 map of the embedded models is 2x2 at 64 px: its registered plateau lies beyond the last centre
    model = res2net.create_model("tiny_resnet26")
    bottom = registration.register(model, "layer4.1", torch.tensor([[0.0, 0.0], [1.0, 1.0]]), 64).numpy()
    assert L.peak_location(bottom) == (47.5, 31.5)  # rows 32..63, all columns
    assert L.pointing_game(bottom, (24, 40, 40, 56), tolerance=0.0)  # a box centred low in the image
    assert not L.pointing_game(bottom, (24, 8, 40, 24), tolerance=0.0)  # the same box high up
    assert L.peak_location(np.ones((8, 8))) is None and not L.pointing_game(np.ones((8, 8)), (0, 0, 8, 8))


def test_peak_is_the_largest_plateau() -> None:
    m = np.zeros((10, 20))
    m[1, 1] = 5.0
    m[6:9, 14:18] = 5.0  # larger plateau of the same height, bottom right, non-square map
    assert L.peak_location(m) == (7.0, 15.5)


@pytest.mark.parametrize(("peak", "box", "hit"), [
    ((5, 2), (10, 0, 20, 10), False),  # left of the box by 8 px
    ((5, 25), (10, 0, 20, 10), False),  # right: x1 = 20 is exclusive, last column 19, 6 px away
    ((5, 19), (10, 0, 20, 10), True),  # on the last column
    ((5, 20), (10, 0, 20, 10), False),  # one past it, tolerance 0
    ((12, 15), (10, 0, 20, 12), False),  # below: y1 = 12 exclusive
    ((11, 15), (10, 0, 20, 12), True),
    ((0, 15), (10, 3, 20, 12), False),  # above
])
def test_pointing_game_every_side_non_square(peak, box, hit) -> None:
    m = np.zeros((16, 40))
    m[peak] = 1.0
    assert L.pointing_game(m, box, tolerance=0.0) is hit


def test_pointing_tolerance_uses_the_longer_side() -> None:
    m = np.zeros((16, 40))
    m[5, 25] = 1.0  # 6 px right of a box ending at column 19
    # 6 / 40 = 0.15: inside with tolerance 0.16 of the longer side (6.4 px), outside of the shorter (2.56 px)
    assert L.pointing_game(m, (10, 0, 20, 10), tolerance=0.16)
    assert not L.pointing_game(m, (10, 0, 20, 10), tolerance=0.15 * 16 / 40)


def test_coverage_by_hand() -> None:
    m = np.zeros((10, 12))
    m[2:6, 3:9] = 1.0  # 4 x 6 region at the max
    m[6, 3:9] = 0.5  # exactly at the threshold: counts
    m[7, 3:9] = 0.49
    box = (3, 2, 9, 10)  # 8 rows x 6 columns = 48 px; rows 2..6 reach 0.5 x max: 30 px
    assert L.coverage(m, box) == pytest.approx(30 / 48)
    assert L.coverage(np.zeros((10, 12)), box) == 0.0
    assert L.coverage(np.ones((10, 12)), box) == 1.0  # a flat map covers everything: read beside concentration


def test_iou_curve_and_max_box_acc_by_hand() -> None:
    m = np.zeros((20, 20))
    m[5:15, 5:15] = 0.5
    m[8:12, 8:12] = 1.0
    m[0, 19] = 0.6  # a separate small blob: never the largest component
    gt = (5, 5, 15, 15)
    curve = L.iou_curve(m, gt, thresholds=[0.3, 0.55, 0.9])
    # >= 0.3: the 10x10 square (largest component) -> IoU 1; >= 0.55: the 4x4 core -> 16/100; >= 0.9: core
    assert np.allclose(curve, [1.0, 0.16, 0.16])
    curves = np.array([[1.0, 0.2], [0.6, 0.7], [0.1, 0.8], [0.4, 0.49]])
    assert L.max_box_acc(curves) == pytest.approx(0.5)  # threshold 0: 2 of 4; threshold 1: 2 of 4
    assert L.max_box_acc(np.array([[0.5, 0.1], [0.5, 0.1], [0.0, 0.9]])) == pytest.approx(2 / 3)
    assert np.all(L.iou_curve(np.ones((8, 8)), (0, 0, 8, 8)) == 0)


def test_centre_prior_and_its_fitted_width() -> None:
    p = L.centre_prior((9, 13), 2.0)
    assert p.shape == (9, 13) and p[4, 6] == 1.0 and p[4, 7] == pytest.approx(np.exp(-0.125))
    assert L.peak_location(p) == (4.0, 6.0)
    rng = np.random.default_rng(0)
    boxes = []
    for _ in range(40):
        x0, y0 = rng.integers(0, 30, 2)
        boxes.append((x0, y0, x0 + rng.integers(8, 24), y0 + rng.integers(8, 34)))
    # brute force: every pixel of every box, its squared distance to the centre (31.5, 31.5) of a 64 px image
    num = den = 0.0
    for x0, y0, x1, y1 in boxes:
        for y in range(y0, y1):
            for x in range(x0, x1):
                num += ((y - 31.5) ** 2 + (x - 31.5) ** 2) / 2
                den += 1
    assert L.fit_centre_prior_sigma(np.array(boxes), 64) == pytest.approx(np.sqrt(num / den))
    # a non-square image: the centre is ((h - 1) / 2, (w - 1) / 2)
    assert L.fit_centre_prior_sigma(np.array([(0, 0, 1, 1)]), (5, 9)) == pytest.approx(np.sqrt((2**2 + 4**2) / 2))


def test_hierarchical_bootstrap_point_estimate_and_mask() -> None:
    a = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
    b = np.zeros_like(a)
    est, samples = S.hierarchical_bootstrap([a, b], [0, 0, 1, 1], n=200)
    assert est == pytest.approx(4.5) and samples.shape == (200,)
    mask = np.array([[True, False, True, False], [False, False, True, True]])
    est, _ = S.hierarchical_bootstrap([a], [0, 0, 1, 1], mask=mask, n=10)
    assert est == pytest.approx((1 + 3 + 7 + 8) / 4)
    curves = np.stack([a, a[::-1]], -1)  # (runs, images, 2)
    est, _ = S.hierarchical_bootstrap([curves], [0, 0, 1, 1], statistic=lambda ms: ms[0].max(1), n=10)
    assert est == pytest.approx(4.5)


def test_hierarchical_bootstrap_covers_a_known_effect() -> None:
    """Runs, classes and images all vary; the 95% interval should hold the true mean about 95% of the time."""
    rng = np.random.default_rng(1)
    runs, classes, per_class, truth, hits, sims = 10, 20, 8, 0.3, 0, 150
    labels = np.repeat(np.arange(classes), per_class)
    widths = []
    for k in range(sims):
        run_eff = rng.normal(0, 0.2, runs)[:, None]
        cls_eff = rng.normal(0, 0.3, classes)[labels][None, :]
        d = truth + run_eff + cls_eff + rng.normal(0, 0.5, (runs, classes * per_class))
        est, samples = S.hierarchical_bootstrap([d], labels, n=400, seed=k)
        lo, hi = np.quantile(samples, [0.025, 0.975])
        hits += lo <= truth <= hi
        widths.append(hi - lo)
    assert 0.88 <= hits / sims <= 0.99
    # resampling images alone would ignore the run and class variation: much narrower, far below 95%
    flat = [np.quantile([rng.choice(d.ravel(), d.size).mean() for _ in range(200)], [0.025, 0.975]) for _ in [0]]
    assert flat[0][1] - flat[0][0] < 0.5 * np.mean(widths)


def test_holm_verdicts() -> None:
    rng = np.random.default_rng(0)
    strong = (0.10, rng.normal(0.10, 0.01, 4000), 0.02)  # clearly above +d
    null = (0.0, rng.normal(0.0, 0.005, 4000), 0.02)  # clearly inside +-d
    weak = (0.036, rng.normal(0.036, 0.0075, 4000), 0.02)  # above +d at 95% (low ~0.021), not at 97.5%
    weak2 = (-0.036, rng.normal(-0.036, 0.0075, 4000), 0.02)
    wide = (0.0, rng.normal(0.0, 0.1, 4000), 0.02)
    out = S.holm_verdicts([strong, null, weak])  # weak is tested last, at the unadjusted 95% level
    assert [o["verdict"] for o in out] == ["supported", "no meaningful difference", "supported"]
    assert sorted(o["level"] for o in out) == pytest.approx([0.95, 0.975, 1 - 0.05 / 3])
    alone = S.holm_verdicts([weak])
    assert alone[0]["verdict"] == "supported" and alone[0]["level"] == pytest.approx(0.95)
    pair = S.holm_verdicts([weak, weak2])  # each passes alone; as a family the first step needs 97.5%
    assert [o["verdict"] for o in pair] == ["inconclusive", "inconclusive"]
    assert pair[0]["low95"] > 0.02 and pair[1]["high95"] < -0.02
    assert S.holm_verdicts([weak2])[0]["verdict"] == "contradicted"
    assert S.holm_verdicts([wide, strong])[0]["verdict"] == "inconclusive"
    assert S.holm_verdicts([wide, strong])[1]["verdict"] == "supported"
