"""What the dashboard draws, exports and scores sits where the model looked: registered maps, not stretched ones.

Reference: an impulse at cell (i, j) of a stride-16 tap of ``tiny_resnet26`` (``layer3``: cells centred at 0, 16,
32, 48 px of the 64 px input) placed by its receptive-field centre is the separable tent
``max(0, 1 - |y - 16 i| / 16) * max(0, 1 - |x - 16 j| / 16)`` (y, x clamped to the last centre, 48), written out
here by hand; a half-pixel resize
would put its peak at (16 i + 7.5, 16 j + 7.5). The views are run through Streamlit's AppTest with the CAM
replaced by that impulse, and the maps they hand to the overlay, the plotly figure and the downloads are read back.
"""

from __future__ import annotations

import base64
import csv
import dataclasses
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

import res2net
from dashboard import placement
from dashboard.services import analyses, study_data
from res2net.data import images
from res2net.data.tiny_imagenet import default_data_dir
from res2net.geometry import receptive_field, registration
from res2net.viz import plots

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")
DATA = default_data_dir()
TIMEOUT = 300
SIZE = 64
STRIDE = 16  # layer3 of the embedded models: stem /4, layer2 /2, layer3 /2
TOLERANCE_PX = 15 / 224 * SIZE  # Zhang et al.'s pointing-game tolerance at 64 px
needs_data = pytest.mark.skipif(not (DATA / "val.tar.gz").is_file(),
                                reason=f"Tiny-ImageNet-100 not found at {DATA} (set RES2NET_DATA)")


def tent(cy: float, cx: float, stride: float = STRIDE, size: int = SIZE, cells: int = 4) -> np.ndarray:
    """A registered impulse: 1 at (cy, cx), falling linearly to 0 one stride away along each axis; beyond the last
    cell's centre, stride * (cells - 1), the last cell's value."""
    y = x = np.minimum(np.arange(size, dtype=np.float64), stride * (cells - 1))
    return np.maximum(0, 1 - np.abs(y - cy) / stride)[:, None] * np.maximum(0, 1 - np.abs(x - cx) / stride)[None, :]


def gaussian(sigma: float, size: int = SIZE) -> np.ndarray:
    """The centred prior written with a double loop (pixel centres at integers, image centre at (size - 1) / 2)."""
    c = (size - 1) / 2
    return np.array([[math.exp(-((y - c) ** 2 + (x - c) ** 2) / (2 * sigma ** 2)) for x in range(size)]
                     for y in range(size)])


def hits(peak: tuple[float, float], box: tuple[int, int, int, int]) -> bool:
    """Pointing game by hand: distance from the peak to the box's pixels within the tolerance."""
    x0, y0, x1, y1 = box
    dx = max(x0 - peak[1], 0, peak[1] - (x1 - 1))
    dy = max(y0 - peak[0], 0, peak[0] - (y1 - 1))
    return math.hypot(dx, dy) <= TOLERANCE_PX


# ------------------------------------------------------------------------------------------- pure helpers
@pytest.fixture(scope="module")
def resnet():  # noqa: ANN201
    return res2net.create_model("tiny_resnet26")


@pytest.mark.parametrize("cell", [(1, 2), (0, 0), (3, 1)])
def test_place_puts_an_impulse_at_its_receptive_field_centre(resnet, cell: tuple[int, int]) -> None:  # noqa: ANN001
    impulse = np.zeros((4, 4))
    impulse[cell] = 1.0
    placed = placement.place(resnet, "layer3.1", impulse, (SIZE, SIZE))
    np.testing.assert_allclose(placed, tent(STRIDE * cell[0], STRIDE * cell[1]), atol=1e-12)
    assert np.unravel_index(int(np.argmax(placed)), placed.shape) == (STRIDE * cell[0], STRIDE * cell[1])


