"""The knock-out study and the scale sweep: does each branch of a Res2Net block serve the object sizes its receptive
field suggests, and does accuracy rise with the scale s as the paper reports?

Study, per embedded model and training run: every branch of every normal (hierarchical) block is mean-ablated for
its direct effect (``ablate(mode='mean', effect='direct')``: only its own input to the 1x1 fusion conv takes its
per-channel mean over training images, so later branches still receive it and the lesion is alike for every
branch), and, as the control, a random channel group of one branch's width drawn from the whole fusion input
(the ResNet: a quarter of its 3x3, the share of one branch at s = 4; ``ablate_channels``). On a fixed subset of val
images we score the change (ablated minus intact) in top-1, true-class log-probability, and the energy in box and
coverage of the true-class Grad-CAM at the verdict stage's output (recomputed after the lesion), per object-size
bucket, and the lesion's strength: the relative change of the lesioned block's output, ||ablated - intact|| /
||intact|| per image.

Hypothesis, stated before any run: removing a large-receptive-field branch hurts large objects more than small
ones, and removing a small-receptive-field branch the reverse. The interaction of a lesion is its harm on large
objects minus its harm on small ones (harm = intact minus ablated). The confirmatory test, per Res2Net with s >= 3,
at the normal blocks of ``CONFIRM_STAGES`` (layer1, layer2: receptive fields smaller than the 64 px image):
interaction(branch s-2, the largest conv RF) minus interaction(branch 0, the smallest), expected above +d. These
claims join the one Holm family of ``claims`` (runs as the top level, like every architecture claim); the
per-branch rows and interactions are exploratory (hierarchical bootstrap, 95%).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from res2net.analysis.cam import compute_cams
from res2net.analysis.lesion import ablate, ablate_channels, branch_means
from res2net.data.tiny_imagenet import Split, load_split
from res2net.evaluation.judging import Pending
from res2net.evaluation.protocol import PAPER, even_indices
from res2net.geometry.registration import register_all
from res2net.metrics import boxes as L
from res2net.metrics import controls as C
from res2net.metrics import statistics as S
from res2net.metrics import table as T
from res2net.metrics.table import rounded as _r
from res2net.models.factory import create_model
from res2net.models.preprocessing import normalize
from res2net.models.taps import TapCapture, block_infos, eval_mode, iter_blocks
from res2net.models.zoo import get_spec

__all__ = ["KNOCKOUT_IMAGES", "MEAN_IMAGES", "KNOCKOUT_METRICS", "CONFIRM_STAGES", "CONTROL_KEY", "paper_scale_top1",
           "study_blocks", "control_channels", "score_pass", "block_knockout", "train_images", "run_study",
           "summarise_study", "knockout_pending", "scale_sweep", "trend_per_doubling"]

KNOCKOUT_IMAGES = 500  # evenly spaced val images scored under every lesion (every class represented)
MEAN_IMAGES = 2000  # evenly spaced train images whose branch means replace a knocked-out branch
KNOCKOUT_METRICS = ("top1", "logprob", "energy", "coverage")
CONFIRM_METRICS = ("top1", "energy", "coverage")
CONFIRM_STAGES = ("layer1", "layer2")  # fixed before any run: receptive fields smaller than the image
CONTROL_KEY = "group"  # '<block>.group': the random channel group of one branch's width
CONTROL_SEED = 0
LOGPROB_MIN_EFFECT = 0.05  # nats: the smallest change in true-class log-probability that would matter
BOOT = 2000
# The paper's scale ablation (Res2Net-50 at matched complexity, 224 px ImageNet): s = 1 is its ResNet-50 (top-1
# error 23.85); s = 2, 4, 8 are the 48w x 2s, 26w x 4s and 14w x 8s rows of the zoo (100 - reported error).
PAPER_SCALE_MODELS = {2: "res2net50_48w_2s", 4: "res2net50_26w_4s", 8: "res2net50_14w_8s"}
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228)  # Student t, df 1..10


@cache
def paper_scale_top1() -> dict[int, float]:
    """The paper's ImageNet top-1 per scale s (s = 1: its ResNet-50's 23.85 error), from the zoo's reported values."""
    return {1: 76.15, **{s: get_spec(n).reported_top1 for s, n in PAPER_SCALE_MODELS.items()}}


