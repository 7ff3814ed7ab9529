"""Serving many sessions: the byte- and time-bounded result cache, the compute gate's queue, reduced decoding, and
per-session state through AppTest (no stale results, failures kept to their session, uploads kept across pages)."""

from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from dashboard.serving import admission, budget
from res2net.data import images
from res2net.data.tiny_imagenet import default_data_dir

from helpers import refuse_downloads

REPO = Path(__file__).resolve().parents[2]
APP = str(REPO / "dashboard" / "app.py")
DATA = default_data_dir()
TIMEOUT = 300
needs_data = pytest.mark.skipif(not (DATA / "val.tar.gz").is_file(),
                                reason=f"Tiny-ImageNet-100 not found at {DATA} (set RES2NET_DATA)")


# --------------------------------------------------------------------------------------------- byte budget
@dataclass(frozen=True)
class _Result:
    a: np.ndarray
    b: dict


def test_nbytes_counts_buffers_inside_containers() -> None:
    value = _Result(np.zeros((10, 10), np.float32), {"x": np.zeros(5, np.uint8), "y": [Image.new("RGB", (4, 3))]})
    # 400 (float32 10x10) + 5 (uint8) + 36 (4x3 RGB) + the two one-letter keys
    assert budget.nbytes(value) == 400 + 5 + 36 + 2


def test_cache_drops_least_recently_used_entries_past_the_byte_budget() -> None:
    cache = budget.ByteBudgetCache(max_bytes=250, ttl_s=60)
    block = lambda: np.zeros(100, np.uint8)  # noqa: E731  100 bytes each
    for key in "abc":
        cache.get_or_compute(key, block)
    assert cache.bytes == 200 and "a" not in cache  # a (oldest) went when c made 300 > 250
    cache.get_or_compute("b", block)  # b becomes the most recent
    cache.get_or_compute("d", block)
    assert "c" not in cache and "b" in cache and "d" in cache
    assert cache.bytes <= cache.max_bytes and cache.evictions == 2
    big = cache.get_or_compute("huge", lambda: np.zeros(1000, np.uint8))  # over the whole budget: returned, not kept
    assert big.nbytes == 1000 and "huge" not in cache and cache.bytes == 200


