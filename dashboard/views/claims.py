"""Claims: the paper's statements, each beside this project's measurement on the embedded family, with a verdict.

Per claim: the statement and where the paper makes it, the metric and why it fits, the number with its interval
beside the image-blind baselines, the verdict (from where the interval lies against the metric's minimum effect,
Holm-corrected over the page), and the caveats. Every number is read from the results file of
``python -m res2net.evaluate``; nothing is computed here except the presentation.
"""

from __future__ import annotations

import streamlit as st

from dashboard import charts, knockout_claims
from dashboard.claims_text import (
    VERDICT_ICONS,
    claim_rows,
    fmt_interval,
    localisation_rows,
    section_notes,
    verdict_counts,
)
from dashboard.services import cached
from dashboard.state import branch_note
from res2net.evaluation.results import ResultsError
from res2net.metrics.table import METRIC_TABLE
from res2net.viz import plots

st.title("Claims")

UPLOAD = "Upload a results file…"
files = cached.results_files()
if not files:
    st.info("No evaluation results yet. Generate them with `python -m res2net.evaluate` (it needs the "
            "Tiny-ImageNet-100 data folder); it writes "
            f"`{cached.RESULTS_FILE.relative_to(cached.REPO_ROOT)}`, which this page reads, or upload one below.")
labels = {(p.relative_to(cached.REPO_ROOT).as_posix() if p.is_relative_to(cached.REPO_ROOT) else str(p)): p
          for p in files}
choice = st.selectbox("Results file", [*labels, UPLOAD], key="claims_file",
                      help="Any results file under assets/results/, or one from `python -m res2net.evaluate` "
                           "run elsewhere (e.g. ImageNet val on a GPU cluster).")
try:
    if choice == UPLOAD:
        upload = st.file_uploader("Results JSON", type=["json"], key="claims_upload")
        if upload is None:
            st.info("Upload the `.json` that `python -m res2net.evaluate` wrote.")
            st.stop()
        raw, raw_name, scores = upload.getvalue(), upload.name, None
        res = cached.uploaded_results(raw, raw_name)
    else:
        path = labels.get(choice, cached.RESULTS_FILE)
        res = cached.results(path)
        if res is not None:
            raw, raw_name, scores = path.read_bytes(), path.name, path.with_suffix(".npz")
except ResultsError as exc:
    st.error(f"The results file cannot be used: {exc}")
    st.stop()
if res is None:
    st.info("No evaluation results yet. Generate them with `python -m res2net.evaluate` (it needs the "
            "Tiny-ImageNet-100 data folder); it writes "
            f"`{cached.RESULTS_FILE.relative_to(cached.REPO_ROOT)}`, which this page reads.")
    st.stop()

models = dict(sorted(res.models.items(), key=lambda kv: (kv[0] != res.baseline, kv[0])))  # baseline first
runs = sorted({e.run_count for e in models.values()})
rule = res.verdict_rule
run_names = ", ".join(r.name for r in next(iter(models.values())).runs)
skipped = f", {res.skipped.count} skipped" if res.skipped is not None else ""
weights = res.weights if res.weights is not None else "embedded, trained here (one recipe)"
st.caption(
    f"Dataset: {res.dataset}, {res.images} images{skipped}. Models: {', '.join(f'`{m}`' for m in models)}; "
    f"weights: {weights}; {', '.join(map(str, runs))} run(s) "
    f"each ({run_names}). Baseline: `{res.baseline}`. Intervals: {res.intervals}.")

if len(files) > 1:
    with st.expander(f"All {len(files)} results files"):
        table = []
        for label, p in labels.items():
            try:
                r = cached.results(p)
            except ResultsError as exc:
                table.append({"file": label, "dataset": f"not usable: {exc}"})
                continue
            table.append({"file": label, "dataset": r.dataset, "images": r.images,
                          "models": ", ".join(r.models), "weights": r.weights if r.weights is not None else "embedded",
                          **{v: n for v, n in verdict_counts(r.claims).items()}})
        st.dataframe(table, hide_index=True, width="stretch")

