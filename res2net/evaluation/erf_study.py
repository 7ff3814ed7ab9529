"""The ERF study, a step on top of the scored rows: effective receptive fields from Gaussian-noise inputs, trained
and random-init, at every stage output and at the branches of ``ERF_STAGES``' last blocks, with intervals over runs
and inputs; and the per-run values the ERF claims judge: what training adds to the architecture's ERF (trained
minus random init of the same seed), with sub-pixel radii, on the study's noise, on noise at the model's own input
size and on its own val images."""

from __future__ import annotations

import numpy as np
import torch

from res2net.analysis.erf import compute_erf, erf_metrics, mass_radius, radius_samples, touches_border
from res2net.evaluation.protocol import BASELINE, BOOT_COMPARE, ERF_STAGES, STAGES, VERDICT_LAYER, scale_of, stage_taps
from res2net.metrics import statistics as S
from res2net.metrics.table import rounded as _r
from res2net.models.factory import create_model
from res2net.models.preprocessing import normalize
from res2net.models.zoo import get_spec

__all__ = ["erf_study", "rows_value", "training_values"]


def _erf_taps(model: torch.nn.Module) -> list[str]:
    groups = stage_taps(model)
    taps = [groups[s]["output"] for s in STAGES if s in groups]
    for s in ERF_STAGES:
        taps += [t for k, t in groups.get(s, {}).items() if k != "output"]
    return taps


def _erf_maps(name: str, seeds: list[int], trained: bool, taps: list[str], inputs: int | torch.Tensor,
              size: int | None) -> tuple[dict[str, np.ndarray], dict[str, tuple[float, float]]]:
    """Per tap: per-input ERF contributions stacked over runs, (runs, inputs, H, W) float32, and the unit's centre.

    ``inputs``: a number of Gaussian-noise inputs of ``size`` px (None: the model's input size), or uint8 images at
    the model's input size. Every run sees the same inputs (noise seed 0), so runs and models pair input by input.
    """
    per_tap: dict[str, list[np.ndarray]] = {t: [] for t in taps}
    centres: dict[str, tuple[float, float]] = {}
    for seed in seeds:
        if trained:
            model = create_model(name, pretrained=True, seed=seed)
        else:
            torch.manual_seed(seed)
            model = create_model(name)
        x = inputs if isinstance(inputs, int) else normalize(inputs, model.spec)
        erfs = compute_erf(model, x, taps, size=size, seed=0, batch_size=8, keep_inputs=True)
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


def _normalised(raw: np.ndarray) -> np.ndarray:
    total = raw.sum()
    return raw / total if total > 0 else raw


def _erf_summary(maps: np.ndarray, centre: tuple[float, float], weights: np.ndarray) -> dict:
    """Radii with intervals, area ratios and border flags of one tap's ERF over runs and inputs."""
    flat = maps.reshape(-1, *maps.shape[-2:]).astype(np.float64)
    raw = flat.mean(0)
    m = _normalised(raw)
    metrics = erf_metrics(m, centre, raw)
    out = {"radius_99": _r(metrics["radius_99_square"]), "touches_border": bool(metrics["touches_border"]),
           "area_ratio_20_published": _r(metrics["area_ratio_20"]),
           "area_ratio_20_scale_free": _r(metrics["area_ratio_20_scale_free"]),
           "area_ratio_50_published": _r(metrics["area_ratio_50"]),
           "area_ratio_50_scale_free": _r(metrics["area_ratio_50_scale_free"])}
    for level, key in ((0.5, "radius_50"), (0.9, "radius_90")):
        s = radius_samples(flat, centre, level, weights, interpolate=True)
        c = S.percentile_ci(s, mass_radius(m, centre, level, interpolate=True), 0.95)
        out[key], out[f"{key}_low"], out[f"{key}_high"] = _r(c.estimate), _r(c.low), _r(c.high)
    return out


def _run_radii(maps: np.ndarray, centre: tuple[float, float]) -> tuple[np.ndarray, bool]:
    """Per run (``maps``: runs, inputs, H, W): the sub-pixel 50% radius of the run's mean ERF; and whether any run's
    99% mass reaches the border (its radii are then lower bounds)."""
    means = [_normalised(maps[r].astype(np.float64).mean(0)) for r in range(maps.shape[0])]
    return (np.array([mass_radius(m, centre, 0.5, interpolate=True) for m in means]),
            any(touches_border(m, centre) for m in means))


def training_values(trained: np.ndarray, init: np.ndarray, trained_ref: np.ndarray, init_ref: np.ndarray
                    ) -> np.ndarray:
    """Per run: (trained minus reference) minus (random init minus reference), runs paired by seed: what training
    adds to a radius difference beyond what the architecture gives at initialisation."""
    return (np.asarray(trained) - np.asarray(trained_ref)) - (np.asarray(init) - np.asarray(init_ref))


def _slug(probe: str) -> str:
    return probe.replace(" px", "px").replace(" ", "-")


