"""The Claims page's evidence browser: from a bucket (metric × size bucket × model pair) to the val images where the
Res2Net gains or loses most over the ResNet, and on to Compare with the image, its box and both models' maps.

The numbers are the per-image scores of the results file's ``.npz`` (``res2net.evaluation.evidence``); thumbnails
need the Tiny-ImageNet-100 data folder and are left out without it.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import streamlit as st

from dashboard.claims_text import SHORT_METRICS, claim_kind, metric_key
from dashboard.services import image_inputs, sources, study_data
from dashboard.state import KEEP, settle
from res2net.analysis import cam
from res2net.evaluation import evidence
from res2net.evaluation.results import Results, load_image_scores

SHOWN = 8  # images per list: both lists fit beside each other at 1280 px
COMPARE_PAGE = "views/compare.py"


@st.cache_data(show_spinner="Reading the per-image scores…", max_entries=2)
def image_scores(path: str, mtime: float) -> dict[str, np.ndarray]:  # noqa: ARG001  (mtime keys the cache)
    return load_image_scores(path)


@st.cache_data(show_spinner=False, max_entries=32)
def bucket_gains(path: str, mtime: float, model: str, reference: str, tap: str, metric: str,
                 bucket: str) -> list[evidence.ImageGain]:
    return evidence.image_gains(image_scores(path, mtime), model, reference, tap, metric, bucket)


@st.cache_data(show_spinner=False, max_entries=4096)
def thumbnail(image_index: int) -> str | None:
    """A val image as a PNG data URI (None without the data folder)."""
    split = study_data.val_split()
    if split is None or not 0 <= image_index < len(split):
        return None
    png = image_inputs.png_bytes(split[image_index]["image"].numpy())
    return "data:image/png;base64," + base64.b64encode(png).decode()


def val_item(image_index: int) -> dict | None:
    split = study_data.val_split()
    return None if split is None or not 0 <= image_index < len(split) else split[image_index]


def stage_tap(res: Results, model: str) -> str | None:
    """The tap of the verdict stage's output in ``model`` (e.g. layer3.1)."""
    entry = res.models.get(model)
    return None if entry is None else entry.taps.get(res.verdict_layer, {}).get("output")


def open_on_compare(res: Results, model: str, image_index: int) -> None:
    """Put the val image (with its box) and the claim's view into the session, and switch to Compare: both models,
    the verdict stage's output, the results file's CAM method and the image's true class as the target."""
    item = val_item(image_index)
    if item is None:
        return
    label = f"val/{item['file']} ({item['class_name']})"
    box = item["box"] if min(item["box"]) >= 0 else None
    st.session_state[sources.PICKED] = (label, image_inputs.png_bytes(item["image"].numpy()), box)
    st.session_state["compare_source"] = "Picked image"
    st.session_state["compare_models"] = [str(res.baseline), model]
    tap = stage_tap(res, model)
    if tap is not None:
        st.session_state["compare_block"] = tap
        st.session_state["compare_tap"] = "block output"
    if res.cam.method in cam.METHODS:
        st.session_state["compare_method"] = res.cam.method
    st.session_state["compare_target_mode"] = "one class for all"
    st.session_state["compare_class"] = item["class_name"]
    st.switch_page(COMPARE_PAGE)


def _table(gains: list[evidence.ImageGain], with_thumbs: bool, digits: int = 3) -> list[dict]:
    """The listed images: thumbnail and class (with the data folder), both models' values and the gain."""
    rows = []
    for g in gains:
        item = val_item(g.image_index) if with_thumbs else None
        rows.append({**({"image": thumbnail(g.image_index), "class": item["class_name"]} if item else
                        {"val image": f"#{g.image_index}"}),
                     "ResNet": round(g.reference, digits), "Res2Net": round(g.value, digits),
                     "gain": round(g.gain, digits)})
    return rows


COLUMNS = {"image": st.column_config.ImageColumn("image", width=60),
           "class": st.column_config.TextColumn("class", width=110),
           **{k: st.column_config.NumberColumn(k, width=62, format="%.3f") for k in ("ResNet", "Res2Net", "gain")}}
