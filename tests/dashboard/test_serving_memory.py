"""Memory stays bounded while many large uploads pass through one server process: 20 distinct 6000 x 6000 PNGs
(small files, 36 megapixels each once decoded) uploaded through AppTest."""

from __future__ import annotations

import gc
import io
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from dashboard.services import image_inputs, shared_cache
from dashboard.serving import budget

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
SIDE = 6000
N_UPLOADS = 20
BUDGET = 64 * 2**20  # small enough that the uploads' decoded images must be evicted


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def _big_png(k: int) -> bytes:
    """A flat colour with a distinct square: compresses to ~120 kB, decodes to 108 MB of RGB."""
    im = Image.new("RGB", (SIDE, SIDE), (10 * k, 120, 250 - 10 * k))
    ImageDraw.Draw(im).rectangle((200 * k, 1000, 200 * k + 1500, 2500), fill=(250, 250 - 10 * k, 10))
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def test_twenty_large_uploads_keep_memory_and_the_cache_within_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = budget.ByteBudgetCache(BUDGET, ttl_s=3600)
    monkeypatch.setattr(shared_cache, "RESULTS", cache)
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["device"] = "cpu"
    at.run()
    at.radio(key="compare_source").set_value("Upload").run()
    gc.collect()
    before = _rss_bytes()
    for k in range(N_UPLOADS):
        data = _big_png(k)
        at.file_uploader(key="compare_upload").upload(f"big_{k}.png", data).run()
        assert not at.exception, [e.value for e in at.exception]
        assert not at.error, [e.value for e in at.error]
        assert len(at.image) + len(at.get("plotly_chart")) >= 2, f"upload {k}: no overlays"
        assert cache.bytes <= BUDGET, f"upload {k}: the cache holds {cache.bytes / 2**20:.0f} MB"
    gc.collect()
    grown = _rss_bytes() - before
    assert grown < 2**30, f"resident memory grew by {grown / 2**20:.0f} MB over {N_UPLOADS} uploads"
    assert cache.evictions > 0 and cache.misses >= N_UPLOADS  # every upload was decoded, old ones dropped
    hits = cache.hits
    w, h = image_inputs.decode_image(data).size  # the last upload, still cached: kept at reduced size
    assert cache.hits == hits + 1 and w == h and w * h <= image_inputs.KEEP_PIXELS