def _training_claims(radii: dict[tuple[str, str], dict[str, np.ndarray]], border: dict[tuple[str, str], bool],
                     groups: dict[str, dict[str, dict[str, str]]], names: list[str], baseline: str | None,
                     probe: str) -> list[dict]:
    """The ERF claims of one probe from per-run radii ``radii[(model, weights)][tap]``."""
    out = []
    for name in names:
        g = groups[name][VERDICT_LAYER]
        scale = get_spec(name).scale or scale_of(groups[name])
        if scale >= 3:
            b0, bl = g["branch0"], g[f"branch{scale - 2}"]
            tr, ini = radii[(name, "trained")], radii[(name, "random init")]
            out.append({"id": f"erf-branches-{_slug(probe)}-{name}", "kind": "branch_erf", "model": name,
                        "layer": f"{b0} -> {bl}", "probe": probe,
                        "values": training_values(tr[bl], ini[bl], tr[b0], ini[b0]),
                        "trained": float(np.mean(tr[bl] - tr[b0])), "init": float(np.mean(ini[bl] - ini[b0])),
                        "border": border[(name, "trained")] or border[(name, "random init")]})
    if baseline in names:
        tb = groups[baseline][VERDICT_LAYER]["output"]
        for name in names:
            if name == baseline:
                continue
            ta = groups[name][VERDICT_LAYER]["output"]
            tr, ini = radii[(name, "trained")][ta], radii[(name, "random init")][ta]
            tr_b, ini_b = radii[(baseline, "trained")][tb], radii[(baseline, "random init")][tb]
            n = min(len(tr), len(tr_b))  # runs paired by position (the same seeds)
            out.append({"id": f"erf-block-{_slug(probe)}-{name}", "kind": "block_erf", "model": name, "layer": ta,
                        "probe": probe, "values": training_values(tr[:n], ini[:n], tr_b[:n], ini_b[:n]),
                        "trained": float(np.mean(tr[:n] - tr_b[:n])), "init": float(np.mean(ini[:n] - ini_b[:n])),
                        "border": any(border[(m, w)] for m in (name, baseline) for w in ("trained", "random init"))})
    return out


def erf_study(names: list[str], seeds: list[int], n_inputs: int, size: int, baseline: str | None = BASELINE,
              images: torch.Tensor | None = None) -> tuple[list[dict], list[dict]]:
    """ERF rows (trained and random-init, every tap of ``_erf_taps``) and the ERF claims' per-run values.

    Every run of every model sees the same ``n_inputs`` noise inputs of ``size`` px, so they pair input by input.
    The claims are measured on that noise, on ``n_inputs`` noise inputs at each model's own input size, and on
    ``images`` (uint8 val images at the models' input size) when given."""
    if n_inputs < 1:
        raise ValueError(f"the ERF study needs at least one noise input, got {n_inputs}")
    rows = []
    weights = _erf_weights(len(seeds), n_inputs, BOOT_COMPARE)
    archs = {name: create_model(name) for name in names}  # architecture only: taps and groups
    groups = {name: stage_taps(archs[name]) for name in names}
    probes = {f"{size} px noise": {}, "own-size noise": {}, **({"own val images": {}} if images is not None else {})}
    borders: dict[str, dict] = {p: {} for p in probes}
    for init in ("trained", "random init"):
        for name in names:
            taps = _erf_taps(archs[name])
            maps, centres = _erf_maps(name, seeds, init == "trained", taps, n_inputs, size)
            main: dict[str, np.ndarray] = {}
            for t in taps:
                summary = _erf_summary(maps[t], centres[t], weights)
                main[t], edge = _run_radii(maps[t], centres[t])
                borders[f"{size} px noise"][(name, init, t)] = edge
                stage = t.split(".")[0]
                rows.append({"model": name, "weights": init, "tap": t, "stage": stage,
                             "group": "output" if "branch" not in t else t.rsplit(".", 1)[1],
                             "branch": int(t.rsplit("branch", 1)[1]) if "branch" in t else None,
                             **summary, "inputs": n_inputs, "size": size, "runs": len(seeds)})
            probes[f"{size} px noise"][(name, init)] = main
            verdict = list(groups[name].get(VERDICT_LAYER, {}).values())
            own = {"own-size noise": n_inputs, **({"own val images": images} if images is not None else {})}
            for probe, inputs in own.items():
                pmaps, pcentres = _erf_maps(name, seeds, init == "trained", verdict, inputs, None)
                probes[probe][(name, init)] = {}
                for t in verdict:
                    probes[probe][(name, init)][t], borders[probe][(name, init, t)] = _run_radii(pmaps[t],
                                                                                                 pcentres[t])
    judged = [n for n in names if VERDICT_LAYER in groups[n]]
    claims = []
    for probe, radii in probes.items():
        edge = {(n, w): any(v for (m, ww, t), v in borders[probe].items()
                            if m == n and ww == w and t in groups[n][VERDICT_LAYER].values())
                for n in judged for w in ("trained", "random init")}
        claims += _training_claims(radii, edge, groups, judged, baseline if baseline in judged else None, probe)
    return rows, claims


def rows_value(rows: list[dict], name: str, init: str, tap: str, key: str = "radius_50") -> float:
    """The value of ``key`` in the ERF row of (model, weights, tap)."""
    for r in rows:
        if r["model"] == name and r["weights"] == init and r["tap"] == tap:
            return float(r[key])
    raise KeyError((name, init, tap))
