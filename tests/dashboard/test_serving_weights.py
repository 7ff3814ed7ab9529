"""A weights file loaded on the Models page is the loading session's alone: used on its pages and labelled there,
invisible to another session and to the process environment; a file that does not fit changes nothing; the default
weights come back on request."""

from __future__ import annotations

import hashlib
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

import res2net
from dashboard.services import image_inputs, model_store, sources
from res2net.models import weights

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
NAME = "tiny_resnet26"  # Compare's first column by default


def _app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["device"] = "cpu"
    at.run()
    _clean(at)
    return at


def _clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _state_dict_bytes(model: torch.nn.Module) -> bytes:
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getvalue()


def _shifted_model() -> torch.nn.Module:
    """The embedded model with its classifier rows rolled by one: its logit k is the shipped model's logit k - 1,
    so its top-1 class is the shipped top-1 plus one, a change any page that uses it must show."""
    model = res2net.create_model(NAME, pretrained=True)
    with torch.no_grad():
        model.fc.weight.copy_(torch.roll(model.fc.weight, 1, 0))
        model.fc.bias.copy_(torch.roll(model.fc.bias, 1, 0))
    return model.eval()


def _top5(at: AppTest) -> dict[str, float]:
    """Compare's top-5 table of the first column: class -> shown probability."""
    table = at.dataframe[0].value
    return dict(zip(table["class"], (float(p) for p in table["probability"]), strict=True))


def _load_file(at: AppTest, filename: str, data: bytes) -> None:
    at.switch_page("views/models.py").run()
    at.selectbox(key="models_pick").set_value(NAME).run()
    at.file_uploader(key="models_local_file").upload(filename, data).run()
    at.button(key="models_local_use").click().run()
    _clean(at)


