"""Whatever an editor sends, the live notebook stays a valid notebook.

An editor's update that would break the notebook schema or a limit is
refused before anyone sees it: its sender is closed with 1003
``invalid_update`` (the stock frontend shows the words), the honest
participants never see any of it, keep typing, and the file in CS3 keeps
being saved as valid nbformat. These updates used to kill the room's
background work (a string ``nbformat``, a non-map cell, metadata nested
1,000 deep), after which nothing reached CS3 again.
"""

from __future__ import annotations

import json

import nbformat
import pytest
from jupyter_ydoc import YNotebook
from pycrdt import Doc, Map

from tests.service.conftest import start_service
from tests.service.rtc import (
    closed_with,
    file_sources,
    raw_reply,
    raw_room_socket,
    save_frame,
    saved_containing,
    sources,
    type_text,
    update_frame,
    var_bytes,
)
from tests.support.yclient import connect, wait_for


@pytest.fixture(scope="module")
async def svc(site, tmp_path_factory):
    """A service allowing at most 5 cells and 16 levels of nesting."""
    async with start_service(
        site, tmp_path_factory.mktemp("svc"), "--max-cells=5", "--max-nesting-depth=16"
    ) as running:
        yield running


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"k": value}
    return value


def _deep_ymap(document: YNotebook) -> None:
    inner = Map()
    document.ycells[0]["metadata"]["deep"] = inner
    for _ in range(40):
        child = Map()
        inner["k"] = child
        inner = child


KILLERS = {
    "nbformat set to a string": lambda document: document._ymeta.__setitem__("nbformat", "four"),
    "a non-map element appended to cells": lambda document: document.ycells.append(7),
    "a cell's metadata nested 1,000 deep": lambda document: document.ycells[0]["metadata"].__setitem__(
        "deep", _nested(1000)
    ),
    "a cell's metadata nested as Y maps": _deep_ymap,
    "an unknown key in a cell": lambda document: document.ycells[0].__setitem__("evil", 1),
    "an unknown cell type": lambda document: document.ycells[0].__setitem__("cell_type", "spreadsheet"),
    "a false read-only reason in the document state": lambda document: document.ystate.__setitem__(
        "cs3collab:readOnly", "locked by nobody"
    ),
    "more cells than allowed": lambda document: [
        document.append_cell({"cell_type": "code", "source": f"c{i}"}) for i in range(5)
    ],
}


def _bad_update(state: bytes, breaking) -> bytes:
    """The update of one change an editor could make to a copy of ``state``."""
    doc = Doc()
    doc.apply_update(state)
    document = YNotebook(doc)
    before = doc.get_state()
    with doc.transaction():
        breaking(document)
    return doc.get_update(before)


@pytest.mark.parametrize("case", sorted(KILLERS))
async def test_breaking_update_is_refused_and_the_room_carries_on(svc, einstein, notebook, case):
    path = await notebook("honest")
    async with connect(svc.url, einstein.token, path) as honest, connect(svc.url, einstein.token, path) as witness:
        type_text(honest, 0, " + acknowledged")
        await wait_for(witness.doc, lambda: sources(witness) == ["honest + acknowledged"])
        before = witness.document.get()

        update = _bad_update(honest.doc.get_update(), KILLERS[case])
        async with await raw_room_socket(svc.url, einstein.token, path) as offender:
            await offender.send(update_frame(update))
            code, reason = await closed_with(offender)
        assert code == 1003, (code, reason)
        payload = json.loads(reason)
        assert payload["reason"] == "invalid_update"
        assert payload["errorReason"].startswith("Your last change was refused")

        # nobody saw any of it; typing goes on and is saved, as valid nbformat
        assert witness.document.get() == before
        type_text(witness, 0, " + after")
        await wait_for(honest.doc, lambda: sources(honest) == ["honest + acknowledged + after"])
        saved = await saved_containing(einstein, path, " + after")
        assert saved == ["honest + acknowledged + after"]
        nbformat.validate(nbformat.reads((await einstein.files.download(path)).decode(), as_version=4))
        async with connect(svc.url, einstein.token, path) as newcomer:
            assert newcomer.document.get() == honest.document.get()


