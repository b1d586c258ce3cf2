"""Read-only means read-only in the browser (issue 13, point 1), in Debian's
chromium on the demo's stack.

richard is a viewer of einstein's ``analysis.ipynb``: in his own tab, typing,
``b``, ``a``, ``x``, ``dd``, ``m`` and Shift+Enter change nothing (not only at
the service: his tab keeps the same cells and text as everyone else's), and
JupyterLab's own read-only indicator says so. When einstein makes him an
editor, his tab becomes editable without a reload (the indicator goes, his
typing reaches einstein), and when einstein makes him a viewer again it turns
read-only again. A cell dragged with the mouse by its prompt (the notebook's
drag handle) does not move in his tab either, while the same gesture moves it
for einstein. Screenshots go to ``test-artifacts/e2e/readonly/``.
"""

from __future__ import annotations

import re
import uuid

from playwright.async_api import expect

from tests.e2e.conftest import Tab, module_screenshots

BAR = ".jp-NotebookPanel:not(.lm-mod-hidden) .cs3collab-PresenceBar"
INDICATOR = '.jp-Toolbar-item[data-jp-item-name="read-only-indicator"]'
CODE_CELL = 1
ACTIVE = re.compile(r"\bjp-mod-active\b")
RENDERED = re.compile(r"\bjp-mod-rendered\b")
ROLE_TIMEOUT_MS = 40_000
"""A role change reaches the tab within the service's access re-check (5 s) plus a loaded machine's delays."""

screenshot = module_screenshots("readonly")




def chip(tab: Tab):
    return tab.page.locator(f"{BAR} .cs3collab-StatusChip")


def inputs(tab: Tab):
    return tab.notebook.locator(".jp-Notebook .jp-Cell .jp-InputArea")


LAID_OUT = """nb => {
    const areas = [...nb.querySelectorAll('.jp-Notebook .jp-Cell .jp-InputArea')];
    return areas.length > 0 && areas.every(a => a.innerText.trim() !== '');
}"""


async def cell_texts(tab: Tab) -> list[str]:
    """What each cell shows, once every cell shows something: innerText is empty
    while the notebook is not laid out (once seen in both tabs at the same moment),
    and every cell of the sample notebook has text."""
    await tab.page.wait_for_function(LAID_OUT, arg=await tab.notebook.element_handle(), timeout=ROLE_TIMEOUT_MS)
    return await inputs(tab).evaluate_all("areas => areas.map(a => a.innerText)")


async def set_richards_role(stack, role: str) -> None:
    owner = await stack.session("einstein")
    info = await owner.files.stat(stack.sample)
    richard_id = (await stack.session("richard")).user.id.opaque_id
    (share,) = [s for s in await owner.shares.list(resource_id=info.id) if s.grantee.user_id.opaque_id == richard_id]
    await owner.shares.update_role(share.id.opaque_id, role)


async def expect_indicator(tab: Tab, shown: bool) -> None:
    """JupyterLab's read-only indicator in the notebook's toolbar, or its overflow
    ("More commands", which holds what does not fit at this width)."""
    more = tab.notebook.get_by_role("button", name="More commands")
    if await more.count():
        await more.first.click()
    indicator = tab.page.locator(INDICATOR)
    if shown:
        await expect(indicator).to_be_visible()
        await expect(indicator).to_contain_text("notebook is read-only")
    else:
        await expect(indicator).to_have_count(0)
    if await more.count():
        await more.first.click()


