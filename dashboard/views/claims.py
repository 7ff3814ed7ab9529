"""Claims: the paper's statements beside this project's measurements, as a picture first.

At the top a forest plot of every claim (estimate and intervals in units of the metric's minimum effect d, the ±d
band, the verdict's colour, the family); then per section a table that names each claim and shows the absolute
values behind each difference beside the image-blind baselines, the figures, and the evidence browser that leads
from a bucket to its images. Every number is read from the results file of ``python -m res2net.evaluate``; nothing
is computed here except the presentation. Definitions live in the glossary, linked from each term.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import charts, knockout_claims
from dashboard.claims_text import (
    GLOSSARY_ANCHOR,
    VERDICT_ICONS,
    claim_table,
    erf_blocks,
    erf_points,
    fmt_interval,
    forest_rows,
    glossary,
    localisation_rows,
    placement_table,
    section_notes,
    split_claim_table,
    term,
    verdict_counts,
)
from dashboard.services import analyses, study_data
from dashboard.state import KEEP, settle
from dashboard.views import claims_evidence
from res2net.evaluation.results import Results, ResultsError
from res2net.metrics.table import METRIC_TABLE
from res2net.viz import branch_plots, plots
from res2net.viz import claims as claims_viz

INTRO = ("Each of the paper's statements that this project can test, beside its measurement on the results file "
         "below, with a verdict. Hover a blue term for its definition; the glossary holds them all.")
UPLOAD = "Upload a results file…"
NO_RESULTS = ("No evaluation results yet. Generate them with `python -m res2net.evaluate` (it needs the "
              "Tiny-ImageNet-100 data folder); it writes `{path}`, which this page reads, or upload one below.")

st.title("Claims", help=INTRO)
files = study_data.results_files()
rel = study_data.RESULTS_FILE.relative_to(study_data.REPO_ROOT) \
    if study_data.RESULTS_FILE.is_relative_to(study_data.REPO_ROOT) else study_data.RESULTS_FILE
if not files:
    st.info(NO_RESULTS.format(path=rel))
labels = {(p.relative_to(study_data.REPO_ROOT).as_posix() if p.is_relative_to(study_data.REPO_ROOT) else str(p)): p
          for p in files}
settle("claims_file", [*labels, UPLOAD], next(iter(labels), UPLOAD))
choice = st.selectbox("Results file", [*labels, UPLOAD], key="claims_file", **KEEP,
                      help="Any results file under assets/results/, or one from `python -m res2net.evaluate` "
                           "run elsewhere (e.g. ImageNet val on a GPU cluster).")


def uploaded() -> tuple[Results, bytes, str]:
    """The uploaded results file. Every file reaches our own checks (no type filter in the browser, which would
    refuse a .txt with a silent chip and leave the previous message up), so each gets its own message."""
    upload = st.file_uploader("Results JSON", key="claims_upload",
                              help="The `.json` that `python -m res2net.evaluate` wrote; any other file is "
                                   "refused with the reason.")
    if upload is None:
        st.info("Upload the `.json` that `python -m res2net.evaluate` wrote.")
        st.stop()
    raw, name = upload.getvalue(), upload.name
    if not name.lower().endswith(".json"):
        raise ResultsError(f"{name} is not a results file: the page reads the `.json` that "
                           "`python -m res2net.evaluate` writes")
    return study_data.uploaded_results(raw, name), raw, name


scores: Path | None = None
try:
    if choice == UPLOAD:
        res, raw, raw_name = uploaded()
    else:
        path = labels.get(choice, study_data.RESULTS_FILE)
        res = study_data.results(path)
        if res is not None:
            raw, raw_name, scores = path.read_bytes(), path.name, path.with_suffix(".npz")
except ResultsError as exc:
    st.error(f"The results file cannot be used: {exc}. The previous file's results are no longer shown.")
    st.stop()
if res is None:
    st.info(NO_RESULTS.format(path=rel))
    st.stop()

words = glossary(res)
models = dict(sorted(res.models.items(), key=lambda kv: (kv[0] != res.baseline, kv[0])))  # baseline first
runs = sorted({e.run_count for e in models.values()})
skipped = f", {res.skipped.count} skipped" if res.skipped is not None else ""
weights = res.weights if res.weights is not None else "embedded"
st.caption(f"{res.dataset}, {res.images} images{skipped} · {len(models)} models, {'/'.join(map(str, runs))} "
           f"{term('runs', words, 'run')} each · weights: {weights} · reference `{res.baseline}`")

if len(files) > 1:
    with st.expander(f"All {len(files)} results files"):
        table = []
        for label, p in labels.items():
            try:
                r = study_data.results(p)
            except ResultsError as exc:
                table.append({"file": label, "dataset": f"not usable: {exc}"})
                continue
            table.append({"file": label, "dataset": r.dataset, "images": r.images,
                          "models": ", ".join(r.models), "weights": r.weights if r.weights is not None else "embedded",
                          **{v: n for v, n in verdict_counts(r.claims).items()}})
        st.dataframe(table, hide_index=True, width="stretch")

counts = verdict_counts(res.claims)
widths = [max(1.0, len(v) / 12) for v in counts]  # a long verdict's label gets room to stay on its column
for col, (verdict, n) in zip(st.columns(widths), counts.items(), strict=True):
    col.metric(f"{VERDICT_ICONS[verdict]} {verdict}", n, help=f"confirmatory claims judged {verdict}")

rows = forest_rows(res)
charts.plotly_chart(claims_viz.forest_figure(rows), key="claims_forest", width="stretch")
st.caption(f"One row per claim: Res2Net minus the reference in units of {term('d', words)}; thick bar: the "
           f"{term('judged interval', words)}, thin: 95%; grey band: ±d. Filled: "
           f"{term('confirmatory', words)}, open: {term('exploratory', words)}.")

st.subheader("Glossary", anchor=GLOSSARY_ANCHOR)
with st.expander("Every term of this page, defined"):
    st.markdown("\n".join(f"- **{k}**: {v}." for k, v in words.items()))
with st.expander("How a verdict is reached, and the caveats"):
    rule = res.verdict_rule
    st.markdown(
        f"- **Rule.** {rule.rule}. Each metric's d was fixed in code before any result.\n"
        f"- **Many claims.** {rule.correction}.\n"
        f"- **Layer.** Localisation and ERF verdicts use the **{res.verdict_layer}** output, fixed before looking; "
        "every stage is in the tables, favourable or not.\n"
        f"- **Intervals.** {res.intervals}.")
    if res.inference is not None:
        inf = res.inference
        st.markdown(f"- **Target.** {inf.targets.get(inf.confirmatory_target, '')}. {inf.single_run}\n"
                    f"- **Family.** {inf.family}. {inf.knockout}.\n- **Test against 0.** {inf.test_against_zero}.\n"
                    f"- **d and its sensitivity.** {inf.sensitivity}.")
    st.markdown("**Caveats.** " + " · ".join(res.caveats))


def show_claims(rows: list[dict[str, str]]) -> None:
    """Two plain tables (they wrap their cells, so nothing is cut off at 1280 px): the verdicts, then each claim's
    values beside the image-blind baselines."""
    verdicts, values = split_claim_table(rows)
    st.table(verdicts)
    if values and len(values[0]) > 1:
        st.caption("The same claims' values beside the baselines")
        st.table(values)


def claims_section(section: str) -> None:
    """The section's confirmatory claims, one table row each; the exploratory ones, the paper's statements and the
    caveats folded below."""
    table = claim_table(res, section, "confirmatory")
    exploratory = claim_table(res, section, "exploratory")
    if not table and not exploratory:
        st.info("No claims of this kind in the results file.")
        return
    if table:
        show_claims(table)
    if exploratory:
        with st.expander(f"{len(exploratory)} exploratory claims (open dots above)", expanded=not table):
            show_claims(exploratory)
    papers, layers, caveats = section_notes(res, section)
    with st.expander("The paper's statements, where they are tested, and the caveats"):
        st.markdown("\n".join(f"- *{p}*" for p in papers) + "\n\nTested at " + ", ".join(f"`{v}`" for v in layers)
                    + ".\n\n**Caveats.** " + "; ".join(caveats) + ".")


st.header("1 · Accuracy")
claims_section("accuracy")
with st.expander("Top-1 of every model, and by object size"):
    st.dataframe([{"model": m, "scale s": e.scale, "runs": e.run_count,
                   "top-1 (95% interval)": fmt_interval(e.top1.mean, e.top1.low, e.top1.high, 2),
                   "top-1 per run": ", ".join(f"{r.top1:.2f}" for r in e.runs),
                   "params": e.params, "GMACs": e.gmacs} for m, e in models.items()],
                 hide_index=True, width="stretch")
    st.dataframe([{"model": r.model, "what": r.kind, "bucket": r.bucket,
                   "value (95% interval)": fmt_interval(r.mean, r.low, r.high, 2), "images": r.n,
                   "runs": r.runs} for r in res.accuracy_by_size], hide_index=True, width="stretch")

st.header("2 · Localisation by object size")
st.markdown(f"Each model's score beside the {term('centre prior', words)} and the {term('uniform map', words)}; "
            f"{term('saturated', words)} metrics are flagged.")
claims_section("localisation")
if res.controls:
    with st.expander("Image-blind controls: every model's maps beside mismatched boxes and a spread-matched prior"):
        if res.inference is not None:
            st.caption(f"{res.inference.controls}. {res.inference.saturation}. {res.inference.flat_maps}.")
        st.dataframe([{"model": r.model, "stage": r.stage, "bucket": r.bucket, "boxes": r.region,
                       "metric": res.metric_label(r.metric), "score": r.score, "mismatched boxes": r.mismatch,
                       "spread-matched prior": r.spread,
                       "gain over mismatched (95%)": fmt_interval(r.gain_over_mismatch.mean, r.gain_over_mismatch.low,
                                                                  r.gain_over_mismatch.high, 3),
                       "gain over spread-matched (95%)": fmt_interval(r.gain_over_spread.mean, r.gain_over_spread.low,
                                                                      r.gain_over_spread.high, 3),
                       "n": r.n, "runs": r.runs} for r in res.controls], hide_index=True, width="stretch")
placed_rows, placed_changes = placement_table(res)
if placed_rows:
    with st.expander(f"Where the maps are placed: {placed_changes} of {len(placed_rows)} confirmatory verdicts "
                     "change with the placement"):
        st.caption(f"{res.placement_sensitivity.rule}. Effective centres from {res.placement_sensitivity.probes} "
                   "probe images per run.")
        st.dataframe(placed_rows, hide_index=True, width="stretch")
map_metrics = [m for m in METRIC_TABLE if m.source == "map" and m.name in res.metrics]  # the file's, in table order
stages = sorted({r.stage for r in res.localisation})
c1, c2, c3 = st.columns(3)
settle("claims_stage", stages, res.verdict_layer if res.verdict_layer in stages else stages[0])
stage = c1.selectbox("Stage output", stages, key="claims_stage", **KEEP,
                     help="The verdicts use the stage fixed in code; the others are shown for completeness.")
subset = c2.radio("Images", ["all", "correct"], horizontal=True, key="claims_subset", **KEEP,
                  format_func=lambda s: "all" if s == "all" else "classified correctly (per model and run)")
settle("claims_metric", [m.name for m in map_metrics], map_metrics[0].name)
metric = c3.selectbox("Metric", [m.name for m in map_metrics], format_func=res.metric_label, key="claims_metric",
                      **KEEP,
                      help="Concentration: " + ", ".join(res.metric_label(m.name) for m in map_metrics
                                                         if m.kind == "concentration")
                      + " (concentrated on small objects?). Coverage: " + ", ".join(
                          res.metric_label(m.name) for m in map_metrics if m.kind == "coverage")
                      + " (covers the whole large object?).")
baselines = {"centre prior (ignores the image)": {b: v.prior.get(metric) for b, v in res.baselines.items()}}
charts.plotly_chart(plots.localisation_by_size_figure(
    localisation_rows(res, stage, subset, metric), metric=res.metric_label(metric), baselines=baselines,
    title=f"{res.metric_label(metric)} · {stage} output · {subset} images"), key="claims_loc", width="stretch")
with st.expander("Every stage, bucket and metric: Res2Net minus ResNet (paired by seed and image)"):
    st.caption(f"{res.metrics[metric].why}.")
    st.dataframe([{"model": r.model, "stage": r.stage, "images": r.subset, "bucket": r.bucket,
                   "metric": res.metric_label(r.metric),
                   "difference (95% interval)": fmt_interval(r.diff, r.low, r.high, 3),
                   "n": r.n, "runs": r.runs} for r in res.comparisons], hide_index=True, width="stretch")
claims_evidence.evidence_section(res, scores)

st.header("3 · Receptive fields")
init = st.radio("Weights", ["trained", "random init"], horizontal=True, key="claims_erf_init", **KEEP,
                help="Random init shows what the architecture alone gives.")
for block in erf_blocks(res, init):
    taps = {r.model: [] for r in res.erf}
    for r in res.erf:
        if r.weights == init and r.tap.startswith(f"{block}.branch"):
            taps[r.model].append(r.tap)
    rf = {(m, t): float(v[0]) for m, ts in taps.items() if ts
          for t, v in analyses.theoretical_rfs(m, tuple(ts)).items()}
    points = erf_points(res, init, block, rf)
    if points:
        size = next(r.size for r in res.erf if r.weights == init)
        charts.plotly_chart(branch_plots.branch_rf_figure(
            points, title=f"50% ERF radius per branch · {block} · {init}", value_title="ERF r50 (px)",
            rf_title=f"theoretical receptive field (px, {size} px noise input)"), key=f"claims_erf_{block}",
            width="stretch")
st.caption(f"Each {term('branch', words)} at its {term('RF', words)}; a star is the ResNet's 3×3 path, identity "
           f"branches stand apart. Radii are {term('ERF', words)} r50.")
claims_section("erf")
with st.expander("All ERF numbers (radii with 95% intervals, area ratios, border flags)"):
    st.dataframe([{"model": r.model, "weights": r.weights, "tap": r.tap,
                   "r50 px": fmt_interval(r.radius_50, r.radius_50_low, r.radius_50_high, 0),
                   "r90 px": fmt_interval(r.radius_90, r.radius_90_low, r.radius_90_high, 0),
                   "r99 px": r.radius_99, "99% mass reaches the border": "yes" if r.touches_border else "no",
                   "area ratio 20% (RepLKNet, raw scale)": r.area_ratio_20_published,
                   "area ratio 20% (scale-free)": r.area_ratio_20_scale_free,
                   "inputs": f"{r.inputs} × {r.size} px noise", "runs": r.runs} for r in res.erf],
                 hide_index=True, width="stretch")
    st.caption("RepLKNet's published area ratio takes log10(x + 1) of the raw gradients, so it also moves with their "
               "scale; the scale-free variant divides by the maximum first and compares shapes across models.")

knockout_claims.knockout_section(res)
with st.expander("All numbers (JSON) and downloads"):
    d1, d2 = st.columns(2)
    d1.download_button("Results (JSON)", raw, raw_name, "application/json")
    if scores is not None and scores.is_file():
        d2.download_button("Per-image scores (.npz)", scores.read_bytes(), scores.name, "application/octet-stream")
    st.caption("Regenerate with `python -m res2net.evaluate`; the command reproduces both files exactly.")
    st.json(res.to_json(), expanded=False)
