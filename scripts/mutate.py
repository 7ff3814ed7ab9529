"""Mutation check: plant one plausible bug at a time in a copy of the repository and run the tests aimed at it.

    .venv/bin/python scripts/mutate.py [--only NAME ...] [--quick] [--list] [--timeout S] [--cold] [-v]

Each row of ``MUTATIONS`` is one bug that would make the project draw a wrong conclusion: a file, an exact source
snippet (it must occur exactly once, or the row is reported stale: the code changed and the row needs updating),
its replacement, and the pytest selection that should fail on it. For every mutation the working tree's files
(tracked and untracked, minus what git ignores) are copied to a temporary folder, the one change is made there,
and the selection runs in the copy with the project's Python and ``PYTHONPATH`` set to the copy, so the copy's
``res2net`` and ``dashboard`` are the ones imported (checked at the start by a copy whose ``res2net`` cannot be
imported). Each distinct selection first runs unmutated: if it fails there, its mutations are reported as
"baseline fails", not as killed. A mutation whose tests time out counts as killed (a hanging suite fails CI).
Each pytest run is forked from a warm starter (``scripts/warm_pytest.py``) that imported torch and the other heavy
libraries once, but never the project's packages; ``--cold`` starts a fresh interpreter per run instead.

Exit status: 1 if any mutation survived, else 2 if any row was stale or could not be judged (or the arguments
were wrong), else 0.
Adding a mutation is one ``M(...)`` row; ``quick=True`` puts it in the ``--quick`` subset meant for CI.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TIMEOUT = 240.0  # seconds per pytest run


@dataclass(frozen=True)
class M:
    """One mutation: in ``file`` replace ``find`` (exactly one occurrence) by ``replace``; ``tests`` must fail."""

    name: str
    file: str
    find: str
    replace: str
    tests: tuple[str, ...]  # pytest arguments: node ids, files, "-k", "expression"
    quick: bool = False
    timeout: float | None = None  # seconds; None: --timeout


LOC, STATS = "res2net/metrics/boxes.py", "res2net/metrics/statistics.py"
CAM, ERF, REG = "res2net/analysis/cam.py", "res2net/analysis/erf.py", "res2net/geometry/registration.py"
CLAIMS, LOC_T = "tests/metrics/test_box_scores_and_statistics.py", "tests/metrics/test_boxes.py"
POINTING = (f"{CLAIMS}::test_pointing_game_every_side_non_square",
            f"{CLAIMS}::test_pointing_tolerance_uses_the_longer_side",
            f"{LOC_T}::test_pointing_game_tolerance_scales_with_image_size")
PEAK = (f"{CLAIMS}::test_centred_plateau_peak_hits_a_centred_small_box", f"{CLAIMS}::test_peak_is_the_largest_plateau")
VERDICT = (f"{LOC_T}::test_paired_difference_and_verdicts",)
BOOTSTRAP = (f"{CLAIMS}::test_hierarchical_bootstrap_point_estimate_and_mask",
             f"{CLAIMS}::test_hierarchical_bootstrap_covers_a_known_effect")
SUMMARY, CLAIMS_EV, ERF_EV = ("res2net/evaluation/summary.py", "res2net/evaluation/claims.py",
                              "res2net/evaluation/erf_study.py")
PAGE, PAGE_TEXT = "dashboard/views/claims.py", "dashboard/claims_text.py"
EV_T = "tests/evaluation/test_pipeline.py"
# one selection for every evaluate row, so its baseline runs once; the module fixture evaluates a 120-image subset
EVAL = (f"{EV_T}::test_subset_run_top1_and_buckets_recomputed_from_per_image_scores",
        f"{EV_T}::test_subset_run_comparisons_and_claims_recomputed_from_per_image_scores",
        f"{EV_T}::test_subset_run_claims_follow_their_intervals")
EVAL_TIMEOUT = 600.0
CLAIMS_PAGE = ("tests/dashboard/test_claims_page.py",)
INF, INF_T = "res2net/metrics/inference.py", "tests/metrics/test_inference.py"
CONTROLS, CONTROLS_T = "res2net/metrics/controls.py", "tests/metrics/test_controls.py"
EFFECT, EFFECT_T = "res2net/metrics/effect_size.py", "tests/metrics/test_effect_size.py"
JUDGING, JUDGING_T = "res2net/evaluation/judging.py", ("tests/evaluation/test_judging.py",)
CONTROL_SCORES, CONTROL_SCORES_T = "res2net/evaluation/control_scores.py", ("tests/evaluation/test_control_scores.py",)

MUTATIONS: tuple[M, ...] = (
    # --- localisation: pointing game, peaks, coverage, size buckets
    M("pointing-right-edge-off-by-one", LOC,
      "dx = np.maximum(np.maximum(b[:, 0] - px, 0), px - (b[:, 2] - 1))",
      "dx = np.maximum(np.maximum(b[:, 0] - px, 0), px - b[:, 2])",
      POINTING, quick=True),
    M("pointing-bottom-edge-off-by-one", LOC,
      "dy = np.maximum(np.maximum(b[:, 1] - py, 0), py - (b[:, 3] - 1))",
      "dy = np.maximum(np.maximum(b[:, 1] - py, 0), py - b[:, 3])",
      POINTING),
    M("pointing-tolerance-shorter-side", LOC,
      "reach = tolerance * max(maps.shape[1:])", "reach = tolerance * min(maps.shape[1:])",
      POINTING),
    M("peak-argmax-not-plateau-centroid", LOC,
      "out[k] = ys.mean(), xs.mean()", "out[k] = np.unravel_index(flat_idx[k], m.shape[1:])",
      PEAK),
    M("peak-all-plateaus-not-largest", LOC,
      "ys, xs = np.nonzero(_largest_component(plateau[k]))", "ys, xs = np.nonzero(plateau[k])",
      PEAK),
    M("coverage-strict-threshold", LOC,
      "above = (maps >= threshold * peak[:, None, None])", "above = (maps > threshold * peak[:, None, None])",
      (f"{CLAIMS}::test_coverage_by_hand",)),
    M("energy-in-box-inclusive-end", LOC,
      "out[i, y0:y1, x0:x1] = True", "out[i, y0:y1 + 1, x0:x1 + 1] = True",
      (LOC_T,), quick=True),
    M("energy-mass-outside-the-box", LOC,
      "inside = (maps * union).sum((1, 2))", "inside = (maps * ~union).sum((1, 2))",
      (f"{LOC_T}::test_energy_in_box_by_hand", f"{CLAIMS}::test_coverage_by_hand")),
    M("size-bucket-small-inclusive", LOC,
      'return "small" if f < SMALL_BELOW', 'return "small" if f <= SMALL_BELOW',
      (f"{LOC_T}::test_box_fraction_and_size_buckets",)),
    # --- intervals and verdicts
    M("verdict-supported-at-the-edge", STATS,
      "if low > min_effect:", "if low >= min_effect:",
      VERDICT, quick=True),
    M("verdict-contradicted-at-the-edge", STATS,
      "if high < -min_effect:", "if high <= -min_effect:",
      VERDICT),
    M("verdict-negligible-open-interval", STATS,
      "if low >= -min_effect and high <= min_effect:", "if low > -min_effect and high < min_effect:",
      VERDICT),
    M("verdict-ignores-min-effect", STATS,
      "if low > min_effect:", "if low > 0:",
      VERDICT),
    M("bootstrap-runs-not-resampled", STATS,
      "run_w = rng.multinomial(n_runs, np.full(n_runs, 1.0 / n_runs), size=n).astype(np.float64)",
      "run_w = np.ones((n, n_runs))",
      BOOTSTRAP),
    M("bootstrap-classes-not-resampled", STATS,
      "cls_n = rng.multinomial(len(labels), np.full(len(labels), 1.0 / len(labels)), size=n)",
      "cls_n = np.ones((n, len(labels)), dtype=np.int64)",
      BOOTSTRAP),
    M("bootstrap-mask-ignored", STATS,
      "keep = np.ones((r, m), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)",
      "keep = np.ones((r, m), dtype=bool)",
      BOOTSTRAP),
    M("holm-no-step-down-stop", STATS,
      "if stopped or v == VERDICTS[3]:", "if v == VERDICTS[3]:",
      (f"{CLAIMS}::test_holm_verdicts",)),
    M("holm-level-not-adjusted", STATS,
      "level = 1 - 2 * alpha / (m - k)", "level = 1 - 2 * alpha",
      (f"{CLAIMS}::test_holm_verdicts",)),
    # --- evaluation: summaries by size bucket, paired comparisons, claims
    M("summary-size-bucket-mask-inverted", SUMMARY,
      'masks = {b: (buckets == b) if b != "all" else np.ones(len(buckets), bool) for b in (*L.SIZE_BUCKETS, "all")}'
      "\n    loc_rows",
      'masks = {b: (buckets != b) if b != "all" else np.ones(len(buckets), bool) for b in (*L.SIZE_BUCKETS, "all")}'
      "\n    loc_rows",
      EVAL, timeout=EVAL_TIMEOUT),
    M("claims-judge-the-whole-split", CLAIMS_EV,
      "sel = np.broadcast_to(buckets == bucket, correct.shape)",
      "sel = np.broadcast_to(np.ones(len(buckets), bool), correct.shape)", JUDGING_T),
    M("claims-both-correct-judge-all-images", CLAIMS_EV,
      '(("both correct", sel & correct)', '(("both correct", sel)', JUDGING_T),
    M("claims-control-not-subtracted", CLAIMS_EV,
      "gain = (xa - ca) - (xb - cb)", "gain = xa - xb", JUDGING_T, quick=True),
    M("claims-control-of-one-model-only", CLAIMS_EV,
      "gain = (xa - ca) - (xb - cb)", "gain = (xa - ca) - xb", JUDGING_T),
    M("claims-saturated-metric-stays-confirmatory", CLAIMS_EV,
      "saturated = ceiling >= SATURATED_AT", "saturated = False", JUDGING_T),
    M("holm-family-excludes-a-confirmatory-claim", JUDGING,
      "conf = [i for i, p in enumerate(pending) if p.confirmatory]",
      "conf = [i for i, p in enumerate(pending) if p.confirmatory][1:]", JUDGING_T, quick=True),
    M("holm-family-includes-exploratory", JUDGING,
      "conf = [i for i, p in enumerate(pending) if p.confirmatory]", "conf = list(range(len(pending)))", JUDGING_T),
    M("not-tested-claims-get-a-judged-interval", JUDGING,
      "low=None if iv is None else _num(iv.low)", "low=_num((iv or iv95).low)", JUDGING_T),
    M("one-run-judged-about-the-architecture", JUDGING,
      "if diffs.shape[0] < 2:", "if diffs.shape[0] < 1:", JUDGING_T),
    M("sensitivity-not-rejudged-at-other-d", JUDGING,
      "I.holm_family([(n, ev, f * d) for n, ev, d in family], ALPHA)",
      "I.holm_family([(n, ev, d) for n, ev, d in family], ALPHA)", JUDGING_T),
    M("flat-map-rule-not-applied", CONTROL_SCORES,
      "out = flat_rule(L.multi_box_scores(maps, boxes, full, union), flat)",
      "out = L.multi_box_scores(maps, boxes, full, union)", CONTROL_SCORES_T),
    M("mismatched-control-keeps-the-own-box", CONTROL_SCORES,
      "other = [boxes[j] for j in src[has]]", "other = [boxes[j] for j in np.flatnonzero(has)]", CONTROL_SCORES_T),
    M("spread-control-scored-on-the-map-itself", CONTROL_SCORES,
      "spread = _cheap_scores(C.spread_matched_prior(maps), boxes, union, flat)",
      "spread = _cheap_scores(maps, boxes, union, flat)", CONTROL_SCORES_T),
    M("interval-low-is-the-mean", SUMMARY,
      '"low": _r(c.low), "high": _r(c.high)}', '"low": _r(c.estimate), "high": _r(c.high)}',
      EVAL, timeout=EVAL_TIMEOUT),
    M("maxboxacc-mean-over-thresholds", SUMMARY,
      "return lambda ms: ms[0].max(1)", "return lambda ms: ms[0].mean(1)",
      EVAL, timeout=EVAL_TIMEOUT),
    M("erf-branch-growth-reversed", ERF_EV,
      'b0, bl = g["branch0"], g[f"branch{scale - 2}"]', 'bl, b0 = g["branch0"], g[f"branch{scale - 2}"]',
      ("tests/evaluation/test_erf_claims.py",)),
    M("erf-training-adds-init-instead-of-subtracting", ERF_EV,
      "(np.asarray(trained) - np.asarray(trained_ref)) - (np.asarray(init) - np.asarray(init_ref))",
      "(np.asarray(trained) - np.asarray(trained_ref)) + (np.asarray(init) - np.asarray(init_ref))",
      ("tests/evaluation/test_erf_claims.py",)),
    M("erf-claim-interval-with-n-not-n-minus-1-df", "res2net/evaluation/claims.py",
      "seed; radii interpolated between whole pixels\", float(v.mean()), se, float(r - 1),",
      "seed; radii interpolated between whole pixels\", float(v.mean()), se, float(r),",
      ("tests/evaluation/test_erf_claims.py",)),
    M("comparison-baseline-from-another-seed", SUMMARY,
      "_estimate([xa, xb], _diff_stat(metric), keep, wcmp.get(b, m))",
      "_estimate([xa, xb[::-1]], _diff_stat(metric), keep, wcmp.get(b, m))",
      EVAL, timeout=EVAL_TIMEOUT),
    M("comparison-both-correct-is-one-model", SUMMARY,
      "both = (ca * cb).astype(bool)\n        for stage in STAGES:",
      "both = ca.astype(bool)\n        for stage in STAGES:",
      EVAL, timeout=EVAL_TIMEOUT),
    # --- the Claims page
    M("page-erf-claims-missing", PAGE,
      'claims_section("erf")', "",
      CLAIMS_PAGE),
    M("page-accuracy-claims-missing", PAGE,
      'claims_section("accuracy")', "",
      CLAIMS_PAGE),
    M("page-verdict-counts-exploratory", PAGE_TEXT,
      'if c.family == "confirmatory":', 'if c.family:',
      CLAIMS_PAGE, quick=True),
    M("results-type-field-renamed", "res2net/evaluation/results.py",
      "    epochs: int | None = doc(", "    epoch: int | None = doc(",
      ("tests/evaluation/test_results_schema.py",), quick=True),
    # --- CAMs and their registration on the input
    M("gradcam-sum-not-mean", CAM,
      "return _weighted(a, g.mean((2, 3)))", "return _weighted(a, g.sum((2, 3)))",
      ("tests/analysis/test_cam_values.py",), quick=True),
    M("register-half-pixel-centres", REG,
      "return sample_at_centres(maps, start, jump, np.arange(h), np.arange(w))",
      "return sample_at_centres(maps, (start[0] + (jump[0] - 1) / 2, start[1] + (jump[1] - 1) / 2), jump, "
      "np.arange(h), np.arange(w))",
      ("tests/geometry/test_register.py::test_registration_is_not_the_half_pixel_resize",
       "tests/geometry/test_register.py::test_registration_matches_gradient_centroid_embedded[tiny_resnet26]")),
    M("photo-cells-half-pixel-off", REG,
      "x0 = (start[1] + 0.5) / sx + crop.box[0] - 0.5", "x0 = start[1] / sx + crop.box[0]",
      ("tests/dashboard/test_dashboard_registration.py::test_compare_draws_and_exports_the_registered_map",)),
    M("shared-scale-set-by-untrained-maps", "dashboard/views/compare.py",
      "trained_maps = [results[n].maps[t] for n in names if not untrained(n) for t in shown[n]]",
      "trained_maps = [results[n].maps[t] for n in names for t in shown[n]]",
      ("tests/dashboard/test_app_readability.py::test_untrained_stand_in_is_badged_has_no_probabilities_and_keeps_its_own_scale",)),
    M("deletion-removes-the-lowest-first", "res2net/analysis/faithfulness.py",
      "order = np.lexsort((np.arange(flat.size), -flat))", "order = np.lexsort((np.arange(flat.size), flat))",
      ("tests/analysis/test_faithfulness.py",)),
    # --- effective receptive fields
    M("erf-centre-y-x-swapped", ERF,
      "dy, dx = np.abs(yy - centre[0]), np.abs(xx - centre[1])",
      "dy, dx = np.abs(yy - centre[1]), np.abs(xx - centre[0])",
      ("tests/analysis/test_erf_values.py",), quick=True),
    M("mass-radius-level-strict", ERF,
      "k = (cum >= target * (1 - 1e-12)).argmax(1)", "k = (cum > target).argmax(1)",
      ("tests/analysis/test_erf_values.py",)),
    M("radius-interpolation-not-applied", ERF,
      "r0 = np.where(k > 0, radii[np.maximum(k - 1, 0)], 0.0)", "r0 = radii[k]",
      ("tests/evaluation/test_erf_claims.py",)),
    M("radius-samples-total-from-first-ring", ERF,
      "total = cum[:, -1:]", "total = cum[:, :1]",
      ("tests/analysis/test_erf_values.py",)),
    M("radius-samples-rings-unsorted", ERF,
      "x.reshape(n, -1)[:, order], starts, axis=1)", "x.reshape(n, -1), starts, axis=1)",
      ("tests/analysis/test_erf_values.py",)),
    M("touches-border-strict", ERF,
      "return bool(r >= room)", "return bool(r > room)",
      ("tests/analysis/test_erf_values.py",)),
    # --- decoding photos and boxes
    M("exif-orientation-8-as-6", "res2net/data/images.py",
      "oriented = ImageOps.exif_transpose(im)",
      "oriented = im.transpose(Image.Transpose.ROTATE_270) if exif_orientation == 8 else ImageOps.exif_transpose(im)",
      ("tests/data/test_exif_orientation.py",), quick=True),
    M("exif-mirrored-orientations-ignored", "res2net/data/images.py",
      "oriented = ImageOps.exif_transpose(im)",
      "oriented = im if exif_orientation in (2, 4, 5, 7) else ImageOps.exif_transpose(im)",
      ("tests/data/test_exif_orientation.py",)),
    M("boxes-inclusive-end-kept", "res2net/data/tiny_imagenet.py",
      "return x0, y0, x1 + 1, y1 + 1", "return x0, y0, x1, y1",
      ("tests/data/test_tiny_imagenet.py::test_inclusive_to_exclusive_by_hand",), quick=True),
    # --- dataset evaluation: shards, several boxes per image, ImageNet's inclusive boxes
    M("shards-unbalanced", "res2net/evaluation/distributed.py",
      "return range(start, start + base + (1 if rank < extra else 0))", "return range(start, start + base)",
      ("tests/evaluation/test_distributed.py::test_shards_are_contiguous_balanced_and_cover_every_batch",)),
    M("pointing-first-box-only", LOC,
      "hit[i] = bool((np.hypot(dx, dy) <= reach).any())", "hit[i] = bool(np.hypot(dx, dy)[0] <= reach)",
      ("tests/data/test_datasets.py::test_multi_box_scores_one_box_equals_localize_and_union_by_hand",)),
    M("maxboxacc-stacked-masks-off-block-grid", LOC,
      "top = rows.argmax(1) // 2 * 2", "top = rows.argmax(1)",
      ("tests/data/test_datasets.py::test_maxboxacc_curves_of_a_batch_equal_localize_map_by_map",)),
    M("voc-boxes-kept-inclusive", "res2net/data/datasets.py",
      "objects.append((name, inclusive_to_exclusive(box)))", "objects.append((name, box))",
      ("tests/data/test_datasets.py::test_voc_folder_keeps_every_box_with_exclusive_ends",)),
    # --- branch knock-out, per-branch decomposition, the knock-out study
    M("ablate-changes-other-threads", "res2net/analysis/lesion.py",
      "            if threading.get_ident() != owner:\n                return None\n            return _replacement(",
      "            return _replacement(",
      ("tests/analysis/test_lesion.py::test_four_threads_mixing_knocked_out_and_normal_calls_get_the_serial_results",)),
    M("ablate-direct-effect-is-total", "res2net/analysis/lesion.py",
      'if effect == "direct" and isinstance(block, Bottle2neck) and block.stype == "normal":', "if False:",
      ("tests/analysis/test_lesion.py::test_total_and_direct_effects_of_a_mean_knock_out_follow_the_hand_written_block",),
      quick=True),
    M("decompose-gradient-before-relu-unmasked", "res2net/analysis/decompose.py",
      "g = tgrad[n] * (acts[n] > 0)", "g = tgrad[n]",
      ("tests/analysis/test_decompose.py", "-k", "every_zoo_model and tiny_res2net26_4s"), quick=True),
    M("knockout-interaction-small-minus-large", "res2net/evaluation/knockout_study.py",
      'est = means["large"] - means["small"]', 'est = means["small"] - means["large"]',
      ("tests/evaluation/test_knockout_study.py::test_rows_and_interactions_are_recomputed_from_the_per_image_scores",)),
    M("sweep-t-quantile-off-by-one", "res2net/evaluation/knockout_study.py",
      "_T975[v.size - 2]", "_T975[v.size - 1]",
      ("tests/evaluation/test_knockout_study.py::test_scale_sweep_intervals_over_runs_by_hand",)),
    M("effective-centre-signed-gradient", "res2net/geometry/cell_centres.py",
      "mass = g.abs().sum((0, 1)).double().cpu()", "mass = g.sum((0, 1)).double().cpu()",
      ("tests/geometry/test_cell_centres.py", "-k", "magnitude"), quick=True),
    M("effective-centre-rows-take-x", "res2net/geometry/cell_centres.py",
      "rows[r] = float((mass * yy).sum()) / total", "rows[r] = float((mass * xx).sum()) / total",
      ("tests/geometry/test_cell_centres.py", "-k", "magnitude")),
    M("placement-between-ignores-centres", "res2net/geometry/registration.py",
      "iy = cell_index_at(np.arange(size[0]), centres.rows)",
      "iy = cell_index_at(np.arange(size[0]), np.arange(len(centres.rows)) * size[0] / len(centres.rows))",
      ("tests/geometry/test_cell_centres.py", "-k", "uneven_centres_by_hand")),
    M("sensitivity-rescored-at-rf-centres", "res2net/evaluation/scoring.py",
      "placement_scores(register_maps_between(cam, centres, size), boxes, union)",
      "placement_scores(register_maps(cam, start, jump, size), boxes, union)",
      ("tests/evaluation/test_pipeline.py::test_subset_run_rejudges_every_confirmatory_claim_under_three_placements",)),
    M("channel-group-lesion-shifted", "res2net/analysis/lesion.py",
      "    where = torch.tensor(idx)", "    where = (torch.tensor(idx) + 1) % n",
      ("tests/analysis/test_lesion.py::test_a_channel_group_lesion_follows_the_hand_written_block",), quick=True),
    M("knockout-lesion-total-not-direct", "res2net/evaluation/knockout_study.py",
      'mode: str = "mean", effect: str = "direct"', 'mode: str = "mean", effect: str = "total"',
      ("tests/evaluation/test_knockout_study.py::test_per_image_scores_and_strength_equal_a_hand_made_direct_lesion",)),
    M("knockout-strength-unnormalised", "res2net/evaluation/knockout_study.py",
      "(changed - intact).norm(dim=1) / norm, 0.0)", "(changed - intact).norm(dim=1), 0.0)",
      ("tests/evaluation/test_knockout_study.py::test_per_image_scores_and_strength_equal_a_hand_made_direct_lesion",
       "tests/evaluation/test_knockout_rules.py::test_strength_by_hand")),
    M("knockout-strength-floored-norm", "res2net/evaluation/knockout_study.py",
      "(changed - intact).norm(dim=1) / norm, 0.0)", "(changed - intact).norm(dim=1) / norm.clamp_min(1e-30), 0.0)",
      ("tests/evaluation/test_knockout_rules.py::test_strength_by_hand",)),
    M("knockout-contrast-weights-swapped", "res2net/evaluation/knockout_study.py",
      "weight = np.where(large, n / large.sum(), np.where(small, -n / small.sum(), 0.0))",
      "weight = np.where(large, n / small.sum(), np.where(small, -n / large.sum(), 0.0))",
      ("tests/evaluation/test_knockout_study.py::"
       "test_confirmatory_contrasts_are_per_run_interactions_judged_in_the_one_family",)),
    M("knockout-flat-maps-not-misses", "res2net/evaluation/knockout_study.py",
      "                                      C.flat_maps(placed))",
      "                                      np.zeros(len(placed), bool))",
      ("tests/evaluation/test_knockout_study.py::test_knockout_scores_follow_the_flat_map_rule",)),
    M("trend-named-from-the-slope-alone", "res2net/evaluation/knockout_study.py",
      'words = TREND_WORDS["rises" if low > 0 else "falls" if high < 0 else "none"]',
      'words = TREND_WORDS["rises" if slope > 0 else "falls" if slope < 0 else "none"]',
      ("tests/evaluation/test_knockout_rules.py", "-k", "trend"), quick=True),
    M("trend-variance-without-run-count", "res2net/evaluation/knockout_study.py",
      "np.var(values[k], ddof=1) / len(values[k])", "np.var(values[k], ddof=1)",
      ("tests/evaluation/test_knockout_rules.py", "-k", "trend")),
    M("res2net-trend-keeps-the-resnet", "res2net/evaluation/knockout_study.py",
      "within = {s: v for s, v in per_run.items() if s >= 2}", "within = dict(per_run)",
      ("tests/evaluation/test_knockout_rules.py", "-k", "step_from_resnet")),
    M("not-tested-claim-shown-at-a-level", "dashboard/claims_text.py",
      "    if c.low is None or c.high is None:\n        return (f\"{fmt(c.estimate, digits)}, not judged",
      "    if False:\n        return (f\"{fmt(c.estimate, digits)}, not judged",
      ("tests/dashboard/test_claims_rules.py", "-k", "never_reached")),
    # --- weights download
    M("download-deadline-not-enforced", "res2net/models/weights.py",
      "left = deadline - (time.monotonic() - start)", "left = deadline",
      ("tests/models/test_weights.py", "-k", "deadline"), timeout=90.0),
    # --- serving many sessions
    M("cache-budget-overrun", "dashboard/serving/budget.py",
      "while self._bytes > self.max_bytes:", "while self._bytes > 2 * self.max_bytes:",
      ("tests/dashboard/test_serving.py", "-k", "byte_budget")),
    M("gate-ignores-priority", "dashboard/serving/admission.py",
      "            self._queue.sort()\n", "\n",
      ("tests/dashboard/test_serving.py", "-k", "gate")),
    M("val-index-unchecked", "dashboard/services/sources.py",
      "if not 0 <= int(k) < len(idx):", "if int(k) >= len(idx):",
      ("tests/dashboard/test_serving.py", "-k", "out_of_range")),
    M("retry-keeps-the-failure", "dashboard/state.py",
      "_set_per_model(WEIGHT_FAILURES, name, None)", "_per_model(WEIGHT_FAILURES, name)",
      ("tests/dashboard/test_serving.py", "-k", "weight_load")),
    M("session-weights-file-ignored", "dashboard/services/model_store.py",
      "    own = state.local_weights(name)\n", "    own = None\n",
      ("tests/dashboard/test_serving_weights.py",)),
    M("gate-not-reentrant", "dashboard/serving/admission.py",
      "if self.holds():", "if False:",
      ("tests/dashboard/test_serving.py", "-k", "inside_its_slot")),
    M("slot-holder-waits-on-a-queued-session", "dashboard/services/shared_cache.py",
      "gated, wait=not admission.gate().holds())", "gated)",
      ("tests/dashboard/test_serving.py", "-k", "queued_behind")),
    # --- few-run inference, the d rule and image-blind controls
    M("satterthwaite-df-off-by-one", INF,
      "np.stack([np.full_like(between, r - 1.0), g - 1.0])", "np.stack([np.full_like(between, float(r)), g - 1.0])",
      (f"{INF_T}::test_cluster_covariance_and_satterthwaite_df_by_hand",), quick=True),
    M("t-interval-replaced-by-z", INF,
      "return _student_t().ppf(0.5 + level / 2, df) * se",
      "import scipy.stats\n    return scipy.stats.norm.ppf(0.5 + level / 2) * se",
      (f"{INF_T}::test_interval_uses_the_t_quantile_of_its_df",
       f"{INF_T}::test_architecture_interval_covers_the_truth_and_the_run_bootstrap_does_not")),
    M("architecture-ignores-shared-image-error", INF,
      "        var = between + shared\n", "        var = between\n",
      (f"{INF_T}::test_cluster_covariance_and_satterthwaite_df_by_hand",)),
    M("cluster-se-without-small-sample-factor", INF,
      "cov = (g / (g - 1))[:, None, None] * totals @", "cov = totals @",
      (f"{INF_T}::test_cluster_covariance_and_satterthwaite_df_by_hand",)),
    M("one-run-architecture-raises", INF,
      "    if d.shape[1] < 2:\n        theta, _, _", "    if False:\n        theta, _, _",
      (f"{INF_T}::test_one_run_has_no_architecture_interval_and_says_so",)),
    M("mc-error-not-reported", INF,
      "mc_error_low=quantile_mc_error(self.samples, a)", "mc_error_low=0.0",
      (f"{INF_T}::test_class_bootstrap_agrees_with_cluster_se_and_ignores_chunking",)),
    M("mc-error-not-scaled-to-one-rank-sd", INF,
      "return float(v[hi] - v[lo]) / max(hi - lo, 1) * h", "return float(v[hi] - v[lo]) / max(hi - lo, 1)",
      (f"{INF_T}::test_quantile_mc_error_matches_sampling_theory_and_shrinks_like_one_over_root_b",)),
    M("bootstrap-resamples-below-the-tail", INF,
      "MIN_RESAMPLES = 20_000", "MIN_RESAMPLES = 2_000",
      (f"{INF_T}::test_class_bootstrap_agrees_with_cluster_se_and_ignores_chunking",)),
    M("holm-judges-claims-after-the-stop", INF,
      "        if stopped:\n", "        if False:\n",
      (f"{INF_T}::test_holm_family_matches_statistics_and_reports_not_tested",), quick=True),
    M("holm-takes-short-bootstraps", INF,
      "if ev.samples is not None and ev.samples.size < min_resamples:", "if False:",
      (f"{INF_T}::test_holm_family_refuses_short_bootstraps_and_skips_one_run_claims",)),
    M("test-against-zero-one-sided", INF,
      "return min(1.0, 2 * min(self.p_greater(0.0), self.p_less(0.0)))",
      "return min(self.p_greater(0.0), self.p_less(0.0))",
      (f"{INF_T}::test_interval_uses_the_t_quantile_of_its_df",
       f"{INF_T}::test_holm_family_analytic_claims_and_tests_against_zero")),
    M("d-rule-without-root-two", EFFECT,
      "max(floor, math.sqrt(2.0) * run_sd)", "max(floor, run_sd)",
      (EFFECT_T,)),
    M("d-rule-rounds-down", EFFECT,
      "steps = math.ceil(round(raw / grid, 9))", "steps = math.floor(round(raw / grid, 9))",
      (EFFECT_T,)),
    M("derangement-allows-fixed-points", CONTROLS,
      "if not (perm == np.arange(n)).any():", "if True:",
      (f"{CONTROLS_T}::test_mismatched_boxes_are_a_derangement_within_each_bucket",), quick=True),
    M("derangement-one-random-cycle", CONTROLS,
      "            perm = rng.permutation(n)\n",
      "            order = rng.permutation(n)\n            perm = np.empty(n, int)\n"
      "            perm[order] = np.roll(order, 1)\n",
      (f"{CONTROLS_T}::test_mismatched_sources_are_uniform_over_derangements",)),
    M("prior-half-pixel-off-centre", CONTROLS,
      "dy = np.arange(h, dtype=np.float64) - (h - 1) / 2", "dy = np.arange(h, dtype=np.float64) - h / 2",
      (f"{CONTROLS_T}::test_spread_matched_prior_recovers_a_gaussian_maps_sigma_at_the_centre",)),
    M("prior-without-the-pixels-own-spread", CONTROLS,
      "vyy = (py * dy**2).sum(1) + PIXEL_VARIANCE", "vyy = (py * dy**2).sum(1)",
      (f"{CONTROLS_T}::test_spread_matched_prior_of_a_one_pixel_map_and_a_flat_map",)),
    M("flat-map-energy-stays-nan", CONTROLS,
      'MISS: dict[str, float | bool] = {"energy": 0.0,', 'MISS: dict[str, float | bool] = {"energy": float("nan"),',
      (f"{CONTROLS_T}::test_flat_maps_are_a_miss_under_every_metric",)),
    M("flat-means-all-zero-only", CONTROLS,
      "return m.max((1, 2)) == m.min((1, 2))", "return m.max((1, 2)) == 0",
      (f"{CONTROLS_T}::test_flat_maps_are_a_miss_under_every_metric",)),
    M("centre-on-the-box-border-counts", CONTROLS,
      "return (x0 < w / 2) & (w / 2 < x1)", "return (x0 <= w / 2) & (w / 2 <= x1)",
      (f"{CONTROLS_T}::test_centre_containing_boxes_by_hand",)),
    M("boxacc-threshold-on-reported-images", CONTROLS,
      "t = choose_threshold(h[ho])", "t = choose_threshold(h[~ho])",
      (f"{CONTROLS_T}::test_maxboxacc_threshold_is_chosen_on_held_out_images",), quick=True),
    # --- bugs found by the mutation and property tests (each was real; the row puts it back)
    M("empty-bucket-bootstrap-divides-by-zero", STATS,
      "if m == 0:  # an empty bucket", "if m < 0:  # an empty bucket",
      ("tests/metrics/test_statistics_rules.py::test_empty_bucket_gives_no_interval_instead_of_failing",)),
    M("empty-bucket-weighted-means-reshape", STATS,
      "keep = keep & np.isfinite(a).all(axis=tuple(range(2, a.ndim)))",
      "keep = keep & np.isfinite(a.reshape(r, m, -1)).all(-1)",
      ("tests/metrics/test_statistics_rules.py::test_empty_bucket_gives_no_interval_instead_of_failing",)),
    M("csv-box-outside-the-image-scored-at-its-edge", "res2net/data/datasets.py",
      "boxes = [b for b in (_clip(b, (w, h)) for b in rec.boxes) if b is not None]", "boxes = list(rec.boxes)",
      ("tests/data/test_datasets_properties.py",)),
    M("loaded-image-aliases-the-cached-split", "res2net/data/datasets.py",
      "torch.from_numpy(pixels.transpose(2, 0, 1).copy())",
      "torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))",
      ("tests/data/test_datasets_rules.py::test_a_loaded_image_is_the_callers_own_copy",)),
    M("failed-save-leaves-its-temporary-file", "res2net/evaluation/results.py",
      "tmp.unlink(missing_ok=True)", "None",
      ("tests/evaluation/test_results_rules.py::test_a_failed_save_keeps_the_previous_file_and_leaves_nothing_behind",)),
    M("same-padding-even-window-centred-on-a-pixel", "res2net/geometry/receptive_field.py",
      "tuple((ke - 1) // 2 for ke in keff)", "tuple((ke - 1) / 2 for ke in keff)",
      ("tests/geometry/test_receptive_field_rules.py::test_padding_same_pads_like_pytorch",
       "tests/geometry/test_receptive_field_rules.py::test_padding_same_centre_is_where_the_gradient_is")),
    M("all-skipped-batch-drops-score-columns", "res2net/evaluation/scoring.py",
      "c[k] if k in c else _skipped_rows(len(c[\"image_id\"]), r) for c in cols",
      "c[k] for c in cols",
      ("tests/evaluation/test_scoring_rules.py::test_a_batch_of_skipped_images_merges_with_its_job",)),
    M("effect-size-d-rounded-to-ten-decimals", "res2net/metrics/effect_size.py",
      'float(f"{steps * grid:.15g}")', "round(steps * grid, 10)",
      ("tests/metrics/test_effect_size_rules.py::test_a_grid_with_many_decimals_keeps_d_on_it",)),
)

SANITY_TESTS = ("tests/metrics/test_boxes.py::test_box_iou_by_hand",)
SANITY_MARK = "mutate.py sanity check: this copy's res2net was imported"


class StaleMutation(Exception):
    """The snippet of a row no longer occurs exactly once: the code changed, the row must follow."""


def fail(message: str) -> None:
    """Stop with status 2: nothing could be judged (usage error, or the copies would not test themselves)."""
    print(message, file=sys.stderr)
    raise SystemExit(2)


def python() -> str:
    """The project's Python (its venv), else the one running this script."""
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def working_files() -> list[str]:
    """Files of the working tree git does not ignore (tracked and untracked), as paths relative to the root."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                         check=True, capture_output=True).stdout.decode()
    return sorted({p for p in out.split("\0") if p and (ROOT / p).is_file()})


def make_copy(files: list[str], dest: Path) -> None:
    """Copy ``files`` from the root to ``dest`` (a fresh folder per mutation, so no run sees another's writes)."""
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target, follow_symlinks=False)