async def assert_refuses_changes(richard: Tab, einstein: Tab) -> None:
    """richard types and presses the keys that change a notebook: nothing changes, in his tab either."""
    for tab in (richard, einstein):
        # the title cell is shown rendered (JupyterLab renders markdown cells after the
        # notebook is on screen; until then its source shows, and the texts differ)
        await expect(tab.cell(0)).to_have_class(RENDERED)
    before = await cell_texts(richard)
    assert before == await cell_texts(einstein)
    await richard.editor(CODE_CELL).click()
    await richard.page.keyboard.press("Control+End")
    await richard.page.keyboard.type(f"typed by a viewer {uuid.uuid4().hex[:6]}")
    await richard.page.keyboard.press("Enter")
    await richard.page.keyboard.press("Shift+Enter")  # run (and select the next cell)
    await richard.page.keyboard.press("Escape")  # command mode
    await richard.cell(0).click()
    # keys reach the notebook: "j" selects the next cell (a command that changes nothing)
    await richard.page.keyboard.press("j")
    await expect(richard.cell(CODE_CELL)).to_have_class(ACTIVE)
    for keys in (["b"], ["a"], ["x"], ["d", "d"], ["m"], ["y"], ["Shift+Enter"], ["Control+v"], ["z"]):
        for key in keys:
            await richard.page.keyboard.press(key)
    # and the toolbar's buttons are disabled
    insert = richard.notebook.locator('.jp-Toolbar-item[data-jp-item-name="insert"] button')
    if await insert.count():
        await expect(insert).to_be_disabled()
    assert await cell_texts(richard) == before
    assert await cell_texts(einstein) == before


async def drag_cell(tab: Tab, source: int, target: int) -> None:
    """Press the mouse on cell ``source``'s prompt (where JupyterLab starts a cell
    drag), move onto cell ``target``'s prompt and let go, as a person would; the
    notebook's drag image shows that a drag really started."""
    page = tab.page
    start = await tab.cell(source).locator(".jp-InputPrompt").first.bounding_box()
    end = await tab.cell(target).locator(".jp-InputPrompt").first.bounding_box()
    assert start and end
    x0, y0 = start["x"] + start["width"] / 2, start["y"] + start["height"] / 2
    await page.mouse.move(x0, y0)
    await page.mouse.down()
    await page.mouse.move(x0, y0 + 12, steps=4)  # past the notebook's drag threshold (5 px)
    await expect(page.locator(".jp-dragImage")).to_have_count(1)
    await page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2, steps=8)
    await page.mouse.up()
    await expect(page.locator(".jp-dragImage")).to_have_count(0)


async def test_a_viewer_cannot_change_the_notebook_in_his_own_tab(tabs, screenshot):
    einstein, richard = tabs["einstein"], tabs["richard"]
    await expect(chip(richard)).to_have_text("Read-only: you are a viewer", timeout=ROLE_TIMEOUT_MS)
    await expect_indicator(richard, shown=True)
    await expect_indicator(einstein, shown=False)
    await assert_refuses_changes(richard, einstein)
    await screenshot(richard, "viewer-typed-nothing-changed")

    # a viewer drags the first cell below the second: nothing moves, in his tab or anyone's
    before = await cell_texts(richard)
    await drag_cell(richard, 0, 2)
    assert await cell_texts(richard) == before
    assert await cell_texts(einstein) == before
    # the same gesture moves it for an editor, and richard's tab follows; then back
    await drag_cell(einstein, 0, 2)
    moved = [before[1], before[0], *before[2:]]
    await expect(inputs(einstein)).to_have_text(moved, use_inner_text=True)
    await expect(inputs(richard)).to_have_text(moved, use_inner_text=True, timeout=ROLE_TIMEOUT_MS)
    await drag_cell(einstein, 1, 0)
    await expect(inputs(einstein)).to_have_text(before, use_inner_text=True)
    await expect(inputs(richard)).to_have_text(before, use_inner_text=True, timeout=ROLE_TIMEOUT_MS)


