"""End to end in a real browser: Debian's Chromium driven by Playwright against `streamlit run` on 127.0.0.1.

Opens every view, uploads a photo on Compare CAMs, waits for the overlays, checks that no exception block appears,
and checks the layout at 1280 and 1920 px wide from the page's DOM once every element is drawn: no text cut off by its
element, no two subplot titles overlapping, every map drawn at least 96 px a side, no table that scrolls sideways.
Ticks a row of a top-5 table and checks that its class becomes the target. On Compare: 3 and 4 models keep every
map readable, the Block box names the block drawn after models change, the first screen at 1280×800 shows a map and
an untrained model's mark lies inside its map. Screenshots go to ``test-artifacts/`` (CI artefacts).

Each state is reached once, at 1280 px (the narrower window, where layouts break first), and then checked at every
width by resizing the window: the app's Python never sees the window's width (the page lays itself out in the
browser), so a resized page is the page a user opening it at that width gets, without a second load of the app.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
PHOTOS = REPO.parent / "shared" / "data" / "imagenet-sample-photos"
ARTIFACTS = REPO / "test-artifacts"
# view -> (URL path, an element that appears once the view has rendered its results)
PAGES = {
    "compare": ("", ".js-plotly-plot"),
    "scales": ("scales", ".js-plotly-plot"),
    "erf": ("erf", ".js-plotly-plot"),
    "knockout": ("knockout", ".js-plotly-plot"),
    "claims": ("claims", '[data-testid="stAlert"], .js-plotly-plot'),
    "models": ("models", '[data-testid="stTable"]'),
}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
WAIT_MS = 240_000
WIDTHS = (1280, 1920)
WINDOW_PX, MAX_PAGE_PX = 3600, 16_000  # window height; the most it grows to show a whole page
MIN_MAP_PX = 96
# Layout problems a reader would see, found from the DOM: text wider than the element that clips it, subplot titles
# that overlap, maps (plotly heatmaps, images) drawn smaller than MIN_MAP_PX, and tables wider than their frame.
LAYOUT_PROBLEMS_JS = """(minPx) => {
  const out = [];
  const main = document.querySelector('[data-testid="stMain"]') || document.body;
  for (const el of main.querySelectorAll('p, h1, h2, h3, label, li, [data-testid="stMarkdownContainer"] span')) {
    if (!el.offsetParent) continue;
    const text = el.textContent.slice(0, 60);
    if (getComputedStyle(el).overflowX !== 'visible' && el.scrollWidth > el.clientWidth + 2) {
      out.push('text cut off: ' + text);
      continue;
    }
    const box = el.closest('[data-testid="stColumn"]') || main;
    if (el.getBoundingClientRect().right > box.getBoundingClientRect().right + 2)
      out.push('text runs past its column: ' + text);
  }
  for (const plot of main.querySelectorAll('.js-plotly-plot')) {
    const titles = [...plot.querySelectorAll('g.annotation')].map(a => [a.textContent, a.getBoundingClientRect()])
      .filter(([t, r]) => t && r.width > 0);
    for (let i = 0; i < titles.length; i++) for (let j = i + 1; j < titles.length; j++) {
      const [ta, a] = titles[i], [tb, b] = titles[j];
      if (a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom - 1 && b.top < a.bottom - 1)
        out.push('subplot titles overlap: ' + ta.slice(0, 30) + ' / ' + tb.slice(0, 30));
    }
    for (const hm of plot.querySelectorAll('g.hm image, g.imagelayer image')) {
      const r = hm.getBoundingClientRect();
      if (r.width > 0 && (r.width < minPx - 0.5 || r.height < minPx - 0.5))
        out.push(`map drawn at ${r.width.toFixed(0)}x${r.height.toFixed(0)} px`);
    }
  }
  for (const g of main.querySelectorAll('[data-testid="stDataFrame"], [data-testid="stTable"]')) {
    if (g.closest('details:not([open])') || g.offsetParent === null) continue;
    const s = g.querySelector('.dvn-scroller') || g;
    if (s.scrollWidth > s.clientWidth + 1)
      out.push('table scrolls sideways: ' + [...g.querySelectorAll('th')].map(t => t.textContent).join(' | '));
  }
  for (const img of main.querySelectorAll('[data-testid="stImage"] img')) {
    const r = img.getBoundingClientRect();
    if (r.width > 0 && (r.width < minPx - 0.5 || r.height < minPx - 0.5))
      out.push(`image drawn at ${r.width.toFixed(0)}x${r.height.toFixed(0)} px`);
  }
  return out;
}"""

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
def browser(server: str):  # noqa: ANN201
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page(browser):  # noqa: ANN001, ANN201
    pg = browser.new_page(viewport={"width": WIDTHS[0], "height": WINDOW_PX})
    yield pg
    pg.close()


# The script run has finished and everything it sent is drawn: no running indicator, no stale element, no
# placeholder skeleton (Streamlit draws one until a lazily loaded element such as a metric, table or button is
# ready), every visible plotly chart has its SVG and every visible data grid its canvas.
RENDERED_JS = """() => {
  const main = document.querySelector('[data-testid="stMain"]');
  if (!main || document.querySelector('[data-testid="stStatusWidget"]')) return false;
  if (document.querySelector('[data-testid="stSkeleton"], [data-stale="true"]')) return false;
  // drawn on screen: not in a closed expander (its content is laid out but never rendered), not hidden
  const visible = (el) => !el.closest('details:not([open])') && el.offsetParent !== null;
  for (const c of main.querySelectorAll('[data-testid="stPlotlyChart"]'))
    if (visible(c) && !c.querySelector('.js-plotly-plot .main-svg')) return false;
  for (const g of main.querySelectorAll('[data-testid="stDataFrame"]'))
    if (visible(g) && !g.querySelector('[data-testid="data-grid-canvas"]')) return false;
  for (const m of main.querySelectorAll('[data-testid="stMetricValue"]')) if (!m.textContent.trim()) return false;
  return true;
}"""


# Where every drawn map and chart sits: equal in two looks 750 ms apart once plotly has finished laying out.
GEOMETRY_JS = """() => JSON.stringify([...document.querySelectorAll('.js-plotly-plot, .js-plotly-plot image')]
  .map(e => { const r = e.getBoundingClientRect(); return [Math.round(r.width), Math.round(r.height)]; }))"""


def _settle(pg, ready: str = "h1") -> None:  # noqa: ANN001
    """Wait for the view's result element, then until the run has finished, every element is drawn and the page's
    charts hold still (a chart re-laid out after a rerun passes through smaller sizes)."""
    pg.wait_for_selector("h1", timeout=WAIT_MS)
    pg.wait_for_selector(ready, timeout=WAIT_MS)
    deadline = time.monotonic() + WAIT_MS / 1000
    before = None
    while time.monotonic() < deadline:
        pg.wait_for_function(RENDERED_JS, timeout=WAIT_MS, polling=250)
        now = pg.evaluate(GEOMETRY_JS)
        if now == before:
            return
        before = now
        pg.wait_for_timeout(750)
    pytest.fail("the page did not settle")


def _show_whole_page(pg) -> None:  # noqa: ANN001
    """Grow the window to the page's height: Streamlit scrolls inside its own container, so a full-page screenshot
    would stop at the window's edge, and elements below it (data grids) are never drawn."""
    height = pg.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    if height > pg.viewport_size["height"]:
        pg.set_viewport_size({"width": pg.viewport_size["width"], "height": min(int(height) + 40, MAX_PAGE_PX)})
        _settle(pg)


