"""The labextension in a real browser: Debian's chromium on einstein's,
marie's and richard's JupyterLab, the demo's shared notebook open in each.

What is asserted is what a user sees: the presence bar in the notebook
toolbar shows everyone in the room with their role (einstein the owner,
marie an editor, richard a viewer), the status chip says "Live · 3 people"
to an editor and "Read-only: you are a viewer" to richard, and the version
history panel (right sidebar) shows the version einstein's edit made, its author by
name, previews an old version read-only and tags the current state; all of
it through the Jupyter server's /api/cs3collab proxy to the collaboration
service. Screenshots go to ``test-artifacts/e2e/labextension/``.

Waits are Playwright's auto-waiting expectations, never sleeps.
"""

from __future__ import annotations

import re
import uuid

import anyio
from playwright.async_api import expect

from tests.e2e.conftest import DISPLAY_NAMES, module_screenshots

CODE_CELL = 1
ACTIVE = re.compile(r"\bjp-mod-active\b")
BAR = ".jp-NotebookPanel:not(.lm-mod-hidden) .cs3collab-PresenceBar"
SAVE_TIMEOUT_MS = 30_000
KERNEL_TIMEOUT_MS = 90_000  # the shared kernel starts in its sandbox on a loaded 2-core machine
"""The service saves after 1 s without edits; the panel refreshes on its ``cs3collab:saved``."""


screenshot = module_screenshots("labextension")


def avatar(tab, user: str):
    return tab.page.locator(f'{BAR} .cs3collab-Avatar[data-username^="{user}@"]')


def chip(tab):
    return tab.page.locator(f"{BAR} .cs3collab-StatusChip")


async def test_presence_bar_shows_everyone_with_their_role(tabs, screenshot):
    einstein, marie, richard = tabs["einstein"], tabs["marie"], tabs["richard"]

    # einstein sees all three, each with name, institution and role on hover
    for user, role in (("einstein", "owner"), ("marie", "editor"), ("richard", "viewer")):
        await expect(avatar(einstein, user)).to_have_attribute("data-role", role, timeout=20_000)
        await expect(avatar(einstein, user)).to_have_attribute("title", f"{DISPLAY_NAMES[user]}" + (
            " (you)" if user == "einstein" else "") + f" · cernbox.test · {role}")
    await expect(avatar(einstein, "einstein")).to_have_text("AE")
    await expect(chip(einstein)).to_have_text("Live · 3 people")
    await screenshot(einstein, "presence-bar")

    # marie sees einstein as an editor and herself first
    await expect(avatar(marie, "einstein")).to_have_attribute("data-role", "owner", timeout=20_000)
    await expect(avatar(marie, "richard")).to_have_attribute("data-role", "viewer")
    await expect(marie.page.locator(f"{BAR} .cs3collab-Avatar").first).to_have_attribute(
        "data-username", "marie@cernbox.test"
    )
    await expect(chip(marie)).to_have_text("Live · 3 people")
    await screenshot(marie, "presence-bar")

    # richard is told he is a viewer (the service's role message)
    await expect(chip(richard)).to_have_text("Read-only: you are a viewer", timeout=20_000)
    await expect(chip(richard)).to_have_attribute("data-kind", "viewer")
    await screenshot(richard, "viewer-chip")


async def test_clicking_an_avatar_goes_to_that_persons_cell(tabs):
    einstein, marie = tabs["einstein"], tabs["marie"]
    # marie puts her cursor into the code cell while einstein is in the title cell
    await marie.editor(CODE_CELL).click()
    await einstein.cell(0).click()
    await expect(einstein.cell(0)).to_have_class(ACTIVE)
    # einstein's tab knows where she is: her marker is on that cell (her cursor reached him)
    await expect(einstein.cell(CODE_CELL).locator(".cs3collab-CellPresence")).to_have_attribute(
        "data-usernames", re.compile(r"\bmarie@"), timeout=20_000
    )
    # einstein clicks marie's avatar: the cell with her cursor becomes his active cell
    await avatar(einstein, "marie").click()
    await expect(einstein.cell(CODE_CELL)).to_have_class(ACTIVE)


