"""Load on one dashboard server: 1, 4 and 8 concurrent browser sessions against `streamlit run` on 127.0.0.1.

Each session opens Compare CAMs (first paint: the page title drawn), switches to Upload and sends its own photo
(a distinct 3000 x 2000 JPEG made from the sample photos), and waits for the overlays of the default pair
(upload → CAMs). Meanwhile the health endpoint is polled (slowest reply), the server's resident memory is
sampled (peak) and its CPU time counted (what the server did, as opposed to the browsers on the same machine).
A fresh server is started for every level, so levels do not share caches. Bounded: at most 8 sessions, a time
limit per level.

    python benchmarks/bench_load.py [--levels 1 4 8] [--port 8621] [--timeout 240]

Needs Debian's chromium (/usr/bin/chromium) and the playwright package.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parent.parent
PHOTOS = REPO.parent / "shared" / "data" / "imagenet-sample-photos"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
MAX_SESSIONS = 8


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _sample(pid: int, url: str, stop, out) -> None:  # noqa: ANN001
    peak, health = 0, []
    while not stop.is_set():
        peak = max(peak, rss_bytes(pid))
        t = time.perf_counter()
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=30) as r:
                r.read()
            health.append(time.perf_counter() - t)
        except OSError:
            health.append(float("inf"))
        stop.wait(0.5)
    out.send((peak, health))


class Sampler:
    """Peak RSS of the server and the slowest health-endpoint reply while the sessions run, sampled from a process
    of its own (so that the browsers' driver in this process does not delay the health requests)."""

    def __init__(self, pid: int, url: str) -> None:
        ctx = multiprocessing.get_context("fork")
        self._stop = ctx.Event()
        self._recv, send = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_sample, args=(pid, url, self._stop, send), daemon=True)
        self.peak_rss, self.health_s = 0, []

    def start(self) -> None:
        self._proc.start()

    def finish(self) -> None:
        self._stop.set()
        if self._recv.poll(10):
            self.peak_rss, self.health_s = self._recv.recv()
        self._proc.join(5)


def make_photos(n: int, folder: Path) -> list[Path]:
    """``n`` distinct 3000 x 2000 JPEGs (about 6 MP, a phone photo) from the sample photos."""
    sources = sorted(PHOTOS.glob("*.JPEG"))
    if not sources:
        sys.exit(f"no sample photos at {PHOTOS}")
    out = []
    for k in range(n):
        im = Image.open(sources[k % len(sources)]).convert("RGB").resize((3000, 2000), Image.Resampling.BILINEAR)
        im.putpixel((k, 0), (k, 255 - k, 7))  # distinct bytes, so no session reuses another's results
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=90)
        path = folder / f"photo_{k}.jpg"
        path.write_bytes(buf.getvalue())
        out.append(path)
    return out


def start_server(port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    sys.exit(f"the server did not start; see {log}")


async def session(browser, url: str, photo: Path, timeout_ms: int) -> dict:  # noqa: ANN001
    ctx = await browser.new_context(viewport={"width": 1400, "height": 2000})
    page = await ctx.new_page()
    try:
        t0 = time.perf_counter()
        await page.goto(url)
        await page.wait_for_selector("h1", timeout=timeout_ms)
        first_paint = time.perf_counter() - t0
        await page.get_by_text("Upload", exact=True).first.click()
        await page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot, [data-testid=\"stImage\"]')"
                                     ".length === 0", timeout=timeout_ms)
        t1 = time.perf_counter()
        await page.locator('input[type="file"]').first.set_input_files(str(photo))
        await page.wait_for_function(
            "() => document.querySelectorAll('.js-plotly-plot, [data-testid=\"stImage\"]').length >= 2 && "
            "!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms, polling=200)
        cams = time.perf_counter() - t1
        errors = await page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').count()
        return {"first_paint": first_paint, "cams": cams, "errors": errors}
    except Exception as exc:  # noqa: BLE001  (a session that timed out is reported, the others still count)
        return {"failed": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"}
    finally:
        await ctx.close()


async def level(n: int, url: str, photos: list[Path], timeout_s: float) -> list[dict]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            return await asyncio.wait_for(
                asyncio.gather(*(session(browser, url, photos[k], int(timeout_s * 1000)) for k in range(n))),
                timeout=timeout_s + 30)
        finally:
            await browser.close()


def fmt(values: list[float]) -> str:
    if not values:
        return "—"
    return f"median {statistics.median(values):5.1f} s, max {max(values):5.1f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--port", type=int, default=8621)
    ap.add_argument("--timeout", type=float, default=240.0, help="seconds one level may take")
    args = ap.parse_args()
    if max(args.levels) > MAX_SESSIONS or min(args.levels) < 1:
        sys.exit(f"levels must be between 1 and {MAX_SESSIONS}")
    if not Path(CHROMIUM).is_file():
        sys.exit(f"{CHROMIUM} is missing")
    print(f"{os.cpu_count()} cores; sessions upload distinct 3000x2000 JPEGs on Compare CAMs (default pair)")
    with tempfile.TemporaryDirectory() as tmp:
        photos = make_photos(sum(args.levels), Path(tmp))
        used = 0
        for k, n in enumerate(args.levels):
            port = args.port + k
            url = f"http://127.0.0.1:{port}"
            proc = start_server(port, Path(tmp) / f"server_{port}.log")
            sampler = Sampler(proc.pid, url)
            sampler.start()
            cpu0, wall0 = cpu_seconds(proc.pid), time.perf_counter()
            try:
                rows = asyncio.run(level(n, url, photos[used:used + n], args.timeout))
            except TimeoutError:
                rows = [{"failed": "level timed out"}]
            finally:
                cpu, wall = cpu_seconds(proc.pid) - cpu0, time.perf_counter() - wall0
                sampler.finish()
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
            used += n
            ok = [r for r in rows if "failed" not in r]
            print(f"{n} session(s): first paint {fmt([r['first_paint'] for r in ok])}; "
                  f"upload→CAMs {fmt([r['cams'] for r in ok])}; peak server RSS {sampler.peak_rss / 2**20:.0f} MB; "
                  f"slowest health reply {max(sampler.health_s, default=0):.2f} s; "
                  f"errors shown {sum(r['errors'] for r in ok)}; failed {len(rows) - len(ok)}; "
                  f"server CPU {cpu:.1f} s in {wall:.1f} s wall")
            for r in rows:
                if "failed" in r:
                    print(f"    failed: {r['failed']}")
            if ok:
                print("    per session upload→CAMs (s): " + ", ".join(f"{r['cams']:.1f}" for r in ok))


if __name__ == "__main__":
    main()
