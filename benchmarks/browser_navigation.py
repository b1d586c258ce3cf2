"""Navigation in a folder of 1000 notebooks: our CS3 contents and file browser
next to the stock local ones.

Two JupyterLab servers on loopback, each with the same 1000 small notebooks
(made with nbformat) in a folder ``bench-1000``:

- **ours**: ``jupyter lab`` with cs3collab (as the demo starts it), the
  notebooks in einstein's home on a devstack site, uploaded through the CS3
  client;
- **stock**: ``jupyter lab`` without cs3collab, the same notebooks in a local
  folder, served by jupyter_server's default contents manager
  (``AsyncLargeFileManager``, a ``FileContentsManager``).

Figures (median, p90 and max over ``--runs``):

1. the contents API listing ``GET /api/contents/bench-1000?content=1``
   (and, for scale, the one CS3 ``ListContainer`` call behind ours);
2. in Debian's chromium (Playwright), from the double click on
   ``bench-1000`` until its 1000th row is in the DOM: our "CS3 files"
   panel's My files tab, the stock lab's file browser, and (as a check) the
   stock file browser widget on our CS3 contents.

No assertion: it prints figures.

    .venv/bin/python benchmarks/browser_navigation.py [--files 1000] [--runs 7] [--no-browser] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import nbformat  # noqa: E402
from nbformat import v4  # noqa: E402

from cs3collab.cs3 import CS3Client  # noqa: E402
from cs3collab.demo import DEMO_USERS, JUPYTER_READY, jupyter_command, jupyter_env  # noqa: E402
from tests.support.processes import devstack, run_process  # noqa: E402

FOLDER = "bench-1000"
CHROMIUM = Path(os.environ.get("CS3COLLAB_CHROMIUM") or "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
LOAD_TIMEOUT_MS = 60_000


def notebook(i: int) -> bytes:
    nb = v4.new_notebook(
        cells=[v4.new_markdown_cell(f"# Run {i}"), v4.new_code_cell(f"energy = {i} * 0.511\nenergy")],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    return nbformat.writes(nb).encode()


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": statistics.median(ordered) * 1000,
        "p90_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))] * 1000,
        "max_ms": ordered[-1] * 1000,
        "runs": len(ordered),
    }


async def fill(gateway: str, local: Path, files: int) -> None:
    """The same notebooks in einstein's CS3 home and in the local folder."""
    (local / FOLDER).mkdir(parents=True, exist_ok=True)
    async with CS3Client(gateway) as cs3:
        einstein = await cs3.login("einstein", DEMO_USERS["einstein"])
        folder = f"{await einstein.get_home()}/{FOLDER}"
        await einstein.files.mkdir(folder)
        limit = asyncio.Semaphore(16)

        async def one(i: int) -> None:
            data = notebook(i)
            (local / FOLDER / f"run-{i:04d}.ipynb").write_bytes(data)
            async with limit:
                await einstein.files.upload(f"{folder}/run-{i:04d}.ipynb", data)

        await asyncio.gather(*(one(i) for i in range(files)))


async def listing_times(url: str, token: str, runs: int, files: int) -> list[float]:
    times = []
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"token {token}"}, timeout=60) as http:
        for _ in range(runs + 1):
            started = time.perf_counter()
            answer = await http.get(f"/api/contents/{FOLDER}", params={"content": 1})
            elapsed = time.perf_counter() - started
            answer.raise_for_status()
            assert len(answer.json()["content"]) == files, answer.text[:200]
            times.append(elapsed)
    return times[1:]  # the first one warms caches and connections


async def list_container_times(gateway: str, runs: int) -> list[float]:
    """The one CS3 call behind our listing, timed on its own (what the gateway costs)."""
    times = []
    async with CS3Client(gateway) as cs3:
        einstein = await cs3.login("einstein", DEMO_USERS["einstein"])
        folder = f"{await einstein.get_home()}/{FOLDER}"
        for _ in range(runs + 1):
            started = time.perf_counter()
            await einstein.files.list(folder)
            times.append(time.perf_counter() - started)
    return times[1:]


async def dom_times(page, container: str, runs: int, files: int) -> list[float]:
    """Double click the folder in ``container``'s listing; seconds until its ``files`` rows are in the DOM."""
    rows = f"{container} .jp-DirListing-item"
    folder = page.locator(rows, has=page.locator(".jp-DirListing-itemText", has_text=FOLDER))
    times = []
    for _ in range(runs + 1):
        await folder.first.wait_for(timeout=LOAD_TIMEOUT_MS)
        started = time.perf_counter()
        await folder.first.dblclick()
        await page.wait_for_function("([sel, n]) => document.querySelectorAll(sel).length >= n",
                                     arg=[rows, files], polling="raf", timeout=LOAD_TIMEOUT_MS)
        times.append(time.perf_counter() - started)
        await page.locator(f"{container} .jp-BreadCrumbs-home").click()
        await page.wait_for_function("([sel, n]) => document.querySelectorAll(sel).length < n",
                                     arg=[rows, files], polling="raf", timeout=LOAD_TIMEOUT_MS)
    return times[1:]