def _assert_clean(pg, name: str, check: Callable[[object], bool] | None = None) -> None:  # noqa: ANN001
    """At every width of WIDTHS in turn: the whole page drawn and screenshot, no exception block, no failed
    computation, no layout problem, and ``check(page)`` true; the window is then back at the first width (a resize
    reruns nothing, so a step that follows waits only for what it changes itself)."""
    for width in WIDTHS:
        pg.set_viewport_size({"width": width, "height": WINDOW_PX})
        _settle(pg)
        shot = f"{name}_{width}px"
        _show_whole_page(pg)
        pg.screenshot(path=str(ARTIFACTS / f"{shot}.png"), full_page=True)
        assert pg.locator('[data-testid="stException"]').count() == 0, f"{shot}: an exception block is shown"
        errors = pg.locator('[data-testid="stAlertContentError"]').all_inner_texts()
        assert not [e for e in errors if "failed:" in e], f"{shot}: {errors}"
        problems = pg.evaluate(LAYOUT_PROBLEMS_JS, MIN_MAP_PX)
        assert not problems, f"{shot}: {problems}"
        assert check is None or check(pg), f"{shot}: {check.__doc__}"
    pg.set_viewport_size({"width": WIDTHS[0], "height": WINDOW_PX})


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
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length === 0",
                           timeout=WAIT_MS)  # the demo photo's overlays are gone: what follows comes from the upload
    page.locator('input[type="file"]').first.set_input_files(str(photos[0]))
    page.get_by_test_id("stFileUploaderDropzone").get_by_text(photos[0].name[:6]).wait_for(timeout=WAIT_MS)
    _settle(page, ".js-plotly-plot")
    assert page.locator(".js-plotly-plot").count() >= 2 + 1  # two overlays + the Res2Net branches
    assert page.get_by_text("Branches of").count() >= 1
    _assert_clean(page, "compare_upload")


