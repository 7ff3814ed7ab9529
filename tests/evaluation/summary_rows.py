"""Per-image rows as the scoring writes them, built by hand for summary tests (no model runs): two models, one or
more runs each, one output tap at layer3 (and a branch tap for the Res2Net model)."""

from __future__ import annotations

import numpy as np

from res2net.metrics import boxes as L

MODELS = ("base", "r2")
TAPS = {"base": {"layer3": {"output": "layer3.1"}},
        "r2": {"layer3": {"output": "layer3.1", "branch0": "layer3.1.branch0"}}}
SIDE = 64
CLASSES = ["c0", "c1", "c2"]


def entries(runs: int = 1) -> dict:
    return {n: {"scale": 1 if n == "base" else 4, "runs": [], "run_count": runs, "taps": TAPS[n]} for n in MODELS}


def run_labels(runs: int = 1) -> dict[str, list[str]]:
    return {n: [f"seed{k}" for k in range(runs)] for n in MODELS}


def make_rows(boxes: list[list[tuple[int, int, int, int]]], seed: int = 0, runs: int = 1,
              skipped: dict[tuple[str, str, int], str] | None = None) -> dict[str, np.ndarray]:
    """Rows in (model, run, image) order for images with ``boxes`` (at SIDE px); random scores; ``skipped``:
    (model, run label, image) -> reason, those rows carry no scores (NaN / False) as the scoring writes them."""
    rng = np.random.default_rng(seed)
    skipped = skipped or {}
    t = len(L.BOXACC_THRESHOLDS)
    cols: dict[str, list] = {k: [] for k in ("model", "run", "image_id", "class", "skipped", "box_area", "boxes",
                                             "correct", "correct5")}
    scores: dict[str, list] = {}
    for name in MODELS:
        for run in run_labels(runs)[name]:
            for i, bs in enumerate(boxes):
                why = skipped.get((name, run, i), "")
                cols["model"].append(name)
                cols["run"].append(run)
                cols["image_id"].append(f"img{i:03d}")
                cols["class"].append(CLASSES[i % len(CLASSES)])
                cols["skipped"].append(why)
                cols["box_area"].append(np.nan if why else float(L.union_masks([bs], (SIDE, SIDE)).mean()))
                cols["boxes"].append(";".join(" ".join(map(str, b)) for b in bs))
                c = bool(rng.random() < 0.6) and not why
                cols["correct"].append(c)
                cols["correct5"].append(c or (bool(rng.random() < 0.5) and not why))
                for group in TAPS[name]["layer3"]:
                    key = f"layer3/{group}"
                    vals = {"energy": rng.random(), "pointing": bool(rng.random() < 0.5)}
                    if group == "output":
                        vals["coverage"] = rng.random()
                        vals["maxboxacc_iou"] = rng.random(t)
                    for m, v in vals.items():
                        if why:
                            v = np.full(t, np.nan) if m == "maxboxacc_iou" else (False if m == "pointing" else np.nan)
                        scores.setdefault(f"{key}/{m}", {})[len(cols["model"]) - 1] = v
    rows = {k: np.array(v) for k, v in cols.items()}
    rows["box_area"] = rows["box_area"].astype(np.float64)
    n_all = len(rows["model"])
    for k, at in scores.items():  # a column another model lacks is NaN there, as merge_rows leaves it
        first = np.asarray(next(iter(at.values())))
        col = np.full((n_all, *first.shape), np.nan) if k.endswith(("iou", "energy", "coverage")) or \
            len(at) < n_all else np.zeros((n_all, *first.shape), dtype=first.dtype)
        for r, v in at.items():
            col[r] = v
        rows[k] = col
    return rows


def small_boxes(n: int, rng: np.random.Generator, most: int = 28) -> list[list[tuple[int, int, int, int]]]:
    """``n`` images with one box each of side <= ``most`` px (28 px: < 25% of 64 x 64, always 'small' or below
    'large')."""
    out = []
    for _ in range(n):
        w, h = (int(v) for v in rng.integers(4, most + 1, 2))
        x0, y0 = int(rng.integers(0, SIDE - w + 1)), int(rng.integers(0, SIDE - h + 1))
        out.append([(x0, y0, x0 + w, y0 + h)])
    return out
