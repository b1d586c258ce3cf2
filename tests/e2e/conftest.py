"""Fixtures of the browser end-to-end tests: the demo's whole stack as real
processes, and Debian's chromium driven by Playwright.

One stack per test module, started exactly as ``cs3collab demo`` starts it
(its ``seed``, and the site's JupyterHub from ``cs3collab.hub.local``): a
devstack site, the sample notebook ``analysis.ipynb`` in einstein's home
shared with marie (editor) and richard (viewer), the collaboration service,
and a JupyterHub (CS3 login, configurable-http-proxy from tools/chp) that
spawns one single-user server per demo user, each with Jupyter folders of
its own, so their JupyterLab workspaces never leak into each other. The
fixture logs each user in on the hub's login form (the hub needs the user's
CS3 token before it can start their server) and waits until the server is
up; ``Lab.url`` is the server behind the hub's proxy (``/user/<name>``) and
``Lab.token`` a hub API token of that user, good for ``Authorization:
token`` (a ``?token=`` in a page URL is ignored: JupyterHub takes tokens in
URLs no more, the browser's hub login is what lets it in).

Every tab (``new_tab``) first logs in on the hub's login page like a person:
the form's username and password, the submit button.

The browser is the system's ``/usr/bin/chromium`` (``./dev test`` installs
it with apt), or the one ``CS3COLLAB_CHROMIUM`` names; Playwright never downloads one. Each user's tab lives in its
own browser with a fresh profile folder. Screenshots and each tab's browser
console go to ``test-artifacts/e2e/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import nbformat
import pytest
from playwright.async_api import Page, Playwright, async_playwright, expect

from cs3collab.cs3 import CS3Client, Session
from cs3collab.demo import DEMO_USERS, JUPYTER_READY, SAMPLE_NAME, jupyter_command, jupyter_env, seed
from cs3collab.hub import local as local_hub
from tests.support import processes
from tests.support.processes import Devstack, RunningProcess, Service, devstack, run_process, service, stable_port

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "e2e"
CHROMIUM = Path(os.environ.get("CS3COLLAB_CHROMIUM") or "/usr/bin/chromium")  # README: a chromium elsewhere
# a 1440 x 900 laptop screen: at 1280 px with the file browser open a viewer's
# notebook toolbar does not fit, and JupyterLab's ReactiveToolbar moves some
# items (which ones depends on timing) under "More commands"
VIEWPORT = {"width": 1440, "height": 900}
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI containers run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DISPLAY_NAMES = {"einstein": "Albert Einstein", "marie": "Marie Curie", "richard": "Richard Feynman"}
"""The devstack's display names of the demo users: what the stock UI shows."""
NOTEBOOK_PATHS = {
    "einstein": SAMPLE_NAME,
    "marie": f"Shared with me/{SAMPLE_NAME}",
    "richard": f"Shared with me/{SAMPLE_NAME}",
}
"""Where each user finds the sample notebook in their own JupyterLab."""

LOAD_TIMEOUT_MS = 30_000
"""A notebook tab, from navigation to its cells on screen (JupyterLab's first load is heavy)."""


@dataclass
class Lab:
    """One user's running Jupyter server (behind the hub: ``running`` is the hub, whose output has the server's)."""

    user: str
    url: str  # http://127.0.0.1:PORT or, behind the hub, http://127.0.0.1:PORT/user/<name>
    token: str
    running: RunningProcess

    def tree_url(self, path: str) -> str:
        return f"{self.url}/lab/tree/{quote(path)}?token={self.token}"


@dataclass
class Stack:
    site: Devstack
    service: Service
    labs: dict[str, Lab]
    sample: str  # the sample notebook's CS3 path (einstein's home)
    client: CS3Client
    hub: Hub | None = None  # the site's JupyterHub, where the tabs log in

    async def session(self, user: str) -> Session:
        return await self.client.login(user, DEMO_USERS[user])


@contextlib.asynccontextmanager
async def lab(user: str, gateway: str, service_url: str, base: Path) -> AsyncIterator[Lab]:
    """``jupyter lab`` for ``user`` as the demo starts it, with Jupyter folders of its own."""
    token = f"e2e-{user}-token"
    root = base / "root"
    root.mkdir(parents=True, exist_ok=True)
    env = jupyter_env(base)  # Jupyter folders of its own, as the demo gives each server
    args = jupyter_command(user, token, gateway, service_url, root)
    async with run_process(args, JUPYTER_READY, env=env) as running:
        yield Lab(user, running.ready["url"], token, running)


@dataclass
class Hub:
    """A site's running JupyterHub."""

    url: str  # http://127.0.0.1:PORT (the proxy's public side)
    running: RunningProcess
    api_token: str  # an admin service's token: starts servers, makes user tokens

    def api(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"token {self.api_token}"}, timeout=60)


_current_hub: Hub | None = None
"""The hub of the module's stack: where ``new_tab`` logs its user in (tests call it without the stack)."""


