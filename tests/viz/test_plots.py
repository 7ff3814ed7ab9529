"""viz.plots: overlays by hand-computed blending, figure contents and explicit colour ranges, PNG and exports."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from matplotlib import colormaps
from PIL import Image

from res2net.viz import plots as P

RNG = np.random.default_rng(0)
PHOTO = RNG.integers(0, 256, (64, 96, 3), dtype=np.uint8)


def heatmaps(fig) -> list:  # noqa: ANN001
    return [t for t in fig.data if t.type == "heatmap"]


# ------------------------------------------------------------------------------------------------ overlay
def test_overlay_blends_by_hand_computed_formula() -> None:
    img = np.full((4, 4, 3), 100, np.uint8)
    cam = np.zeros((4, 4))
    cam[0, 0] = 2.0
    out = P.overlay(img, cam, alpha=0.25, cmap="jet")
    hot = np.asarray(colormaps["jet"](1.0)[:3]) * 255
    cold = np.asarray(colormaps["jet"](0.0)[:3]) * 255
    np.testing.assert_allclose(out[0, 0], np.rint(0.75 * 100 + 0.25 * hot), atol=0)
    np.testing.assert_allclose(out[3, 3], np.rint(0.75 * 100 + 0.25 * cold), atol=0)
    assert out.dtype == np.uint8 and out.shape == (4, 4, 3)


def test_overlay_vmax_sets_a_shared_scale() -> None:
    img = np.zeros((2, 2, 3), np.uint8)
    cam = np.ones((2, 2))
    half = np.rint(np.asarray(colormaps["jet"](0.5)[:3]) * 255)
    np.testing.assert_allclose(P.overlay(img, cam, alpha=1.0, vmax=2.0)[0, 0], half, atol=1)
    full = np.rint(np.asarray(colormaps["jet"](1.0)[:3]) * 255)
    np.testing.assert_allclose(P.overlay(img, cam, alpha=1.0)[0, 0], full, atol=1)


def test_overlay_keeps_photo_where_nan_and_alpha_zero() -> None:
    cam = RNG.random(PHOTO.shape[:2])
    out = P.overlay(PHOTO, cam)
    assert out.shape == PHOTO.shape
    assert np.array_equal(P.overlay(PHOTO, cam, alpha=0.0), PHOTO)
    nan_cam = np.full(PHOTO.shape[:2], np.nan)
    nan_cam[:10] = 1.0
    out = P.overlay(PHOTO, nan_cam, alpha=0.8)
    assert np.array_equal(out[10:], PHOTO[10:]) and not np.array_equal(out[:10], PHOTO[:10])


def test_overlay_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="uint8"):
        P.overlay(PHOTO.astype(float), np.ones((3, 3)))
    with pytest.raises(ValueError, match="alpha"):
        P.overlay(PHOTO, np.ones((3, 3)), alpha=1.5)
    with pytest.raises(ValueError, match="2-D"):
        P.overlay(PHOTO, np.ones((3, 3, 3)))


@pytest.mark.parametrize("shape", [(7, 7), (64, 95), (96, 64), (32, 48)])
def test_overlay_refuses_a_map_of_another_shape(shape: tuple[int, int]) -> None:
    """Stretching a tap's map over the photo would put stride-S cells (S - 1) / 2 px off their centres."""
    with pytest.raises(ValueError, match=r"register"):
        P.overlay(PHOTO, np.ones(shape))
    with pytest.raises(ValueError, match=r"register"):
        P.cam_panel_png([PHOTO], [np.ones(shape)], ["a"], dpi=30)
    with pytest.raises(ValueError, match=r"register"):
        P.cam_grid_figure([PHOTO], [np.ones(shape)], ["a"])


# --------------------------------------------------------------------------------------------- CAM grid
def test_cam_grid_shared_scale_has_equal_explicit_ranges() -> None:
    maps = [RNG.random((64, 96)), 3 * RNG.random((64, 96)), 0.5 * RNG.random((64, 96))]
    fig = P.cam_grid_figure([PHOTO] * 3, maps, ["a", "b", "c"], shared_scale=True)
    assert [t.type for t in fig.data] == ["image", "heatmap"] * 3
    hms = heatmaps(fig)
    top = max(float(m.max()) for m in maps)
    assert all(h.zmin == 0.0 and h.zmax == pytest.approx(top) and h.zauto is False for h in hms)
    assert all(h.colorscale is not None for h in hms)
    assert sum(bool(h.showscale) for h in hms) == 1


def test_cam_grid_per_map_scale() -> None:
    maps = [RNG.random((64, 96)), 3 * RNG.random((64, 96))]
    hms = heatmaps(P.cam_grid_figure([PHOTO] * 2, maps, ["a", "b"], shared_scale=False))
    assert [h.zmax for h in hms] == pytest.approx([maps[0].max(), maps[1].max()])
    assert all(h.showscale for h in hms)