counts = verdict_counts(res.claims)
cols = st.columns(len(counts))
for col, (verdict, n) in zip(cols, counts.items(), strict=True):
    col.metric(f"{VERDICT_ICONS[verdict]} {verdict}", n)
with st.expander("How a verdict is reached", expanded=False):
    st.markdown(
        f"- **Rule.** {rule.rule}. The minimum meaningful effect *d* of each metric was fixed in code before any "
        "result: " + ", ".join(f"{res.metric_label(k)} **{v:g}**" for k, v in rule.min_effect.items()) + ".\n"
        f"- **Many claims.** {rule.correction}. The interval shown with each verdict is the one it was judged on "
        "(its level is given); the unadjusted 95% interval is beside it.\n"
        f"- **Layer.** Localisation and ERF verdicts use the **{res.verdict_layer}** output, fixed before looking; "
        "every stage is in the tables below, favourable or not.\n"
        "- **Baselines.** A uniform map's energy in the box is the box's area fraction; the centred Gaussian prior "
        f"(σ = {res.prior.sigma_px:.1f} px, {res.prior.fitted_on}) ignores the image: its peak is "
        "'always the centre' in the pointing game, and its thresholded regions are centred squares, so its MaxBoxAcc "
        "is that of the best centred box. A model that does not beat the prior localises nothing the framing does "
        "not give away.")
    st.markdown("**Caveats.** " + " · ".join(res.caveats))


def claims_section(section: str) -> None:
    """The section's claims: what the paper says, where it is tested, the numbers and verdicts, the caveats."""
    rows = claim_rows(res, section)
    if not rows:
        st.info("No claims of this kind in the results file.")
        return
    papers, layers, caveats = section_notes(res, section)
    st.markdown("**Verdicts** (Res2Net minus `" + str(res.baseline) + "`; tested at " +
                ", ".join(f"`{v}`" for v in layers) + ")")
    st.table(rows)  # a plain table wraps its cells: the interval columns are never cut off at 1280 px
    st.caption("Paper: " + " · ".join(f"*{p}*" for p in papers) + ". Caveats: " + "; ".join(caveats) + ".")


st.header("1 · Accuracy")
st.markdown("> *Res2Net improves top-1 over ResNet at similar parameters and FLOPs* (paper, Table 1; scale "
            "ablation, Table 3).")
st.dataframe([{"model": m, "scale s": e.scale, "runs": e.run_count,
               "top-1 (95% interval)": fmt_interval(e.top1.mean, e.top1.low, e.top1.high, 2),
               "top-1 per run": ", ".join(f"{r.top1:.2f}" for r in e.runs),
               "params": e.params, "GMACs": e.gmacs} for m, e in models.items()],
             hide_index=True, width="stretch")
claims_section("accuracy")
with st.expander("Accuracy by object size"):
    st.dataframe([{"model": r.model, "what": r.kind, "bucket": r.bucket,
                   "value (95% interval)": fmt_interval(r.mean, r.low, r.high, 2), "images": r.n,
                   "runs": r.runs} for r in res.accuracy_by_size], hide_index=True, width="stretch")

st.header("2 · Localisation by object size")
st.markdown("> *Res2Net's Grad-CAM maps are more concentrated on small objects and cover the whole of large "
            "objects* (paper §4.5, Fig. 4).")
map_metrics = [m for m in METRIC_TABLE if m.source == "map" and m.name in res.metrics]  # the file's, in table order


def labels_of(kind: str) -> str:
    return ", ".join(f"**{res.metric_label(m.name)}**" for m in map_metrics if m.kind == kind)


st.markdown(f"Concentration ({labels_of('concentration')}) tests *concentrated on small objects*; coverage "
            f"({labels_of('coverage')}) tests *covers the whole large object*. Maps are the true "
            "class's Grad-CAM, placed on the image by each cell's receptive-field centre.")
stages = sorted({r.stage for r in res.localisation})
c1, c2, c3 = st.columns(3)
stage = c1.selectbox("Stage output", stages, index=stages.index(res.verdict_layer), key="claims_stage",
                     help="The verdicts use the stage fixed in code; the others are shown for completeness.")
