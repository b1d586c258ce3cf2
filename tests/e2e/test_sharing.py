"""Sharing from JupyterLab in a real browser (Debian's chromium), on the
demo's stack: einstein opens the Share dialog from the file browser's
context menu, finds Marie Curie, shares as editor, changes her role, revokes;
what marie's own JupyterLab lists follows each step. The notebook toolbar's
Share button opens the same dialog, and a refusal from CS3 is shown in
words. Screenshots go to ``test-artifacts/e2e/sharing/``.

Waits are Playwright's auto-waiting expectations, never sleeps.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import nbformat
import pytest
from cs3.sharing.collaboration.v1beta1 import resources_pb2 as sharing
from playwright.async_api import Page, expect

from cs3collab.cs3.roles import can_write
from cs3collab.cs3.shares import user_grantee
from cs3collab.demo import SAMPLE_NAME
from tests.e2e.conftest import ARTIFACTS, LOAD_TIMEOUT_MS, module_screenshots, new_tab, Tab

DIALOG = ".jp-Dialog .cs3collab-ShareDialog"


screenshot = module_screenshots("sharing")


@contextlib.asynccontextmanager
async def lab_tab(stack, browser_driver, profile, user: str, folder: str = "") -> AsyncIterator[Tab]:
    """``user``'s JupyterLab in a browser of its own, the file browser on ``folder``."""
    async with contextlib.AsyncExitStack() as exits:
        tab = await new_tab(browser_driver, profile, user, exits)
        page = tab.page
        try:
            lab = stack.labs[user]
            where = f"/lab/tree/{quote(folder)}" if folder else "/lab"
            await page.goto(f"{lab.url}{where}?token={lab.token}")
            await expect(page.locator("#filebrowser .jp-DirListing-content")).to_be_visible(timeout=LOAD_TIMEOUT_MS)
            yield tab
        finally:
            (ARTIFACTS / "sharing").mkdir(parents=True, exist_ok=True)
            (ARTIFACTS / "sharing" / f"console-{user}.log").write_text("\n".join(tab.console) + "\n")


@pytest.fixture(scope="module")
async def einstein_tab(stack, browser_driver, tmp_path_factory) -> AsyncIterator[Tab]:
    """einstein's JupyterLab on his home folder."""
    async with lab_tab(stack, browser_driver, tmp_path_factory.mktemp("share-einstein"), "einstein") as tab:
        yield tab


@contextlib.asynccontextmanager
async def contents_of(stack, user: str) -> AsyncIterator[httpx.AsyncClient]:
    lab = stack.labs[user]
    async with httpx.AsyncClient(base_url=lab.url, headers={"Authorization": f"token {lab.token}"}) as http:
        yield http


async def shared_with(stack, user: str) -> dict[str, bool]:
    """What ``user``'s own JupyterLab lists in "Shared with me": name → writable."""
    async with contents_of(stack, user) as http:
        answer = await http.get("/api/contents/Shared with me", params={"content": 1})
        answer.raise_for_status()
        return {item["name"]: item["writable"] for item in answer.json()["content"]}


async def notebook_in_home(stack, name: str) -> str:
    """A notebook in einstein's home, with a kernelspec (else JupyterLab asks for a kernel first)."""
    einstein = await stack.session("einstein")
    home = await einstein.get_home()
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("x = 1")],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    await einstein.files.upload(f"{home}/{name}", nbformat.writes(notebook).encode())
    return f"{home}/{name}"


async def open_from_file_browser(page: Page, name: str) -> None:
    item = page.locator("#filebrowser .jp-DirListing-item", has=page.locator(".jp-DirListing-itemText", has_text=name))
    await expect(item).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    await item.click(button="right")
    await page.locator('.lm-Menu-item[data-command="cs3collab:share"]').click()
    await expect(page.locator(DIALOG)).to_be_visible()


def entry(page: Page, grantee: str):
    return page.locator(f'{DIALOG} .cs3collab-ShareEntry[data-grantee="{grantee}"]')


