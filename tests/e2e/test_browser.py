"""The CS3 file browser in a real browser: Debian's chromium on einstein's and
marie's JupyterLab (the demo's stack: the sample notebook in einstein's home,
shared with marie as editor and richard as viewer).

What is asserted is what a user sees in the left-sidebar panel "CS3 files":
its three tabs; a share einstein just made waits in marie's "Shared with me"
with Accept and Decline, and once accepted opens as a live notebook; a
declined share leaves the list; einstein's "Shared by me" names each person
and role; File info from the file browser's context menu names owner, size,
permissions, the cs3collab lock the open notebook's room holds, and the
number of versions. Screenshots go to ``test-artifacts/e2e/browser/``.

Waits are Playwright's auto-waiting expectations, never sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import uuid
from collections.abc import AsyncIterator

import nbformat
import pytest
from playwright.async_api import expect

from cs3collab.cs3 import roles
from cs3collab.cs3.shares import user_grantee
from cs3collab.demo import SAMPLE_NAME, sample_notebook
from tests.e2e.conftest import ARTIFACTS, LOAD_TIMEOUT_MS, module_screenshots, new_tab, Tab

PANEL = "#cs3collab-browser"
USERS = ("einstein", "marie")


screenshot = module_screenshots("browser")


@pytest.fixture(scope="module")
async def pages(stack, browser_driver, tmp_path_factory) -> AsyncIterator[dict[str, Tab]]:
    """einstein's and marie's JupyterLab, each in its own browser, with the CS3 panel open."""
    profiles = tmp_path_factory.mktemp("browser-profiles")
    opened: dict[str, Tab] = {}
    async with contextlib.AsyncExitStack() as exits:

        async def open_lab(user: str) -> Tab:
            tab = await new_tab(browser_driver, profiles / user, user, exits)
            page = tab.page
            lab = stack.labs[user]
            await page.goto(f"{lab.url}/lab?token={lab.token}")
            await page.locator('.jp-SideBar .lm-TabBar-tab[title="CS3 files"]').click(timeout=LOAD_TIMEOUT_MS)
            await expect(page.locator(PANEL)).to_be_visible()
            opened[user] = tab
            return tab

        try:
            for result in await asyncio.gather(*(open_lab(u) for u in USERS), return_exceptions=True):
                if isinstance(result, BaseException):
                    raise result
            yield opened
        finally:
            for tab in opened.values():
                (ARTIFACTS / "browser" / f"console-{tab.user}.log").write_text("\n".join(tab.console) + "\n")


def human(size: int) -> str:
    """The size as the dialog writes it (powers of 1024, one decimal below 10)."""
    value, unit = float(size), 0
    while value >= 1024 and unit < 4:
        value, unit = value / 1024, unit + 1
    # JavaScript's Math.round and toFixed round halves up
    shown = str(math.floor(value + 0.5)) if unit == 0 or value >= 10 else f"{math.floor(value * 10 + 0.5) / 10:.1f}"
    return f"{shown} {['B', 'KB', 'MB', 'GB', 'TB'][unit]}"


def panel(tab: Tab):
    return tab.page.locator(PANEL)


async def show(tab: Tab, which: str) -> None:
    """Click one of the panel's tabs (mine, with-me, by-me)."""
    await panel(tab).locator(f'.cs3collab-BrowserTab[data-tab="{which}"]').click()


def my_file(tab: Tab, name: str):
    return panel(tab).locator(".jp-DirListing-item", has=tab.page.locator(".jp-DirListing-itemText", has_text=name))


def received(tab: Tab, name: str):
    return panel(tab).locator(f'.cs3collab-ReceivedShare[data-name="{name}"]')


def sample_metadata() -> dict:
    """The demo notebook's metadata (its kernelspec): JupyterLab opens it without asking for a kernel."""
    return dict(nbformat.reads(sample_notebook().decode(), as_version=4).metadata)


async def share_new_notebook(stack, name: str, source: str) -> str:
    """einstein puts a notebook in his home and shares it with marie as editor (pending for her)."""
    einstein, marie = await stack.session("einstein"), await stack.session("marie")
    path = f"{await einstein.get_home()}/{name}"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)], metadata=sample_metadata())
    await einstein.files.upload(path, nbformat.writes(notebook).encode())
    share = await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    return share.id.opaque_id


async def test_the_panel_has_three_tabs(pages, screenshot):
    einstein = pages["einstein"]
    tabs = panel(einstein).locator(".cs3collab-BrowserTab")
    await expect(tabs).to_have_count(3)
    for which, label in (("mine", "My files"), ("with-me", "Shared with me"), ("by-me", "Shared by me")):
        await expect(panel(einstein).locator(f'.cs3collab-BrowserTab[data-tab="{which}"]')).to_have_text(label)
    # My files is a file browser on einstein's CS3 home
    await show(einstein, "mine")
    await expect(my_file(einstein, SAMPLE_NAME)).to_be_visible(timeout=20_000)
    await screenshot(einstein, "my-files")