def mutated_text(m: M, text: str) -> str:
    """``text`` with the row's snippet replaced; ``StaleMutation`` unless it occurs exactly once."""
    n = text.count(m.find)
    if n != 1:
        raise StaleMutation(f"{m.name}: the snippet occurs {n} times in {m.file}, expected exactly once "
                            f"(the code changed; update this row of MUTATIONS): {m.find!r}")
    return text.replace(m.find, m.replace)


def check_row(m: M) -> str | None:
    """Why the row cannot be applied to the current tree, or None."""
    path = ROOT / m.file
    if not path.is_file():
        return f"{m.name}: {m.file} does not exist"
    try:
        new = mutated_text(m, path.read_text())
        compile(new, m.file, "exec")
    except StaleMutation as e:
        return str(e)
    except SyntaxError as e:
        return f"{m.name}: the mutated {m.file} does not compile: {e}"
    return None


def child_env(copy: Path) -> dict[str, str]:
    """The environment of a test run in ``copy``: its packages first, no bytecode written."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@dataclass
class Run:
    """How one pytest run ended."""

    rc: int | None  # None: timed out
    seconds: float
    output: str


class WarmPytest:
    """scripts/warm_pytest.py as a server: each pytest run forked from one process that imported torch, numpy,
    PIL, pytest and hypothesis once (about 4 s of every run's start-up), instead of a fresh interpreter."""

    def __init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the runs put their own copy first
        self.proc = subprocess.Popen([python(), str(ROOT / "scripts" / "warm_pytest.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env, cwd=tempfile.gettempdir())
        self.replies: dict[int, dict] = {}
        self.done = threading.Condition()
        self.ids = itertools.count()
        self.closed = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            msg = json.loads(line)
            with self.done:
                self.replies.setdefault(msg["id"], {}).update(msg)
                self.done.notify_all()
        with self.done:
            self.closed = True
            self.done.notify_all()

    def _wait_for(self, rid: int, key: str, timeout: float | None) -> bool:
        with self.done:
            ok = self.done.wait_for(lambda: key in self.replies.get(rid, {}) or self.closed, timeout)
            if key not in self.replies.get(rid, {}):
                if self.closed:
                    raise RuntimeError("the warm pytest starter ended")
                return False
            return ok

    def run(self, copy: Path, args: list[str], timeout: float, out: Path) -> int | None:
        """pytest ``args`` in ``copy``, output to ``out``; its exit status, or None when ``timeout`` ran out (the
        run's process group is then killed)."""
        rid = next(self.ids)
        # the starter imported hypothesis before pytest could rewrite its asserts: pytest warns of it in every run
        args = ["-W", "ignore::pytest.PytestAssertRewriteWarning", *args]
        req = {"id": rid, "cwd": str(copy), "env": child_env(copy), "args": args, "out": str(out)}
        assert self.proc.stdin is not None
        with self.done:
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
        self._wait_for(rid, "pid", None)
        if self._wait_for(rid, "rc", timeout):
            return self.replies.pop(rid)["rc"]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.replies[rid]["pid"], signal.SIGKILL)
        self._wait_for(rid, "rc", None)
        self.replies.pop(rid)
        return None

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait()


WARM: WarmPytest | None = None  # set by main unless --cold


def run_tests(copy: Path, tests: tuple[str, ...], timeout: float) -> Run:
    """The selection in ``copy`` with the project's Python; its whole process group is ended on timeout."""
    args = ["-x", "-q", "-p", "no:cacheprovider", *tests]
    t0 = time.monotonic()
    if WARM is not None:
        fd, name = tempfile.mkstemp(prefix="pytest-", suffix=".log", dir=copy.parent)
        os.close(fd)
        try:
            rc = WARM.run(copy, args, timeout, Path(name))
            return Run(rc, time.monotonic() - t0, Path(name).read_text(errors="replace"))
        finally:
            Path(name).unlink(missing_ok=True)
    cmd = [python(), "-m", "pytest", *args]
    proc = subprocess.Popen(cmd, cwd=copy, env=child_env(copy), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return Run(proc.returncode, time.monotonic() - t0, out)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return Run(None, time.monotonic() - t0, out)
    except BaseException:  # Ctrl-C: leave no test run behind
        os.killpg(proc.pid, signal.SIGKILL)
        raise


def tail(text: str, lines: int = 15) -> str:
    """The last lines of pytest's output, indented under the row they explain."""
    return "\n".join("    " + s for s in text.rstrip().splitlines()[-lines:])


def check_isolation(copy: Path, timeout: float) -> None:
    """Exit unless the copy's packages are the ones imported: by spec, and by a pytest run on a broken res2net."""
    probe = ("import importlib.util as u; "
             "print(u.find_spec('res2net').origin); print(u.find_spec('dashboard').origin)")
    out = subprocess.run([python(), "-c", probe], cwd=copy, env=child_env(copy), capture_output=True, text=True,
                         check=True).stdout.split()
    if not all(Path(p).resolve().is_relative_to(copy.resolve()) for p in out):
        fail(f"isolation check failed: the packages import from {out}, not from the copy {copy}")
    init = copy / "res2net" / "__init__.py"
    original = init.read_text()
    init.write_text(original + f"\nraise RuntimeError({SANITY_MARK!r})\n")
    try:
        run = run_tests(copy, SANITY_TESTS, timeout)
    finally:
        init.write_text(original)
    if run.rc in (0, None) or SANITY_MARK not in run.output:
        fail(f"isolation check failed: tests passed (or did not fail on it) with the copy's res2net broken, "
                 f"so they import another copy of the package:\n{tail(run.output)}")


def plain(tests: tuple[str, ...]) -> bool:
    """Whether a selection is only node ids and files (no options), so it can run together with others."""
    return not any(t.startswith("-") for t in tests)


def run_baselines(clean: Path, rows: list[M], args: argparse.Namespace) -> dict[tuple[str, ...], Run]:
    """Each distinct selection of ``rows`` run unmutated, ``--jobs`` at a time: the plain ones together in one run
    (one start-up instead of many), each on its own when that run fails or has options such as ``-k``."""
    selections = list(dict.fromkeys(m.tests for m in rows))
    timeouts = {m.tests: m.timeout or args.timeout for m in rows}
    together = [s for s in selections if plain(s)] if len(selections) > 1 else []
    if len(together) < 2:
        together = []
    out: dict[tuple[str, ...], Run] = {}

    def report(run: Run, what: str) -> None:
        print(f"baseline {'passes' if run.rc == 0 else 'FAILS':6} {run.seconds:6.1f} s  {what}", flush=True)
        if run.rc != 0 or args.verbose:
            print(tail(run.output), flush=True)

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        union = tuple(dict.fromkeys(t for s in together for t in s))
        joint = pool.submit(run_tests, clean, union, sum(timeouts[s] for s in together)) if together else None
        alone = {s: pool.submit(run_tests, clean, s, timeouts[s]) for s in selections if s not in together}
        if joint is not None:
            run = joint.result()
            print(f"baseline {'passes' if run.rc == 0 else 'FAILS':6} {run.seconds:6.1f} s  {len(together)} plain "
                  f"selections together{'' if run.rc == 0 else ': running each on its own'}", flush=True)
            if run.rc == 0:
                out.update(dict.fromkeys(together, run))
            else:
                alone.update({s: pool.submit(run_tests, clean, s, timeouts[s]) for s in together})
        for s, future in alone.items():
            out[s] = future.result()
            report(out[s], " ".join(s))
    return out


def judge(run: Run) -> tuple[str, str]:
    """(result, note) of a mutant's run: pytest's 1 (a test failed) or 2 (collection failed) kill it."""
    if run.rc is None:
        return "killed", "timeout"
    if run.rc == 0:
        return "SURVIVED", ""
    if run.rc in (1, 2):
        return "killed", "" if run.rc == 1 else "collection error"
    return "error", f"pytest exit status {run.rc}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutations")
    ap.add_argument("--quick", action="store_true", help="run the small subset meant for CI")
    ap.add_argument("--list", action="store_true", help="list the mutations and whether each still applies")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per pytest run (default 240)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="mutants tested at a time, each in its own copy (default: one per core)")
    ap.add_argument("--cold", action="store_true",
                    help="start every pytest run in a fresh interpreter (default: forked from a warm one)")
    ap.add_argument("-v", "--verbose", action="store_true", help="show the end of pytest's output for every run")
    return ap.parse_args(argv)


def select(args: argparse.Namespace) -> list[M]:
    names = [m.name for m in MUTATIONS]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        fail(f"duplicate mutation names in MUTATIONS: {', '.join(sorted(dupes))}")
    chosen = list(MUTATIONS)
    if args.only:
        unknown = [n for n in args.only if n not in names]
        if unknown:
            fail(f"unknown mutation(s): {', '.join(unknown)}; --list shows them all")
        chosen = [m for m in chosen if m.name in args.only]
    if args.quick:
        chosen = [m for m in chosen if m.quick]
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chosen = select(args)
    stale = {m.name: why for m in chosen if (why := check_row(m))}
    if args.list:
        for m in chosen:
            flag = "STALE" if m.name in stale else "quick" if m.quick else ""
            print(f"{m.name:40} {flag:6} {m.file:22} {' '.join(m.tests)}")
        for why in stale.values():
            print(f"  {why}", file=sys.stderr)
        return 2 if stale else 0
    for why in stale.values():
        print(f"STALE ROW: {why}", file=sys.stderr)
    runnable = [m for m in chosen if m.name not in stale]
    if args.jobs > 1:  # share the cores between the runs at once (before the warm starter imports torch)
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // args.jobs)))
    global WARM
    if not args.cold and runnable and hasattr(os, "fork"):
        WARM = WarmPytest()
    try:
        return _run_all(args, chosen, runnable, stale)
    finally:
        if WARM is not None:
            WARM.close()
            WARM = None


def _run_all(args: argparse.Namespace, chosen: list[M], runnable: list[M], stale: dict[str, str]) -> int:
    """Copy the tree, check the copies' isolation, run the baselines, then every runnable mutant; print the table."""
    files = working_files()
    results: dict[str, tuple[str, float, str]] = {n: ("error", 0.0, "stale row") for n in stale}
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="res2scope-mutate-") as tmp:
        tmp_path = Path(tmp)
        shared = (ROOT.parent / "shared").resolve()
        if shared.is_dir():  # the data folder lies beside the repository: keep it beside the copies too
            (tmp_path / "shared").symlink_to(shared, target_is_directory=True)
        clean = tmp_path / "clean"
        make_copy(files, clean)
        with ThreadPoolExecutor(max_workers=1) as side:  # the isolation check breaks a copy of its own meanwhile
            isolated = None
            if runnable:
                make_copy(files, tmp_path / "isolation")
                isolated = side.submit(check_isolation, tmp_path / "isolation", args.timeout)
            baseline = run_baselines(clean, runnable, args)
            if isolated is not None:
                isolated.result()  # exits (SystemExit) when the copies do not import their own packages
        def one(m: M) -> None:
            """Plant ``m`` in its own copy and run its tests (mutants run ``--jobs`` at a time)."""
            if baseline[m.tests].rc != 0:
                results[m.name] = ("error", 0.0, "baseline fails")
                return
            copy = tmp_path / m.name
            make_copy(files, copy)
            target = copy / m.file
            target.write_text(mutated_text(m, target.read_text()))
            run = run_tests(copy, m.tests, m.timeout or args.timeout)
            shutil.rmtree(copy, ignore_errors=True)
            result, note = judge(run)
            results[m.name] = (result, run.seconds, note)
            print(f"  {result:8} {run.seconds:6.1f} s  {m.name}"
                  + (f"\n{tail(run.output)}" if result != "killed" or args.verbose else ""), flush=True)

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            list(pool.map(one, runnable))
    total = time.monotonic() - t_start
    print(f"\n{'mutation':40} {'result':9} {'seconds':>7}  note")
    for m in chosen:
        result, secs, note = results[m.name]
        print(f"{m.name:40} {result:9} {secs:7.1f}  {note}")
    counts = {k: sum(r[0] == k for r in results.values()) for k in ("killed", "SURVIVED", "error")}
    print(f"\n{len(chosen)} mutations: {counts['killed']} killed, {counts['SURVIVED']} survived, "
          f"{counts['error']} not judged (stale row or baseline fails); {total:.0f} s in all")
    return 1 if counts["SURVIVED"] else 2 if counts["error"] else 0


if __name__ == "__main__":
    sys.exit(main())
