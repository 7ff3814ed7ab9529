"""Compare CAMs through AppTest: settings survive a visit to another page and live in the URL, untrained maps are
marked inside every plot, and extreme photo shapes are drawn and described as they are."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image
from streamlit.testing.v1 import AppTest

from dashboard.services import sources
from dashboard.views.compare_grid import topk_key
from res2net.viz.compare import UNTRAINED_MARK, UNTRAINED_TITLE

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")
TIMEOUT = 300


def _app(query: dict | None = None, **state: object) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["device"] = "cpu"
    for k, v in state.items():
        at.session_state[k] = v
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    _no_exception(at)
    return at


def _no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not [e for e in at.error if "failed:" in e.value], [e.value for e in at.error]


def _specs(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_settings_and_a_computed_score_cam_survive_a_visit_to_claims_and_are_in_the_url() -> None:
    at = _app()
    at.multiselect(key="compare_models").set_value(["tiny_resnet26", "tiny_res2net26_8s"]).run()
    at.selectbox(key="compare_method").set_value("layercam")
    at.selectbox(key="compare_block").set_value("layer3.1")
    at.selectbox(key="compare_cmap").set_value("Viridis")
    at.radio(key="compare_scale").set_value("shared")
    at.multiselect(key="compare_more_methods").set_value(["scorecam"]).run()
    at.button(key="compare_gf_scorecam_tiny_resnet26").click().run()
    _no_exception(at)
    before = len(at.get("plotly_chart"))
    kept = {"compare_models": ["tiny_resnet26", "tiny_res2net26_8s"], "compare_method": "layercam",
            "compare_block": "layer3.1", "compare_cmap": "Viridis", "compare_scale": "shared",
            "compare_more_methods": ["scorecam"]}
    at.switch_page("views/claims.py").run()
    _no_exception(at)
    at.switch_page("views/compare.py").run()
    _no_exception(at)
    for key, value in kept.items():
        assert at.session_state[key] == value, key
    assert len(at.get("plotly_chart")) == before  # the Score-CAM map is drawn again without a click
    titles = [a["text"] for sp in _specs(at) for a in sp["layout"].get("annotations", [])]
    assert "Score-CAM · layer3.1" in titles and "layer3.1 · layercam" in titles
    query = {k: [v] if isinstance(v, str) else list(v) for k, v in at.query_params.items()}
    assert query["compare_block"] == ["layer3.1"] and query["compare_method"] == ["layercam"]
    assert sorted(query["compare_models"]) == ["tiny_res2net26_8s", "tiny_resnet26"]


def _targets(at: AppTest) -> list[str]:
    return [c.value.split("target: ", 1)[1] for c in at.caption if "target: " in c.value]


def test_a_ticked_top5_row_stays_the_target_after_a_visit_to_another_page_and_untick_forgets_it() -> None:
    at = _app()
    first = at.dataframe[0].value
    second, p = first["class"][1], float(first["probability"][1])
    key = topk_key("tiny_resnet26", next(iter(sources.demo_photos().values())))  # the default photo's table
    at.session_state[key] = {"selection": {"rows": [1], "columns": []}}  # as a tick does
    at.run()
    assert _targets(at)[0] == f"{second} (p = {p:.3f})"
    at.switch_page("views/erf.py").run()
    _no_exception(at)
    at.switch_page("views/compare.py").run()
    _no_exception(at)
    assert _targets(at)[0] == f"{second} (p = {p:.3f})"  # still the ticked class, not the top-1
    at.session_state[key] = {"selection": {"rows": [], "columns": []}}  # the user unticks it
    at.run()
    assert _targets(at)[0] == f"{first['class'][0]} (p = {float(first['probability'][0]):.3f})"


# One setting per page that is not Compare: (page, widget kind, key, a value other than the default).
PAGE_SETTINGS = [
    ("views/erf.py", "selectbox", "erf_block", "layer2.0"),
    ("views/erf.py", "radio", "erf_scale", "own"),
    ("views/erf.py", "toggle", "erf_log", True),
    ("views/scales.py", "selectbox", "scales_block", "layer2.0"),
    ("views/scales.py", "selectbox", "scales_method", "layercam"),
    ("views/scales.py", "radio", "scales_fscale", "global"),
    ("views/knockout.py", "selectbox", "ko_block", "layer2.0"),
    ("views/knockout.py", "selectbox", "ko_method", "layercam"),
    ("views/claims.py", "radio", "claims_subset", "correct"),
    ("views/claims.py", "radio", "claims_erf_init", "random init"),
]


def test_every_page_keeps_its_settings_across_a_page_change_and_puts_them_in_the_url() -> None:
    at = _app()
    for page in dict.fromkeys(p for p, *_ in PAGE_SETTINGS):
        at.switch_page(page).run()
        _no_exception(at)
        for p, kind, key, value in PAGE_SETTINGS:
            if p == page:
                getattr(at, kind)(key=key).set_value(value)
        at.run()
        _no_exception(at)
        at.switch_page("views/models.py").run()
        _no_exception(at)
        at.switch_page(page).run()
        _no_exception(at)
        for p, kind, key, value in PAGE_SETTINGS:
            if p == page:
                assert getattr(at, kind)(key=key).value == value, key
                assert key in at.query_params, key


def test_a_shared_address_reopens_the_view() -> None:
    at = _app(query={"compare_block": "layer3.1", "compare_method": "layercam", "compare_tap": "branch 1"})
    assert at.selectbox(key="compare_block").value == "layer3.1"
    assert at.selectbox(key="compare_method").value == "layercam"
    assert at.selectbox(key="compare_tap").value == "branch 1"
    titles = [a["text"] for sp in _specs(at) for a in sp["layout"].get("annotations", [])]
    assert "layer3.1.branch1 · layercam" in titles  # the drawn tap is the one the address names


def test_untrained_maps_are_marked_inside_every_plot_and_their_faithfulness_is_withheld() -> None:
    at = _app(weights_mode="random", compare_faith=True, compare_more_methods=["gradcam++"])
    maps = [sp for sp in _specs(at) if any(t["type"] == "heatmap" for t in sp["data"])]
    assert len(maps) >= 2 + 2 + 1 + 1  # main maps, other method, branches, difference
    for sp in maps:
        annotations = sp["layout"]["annotations"]
        marks = [a for a in annotations if UNTRAINED_MARK in a["text"] and a.get("textangle") == -30]
        titles = [a["text"] for a in annotations if a.get("textangle") != -30]
        panels = sum(1 for t in sp["data"] if t["type"] == "heatmap")
        assert len(marks) == panels, titles  # a watermark over every map panel ...
        assert sum(t.startswith(UNTRAINED_TITLE) for t in titles) == panels  # ... and in its title
    assert any("Not shown for untrained models" in c.value for c in at.caption)
    assert not [m for m in at.markdown if m.value.startswith("Deletion AUC")]
    assert all("untrained" in m.value for m in at.markdown if m.value.startswith("##### "))  # each row's badge


def _png(w: int, h: int) -> bytes:
    ramp = np.linspace(0, 255, w, dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(np.repeat(np.stack([ramp] * 3, -1)[None], h, 0)).save(buf, "PNG")
    return buf.getvalue()


def _upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.radio(key="compare_source").set_value("Upload").run()
    at.file_uploader(key="compare_upload").upload(name, data).run()
    _no_exception(at)
    return at


def test_a_panorama_is_drawn_around_what_the_models_saw_and_its_caption_says_it_was_shrunk() -> None:
    at = _upload(_app(), "panorama.png", _png(12000, 1500))
    assert any("12000×1500 px, kept at 5656×707 px" in c.value for c in at.caption), [c.value for c in at.caption]
    main = _specs(at)[0]["layout"]
    (x0, x1), (y1, y0) = main["xaxis2"]["range"], main["yaxis2"]["range"]
    assert (x1 - x0) / (y1 - y0) <= 2.0 + 1e-9  # not a thin strip
    assert (y1 - y0) == 707  # the photo's full height


def test_a_tiny_photos_upscaling_note_names_each_model_once() -> None:
    at = _upload(_app(), "tiny.png", _png(10, 10))
    notes = [c.value for c in at.caption if "upscaled" in c.value]
    assert len(notes) == 1, notes  # one note for both models, each named once
    assert notes[0].count("tiny_resnet26") == 1 and notes[0].count("tiny_res2net26_4s") == 1


def _array(z: object) -> np.ndarray:
    """A plotly array: a nested list, or its typed-array form {'dtype', 'bdata' (base64), 'shape'}."""
    if isinstance(z, dict):
        a = np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"])
        shape = z.get("shape")
        return a.reshape([int(v) for v in str(shape).split(",")] if shape else -1).astype(float)
    return np.asarray(z, dtype=float)


def _heatmaps(at: AppTest) -> list[np.ndarray]:
    return [_array(t["z"]) for sp in _specs(at) for t in sp["data"] if t.get("type") == "heatmap"]


def test_the_effective_centre_placement_moves_the_drawn_maps_and_says_where_the_cells_sit() -> None:
    """Third placement: the same maps interpolated between the cells' gradient centroids instead of their
    receptive-field centres; the page draws them differently and names the centres it used."""
    at = _app(compare_models=["tiny_resnet26"], compare_block="layer3.1", compare_display="smooth")
    smooth = _heatmaps(at)
    at.radio(key="compare_display").set_value("effective centre").run()
    _no_exception(at)
    effective = _heatmaps(at)
    assert smooth and len(smooth) == len(effective)
    assert any(a.shape == b.shape and not np.allclose(np.nan_to_num(a), np.nan_to_num(b))
               for a, b in zip(smooth, effective, strict=True))
    captions = " ".join(c.value for c in at.caption)
    assert "effective centres" in captions and "demo photos" in captions
