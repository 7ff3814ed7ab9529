"""The Scales, ERF explorer and Knock-out pages answer at a glance: few unfolded words, branches compared by
receptive field, ERFs on inputs large enough to hold them and on one colour scale, knock-out tables before maps."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block, Expander

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
TIMEOUT = 900
TEXT = {"markdown", "caption", "info", "warning", "error", "success", "title", "subheader", "header", "text"}
MAX_WORDS = 250  # words a page shows outside folds and tables


def _app(page: str, **state: object) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["device"] = "cpu"
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    at.switch_page(f"views/{page}.py").run()
    _clean(at)
    return at


def _clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _words(node: object) -> list[str]:
    """Words a reader sees without opening a fold: text elements outside expanders (tables and help tips apart)."""
    if isinstance(node, Expander):
        return []
    if isinstance(node, Block):
        return [w for child in node.children.values() for w in _words(child)]
    value = getattr(node, "value", None)
    if getattr(node, "type", None) in TEXT and isinstance(value, str):
        return re.findall(r"[\w'’.-]+", re.sub(r":\w+-badge\[|[*`]", " ", value))
    return []


def _specs(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _array(v: object) -> np.ndarray:
    """A plotly array (plotly sends numpy arrays as base64 typed arrays)."""
    if isinstance(v, dict):
        shape = tuple(int(s) for s in str(v.get("shape", "-1")).split(","))
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).reshape(shape)
    return np.asarray(v, dtype=np.float64)


def test_erf_explorer_defaults_to_256_px_noise_and_one_colour_scale_so_few_erfs_are_cut() -> None:
    at = _app("erf")
    size = at.select_slider(key="erf_size")
    assert size.value == 256 and {"64", "512"} <= set(size.options)
    assert at.radio(key="erf_scale").value == "shared"
    grids = [s for s in _specs(at) if any(t["type"] == "heatmap" for t in s["data"])]
    assert len(grids) == 2  # one grid of maps per model
    titles = [a["text"] for s in grids for a in s["layout"]["annotations"]]
    assert len(titles) == 2 + 5 and "branch 3 (identity) · RF" in " ".join(titles)
    cut = [t for t in titles if " · cut" in t]
    assert len(cut) <= len(titles) // 4, titles  # at 64 px nearly every layer3 ERF was cut by the border
    heat = [t for s in grids for t in s["data"] if t["type"] == "heatmap"]
    top = max(float(_array(t["z"]).max()) for t in heat)
    assert {(t["zmin"], t["zmax"]) for t in heat} == {(0.0, top)}  # one scale over both models' maps
    assert sum(bool(t.get("showscale")) for t in heat) == len(grids)  # and one colour bar a grid
    assert len(_words(at.main)) <= MAX_WORDS

    at.radio(key="erf_scale").set_value("own").run()
    _clean(at)
    heat = [t for s in _specs(at) for t in s["data"] if t["type"] == "heatmap"]
    assert all(t["zmax"] == 1.0 and float(_array(t["z"]).max()) == 1.0 for t in heat)


def test_a_small_erf_input_is_flagged_and_offers_a_larger_size() -> None:
    at = _app("erf", erf_size=64, erf_n=2)
    at.selectbox(key="erf_block").set_value("layer4.1").run()
    _clean(at)
    notes = [w.value for w in at.warning if "fills the 64 px input" in w.value]
    assert len(notes) == 2 and all("choose a larger input size" in n for n in notes), [w.value for w in at.warning]
