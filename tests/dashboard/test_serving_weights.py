"""A weights file loaded on the Models page is the loading session's alone: used on its pages and labelled there,
invisible to another session and to the process environment; a file that does not fit changes nothing; the default
weights come back on request."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

import res2net
from dashboard.services import cached, sources
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
    cached.weight_status.clear()
    yield tmp_path
    cached.weight_status.clear()


def test_a_loaded_file_is_used_in_its_session_only(untouched_env: Path) -> None:
    env_before = dict(os.environ)
    mine = _shifted_model()
    data = _state_dict_bytes(mine)
    classes = cached.class_names(NAME)
    photo = next(iter(sources.demo_photos().values()))  # Compare's default image
    with torch.no_grad():
        ref = torch.softmax(mine(cached.model_input(photo, NAME))[0], 0).numpy()
    default_top1 = int(np.argmax(res2net.create_model(NAME, pretrained=True)(cached.model_input(photo, NAME))[0]
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
    for cls, p in shown.items():  # every shown probability is the file's model's, computed here by hand
        assert p == pytest.approx(float(ref[classes.index(cls)]), abs=6e-5)
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
    cached.get_model.clear()  # no model built from these files is still in memory
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
