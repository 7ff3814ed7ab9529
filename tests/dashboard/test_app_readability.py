"""What a researcher sees on Compare CAMs, checked through AppTest: readable default maps, honest untrained stand-ins,
the shared colour scale, network-ordered blocks, no branch stand-ins, and the shipped demo photos."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboard.services import sources
from dashboard.views.compare_grid import topk_key
from res2net.data import images
from res2net.data.tiny_imagenet import default_data_dir

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")
DATA = default_data_dir()
TIMEOUT = 300
needs_data = pytest.mark.skipif(not (DATA / "val.tar.gz").is_file(),
                                reason=f"Tiny-ImageNet-100 not found at {DATA} (set RES2NET_DATA)")


def _app(**state: object) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["device"] = "cpu"
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _heatmaps(at: AppTest) -> list[list[dict]]:
    """The heatmap traces of every plotly chart on the page, chart by chart."""
    out = []
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        out.append([t for t in spec["data"] if t.get("type") == "heatmap"])
    return out


def _z(trace: dict) -> np.ndarray:
    """A heatmap's values (plotly sends numpy arrays as base64 typed arrays)."""
    z = trace["z"]
    if isinstance(z, dict):
        shape = tuple(int(v) for v in str(z["shape"]).split(","))
        return np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(shape)
    return np.asarray(z, dtype=np.float64)


def _network_order(name: str) -> tuple[int, ...]:
    return tuple(int(v) for v in re.findall(r"\d+", name))


def test_default_block_has_maps_of_at_least_8x8_with_colour_bars_and_grid_captions() -> None:
    at = _app()
    block = at.selectbox(key="compare_block").value
    assert block == "layer2.1"  # 64 px input: layer2 is 8x8, layer3 4x4, layer4 2x2
    grids = [c.value for c in at.caption if "map · one cell =" in c.value]
    assert len(grids) >= 2 and all(g.startswith("8×8 map · one cell = 8 px of the 64 px input") for g in grids), grids
    charts = _heatmaps(at)
    assert charts and all(any(t.get("showscale") for t in hm) for hm in charts if hm)  # a colour bar on every chart
    assert all("value" in t["hovertemplate"] for hm in charts for t in hm)  # values on hover
    assert any("was resized and centre-cropped to the model's 64×64 px input" in c.value for c in at.caption)


def test_cells_toggle_draws_flat_cells_and_smooth_interpolates() -> None:
    at = _app()
    cams = [t for hm in _heatmaps(at) for t in hm if t["colorbar"]["title"]["text"] == "CAM"]  # not the difference
    assert cams and all(t["zsmooth"] is False for t in cams)
    at.radio(key="compare_display").set_value("smooth").run()
    assert all(t["zsmooth"] == "best" for hm in _heatmaps(at) for t in hm)


def test_blocks_of_mixed_models_are_listed_in_network_order() -> None:
    at = _app(weights_mode="random")
    at.multiselect(key="compare_models").set_value(["tiny_resnet26", "resnet50"]).run()
    assert not at.exception
    blocks = at.selectbox(key="compare_block").options
    assert blocks == sorted(blocks, key=_network_order)
    assert {"layer1.2", "layer3.5", "layer4.1"} <= set(blocks)  # the union: resnet50's deeper stages included


def test_a_branch_is_never_replaced_by_the_block_output() -> None:
    at = _app()
    n_charts = len(at.get("plotly_chart"))
    at.selectbox(key="compare_tap").set_value("branch 2").run()
    notes = [i.value for i in at.info if "tiny_resnet26" in i.value]
    assert notes and "no scale branches" in notes[0], [i.value for i in at.info]
    assert len(at.get("plotly_chart")) == n_charts - 1  # the ResNet column draws no main map


@needs_data
def test_shared_scale_is_honoured_with_a_box() -> None:
    at = _app()
    at.radio(key="compare_source").set_value("Tiny-ImageNet-100 val").run()
    at.radio(key="compare_scale").set_value("shared").run()
    assert not at.exception
    ranges = {(t["zmin"], t["zmax"]) for hm in _heatmaps(at) for t in hm if t["colorbar"]["title"]["text"] == "CAM"}
    assert len(ranges) == 1, ranges  # both models, main maps and branches: one scale (the difference has its own)
    at.radio(key="compare_scale").set_value("per map").run()
    mains = [hm[0] for hm in _heatmaps(at)[:1]] + [hm[0] for hm in _heatmaps(at)[1:] if hm]
    assert len({t["zmax"] for t in mains}) > 1