def study_blocks(model: nn.Module) -> list[str]:
    """Every normal block, in forward order."""
    return [i.name for i in block_infos(model) if i.stype == "normal"]


def control_channels(model: nn.Module, block: str) -> list[int]:
    """The control lesion's channels of ``block``'s fusion input: one branch's width (a ResNet: a quarter of its
    3x3), drawn without replacement from all of them with a seed fixed per block."""
    b = dict(iter_blocks(model))[block]
    n = b.conv3.in_channels
    k = n // b.num_branches if b.num_branches > 1 else max(1, n // 4)
    stage, _, index = block.partition(".")
    rng = np.random.default_rng([CONTROL_SEED, int(stage.removeprefix("layer") or 0), int(index or 0)])
    return sorted(int(c) for c in rng.choice(n, size=k, replace=False))


def score_pass(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, boxes: np.ndarray, tap: str,
               batch_size: int = 250) -> dict[str, np.ndarray]:
    """One forward (and the backward to ``tap``) of normalised ``images``: per image correct, true-class
    log-probability, and energy in box and coverage of the true-class Grad-CAM at ``tap``, registered on the image
    (a flat map is a miss: ``metrics.controls.FLAT_MAP_RULE``, as in every other score)."""
    size = tuple(images.shape[-2:])
    parts: dict[str, list[np.ndarray]] = {k: [] for k in KNOCKOUT_METRICS}
    for s in range(0, len(images), batch_size):
        x, y, b = images[s:s + batch_size], labels[s:s + batch_size], boxes[s:s + batch_size]
        cams, logits = compute_cams(model, x, targets=y, taps=[tap], return_logits=True)
        placed = register_all(model, cams, size)[tap].double().numpy()
        parts["top1"].append((logits.argmax(1) == y).numpy().astype(np.float64))
        parts["logprob"].append(torch.log_softmax(logits.double(), 1).gather(1, y[:, None])[:, 0].numpy())
        ruled = C.apply_flat_map_rule({"energy": np.asarray(L.energy_in_box(placed, b), dtype=np.float64),
                                       "coverage": np.asarray(L.coverage(placed, b), dtype=np.float64)},
                                      C.flat_maps(placed))
        parts["energy"].append(ruled["energy"])
        parts["coverage"].append(ruled["coverage"])
    return {k: np.concatenate(v) for k, v in parts.items()}


@torch.no_grad()
def _block_output(model: nn.Module, images: torch.Tensor, block: str, batch_size: int) -> torch.Tensor:
    with eval_mode(model):
        out = []
        for s in range(0, len(images), batch_size):
            with TapCapture(model, [block], stop_at_last=True) as cap:
                cap.run(images[s:s + batch_size])
            out.append(cap.activations[block].double().flatten(1).cpu())
    return torch.cat(out)


def _strength(changed: torch.Tensor, intact: torch.Tensor) -> np.ndarray:
    """Per image ||changed - intact|| / ||intact|| of a block's output (0 where the output is all zero; a non-zero norm,
    however small, divides as it is: no floor)."""
    norm = intact.norm(dim=1)
    return torch.where(norm > 0, (changed - intact).norm(dim=1) / norm, 0.0).numpy()  # x / 0 is never selected


def block_knockout(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, boxes: np.ndarray, block: str,
                   tap: str, means: dict[str, torch.Tensor] | None = None, intact: dict[str, np.ndarray] | None = None,
                   mode: str = "mean", effect: str = "direct", batch_size: int = 250, control: bool = False
                   ) -> dict[str, dict[str, np.ndarray]]:
    """Scores of the intact model (reused when given) and with each branch of ``block`` knocked out in turn, and
    with ``control`` the random channel group too (mean mode): {'intact' | '<block>.branch<i>' | '<block>.group':
    scores of ``score_pass``, plus 'strength' per lesion}. At most (branches + 2) passes over the images, plus
    one forward to the block per lesion for the strength."""
    out = {"intact": intact if intact is not None else score_pass(model, images, labels, boxes, tap, batch_size)}
    base = _block_output(model, images, block, batch_size)
    n = next(i.num_branches for i in block_infos(model) if i.name == block)
    lesions = [(f"{block}.branch{i}", lambda i=i: ablate(model, {block: [i]}, mode=mode, effect=effect, means=means))
               for i in range(n)]
    if control:
        lesions.append((f"{block}.{CONTROL_KEY}",
                        lambda: ablate_channels(model, block, control_channels(model, block), means or {})))
    for key, lesion in lesions:
        with lesion():
            scores = score_pass(model, images, labels, boxes, tap, batch_size)
            scores["strength"] = _strength(_block_output(model, images, block, batch_size), base)
        out[key] = scores
    return out


