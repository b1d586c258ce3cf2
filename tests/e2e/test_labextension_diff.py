"""Who is in which cell, the diff of a version against the live notebook, and
a live restore, in a real browser: Debian's chromium on einstein's, marie's
and richard's JupyterLab, the demo's shared notebook open in each.

What is asserted is what a user sees: marie's avatar on the cell where her
cursor is (and on no other), following her to another cell; the history
panel's "Diff" opening nbdime's notebook diff with the edited cell marked
changed, showing the typed line, and a cell added in the live document
marked added; and einstein restoring an old version while marie has the
notebook open: her notebook shows the old content on the connection it has
(no reload), and the history lists the restore as the new current version.
Screenshots go to ``test-artifacts/e2e/labextension-diff/``.

Waits are Playwright's auto-waiting expectations, never sleeps; the polls of
the file in CS3 (which has no push) are bounded.
"""

from __future__ import annotations

import re
import uuid

import anyio
from playwright.async_api import expect

from tests.e2e.conftest import module_screenshots

TITLE_CELL, CODE_CELL, NOTES_CELL = 0, 1, 2
SAVE_TIMEOUT_S = 30.0
"""The service saves after 1 s without edits; the panel refreshes on its ``cs3collab:saved``."""
SEEDED_LINE = "energies = [0.511, 1.022, 1.275]"
"""A line of the sample notebook's code cell as the demo seeds it (its oldest version)."""


screenshot = module_screenshots("labextension-diff")


def cell_presence(tab, index: int):
    return tab.cell(index).locator(":scope > .cs3collab-CellPresence")


def cell_avatar(tab, index: int, user: str):
    return cell_presence(tab, index).locator(f'.cs3collab-CellAvatar[data-username="{user}@cernbox.test"]')


async def open_history(tab):
    """The version history panel in ``tab``'s right sidebar, with its list loaded."""
    panel = tab.page.locator("#cs3collab-history")
    if not await panel.is_visible():  # its sidebar tab toggles it
        await tab.page.locator('.jp-SideBar .lm-TabBar-tab[title="Version history"]').click()
    await expect(panel.locator(".cs3collab-HistoryPath")).to_have_text("analysis.ipynb")
    await expect(panel.locator(".cs3collab-Version").first).to_be_visible(timeout=20_000)
    return panel


async def wait_until_saved(stack, cs3_text, text: str, *, present: bool = True) -> str:
    """Bounded poll of the file in CS3 until it holds ``text`` (or no longer does); its etag then."""
    owner = await stack.session("einstein")
    with anyio.fail_after(SAVE_TIMEOUT_S):
        while (text in await cs3_text()) != present:
            await anyio.sleep(0.2)
    return (await owner.files.stat(stack.sample)).etag


async def wait_until_listed_first(panel, etag: str) -> None:
    """The panel (told by the service's messages, no Refresh click) lists ``etag`` as the current version."""
    newest = panel.locator(".cs3collab-Version").first
    with anyio.fail_after(SAVE_TIMEOUT_S):
        while (await newest.get_attribute("data-etag")) != etag:
            await anyio.sleep(0.2)
    await expect(newest.locator(".cs3collab-VersionTime")).to_contain_text("current")


async def test_each_cell_shows_who_is_in_it(tabs, screenshot):
    einstein, marie = tabs["einstein"], tabs["marie"]

    # marie clicks into the code cell: einstein sees her avatar there, and only there
    await marie.editor(CODE_CELL).click()
    await expect(cell_avatar(einstein, CODE_CELL, "marie")).to_be_visible(timeout=10_000)
    await expect(cell_avatar(einstein, CODE_CELL, "marie")).to_have_text("MC")
    await expect(cell_avatar(einstein, CODE_CELL, "marie")).to_have_attribute("title", "Marie Curie (cernbox.test) is here")
    await expect(cell_presence(einstein, CODE_CELL)).to_have_attribute("data-usernames", "marie@cernbox.test")
    await expect(cell_avatar(einstein, TITLE_CELL, "marie")).to_have_count(0)
    await expect(cell_avatar(einstein, NOTES_CELL, "marie")).to_have_count(0)
    # nobody sees their own avatar on a cell
    await expect(cell_avatar(marie, CODE_CELL, "marie")).to_have_count(0)
    await screenshot(einstein, "cell-presence-code")

    # she moves into the notes cell (selects it, Enter to edit, clicks into its text): the avatar follows her
    await marie.cell(NOTES_CELL).click()
    await marie.page.keyboard.press("Enter")
    await marie.editor(NOTES_CELL).click()
    await expect(marie.cell(NOTES_CELL).locator(".cm-editor.cm-focused")).to_be_visible()
    await expect(cell_avatar(einstein, NOTES_CELL, "marie")).to_be_visible(timeout=10_000)
    await expect(cell_avatar(einstein, CODE_CELL, "marie")).to_have_count(0)
    await expect(cell_presence(einstein, CODE_CELL)).to_have_count(0)
    await screenshot(einstein, "cell-presence-follows")

    # and einstein's cursor shows on marie's side where he is
    await einstein.editor(CODE_CELL).click()
    await expect(cell_avatar(marie, CODE_CELL, "einstein")).to_have_attribute("title", "Albert Einstein (cernbox.test) is here")