def test_geometry_row_names_stride_start_and_rule(resnet) -> None:  # noqa: ANN001
    assert placement.geometry(resnet, "layer3.1") == {
        "stride": 16, "start_y": 0, "start_x": 0, "registration": "cell (i,j) at start + stride·(i,j)"}
    assert placement.geometry(resnet, "layer2.1")["stride"] == 8
    assert placement.geometry_text(resnet, "layer4.1") == "cell (i,j) at (0, 0) + 32·(i,j) px"


@pytest.mark.parametrize(("box", "expected"), [
    ((10.0, 5.0, 20.0, 30.0), (10, 5, 20, 30)),
    ((10.2, 5.7, 19.1, 29.5), (10, 5, 20, 30)),
    ((63.6, 0.0, 64.0, 0.2), (63, 0, 64, 1)),  # a sliver still covers one pixel
    ((-3.0, -1.0, 70.0, 80.0), (0, 0, 64, 64)),
])
def test_pixel_box_takes_every_pixel_the_box_touches(box, expected) -> None:  # noqa: ANN001
    assert placement.pixel_box(box, (SIZE, SIZE)) == expected


def test_localise_numbers_and_baselines_by_hand() -> None:
    m = tent(16, 32)
    box = (26, 10, 36, 19)
    sigma = 6.0
    loc = placement.localise(m, box, sigma)
    g = gaussian(sigma)
    x0, y0, x1, y1 = box
    assert loc["energy_in_box"] == pytest.approx(m[y0:y1, x0:x1].sum() / m.sum(), abs=1e-12)
    assert loc["energy_uniform"] == pytest.approx(10 * 9 / 64 ** 2, abs=1e-15)
    assert loc["energy_centre_prior"] == pytest.approx(g[y0:y1, x0:x1].sum() / g.sum(), abs=1e-12)
    assert loc["pointing_hit"] is True and hits((16, 32), box)
    assert loc["pointing_centre_hit"] is hits((31.5, 31.5), box) is False  # 13.5 px below the box
    assert loc["coverage"] == pytest.approx((m[y0:y1, x0:x1] >= 0.5).mean(), abs=1e-12)
    assert loc["coverage_centre_prior"] == pytest.approx((g[y0:y1, x0:x1] >= 0.5 * g.max()).mean(), abs=1e-12)
    centred = (24, 24, 40, 40)
    near = placement.localise(m, centred, sigma)
    assert near["pointing_centre_hit"] is True and near["pointing_hit"] is hits((16, 32), centred)


def test_localisation_caption_states_every_baseline() -> None:
    loc = {"energy_in_box": 0.612, "energy_uniform": 0.25, "energy_centre_prior": 0.9, "pointing_hit": True,
           "pointing_centre_hit": False, "coverage": 0.5, "coverage_centre_prior": 0.125}
    text = placement.localisation_caption(loc, "cell (i,j) at (0, 0) + 16·(i,j) px", "centre prior σ = 2 px")
    assert text.startswith("Energy in box 0.61 (uniform map 0.25, centre prior 0.90)")
    assert "pointing game hit (always the centre: miss)" in text
    assert "coverage of the box 0.50 (centre prior 0.12)" in text
    assert "16·(i,j)" in text and "σ = 2 px" in text
    assert "n/a" in placement.localisation_caption({**loc, "energy_in_box": math.nan}, "r", "s")