async def test_valid_structural_changes_pass(svc, einstein, notebook):
    """What JupyterLab does all day (new cells, metadata, outputs) is not refused."""
    path = await notebook("a = 1")
    async with connect(svc.url, einstein.token, path) as author, connect(svc.url, einstein.token, path) as witness:
        with author.doc.transaction():
            author.document.append_cell({"cell_type": "markdown", "source": "# title", "metadata": {"tags": ["x"]}})
            cell = author.document.ycells[0]
            cell["metadata"]["collapsed"] = False
            cell["execution_count"] = 3
            cell["outputs"].append({"output_type": "stream", "name": "stdout", "text": "1\n"})
            author.document._ymeta["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        await wait_for(witness.doc, lambda: sources(witness) == ["a = 1", "# title"])
        assert witness.document.get() == author.document.get()
        await saved_containing(einstein, path, "# title")
        stored = nbformat.reads((await einstein.files.download(path)).decode(), as_version=4)
        assert stored.cells[0].outputs[0]["text"] == "1\n"
        assert stored.metadata.kernelspec.name == "python3"


async def test_value_nested_100000_deep_is_refused_and_the_service_lives(svc, einstein, notebook):
    """A few hundred kB of JSON nested 100,000 deep: pycrdt decodes such
    values recursively and the service process died of a stack overflow."""
    path = await notebook("honest")
    deep = (bytes.fromhex("010105002801016d01780176") + bytes.fromhex("01016b76") * 100_000
            + bytes.fromhex("00") + bytes.fromhex("0000"))
    async with connect(svc.url, einstein.token, path) as honest:
        async with await raw_room_socket(svc.url, einstein.token, path) as offender:
            await offender.send(update_frame(deep))
            code, reason = await closed_with(offender)
        assert code == 1003 and json.loads(reason)["reason"] == "invalid_update"
        assert svc.running.process.returncode is None
        type_text(honest, 0, " + alive")
        assert await saved_containing(einstein, path, " + alive") == ["honest + alive"]


def _step2_frame(update: bytes) -> bytes:
    return b"\x00\x01" + var_bytes(update)


def _offline_then_typed(state: bytes) -> tuple[bytes, bytes]:
    """A tab that reconnects holding an edit the server never got (typed
    offline, or sent to a replica that died) and types again at once:
    (its next keystroke's update, its sync reply carrying both)."""
    doc = Doc()
    doc.apply_update(state)
    document = YNotebook(doc)
    known = doc.get_state()
    source = document.ycells[0]["source"]
    source += " + offline"
    before_keystroke = doc.get_state()
    source += " + typed"
    return doc.get_update(before_keystroke), doc.get_update(known)


async def test_a_reconnecting_tab_that_types_before_its_sync_reply_loses_nothing(svc, einstein, notebook):
    """The stock provider sends updates as soon as its socket is open: a
    keystroke that builds on offline edits can come before the sync reply
    that carries them. It is held until that reply, not refused (which
    closed the tab with a non-reloadable error, its offline typing lost)."""
    path = await notebook("honest")
    async with connect(svc.url, einstein.token, path) as witness:
        keystroke, reply = _offline_then_typed(witness.doc.get_update())
        async with await raw_room_socket(svc.url, einstein.token, path) as tab:
            await tab.send(update_frame(keystroke))
            await tab.send(_step2_frame(reply))
            await wait_for(witness.doc, lambda: sources(witness) == ["honest + offline + typed"])
            await tab.send(save_frame(1))
            assert (await raw_reply(tab, "save"))["status"] == "success"  # still connected, and saved
    assert await file_sources(einstein, path) == ["honest + offline + typed"]


async def test_an_update_still_incomplete_after_the_sync_reply_is_refused(svc, einstein, notebook):
    path = await notebook("honest")
    async with connect(svc.url, einstein.token, path) as witness:
        keystroke, _reply = _offline_then_typed(witness.doc.get_update())
        async with await raw_room_socket(svc.url, einstein.token, path) as tab:
            await tab.send(update_frame(keystroke))
            await tab.send(_step2_frame(b"\x00\x00"))  # a sync reply without the edit it builds on
            code, reason = await closed_with(tab)
        assert code == 1003 and json.loads(reason)["reason"] == "invalid_update"
        type_text(witness, 0, " + after")  # nothing of it reached anyone; the room carries on
        assert await saved_containing(einstein, path, " + after") == ["honest + after"]
        assert sources(witness) == ["honest + after"]