# The first model's main map: the values of the heatmap trace of the page's first figure.
MAIN_MAP_JS = "() => JSON.stringify(document.querySelector('.js-plotly-plot').data.map(t => t.z || null))"


def _target_caption(pg) -> str:  # noqa: ANN001
    """The first model's caption under its main map, which names the target class."""
    return pg.locator('[data-testid="stCaptionContainer"]').filter(has_text="target: ").first.inner_text()


@pytest.fixture
def fresh_page(browser):  # noqa: ANN001, ANN201
    """A new tab of its own: the click below starts from a page no other test has driven."""
    pg = browser.new_page(viewport={"width": WIDTHS[0], "height": WINDOW_PX})
    yield pg
    pg.close()


def test_clicking_a_top5_row_makes_its_class_the_target(server: str, fresh_page) -> None:  # noqa: ANN001
    page = fresh_page
    page.goto(server)
    _settle(page, '[data-testid="stDataFrame"] [data-testid="data-grid-canvas"]')
    grid = page.locator('[data-testid="stDataFrame"]').first
    grid.scroll_into_view_if_needed()
    cells = grid.locator('[data-testid^="glide-cell-1-"]').all_inner_texts()  # column 0 holds the row boxes
    assert len(cells) == 5, cells
    before_caption = _target_caption(page)
    before_map = page.evaluate(MAIN_MAP_JS)
    assert f"target: {cells[0]} (p = " in before_caption  # top-1 by default
    box = grid.locator('[data-testid="data-grid-canvas"]').bounding_box()
    row_px = 35  # Streamlit's data grid: a 35 px header, then 35 px rows; a row is picked by its box at the left
    x, y = box["x"] + 15, box["y"] + row_px * 3 + row_px / 2  # the third row's box
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    page.wait_for_function("(old) => !document.body.innerText.includes(old)", arg=before_caption, timeout=WAIT_MS)
    _settle(page, ".js-plotly-plot")
    assert f"target: {cells[2]} (p = " in _target_caption(page)
    after_map = page.evaluate(MAIN_MAP_JS)
    assert after_map != before_map, "the map did not change with the target"
    _assert_clean(page, "compare_row_click")


def _models_box(pg):  # noqa: ANN001, ANN202
    return pg.locator('[data-testid="stMultiSelect"]').filter(has_text="Models").first


def _remove_every_model(pg) -> None:  # noqa: ANN001
    """Remove the chosen models one by one with their tags' close buttons, as a user does."""
    box = _models_box(pg)
    while box.locator("[data-tag]").count():
        n = box.locator("[data-tag]").count()
        box.locator('[data-tag] button[aria-label^="Remove"]').first.click()
        pg.wait_for_function("(n) => document.querySelectorAll("
                             "'[data-testid=\"stMultiSelect\"] [data-tag]').length < n", arg=n, timeout=WAIT_MS)
        _settle(pg)


def _add_model(pg, name: str) -> None:  # noqa: ANN001
    box = _models_box(pg)
    box.locator("input").click()
    box.locator("input").fill(name)
    pg.get_by_role("option", name=name, exact=True).click()
    pg.keyboard.press("Escape")


def _selectbox_value(pg, label: str) -> str:  # noqa: ANN001
    """What a select box shows (its combobox input's value)."""
    return pg.locator(f'[data-testid="stSelectbox"] input[aria-label="{label}"]').first.input_value()


