"""The labextension's less travelled paths, in Debian's chromium on the
demo's stack: tagging an older version and removing a tag, a long history
that loads more as it is scrolled, and the status chip through a foreign
CS3 lock, a service that dies and comes back, and a revoked share.

What is asserted is what a user sees (tags on the right entry, how many
versions are listed, the chip's words) and, where it matters, what CS3 then
holds. Screenshots go to ``test-artifacts/e2e/labextension-states/``.
Waits are Playwright's auto-waiting expectations; the service's restart is
awaited on its ready line.
"""

from __future__ import annotations

import re
import signal
import uuid
from urllib.parse import quote

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from playwright.async_api import expect

from cs3collab.cs3.shares import ACCEPTED, user_grantee
from tests.e2e.conftest import LOAD_TIMEOUT_MS, module_screenshots, Tab
from tests.support.processes import service

BAR = ".jp-NotebookPanel:not(.lm-mod-hidden) .cs3collab-PresenceBar"
HISTORY_TAB = '.jp-SideBar .lm-TabBar-tab[title="Version history"]'
VERSIONS_SHOWN_FIRST = 20  # the panel's page size (labextension/src/versions.ts PAGE_SIZE)
CHIP_TIMEOUT_MS = 30_000
"""A chip change that waits on the service: its lock poll (2 s), a restart, a reconnect backoff."""


screenshot = module_screenshots("labextension-states")


def chip(tab: Tab):
    return tab.page.locator(f"{BAR} .cs3collab-StatusChip")


