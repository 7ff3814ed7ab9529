"""What the study left on disk for the pages: evaluation results files (shipped, others beside it, uploaded) and
the Tiny-ImageNet-100 data (the val split, the centre prior fitted on the train boxes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from dashboard.state import REPO_ROOT
from res2net.data import tiny_imagenet as data
from res2net.metrics import boxes as localize

RESULTS_FILE = REPO_ROOT / "assets" / "results" / "tiny_imagenet_100.json"
# Width (px at 64 px) of the centred Gaussian prior when the train boxes are absent: the value
# localize.fit_centre_prior_sigma gives on the 50,000 Tiny-ImageNet-100 train boxes (the objects' spread about
# the image centre).
CENTRE_PRIOR_SIGMA_FALLBACK = 16.69


# ---------------------------------------------------------------- results files
def results_files() -> list[Path]:
    """Results files the Claims page offers: the embedded family's first, then every other JSON beside it
    (``assets/results/``: e.g. an ImageNet run of ``python -m res2net.evaluate --dataset imagenet-val``)."""
    others = sorted(p for p in RESULTS_FILE.parent.glob("*.json") if p != RESULTS_FILE)
    return ([RESULTS_FILE] if RESULTS_FILE.is_file() else []) + others


def results(path: Path | None = None) -> dict | None:
    """The evaluation results in ``path`` (default: the embedded family's), or None when the file is absent.

    A file of another schema version or not a results file raises ``res2net.evaluation.results.ResultsError``.
    """
    from res2net.evaluation.results import load_results

    path = RESULTS_FILE if path is None else path
    if not path.is_file():
        return None
    return load_results(path)


def uploaded_results(raw: bytes, name: str) -> dict:
    """An uploaded results file, validated; ``ResultsError`` says why it is not one."""
    import json

    from res2net.evaluation.results import ResultsError, validate_results

    try:
        res = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ResultsError(f"{name} is not a JSON file ({e})") from e
    return validate_results(res, name)


# ---------------------------------------------------------------- Tiny-ImageNet-100
@st.cache_resource(show_spinner="Reading Tiny-ImageNet-100 val…")
def val_split():  # noqa: ANN201  (res2net.data.tiny_imagenet.TinyImageNet | None)
    """The Tiny-ImageNet-100 val split when the data folder is present, else None."""
    if not data.default_data_dir().is_dir():
        return None
    try:
        return data.TinyImageNet("val")
    except (data.DataError, OSError):  # an incomplete folder is the same as no folder for the views
        return None


@st.cache_data(show_spinner="Fitting the centre prior on the train boxes…")
def centre_prior_sigma(data_dir: str | None = None) -> tuple[float, str]:
    """Width (px at 64 px) of the centred Gaussian prior fitted on the Tiny-ImageNet-100 train boxes, and its source.

    Fitted on train boxes so that it is never tuned on the val boxes it is compared with; without the data
    folder it is ``CENTRE_PRIOR_SIGMA_FALLBACK``, and the note says so.
    """
    folder = Path(data_dir) if data_dir else data.default_data_dir()
    try:
        boxes = data.read_box_array(folder, "train")
    except (data.DataError, OSError):
        boxes = np.zeros((0, 4), dtype=np.int64)
    if not len(boxes):
        return CENTRE_PRIOR_SIGMA_FALLBACK, (
            f"centre prior σ = {CENTRE_PRIOR_SIGMA_FALLBACK:.1f} px at 64 px, a fixed value: the Tiny-ImageNet-100 "
            "train boxes it is fitted on are not present")
    sigma = float(localize.fit_centre_prior_sigma(boxes, data.IMAGE_SIZE))
    return sigma, f"centre prior σ = {sigma:.1f} px at 64 px, fitted on {len(boxes):,} Tiny-ImageNet-100 train boxes"
