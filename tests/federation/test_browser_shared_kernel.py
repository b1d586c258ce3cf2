"""Two institutions, one kernel, in real browsers: marie at site B, in her own
JupyterLab and without an account at A, runs a cell of einstein's notebook in
its shared kernel at site A, using state einstein's run left there from the
data file beside the notebook (the folder is shared through OCM: the data
exists only at A); both tabs show the output and who ran it. Screenshots go
to ``test-artifacts/federation/``."""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path
from urllib.parse import quote

import nbformat
import pytest
from nbformat import v4
from playwright.async_api import async_playwright, expect

from cs3collab.cs3 import roles
from cs3collab.cs3.ocm import federated_user
from tests.e2e.conftest import CHROMIUM, LOAD_TIMEOUT_MS, new_tab
from tests.federation.conftest import SHARED
from tests.jupyter.conftest_bridge import jupyter_with_cs3collab

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "federation"
RUN_TIMEOUT_MS = 90_000


async def shared_with_marie(fed, *sources: str) -> str:
    """A folder at A holding a notebook (with a kernelspec, so JupyterLab starts
    its kernel) and its data ``events.csv``, shared with marie@B; the notebook's
    path in the folder (``<folder>/<notebook>``)."""
    home = await fed.einstein.get_home()
    folder = f"fed-kernel-{uuid.uuid4().hex[:6]}"
    notebook = v4.new_notebook(cells=[v4.new_code_cell(source) for source in sources],
                               metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                        "language": "python"}})
    await fed.einstein.files.mkdir(f"{home}/{folder}")
    await fed.einstein.files.upload(f"{home}/{folder}/analysis.ipynb", nbformat.writes(notebook).encode())
    await fed.einstein.files.upload(f"{home}/{folder}/events.csv", b"mass_gev\n91.2\n125.1\n80.4\n")
    info = await fed.einstein.files.stat(f"{home}/{folder}")
    await fed.einstein.ocm.create_share(info.id, federated_user("marie", "cesnet.test"), roles.EDITOR)
    return f"{folder}/analysis.ipynb"


@pytest.mark.timeout(300)  # two sites, two JupyterLabs, two browsers and a kernel start on a loaded machine
async def test_marie_at_b_runs_in_the_kernel_at_a_in_her_browser(fed, tmp_path):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: these tests use Debian's chromium (./dev test installs it with apt)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = await shared_with_marie(fed, "import csv\nenergies = [float(row['mass_gev']) for row in "
                                        "csv.DictReader(open('events.csv'))]", "print(round(sum(energies), 1))")
    async with jupyter_with_cs3collab(tmp_path / "lab-einstein", gateway=fed.a.gateway, service_url=fed.svc_a.url,
                                      username="einstein") as lab_a, \
            async_playwright() as driver, contextlib.AsyncExitStack() as exits:
        einstein = await new_tab(driver, tmp_path / "profile-einstein", "einstein", exits)
        marie = await new_tab(driver, tmp_path / "profile-marie", "marie", exits)
        await einstein.page.goto(f"{lab_a.url.rstrip('/')}/lab/tree/{quote(name)}?token={lab_a.token}")
        await marie.page.goto(f"{fed.lab_b.url}/lab/tree/{quote(f'{SHARED}/{name}')}?token={fed.lab_b.token}")
        try:
            for tab in (einstein, marie):
                await expect(tab.cell(1)).to_contain_text("print(round", timeout=LOAD_TIMEOUT_MS)
            await lab_a.running.wait_for_output(f"{name} uses the shared kernel", timeout=60)
            await fed.lab_b.running.wait_for_output(f"{name} uses the shared kernel", timeout=60)
            for tab in (einstein, marie):
                indicator = tab.notebook.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]')
                await expect(indicator).to_have_count(1, timeout=RUN_TIMEOUT_MS)
            await einstein.editor(0).click()
            await einstein.page.keyboard.press("Shift+Enter")
            await expect(einstein.cell(0).locator(".cs3collab-CellRun")).to_contain_text("Albert Einstein",
                                                                                         timeout=RUN_TIMEOUT_MS)
            await marie.editor(1).click()
            await marie.page.keyboard.press("Shift+Enter")
            for tab in (marie, einstein):
                await expect(tab.cell(1).locator(".jp-OutputArea-output")).to_contain_text("296.7",
                                                                                          timeout=RUN_TIMEOUT_MS)
            await expect(einstein.cell(1).locator(".cs3collab-CellRun")).to_contain_text("(cesnet.test)")
            for tab in (einstein, marie):
                await tab.page.screenshot(path=ARTIFACTS / f"shared-kernel-{tab.user}.png", animations="disabled")
        finally:
            for tab in (einstein, marie):
                (ARTIFACTS / f"console-kernel-{tab.user}.log").write_text("\n".join(tab.console) + "\n")