@contextlib.asynccontextmanager
async def running_hub(base: Path, gateway: str, service_url: str) -> AsyncIterator[Hub]:
    """A site's JupyterHub as the demo starts it, with an admin service for the fixtures."""
    api_token = secrets.token_hex(16)
    config = local_hub.write_config(base, gateway=gateway, service_url=service_url)
    with config.open("a") as out:
        out.write(f"""
c.JupyterHub.services = [{{"name": "e2e", "api_token": {api_token!r}}}]
c.JupyterHub.load_roles = [{{"name": "e2e", "services": ["e2e"],
    "scopes": ["admin:users", "admin:servers", "tokens", "read:servers"]}}]
""")
    ready = processes.READY_TIMEOUT
    processes.READY_TIMEOUT = max(ready, 120.0)  # a hub and its proxy on a loaded machine
    try:
        async with run_process(local_hub.hub_command(config), local_hub.HUB_READY,
                               env=local_hub.hub_env(base)) as running:
            processes.READY_TIMEOUT = ready
            yield Hub(running.ready["url"].rstrip("/"), running, api_token)
    finally:
        processes.READY_TIMEOUT = ready


async def hub_form_login(http: httpx.AsyncClient, user: str) -> None:
    """Post the hub's login form (its XSRF token, the user's CS3 name and password)."""
    page = await http.get("/hub/login")
    assert page.status_code == 200 and 'name="password"' in page.text, page.text[:300]
    answer = await http.post("/hub/login", data={"username": user, "password": DEMO_USERS[user],
                                                 "_xsrf": http.cookies.get("_xsrf")})
    assert answer.status_code == 302, f"{user} could not log in to the hub: {answer.status_code} {answer.text[:300]}"


async def hub_lab(hub: Hub, user: str) -> Lab:
    """``user`` logs in at the hub, which starts their server; a Lab with a hub token of theirs."""
    async with httpx.AsyncClient(base_url=hub.url, timeout=60) as browser:
        await hub_form_login(browser, user)  # the hub now holds the user's CS3 token
    async with hub.api() as http:
        started = await http.post(f"/hub/api/users/{user}/server")
        assert started.status_code in (201, 202, 400), started.text  # 400: the login started it already
        async with http.stream("GET", f"/hub/api/users/{user}/server/progress", timeout=240) as events:
            async for line in events.aiter_lines():
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    assert not event.get("failed"), f"{user}'s server did not start: {event}"
                    if event.get("ready"):
                        break
        made = await http.post(f"/hub/api/users/{user}/tokens",
                               json={"scopes": [f"access:servers!user={user}"], "note": "e2e"})
        assert made.status_code == 201, made.text
    return Lab(user, f"{hub.url}/user/{user}", made.json()["token"], hub.running)


async def browser_hub_login(tab: Tab, hub: Hub) -> None:
    """Log ``tab``'s user in on the hub's login page like a person: type name and password, press the button."""
    page = tab.page
    await page.goto(f"{hub.url}/hub/login?next={quote('/hub/home')}")
    await page.locator("input[name=username]").fill(tab.user)
    await page.locator("input[name=password]").fill(DEMO_USERS[tab.user])
    await page.locator("#login_submit").click()
    await page.wait_for_url(re.compile(r".*/hub/home"), timeout=LOAD_TIMEOUT_MS)


