"""The demo's higgs-analysis notebook runs, cell by cell, in a sandboxed
kernel whose workspace holds the generated events.csv."""

from __future__ import annotations

import shutil

import nbformat
import pytest

from cs3collab.demo import higgs_events_csv, higgs_notebook

from .sandboxed import start_kernel  # noqa: F401 - start_kernel is a fixture

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed (./dev installs it)")


async def test_the_demo_analysis_finds_the_bump_and_draws_it(start_kernel, tmp_path):
    data = higgs_events_csv()
    masses = [float(v) for v in data.decode().split()[1:]]
    assert 3000 <= len(masses) <= 6000 and data == higgs_events_csv()  # a few thousand, always the same
    assert sum(1 for m in masses if 123 < m < 127) > 2 * sum(1 for m in masses if 133 < m < 137)
    (tmp_path / "events.csv").write_bytes(data)
    kernel = await start_kernel(workspace=tmp_path)
    images, texts = [], []

    def hook(msg):
        if msg["msg_type"] in ("display_data", "execute_result") and "image/png" in msg["content"]["data"]:
            images.append(msg["content"]["data"]["image/png"])
        elif msg["msg_type"] == "stream":
            texts.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            texts.append("ERROR " + msg["content"]["ename"] + ": " + msg["content"]["evalue"])

    notebook = nbformat.reads(higgs_notebook().decode(), as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            await kernel.kc.execute_interactive(cell.source, timeout=120, output_hook=hook)
    out = "".join(texts)
    assert "ERROR" not in out, out
    assert f"{len(masses)} events between 100" in out
    peak = float(out.split("peak near ")[1].split(" GeV")[0])
    assert 123 <= peak <= 127, out
    assert len(images) == 1  # the matplotlib histogram, inline