async def test_marie_accepts_a_pending_share_and_it_opens_live(pages, stack, screenshot):
    marie = pages["marie"]
    name = f"calibration-{uuid.uuid4().hex[:6]}.ipynb"
    line = f"pending_share = '{uuid.uuid4().hex[:8]}'"
    await share_new_notebook(stack, name, line)

    await show(marie, "with-me")
    await panel(marie).locator(".cs3collab-Refresh").first.click()  # the share arrived while the tab was shown
    row = received(marie, name)
    await expect(row).to_have_attribute("data-state", "pending", timeout=20_000)
    await expect(row).to_contain_text("from Albert Einstein (cernbox.test)")
    await expect(row).to_contain_text("editor")
    await expect(row.locator(".cs3collab-Decline")).to_be_visible()
    # pending shares come first
    await expect(panel(marie).locator(".cs3collab-ReceivedShare").first).to_have_attribute("data-state", "pending")
    await screenshot(marie, "pending-share")

    await row.locator(".cs3collab-Accept").click()
    await expect(row).to_have_attribute("data-state", "accepted")
    await expect(row).to_have_attribute("data-path", f"Shared with me/{name}")
    await expect(row.locator(".cs3collab-Accept")).to_have_count(0)
    await screenshot(marie, "accepted-share")

    # a click on its name opens it: a live notebook in the room, with einstein's cell
    await row.locator(".cs3collab-RowName").click()
    notebook = marie.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    await expect(notebook.locator(".jp-Cell").first).to_contain_text(line, timeout=LOAD_TIMEOUT_MS)
    await expect(notebook.locator(".cs3collab-StatusChip")).to_contain_text("Live", timeout=20_000)
    await screenshot(marie, "accepted-share-open")


async def test_a_declined_share_disappears(pages, stack, screenshot):
    marie = pages["marie"]
    name = f"declined-{uuid.uuid4().hex[:6]}.ipynb"
    await share_new_notebook(stack, name, "x = 1")
    await show(marie, "with-me")
    await panel(marie).locator(".cs3collab-Refresh").first.click()
    row = received(marie, name)
    await expect(row).to_have_attribute("data-state", "pending", timeout=20_000)
    await row.locator(".cs3collab-Decline").click()
    # out of the list (into the collapsed "Declined" section) ...
    await expect(row).to_have_attribute("data-state", "declined")
    await expect(row).to_be_hidden()
    await expect(panel(marie).locator(".cs3collab-Declined summary")).to_contain_text("Declined")
    await screenshot(marie, "declined-share")
    # ... and not in her "Shared with me" folder
    await show(marie, "mine")
    await my_file(marie, "Shared with me").dblclick()
    await expect(my_file(marie, SAMPLE_NAME)).to_be_visible(timeout=20_000)  # the listing came
    await expect(my_file(marie, name)).to_have_count(0)


async def test_shared_by_me_lists_einsteins_shares(pages, screenshot):
    einstein = pages["einstein"]
    await show(einstein, "by-me")
    sample = panel(einstein).locator(f'.cs3collab-SentShare[data-name="{SAMPLE_NAME}"]')
    for user, display, role in (("marie", "Marie Curie", "editor"), ("richard", "Richard Feynman", "viewer")):
        row = sample.and_(panel(einstein).locator(f'[data-grantee="{user}"]'))
        await expect(row).to_be_visible(timeout=20_000)
        await expect(row).to_contain_text(f"with {display} (cernbox.test)")
        await expect(row).to_have_attribute("data-role", role)
        await expect(row.locator(".cs3collab-RowDetails")).to_contain_text(role)
    await screenshot(einstein, "shared-by-me")
    # Manage opens the Share dialog of that file
    await sample.and_(panel(einstein).locator('[data-grantee="marie"]')).locator(".cs3collab-Manage").click()
    await expect(einstein.page.locator(".jp-Dialog-header")).to_have_text(f"Share {SAMPLE_NAME}")
    await expect(einstein.page.locator(
        '.jp-Dialog .cs3collab-ShareEntry[data-grantee="marie@cernbox.test"] .cs3collab-ShareEntryRole'
    )).to_have_value("editor")
    await einstein.page.locator(".jp-Dialog-footer .jp-mod-accept").click()
    await expect(einstein.page.locator(".jp-Dialog")).to_have_count(0)