async def browser_figures(ours: tuple[str, str], stock: tuple[str, str], runs: int, files: int, base: Path) -> dict:
    from playwright.async_api import async_playwright

    figures = {}
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            for n, (name, (url, token), open_panel, container) in enumerate((
                ("ours: CS3 files panel, My files", ours, True, "#cs3collab-browser"),
                ("ours: stock file browser widget on CS3", ours, False, "#filebrowser"),
                ("stock: file browser on local files", stock, False, "#filebrowser"),
            )):
                page = await browser.new_page(viewport={"width": 1280, "height": 800})
                # a fresh workspace: the default layout, with the stock file browser shown
                await page.goto(f"{url}/lab/workspaces/bench-{n}?reset&token={token}")
                await page.locator("#filebrowser").wait_for(timeout=LOAD_TIMEOUT_MS)
                if open_panel:
                    await page.locator('.jp-SideBar .lm-TabBar-tab[title="CS3 files"]').click()
                    await page.locator(f'{container} .cs3collab-BrowserTab[data-tab="mine"]').click()
                await page.locator(container).wait_for(timeout=LOAD_TIMEOUT_MS)
                figures[name] = summary(await dom_times(page, container, runs, files))
                await page.close()
        finally:
            await browser.close()
    return figures


@contextlib.asynccontextmanager
async def lab(args: list[str], env: dict[str, str]):
    async with run_process(args, JUPYTER_READY, env=env) as running:
        yield running.ready["url"].rstrip("/")


async def main(options: argparse.Namespace) -> dict:
    base = Path(options.keep or tempfile.mkdtemp(prefix="cs3collab-browse-bench-"))
    token = "bench-token"
    local = base / "stock-root"
    async with contextlib.AsyncExitStack() as stack:
        site = await stack.enter_async_context(devstack(base / "site", domain="cernbox.bench"))
        started = time.perf_counter()
        await fill(site.gateway, local, options.files)
        print(f"{options.files} notebooks in CS3 and locally in {time.perf_counter() - started:.1f} s", flush=True)
        (base / "ours-root").mkdir(exist_ok=True)
        ours = await stack.enter_async_context(lab(
            jupyter_command("einstein", token, site.gateway, "", base / "ours-root"), jupyter_env(base / "ours")))
        stock_args = [
            sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1", "--ServerApp.port=0",
            f"--ServerApp.root_dir={local}", f"--IdentityProvider.token={token}",
            "--ServerApp.jpserver_extensions=cs3collab.jupyter=False",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            stock_args.append("--allow-root")
        stock = await stack.enter_async_context(lab(stock_args, jupyter_env(base / "stock")))

        results: dict = {"files": options.files, "listing": {}, "dom": {}}
        results["listing"]["ours: CS3ContentsManager"] = summary(
            await listing_times(ours, token, options.runs, options.files))
        results["listing"]["stock: AsyncLargeFileManager"] = summary(
            await listing_times(stock, token, options.runs, options.files))
        results["listing"]["(CS3 ListContainer alone, from the client)"] = summary(
            await list_container_times(site.gateway, options.runs))
        if not options.no_browser and CHROMIUM.exists():
            results["dom"] = await browser_figures((ours, token), (stock, token), options.runs, options.files, base)
    return results


def report(results: dict) -> None:
    print(f"\nGET /api/contents/{FOLDER}?content=1 ({results['files']} notebooks)")
    for name, f in results["listing"].items():
        print(f"  {name:45s} median {f['median_ms']:7.1f} ms  p90 {f['p90_ms']:7.1f} ms  max {f['max_ms']:7.1f} ms")
    if results["dom"]:
        print(f"\ndouble click on {FOLDER} → {results['files']}th row in the DOM (chromium)")
        for name, f in results["dom"].items():
            print(f"  {name:45s} median {f['median_ms']:7.1f} ms  p90 {f['p90_ms']:7.1f} ms  max {f['max_ms']:7.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-browser", action="store_true", help="only the contents API figures")
    parser.add_argument("--keep", help="use this folder and keep it (default: a temporary folder)")
    parser.add_argument("--json", help="also write the figures to this file")
    opts = parser.parse_args()
    figures = asyncio.run(asyncio.wait_for(main(opts), timeout=900))
    report(figures)
    if opts.json:
        Path(opts.json).write_text(json.dumps(figures, indent=1))
