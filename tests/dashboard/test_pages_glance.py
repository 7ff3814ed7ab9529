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


def _flat(node: object) -> list[object]:
    """Every element under ``node`` in page order (folds included)."""
    if isinstance(node, Block):
        return [e for child in node.children.values() for e in _flat(child)]
    return [node]


def _branch_order_shown(at: AppTest) -> bool:
    return any("Branch order" in str(getattr(e, "value", "")) for e in _flat(at.main))


def _by_rf(spec: dict) -> tuple[list[dict], list[dict], list[dict]]:
    """A by-receptive-field chart's conv lines, identity marks (own panel) and one-path stars."""
    data = spec["data"]
    lines = [t for t in data if "lines" in t.get("mode", "")]
    ident = [t for t in data if t.get("marker", {}).get("symbol") == "diamond-open"]
    stars = [t for t in data if t.get("marker", {}).get("symbol") == "star"]
    return lines, ident, stars


def test_scales_compares_branches_by_receptive_field_with_the_resnet_path_as_a_reference() -> None:
    import res2net
    from res2net.geometry import receptive_field

    at = _app("scales")
    assert at.selectbox(key="scales_model").value == "tiny_res2net26_4s"
    block = at.selectbox(key="scales_block").value
    charts = {s["layout"]["title"]["text"]: s for s in _specs(at) if s["layout"].get("title")}
    sparsity = next(s for t, s in charts.items() if t.startswith("Sparsity per branch"))
    lines, ident, stars = _by_rf(sparsity)
    model = res2net.create_model("tiny_res2net26_4s")
    rfs = [receptive_field.theoretical_rf(model, f"{block}.branch{i}") for i in range(3)]
    assert [(t["name"], list(_array(t["x"]))) for t in lines] == [("tiny_res2net26_4s", rfs)]  # conv branches only
    assert len(ident) == 1 and ident[0]["xaxis"] == "x2" and "lines" not in ident[0]["mode"]  # the identity apart
    base = res2net.create_model("tiny_resnet26")
    assert [(t["name"], list(_array(t["x"]))) for t in stars] == [
        ("tiny_resnet26: 3×3 path", [receptive_field.theoretical_rf(base, f"{block}.branch0")])]
    energy = next(s for t, s in charts.items() if t.startswith("Energy share per branch"))
    assert not _by_rf(energy)[2]  # a one-path block's share is 1 by definition: no point to compare
    assert not _branch_order_shown(at) and "Branch order" in at.title[0].proto.help
    assert len(_words(at.main)) <= MAX_WORDS


def test_knockout_shows_the_table_first_then_cell_maps_with_a_difference_and_opens_the_study_on_its_model() -> None:
    at = _app("knockout")
    assert not _branch_order_shown(at) and "Branch order" in at.title[0].proto.help
    maps = [s for s in _specs(at) if any(t["type"] == "image" for t in s["data"])]
    titles = [a["text"] for s in maps for a in s["layout"]["annotations"]]
    assert titles == ["layer3.1 · intact", "layer4.1 · intact"]  # nothing removed yet: no intact beside intact
    assert any("Tick branches" in i.value for i in at.info)
    assert any("`layer3.1` maps are 4×4 cells" in w.value for w in at.warning)  # the caveat, not a grey caption
    assert at.selectbox(key="ko_study_model").value == at.selectbox(key="ko_model").value

    at.checkbox(key="ko_branch_tiny_res2net26_4s_layer3.1_0").check().run()
    _clean(at)
    order = [e.type for e in _flat(at.main) if e.type in ("table", "plotly_chart")]
    assert order[0] == "table"  # the probability change first ...
    rows = at.table[0].value
    assert {"p intact", "p knocked out", "change"} <= set(rows.columns)
    maps = [s for s in _specs(at) if any(t["type"] == "image" for t in s["data"])]
    heat = {a["text"]: t for s in maps for a, t in zip(s["layout"]["annotations"],
                                                        [t for t in s["data"] if t["type"] == "heatmap"], strict=True)}
    assert list(heat) == ["layer3.1 · intact", "layer3.1 · without branch 0", "layer3.1 · knocked out − intact",
                          "layer4.1 · intact", "layer4.1 · without branch 0", "layer4.1 · knocked out − intact"]
    for tap in ("layer3.1", "layer4.1"):
        intact, after, diff = (heat[f"{tap} · {k}"] for k in ("intact", "without branch 0", "knocked out − intact"))
        assert all(t["zsmooth"] is False for t in (intact, after, diff))  # cells, not a smooth 720 px picture
        assert (intact["zmin"], intact["zmax"]) == (after["zmin"], after["zmax"])  # one scale for before and after
        assert _array(intact["z"]).shape in ((4, 4), (2, 2))
        change = _array(after["z"]) - _array(intact["z"])
        np.testing.assert_allclose(_array(diff["z"]), change)
        assert diff["zmin"] == -diff["zmax"] == -float(np.abs(change).max())  # centred at no change
        assert diff["showscale"] and diff["colorbar"]["title"]["text"] == "change"
    study = at.selectbox(key="ko_study_model").value  # the control beside the branches is that model's own
    controls = [c.value.split(":")[0] for c in at.caption if c.value.startswith("Control")]
    assert controls == [f"Control ({study}, not drawn)"]
    assert len(_words(at.main)) <= MAX_WORDS


def test_knockout_study_places_branches_by_receptive_field_and_joins_no_identity_to_a_conv_branch() -> None:
    from dashboard.services import study_data

    res = study_data.results()
    if res is None or res.knockout is None:
        import pytest

        pytest.skip("the shipped results file has no knock-out study")
    at = _app("knockout", knockout_source="Upload")  # no image: the study alone
    spec = next(s for s in _specs(at) if "harm on large minus harm on small" in s["layout"].get("title", {}).get(
        "text", ""))
    lines, ident, stars = _by_rf(spec)
    for t in lines:  # each line: one model's conv branches, in order of receptive field
        x = list(_array(t["x"]))
        assert x == sorted(x) and t["xaxis"] == "x" and not t["name"].startswith("tiny_resnet")
        assert "identity" not in " ".join(t["text"])
    assert ident and all(t["xaxis"] == "x2" for t in ident)
    assert [t["name"] for t in stars] == ["tiny_resnet26: 3×3 path"]
    assert [s for s in spec["layout"]["shapes"] if s["type"] == "rect"]  # the ±d band


def test_the_centre_priors_sigma_is_printed_to_a_tenth_of_a_pixel(tmp_path: Path) -> None:
    from dashboard.services import study_data

    for folder in (None, str(tmp_path)):  # fitted on the train boxes when present; the fixed fallback without
        sigma, note = study_data.centre_prior_sigma(folder)
        assert f"σ = {sigma:.1f} px at 64 px" in note, note
        assert not re.search(r"σ = \d+\.\d{2,}", note), note