def _drawn_block(pg) -> str:  # noqa: ANN001
    """The block the page draws: the one its maps' titles name ("layer3.5 · …", "UNTRAINED · layer3.5 · …")."""
    titles = pg.evaluate("() => [...document.querySelectorAll('.js-plotly-plot g.annotation')]"
                         ".map(a => a.textContent)")
    titles = [t.removeprefix("UNTRAINED · ") for t in titles]
    blocks = {t.split(" ·")[0] for t in titles if t.startswith("layer") and " · " in t}
    return ",".join(sorted(blocks))


def test_block_selector_names_the_drawn_block_after_model_changes(server: str, fresh_page) -> None:  # noqa: ANN001
    """Remove both default models, add res2net50_26w_4s: the Block box reads the block the maps show; and again
    after a model change that keeps the box on the page (add tiny_resnet26, remove res2net50_26w_4s)."""
    page = fresh_page
    page.goto(server)
    _settle(page, ".js-plotly-plot")
    _remove_every_model(page)
    _add_model(page, "res2net50_26w_4s")
    _settle(page, ".js-plotly-plot")
    box_value = _selectbox_value(page, "Block")
    assert box_value.startswith("layer"), box_value
    assert _drawn_block(page) == box_value, (box_value, _drawn_block(page))
    _assert_clean(page, "compare_block_after_model_change")
    _add_model(page, "tiny_resnet26")
    _settle(page, ".js-plotly-plot")
    _models_box(page).locator('button[aria-label="Remove res2net50_26w_4s"]').click()
    page.wait_for_function("() => !document.body.innerText.includes('res2net50_26w_4s ')", timeout=WAIT_MS)
    _settle(page, ".js-plotly-plot")
    assert _drawn_block(page) == _selectbox_value(page, "Block")


MODEL_SETS = {3: ("tiny_resnet26", "tiny_res2net26_4s", "res2net50_26w_4s"),
              4: ("tiny_resnet26", "tiny_res2net26_2s", "tiny_res2net26_4s", "tiny_res2net26_8s")}


@pytest.mark.parametrize("count", sorted(MODEL_SETS))
def test_three_and_four_models_keep_maps_readable(server: str, page, count: int) -> None:  # noqa: ANN001
    """No map under 96 px, no overlapping titles, no clipped text or table, with 3 and 4 models (one row each)."""
    page.goto(server + "/?" + "&".join(f"compare_models={n}" for n in MODEL_SETS[count]))
    _settle(page, ".js-plotly-plot")
    rows = page.locator("h5").all_inner_texts()
    assert [r.split()[0] for r in rows[:count]] == list(MODEL_SETS[count]), rows  # whole names, one row each
    _assert_clean(page, f"compare_{count}_models")


# The first screen: a heatmap drawn whole inside the window.
MAP_ON_FIRST_SCREEN_JS = """(h) => [...document.querySelectorAll('.js-plotly-plot g.hm image')].some(i => {
  const r = i.getBoundingClientRect(); return r.width >= 96 && r.top >= 0 && r.bottom <= h; })"""
# An UNTRAINED watermark whose centre lies inside a drawn map.
MARK_IN_MAP_JS = """() => [...document.querySelectorAll('.js-plotly-plot')].some(p => {
  const maps = [...p.querySelectorAll('g.hm image')].map(i => i.getBoundingClientRect());
  return [...p.querySelectorAll('g.annotation')].filter(a => a.textContent === 'UNTRAINED').some(a => {
    const r = a.getBoundingClientRect(), x = (r.left + r.right) / 2, y = (r.top + r.bottom) / 2;
    return maps.some(m => m.left < x && x < m.right && m.top < y && y < m.bottom); }); })"""


def test_first_screen_at_1280x800_shows_a_map(server: str, browser) -> None:  # noqa: ANN001
    pg = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        pg.goto(server)
        _settle(pg, ".js-plotly-plot")
        pg.screenshot(path=str(ARTIFACTS / "compare_first_screen_1280x800.png"))
        assert pg.evaluate(MAP_ON_FIRST_SCREEN_JS, 800)
    finally:
        pg.close()


def _mark_in_map(pg) -> bool:  # noqa: ANN001
    """an UNTRAINED mark lies inside a drawn map"""
    return pg.evaluate(MARK_IN_MAP_JS)


def test_untrained_mark_is_visible_inside_the_plot(server: str, page) -> None:  # noqa: ANN001
    page.goto(server + "/?weights_mode=random+init")
    _settle(page, ".js-plotly-plot")
    _assert_clean(page, "compare_untrained", _mark_in_map)