def train_images(train: Split, name: str, n: int = MEAN_IMAGES) -> torch.Tensor:
    """The ``n`` evenly spaced training images whose branch means a 'mean' knock-out uses, normalised for ``name``."""
    return normalize(train.images[even_indices(len(train), n)], get_spec(name))


def run_study(names: Sequence[str], seeds: Sequence[int], data_dir: str | Path, val: Split, verdict_layer: str,
              n_images: int = KNOCKOUT_IMAGES, n_means: int = MEAN_IMAGES, log: Callable[[str], None] = print
              ) -> dict[str, np.ndarray]:
    """Per-image scores of every model, run and lesion: arrays ``knockout/<model>/seed<s>/<intact|lesion>/<metric>``
    (lesions also ``strength``) and ``knockout/image_index`` (val indices), ``knockout/mean_index`` (train indices
    of the branch means)."""
    idx = even_indices(len(val), n_images)
    train = load_split("train", data_dir)
    midx = even_indices(len(train), n_means)
    labels = val.labels[idx]
    boxes = val.boxes[idx].numpy().astype(np.int64)
    arrays: dict[str, np.ndarray] = {"knockout/image_index": idx.numpy(), "knockout/mean_index": midx.numpy()}
    for name in names:
        spec = get_spec(name)
        x, xm = normalize(val.images[idx], spec), normalize(train.images[midx], spec)
        for seed in seeds:
            model = create_model(name, pretrained=True, seed=seed)
            tap = _verdict_tap(model, verdict_layer)
            blocks = study_blocks(model)
            means = branch_means(model, xm, blocks)
            log(f"knock-out: {name} seed {seed}, {len(blocks)} blocks ...")
            intact = score_pass(model, x, labels, boxes, tap)
            scores = {"intact": intact}
            for b in blocks:
                scores.update(block_knockout(model, x, labels, boxes, b, tap, means, intact, control=True))
            for key, v in scores.items():
                for metric, a in v.items():
                    arrays[f"knockout/{name}/seed{seed}/{key}/{metric}"] = a
    return arrays


def _verdict_tap(model: nn.Module, verdict_layer: str) -> str:
    return [i.name for i in block_infos(model) if i.name.split(".")[0] == verdict_layer][-1]


def _get(arrays: dict, name: str, seeds: Sequence[int], key: str, metric: str) -> np.ndarray:
    return np.stack([arrays[f"knockout/{name}/seed{s}/{key}/{metric}"].astype(np.float64) for s in seeds])


def _harm(arrays: dict, name: str, seeds: Sequence[int], key: str, metric: str) -> np.ndarray:
    """(runs, images) harm of a lesion: intact minus ablated (top-1 in points)."""
    h = _get(arrays, name, seeds, "intact", metric) - _get(arrays, name, seeds, key, metric)
    return 100.0 * h if metric == "top1" else h


def _min_effect(metric: str, min_effect: dict[str, float]) -> float:
    return LOGPROB_MIN_EFFECT if metric == "logprob" else min_effect[metric]


def _lesions(model: nn.Module, block: str) -> list[tuple[str, int, str]]:
    """(array key, branch index or -1 for the control, label) of every lesion of a study block."""
    info = next(i for i in block_infos(model) if i.name == block)
    out = [(f"{block}.branch{i}", i, info.branch_label(i)) for i in range(info.num_branches)]
    k = len(control_channels(model, block))
    return out + [(f"{block}.{CONTROL_KEY}", -1, f"random group of {k} channels")]


