"""The evidence browser: from a Claims bucket to the val images behind it, and on to Compare with one of them."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from res2net.data.tiny_imagenet import default_data_dir
from res2net.evaluation.results import image_scores_path, load_image_scores, load_results

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")
SHIPPED = REPO / "assets" / "results" / "tiny_imagenet_100.json"
DATA = default_data_dir()
needs_both = pytest.mark.skipif(not (SHIPPED.is_file() and (DATA / "val.tar.gz").is_file()),
                                reason="needs the shipped results file and the Tiny-ImageNet-100 data folder")


def _claims() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=600)
    at.session_state["device"] = "cpu"
    at.run()
    at.switch_page("views/claims.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@needs_both
def test_a_bucket_lists_its_extreme_images_and_opens_one_on_compare() -> None:
    at = _claims()
    res = load_results(SHIPPED)
    model, metric, bucket = (at.selectbox(key=k).value for k in ("claims_ev_model", "claims_ev_metric",
                                                                  "claims_ev_bucket"))
    assert (metric, bucket) == ("energy", "small")  # the first localisation claim's bucket
    best, worst = (df.value for df in at.dataframe if "gain" in df.value.columns)  # gains most, loses most
    # recomputed here from the raw per-image arrays: per image, the mean over seeds of Res2Net minus ResNet
    scores = load_image_scores(image_scores_path(SHIPPED))
    area = scores["uniform/energy"].astype(np.float64)
    rows = np.flatnonzero(area < 0.25)
    tap = res.models[model].taps[res.verdict_layer]["output"]

    def mean(m: str) -> np.ndarray:  # NaN where every seed has an all-zero map
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(np.stack([scores[f"{m}/seed{s}/{tap}/energy"][rows].astype(np.float64)
                                        for s in scores["seeds"]]), axis=0)

    gain = mean(model) - mean(str(res.baseline))
    assert best["gain"].tolist() == pytest.approx(np.round(np.sort(gain[np.isfinite(gain)])[::-1][:8], 3), abs=1e-3)
    assert worst["gain"].tolist() == pytest.approx(np.round(np.sort(gain[np.isfinite(gain)])[:8], 3), abs=1e-3)
    assert best["image"].str.startswith("data:image/png;base64,").all()  # thumbnails with the data folder
    top = int(scores["image_index"][rows[np.nanargmax(gain)]])

    assert at.selectbox(key="claims_ev_pick").value == top
    at.button(key="claims_ev_open").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Compare CAMs"
    label, _, box = at.session_state["picked_image"]
    from res2net.data.tiny_imagenet import TinyImageNet

    item = TinyImageNet("val")[top]
    assert label == f"val/{item['file']} ({item['class_name']})" and tuple(box) == item["box"]
    assert at.radio(key="compare_source").value == "Picked image"
    assert at.multiselect(key="compare_models").value == [res.baseline, model]
    assert at.selectbox(key="compare_block").value == tap
    assert at.selectbox(key="compare_class").value == item["class_name"]  # the claim's maps: the true class
    assert at.get("plotly_chart"), "Compare drew no maps"