def notebook_bytes(title: str, *code: str) -> bytes:
    nb = new_notebook(cells=[new_markdown_cell(f"# {title}"), *(new_code_cell(c) for c in code)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nbformat.writes(nb).encode()


async def open_in_new_tab(tab: Tab, stack, name: str, title: str) -> Tab:
    """``name`` (a contents path of the user's) in a second tab of the same browser, a workspace of its own."""
    page = await tab.page.context.new_page()
    lab = stack.labs[tab.user]
    workspace = re.sub(r"\W", "-", name)
    await page.goto(f"{lab.url}/lab/workspaces/{workspace}/tree/{quote(name)}?token={lab.token}")
    second = Tab(tab.user, page)
    await expect(second.cell(0)).to_contain_text(title, timeout=LOAD_TIMEOUT_MS)
    return second


async def open_history(tab: Tab):
    await tab.page.locator(HISTORY_TAB).click()
    panel = tab.page.locator("#cs3collab-history")
    await expect(panel.locator(".cs3collab-Version").first).to_be_visible(timeout=20_000)
    return panel


async def test_an_older_version_is_tagged_and_the_tag_removed(tabs, stack, screenshot):
    einstein, marie = tabs["einstein"], tabs["marie"]
    owner = await stack.session("einstein")
    # the sample has an older version to tag: einstein's upload makes the current state a new one
    home = stack.sample.rsplit("/", 1)[0]
    path = f"{home}/tagging-{uuid.uuid4().hex[:6]}.ipynb"
    await owner.files.upload(path, notebook_bytes("Tagging", "x = 1"))
    await owner.files.upload(path, notebook_bytes("Tagging", "x = 2"))
    await owner.files.upload(path, notebook_bytes("Tagging", "x = 3"))
    share = await owner.shares.create(path, user_grantee((await stack.session("marie")).user.id), "editor")
    await (await stack.session("marie")).shares.update_received(share.id.opaque_id, state=ACCEPTED)

    mine = await open_in_new_tab(einstein, stack, path.rsplit("/", 1)[1], "Tagging")
    panel = await open_history(mine)
    versions = panel.locator(".cs3collab-Version")
    # newest first; opening may add a version (the kernel's language_info), never below the oldest
    oldest = versions.last
    await expect(oldest.locator(".cs3collab-TagVersion")).to_be_visible()
    name = f"first draft {uuid.uuid4().hex[:4]}"
    await oldest.locator(".cs3collab-TagVersion").click()
    await mine.page.locator(".jp-Dialog input.cs3collab-TagName").fill(name)
    await mine.page.locator(".jp-Dialog").get_by_role("button", name="Tag").click()
    # the tag is on the oldest entry, and only there
    await expect(oldest.locator(".cs3collab-Tag", has_text=name)).to_be_visible(timeout=20_000)
    await expect(panel.locator(".cs3collab-Tag", has_text=name)).to_have_count(1)
    await screenshot(mine, "tagged-older-version")

    # marie, an editor of the same file, sees einstein's tag on the same version
    hers = await open_in_new_tab(marie, stack, f"Shared with me/{path.rsplit('/', 1)[1]}", "Tagging")
    her_panel = await open_history(hers)
    await expect(her_panel.locator(".cs3collab-Version").last.locator(".cs3collab-Tag", has_text=name)).to_be_visible()

    # einstein removes it (after a confirmation): gone from the list, and for marie after a refresh
    await oldest.locator(f'.cs3collab-Tag[data-tag="{name}"] .cs3collab-Untag').click()
    await mine.page.locator(".jp-Dialog").get_by_role("button", name="Remove tag").click()
    await expect(panel.locator(".cs3collab-Tag", has_text=name)).to_have_count(0, timeout=20_000)
    await screenshot(mine, "tag-removed")
    versions_before = await her_panel.locator(".cs3collab-Version").count()
    await her_panel.locator(".cs3collab-Refresh").click()
    await expect(her_panel.locator(".cs3collab-Tag", has_text=name)).to_have_count(0)
    assert await her_panel.locator(".cs3collab-Version").count() >= versions_before  # the version stays
    await hers.page.close()
    await mine.page.close()


async def test_a_long_history_loads_more_as_it_is_scrolled(tabs, stack, screenshot):
    einstein = tabs["einstein"]
    owner = await stack.session("einstein")
    home = stack.sample.rsplit("/", 1)[0]
    name = f"long-history-{uuid.uuid4().hex[:6]}.ipynb"
    path = f"{home}/{name}"
    for n in range(30):
        await owner.files.upload(path, notebook_bytes("Long history", f"step = {n}"))
    listed = len(await owner.versions.list(path)) + 1  # the versions and the current state
    assert listed > VERSIONS_SHOWN_FIRST

    mine = await open_in_new_tab(einstein, stack, name, "Long history")
    panel = await open_history(mine)
    versions = panel.locator(".cs3collab-Version")
    # one page (and the version the open's autosave may add at its head while it shows:
    # a refresh keeps what was shown), not all of them
    await expect(panel.locator(".cs3collab-LoadMore")).to_be_visible()
    first = await versions.count()
    assert VERSIONS_SHOWN_FIRST <= first <= VERSIONS_SHOWN_FIRST + 1 < listed
    await screenshot(mine, "first-page")
    # scrolling to the end of the list (the mouse wheel over the panel) brings the rest, without a click
    await panel.hover()
    await mine.page.mouse.wheel(0, 20_000)
    await expect(panel.locator(".cs3collab-LoadMore")).to_be_hidden(timeout=20_000)
    # all of them (opening may have added one: the kernel's language_info), newest first,
    # without duplicates; the oldest is the first upload
    keys = await versions.evaluate_all("items => items.map(i => i.dataset.key)")
    assert len(keys) >= listed and len(set(keys)) == len(keys)
    await versions.last.locator(".cs3collab-Preview").click()
    await expect(mine.page.locator(".jp-Dialog .cs3collab-PreviewCell").nth(1)).to_have_text("step = 0")
    await screenshot(mine, "all-loaded-oldest-preview")
    await mine.page.locator(".jp-Dialog").get_by_role("button", name="Close").click()
    await mine.page.close()


async def test_a_foreign_lock_shows_read_only_until_it_goes(tabs, stack, screenshot):
    einstein = tabs["einstein"]
    owner = await stack.session("einstein")
    home = stack.sample.rsplit("/", 1)[0]
    name = f"locked-{uuid.uuid4().hex[:6]}.ipynb"
    path = f"{home}/{name}"
    await owner.files.upload(path, notebook_bytes("Locked elsewhere", "y = 1"))
    await owner.locks.set(path, lock_id="office-lock", app_name="Collabora Online", lifetime=300)

    mine = await open_in_new_tab(einstein, stack, name, "Locked elsewhere")
    await expect(chip(mine)).to_have_text("Read-only: locked by Collabora Online (Albert Einstein)",
                                          timeout=CHIP_TIMEOUT_MS)
    await expect(chip(mine)).to_have_attribute("data-kind", "locked")
    await screenshot(mine, "locked-chip")

    await owner.locks.unlock(path, lock_id="office-lock", app_name="Collabora Online")
    # the room's poll sees the lock go and tells the tab: live again
    await expect(chip(mine)).to_have_text("Live · 1 person", timeout=CHIP_TIMEOUT_MS)
    await mine.page.close()


async def test_the_chip_follows_the_service_going_and_coming_back_then_a_revocation(tabs, stack, screenshot):
    einstein, marie, richard = tabs["einstein"], tabs["marie"], tabs["richard"]
    for tab in (einstein, marie):
        await expect(chip(tab)).to_have_text("Live · 3 people", timeout=CHIP_TIMEOUT_MS)
    # people at work: each server has moved its tab's session to the shared kernel (killed
    # before that, the session's move fails and JupyterLab says "Error Starting Kernel")
    await stack.labs["einstein"].running.wait_for_output("analysis.ipynb uses the shared kernel", count=3,
                                                          timeout=CHIP_TIMEOUT_MS / 1000)

    # the service is killed: every tab says it is reconnecting, none says it is disconnected
    port = int(stack.service.url.rstrip("/").rsplit(":", 1)[1])
    stack.service.running.process.send_signal(signal.SIGKILL)
    await stack.service.running.process.wait()
    for tab in (einstein, marie, richard):
        await expect(chip(tab)).to_have_text("Reconnecting…", timeout=CHIP_TIMEOUT_MS)
        await expect(chip(tab)).to_have_attribute("data-kind", "reconnecting")
    await screenshot(einstein, "reconnecting")

    # it comes back on the same port with the same journal: the tabs are live again, by themselves
    async with service(stack.site.gateway, stack.service.state_dir, port=port) as restarted:
        try:
            await live_again_then_revoked(tabs, stack, screenshot)
        finally:
            (screenshot.folder / "service-restarted.log").write_text("\n".join(restarted.running.output) + "\n")


async def live_again_then_revoked(tabs, stack, screenshot) -> None:
    """After the service's restart: everyone live again, then richard's share revoked."""
    einstein, marie, richard = tabs["einstein"], tabs["marie"], tabs["richard"]
    for tab in (einstein, marie):
        await expect(chip(tab)).to_have_text("Live · 3 people", timeout=CHIP_TIMEOUT_MS)
    await expect(chip(richard)).to_have_text("Read-only: you are a viewer", timeout=CHIP_TIMEOUT_MS)
    await screenshot(einstein, "live-again")
    # and typing crosses again
    line = f"# back: {uuid.uuid4().hex[:6]}"
    await einstein.type_at_end(1, line)
    await expect(marie.editor(1)).to_contain_text(line, timeout=CHIP_TIMEOUT_MS)

    # einstein revokes richard's share: richard's chip says so, in words
    owner = await stack.session("einstein")
    info = await owner.files.stat(stack.sample)
    richard_id = (await stack.session("richard")).user.id.opaque_id
    (share,) = [s for s in await owner.shares.list(resource_id=info.id) if s.grantee.user_id.opaque_id == richard_id]
    await owner.shares.remove(share.id.opaque_id)
    await expect(chip(richard)).to_have_text(
        "Disconnected: Your access to this notebook was removed.", timeout=CHIP_TIMEOUT_MS
    )
    await expect(chip(richard)).to_have_attribute("data-kind", "disconnected")
    await screenshot(richard, "disconnected")
    await expect(chip(einstein)).to_have_text("Live · 2 people", timeout=CHIP_TIMEOUT_MS)