def _buckets(arrays: dict, val: Split) -> tuple[np.ndarray, np.ndarray]:
    idx = torch.as_tensor(arrays["knockout/image_index"])
    size = tuple(int(v) for v in val.images.shape[-2:])
    return (val.labels[idx].numpy(),
            np.array([L.size_bucket(b, size) for b in val.boxes[idx].numpy().astype(np.int64)]))


def summarise_study(arrays: dict, names: Sequence[str], seeds: Sequence[int], val: Split, verdict_layer: str,
                    min_effect: dict[str, float], claims: Sequence[dict] = ()) -> dict:
    """Rows of mean harm and lesion strength per bucket, interactions (large minus small) with exploratory
    verdicts, and the confirmatory knock-out claims as judged in the one family (``claims``: the judged claims
    of ``knockout_pending``)."""
    labels, buckets = _buckets(arrays, val)
    masks = {b: buckets == b for b in L.SIZE_BUCKETS} | {"all": np.ones(len(buckets), bool)}
    run_w, img_w = S.bootstrap_weights(len(seeds), labels, BOOT, seed=0)
    ones_r, ones_i = np.ones((1, len(seeds))), np.ones((1, len(labels)))
    rows, interactions = [], []
    verdict_blocks: dict[str, str] = {}
    for name in names:
        model = create_model(name)
        verdict_blocks[name] = _verdict_tap(model, verdict_layer)
        infos = {i.name: i for i in block_infos(model)}
        scale = get_spec(name).scale
        for block in study_blocks(model):
            info = infos[block]
            for key, branch, label in _lesions(model, block):
                strength = _get(arrays, name, seeds, key, "strength")
                common = {"model": name, "scale": scale, "block": block, "stype": info.stype, "branch": branch,
                          "label": label, "lesion": "random group" if branch < 0 else "branch"}
                for metric in KNOCKOUT_METRICS:
                    h = _harm(arrays, name, seeds, key, metric)
                    means, samples = {}, {}
                    for b, m in masks.items():
                        keep = np.broadcast_to(m, h.shape)
                        means[b] = float(S.weighted_means([h], ones_r, ones_i, keep)[0][0])
                        samples[b] = S.weighted_means([h], run_w, img_w, keep)[0]
                        c = S.percentile_ci(samples[b], means[b])
                        rows.append({**common, "metric": metric, "bucket": b, "harm": _r(c.estimate),
                                     "low": _r(c.low), "high": _r(c.high),
                                     "strength": _r(float(strength[:, m].mean())) if m.any() else None,
                                     "n": int(m.sum()), "runs": len(seeds)})
                    est = means["large"] - means["small"]
                    c = S.percentile_ci(samples["large"] - samples["small"], est)
                    d = _min_effect(metric, min_effect)
                    interactions.append({**common, "metric": metric, "interaction": _r(est), "low": _r(c.low),
                                         "high": _r(c.high), "min_effect": d, "verdict": S.verdict(c, d),
                                         "strength": _r(float(strength.mean())),
                                         "small": int(masks["small"].sum()), "large": int(masks["large"].sum()),
                                         "runs": len(seeds)})
    return {
        "hypothesis": "stated before any run: removing a large-receptive-field branch hurts large objects more than "
                      "small ones (interaction > 0), removing a small-receptive-field branch the reverse "
                      "(interaction < 0); confirmatory test per Res2Net with s >= 3 at the normal blocks of "
                      f"{' and '.join(CONFIRM_STAGES)} (receptive fields smaller than the image): "
                      "interaction(branch s-2) minus interaction(branch 0) above +d",
        "lesion": "mean ablation (per-channel mean over training images), direct effect: only the branch's own input "
                  "to the 1x1 fusion conv is replaced, so later branches still receive it; control: a random "
                  "channel group of one branch's width from the whole fusion input (ResNet: a quarter of its 3x3); "
                  "Grad-CAM recomputed after the lesion; strength: ||ablated - intact|| / ||intact|| of the "
                  "lesioned block's output, per image",
        "harm": "intact minus ablated, per image and run (top-1 in points, log-probability in nats); positive hurts",
        "interaction": "harm on large objects minus harm on small ones (size buckets as in size_buckets)",
        "score_tap": f"{verdict_layer} output (the verdict stage's last block)",
        "images": int(len(labels)), "mean_images": int(len(arrays["knockout/mean_index"])), "runs": len(seeds),
        "intervals": f"rows and interactions: 95% percentile, hierarchical paired bootstrap (runs, then classes, "
                     f"then images; {BOOT} resamples, seed 0), exploratory; the confirmatory claims are judged "
                     "in the one Holm family with every other claim",
        "min_effect": {m: _min_effect(m, min_effect) for m in KNOCKOUT_METRICS},
        "rows": rows, "interactions": interactions, "claims": [_knockout_claim(c) for c in claims],
        "resnet_reference": [r for r in interactions if r["scale"] == 1],
    }