# ----------------------------------------------------------------------------------- centre prior's width
def _write_boxes(folder: Path, rows: list[tuple[int, int, int, int]]) -> None:
    """A train_boxes.tsv in the dataset's format: inclusive ends, (-1, -1, -1, -1) for no box."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train_boxes.tsv").write_text(
        "".join(f"img_{k}.JPEG\t{x0}\t{y0}\t{x1}\t{y1}\n" for k, (x0, y0, x1, y1) in enumerate(rows)))


def test_centre_prior_sigma_is_fitted_on_the_train_boxes(tmp_path: Path) -> None:
    """Four 8x8 boxes 16 px off the centre (and one row without a box): the best width is in between."""
    inclusive = [(44, 28, 51, 35), (12, 28, 19, 35), (28, 44, 35, 51), (28, 12, 35, 19), (-1, -1, -1, -1)]
    _write_boxes(tmp_path / "tin", inclusive)
    sigma, note = study_data.centre_prior_sigma(str(tmp_path / "tin"))
    boxes = [(x0, y0, x1 + 1, y1 + 1) for x0, y0, x1, y1 in inclusive[:4]]

    def mean_energy(s: float) -> float:
        g = gaussian(s)
        return float(np.mean([g[y0:y1, x0:x1].sum() / g.sum() for x0, y0, x1, y1 in boxes]))

    best = max(mean_energy(s) for s in np.arange(4.0, 40.0, 1.0))
    assert mean_energy(sigma) >= best - 1e-3
    assert 8 < sigma < 30 and sigma != study_data.CENTRE_PRIOR_SIGMA_FALLBACK
    assert "fitted on 4 " in note and "train boxes" in note


def test_centre_prior_sigma_falls_back_and_says_so(tmp_path: Path) -> None:
    sigma, note = study_data.centre_prior_sigma(str(tmp_path / "absent"))
    assert sigma == study_data.CENTRE_PRIOR_SIGMA_FALLBACK
    assert "fixed value" in note and "not present" in note


# ---------------------------------------------------------------------------------------- the views (AppTest)
def _impulse_cams(monkeypatch: pytest.MonkeyPatch, model: str, tap: str, cell: tuple[int, int]) -> None:
    """Make ``analyses.model_cams`` return, for ``model``, an impulse at ``cell`` of ``tap`` (other maps real)."""
    real = analyses.model_cams

    def fake(data: bytes, name: str, *args: object, **kwargs: object) -> analyses.CamResult:
        out = real(data, name, *args, **kwargs)
        if name == model:
            maps = dict(out.maps)
            impulse = np.zeros_like(maps[tap])
            impulse[cell] = 1.0
            maps[tap] = impulse
            out = dataclasses.replace(out, maps=maps)
        return out

    monkeypatch.setattr(analyses, "model_cams", fake)


def _record(monkeypatch: pytest.MonkeyPatch) -> dict[str, list]:
    """Record the maps handed to ``plots.overlay`` and ``plots.cam_panel_png`` and the downloads' data."""
    from streamlit.delta_generator import DeltaGenerator

    seen: dict[str, list] = {"overlay": [], "png": [], "downloads": []}
    overlay, png, button = plots.overlay, plots.cam_panel_png, DeltaGenerator.download_button

    def rec_overlay(image: np.ndarray, cam_2d: np.ndarray, **kw: object) -> np.ndarray:
        seen["overlay"].append(np.array(cam_2d))
        return overlay(image, cam_2d, **kw)

    def rec_png(images: list, maps: list, *args: object, **kw: object) -> bytes:
        seen["png"].append(maps)
        return png(images, maps, *args, **kw)

    def rec_button(self, label: str, data: object, *args: object, **kw: object):  # noqa: ANN001, ANN202
        seen["downloads"].append((label, data))
        return button(self, label, data, *args, **kw)

    monkeypatch.setattr(plots, "overlay", rec_overlay)
    monkeypatch.setattr(plots, "cam_panel_png", rec_png)
    monkeypatch.setattr(DeltaGenerator, "download_button", rec_button)
    return seen


def _no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not [e for e in at.error if "failed:" in e.value], [e.value for e in at.error]