@pytest.fixture
def untouched_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A ``RES2NET_WEIGHTS`` directory that must stay empty and named as it is."""
    monkeypatch.setenv(weights.ENV_WEIGHTS, str(tmp_path))
    model_store.weight_status.clear()
    yield tmp_path
    model_store.weight_status.clear()


def test_a_loaded_file_is_used_in_its_session_only(untouched_env: Path) -> None:
    env_before = dict(os.environ)
    mine = _shifted_model()
    data = _state_dict_bytes(mine)
    classes = model_store.class_names(NAME)
    photo = next(iter(sources.demo_photos().values()))  # Compare's default image
    with torch.no_grad():
        ref = torch.softmax(mine(image_inputs.model_input(photo, NAME))[0], 0).numpy()
    default_top1 = int(np.argmax(res2net.create_model(NAME, pretrained=True)(image_inputs.model_input(photo, NAME))[0]
                                 .detach().numpy()))

    a, b = _app(), _app()
    before_b = _top5(b)
    assert next(iter(before_b)) == classes[default_top1]
    _load_file(a, "mine.pth", data)
    assert any("this session now uses" in s.value for s in a.success)
    label = f"your file mine.pth, sha256 {hashlib.sha256(data).hexdigest()[:12]}"
    a.switch_page("views/compare.py").run()
    _clean(a)
    shown = _top5(a)
    assert next(iter(shown)) == classes[(default_top1 + 1) % len(classes)]  # the rolled classifier is in use
    for cls, p in shown.items():  # every shown probability is the file's model's, computed here by hand (3 decimals)
        assert p == pytest.approx(float(ref[classes.index(cls)]), abs=5e-4 + 6e-5)
    assert set(shown) == {classes[k] for k in np.argsort(ref)[::-1][:5]}
    assert any(label in m.value for m in a.markdown)  # the column says which weights it shows
    assert any(label in c.value for c in a.sidebar.caption)
    a.switch_page("views/erf.py").run()
    _clean(a)
    assert any(s.value == f"{NAME} · {label}" for s in a.subheader)  # the ERF explorer names it too

    b.run()  # the other session still sees the default weights
    _clean(b)
    assert _top5(b) == before_b
    assert not any("your file" in m.value for m in [*b.markdown, *b.sidebar.caption])
    assert dict(os.environ) == env_before  # nothing set for the whole process
    assert not list(untouched_env.iterdir())  # nothing written where every session looks


def test_a_file_that_does_not_fit_changes_nothing_and_the_default_comes_back(untouched_env: Path) -> None:
    good = _state_dict_bytes(_shifted_model())
    wrong = _state_dict_bytes(res2net.create_model("tiny_res2net26_4s", pretrained=False))
    a = _app()
    default = _top5(a)
    _load_file(a, "mine.pth", good)
    shifted = dict(_top5(a.switch_page("views/compare.py").run()))
    assert shifted != default

    _load_file(a, "other.pth", wrong)
    assert a.error and "cannot be used" in a.error[0].value and "unchanged (your file mine.pth" in a.error[0].value
    assert len(a.error[0].value) < 200  # short; the mismatch itself is folded under Details
    details = [e for e in a.expander if e.label == "Details"]
    assert details and any("does not fit" in c.value for c in details[0].code)
    assert _top5(a.switch_page("views/compare.py").run()) == shifted  # still the good file

    a.switch_page("views/models.py").run()
    a.selectbox(key="models_pick").set_value(NAME).run()
    a.button(key="models_local_default").click().run()
    _clean(a)
    assert not a.info or all("in this session" not in i.value for i in a.info)
    assert _top5(a.switch_page("views/compare.py").run()) == default
    assert not any("your file" in m.value for m in a.markdown)
    assert not list(untouched_env.iterdir())


def test_a_file_dropped_to_keep_the_budget_says_so_and_shows_the_default(untouched_env: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard.serving import local_weights

    monkeypatch.setenv(local_weights.ENV_FILES_MB, "0.001")  # a kilobyte: only the newest file stays
    model_store.get_model.clear()  # no model built from these files is still in memory
    a = _app()
    default = _top5(a)
    shifted = _shifted_model()
    _load_file(a, "mine.pth", _state_dict_bytes(shifted))
    mine = a.session_state["local_weights"][NAME]
    assert local_weights.path_of(mine.identity).is_file()
    with torch.no_grad():
        shifted.fc.bias.add_(1.0)  # other content: another user's file
    local_weights.check(NAME, _state_dict_bytes(shifted), "theirs.pth")
    assert not local_weights.path_of(mine.identity).exists()  # the older file made room

    a.switch_page("views/compare.py").run()
    _clean(a)
    assert any("no longer holds your file mine.pth" in w.value for w in a.warning)
    assert _top5(a) == default
    assert NAME not in a.session_state["local_weights"]


def _padded_state_dict_bytes(model: torch.nn.Module, total_bytes: int) -> bytes:
    """``model``'s exact state dict (same keys, shapes and values) whose tensors all live in one storage of
    ``total_bytes``: ``torch.save`` writes whole storages, so the file is that large and still fits the model."""
    state = model.state_dict()
    floats = [k for k, v in state.items() if v.dtype == torch.float32]
    pool = torch.zeros(total_bytes // 4)
    at = 0
    for k in floats:
        n = state[k].numel()
        pool[at:at + n] = state[k].flatten()
        state[k] = pool[at:at + n].view_as(state[k])
        at += n
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def test_a_100_mb_weights_file_is_accepted_by_the_upload(untouched_env: Path) -> None:
    mine = _shifted_model()
    data = _padded_state_dict_bytes(mine, 100 * 2**20)
    assert len(data) >= 100 * 2**20
    a = _app()
    _load_file(a, "big.pth", data)
    assert not a.error, [e.value for e in a.error]
    assert any("this session now uses" in s.value for s in a.success)
    label = f"your file big.pth, sha256 {hashlib.sha256(data).hexdigest()[:12]}"
    assert a.session_state["local_weights"][NAME].label == label
    a.switch_page("views/compare.py").run()
    _clean(a)
    assert next(iter(_top5(a))) != next(iter(_top5(_app())))  # the rolled classifier of the big file is in use


def _server_upload_cap_mb() -> float:
    text = (Path(APP).parents[1] / ".streamlit" / "config.toml").read_text()
    found = re.search(r"(?m)^maxUploadSize\s*=\s*(\d+)", text)
    assert found, "server.maxUploadSize is not set in .streamlit/config.toml"
    return float(found.group(1))


def test_the_server_accepts_every_released_weights_file_and_images_keep_their_own_limit() -> None:
    """Every released checkpoint (its state dict's bytes, measured without allocating) passes the server's upload
    cap, while an image over the app's own byte limit is still refused by the app, which says why."""
    from dashboard.state import MAX_UPLOAD_BYTES
    from res2net.data import images

    cap = _server_upload_cap_mb() * 2**20
    released = [n for n in res2net.list_models() if any(w.url for w in res2net.get_spec(n).checkpoints)]
    assert released
    sizes = {}
    for n in released:
        with torch.device("meta"):
            model = res2net.create_model(n, pretrained=False)
        sizes[n] = sum(v.numel() * v.element_size() for v in model.state_dict().values())
    assert max(sizes.values()) > 100 * 2**20  # the res2net101 files: the old 25 MB cap refused them all
    assert all(s < cap for s in sizes.values()), {n: s / 2**20 for n, s in sizes.items() if s >= cap}
    assert MAX_UPLOAD_BYTES <= images.DEFAULT_MAX_BYTES < cap
    with pytest.raises(images.FileTooLargeError, match=r"26\.0 MiB; the limit is 25\.0 MiB"):
        images.load_image(b"\x89PNG" + bytes(26 * 2**20 - 4), max_bytes=MAX_UPLOAD_BYTES)


def test_an_image_over_the_limit_is_refused_on_the_page_with_the_reason() -> None:
    at = _app()
    at.switch_page("views/scales.py").run()
    at.radio(key="scales_source").set_value("Upload").run()
    at.file_uploader(key="scales_upload").upload("huge.png", b"\x89PNG\r\n\x1a\n" + bytes(30 * 2**20)).run()
    _clean(at)
    assert at.error and "huge.png" in at.error[0].value and "the limit is 25.0 MiB" in at.error[0].value


def _saved(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


REFUSED = {  # file -> words the page's one-line reason must contain
    "empty.pth": (b"", "empty"),
    "notes.pth": (b"these are my notes, not weights\n" * 10, "not a readable PyTorch checkpoint"),
    "objects.pth": (None, "Python objects"),
    "tensor.pth": (None, "not a state dict"),
    "other_model.pth": (None, "does not fit the model ("),
}


@pytest.mark.parametrize("filename", list(REFUSED))
def test_every_refused_upload_says_why(untouched_env: Path, filename: str) -> None:
    import datetime

    data, why = REFUSED[filename]
    if data is None:
        data = {"objects.pth": lambda: _saved({"when": datetime.date(2020, 1, 1)}),
                "tensor.pth": lambda: _saved(torch.zeros(3)),
                "other_model.pth": lambda: _state_dict_bytes(res2net.create_model("tiny_res2net26_4s"))}[filename]()
    a = _app()
    _load_file(a, filename, data)
    assert len(a.error) == 1 and not any("now uses" in s.value for s in a.success)
    headline = a.error[0].value
    assert f"`{filename}` cannot be used for `{NAME}`: " in headline and why in headline, headline
    assert "Your weights are unchanged" in headline
    assert NAME not in _own_files(a)


def _own_files(at: AppTest) -> dict:
    """The session's model -> own weights file map (empty before any file was used)."""
    return at.session_state["local_weights"] if "local_weights" in at.session_state else {}


def test_a_file_named_like_a_release_with_other_content_is_refused_for_its_hash(tmp_path: Path) -> None:
    from dashboard.serving import local_weights

    name = "res2net50_26w_4s"
    release = res2net.get_spec(name).checkpoints[0].filename
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in res2net.create_model(name, pretrained=False).state_dict().items()}
    data = _saved({k: torch.zeros(s) for k, s in shapes.items()})  # fits the model, but is not the release
    with pytest.raises(weights.HashMismatchError) as caught:
        local_weights.check(name, data, release)
    assert "SHA-256 differs" in local_weights.refusal(caught.value)
    assert local_weights.check(name, data, "my_res2net.pth").filename == "my_res2net.pth"  # another name: used


def test_a_path_on_the_server_is_checked_like_an_upload(untouched_env: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard.serving import local_weights

    good = tmp_path / "ckpt" / "mine.pth"
    good.parent.mkdir()
    good.write_bytes(_state_dict_bytes(_shifted_model()))
    (tmp_path / "empty.pth").write_bytes(b"")
    refusals = {  # typed path -> words of its reason
        "": "no path was given",
        "ckpt/mine.pth": "not a full path",
        str(tmp_path / "nothing.pth"): f"there is no file {tmp_path / 'nothing.pth'}",
        str(good.parent): "is a folder",
        str(tmp_path / "empty.pth"): "empty",
    }
    a = _app()
    a.switch_page("views/models.py").run()
    a.selectbox(key="models_pick").set_value(NAME).run()
    for typed, why in refusals.items():
        a.text_input(key="models_local_path").input(typed).run()
        a.button(key="models_local_path_use").click().run()
        _clean(a)
        assert len(a.error) == 1 and why in a.error[0].value, (typed, [e.value for e in a.error])
        assert NAME not in _own_files(a)

    monkeypatch.setenv(local_weights.ENV_ROOTS, str(tmp_path / "elsewhere"))
    a.text_input(key="models_local_path").input(f" '{good}' ").run()  # quotes and spaces of a pasted path go
    a.button(key="models_local_path_use").click().run()
    assert len(a.error) == 1 and "outside the folders this server reads weights from" in a.error[0].value

    monkeypatch.setenv(local_weights.ENV_ROOTS, str(good.parent))
    a.button(key="models_local_path_use").click().run()
    _clean(a)
    assert not a.error and any("this session now uses your file mine.pth" in s.value for s in a.success)
    good.write_bytes(b"changed afterwards")  # the session's copy is what is used
    a.switch_page("views/compare.py").run()
    _clean(a)
    assert next(iter(_top5(a))) != next(iter(_top5(_app())))