def test_cache_entries_expire_after_their_time(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(budget.time, "monotonic", lambda: now[0])
    cache = budget.ByteBudgetCache(max_bytes=10_000, ttl_s=30)
    calls = []
    compute_it = lambda: calls.append(1) or np.ones(10)  # noqa: E731
    cache.get_or_compute("k", compute_it)
    now[0] += 29
    cache.get_or_compute("k", compute_it)
    assert len(calls) == 1
    now[0] += 2  # 31 s after it was stored
    cache.expire()  # what the server's sweeper does every minute
    assert cache.bytes == 0 and len(cache) == 0
    cache.get_or_compute("k", compute_it)
    assert len(calls) == 2


def test_two_sessions_asking_the_same_thing_share_one_computation() -> None:
    cache = budget.ByteBudgetCache(max_bytes=10_000, ttl_s=60)
    started, release, calls = threading.Event(), threading.Event(), []

    def slow() -> np.ndarray:
        calls.append(1)
        started.set()
        release.wait(10)
        return np.arange(4)

    got = []
    first = threading.Thread(daemon=True, target=lambda: got.append(cache.get_or_compute("same", slow)))
    first.start()
    started.wait(10)
    second = threading.Thread(daemon=True, target=lambda: got.append(cache.get_or_compute("same", slow)))
    second.start()
    time.sleep(0.2)
    release.set()
    first.join(10)
    second.join(10)
    assert calls == [1] and len(got) == 2 and got[0] is got[1]


def test_a_failed_computation_is_not_cached_and_reaches_every_waiter() -> None:
    cache = budget.ByteBudgetCache(max_bytes=10_000, ttl_s=60)
    with pytest.raises(images.ImageError):
        cache.get_or_compute("bad", lambda: (_ for _ in ()).throw(images.ImageError("no")))
    assert "bad" not in cache and cache.bytes == 0
    assert cache.get_or_compute("bad", lambda: np.zeros(3)).shape == (3,)  # tried again, not remembered


class _Rerun(BaseException):
    """Stands in for Streamlit's rerun request, which interrupts a session's script."""


def test_a_computation_interrupted_by_its_session_is_taken_over_by_a_waiter() -> None:
    cache = budget.ByteBudgetCache(max_bytes=10_000, ttl_s=60)
    started, release = threading.Event(), threading.Event()

    def interrupted() -> np.ndarray:
        started.set()
        release.wait(10)
        raise _Rerun

    outcome = []

    def owner() -> None:
        try:
            cache.get_or_compute("k", interrupted)
        except _Rerun:
            outcome.append("owner interrupted")

    first = threading.Thread(daemon=True, target=owner)
    first.start()
    started.wait(10)
    second = threading.Thread(daemon=True,
                              target=lambda: outcome.append(cache.get_or_compute("k", lambda: np.arange(3))))
    second.start()
    time.sleep(0.2)
    release.set()
    first.join(10)
    second.join(10)
    assert outcome[0] == "owner interrupted" and list(outcome[1]) == [0, 1, 2]
    assert "k" in cache


def test_budget_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(budget.ENV_BUDGET_MB, "64")
    monkeypatch.setenv(budget.ENV_TTL_S, "90")
    cache = budget.cache_from_env()
    assert cache.max_bytes == 64 * 2**20 and cache.ttl_s == 90
    monkeypatch.setenv(budget.ENV_BUDGET_MB, "lots")
    with pytest.raises(ValueError, match=budget.ENV_BUDGET_MB):
        budget.cache_from_env()


# ------------------------------------------------------------------------------------------------ the gate
def test_gate_admits_in_arrival_order_and_tells_waiters_their_place() -> None:
    gate = admission.FairGate(workers=1)
    order: list[str] = []
    places: dict[str, list[int]] = {"b": [], "c": []}
    hold = threading.Event()

    def first() -> None:
        with gate.slot():
            order.append("a")
            hold.wait(10)

    def later(name: str) -> None:
        with gate.slot(places[name].append):
            order.append(name)

    threads = [threading.Thread(daemon=True, target=first)]
    threads[0].start()
    while gate.running == 0:
        time.sleep(0.01)
    for name in "bc":
        threads.append(threading.Thread(daemon=True, target=later, args=(name,)))
        threads[-1].start()
        while gate.waiting < (1 if name == "b" else 2):
            time.sleep(0.01)
    hold.set()
    for t in threads:
        t.join(10)
    assert order == ["a", "b", "c"]
    assert places["b"] == [1]  # a holds the slot
    assert places["c"][0] == 2 and places["c"] == sorted(places["c"], reverse=True)  # a and b ahead, never more


def test_gate_serves_earlier_page_runs_first() -> None:
    """A page run that started earlier goes before a later one's request that arrived first."""
    gate = admission.FairGate(workers=1)
    order: list[str] = []

    def ask(name: str, priority: float) -> None:
        with gate.slot(priority=priority):
            order.append(name)

    with gate.slot():
        late = threading.Thread(daemon=True, target=ask, args=("late run", 5.0))
        late.start()
        while gate.waiting < 1:
            time.sleep(0.01)
        early = threading.Thread(daemon=True, target=ask, args=("early run", 1.0))
        early.start()
        while gate.waiting < 2:
            time.sleep(0.01)
    late.join(10)
    early.join(10)
    assert order == ["early run", "late run"]


def test_a_waiter_that_gives_up_leaves_the_queue() -> None:
    gate = admission.FairGate(workers=1)

    def impatient(ahead: int) -> None:
        raise KeyboardInterrupt  # how a session's rerun interrupts its wait

    raised: list[BaseException] = []

    def wait_in_another_session() -> None:
        try:
            with gate.slot(impatient):
                pass
        except KeyboardInterrupt as exc:
            raised.append(exc)

    with gate.slot():
        other = threading.Thread(daemon=True, target=wait_in_another_session)
        other.start()
        other.join(10)
        assert len(raised) == 1 and gate.waiting == 0
    with gate.slot():  # nobody is stuck ahead
        assert gate.running == 1


def test_a_result_needing_another_inside_its_slot_does_not_wait_for_a_second_slot() -> None:
    """With one worker, a computation that asks the gate again from its own thread (a cached result computed
    inside another's) goes on in the slot it holds; other threads still wait."""
    gate = admission.FairGate(workers=1)
    admitted, nested_ran, outer_held = threading.Event(), threading.Event(), threading.Event()

    def other_session() -> None:
        with gate.slot():
            admitted.set()

    def session() -> None:
        with gate.slot():
            with gate.slot():  # without reentry this waits forever for a second slot
                nested_ran.set()
            other = threading.Thread(target=other_session, daemon=True)
            other.start()
            if not admitted.wait(0.3):  # the outer slot is still held after the nested one ends
                outer_held.set()

    worker = threading.Thread(target=session, daemon=True)
    worker.start()
    worker.join(10)
    assert nested_ran.is_set() and outer_held.is_set()
    assert admitted.wait(10) and gate.running == 0


def test_a_session_waiting_for_the_gate_is_told_its_place(monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard.services import shared_cache

    gate = admission.FairGate(workers=1)
    monkeypatch.setattr(admission, "_GATE", gate)
    monkeypatch.setattr(shared_cache, "RESULTS", budget.ByteBudgetCache(10**6, ttl_s=60))
    shown: list[str | None] = []

    class Placeholder:  # stands in for st.empty(): records what the page would show
        def info(self, text: str, **kw: object) -> None:
            shown.append(text)

        def caption(self, text: str) -> None:
            shown.append(text)

        def empty(self) -> None:
            shown.append(None)

    monkeypatch.setattr(shared_cache.st, "empty", Placeholder)
    got = []
    with gate.slot():  # another session's analysis holds the only slot
        waiter = threading.Thread(daemon=True,
                                  target=lambda: got.append(shared_cache.shared(("t", 1), "Test analysis", lambda: 42)))
        waiter.start()
        deadline = time.monotonic() + 10
        while not shown and time.monotonic() < deadline:
            time.sleep(0.01)
        assert shown and shown[0].startswith("Test analysis: queued (1 ahead)"), shown
        assert got == []
    waiter.join(10)
    assert got == [42] and shown[-1] is None  # ran once admitted; the notice is cleared
    assert shared_cache.shared(("t", 1), "Test analysis", lambda: 0) == 42  # later sessions get the cached result


def test_a_result_needed_inside_a_slot_is_not_awaited_from_a_session_queued_behind_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Session B starts computing a result and queues for the only slot, which A holds; A's computation then needs
    the same result (an image decode inside a CAM computation). Waiting for B would wait forever: A computes it."""
    from dashboard.services import shared_cache

    gate = admission.FairGate(workers=1)
    monkeypatch.setattr(admission, "_GATE", gate)
    monkeypatch.setattr(shared_cache, "RESULTS", budget.ByteBudgetCache(10**6, ttl_s=60))

    class Placeholder:  # stands in for st.empty()
        def info(self, text: str, **kw: object) -> None: ...
        def caption(self, text: str) -> None: ...
        def empty(self) -> None: ...

    monkeypatch.setattr(shared_cache.st, "empty", Placeholder)
    got: dict[str, int] = {}

    def session_b() -> None:
        got["b"] = shared_cache.shared(("decoded", 1), "B", lambda: 7)

    def session_a() -> None:
        with gate.slot():
            threading.Thread(target=session_b, daemon=True).start()
            deadline = time.monotonic() + 10
            while gate.waiting < 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            got["a"] = shared_cache.shared(("decoded", 1), "A", lambda: 7)

    a = threading.Thread(target=session_a, daemon=True)
    a.start()
    a.join(10)
    assert got.get("a") == 7  # computed in A's own slot
    deadline = time.monotonic() + 10
    while "b" not in got and time.monotonic() < deadline:
        time.sleep(0.01)
    assert got.get("b") == 7 and ("decoded", 1) in shared_cache.RESULTS


def test_workers_and_threads_follow_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(admission.ENV_WORKERS, raising=False)
    assert admission.default_workers(cores=2) == 1 and admission.default_workers(cores=16) == 4
    assert admission.threads_per_worker(1, cores=2) == 2 and admission.threads_per_worker(4, cores=16) == 4
    monkeypatch.setenv(admission.ENV_WORKERS, "3")
    assert admission.default_workers(cores=2) == 3
    monkeypatch.setenv(admission.ENV_WORKERS, "0")
    with pytest.raises(ValueError, match=admission.ENV_WORKERS):
        admission.default_workers()


# --------------------------------------------------------------------------------------------- decoding
def _encoded(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _smooth(w: int, h: int) -> Image.Image:
    """A smooth colour ramp: downscaling it by any filter gives nearly the same picture."""
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([255 * x / w, 255 * y / h, 128 + 0 * x], -1).astype(np.uint8)
    return Image.fromarray(a)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_large_images_are_kept_at_reduced_size_with_the_same_content(fmt: str) -> None:
    w, h = 3000, 2000
    im = _smooth(w, h)
    data = _encoded(im, fmt, quality=95) if fmt == "JPEG" else _encoded(im, fmt)
    loaded = images.load_image(data, keep_pixels=600_000)
    kw, kh = loaded.size
    assert kw * kh <= 600_000 and abs(kw / kh - w / h) < 0.01 and kw >= 940  # 600000 px at 3:2 is 948 x 632
    assert loaded.original_size == (w, h)
    assert any("downscaled from 3000 x 2000" in n for n in loaded.notes)
    reference = np.asarray(im.resize(loaded.size, Image.Resampling.BOX), np.float64)
    assert np.abs(np.asarray(loaded.image, np.float64) - reference).mean() < 3.0
    full = images.load_image(data)  # without keep_pixels every pixel is kept
    assert full.size == (w, h)


def test_multipage_tiff_is_not_called_animated() -> None:
    pages = [_smooth(64, 48), _smooth(64, 48).transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    loaded = images.load_image(_encoded(pages[0], "TIFF", save_all=True, append_images=pages[1:]))
    assert loaded.warnings and "multi-page TIFF" in loaded.warnings[0] and "animated" not in loaded.warnings[0]


def test_decompression_bomb_message_is_in_our_words() -> None:
    side = int((2 * Image.MAX_IMAGE_PIXELS) ** 0.5) + 10
    with pytest.raises(images.DecompressionBombError) as err:
        images.load_image(_encoded(Image.new("1", (side, side)), "PNG"))
    msg = str(err.value)
    assert "megapixels" in msg and "downscale it first" in msg
    assert "DOS" not in msg and "could be decompression bomb" not in msg  # the imaging library's own wording


# ------------------------------------------------------------------------------------------------ AppTest
def _app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["device"] = "cpu"
    at.run()
    return at


def _clean(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _shown(at: AppTest) -> int:
    """How many pictures and figures (the results) the page shows."""
    return len(at.image) + len(at.get("plotly_chart"))


def _upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.radio(key="compare_source").set_value("Upload").run()
    at.file_uploader(key="compare_upload").upload(name, data).run()
    return at


def test_uploader_names_every_accepted_format() -> None:
    at = _app()
    at.radio(key="compare_source").set_value("Upload").run()
    label = at.file_uploader(key="compare_upload").label
    assert all(f in label for f in ("PNG", "JPEG", "WebP", "GIF", "BMP", "TIFF")), label


def test_rejected_file_after_a_good_one_leaves_no_cams() -> None:
    at = _upload(_app(), "ramp.png", _encoded(_smooth(96, 80), "PNG"))
    _clean(at)
    assert _shown(at) >= 2
    at.file_uploader(key="compare_upload").upload("notes", b"meeting notes, not a picture\n" * 10).run()
    _clean(at)
    assert at.error and "notes" in at.error[0].value and "not an image" in at.error[0].value, \
        [e.value for e in at.error]
    assert _shown(at) == 0 and not at.get("download_button")


def test_decoder_text_of_a_corrupt_upload_is_folded_away(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _encoded(_smooth(300, 300), "JPEG", quality=95)[:1500]  # cut short: the decoder complains
    at = _upload(_app(), "cut.jpg", data)
    _clean(at)
    msg = at.error[0].value
    assert "cut.jpg" in msg and "truncated" in msg and "[" not in msg, msg
    details = [c.value for c in at.code]
    assert details and details[0] not in msg  # the decoder's own words, inside "Details"
    assert _shown(at) == 0
    import res2net.data.images

    calls = []
    real = res2net.data.images.load_image
    monkeypatch.setattr(res2net.data.images, "load_image", lambda *a, **k: calls.append(1) or real(*a, **k))
    at.run()  # a rerun (any widget change) shows the refusal again without decoding the file again
    assert calls == [] and "truncated" in at.error[0].value


@needs_data
def test_out_of_range_index_is_refused_with_a_message() -> None:
    at = _app()
    at.radio(key="compare_source").set_value("Tiny-ImageNet-100 val").run()
    _clean(at)
    assert _shown(at) >= 2
    for bad in (99999, -5):
        at.number_input(key="compare_idx").set_value(bad).run()
        _clean(at)
        assert at.error and f"no image {bad}" in at.error[0].value and "0 to 49" in at.error[0].value
        assert _shown(at) == 0
    at.number_input(key="compare_idx").set_value(3).run()
    assert not at.error and _shown(at) >= 2


def test_upload_survives_a_page_switch_and_a_lost_one_says_what_to_do() -> None:
    at = _upload(_app(), "ramp.png", _encoded(_smooth(96, 80), "PNG"))
    assert _shown(at) >= 2
    at.switch_page("views/models.py").run()
    at.switch_page("views/compare.py").run()
    _clean(at)
    assert at.radio(key="compare_source").value == "Upload"
    assert any("ramp.png" in c.value and "earlier" in c.value for c in at.caption)
    assert _shown(at) >= 2
    fresh = AppTest.from_file(APP, default_timeout=TIMEOUT)  # a session of a restarted server: nothing kept
    fresh.session_state["device"] = "cpu"
    fresh.session_state["compare_source"] = "Upload"
    fresh.run()
    _clean(fresh)
    assert any("restarted" in i.value and "upload the file again" in i.value for i in fresh.info)
    assert _shown(fresh) == 0


def test_demo_photo_choice_survives_a_page_switch() -> None:
    at = _app()
    chosen = at.selectbox(key="compare_demo").options[2]
    at.selectbox(key="compare_demo").set_value(chosen).run()
    at.switch_page("views/models.py").run()
    at.switch_page("views/compare.py").run()
    _clean(at)
    assert at.selectbox(key="compare_demo").value == chosen and not at.warning


def test_failed_weight_load_stays_in_its_session(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The download is refused in this process (AppTest runs here), so the test is the same online and offline."""
    from dashboard.services import model_store

    tried = refuse_downloads(monkeypatch, tmp_path)  # empty checkpoint cache: the weights are 'downloadable'
    model_store.weight_status.clear()
    try:
        a, b = _app(), _app()
        page_b = [(w.value) for w in b.warning] + [s.value for s in b.subheader]
        a.multiselect(key="compare_models").set_value(["tiny_resnet26", "resnet50"]).run()
        _clean(a)
        notes = [w.value for w in a.warning if "resnet50" in w.value]
        assert notes and "random-init" in notes[0]
        assert "http" not in notes[0] and str(tmp_path) not in notes[0]  # technical details are folded away
        assert any("Connection refused" in c.value for c in a.code)
        attempts = len(tried)
        assert attempts > 0
        a.slider(key="compare_alpha").set_value(0.7).run()
        assert len(tried) == attempts  # remembered for this session: no new download on every change

        b.run()  # the other session's page is unchanged by a's failure
        _clean(b)
        assert [(w.value) for w in b.warning] + [s.value for s in b.subheader] == page_b
        b.multiselect(key="compare_models").set_value(["tiny_resnet26", "resnet50"]).run()
        assert len(tried) > attempts  # b tries on its own instead of inheriting a's failure
        attempts = len(tried)

        a.button(key="retry_weights_compare_resnet50").click().run()
        _clean(a)
        assert len(tried) > attempts  # the retry button tries again
    finally:
        model_store.weight_status.clear()