def test_cam_grid_heatmap_puts_map_pixel_on_photo_pixel_and_boxes() -> None:
    """A placed map's pixel (y, x) is drawn centred on photo pixel (y, x) (go.Image puts pixel centres at integers)."""
    cam = np.zeros((64, 96))
    cam[17, 40] = 1.0
    fig = P.cam_grid_figure([PHOTO, PHOTO], [cam, np.ones((64, 96))], ["a", "b"], box=[(10, 5, 40, 30), None])
    h = heatmaps(fig)[0]
    z = np.asarray(h.z)
    peak = np.unravel_index(int(np.argmax(z)), z.shape)
    assert (h.y0 + peak[0] * h.dy, h.x0 + peak[1] * h.dx) == (17, 40)
    assert (h.dx, h.dy) == (1, 1) and z.shape == (64, 96)
    assert len(fig.layout.shapes) == 1
    s = fig.layout.shapes[0]
    assert (s.x0, s.y0, s.x1, s.y1) == (9.5, 4.5, 39.5, 29.5)
    both = P.cam_grid_figure([PHOTO, PHOTO], [np.ones((64, 96))] * 2, ["a", "b"], box=(0, 0, 10, 10))
    assert len(both.layout.shapes) == 2


def test_cam_grid_length_mismatch() -> None:
    with pytest.raises(ValueError, match="as many"):
        P.cam_grid_figure([PHOTO], [np.ones((64, 96))] * 2, ["a", "b"])


# ------------------------------------------------------------------------------------------- bar charts
def test_branch_bars_order_values_and_identity_grey() -> None:
    stats = {"branch0": {"energy": 1.0}, "branch1": {"energy": 2.5}, "branch2": {"energy": 3.0},
             "branch3 (identity)": {"energy": 0.5}}
    fig = P.branch_bars(stats, "energy", model="tiny_res2net26_4s")
    bar = fig.data[0]
    assert list(bar.x) == list(stats) and list(bar.y) == [1.0, 2.5, 3.0, 0.5]
    colours = list(bar.marker.color)
    assert colours[-1] == P.IDENTITY_COLOR and len(set(colours[:3])) == 3
    with pytest.raises(KeyError, match="sparsity"):
        P.branch_bars(stats, "sparsity")


def test_grouped_branch_bars_one_trace_per_model_in_its_colour() -> None:
    per_model = {"tiny_res2net26_4s": {"b0": {"e": 1}, "b1": {"e": 2}}, "tiny_resnet26": {"conv": {"e": 3}}}
    fig = P.grouped_branch_bars(per_model, "e")
    assert [t.name for t in fig.data] == list(per_model)
    assert fig.data[0].marker.color == P.model_color("tiny_res2net26_4s")
    assert fig.layout.barmode == "group"


def test_model_colours_fixed_and_distinct_in_the_embedded_family() -> None:
    family = ["tiny_resnet26", "tiny_res2net26_2s", "tiny_res2net26_4s", "tiny_res2net26_8s"]
    assert len({P.model_color(m) for m in family}) == 4
    assert P.model_color("someone_elses_net") == P.model_color("someone_elses_net")
    assert P.model_color("someone_elses_net") in P.PALETTE


# ---------------------------------------------------------------------------------------------------- ERF
def test_erf_heatmap_linear_and_log_ranges() -> None:
    erf = RNG.random((32, 32)) ** 6
    erf /= erf.sum()
    lin = P.erf_heatmap(erf, title="t").data[0]
    assert lin.zmin == 0.0 and lin.zmax == pytest.approx(erf.max()) and lin.colorscale is not None
    log = P.erf_heatmap(erf, log=True, title="t").data[0]
    assert log.zmax == pytest.approx(np.log10(erf.max())) and log.zmin == pytest.approx(log.zmax - 4)
    assert np.nanmin(np.asarray(log.z)) >= log.zmin - 1e-12


def test_erf_heatmap_marks_the_unit_centre_and_its_receptive_field() -> None:
    """A 5 x 7 px RF centred on pixel (y 10, x 20) covers pixels 8..12 and 17..23: edges 7.5..12.5, 16.5..23.5."""
    fig = P.erf_heatmap(np.ones((32, 48)) / (32 * 48), centre=(10, 20), rf_size=(5, 7))
    mark = [t for t in fig.data if t.type == "scatter"]
    assert len(mark) == 1 and (mark[0].y[0], mark[0].x[0]) == (10, 20)
    (rect,) = fig.layout.shapes
    assert (rect.x0, rect.x1, rect.y0, rect.y1) == (16.5, 23.5, 7.5, 12.5)
    assert tuple(fig.layout.xaxis.range) == (-0.5, 47.5) and tuple(fig.layout.yaxis.range) == (31.5, -0.5)
    plain = P.erf_heatmap(np.ones((32, 48)) / (32 * 48))
    assert [t.type for t in plain.data] == ["heatmap"] and not plain.layout.shapes