def _no_imagenet_weights(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An empty weights cache and a refused network (AppTest runs in this process): ImageNet weights are unavailable
    here whatever the machine has."""
    import urllib.error
    import urllib.request

    from dashboard.services import model_store
    from res2net.models import weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv(weights.ENV_WEIGHTS, raising=False)
    monkeypatch.delenv(weights.ENV_MIRROR, raising=False)

    def refuse(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    model_store.weight_status.clear()
    model_store.get_model.clear()


def test_untrained_stand_in_is_badged_has_no_probabilities_and_keeps_its_own_scale(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from dashboard.services import model_store

    _no_imagenet_weights(monkeypatch, tmp_path)
    try:
        _check_untrained_stand_in()
    finally:
        model_store.weight_status.clear()
        model_store.get_model.clear()


def _check_untrained_stand_in() -> None:
    at = _app()
    at.multiselect(key="compare_models").set_value(["tiny_res2net26_4s", "resnet50"]).run()
    at.radio(key="compare_scale").set_value("shared").run()
    assert not at.exception
    assert any("untrained" in m.value and "badge" in m.value for m in at.markdown)
    assert len(at.dataframe) == 1  # the trained model's top-5 only
    assert at.selectbox(key="compare_block").value == "layer2.1"  # a block both have, 8x8 in the 64 px model
    traces = [t for hm in _heatmaps(at) for t in hm]
    trained = [t for t in traces if _z(t).shape == (8, 8)]  # tiny model: 8x8 maps; resnet50 at 224 px: 28x28
    untrained = [t for t in traces if _z(t).shape == (28, 28)]
    assert trained and len(untrained) == 1
    assert {t["zmax"] for t in trained} == {max(float(np.nanmax(_z(t))) for t in trained)}  # set by trained maps
    assert untrained[0]["zmax"] == pytest.approx(float(np.nanmax(_z(untrained[0]))))  # its own scale
    assert any("excluded from the shared scale" in c.value for c in at.caption)


def test_sanity_check_is_offered_by_name_and_adds_an_untrained_map_per_model() -> None:
    at = _app()
    n_charts = len(at.get("plotly_chart"))
    toggle = at.toggle(key="compare_sanity")
    assert "Adebayo et al., 2018" in toggle.label
    toggle.set_value(True).run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == n_charts + 2  # each model's map beside its random-weights twin
    readings = [m.value for m in at.markdown if m.value.startswith("Spearman ρ")]
    assert len(readings) == 2, readings
    assert all("SSIM" in r and ("survives randomisation" in r or "passes" in r or "partly" in r) for r in readings)


def test_demo_photos_ship_with_licences_and_land_on_known_classes() -> None:
    import res2net

    photos = images.demo_images()
    classes = images.demo_classes()
    assert len(photos) >= 6
    known = set(res2net.model_info("tiny_res2net26_4s")["card"]["classes"])
    labelled = {classes[n] for n in photos if classes.get(n)}
    assert sum(1 for n in photos if classes.get(n)) >= 6  # photos that show a class the models know
    assert len(labelled) >= 5 and labelled <= known, labelled - known
    licence = (images.DEMO_DIR / "LICENCE.md").read_text()
    assert all(f"`{p.name}`" in licence for p in images.DEMO_DIR.glob("*.jpg"))


def test_rf_rows_use_plain_names_flag_rfs_beyond_the_input_and_explain_missing_values() -> None:
    import math

    from dashboard import readable

    row = readable.rf_row("m", "branch 2", 143, 16, 64, {"radius_50_square": 3.0, "radius_90_square": 9.5,
                                                         "radius_99_square": 20.0, "gaussian_sigma": math.nan,
                                                         "touches_border": 1.0}, 0.25, 0.5)
    assert row["theoretical RF (px)"] == "143 (> 64 px input)"
    assert readable.rf_row("m", "b", 35, 8, 64, {}, 0.1, 0.2)["theoretical RF (px)"] == "35"
    assert row["ERF σ (px)"] == readable.NOT_MEASURABLE and readable.NOT_MEASURABLE in readable.RF_TABLE_NOTE
    assert row["ERF cut by the border"] == "yes"
    assert (row["ERF: 50% of mass within (px)"], row["90% within (px)"], row["energy share"]) == ("3.0", "9.5", "0.250")
    assert not any("_" in k for k in row)  # no raw metric keys such as radius_50_square


def test_a_resnet_block_is_not_badged_multi_scale() -> None:
    import res2net
    from dashboard import readable

    for name, expected in (("tiny_resnet26", "no scale branches"), ("tiny_res2net26_4s", "multi-scale")):
        model = res2net.create_model(name, pretrained=False)
        info = next(i for i in res2net.block_infos(model) if i.name == "layer2.1")
        assert expected in readable.block_badge(info)
    assert "multi-scale" not in readable.block_badge(info.__class__("layer1.1", "normal", 1, "resnet"))


def test_erf_view_follows_the_sidebar_weights_and_flags_erfs_cut_by_the_input() -> None:
    at = _app(weights_mode="random")
    at.switch_page("views/erf.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "erf_weights" not in [r.key for r in at.radio]  # one weights choice: the sidebar's
    assert any("random init" in c.value and "sidebar" in c.value for c in at.caption)
    blocks = at.selectbox(key="erf_block").options
    assert blocks == sorted(blocks, key=_network_order)
    at.select_slider(key="erf_size").set_value(64).run()
    at.selectbox(key="erf_block").set_value("layer4.1").run()  # 64 px input: the deepest ERFs reach the border
    notes = [w.value for w in at.warning if "fills the 64 px input" in w.value]
    assert len(notes) == 2, [w.value for w in at.warning]


def test_gradient_free_methods_are_offered_one_tap_at_a_time() -> None:
    at = _app()
    n_charts = len(at.get("plotly_chart"))
    more = at.multiselect(key="compare_more_methods")
    offered = [o for o in more.options if o.endswith("⁽¹ᵗᵃᵖ⁾")]  # the footnote mark the help explains
    assert [o.split(" ")[0] for o in offered] == ["Score-CAM", "Ablation-CAM", "EigenCAM"]
    assert "gradient-free, computed one tap at a time" in more.help
    more.set_value(["eigencam", "scorecam"]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("plotly_chart")) == n_charts + 2  # EigenCAM at once, for both models
    buttons = [b for b in at.button if b.key and b.key.startswith("compare_gf_scorecam_")]
    assert len(buttons) == 2 and "Score-CAM" in buttons[0].label  # Score-CAM waits for a click
    buttons[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("plotly_chart")) == n_charts + 3


def test_faithfulness_number_per_map_beside_random_orders() -> None:
    at = _app()
    at.toggle(key="compare_faith").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    lines = [m.value for m in at.markdown if m.value.startswith("Deletion AUC")]
    assert len(lines) == 2, lines  # one per model's main map
    assert all("Insertion AUC" in line and "random orders" in line for line in lines)
    curves = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    bands = [c for c in curves if any(t.get("fill") == "tonexty" for t in c["data"])]
    assert len(bands) == 2  # small curves with the random orders' band, one figure per model


def test_a_clicked_top5_row_becomes_that_models_target_with_its_probability() -> None:
    at = _app()
    table = at.dataframe[0].value  # tiny_resnet26's top-5
    second, p = table["class"][1], float(table["probability"][1])
    table_key = topk_key("tiny_resnet26", next(iter(sources.demo_photos().values())))  # the default photo's table
    at.session_state[table_key] = {"selection": {"rows": [1], "columns": []}}  # as a click does
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    targets = [c.value for c in at.caption if "target:" in c.value]
    assert f"target: {second} (p = {p:.3f})" in targets[0], targets
    assert f"target: {second}" not in targets[1]  # the other model keeps its own top-1


def test_sidebar_weight_status_covers_the_models_chosen_on_compare() -> None:
    at = _app()
    at.multiselect(key="compare_models").set_value(["tiny_res2net26_8s", "resnet50"]).run()
    captions = " ".join(c.value for c in at.sidebar.caption)
    assert "tiny_res2net26_8s" in captions and "resnet50" in captions and "tiny_resnet26" in captions


def test_out_of_range_choices_are_not_taken() -> None:
    """A block or branch the models do not have (e.g. kept from another pair) is never used as a stand-in."""
    at = _app(compare_block="layer9.9", compare_tap="branch 7")
    block, tap = at.selectbox(key="compare_block"), at.selectbox(key="compare_tap")
    assert block.value in block.options and block.value == "layer2.1"
    assert tap.value == "block output"  # the 4-branch block has no branch 7
