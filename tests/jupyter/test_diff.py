"""The version diff route on the Jupyter server (cs3collab/jupyter/diff.py),
against a real ``jupyter server`` and a real collaboration service: the
history panel sends a version key and the live notebook, and gets back the
version and nbdime's diff, which the browser renders; bad requests are
refused in words, never with a traceback."""

from __future__ import annotations

import copy
import json
import re
import shutil
from urllib.parse import quote

import nbdime
import nbformat
import pytest
from jupyter_server.extension.config import ExtensionConfigManager
from nbdime.diff_format import DiffEntry

from tests.jupyter.conftest_bridge import EXTENSION_CONFIG, bridge_svc, jupyter_with_cs3collab  # noqa: F401 - fixtures
from tests.service.rtc import put_notebook

MAX_DIFF_SIZE = 64 * 1024


@pytest.fixture(scope="module")
async def diff_server(site, bridge_svc, tmp_path_factory):  # noqa: F811 - fixture
    """Jupyter with einstein's credentials and a small diff limit (to see it refused)."""
    async with jupyter_with_cs3collab(
        tmp_path_factory.mktemp("jp-diff"),
        gateway=site.gateway,
        service_url=bridge_svc.url,
        username="einstein",
        extra={"CS3CollabExtension": {"max_diff_size": MAX_DIFF_SIZE}},
    ) as server:
        yield server


async def versioned_notebook(einstein, workdir) -> str:
    """A notebook whose first content ("a = 1", "b = 2") is now an old version; its contents path."""
    home = await einstein.get_home()
    path = await put_notebook(einstein, f"{workdir}/analysis.ipynb", "a = 1", "b = 2")
    await put_notebook(einstein, path, "a = 1", "b = 2", "c = 3")
    return path[len(home) :].lstrip("/")


async def old_version_key(http, api_path: str) -> tuple[str, dict]:
    """The key of the oldest version, as the history panel lists it, and that version's JSON."""
    file_id = (await http.get("api/cs3collab/file-id", params={"path": api_path})).json()["fileId"]
    listing = (await http.get(f"api/cs3collab/versions/{file_id}")).json()["versions"]
    key = listing[-1]["key"]
    assert key != "current"
    content = await http.get(f"api/cs3collab/versions/{file_id}/{quote(key, safe='')}", params={"type": "notebook"})
    return key, content.json()


def diff_entries(diff: list) -> list:
    """nbdime's diff as its patcher takes it (DiffEntry objects), from the JSON the route answers."""
    return [
        DiffEntry(**{**entry, "diff": diff_entries(entry["diff"])}) if "diff" in entry else DiffEntry(**entry)
        for entry in diff
    ]


async def test_diff_of_a_version_against_the_live_notebook(diff_server, einstein, workdir):
    api_path = await versioned_notebook(einstein, workdir)
    async with diff_server.client() as http:
        key, old = await old_version_key(http, api_path)
        # the live document: cell 1 edited, a new cell at the end, not saved yet
        live = copy.deepcopy(old)
        live["cells"][1]["source"] = "b = 2\nprint(b)"
        live["cells"].append(nbformat.v4.new_markdown_cell("# added live", id="live0001"))
        answer = await http.post("api/cs3collab/diff", json={"path": api_path, "version": key, "current": live})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    base = nbformat.from_dict(body["base"])
    assert [c.source for c in base.cells] == ["a = 1", "b = 2"]  # the version, sources as strings
    # nbdime's diff turns the version into exactly what the browser holds
    patched = nbdime.patch(base, diff_entries(body["diff"]))
    assert [c["source"] for c in patched["cells"]] == ["a = 1", "b = 2\nprint(b)", "# added live"]
    (cells,) = [entry for entry in body["diff"] if entry["key"] == "cells"]
    ops = {(e["op"], e["key"]) for e in cells["diff"]}
    assert ("patch", 1) in ops  # the changed cell
    assert ("addrange", 2) in ops  # the added cell


async def test_no_difference_is_an_empty_diff(diff_server, einstein, workdir):
    api_path = await versioned_notebook(einstein, workdir)
    async with diff_server.client() as http:
        key, old = await old_version_key(http, api_path)
        answer = await http.post("api/cs3collab/diff", json={"path": api_path, "version": key, "current": old})
    assert answer.status_code == 200, answer.text
    assert answer.json()["diff"] == []


async def test_bad_requests_are_refused_in_words(diff_server, einstein, workdir):
    api_path = await versioned_notebook(einstein, workdir)
    async with diff_server.client() as http:
        key, old = await old_version_key(http, api_path)

        async def refused(body, status: int, words: str, raw: bytes | None = None) -> None:
            content = raw if raw is not None else json.dumps(body).encode()
            answer = await http.post(
                "api/cs3collab/diff", content=content, headers={"Content-Type": "application/json"}
            )
            assert answer.status_code == status, answer.text
            assert words in answer.json()["message"]
            assert "Traceback" not in answer.text

        await refused(None, 400, "not JSON", raw=b"{not json")
        await refused([], 400, "JSON object")
        await refused({"version": key, "current": old}, 400, "path")
        await refused({"path": api_path, "current": old}, 400, "version")
        await refused({"path": api_path, "version": key, "current": "x"}, 400, "current must be")
        await refused({"path": api_path, "version": key, "current": {"cells": "no"}}, 400, "not a notebook")
        broken = copy.deepcopy(old)
        broken["cells"][0]["cell_type"] = "spreadsheet"
        await refused({"path": api_path, "version": key, "current": broken}, 400, "not a valid notebook")
        await refused({"path": api_path, "version": "no-such-version", "current": old}, 404, "no-such-version")
        await refused({"path": "nowhere/none.ipynb", "version": key, "current": old}, 404, "")
        big = copy.deepcopy(old)
        big["cells"][0]["source"] = "x" * MAX_DIFF_SIZE
        await refused({"path": api_path, "version": key, "current": big}, 413, "max_diff_size")


async def test_diff_needs_jupyter_auth(diff_server, einstein, workdir):
    async with diff_server.client(token=False) as http:
        answer = await http.post("api/cs3collab/diff", json={"path": "a.ipynb", "version": "k", "current": {}})
    assert answer.status_code == 403


def test_installed_config_turns_nbdimes_server_extension_off(tmp_path):
    """Installing nbdime enables its server extension (local-disk and git
    diffs, not CS3's); where pip installs ours next to it, ours wins
    (docs/labextension.md, "Diff")."""
    folder = tmp_path / "jupyter_server_config.d"
    folder.mkdir()
    # what nbdime 4 installs, and ours, side by side in sys.prefix/etc/jupyter
    (folder / "nbdime.json").write_text(json.dumps({"ServerApp": {"jpserver_extensions": {"nbdime": True}}}))
    shutil.copy(EXTENSION_CONFIG, folder / EXTENSION_CONFIG.name)
    extensions = ExtensionConfigManager(read_config_path=[str(tmp_path)]).get_jpserver_extensions()
    assert extensions["nbdime"] is False
    assert extensions["cs3collab.jupyter"] is True


async def test_nbdimes_lab_extension_is_off_where_ours_is_installed(diff_server):
    async with diff_server.client() as http:
        lab = await http.get("lab")
    assert lab.status_code == 200
    page_config = json.loads(re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', lab.text, re.S).group(1))
    assert "nbdime-jupyterlab" in page_config["disabledExtensions"]
    assert "@cs3collab/labextension" in [e["name"] for e in page_config["federated_extensions"]]