subset = c2.radio("Images", ["all", "correct"], horizontal=True, key="claims_subset",
                  format_func=lambda s: "all" if s == "all" else "classified correctly (per model and run)")
metric = c3.selectbox("Metric", [m.name for m in map_metrics], format_func=res.metric_label, key="claims_metric")
rows = localisation_rows(res, stage, subset, metric)
baselines = {"centre prior (ignores the image)": {b: v.prior.get(metric) for b, v in res.baselines.items()}}
charts.plotly_chart(plots.localisation_by_size_figure(
    rows, metric=res.metric_label(metric), baselines=baselines,
    title=f"{res.metric_label(metric)} · {stage} output · {subset} images"), key="claims_loc", width="stretch")
st.caption(f"{res.metrics[metric].why}. Map resolution at {stage}: see the caveats "
           f"(e.g. layer3 is 4x4 cells, layer4 2x2 at 64 px).")
claims_section("localisation")
with st.expander("Every stage, bucket and metric: Res2Net minus ResNet (paired by seed and image)"):
    st.dataframe([{"model": r.model, "stage": r.stage, "images": r.subset, "bucket": r.bucket,
                   "metric": res.metric_label(r.metric),
                   "difference (95% interval)": fmt_interval(r.diff, r.low, r.high, 3),
                   "n": r.n, "runs": r.runs} for r in res.comparisons], hide_index=True, width="stretch")

st.header("3 · Receptive fields")
branch_note()
st.markdown("> *Later branches of a block see larger receptive fields, so one block covers a range of scales* "
            "(paper §3.1, Fig. 2). Effective receptive fields (Luo et al. 2016) of the centre unit, from Gaussian "
            "noise large enough that the mass fits; maps whose 99% mass reaches the border are flagged.")
erf_rows = res.erf
init = st.radio("Weights", ["trained", "random init"], horizontal=True, key="claims_erf_init")
blocks: dict[str, dict[str, dict[str, float | None]]] = {}
for r in erf_rows:
    if r.weights == init and r.branch is not None:
        blocks.setdefault(r.tap.rsplit(".branch", 1)[0], {}).setdefault(r.model, {})[f"b{r.branch}"] = {
            "radius_50": r.radius_50, "radius_50_low": r.radius_50_low, "radius_50_high": r.radius_50_high}
for block, per_model in blocks.items():
    charts.plotly_chart(plots.grouped_branch_bars(per_model, "radius_50", low="radius_50_low", high="radius_50_high",
                                              title=f"50% ERF radius (px) per branch · {block} · {init}"),
                    key=f"claims_erf_{block}", width="stretch")
claims_section("erf")
with st.expander("All ERF numbers (radii with 95% intervals, area ratios, border flags)"):
    st.dataframe([{"model": r.model, "weights": r.weights, "tap": r.tap,
                   "r50 px": fmt_interval(r.radius_50, r.radius_50_low, r.radius_50_high, 0),
                   "r90 px": fmt_interval(r.radius_90, r.radius_90_low, r.radius_90_high, 0),
                   "r99 px": r.radius_99, "99% mass reaches the border": "yes" if r.touches_border else "no",
                   "area ratio 20% (RepLKNet, raw scale)": r.area_ratio_20_published,
                   "area ratio 20% (scale-free)": r.area_ratio_20_scale_free,
                   "inputs": f"{r.inputs} × {r.size} px noise", "runs": r.runs} for r in erf_rows],
                 hide_index=True, width="stretch")
    st.caption("RepLKNet's published area ratio takes log10(x + 1) of the raw gradients, so it also moves with their "
               "scale; the scale-free variant divides by the maximum first and compares shapes across models.")

knockout_claims.knockout_section(res)
with st.expander("All numbers (JSON)"):
    st.json(res.to_json(), expanded=False)
d1, d2 = st.columns(2)
d1.download_button("Results (JSON)", raw, raw_name, "application/json")
if scores is not None and scores.is_file():
    d2.download_button("Per-image scores (.npz)", scores.read_bytes(), scores.name, "application/octet-stream")
st.caption("Regenerate with `python -m res2net.evaluate`; the command reproduces both files exactly.")
