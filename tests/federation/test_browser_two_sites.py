"""Two institutions in real browsers: einstein at site A and marie at site B.

``cs3collab demo --two-sites`` runs as a user starts it; each user's tab is
Debian's chromium (Playwright, fresh profile). Each opens the notebook link
the demo printed for them, lands on their own site's JupyterHub login page,
types their CS3 name and password and presses the button, and their hub
starts their JupyterLab on that notebook. They type into the same notebook
(stored at A) and see each other's text and remote cursor flag; A's storage
then holds both lines. Then marie, at B, opens the notebook's version
history (A's versions, through her server), diffs the oldest version and
restores it: einstein's tab at A shows the old content and a notice naming
her, and his history names her versions "Marie Curie (cesnet.demo)"; marie's
File info at B names the owner with his institution and A's live lock;
einstein's Share dialog tells the two Marie Curies (an account at A,
a federated contact at B) apart. Last, einstein removes marie's share: her
tab at B shows one dialog in words and saves a copy in her own files at B.
Screenshots go to ``test-artifacts/federation/``.
"""

from __future__ import annotations

import contextlib
import re
import sys
import uuid
from pathlib import Path

import nbformat
import pytest
from playwright.async_api import async_playwright, expect

from cs3collab.cs3 import CS3Client
from cs3collab.demo import DEMO_USERS, SAMPLE_NAME
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, DISPLAY_NAMES, LOAD_TIMEOUT_MS, VIEWPORT, Tab
from tests.service.rtc import eventually
from tests.support import processes
from tests.support.processes import run_process

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "federation"
READY = re.compile(r"cs3collab two-site demo ready")
CODE_CELL = 1


def _printed(output: list[str], prefix: str) -> str:
    [line] = [line for line in output if line.strip().startswith(prefix)]
    return line