async def test_share_change_and_revoke_from_the_file_browser(stack, einstein_tab, screenshot):
    page = einstein_tab.page
    name = f"shared-{uuid.uuid4().hex[:6]}.ipynb"
    await notebook_in_home(stack, name)
    await page.locator("#filebrowser .jp-ToolbarButtonComponent[title^='Refresh']").click()
    await open_from_file_browser(page, name)
    dialog = page.locator(DIALOG)
    await expect(page.locator(".jp-Dialog-header")).to_have_text(f"Share {name}")
    await expect(dialog.locator(".cs3collab-ShareEmpty")).to_have_text(f"{name} is not shared with anyone yet.")

    # search "mar": Marie Curie, an account here (with her full address); pick her as editor and share
    await dialog.locator(".cs3collab-ShareSearch").fill("mar")
    marie_result = dialog.locator(".cs3collab-ShareResult", has_text="Marie Curie")
    await expect(marie_result.locator(".cs3collab-ShareKind")).to_have_text("account at cernbox.test")
    await expect(marie_result.locator(".cs3collab-ShareAddress")).to_have_text("marie@cernbox.test")
    await screenshot(einstein_tab, "search-results")
    await marie_result.click()
    await dialog.locator(".cs3collab-ShareRole").select_option("editor")
    await dialog.locator(".cs3collab-ShareAdd").click()
    marie = entry(page, "marie@cernbox.test")
    await expect(marie.locator(".cs3collab-ShareName")).to_have_text("Marie Curie")
    await expect(marie.locator(".cs3collab-ShareEntryRole")).to_have_value("editor")
    await expect(dialog.locator(".cs3collab-ShareError")).to_be_hidden()
    await screenshot(einstein_tab, "shared-with-marie")

    # marie received it (pending, as Reva does); once she accepts it, her JupyterLab lists it, writable
    marie_cs3 = await stack.session("marie")
    [got] = [s for s in await marie_cs3.shares.list_received()
             if (await marie_cs3.files.stat(s.share.resource_id)).name == name]
    assert got.state == sharing.SHARE_STATE_PENDING
    await marie_cs3.shares.update_received(got.share.id.opaque_id, state=sharing.SHARE_STATE_ACCEPTED)
    assert (await shared_with(stack, "marie")).get(name) is True

    # einstein makes her a viewer: her JupyterLab now opens it read-only
    await marie.locator(".cs3collab-ShareEntryRole").select_option("viewer")
    await expect(marie.locator(".cs3collab-ShareEntryRole")).to_be_enabled()  # the change came back
    await expect(marie.locator(".cs3collab-ShareEntryRole")).to_have_value("viewer")
    assert not can_write((await marie_cs3.files.stat(got.share.resource_id)).permission_set)
    assert (await shared_with(stack, "marie")).get(name) is False

    # einstein revokes, confirming in place: the entry goes, and marie loses the file
    await marie.locator(".cs3collab-ShareRevoke").click()
    await expect(marie.locator(".cs3collab-ShareConfirmText")).to_have_text("Remove Marie Curie's access?")
    await screenshot(einstein_tab, "confirm-revoke")
    await marie.locator(".cs3collab-ShareRevokeConfirm").click()
    await expect(marie).to_have_count(0)
    await expect(dialog.locator(".cs3collab-ShareEmpty")).to_be_visible()
    assert name not in await shared_with(stack, "marie")
    await page.locator(".jp-Dialog-footer .jp-mod-accept").click()
    await expect(dialog).to_have_count(0)


async def test_toolbar_button_and_an_error_in_words(stack, einstein_tab, screenshot):
    page = einstein_tab.page
    name = f"toolbar-{uuid.uuid4().hex[:6]}.ipynb"
    path = await notebook_in_home(stack, name)
    einstein = await stack.session("einstein")
    marie_cs3 = await stack.session("marie")
    await einstein.shares.create(path, user_grantee(marie_cs3.user.id), "viewer")  # shared outside the dialog
    lab = stack.labs["einstein"]
    await page.goto(f"{lab.url}/lab/tree/{name}?token={lab.token}")
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    await expect(notebook.locator(".jp-Cell").first).to_contain_text("x = 1", timeout=LOAD_TIMEOUT_MS)

    await notebook.locator(".cs3collab-ShareButton").click()
    dialog = page.locator(DIALOG)
    await expect(page.locator(".jp-Dialog-header")).to_have_text(f"Share {name}")
    await expect(entry(page, "marie@cernbox.test").locator(".cs3collab-ShareEntryRole")).to_have_value("viewer")

    # Marie shows up as having access; sharing with her again is refused, in words
    await dialog.locator(".cs3collab-ShareSearch").fill("marie")
    result = dialog.locator(".cs3collab-ShareResult", has_text="Marie Curie")
    await expect(result.locator(".cs3collab-ShareHas")).to_have_text("has access")
    await result.click()
    await dialog.locator(".cs3collab-ShareAdd").click()
    await expect(dialog.locator(".cs3collab-ShareError")).to_have_text(f"Marie Curie already has access to {name}")
    await expect(entry(page, "marie@cernbox.test")).to_have_count(1)
    await screenshot(einstein_tab, "error-in-words")
    await page.keyboard.press("Escape")
    await expect(dialog).to_have_count(0)


async def test_a_viewer_sees_the_list_read_only_and_why(stack, browser_driver, screenshot, tmp_path):
    """richard is a viewer of the demo notebook (shared with him by einstein)."""
    async with lab_tab(stack, browser_driver, tmp_path / "profile", "richard", folder="Shared with me") as richard:
        page = richard.page
        await open_from_file_browser(page, SAMPLE_NAME)
        dialog = page.locator(DIALOG)
        await expect(dialog.locator(".cs3collab-ShareNotice")).to_have_text(
            f"You cannot share {SAMPLE_NAME}: you are a viewer of it, and only its owner or people allowed to share can."
        )
        await expect(dialog.locator(".cs3collab-ShareOwner")).to_have_text("Owner: Albert Einstein (cernbox.test)")
        await expect(dialog.locator(".cs3collab-ShareSearch")).to_be_hidden()
        await expect(dialog.locator(".cs3collab-ShareAdd")).to_be_hidden()
        await screenshot(richard, "viewer-read-only")
