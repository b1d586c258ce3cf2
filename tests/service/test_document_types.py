"""One file, one live document: a second document type on a live file is refused.

What a user notices: JupyterLab's "Open With > Editor" on a notebook that
colleagues are editing as a notebook (or the reverse) closes that tab with a
dialog saying how to join them, and nobody's typing is lost. Once nobody has
the file open, it opens as the other type, with everything typed so far.
"""

from __future__ import annotations

import json

import pytest

from cs3collab.cs3 import roles
from cs3collab.cs3.shares import user_grantee
from cs3collab.service.protocol import session_close_reason
from tests.service.conftest import start_service
from tests.service.rtc import closed_with, raw_room_socket, saved_containing, sources, type_text
from tests.support.yclient import connect, wait_for

AS_NOTEBOOK = "This is open as a notebook by others: open it as a notebook"
AS_TEXT = "This is open in the Editor by others: open it with the Editor"


@pytest.mark.parametrize("words", [AS_NOTEBOOK, AS_TEXT])
def test_the_words_fit_a_close_reason(words):
    assert json.loads(session_close_reason("type_conflict", words))["errorReason"] == words  # not cut short


async def refused_as(svc, token: str, path: str, doc_type: str) -> dict:
    async with await raw_room_socket(svc.url, token, path, doc_type) as ws:
        code, reason = await closed_with(ws)
    assert code == 1003, (code, reason)
    return json.loads(reason)


async def test_text_editor_on_a_live_notebook_is_refused(svc, einstein, marie, notebook):
    path = await notebook("a = 1")
    await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    async with connect(svc.url, einstein.token, path) as nb:
        type_text(nb, 0, "  # before")
        reason = await refused_as(svc, marie.token, path, "file")
        assert reason == {"reason": "type_conflict", "reloadable": False, "errorReason": AS_NOTEBOOK}
        type_text(nb, 0, "  # after")
        saved = await saved_containing(einstein, path, "# after")
    assert saved == ["a = 1  # before  # after"]  # the notebook's typing is all there
    assert svc.running.count("room refused") >= 1


async def test_notebook_on_a_file_live_in_the_editor_is_refused(svc, einstein, notebook):
    path = await notebook("b = 2")
    async with connect(svc.url, einstein.token, path, "file") as text:
        before = str(text.document.get())
        assert '"b = 2"' in before  # the editor shows the notebook's JSON
        reason = await refused_as(svc, einstein.token, path, "notebook")
        assert reason["reason"] == "type_conflict" and reason["errorReason"] == AS_TEXT
        assert str(text.document.get()) == before  # the editor's document is untouched


async def test_an_empty_room_of_the_other_type_is_flushed_and_reopened(site, einstein, notebook, tmp_path):
    path = await notebook("c = 3")
    # a long grace period: the notebook's room is still live (empty) when the editor opens
    async with start_service(site, tmp_path / "svc", "--close-grace=60", "--save-quiet=30", "--save-ceiling=60") as svc:
        async with connect(svc.url, einstein.token, path) as nb:
            type_text(nb, 0, "  # typed")
            async with connect(svc.url, einstein.token, path) as other:
                await wait_for(other.doc, lambda: sources(other) == ["c = 3  # typed"])
        async with connect(svc.url, einstein.token, path, "file") as text:
            assert "c = 3  # typed" in str(text.document.get())  # flushed before it was freed
        await svc.running.wait_for_output("room freed for another document type")