def _knockout_claim(c: dict) -> dict:
    """A judged knock-out claim as the study lists it."""
    keys = ("id", "model", "scale", "block", "contrast", "estimate", "low", "high", "low95", "high95", "level",
            "min_effect", "verdict", "small", "large", "runs", "strength")
    return {"metric": c["metric_name"], **{k: c[k] for k in keys}}


def knockout_pending(arrays: dict, names: Sequence[str], seeds: Sequence[int], val: Split,
                     min_effect: dict[str, float]) -> list[Pending]:
    """The confirmatory knock-out claims as (runs x images) linear contrasts for the one family: per image
    D = harm(branch s-2) - harm(branch 0), weighted N / n_large on large objects, -N / n_small on small ones and 0
    elsewhere, so that each run's mean is that run's interaction contrast."""
    labels, buckets = _buckets(arrays, val)
    small, large = buckets == "small", buckets == "large"
    if not small.any() or not large.any():
        return []
    n = len(labels)
    weight = np.where(large, n / large.sum(), np.where(small, -n / small.sum(), 0.0))
    out = []
    for name in names:
        scale = get_spec(name).scale
        if scale < 3:
            continue
        model = create_model(name)
        for block in study_blocks(model):
            if block.split(".")[0] not in CONFIRM_STAGES:
                continue
            big, little = f"{block}.branch{scale - 2}", f"{block}.branch0"
            strength = {k: float(_get(arrays, name, seeds, k, "strength").mean()) for k in (big, little)}
            for metric in CONFIRM_METRICS:
                diff = _harm(arrays, name, seeds, big, metric) - _harm(arrays, name, seeds, little, metric)
                fields = {"id": f"knockout-{metric}-{block}-{name}", "section": "knockout", "paper": PAPER["knockout"],
                          "metric": f"{metric}: {T.metric(metric).label}", "metric_name": metric, "model": name,
                          "scale": scale, "layer": f"{block} (branch {scale - 2} minus branch 0)", "block": block,
                          "contrast": f"branch {scale - 2} minus branch 0", "subset": "all",
                          "bucket": "large minus small", "control": "none", "baseline_note": "",
                          "small": int(small.sum()), "large": int(large.sum()),
                          "strength": {"branch s-2": _r(strength[big]), "branch 0": _r(strength[little])},
                          "caveat": f"direct mean lesion; relative change of {block}'s output: branch {scale - 2} "
                                    f"{strength[big]:.3f}, branch 0 {strength[little]:.3f}",
                          "note": "interaction contrast (large minus small harm), runs as the top level",
                          "family": "confirmatory", "images": n}
                out.append(Pending(fields, diff * weight[None], np.ones(diff.shape, bool), labels,
                                   min_effect[metric], True))
    return out


def _run_interval(values: Sequence[float]) -> dict:
    """Mean over runs with a Student-t 95% interval (t quantile tabulated for df <= 10, 1.96 beyond)."""
    v = np.asarray(values, dtype=np.float64)
    m = float(v.mean())
    if v.size < 2:
        return {"mean": _r(m), "low": None, "high": None, "per_run": [_r(x) for x in v]}
    t = _T975[v.size - 2] if v.size - 1 <= len(_T975) else 1.96
    half = t * float(v.std(ddof=1)) / math.sqrt(v.size)
    return {"mean": _r(m), "low": _r(m - half), "high": _r(m + half), "per_run": [_r(x) for x in v]}


TREND_WORDS = {"rises": "rises with s", "falls": "falls with s", "none": "no detectable trend"}