ROW_PX = 60  # a thumbnail row; every listed image is shown without scrolling


def evidence_section(res: Results, scores_path: Path | None) -> None:
    """The browser; a results file without per-image scores (or without a comparison) says why there is none."""
    st.subheader("From numbers to images", anchor="evidence")
    if res.baseline is None or scores_path is None or not scores_path.is_file():
        st.info("This results file has no per-image scores (`.npz` beside it) or no ResNet to compare with.")
        return
    claims = [c for c in res.claims if c.section == "localisation" and c.subset == "all"]
    models = sorted({m for m in res.models if m != res.baseline and stage_tap(res, m)})
    metrics = [m for m in res.metrics if res.metrics[m].kind in ("concentration", "coverage")]
    if not claims or not models or not metrics:
        st.info("This results file has no localisation claims to trace back to images.")
        return
    first = claims[0]
    c1, c2, c3 = st.columns(3)
    settle("claims_ev_model", models, first.model if first.model in models else models[0])
    model = c1.selectbox("Res2Net", models, key="claims_ev_model", help=f"compared with {res.baseline}, image by image",
                         **KEEP)
    settle("claims_ev_metric", metrics, metric_key(first) if metric_key(first) in metrics else metrics[0])
    metric = c2.selectbox("Metric", metrics, key="claims_ev_metric", format_func=lambda m: SHORT_METRICS.get(m, m),
                          **KEEP)
    buckets = [*res.size_buckets, "all"]
    settle("claims_ev_bucket", buckets, claim_kind(first) if claim_kind(first) in buckets else buckets[0])
    bucket = c3.selectbox("Size bucket", buckets, key="claims_ev_bucket", **KEEP)
    tap, ref_tap = stage_tap(res, model), stage_tap(res, str(res.baseline))
    if tap is None or tap != ref_tap:
        st.info(f"`{model}` and `{res.baseline}` have no common {res.verdict_layer} output tap.")
        return
    mtime = scores_path.stat().st_mtime
    try:
        gains = bucket_gains(str(scores_path), mtime, model, str(res.baseline), tap, metric, bucket)
    except KeyError as exc:
        st.info(f"The per-image scores hold no such numbers: {exc.args[0]}.")
        return
    if not gains:
        st.info("No image of this bucket has a score for both models.")
        return
    with_thumbs = study_data.val_split() is not None
    best, worst = gains[:SHOWN], gains[::-1][:SHOWN]
    left, right = st.columns(2)
    left.markdown(f"**Res2Net gains most** · {len(gains)} images, mean gain "
                  f"{np.mean([g.gain for g in gains]):+.3f}")
    height = (len(best) + 1) * (ROW_PX if with_thumbs else 35) + 3
    left.dataframe(_table(best, with_thumbs), hide_index=True, width="stretch", column_config=COLUMNS,
                   row_height=ROW_PX if with_thumbs else None, height=height, key="claims_ev_best")
    right.markdown("**Res2Net loses most**")
    right.dataframe(_table(worst, with_thumbs), hide_index=True, width="stretch", column_config=COLUMNS,
                    row_height=ROW_PX if with_thumbs else None, height=height, key="claims_ev_worst")
    if not with_thumbs:
        st.caption("Thumbnails and Compare need the Tiny-ImageNet-100 data folder.")
        return
    choices = {g.image_index: g for g in [*best, *worst]}
    o1, o2 = st.columns([3, 1], vertical_alignment="bottom")
    pick = o1.selectbox("Image", list(choices), key="claims_ev_pick",
                        format_func=lambda i: f"{val_item(i)['file']} · gain {choices[i].gain:+.3f}")
    if o2.button("Open on Compare", key="claims_ev_open", icon=":material/compare:",
                 help="Both models' maps at the verdict stage, for the image's true class, with its box. Compare "
                      "runs the shipped weights (one run); the lists average every run of the results file."):
        open_on_compare(res, model, int(pick))
