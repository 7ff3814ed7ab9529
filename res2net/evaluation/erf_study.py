"""The ERF study, a step on top of the scored rows: effective receptive fields from Gaussian-noise inputs, trained
and random-init, at every stage output and at the branches of ``ERF_STAGES``' last blocks, with intervals over runs
and inputs, and the samples the ERF claims (branch and block ranges) judge."""

from __future__ import annotations

import numpy as np
import torch

from res2net.analysis.erf import compute_erf, erf_metrics, radius_samples
from res2net.evaluation.protocol import BASELINE, BOOT_COMPARE, ERF_STAGES, STAGES, VERDICT_LAYER, scale_of, stage_taps
from res2net.metrics import statistics as S
from res2net.metrics.table import rounded as _r
from res2net.models.factory import create_model
from res2net.models.zoo import get_spec

__all__ = ["erf_study", "rows_value"]


def _erf_taps(model: torch.nn.Module) -> list[str]:
    groups = stage_taps(model)
    taps = [groups[s]["output"] for s in STAGES if s in groups]
    for s in ERF_STAGES:
        taps += [t for k, t in groups.get(s, {}).items() if k != "output"]
    return taps


def _erf_maps(name: str, seeds: list[int], trained: bool, taps: list[str], n_inputs: int, size: int
              ) -> tuple[dict[str, np.ndarray], dict[str, tuple[float, float]]]:
    """Per tap: per-input ERF contributions stacked over runs, (runs, inputs, H, W) float32, and the unit's centre.

    Every run sees the same noise inputs (seed 0), so runs and models are paired input by input.
    """
    per_tap: dict[str, list[np.ndarray]] = {t: [] for t in taps}
    centres: dict[str, tuple[float, float]] = {}
    for seed in seeds:
        if trained:
            model = create_model(name, pretrained=True, seed=seed)
        else:
            torch.manual_seed(seed)
            model = create_model(name)
        erfs = compute_erf(model, n_inputs, taps, size=size, seed=0, batch_size=8, keep_inputs=True)
        for t in taps:
            per_tap[t].append(erfs[t].per_input)
            centres[t] = erfs[t].centre
    return {t: np.stack(v) for t, v in per_tap.items()}, centres


def _erf_weights(runs: int, inputs: int, n: int) -> np.ndarray:
    """(n, runs * inputs) weights: runs resampled, then inputs (one draw of inputs shared by the drawn runs)."""
    rng = np.random.default_rng(0)
    rw = rng.multinomial(runs, np.full(runs, 1.0 / runs), size=n).astype(np.float64)
    iw = rng.multinomial(inputs, np.full(inputs, 1.0 / inputs), size=n).astype(np.float64)
    return (rw[:, :, None] * iw[:, None, :]).reshape(n, runs * inputs)


def _erf_summary(maps: np.ndarray, centre: tuple[float, float], weights: np.ndarray) -> tuple[dict, np.ndarray]:
    """Radii with intervals, area ratios and border flags of one tap's ERF over runs and inputs."""
    flat = maps.reshape(-1, *maps.shape[-2:]).astype(np.float64)
    raw = flat.mean(0)
    m = raw / raw.sum() if raw.sum() > 0 else raw
    metrics = erf_metrics(m, centre, raw)
    out = {"radius_99": _r(metrics["radius_99_square"]), "touches_border": bool(metrics["touches_border"]),
           "area_ratio_20_published": _r(metrics["area_ratio_20"]),
           "area_ratio_20_scale_free": _r(metrics["area_ratio_20_scale_free"]),
           "area_ratio_50_published": _r(metrics["area_ratio_50"]),
           "area_ratio_50_scale_free": _r(metrics["area_ratio_50_scale_free"])}
    samples50 = radius_samples(flat, centre, 0.5, weights)
    for level, key in ((0.5, "radius_50"), (0.9, "radius_90")):
        s = samples50 if level == 0.5 else radius_samples(flat, centre, level, weights)
        c = S.percentile_ci(s, metrics[f"radius_{int(level * 100)}_square"], 0.95)
        out[key], out[f"{key}_low"], out[f"{key}_high"] = _r(c.estimate), _r(c.low), _r(c.high)
    return out, samples50


def erf_study(names: list[str], seeds: list[int], n_inputs: int, size: int, baseline: str | None = BASELINE
               ) -> tuple[list[dict], list[dict]]:
    """ERF rows (trained and random-init, every tap of ``_erf_taps``) and the samples the ERF claims need.

    Every run of every model sees the same ``n_inputs`` noise inputs of ``size`` px, so they pair input by input."""
    if n_inputs < 1:
        raise ValueError(f"the ERF study needs at least one noise input, got {n_inputs}")
    rows, claims = [], []
    weights = _erf_weights(len(seeds), n_inputs, BOOT_COMPARE)
    verdict_outputs: dict[str, tuple[np.ndarray, str]] = {}  # trained, VERDICT_LAYER output, per model
    for init in ("trained", "random init"):
        for name in names:
            model = create_model(name)
            taps = _erf_taps(model)
            maps, centres = _erf_maps(name, seeds, init == "trained", taps, n_inputs, size)
            samples = {}
            for t in taps:
                summary, samples[t] = _erf_summary(maps[t], centres[t], weights)
                stage = t.split(".")[0]
                rows.append({"model": name, "weights": init, "tap": t, "stage": stage,
                             "group": "output" if "branch" not in t else t.rsplit(".", 1)[1],
                             "branch": int(t.rsplit("branch", 1)[1]) if "branch" in t else None,
                             **summary, "inputs": n_inputs, "size": size, "runs": len(seeds)})
            groups = stage_taps(model)
            scale = get_spec(name).scale or scale_of(groups)
            if init == "trained" and scale >= 3:
                b0, bl = groups[VERDICT_LAYER]["branch0"], groups[VERDICT_LAYER][f"branch{scale - 2}"]
                est = rows_value(rows, name, init, bl) - rows_value(rows, name, init, b0)
                claims.append({"id": f"erf-branches-{name}", "kind": "branch_erf", "model": name,
                               "layer": f"{b0} -> {bl}", "estimate": est, "samples": samples[bl] - samples[b0],
                               "size": size})
            if init == "trained" and VERDICT_LAYER in groups:
                tap = groups[VERDICT_LAYER]["output"]
                verdict_outputs[name] = (samples[tap], tap)
    if baseline in names:
        for name in names:
            if name == baseline:
                continue
            a, ta = verdict_outputs[name]
            b, tb = verdict_outputs[baseline]
            est = rows_value(rows, name, "trained", ta) - rows_value(rows, baseline, "trained", tb)
            claims.append({"id": f"erf-block-{name}", "kind": "block_erf", "model": name, "layer": ta,
                           "estimate": est, "samples": a - b, "size": size})
    return rows, claims


def rows_value(rows: list[dict], name: str, init: str, tap: str, key: str = "radius_50") -> float:
    """The value of ``key`` in the ERF row of (model, weights, tap)."""
    for r in rows:
        if r["model"] == name and r["weights"] == init and r["tap"] == tap:
            return float(r[key])
    raise KeyError((name, init, tap))