async def test_a_role_change_reaches_the_tab_without_a_reload(tabs, stack, screenshot):
    einstein, richard = tabs["einstein"], tabs["richard"]
    await expect(chip(richard)).to_have_text("Read-only: you are a viewer", timeout=ROLE_TIMEOUT_MS)
    # his CS3 panel is open on "Shared with me", where the row names his role
    await richard.page.locator('.jp-SideBar .lm-TabBar-tab[title="CS3 files"]').click()
    await richard.page.locator('#cs3collab-browser .cs3collab-BrowserTab[data-tab="with-me"]').click()
    row = richard.page.locator('#cs3collab-browser .cs3collab-ReceivedShare[data-name="analysis.ipynb"]')
    await expect(row).to_contain_text("viewer", timeout=ROLE_TIMEOUT_MS)
    try:
        await set_richards_role(stack, "editor")
        # within the access re-check: his chip, JupyterLab's indicator and his editor follow
        await expect(chip(richard)).to_have_text(re.compile(r"^Live · "), timeout=ROLE_TIMEOUT_MS)
        await expect_indicator(richard, shown=False)
        await expect(row).to_contain_text("editor")
        line = f"# now an editor {uuid.uuid4().hex[:6]}"
        await richard.type_at_end(CODE_CELL, line)
        await expect(richard.editor(CODE_CELL)).to_contain_text(line)
        await expect(einstein.editor(CODE_CELL)).to_contain_text(line, timeout=ROLE_TIMEOUT_MS)
        await screenshot(richard, "made-editor-typed")
    finally:
        await set_richards_role(stack, "viewer")
    await expect(chip(richard)).to_have_text("Read-only: you are a viewer", timeout=ROLE_TIMEOUT_MS)
    await expect_indicator(richard, shown=True)
    await expect(row).to_contain_text("viewer")
    await richard.page.keyboard.press("Escape")
    await assert_refuses_changes(richard, einstein)
    await screenshot(richard, "viewer-again")


async def test_a_revoked_editor_gets_one_dialog_in_words_and_saves_a_copy(tabs, stack, screenshot):
    einstein, marie = tabs["einstein"], tabs["marie"]
    await expect(chip(marie)).to_have_text(re.compile(r"^Live · "), timeout=ROLE_TIMEOUT_MS)
    before = await cell_texts(marie)
    owner = await stack.session("einstein")
    her = await stack.session("marie")
    info = await owner.files.stat(stack.sample)
    (share,) = [s for s in await owner.shares.list(resource_id=info.id)
                if s.grantee.user_id.opaque_id == her.user.id.opaque_id]
    await owner.shares.remove(share.id.opaque_id)

    # one dialog, in words: who removed her access to which file; no ids, no "Session expired"
    dialog = marie.page.locator(".jp-Dialog")
    await expect(dialog.locator(".cs3collab-RevokedSentence")).to_have_text(
        "Albert Einstein removed your access to analysis.ipynb.", timeout=ROLE_TIMEOUT_MS
    )
    await expect(dialog).to_have_count(1)
    await expect(marie.page.locator("body")).not_to_contain_text("Session expired")
    await screenshot(marie, "revoked-dialog")

    # one click keeps a copy of what she sees in her own files
    await dialog.get_by_role("button", name="Save a copy to my files").click()
    toast = marie.page.get_by_text(re.compile(r"Saved a copy|could not be saved"))
    await expect(toast).to_have_text('Saved a copy as "analysis (copy).ipynb" in My files', timeout=ROLE_TIMEOUT_MS)
    copy = f"{await her.get_home()}/analysis (copy).ipynb"
    assert "Detector calibration" in (await her.files.download(copy)).decode()
    await screenshot(marie, "revoked-copy-saved")

    # the document stays on screen, read-only: typing and b change nothing; Ctrl+S says nothing of folders
    await expect(chip(marie)).to_have_attribute("data-kind", "disconnected")
    await expect_indicator(marie, shown=True)
    await marie.editor(CODE_CELL).click()
    await marie.page.keyboard.type("typed after the revocation")
    await marie.page.keyboard.press("Escape")
    await marie.page.keyboard.press("b")
    await marie.page.keyboard.press("Control+s")
    assert await cell_texts(marie) == before
    await expect(marie.page.locator("body")).not_to_contain_text("virtual folder")
    await screenshot(marie, "revoked-read-only")