def trend_per_doubling(values: dict[int, Sequence[float]], level: float = 0.95) -> dict:
    """The least-squares slope of the per-scale mean top-1 against log2(s), in points per doubling of s, with a t
    interval: each scale's runs give its variance (the slope's variance sums them with the squared weights), df by
    Welch-Satterthwaite. Words: 'rises with s' when the interval is above 0, 'falls with s' below, else 'no
    detectable trend' (never 'not rising' without this test)."""
    from scipy import stats

    xs = np.log2(np.array(sorted(values), dtype=np.float64))
    means = np.array([np.mean(values[k]) for k in sorted(values)])
    if xs.size < 2:
        return {"slope": None, "low": None, "high": None, "df": None, "words": TREND_WORDS["none"]}
    c = (xs - xs.mean()) / float(((xs - xs.mean()) ** 2).sum())
    slope = float(c @ means)
    parts = np.array([c[i] ** 2 * np.var(values[k], ddof=1) / len(values[k]) if len(values[k]) > 1 else np.nan
                      for i, k in enumerate(sorted(values))])
    dfs = np.array([len(values[k]) - 1 for k in sorted(values)], dtype=np.float64)
    var = float(parts.sum())
    if not np.isfinite(var) or var <= 0:
        return {"slope": _r(slope), "low": None, "high": None, "df": None, "words": TREND_WORDS["none"]}
    df = var ** 2 / float((parts ** 2 / dfs).sum())
    half = float(stats.t.ppf(0.5 + level / 2, df)) * math.sqrt(var)
    low, high = slope - half, slope + half
    words = TREND_WORDS["rises" if low > 0 else "falls" if high < 0 else "none"]
    return {"slope": _r(slope), "low": _r(low), "high": _r(high), "df": round(df, 2), "words": words}


def scale_sweep(res: dict, arrays: dict, names: Sequence[str], seeds: Sequence[int], verdict_layer: str) -> dict:
    """Top-1, localisation (energy, coverage at the verdict stage's output, all images with a finite score) and 50%
    ERF radius against s, intervals over runs, beside the paper's top-1 for its scale ablation."""
    rows = []
    for name in names:
        entry = res["models"][name]
        s = entry["scale"]
        tap = entry["taps"][verdict_layer]["output"]
        top1 = _run_interval([r["top1"] for r in entry["runs"]])
        loc = {m: _run_interval([float(np.nanmean(arrays[f"{name}/seed{sd}/{tap}/{m}"].astype(np.float64)))
                                 for sd in seeds]) for m in ("energy", "coverage")}  # NaN: an all-zero map
        erf = next((r for r in res["erf"] if r["model"] == name and r["weights"] == "trained" and r["tap"] == tap),
                   None)
        rows.append({"model": name, "scale": s, "top1": top1, "energy": loc["energy"], "coverage": loc["coverage"],
                     "erf_radius_50": None if erf is None else {"mean": erf["radius_50"], "low": erf["radius_50_low"],
                                                                "high": erf["radius_50_high"]},
                     "paper_top1": paper_scale_top1().get(s), "runs": len(seeds)})
    rows.sort(key=lambda r: r["scale"])
    ours = [r["top1"]["mean"] for r in rows]
    paper = [r["paper_top1"] for r in rows if r["paper_top1"] is not None]
    per_run = {r["scale"]: [v for v in r["top1"]["per_run"] if v is not None] for r in rows}
    within = {s: v for s, v in per_run.items() if s >= 2}
    return {
        "rows": rows, "layer": f"{verdict_layer} output",
        "top1_rises_with_s": bool(all(b > a for a, b in zip(ours, ours[1:], strict=False))),
        "top1_trend": trend_per_doubling(per_run),
        # with s = 1 (the ResNet) in the fit, one step from ResNet to Res2Net reads as a trend over s
        "top1_trend_res2net": trend_per_doubling(within) if len(within) >= 2 else None,
        "paper_top1_rises_with_s": bool(all(b > a for a, b in zip(paper, paper[1:], strict=False))),
        "paper": "Gao et al., TPAMI 2021, scale ablation of Res2Net-50 at matched complexity (ImageNet top-1: "
                 "100 - reported error; s = 1 is their ResNet-50)",
        "intervals": "top-1 and localisation: mean over runs with a Student-t 95% interval (per-run values given); "
                     "ERF radius: the ERF table's interval (runs, then noise inputs)",
    }
