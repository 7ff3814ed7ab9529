"""Dashboard behaviour through Streamlit's AppTest: every view runs without an exception, real photos give overlays,
and each kind of bad upload gives its specific message (or a result), never a traceback."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from res2net.data.tiny_imagenet import default_data_dir

from helpers import refuse_downloads

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")
PHOTOS = REPO.parent / "shared" / "data" / "imagenet-sample-photos"
DATA = default_data_dir()
TIMEOUT = 300
needs_data = pytest.mark.skipif(not (DATA / "val.tar.gz").is_file(),
                                reason=f"Tiny-ImageNet-100 not found at {DATA} (set RES2NET_DATA)")


def _app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["device"] = "cpu"
    at.run()
    if page:
        at.switch_page(page).run()
    return at


def _model_rows(at: AppTest) -> set[str]:
    """The models that head a row of Compare's grid."""
    return {m.value.split()[1] for m in at.markdown if m.value.startswith("##### ")}


def _no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not [e for e in at.error if "failed:" in e.value], [e.value for e in at.error]  # the catch-all wrapper


@pytest.fixture(scope="module")
def photo() -> bytes:
    """A real photo; when absent the test skips (fails in CI) before it does any work."""
    files = sorted(PHOTOS.glob("*.JPEG")) if PHOTOS.is_dir() else []
    if not files:
        pytest.skip(f"sample photos not found at {PHOTOS}")
    return files[0].read_bytes()


def _upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.radio(key="compare_source").set_value("Upload").run()
    at.file_uploader(key="compare_upload").upload(name, data).run()
    return at