async def test_a_share_from_the_dialog_reaches_marie_and_a_revocation_takes_it_away(pages, stack, screenshot):
    """The issue's whole flow, through the UI on both sides: einstein shares from
    the file browser's context menu; the file waits in marie's "Shared with me";
    she accepts it and it is in her "Shared with me" folder; einstein revokes;
    it is gone from both her lists."""
    einstein, marie = pages["einstein"], pages["marie"]
    name = f"via-dialog-{uuid.uuid4().hex[:6]}.ipynb"
    owner = await stack.session("einstein")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("shared = True")], metadata=sample_metadata())
    await owner.files.upload(f"{await owner.get_home()}/{name}", nbformat.writes(notebook).encode())

    # einstein: My files (shown afresh), right click, Share…, Marie Curie as editor
    await show(einstein, "by-me")
    await show(einstein, "mine")
    await my_file(einstein, name).click(button="right", timeout=20_000)
    await einstein.page.locator('.lm-Menu-item[data-command="cs3collab:share"]').click()
    dialog = einstein.page.locator(".jp-Dialog .cs3collab-ShareDialog")
    await dialog.locator(".cs3collab-ShareSearch").fill("mar")
    await dialog.locator(".cs3collab-ShareResult", has_text="Marie Curie").click()
    await dialog.locator(".cs3collab-ShareRole").select_option("editor")
    await dialog.locator(".cs3collab-ShareAdd").click()
    entry = dialog.locator('.cs3collab-ShareEntry[data-grantee="marie@cernbox.test"]')
    await expect(entry.locator(".cs3collab-ShareEntryRole")).to_have_value("editor")
    await screenshot(einstein, "shared-from-dialog")

    # marie: it waits in her "Shared with me", she accepts, it is in her "Shared with me" folder
    await show(marie, "with-me")
    await panel(marie).locator(".cs3collab-Refresh").first.click()
    row = received(marie, name)
    await expect(row).to_have_attribute("data-state", "pending", timeout=20_000)
    await row.locator(".cs3collab-Accept").click()
    await expect(row).to_have_attribute("data-state", "accepted")
    await show(marie, "mine")
    if await my_file(marie, "Shared with me").count():
        await my_file(marie, "Shared with me").dblclick()
    await expect(my_file(marie, name)).to_be_visible(timeout=20_000)
    await screenshot(marie, "shared-from-dialog-arrived")

    # einstein revokes in the same dialog
    await entry.locator(".cs3collab-ShareRevoke").click()
    await entry.locator(".cs3collab-ShareRevokeConfirm").click()
    await expect(entry).to_have_count(0)
    await einstein.page.locator(".jp-Dialog-footer .jp-mod-accept").click()

    # marie: gone from her "Shared with me" list and from her folder
    await show(marie, "with-me")
    await panel(marie).locator(".cs3collab-Refresh").first.click()
    await expect(received(marie, name)).to_have_count(0, timeout=20_000)
    await show(marie, "mine")  # shown afresh: the folder is listed again
    await expect(my_file(marie, SAMPLE_NAME)).to_be_visible(timeout=20_000)
    await expect(my_file(marie, name)).to_have_count(0, timeout=20_000)
    await screenshot(marie, "revoked-gone")


async def test_file_info_from_the_context_menu(pages, stack, screenshot):
    einstein = pages["einstein"]
    page = einstein.page
    await show(einstein, "mine")
    item = my_file(einstein, SAMPLE_NAME)
    # einstein opens the notebook: its room takes the cs3collab lock
    await item.dblclick()
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    await expect(notebook.locator(".jp-Cell").first).to_contain_text("Detector calibration", timeout=LOAD_TIMEOUT_MS)
    await expect(notebook.locator(".cs3collab-StatusChip")).to_contain_text("Live", timeout=20_000)
    owner = await stack.session("einstein")
    # the room may save once more meanwhile (JupyterLab writes the kernel's language_info)
    versions = len(await owner.versions.list(stack.sample))
    size = (await owner.files.stat(stack.sample)).size

    await item.click(button="right")
    await page.locator(".lm-Menu-item", has_text="File info").click()
    dialog = page.locator(".jp-Dialog .cs3collab-FileInfo")
    field = lambda name: dialog.locator(f'.cs3collab-FileInfoRow[data-field="{name}"] dd')  # noqa: E731
    await expect(field("owner")).to_have_text("Albert Einstein (cernbox.test)", timeout=20_000)
    # the size the file had when the dialog asked: before or after that one more save
    sizes = {size, (await owner.files.stat(stack.sample)).size}
    await expect(field("size")).to_have_text(re.compile("^(" + "|".join(re.escape(human(s)) for s in sizes) + ")$"))
    await expect(field("modified")).to_have_text(re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d$"))
    await expect(field("permissions")).to_contain_text("Owner: read, write")
    await expect(field("lock")).to_contain_text("Locked by cs3collab (live editing)")
    await expect(field("shares")).to_contain_text("Marie Curie (cernbox.test): editor")
    await expect(field("shares")).to_contain_text("Richard Feynman (cernbox.test): viewer")
    await expect(field("versions")).to_have_text(re.compile(r"^(No earlier versions|\d+ versions?)$"))
    shown = (await field("versions").text_content()).split()[0]
    assert (0 if shown == "No" else int(shown)) >= versions
    await screenshot(einstein, "file-info")
    await page.locator(".jp-Dialog").get_by_role("button", name="Close").click()
    await expect(page.locator(".jp-Dialog")).to_have_count(0)
