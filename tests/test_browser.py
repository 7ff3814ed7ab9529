"""End to end in a real browser: Debian's Chromium driven by Playwright against `streamlit run` on 127.0.0.1.

Opens every view, uploads a photo on Compare CAMs, waits for the overlays, checks that no exception block
appears, and saves screenshots to ``test-artifacts/``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
PHOTOS = REPO.parent / "shared" / "data" / "imagenet-sample-photos"
ARTIFACTS = REPO / "test-artifacts"
# view -> (URL path, an element that appears once the view has rendered its results)
PAGES = {
    "compare": ("", '[data-testid="stImage"] img'),
    "scales": ("scales", ".js-plotly-plot"),
    "erf": ("erf", ".js-plotly-plot"),
    "claims": ("claims", '[data-testid="stAlert"], .js-plotly-plot'),
    "models": ("models", '[data-testid="stDataFrame"]'),
}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
WAIT_MS = 240_000

if not CHROMIUM.is_file():
    pytest.skip(f"{CHROMIUM} is missing (install Debian's chromium package)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """`streamlit run dashboard/app.py` on a free local port; yields its base URL."""
    port = _free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / "streamlit.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OMP_NUM_THREADS": "2"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start; see {ARTIFACTS / 'streamlit.log'}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def page(server: str):  # noqa: ANN201
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        pg = browser.new_page(viewport={"width": 1400, "height": 2400})
        yield pg
        browser.close()


def _settle(pg, ready: str = "h1") -> None:  # noqa: ANN001
    """Wait for the view's result element, then until the script run has finished (no running indicator)."""
    pg.wait_for_selector("h1", timeout=WAIT_MS)
    pg.wait_for_selector(ready, timeout=WAIT_MS)
    pg.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=WAIT_MS, polling=500)
    pg.wait_for_timeout(500)


def _assert_clean(pg, name: str) -> None:  # noqa: ANN001
    pg.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    assert pg.locator('[data-testid="stException"]').count() == 0, f"{name}: an exception block is shown"
    errors = pg.locator('[data-testid="stAlertContentError"]').all_inner_texts()
    assert not [e for e in errors if "failed:" in e], f"{name}: {errors}"


@pytest.mark.parametrize("view", list(PAGES))
def test_view_opens_without_exception(server: str, page, view: str) -> None:  # noqa: ANN001
    path, ready = PAGES[view]
    page.goto(f"{server}/{path}")
    _settle(page, ready)
    _assert_clean(page, f"view_{view}")


def test_upload_photo_renders_overlays(server: str, page) -> None:  # noqa: ANN001
    photos = sorted(PHOTOS.glob("*.JPEG")) if PHOTOS.is_dir() else []
    if not photos:
        pytest.skip(f"sample photos not found at {PHOTOS}")
    page.goto(server)
    _settle(page)
    page.get_by_text("Upload", exact=True).first.click()
    page.wait_for_function("() => document.querySelectorAll('[data-testid=\"stImage\"] img').length === 0",
                           timeout=WAIT_MS)  # the demo photo's overlays are gone: what follows comes from the upload
    page.locator('input[type="file"]').first.set_input_files(str(photos[0]))
    page.get_by_test_id("stFileUploaderDropzone").get_by_text(photos[0].name[:6]).wait_for(timeout=WAIT_MS)
    _settle(page, '[data-testid="stImage"] img')
    assert page.locator('[data-testid="stImage"] img').count() >= 2 + 4  # two overlays + the Res2Net branches
    assert page.get_by_text("Branch order").count() >= 1
    _assert_clean(page, "compare_upload")