def test_radial_mass_lines_and_guides() -> None:
    curves = {"tiny_resnet26": ([1, 2, 4], [0.3, 0.7, 1.0]), "branch 2": ([1, 2], [0.5, 1.0])}
    fig = P.radial_mass_figure(curves)
    assert [t.name for t in fig.data] == list(curves)
    assert fig.data[0].line.color == P.model_color("tiny_resnet26")
    assert sorted(s.y0 for s in fig.layout.shapes) == [0.5, 0.9, 0.99]


# ------------------------------------------------------------------------------------------- localisation
def test_localisation_by_size_error_bars_and_chance() -> None:
    rows = []
    for m, shift in (("tiny_resnet26", 0.0), ("tiny_res2net26_4s", 0.05)):
        for b, chance in (("small", 0.05), ("medium", 0.2), ("large", 0.6)):
            rows.append(dict(model=m, bucket=b, mean=0.3 + shift, lo=0.25 + shift, hi=0.4 + shift, chance=chance, n=9))
    fig = P.localisation_by_size_figure(rows)
    assert [t.name for t in fig.data] == ["tiny_resnet26", "tiny_res2net26_4s", "chance (uniform map)"]
    first = fig.data[0]
    assert list(first.x) == ["small", "medium", "large"]
    np.testing.assert_allclose(first.error_y.array, [0.1] * 3)
    np.testing.assert_allclose(first.error_y.arrayminus, [0.05] * 3)
    chance = fig.data[-1]
    assert chance.mode == "markers" and list(chance.y) == [0.05, 0.2, 0.6]  # ticks, no line across buckets
    assert list(fig.layout.xaxis.categoryarray) == ["small", "medium", "large"]
    fig = P.localisation_by_size_figure(rows, baselines={"centre prior": {"small": 0.3, "large": 0.9}})
    prior = fig.data[-1]
    assert prior.name == "centre prior" and list(prior.x) == ["small", "large"] and list(prior.y) == [0.3, 0.9]
    with pytest.raises(KeyError, match="lo"):
        P.localisation_by_size_figure([dict(model="m", bucket="s", mean=1, hi=2)])


# ------------------------------------------------------------------------------------------- feature maps
@pytest.mark.parametrize("scale", P.FEATURE_SCALES)
def test_feature_maps_colour_scales(scale: str) -> None:
    maps = {"branch0": [RNG.random((8, 8)) * k for k in (1, 2)], "branch1": [RNG.random((8, 8)) * k for k in (5, 9)]}
    fig = P.feature_maps_figure(maps, scale=scale, channel_labels={"branch0": [3, 7], "branch1": [0, 1]})
    hms = heatmaps(fig)
    assert len(hms) == 4 and all(h.colorscale is not None and h.zauto is False for h in hms)
    tops = [h.zmax for h in hms]
    flat = [m for ms in maps.values() for m in ms]
    own = [float(m.max()) for m in flat]
    assert all(np.array_equal(np.asarray(h.customdata), m) for h, m in zip(hms, flat, strict=True))  # raw on hover
    if scale == "local":  # each map drawn as a share of its own maximum (all are >= 0), under one 0-1 bar
        assert tops == pytest.approx([1.0] * 4)
        for h, m in zip(hms, flat, strict=True):
            np.testing.assert_allclose(np.asarray(h.z, dtype=np.float64), m / m.max())
        assert [h.showscale for h in hms] == [True, False, False, False]
        assert list(hms[0].colorbar.tickvals) == [0, 0.5, 1] and hms[0].colorbar.ticktext[-1] == "max"
    elif scale == "branch":  # one bar per row, each beside its row
        assert tops == pytest.approx([max(own[:2])] * 2 + [max(own[2:])] * 2)
        assert [h.showscale for h in hms] == [True, False, True, False]
    else:
        assert tops == pytest.approx([max(own)] * 4)
        assert [h.showscale for h in hms] == [True, False, False, False]
    assert all(h.zmin == 0.0 for h in hms)
    assert "ch 7" in [a.text for a in fig.layout.annotations]
    assert fig.layout.yaxis.title.text == "branch0" and fig.layout.yaxis3.title.text == "branch1"  # row labels


def test_feature_maps_bad_scale() -> None:
    with pytest.raises(ValueError, match="scale"):
        P.feature_maps_figure({"b0": [np.ones((2, 2))]}, scale="auto")


