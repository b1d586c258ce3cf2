"""Shared execution in real browsers: einstein and marie, each in their own
JupyterLab, run cells of one notebook with Shift+Enter in its one shared
kernel at the notebook's site. State is shared (marie uses einstein's
variable), both tabs show every output, and each cell says who ran it.
Screenshots go to ``test-artifacts/e2e/kernels/``."""

from __future__ import annotations

import contextlib
import uuid

import nbformat
import pytest
from playwright.async_api import expect

from cs3collab.cs3 import roles
from cs3collab.cs3.shares import user_grantee
from tests.e2e.conftest import LOAD_TIMEOUT_MS, module_screenshots, new_tab

screenshot = module_screenshots("kernels")
ACCEPTED = 2  # cs3 share state
RUN_TIMEOUT_MS = 90_000
"""From Shift+Enter to the output, including the shared kernel's first start on a loaded machine."""


async def shared_notebook(stack, *sources: str) -> str:
    einstein = await stack.session("einstein")
    marie = await stack.session("marie")
    name = f"kernel-{uuid.uuid4().hex[:6]}.ipynb"
    path = f"{await einstein.get_home()}/{name}"
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in sources],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    await einstein.files.upload(path, nbformat.writes(notebook).encode())
    share = await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    await marie.shares.update_received(share.id.opaque_id, state=ACCEPTED)
    return name


async def run_cell(tab, index: int) -> None:
    """Click into cell ``index`` and press Shift+Enter, as a user runs it."""
    await tab.editor(index).click()
    await tab.page.keyboard.press("Shift+Enter")


def output(tab, index: int):
    return tab.cell(index).locator(".jp-OutputArea-output")


@pytest.mark.timeout(300)  # a whole demo stack, two browsers and a kernel start on a loaded 2-core machine
async def test_two_editors_share_one_kernel_in_their_browsers(stack, browser_driver, screenshot, tmp_path_factory):
    name = await shared_notebook(stack, "x = 41\nprint('einstein ran this')", "print(x + 1)")
    profiles = tmp_path_factory.mktemp("kernel-profiles")
    async with contextlib.AsyncExitStack() as exits:
        einstein = await new_tab(browser_driver, profiles / "einstein", "einstein", exits)
        marie = await new_tab(browser_driver, profiles / "marie", "marie", exits)
        await einstein.page.goto(stack.labs["einstein"].tree_url(name))
        await marie.page.goto(stack.labs["marie"].tree_url(f"Shared with me/{name}"))
        for tab in (einstein, marie):
            await expect(tab.cell(1)).to_contain_text("print(x + 1)", timeout=LOAD_TIMEOUT_MS)
        # JupyterLab opens a session under a placeholder path, then names the notebook: that is
        # when each server maps it to the shared kernel; the kernel indicator then says idle
        for user in ("einstein", "marie"):
            await stack.labs[user].running.wait_for_output(f"{name} uses the shared kernel", timeout=60)
        for tab in (einstein, marie):
            indicator = tab.notebook.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]')
            await expect(indicator).to_have_count(1, timeout=RUN_TIMEOUT_MS)

        await run_cell(einstein, 0)
        await expect(output(marie, 0)).to_contain_text("einstein ran this", timeout=RUN_TIMEOUT_MS)
        await run_cell(marie, 1)
        # marie's run used einstein's variable: one kernel; both tabs show its output
        await expect(output(marie, 1)).to_contain_text("42", timeout=RUN_TIMEOUT_MS)
        await expect(output(einstein, 1)).to_contain_text("42", timeout=RUN_TIMEOUT_MS)
        # each cell says who ran it; the output is there once, not once per tab
        await expect(einstein.cell(1).locator(".cs3collab-CellRun")).to_contain_text("Run by Marie Curie")
        await expect(marie.cell(0).locator(".cs3collab-CellRun")).to_contain_text("Run by Albert Einstein")
        await expect(output(einstein, 1)).to_have_count(1)
        await screenshot(einstein, "einstein-sees-marie-run")
        await screenshot(marie, "marie-ran-with-einstein-state")