async def test_history_panel_shows_the_version_an_edit_made(tabs, stack, screenshot, cs3_text):
    einstein = tabs["einstein"]
    page = einstein.page
    await page.locator('.jp-SideBar .lm-TabBar-tab[title="Version history"]').click()
    panel = page.locator("#cs3collab-history")
    versions = panel.locator(".cs3collab-Version")
    await expect(panel.locator(".cs3collab-HistoryPath")).to_have_text("analysis.ipynb")
    await expect(versions.first).to_be_visible(timeout=20_000)

    # einstein edits: the room saves a new CS3 version ...
    line = f"# history: {uuid.uuid4().hex[:8]}"
    await einstein.type_at_end(CODE_CELL, line)
    owner = await stack.session("einstein")
    with anyio.fail_after(SAVE_TIMEOUT_MS / 1000):  # CS3 has no push: a bounded poll of the file
        while line not in await cs3_text():
            await anyio.sleep(0.2)
    # ... and the panel, told by the service's cs3collab:saved, lists it first, authored by him
    # (no click on Refresh; the etag is re-read in case a later save of the same edit followed)
    newest = versions.first
    with anyio.fail_after(SAVE_TIMEOUT_MS / 1000):
        while (await newest.get_attribute("data-etag")) != (await owner.files.stat(stack.sample)).etag:
            await anyio.sleep(0.2)
    await expect(newest.locator(".cs3collab-VersionTime")).to_contain_text("current")
    await expect(newest.locator(".cs3collab-VersionAuthors")).to_contain_text(DISPLAY_NAMES["einstein"])
    await expect(panel.locator(".cs3collab-LoadMore")).to_be_hidden()  # all of them fit on one page
    await screenshot(einstein, "history-new-version")

    # the oldest version (the seeded notebook) previews read-only, without einstein's line
    assert await versions.count() >= 2
    await versions.last.locator(".cs3collab-Preview").click()
    dialog = page.locator(".jp-Dialog")
    await expect(dialog.locator(".cs3collab-PreviewCell").first).to_contain_text("Detector calibration")
    await expect(dialog).not_to_contain_text(line)
    # with its outputs, rendered by JupyterLab's rendermime (read-only)
    await expect(dialog.locator(".cs3collab-PreviewOutput[data-mime-type='text/plain']")).to_contain_text(
        "[-0.671, 0.022, 0.243]"
    )
    await screenshot(einstein, "history-preview")
    await dialog.get_by_role("button", name="Close").click()
    await expect(dialog).to_have_count(0)

    # einstein tags the current state: the tag shows on the newest entry
    name = f"sent to referee {uuid.uuid4().hex[:4]}"
    await panel.locator(".cs3collab-TagCurrent").click()
    await page.locator(".jp-Dialog input.cs3collab-TagName").fill(name)
    await page.locator(".jp-Dialog").get_by_role("button", name="Tag").click()
    await expect(versions.first.locator(".cs3collab-Tag", has_text=name)).to_be_visible(timeout=20_000)
    await screenshot(einstein, "history-tagged")


def _checkpoint_made(response) -> bool:
    """JupyterLab's checkpoint after a save (POST .../checkpoints), the end of its save command."""
    return response.request.method == "POST" and response.url.split("?")[0].endswith("/checkpoints")


async def test_ctrl_s_says_whether_a_new_version_was_saved(tabs, screenshot):
    einstein = tabs["einstein"]
    page = einstein.page
    # the editors' tabs are connected to the shared kernel: JupyterLab writes the kernel's
    # kernelspec and language_info into the notebook when it connects, a change that is saved
    # as a version like any other; "nothing changed" below must mean nobody changed anything
    for user in ("einstein", "marie"):
        indicator = tabs[user].notebook.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]')
        await expect(indicator).to_have_count(1, timeout=KERNEL_TIMEOUT_MS)
    line = f"# saved by hand: {uuid.uuid4().hex[:8]}"
    await einstein.type_at_end(CODE_CELL, line)
    # the whole line reached the room (marie has it) before the save: on a loaded
    # machine a save of half the line would be followed by an autosave of the rest,
    # and the second Ctrl+S would then rightly report that new version
    await expect(tabs["marie"].editor(CODE_CELL)).to_contain_text(line, timeout=SAVE_TIMEOUT_MS)
    # JupyterLab ignores Ctrl+S while its previous save of the document is under way, which
    # ends with a checkpoint after the service's reply (our notice) came: a person pressing
    # again at once gets nothing, so the second press waits for that checkpoint
    async with page.expect_response(_checkpoint_made, timeout=SAVE_TIMEOUT_MS) as checkpoint:
        await page.keyboard.press("Control+s")
        saved = page.get_by_text(re.compile(r"^Saved as a new CS3 version \(today \d{2}:\d{2}:\d{2}\)$"))
        await expect(saved.first).to_be_visible(timeout=SAVE_TIMEOUT_MS)
    await checkpoint.value
    await screenshot(einstein, "ctrl-s-saved")
    # pressed again with nothing new: it says so
    await page.keyboard.press("Control+s")
    try:
        await expect(page.get_by_text("Nothing changed since the last CS3 version").first).to_be_visible(
            timeout=SAVE_TIMEOUT_MS
        )
    finally:
        await screenshot(einstein, "ctrl-s-nothing-changed")