# -------------------------------------------------------------------------------------------- PNG panel
def test_cam_panel_png_is_a_png_with_a_column_per_model() -> None:
    maps = [RNG.random((64, 96)), RNG.random((64, 96))]
    one = P.cam_panel_png([PHOTO], maps[:1], ["a"], dpi=60)
    two = P.cam_panel_png([PHOTO, PHOTO], [maps, [maps[1], None]], ["a", "b"], row_labels=["block", "branch0"],
                          box=(10, 10, 40, 40), dpi=60)
    assert one[:8] == b"\x89PNG\r\n\x1a\n" and two[:8] == b"\x89PNG\r\n\x1a\n"
    w1, h1 = Image.open(io.BytesIO(one)).size
    w2, h2 = Image.open(io.BytesIO(two)).size
    assert w2 > 1.5 * w1 and h2 > 1.5 * h1


def test_cam_panel_png_from_threads() -> None:
    def draw(seed: int) -> bytes:
        rng = np.random.default_rng(seed)
        return P.cam_panel_png([PHOTO, PHOTO], [rng.random((64, 96)), rng.random((64, 96))], ["a", "b"],
                               shared_scale=bool(seed % 2), dpi=50)

    with ThreadPoolExecutor(4) as pool:
        pngs = list(pool.map(draw, range(4)))
    for png in pngs:
        im = Image.open(io.BytesIO(png))
        im.load()
        assert im.format == "PNG"


def test_plots_never_import_pyplot() -> None:
    code = ("import sys, numpy as np; from res2net.viz import plots as P; "
            "P.cam_panel_png([np.zeros((8, 8, 3), np.uint8)], [np.ones((8, 8))], ['a'], dpi=30); "
            "assert 'matplotlib.pyplot' not in sys.modules and 'streamlit' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# ------------------------------------------------------------------------------------------------ exports
def test_npz_round_trip_including_tensors() -> None:
    arrays = {"resnet/layer4": RNG.random((7, 7)).astype(np.float32), "erf": torch.arange(6.0).reshape(2, 3),
              "labels": np.array([3, 1, 2])}
    back = np.load(io.BytesIO(P.maps_to_npz_bytes(arrays)))
    assert sorted(back.files) == sorted(arrays)
    assert np.array_equal(back["resnet/layer4"], arrays["resnet/layer4"])
    assert np.array_equal(back["erf"], np.arange(6.0, dtype=np.float32).reshape(2, 3))
    assert back["labels"].dtype == arrays["labels"].dtype
    with pytest.raises(ValueError, match="names"):
        P.maps_to_npz_bytes({"": np.zeros(2)})


def test_csv_header_union_and_exact_floats() -> None:
    rows = [{"model": "tiny_resnet26", "energy": 0.1 + 0.2, "n": np.int64(4)},
            {"model": "tiny_res2net26_4s", "iou": np.float32(0.5), "energy": 1e-9}]
    text = P.rows_to_csv_bytes(rows).decode("utf-8")
    assert text.splitlines()[0] == "model,energy,n,iou"
    back = list(csv.DictReader(io.StringIO(text)))
    assert float(back[0]["energy"]) == 0.1 + 0.2 and back[0]["iou"] == "" and back[0]["n"] == "4"
    assert float(back[1]["energy"]) == 1e-9 and float(back[1]["iou"]) == 0.5
    assert P.rows_to_csv_bytes([]) == b""


def test_maps_on_photo_cells_sit_at_their_centres_and_fill_what_the_model_saw() -> None:
    photo = np.zeros((64, 80, 3), dtype=np.uint8)
    grid = RNG.random((8, 8))
    seen = (7.5, -0.5, 71.5, 63.5)  # a centre crop: the model saw columns 8..71 of the photo
    fig = P.maps_on_photo_figure(photo, [P.PhotoMap(grid, 8.0, 8.0, 0.0, 8.0, "m", seen)], vmin=0.0, vmax=1.0)
    heat = next(t for t in fig.data if t.type == "heatmap")
    xe, ye = np.asarray(heat.x), np.asarray(heat.y)
    np.testing.assert_allclose(xe, [7.5, 12, 20, 28, 36, 44, 52, 60, 71.5])  # inner edges halfway between centres
    np.testing.assert_allclose(ye, [-0.5, 4, 12, 20, 28, 36, 44, 52, 63.5])
    np.testing.assert_array_equal(np.asarray(heat.z), grid)
    assert heat.zmin == 0.0 and heat.zmax == 1.0 and heat.showscale
    assert fig.layout.yaxis2.range == (63.5, -0.5) and fig.layout.yaxis2.autorange is False
    with pytest.raises(ValueError, match="vmin < vmax"):
        P.maps_on_photo_figure(photo, [P.PhotoMap(grid, 0, 8, 0, 8, "m")], vmin=1.0, vmax=1.0)