def _png(im: Image.Image, fmt: str = "PNG", **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _rgb(w: int = 96, h: int = 80) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    return _png(_rgb(120, 60), "JPEG", exif=exif)


def _animated() -> bytes:
    frames = [_rgb().convert("P"), _rgb(96, 80).transpose(Image.Transpose.FLIP_LEFT_RIGHT).convert("P")]
    return _png(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _sixteen_bit() -> bytes:
    a = (np.arange(80 * 96, dtype=np.uint32).reshape(80, 96) * 8).astype(np.uint16)
    im = Image.fromarray(a)
    assert im.mode.startswith("I;16"), im.mode
    return _png(im)


# name -> (bytes factory, substring the error must contain, or None when a result is expected)
BAD = {
    "not_an_image.png": (lambda: b"this is plain text, not pixels\n" * 20, "not"),
    "truncated.jpg": (lambda: _png(_rgb(300, 300), "JPEG", quality=95)[:1500], "trunc"),
    "tiny_1x1.png": (lambda: _png(Image.new("RGB", (1, 1), (200, 10, 10))), "1 x 1"),
    "bomb.png": (lambda: _png(Image.new("L", (9000, 9000))), "pixels"),
    "empty.png": (lambda: b"", "empty"),
    "cmyk.jpg": (lambda: _png(_rgb().convert("CMYK"), "JPEG"), None),
    "sixteen_bit.png": (_sixteen_bit, None),
    "palette.png": (lambda: _png(_rgb().convert("P")), None),
    "alpha.png": (lambda: _png(_rgb().convert("RGBA")), None),
    "exif_rotated.jpg": (_exif_rotated, None),
    "animated.gif": (_animated, None),
    "wide_10000x100.png": (lambda: _png(Image.new("RGB", (10000, 100), (30, 120, 200))), None),
}


@pytest.mark.parametrize("page", [None, "views/scales.py", "views/erf.py", "views/claims.py", "views/models.py"])
def test_every_view_runs_without_exception(page: str | None) -> None:
    at = _app(page)
    _no_exception(at)
    assert at.title, "the view rendered no title"


def test_sidebar_offers_cpu_and_states_weights() -> None:
    at = _app()
    assert "CPU" in at.sidebar.radio(key="device").options
    captions = " ".join(c.value for c in at.sidebar.caption)
    assert "tiny_res2net26_4s" in captions and "tiny_resnet26" in captions


def test_compare_default_demo_shows_overlays_for_both_models() -> None:
    at = _app()
    _no_exception(at)
    assert {"tiny_resnet26", "tiny_res2net26_4s"} <= _model_rows(at)
    assert len(at.get("plotly_chart")) >= 2  # the two main overlays at least
    branches = [m for m in at.markdown if m.value.startswith("#### Branches of")]
    assert branches and "Branch order" in branches[0].proto.help  # the convention, behind the header's info icon


def test_compare_real_photo_upload_gives_overlays(photo: bytes) -> None:
    at = _upload(_app(), "photo.JPEG", photo)
    _no_exception(at)
    assert not at.error
    # main overlay per model + the branch overlays of the Res2Net block
    assert len(at.get("plotly_chart")) >= 2 + 1


def test_image_injected_through_session_state(photo: bytes) -> None:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["device"] = "cpu"
    at.session_state["picked_image"] = ("photo.JPEG", photo, None)
    at.run()
    _no_exception(at)
    assert at.radio(key="compare_source").value == "Picked image"
    assert len(at.get("plotly_chart")) >= 2


@pytest.mark.parametrize("name", list(BAD))
def test_bad_uploads_get_a_specific_message_or_a_result(name: str, photo: bytes) -> None:
    factory, expected = BAD[name]
    at = _upload(_app(), name, factory())
    _no_exception(at)
    if expected is None:
        assert not at.error, [e.value for e in at.error]
        assert len(at.get("plotly_chart")) >= 2
    else:
        assert at.error, f"{name}: no error shown"
        msg = at.error[0].value
        assert name in msg and expected in msg.lower(), msg
    # the session keeps working: a good photo afterwards renders
    at.file_uploader(key="compare_upload").upload("photo.JPEG", photo).run()
    _no_exception(at)
    assert not at.error


def test_opacity_scale_and_branch_switch_do_not_recompute(monkeypatch: pytest.MonkeyPatch) -> None:
    import res2net.analysis.cam

    at = _app()
    calls = []
    real = res2net.analysis.cam.compute_cams
    monkeypatch.setattr(res2net.analysis.cam, "compute_cams", lambda *a, **k: calls.append(1) or real(*a, **k))
    at.slider(key="compare_alpha").set_value(0.8).run()
    at.radio(key="compare_scale").set_value("shared").run()
    at.selectbox(key="compare_tap").set_value("branch 2").run()
    _no_exception(at)
    assert calls == []
    at.selectbox(key="compare_method").set_value("layercam").run()  # a real change does recompute
    assert len(calls) == 2


def test_compare_offers_the_three_downloads() -> None:
    at = _app()
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == ["Figure (PNG)", "Maps (.npz)", "Numbers (CSV)"]


def test_models_view_lists_the_zoo_with_weight_status() -> None:
    import res2net

    at = _app("views/models.py")
    _no_exception(at)
    table = at.table[0].value
    assert list(table["model"]) == res2net.list_models("embedded")  # the offline family first
    assert set(table["weights"]) <= {"embedded", "embedded-missing", "local"}
    assert (table["input"] == 64).all()
    at.button_group(key="models_family").set_value("resnet").run()
    _no_exception(at)
    table = at.table[0].value
    assert list(table["model"]) == res2net.list_models("resnet")
    assert set(table["weights"]) <= {"cached", "downloadable", "local", "not downloaded (offline)"}


@needs_data
def test_val_image_shows_its_box_and_localisation_numbers() -> None:
    at = _app()
    at.radio(key="compare_source").set_value("Tiny-ImageNet-100 val").run()
    _no_exception(at)
    lines = [c.value for c in at.caption if c.value.startswith("Energy in box")]
    assert len(lines) == 2, lines  # one per model, each beside its baselines
    assert all("uniform map" in line and "centre prior" in line and "always the centre" in line for line in lines)
    assert len(at.get("plotly_chart")) >= 2  # overlays with the box drawn


def test_scales_shows_branches_of_both_models_and_states_branch_order() -> None:
    at = _app("views/scales.py")
    _no_exception(at)
    assert {"tiny_res2net26_4s", "tiny_resnet26"} <= {s.value for s in at.subheader}
    import json

    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    captions = [a.get("text", "") for sp in specs if any(t.get("type") == "image" for t in sp["data"])
                for a in sp["layout"].get("annotations", [])]  # titles of the per-branch CAM panels on the photo
    assert sum(c.startswith("branch") for c in captions) == 4  # Res2Net s=4 branches
    assert captions.count("3×3 path") == 1  # the ResNet's one path, not a "branch 0"
    assert any("identity" in c for c in captions)
    assert "Branch order" in at.title[0].proto.help  # behind the title's info icon
    assert len(at.get("plotly_chart")) >= 4  # feature maps per model, energy and sparsity bars


def test_class_demo_opens_in_scales_and_compare() -> None:
    at = _app("views/scales.py")
    opens = [b for b in at.button if b.key and b.key.startswith("scales_open_")]
    assert opens, "no gallery images: neither val images nor the demo photos (matplotlib ships one) are shown"
    opens[-1].click().run()
    _no_exception(at)
    assert at.radio(key="scales_source").value == "Picked image"
    at.switch_page("views/compare.py").run()
    _no_exception(at)
    assert at.radio(key="compare_source").value == "Picked image"
    assert len(at.image) + len(at.get("plotly_chart")) >= 2


def test_claims_without_results_says_how_to_make_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from dashboard.services import study_data

    monkeypatch.setattr(study_data, "RESULTS_FILE", tmp_path / "absent.json")
    monkeypatch.setattr(study_data, "REPO_ROOT", tmp_path)
    at = _app("views/claims.py")
    _no_exception(at)
    assert any("python -m res2net.evaluate" in i.value for i in at.info)


def test_imagenet_model_without_weights_says_why_and_keeps_working() -> None:
    from res2net.models.weights import weight_status

    at = _app()
    models = at.multiselect(key="compare_models")
    models.set_value(["tiny_res2net26_4s", "resnet50"]).run()
    _no_exception(at)
    assert "resnet50" in _model_rows(at)
    if weight_status("resnet50") not in ("cached", "local"):
        notes = [w.value for w in at.warning if "resnet50" in w.value]
        assert len(notes) == 1, [w.value for w in at.warning]  # one short line ...
        assert "untrained" in notes[0] and "meaningless" in notes[0] and "http" not in notes[0], notes[0]
        assert any(e.label == "Details" for e in at.expander)  # ... and the reason folded away
        assert any("untrained" in m.value and "badge" in m.value for m in at.markdown)  # the column's badge
        assert len(at.dataframe) == 1  # probabilities only for the trained model, none for the stand-in


def test_models_download_failure_shows_the_weights_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The test refuses every connection itself (AppTest runs in this process), so it runs online and offline."""
    import res2net
    from dashboard.services import model_store

    name = "resnet50"
    tried = refuse_downloads(monkeypatch, tmp_path)  # empty checkpoint cache: the weights are 'downloadable'
    model_store.weight_status.clear()
    try:
        at = _app("views/models.py")
        at.button_group(key="models_family").set_value(res2net.get_spec(name).family).run()
        at.selectbox(key="models_pick").set_value(name).run()
        at.button(key="models_download").click().run()
        _no_exception(at)
        assert at.error, "no error shown"
        msg = at.error[0].value
        assert name in msg and "http" not in msg  # one short line; the URLs and errors are folded away
        details = " ".join(c.value for c in at.code)
        urls = [w.url for w in res2net.get_spec(name).checkpoints if w.url]
        assert "Connection refused" in details
        assert tried == urls and all(u in details for u in urls)
        assert not list(tmp_path.rglob("*.pth*")), "nothing may be left in the cache"
    finally:
        model_store.weight_status.clear()  # its entries were computed with this test's TORCH_HOME


def _val_source_page() -> None:
    """A page with only the val-image source; what it returns goes into session state for the test to read."""
    import streamlit as st

    from dashboard.services import sources

    src = sources.val_choice("t")
    st.session_state["got"] = None if src is None else (src.label, src.box)


@needs_data
def test_val_source_hands_out_the_exclusive_box() -> None:
    """The val source's box is the tsv's inclusive box + 1 at x1, y1, for an image whose box reaches column 63."""
    wnids = [w for w in (DATA / "wnids.txt").read_text().split() if w]
    rows = [line.split("\t") for line in (DATA / "val_boxes.tsv").read_text().splitlines() if line.strip()]
    boxes = {r[0]: tuple(int(v) for v in r[-4:]) for r in rows}
    file, wnid = next((r[0], r[1]) for r in rows if int(r[4]) == 63)
    cls = wnids.index(wnid)
    index = sorted(r[0] for r in rows if r[1] == wnid).index(file)  # the split lists a class's files by name
    at = AppTest.from_function(_val_source_page, default_timeout=TIMEOUT)
    at.run()
    at.selectbox(key="t_cls").set_value(cls).run()
    at.number_input(key="t_idx").set_value(index).run()
    _no_exception(at)
    label, box = at.session_state["got"]
    assert label.startswith(f"val/{file} ")
    x0, y0, x1, y1 = boxes[file]
    assert box == (x0, y0, x1 + 1, y1 + 1) and box[2] == 64


def test_gpu_out_of_memory_falls_back_to_cpu() -> None:
    import torch

    from dashboard.services import analyses

    seen = []

    def run(device: str) -> str:
        seen.append(device)
        if device == "cuda":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return "done"

    assert analyses._on_device(run, "cuda") == ("done", True)
    assert seen == ["cuda", "cpu"]
    with pytest.raises(torch.cuda.OutOfMemoryError):
        analyses._on_device(lambda d: run("cuda"), "cpu")  # no device left to fall back to