def _photo_64() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _compare(picked: tuple[str, bytes, tuple[int, int, int, int] | None] | None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["device"] = "cpu"
    if picked is not None:
        at.session_state["picked_image"] = picked
    at.run()
    at.multiselect(key="compare_models").set_value(["tiny_resnet26"]).run()
    at.selectbox(key="compare_block").set_value("layer3.1").run()
    return at


def _downloads(seen: dict[str, list]) -> dict[str, bytes]:
    """The latest run's downloads, generated as a click would (the view hands over callables)."""
    out = {}
    for label, data in seen["downloads"]:
        out[label] = data() if callable(data) else data
    return out


def test_compare_draws_and_exports_the_registered_map(monkeypatch: pytest.MonkeyPatch) -> None:
    """Demo photo, no box: overlay, PNG panel and the .npz/CSV downloads all carry the impulse at (16, 32)."""
    _impulse_cams(monkeypatch, "tiny_resnet26", "layer3.1", (1, 2))
    at = _compare(None)
    seen = _record(monkeypatch)
    at.selectbox(key="compare_tap").set_value("block output").run()  # the run whose output is read
    _no_exception(at)
    ref = tent(16, 32)
    cells, heat = _figure_map(at)  # 'cells': the raw grid, each cell centred where its receptive field is
    raw = np.zeros((4, 4))
    raw[1, 2] = 1.0
    np.testing.assert_array_equal(cells, raw)
    crop = registration.crop_box(images.load_image(images.demo_images()["grace_hopper"].read_bytes()).image.size,
                           "tiny_resnet26")
    x, y = crop.to_image(32 + 0.5, 16 + 0.5)  # model-input pixel (16, 32) -> photo (pixel centres at integers)
    cy, cx = _centres(heat)
    assert (cy[1], cx[2]) == pytest.approx((y - 0.5, x - 0.5))
    assert (cy[2] - cy[1], cx[2] - cx[1]) == pytest.approx((16 / crop.scale[1], 16 / crop.scale[0]))  # a cell: 16 px
    at.radio(key="compare_display").set_value("smooth").run()
    smooth, heat = _figure_map(at)  # 'smooth': the map sampled (registration.register_to_photo) on a display grid
    k = np.unravel_index(int(np.nanargmax(smooth)), smooth.shape)
    cy, cx = _centres(heat)
    assert (cy[k[0]], cx[k[1]]) == pytest.approx((y - 0.5, x - 0.5), abs=cx[1] - cx[0])
    at.radio(key="compare_display").set_value("cells").run()
    files = _downloads(seen)
    assert sorted(files) == ["Figure (PNG)", "Maps (.npz)", "Numbers (CSV)"]
    assert files["Figure (PNG)"][:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_allclose(seen["png"][-1][0][0], ref, atol=1e-12)  # row "selected tap", first column
    npz = np.load(io.BytesIO(files["Maps (.npz)"]))
    np.testing.assert_array_equal(npz["tiny_resnet26/layer3.1"], raw)  # raw stays raw, at the tap's resolution
    np.testing.assert_allclose(npz["registered/tiny_resnet26/layer3.1"], ref, atol=1e-12)
    assert npz["registered/tiny_resnet26/layer3.1.branch0"].shape == (SIZE, SIZE)
    rows = {r["tap"]: r for r in csv.DictReader(io.StringIO(files["Numbers (CSV)"].decode()))}
    row = rows["layer3.1"]
    assert (row["height"], row["width"], row["stride"], row["start_y"], row["start_x"]) == ("4", "4", "16", "0", "0")
    assert row["registration"] == "cell (i,j) at start + stride·(i,j)"
    assert "energy_in_box" not in row  # no box, no localisation numbers


def _array(v: object) -> np.ndarray:
    """A plotly JSON array: a plain list, or a typed array {dtype, bdata (base64), shape}."""
    if isinstance(v, dict):
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        return a.reshape([int(k) for k in str(v.get("shape", a.size)).split(",")]).astype(np.float64)
    return np.asarray(v, dtype=np.float64)


def _centres(heat: dict) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres (rows, columns) of a heatmap drawn with cell edges (outer edges clipped to the picture)."""
    ye, xe = _array(heat["y"]), _array(heat["x"])
    return (ye[1:] + ye[:-1]) / 2, (xe[1:] + xe[:-1]) / 2


def _figure_map(at: AppTest, k: int = 0) -> tuple[np.ndarray, dict]:
    spec = json.loads(at.get("plotly_chart")[k].proto.spec)
    heat = next(t for t in spec["data"] if t["type"] == "heatmap")
    return _array(heat["z"]), heat


def _unlabelled(caption: str) -> str:
    """A caption without the "`model`: " label that names whose numbers it gives."""
    return caption.split(": ", 1)[1] if caption.startswith("`") and "`: " in caption else caption


def test_compare_with_a_box_scores_the_registered_map_beside_its_baselines(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 64 px image with a box around the registered peak (16, 32) that a half-pixel peak (23.5, 39.5) misses."""
    _impulse_cams(monkeypatch, "tiny_resnet26", "layer3.1", (1, 2))
    box = (26, 10, 36, 19)
    at = _compare(("val-like.png", _photo_64(), box))
    seen = _record(monkeypatch)
    at.radio(key="compare_display").set_value("smooth").run()
    at.slider(key="compare_alpha").set_value(0.6).run()
    _no_exception(at)
    ref = tent(16, 32)
    z, heat = _figure_map(at)
    np.testing.assert_allclose(z, ref, atol=1e-12)
    cy, cx = _centres(heat)
    np.testing.assert_allclose(cx, np.arange(SIZE))
    np.testing.assert_allclose(cy, np.arange(SIZE))
    sigma, note = study_data.centre_prior_sigma()
    g = gaussian(sigma)
    x0, y0, x1, y1 = box
    assert not hits((23.5, 39.5), box) and hits((16, 32), box) and not hits((31.5, 31.5), box)
    expected = (f"Energy in box {ref[y0:y1, x0:x1].sum() / ref.sum():.2f} (uniform map {90 / 4096:.2f}, centre prior "
                f"{g[y0:y1, x0:x1].sum() / g.sum():.2f}) · pointing game hit (always the centre: miss) · coverage "
                f"of the box {(ref[y0:y1, x0:x1] >= 0.5).mean():.2f} (centre prior "
                f"{(g[y0:y1, x0:x1] >= 0.5 * g.max()).mean():.2f}).")
    lines = [_unlabelled(c.value) for c in at.caption if _unlabelled(c.value).startswith("Energy in box")]
    assert len(lines) == 1 and lines[0].startswith(expected), (lines, expected)
    assert "16·(i,j)" in lines[0] and note in lines[0]
    rows = {r["tap"]: r for r in csv.DictReader(io.StringIO(_downloads(seen)["Numbers (CSV)"].decode()))}
    assert float(rows["layer3.1"]["energy_in_box"]) == pytest.approx(ref[y0:y1, x0:x1].sum() / ref.sum(), abs=1e-12)
    assert rows["layer3.1"]["pointing_hit"] == "True" and rows["layer3.1"]["pointing_centre_hit"] == "False"


@needs_data
def test_compare_val_image_caption_has_the_fitted_baselines() -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["device"] = "cpu"
    at.run()
    at.radio(key="compare_source").set_value("Tiny-ImageNet-100 val").run()
    _no_exception(at)
    lines = [_unlabelled(c.value) for c in at.caption if _unlabelled(c.value).startswith("Energy in box")]
    assert len(lines) == 2, lines  # one per model
    for line in lines:
        assert "uniform map" in line and "centre prior" in line and "always the centre" in line
        assert "coverage of the box" in line and "train boxes" in line and "fixed value" not in line
    z, heat = _figure_map(at)
    import res2net

    rf = receptive_field.tap_rf_info(res2net.create_model("tiny_resnet26", pretrained=False), "layer2.1")
    assert z.shape == (8, 8)  # the default block's cells, each drawn at its receptive-field centre on the photo
    cy, cx = _centres(heat)  # interior cells: at start + stride·i on the 64 px photo (= the model input)
    assert (cy[1], cy[2] - cy[1], cx[1], cx[2] - cx[1]) == (rf.start[0] + rf.jump[0], rf.jump[0],
                                                            rf.start[1] + rf.jump[1], rf.jump[1])
    at.radio(key="compare_display").set_value("smooth").run()
    z, _ = _figure_map(at)
    assert z.shape == (SIZE, SIZE)  # or as the registered full-resolution map, never a stretched grid


def test_scales_overlays_the_registered_branch_map(monkeypatch: pytest.MonkeyPatch) -> None:
    _impulse_cams(monkeypatch, "tiny_res2net26_4s", "layer3.1.branch2", (2, 1))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["device"] = "cpu"
    at.run()
    at.switch_page("views/scales.py").run()
    at.selectbox(key="scales_block").set_value("layer3.1").run()
    _no_exception(at)
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    on_photo = [[t for t in sp["data"] if t["type"] == "heatmap"] for sp in specs
                if any(t["type"] == "image" for t in sp["data"])]
    assert [len(h) for h in on_photo] == [4, 1]  # four Res2Net branches, then the ResNet's 3x3 path
    branch2 = on_photo[0][2]
    z = _array(branch2["z"])
    i, j = np.unravel_index(int(np.argmax(z)), z.shape)
    # the peak cell is drawn centred where model-input pixel (y 32, x 16) lies on the photo: where the registered
    # map peaks (tent(32, 16)), not where a half-pixel resize would put it (39.5, 23.5)
    crop = registration.crop_box(images.load_image(images.demo_images()["grace_hopper"].read_bytes()).image.size,
                           "tiny_res2net26_4s")
    x, y = crop.to_image(16 + 0.5, 32 + 0.5)
    cy, cx = _centres(branch2)
    assert (cy[i], cx[j]) == pytest.approx((y - 0.5, x - 0.5))
    assert np.unravel_index(int(np.argmax(tent(32, 16))), (SIZE, SIZE)) == (32, 16)


def test_erf_view_marks_the_units_receptive_field_centre() -> None:
    """The middle unit (2, 2) of a 4x4 stride-16 grid is centred at (32, 32), not at the half-pixel (39.5, 39.5)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["device"] = "cpu"
    at.run()
    at.switch_page("views/erf.py").run()
    at.select_slider(key="erf_size").set_value(64).run()  # noise of the models' own 64 px: a 4x4 layer3 grid
    at.slider(key="erf_n").set_value(1).run()
    at.selectbox(key="erf_block").set_value("layer3.1").run()
    _no_exception(at)
    models = {n: res2net.create_model(n) for n in ("tiny_resnet26", "tiny_res2net26_4s")}
    taps = {n: [i for i in res2net.block_infos(m) if i.name == "layer3.1"][0].branch_taps + ["layer3.1"]
            for n, m in models.items()}
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    grids = [c for c in charts if any(t["type"] == "heatmap" for t in c["data"])]  # one grid of maps per model
    marks = [d for g in grids for d in g["data"] if d["type"] == "scatter"]
    rects = [r for g in grids for r in g["layout"]["shapes"]]
    expected = [(n, t) for n in models for t in taps[n]]
    assert len(grids) == 2 and len(marks) == len(rects) == len(expected) == 5 + 2
    for mark, rect, (n, t) in zip(marks, rects, expected, strict=True):
        centre = receptive_field.tap_rf_info(models[n], t).centre(2, 2)
        assert (_array(mark["y"])[0], _array(mark["x"])[0]) == (32, 32) == centre
        side = receptive_field.theoretical_rf(models[n], t)
        assert (rect["x0"], rect["x1"], rect["y0"], rect["y1"]) == (32 - side / 2, 32 + side / 2,
                                                                   32 - side / 2, 32 + side / 2)