async def test_diff_shows_the_changed_and_the_added_cell(tabs, stack, screenshot, cs3_text):
    einstein = tabs["einstein"]
    page = einstein.page
    panel = await open_history(einstein)
    before = await panel.locator(".cs3collab-Version").first.get_attribute("data-etag")

    # einstein edits the code cell; the room saves it as a new CS3 version
    line = f"# diff: {uuid.uuid4().hex[:8]}"
    await einstein.type_at_end(CODE_CELL, line)
    etag = await wait_until_saved(stack, cs3_text, line)
    await wait_until_listed_first(panel, etag)
    # ... and adds a cell below it, in the live document
    added = f"added live {uuid.uuid4().hex[:8]}"
    await page.keyboard.press("Escape")
    await page.keyboard.press("b")
    new_cell = CODE_CELL + 1
    await einstein.editor(new_cell).click()
    await page.keyboard.type(added)
    await expect(einstein.editor(new_cell)).to_have_text(added)

    # the version from before the edit: "Diff" compares it with the notebook as it is now
    assert before and "'" not in before
    previous = panel.locator(f".cs3collab-Version[data-etag='{before}']")  # CS3 etags carry double quotes
    await previous.locator(".cs3collab-DiffAction").click()
    diff = page.locator(".cs3collab-Diff:not(.lm-mod-hidden)")
    await expect(diff).to_be_visible()
    tab_title = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabLabel")
    await expect(tab_title).to_have_text(re.compile(r"^analysis\.ipynb: version .+ → current$"))
    await expect(diff.locator(".cs3collab-DiffStatus")).to_have_text("2 cells differ", timeout=20_000)

    # nbdime marks the edited cell changed, with einstein's line on the current side ...
    changed = diff.locator(".jp-Cell-diff.jp-Diff-twoway")
    await expect(changed).to_have_count(1)
    await expect(changed).to_contain_text("import math")
    await expect(changed).to_contain_text(line)
    # ... the new cell added, with its text ...
    new = diff.locator(".jp-Cell-diff.jp-Diff-added")
    await expect(new).to_have_count(1)
    await expect(new).to_contain_text(added)
    # ... and the others unchanged
    await expect(diff.locator(".jp-Cell-diff.jp-Diff-unchanged")).to_have_count(2)
    await expect(diff.locator(".jp-Cell-diff.jp-Diff-unchanged").first).to_contain_text("Detector calibration")
    await screenshot(einstein, "diff")

    # "Hide unchanged cells" leaves only what differs
    await diff.get_by_label("Hide unchanged cells").check()
    await expect(diff.locator(".jp-Cell-diff.jp-Diff-unchanged").first).to_be_hidden()
    await expect(changed).to_be_visible()
    await screenshot(einstein, "diff-hide-unchanged")

    # nbdime's own server extension (local-disk and git diffs) is off, as the demo starts JupyterLab
    lab = stack.labs["einstein"]
    nbdime_api = await page.request.get(f"{lab.url}/nbdime/api/isgit?path=analysis.ipynb&token={lab.token}")
    assert nbdime_api.status == 404
    # the extension and nbdime's widgets loaded without errors in the page
    problems = [m for m in einstein.console if m.startswith("[pageerror]") or (
        m.startswith("[error]") and any(word in m.lower() for word in ("cs3collab", "nbdime", "codemirror")))]
    assert problems == []

    # back to the notebook for the next test
    await page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current .lm-TabBar-tabCloseIcon").click()
    await expect(diff).to_have_count(0)
    await expect(einstein.notebook).to_be_visible()


async def test_live_restore_changes_the_other_users_view_without_reload(tabs, stack, screenshot, cs3_text):
    einstein, marie = tabs["einstein"], tabs["marie"]
    page = einstein.page
    panel = await open_history(einstein)
    versions = panel.locator(".cs3collab-Version")

    # marie's tab has the notebook as it is now (edited by the earlier tests, or here)
    line = f"# before restore: {uuid.uuid4().hex[:8]}"
    await einstein.type_at_end(CODE_CELL, line)
    await expect(marie.editor(CODE_CELL)).to_contain_text(line)
    etag = await wait_until_saved(stack, cs3_text, line)
    await wait_until_listed_first(panel, etag)
    count = await versions.count()
    # a mark in marie's page: a reload would lose it
    await marie.page.evaluate("window.__cs3collabNoReload = true")

    # einstein restores the oldest version (the seeded notebook), confirming it
    await versions.last.locator(".cs3collab-Restore").click()
    dialog = page.locator(".jp-Dialog")
    await expect(dialog).to_contain_text("Restore this version?")
    await screenshot(einstein, "restore-confirm")
    await dialog.get_by_role("button", name="Restore").click()
    await expect(dialog).to_have_count(0)

    # marie's notebook shows the old content on the connection it has
    await expect(marie.editor(CODE_CELL)).not_to_contain_text(line, timeout=20_000)
    await expect(marie.editor(CODE_CELL)).to_contain_text(SEEDED_LINE)
    await expect(marie.notebook.locator(".jp-Notebook .jp-Cell")).to_have_count(3)
    assert await marie.page.evaluate("window.__cs3collabNoReload === true"), "marie's page was reloaded"
    # and a short notice says who went back to which version
    await expect(marie.page.get_by_text(re.compile(r"^Albert Einstein restored the version of "))).to_be_visible(
        timeout=20_000
    )
    await screenshot(marie, "restored-live")

    # the restore is saved as a new CS3 version, which the history lists first
    restored = await wait_until_saved(stack, cs3_text, line, present=False)
    assert restored != etag
    await wait_until_listed_first(panel, restored)
    await expect(versions).to_have_count(count + 1)
    await expect(versions.first.locator(".cs3collab-VersionAuthors")).to_contain_text("Albert Einstein")
    # marked as a restore: from which version (its time, to the second), by whom
    await expect(versions.first.locator(".cs3collab-VersionRestored")).to_have_text(
        re.compile(r"^restored from (today|\d{4}-\d{2}-\d{2}) \d{2}:\d{2}:\d{2} by Albert Einstein$")
    )
    await screenshot(einstein, "restored-history")