async def enter_all(stack: contextlib.AsyncExitStack, managers) -> list:
    """Enter context managers concurrently; every one that started is stopped by ``stack``."""
    results = await asyncio.gather(*(stack.enter_async_context(m) for m in managers), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


@pytest.fixture(scope="module")
async def stack(tmp_path_factory, request) -> AsyncIterator[Stack]:
    """The demo's stack: site, shared sample notebook, service, a JupyterLab per user."""
    global _current_hub
    base = tmp_path_factory.mktemp("e2e")
    async with contextlib.AsyncExitStack() as exits:
        site = await exits.enter_async_context(devstack(base / "site", domain="cernbox.test"))
        sample = await seed(site.gateway)
        # shared kernels run unsandboxed here until the cs3collab-sandbox provisioner is merged (the lead switches it)
        svc = await exits.enter_async_context(
            service(site.gateway, base / "service", extra=(), port=stable_port()))
        hub = await exits.enter_async_context(running_hub(base / "hub", site.gateway, svc.url))
        try:
            labs = await asyncio.gather(*(hub_lab(hub, user) for user in DEMO_USERS))
            client = await exits.enter_async_context(CS3Client(site.gateway))
            running = Stack(site, svc, {server.user: server for server in labs}, sample, client, hub)
            _current_hub = hub
            yield running
        finally:
            _current_hub = None
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            module = request.module.__name__.rsplit(".", 1)[-1]  # one set of logs per test module
            (ARTIFACTS / f"service-{module}.log").write_text("\n".join(svc.running.output) + "\n")
            (ARTIFACTS / f"hub-{module}.log").write_text("\n".join(hub.running.output) + "\n")  # the users' servers too


@dataclass
class Tab:
    """One user's browser tab on their own JupyterLab, with the sample notebook open."""

    user: str
    page: Page
    console: list[str] = field(default_factory=list)

    @property
    def notebook(self):
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")

    def cell(self, index: int):
        return self.notebook.locator(".jp-Notebook .jp-Cell").nth(index)

    def editor(self, index: int):
        """The CodeMirror content of cell ``index``: what the user reads and types into."""
        return self.cell(index).locator(".cm-content")

    def remote_user(self, user: str):
        """The flag on ``user``'s remote cursor (a CodeMirror tooltip, mounted at the page's end)."""
        return self.page.locator(".jp-remote-userFlag", has_text=DISPLAY_NAMES[user])

    async def type_at_end(self, index: int, text: str) -> None:
        """Click into cell ``index``, go to its end, type a new line with ``text`` (real key presses)."""
        await self.editor(index).click()
        await self.page.keyboard.press("Control+End")
        await self.page.keyboard.press("Enter")
        await self.page.keyboard.type(text)


class Screenshots:
    """Numbered screenshots of each step in ``test-artifacts/e2e/``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    async def __call__(self, tab: Tab, step: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{step}-{tab.user}.png"
        await tab.page.screenshot(path=path, animations="disabled")
        return path


def module_screenshots(folder_name: str):
    """A test module's ``screenshot`` fixture (``screenshot = module_screenshots("sharing")``):
    numbered screenshots in ``test-artifacts/e2e/<folder_name>/``, which shows the last run only."""

    @pytest.fixture(scope="module")
    def screenshot() -> Screenshots:
        folder = ARTIFACTS / folder_name
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        return Screenshots(folder)

    return screenshot


@pytest.fixture(scope="module")
def screenshot() -> Screenshots:
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)  # the folder shows the last run only
    ARTIFACTS.mkdir(parents=True)
    return Screenshots(ARTIFACTS)


@pytest.fixture(scope="module")
async def browser_driver() -> AsyncIterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: these tests use Debian's chromium (./dev test installs it with apt)")
    async with async_playwright() as driver:
        yield driver


async def new_tab(driver: Playwright, profile: Path, user: str, exits: contextlib.AsyncExitStack) -> Tab:
    """A tab for ``user`` in a browser of its own (Debian's chromium, a fresh
    profile folder), its console kept in ``tab.console``; ``exits`` closes it.
    With the module's stack behind a hub, the user has logged in on the hub's
    login page in it (``browser_hub_login``)."""
    context = await driver.chromium.launch_persistent_context(
        profile,
        executable_path=str(CHROMIUM),
        args=CHROMIUM_ARGS,
        headless=True,
        viewport=VIEWPORT,
    )
    exits.push_async_callback(context.close)
    page = context.pages[0] if context.pages else await context.new_page()
    tab = Tab(user, page)
    page.on("console", lambda message: tab.console.append(f"[{message.type}] {message.text}"))
    page.on("pageerror", lambda error: tab.console.append(f"[pageerror] {error}"))
    # the stock frontend asks "The document is taking some time to load" when a room
    # took more than 5 s to sync (a loaded machine) and may leave the dialog up after
    # it synced; it would block later clicks, so it is answered as a person would
    slow_load = page.locator('.jp-Dialog[aria-label^="Loading"]')

    async def continue_waiting() -> None:
        await slow_load.get_by_role("button", name="Continue waiting").click()

    await page.add_locator_handler(slow_load, continue_waiting)
    if _current_hub is not None:
        await browser_hub_login(tab, _current_hub)
    return tab


@pytest.fixture(scope="module")
async def tabs(stack, browser_driver, screenshot, tmp_path_factory, request) -> AsyncIterator[dict[str, Tab]]:
    """einstein's, marie's and richard's tabs, each in its own browser on its own
    JupyterLab, with the shared notebook open and synced (its cells shown)."""
    profiles = tmp_path_factory.mktemp("browser-profiles")
    opened: dict[str, Tab] = {}
    async with contextlib.AsyncExitStack() as exits:

        async def open_tab(user: str) -> Tab:
            tab = await new_tab(browser_driver, profiles / user, user, exits)
            page = tab.page
            await page.goto(stack.labs[user].tree_url(NOTEBOOK_PATHS[user]))
            # the title cell comes from the shared document: the room synced
            await expect(tab.cell(0)).to_contain_text("Detector calibration", timeout=LOAD_TIMEOUT_MS)
            opened[user] = tab
            return tab

        try:
            results = await asyncio.gather(*(open_tab(user) for user in DEMO_USERS), return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            for user in DEMO_USERS:
                await screenshot(opened[user], "opened")
            yield opened
        finally:
            for tab in opened.values():
                module = request.module.__name__.rsplit(".", 1)[-1]
                (ARTIFACTS / f"console-{module}-{tab.user}.log").write_text("\n".join(tab.console) + "\n")


@pytest.fixture
async def cs3_text(stack) -> Callable[[], Awaitable[str]]:
    """``await cs3_text()``: all cell sources of the sample notebook as stored in CS3 now."""
    einstein = await stack.session("einstein")

    async def _text() -> str:
        notebook = nbformat.reads((await einstein.files.download(stack.sample)).decode(), as_version=4)
        return "\n".join(cell.source for cell in notebook.cells)

    return _text