async def test_einstein_at_a_and_marie_at_b_coedit_in_browsers(tmp_path: Path, monkeypatch):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: these tests use Debian's chromium (./dev test installs it with apt)")
    monkeypatch.setattr(processes, "READY_TIMEOUT", 300.0)  # the two-site demo: six processes and the seeding
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "cs3collab", "demo", "--two-sites", "--dir", str(tmp_path / "demo")]
    async with run_process(args, READY) as demo, async_playwright() as driver, contextlib.AsyncExitStack() as exits:
        await demo.wait_for_output("Ctrl-C stops everything", timeout=10)
        urls = {"einstein": _printed(demo.output, "einstein@").split()[-1],
                "marie": _printed(demo.output, "marie@").split()[-1]}
        passwords = {user: re.search(rf"as {user} / (\S+),", _printed(demo.output, f"{user}@")).group(1)
                     for user in urls}
        hub_b = re.search(r"site B \S+: JupyterHub (http://\S+)/hub/login", "\n".join(demo.output)).group(1)
        assert urls["marie"].startswith(hub_b + "/user/marie/")  # marie logs in at her own site's hub
        gateway_a = re.search(r"site A \S+: gateway (\S+)", "\n".join(demo.output)).group(1)
        tabs: dict[str, Tab] = {}
        for user, url in urls.items():
            context = await driver.chromium.launch_persistent_context(
                tmp_path / f"profile-{user}", executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True,
                viewport=VIEWPORT)
            exits.push_async_callback(context.close)
            page = context.pages[0] if context.pages else await context.new_page()
            tab = tabs[user] = Tab(user, page)
            page.on("console", lambda message, tab=tab: tab.console.append(f"[{message.type}] {message.text}"))
        try:
            for user, url in urls.items():
                page = tabs[user].page
                await page.goto(url)  # not logged in yet: the hub's login page
                await page.locator("input[name=username]").fill(user)
                await page.locator("input[name=password]").fill(passwords[user])
                await page.locator("#login_submit").click()
            for tab in tabs.values():
                # the hub starts the server, then JupyterLab opens the notebook
                await expect(tab.cell(0)).to_contain_text("Detector calibration", timeout=4 * LOAD_TIMEOUT_MS)
            einstein, marie = tabs["einstein"], tabs["marie"]
            line_a = f"# einstein at A {uuid.uuid4().hex[:6]}"
            await einstein.type_at_end(CODE_CELL, line_a)
            await expect(marie.editor(CODE_CELL)).to_contain_text(line_a, timeout=10_000)
            line_b = f"# marie at B {uuid.uuid4().hex[:6]}"
            await marie.type_at_end(CODE_CELL, line_b)
            await expect(einstein.editor(CODE_CELL)).to_contain_text(line_b, timeout=10_000)
            # presence: each sees the other's cursor flag
            await expect(marie.page.locator(".jp-remote-userFlag", has_text=DISPLAY_NAMES["einstein"])).to_be_visible()
            await expect(einstein.page.locator(".jp-remote-userFlag", has_text=DISPLAY_NAMES["marie"])).to_be_visible()
            for tab in tabs.values():
                await tab.page.screenshot(path=ARTIFACTS / f"coedit-{tab.user}.png", animations="disabled")
        finally:
            for tab in tabs.values():
                (ARTIFACTS / f"console-{tab.user}.log").write_text("\n".join(tab.console) + "\n")
            (ARTIFACTS / "demo.log").write_text("\n".join(demo.output) + "\n")

        # both lines are saved at A, in einstein's file
        async with CS3Client(gateway_a) as cs3:
            owner = await cs3.login("einstein", DEMO_USERS["einstein"])
            path = f"{await owner.get_home()}/{SAMPLE_NAME}"

            async def saved():
                notebook = nbformat.reads((await owner.files.download(path)).decode(), as_version=4)
                text = "\n".join(cell.source for cell in notebook.cells)
                return line_a in text and line_b in text

            await eventually(saved, 20, "both lines saved at A")

        # marie at B opens the history of A's notebook (her server forwards to A's
        # service with the share's credentials), diffs the oldest version and restores it
        marie, einstein = tabs["marie"], tabs["einstein"]
        try:
            await marie.page.locator('.jp-SideBar .lm-TabBar-tab[title="Version history"]').click()
            panel = marie.page.locator("#cs3collab-history")
            versions = panel.locator(".cs3collab-Version")
            await expect(versions.nth(1)).to_be_visible(timeout=30_000)  # the current content and older ones
            await expect(panel).not_to_contain_text("cannot be listed")
            await versions.last.locator(".cs3collab-DiffAction").click()
            diff = marie.page.locator(".cs3collab-Diff")
            await expect(diff).to_be_visible(timeout=30_000)
            await expect(diff.locator(".jp-Diff-twoway, .jp-Diff-added, .jp-Diff-deleted").first).to_be_visible(
                timeout=30_000)
            await marie.page.screenshot(path=ARTIFACTS / "history-diff-marie.png", animations="disabled")
            await versions.last.locator(".cs3collab-Restore").click()
            await marie.page.locator(".jp-Dialog").get_by_role("button", name="Restore").click()
            # einstein at A sees the old content and a notice naming marie
            await expect(einstein.editor(CODE_CELL)).not_to_contain_text(line_a, timeout=30_000)
            await expect(einstein.page.get_by_text(re.compile(r"^Marie Curie restored the version of "))).to_be_visible(
                timeout=30_000)
            await einstein.page.screenshot(path=ARTIFACTS / "restored-by-marie-einstein.png", animations="disabled")
            # marie's history at B marks the restore, naming her with her institution
            restored = panel.locator(".cs3collab-VersionRestored").first
            await expect(restored).to_contain_text("by Marie Curie", timeout=30_000)
            await marie.page.screenshot(path=ARTIFACTS / "history-restored-marie.png", animations="disabled")
            # einstein's history at A names her versions "Marie Curie (<her institution>)"
            await einstein.page.locator('.jp-SideBar .lm-TabBar-tab[title="Version history"]').click()
            authors = einstein.page.locator("#cs3collab-history .cs3collab-VersionAuthors")
            await expect(authors.filter(has_text=re.compile(r"Marie Curie \(cesnet\.demo\)")).first).to_be_visible(
                timeout=30_000)
            await expect(authors.filter(has_text=re.compile(r"Albert Einstein \(cernbox\.demo\)")).first).to_be_visible()
            await einstein.page.screenshot(path=ARTIFACTS / "history-authors-einstein.png", animations="disabled")

            # File info at B: A's facts, the owner with his institution, the live room's lock
            await marie.page.locator('.jp-SideBar .lm-TabBar-tab[title="CS3 files"]').click()
            await marie.page.locator('#cs3collab-browser .cs3collab-BrowserTab[data-tab="with-me"]').click()
            row = marie.page.locator('#cs3collab-browser .cs3collab-ReceivedShare[data-name="analysis.ipynb"]')
            await row.locator(".cs3collab-Info").click()
            info = marie.page.locator(".jp-Dialog .cs3collab-FileInfo")
            field = lambda name: info.locator(f'.cs3collab-FileInfoRow[data-field="{name}"] dd')  # noqa: E731
            await expect(field("owner")).to_have_text("Albert Einstein (cernbox.demo)", timeout=30_000)
            # the live room's lock, held for whichever of them took it, named with the institution
            await expect(field("lock")).to_have_text(re.compile(
                r"^Locked by cs3collab \(live editing\) · (Albert Einstein \(cernbox\.demo\)|Marie Curie \(cesnet\.demo\))"
                r" · until "))
            await expect(field("versions")).to_have_text(re.compile(r"^\d+ versions?$"))
            await marie.page.screenshot(path=ARTIFACTS / "file-info-marie.png", animations="disabled")
            await marie.page.locator(".jp-Dialog").get_by_role("button", name="Close").click()
            await expect(marie.page.locator(".jp-Dialog")).to_have_count(0)

            # einstein's Share dialog tells the two Marie Curies apart: an account at A, a contact at B
            await einstein.notebook.locator('.jp-Toolbar-item[data-jp-item-name="cs3collab-share"]').click()
            dialog = einstein.page.locator(".jp-Dialog .cs3collab-ShareDialog")
            await dialog.locator(".cs3collab-ShareSearch").fill("marie")
            maries = dialog.locator(".cs3collab-ShareResult", has_text=DISPLAY_NAMES["marie"])
            await expect(maries).to_have_count(2, timeout=30_000)
            local = dialog.locator('.cs3collab-ShareResult[data-kind="user"]', has_text=DISPLAY_NAMES["marie"])
            remote = dialog.locator('.cs3collab-ShareResult[data-kind="federated"]', has_text=DISPLAY_NAMES["marie"])
            await expect(local.locator(".cs3collab-ShareKind")).to_have_text(re.compile(r"^account at "))
            await expect(remote.locator(".cs3collab-ShareKind")).to_have_text(re.compile(r"^federated contact at "))
            # the local one with her full address; the contact's institution differs (B's OCM
            # invitation gives no user name, and its opaque id is no name to show)
            await expect(local.locator(".cs3collab-ShareAddress")).to_have_text(re.compile(r"^marie@cernbox\."))
            local_site = (await local.locator(".cs3collab-ShareKind").inner_text()).removeprefix("account at ")
            remote_site = (await remote.locator(".cs3collab-ShareKind").inner_text()).removeprefix(
                "federated contact at ")
            assert local_site != remote_site, (local_site, remote_site)
            await einstein.page.screenshot(path=ARTIFACTS / "share-two-maries-einstein.png", animations="disabled")
            await dialog.locator("xpath=ancestor::div[contains(@class,'jp-Dialog-content')]").get_by_role(
                "button", name="Done").click()

            # einstein removes marie's share: her tab at B gets one dialog, in words, and keeps a copy
            async with CS3Client(gateway_a) as cs3:
                owner = await cs3.login("einstein", DEMO_USERS["einstein"])
                for share in await owner.ocm.list_shares():
                    await owner.ocm.remove_share(share.id.opaque_id)
            revoked = marie.page.locator(".jp-Dialog")
            await expect(revoked.locator(".cs3collab-RevokedSentence")).to_have_text(
                "Albert Einstein removed your access to analysis.ipynb.", timeout=30_000)
            await expect(revoked).to_have_count(1)
            await expect(marie.page.locator("body")).not_to_contain_text("Session expired")
            await expect(marie.page.locator("body")).not_to_contain_text("ocmshares")
            await marie.page.screenshot(path=ARTIFACTS / "revoked-marie.png", animations="disabled")
            await revoked.get_by_role("button", name="Save a copy to my files").click()
            await expect(marie.page.get_by_text('Saved a copy as "analysis (copy).ipynb" in My files')).to_be_visible(
                timeout=30_000)
        finally:
            for tab in tabs.values():
                (ARTIFACTS / f"console-{tab.user}.log").write_text("\n".join(tab.console) + "\n")
