"""A live state that cannot be saved is told to the participants and retried, never given up.

The schema guard keeps editors from making such a state; a room can still
hold one from before the guard (its journal). Serializing it used to raise
something other than ``InvalidDocument`` (ValueError, RecursionError), which
ended the room's background work: nothing reached CS3 again, even after the
document was repaired. Now every participant gets RAW ``cs3collab:save-failed``
(the labextension's status chip shows it), the service keeps retrying, and
once an editor repairs the document it is saved, as valid nbformat.

With replicas, a tab that joins a replica without the room's lease after
the notice went out is told too (the holder answers the replica's hello).
"""

from __future__ import annotations

import uuid

import nbformat
import pytest
from jupyter_ydoc import YNotebook
from pycrdt import Doc

from cs3collab.cs3 import format_resource_id
from cs3collab.service import worker
from cs3collab.service.journal_redis import RedisJournal
from cs3collab.service.journal_sqlite import SQLiteJournal
from tests.service.conftest import start_service
from tests.service.rtc import notebook_bytes, raw_reply, raw_room_socket, update_frame


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"k": value}
    return value


# (what broke the document, how an editor repairs it)
CASES = {
    "nbformat set to a string": (
        lambda document: document._ymeta.__setitem__("nbformat", "four"),
        lambda document: document._ymeta.__setitem__("nbformat", 4),
    ),
    "a non-map element appended to cells": (
        lambda document: document.ycells.append(7),
        lambda document: document.ycells.__delitem__(1),
    ),
    "a cell's metadata nested 1,000 deep": (
        lambda document: document.ycells[0]["metadata"].__setitem__("deep", _nested(1000)),
        lambda document: document.ycells[0]["metadata"].__delitem__("deep"),
    ),
}


async def _journal_with_broken_state(state_dir, key: str, data: bytes, etag: str, breaking, journal=None) -> Doc:
    """The room's journal as a service before the guard left it: the file's
    state (saved), then one update that breaks the notebook (unsaved); in
    ``state_dir``'s SQLite journal, or in ``journal`` (open) when given.
    Returns a copy of that document, as an editor's client holds it."""
    initial = worker.build_initial("notebook", data, key, "broken.ipynb")
    doc = Doc()
    doc.apply_update(initial)
    document = YNotebook(doc)
    before = doc.get_state()
    with doc.transaction():
        breaking(document)
    if journal is None:
        state_dir.mkdir(parents=True, exist_ok=True)
        async with SQLiteJournal(state_dir / "journal.sqlite3") as journal:
            await _record(journal, key, initial, etag, doc.get_update(before))
    else:
        await _record(journal, key, initial, etag, doc.get_update(before))
    return doc


async def _record(journal, key: str, initial: bytes, etag: str, breaking: bytes) -> None:
    seq = await journal.append(key, initial)
    await journal.mark_persisted(key, seq, etag)
    await journal.append(key, breaking)


@pytest.mark.timeout(300)  # a service of its own per case, on a loaded machine
@pytest.mark.parametrize("case", sorted(CASES))
async def test_unsavable_state_is_told_retried_and_saved_once_repaired(site, einstein, workdir, tmp_path, case):
    breaking, repair = CASES[case]
    path = f"{workdir}/broken.ipynb"
    data = notebook_bytes("x = 1")
    await einstein.files.upload(path, data)
    info = await einstein.files.stat(path)
    doc = await _journal_with_broken_state(tmp_path / "svc", format_resource_id(info.id), data, info.etag, breaking)

    async with start_service(site, tmp_path / "svc") as svc:
        # a bare connection: the test reads the service's messages itself
        async with await raw_room_socket(svc.url, einstein.token, path) as editor:
            notice = await raw_reply(editor, "cs3collab:save-failed", timeout=60)
            assert notice["reason"] == "invalid"
            assert (await einstein.files.stat(path)).etag == info.etag  # nothing invalid was written
            # the service keeps trying (and the room's other work goes on: the editor's repair is taken)
            document = YNotebook(doc)
            before = doc.get_state()
            with doc.transaction():
                repair(document)
            await editor.send(update_frame(doc.get_update(before)))
            await raw_reply(editor, "cs3collab:saved", timeout=60)
        stored = nbformat.reads((await einstein.files.download(path)).decode(), as_version=4)
        nbformat.validate(stored)
        assert [cell.source for cell in stored.cells] == ["x = 1"]
        assert svc.running.count("room background work") == 0  # nothing had to be restarted


@pytest.mark.timeout(300)
async def test_a_tab_joining_another_replica_is_told_that_saves_fail(site, redis, einstein, workdir, tmp_path):
    """The lease holder (replica one) told its tab that saves fail; a tab
    that joins the room on replica two afterwards is told too, although the
    notice went out before replica two had the room."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    options = (f"--redis-url={redis.url}", f"--RedisJournal.key_prefix={prefix}")
    path = f"{workdir}/broken-replicas.ipynb"
    data = notebook_bytes("x = 1")
    await einstein.files.upload(path, data)
    info = await einstein.files.stat(path)
    async with RedisJournal(redis.url, key_prefix=prefix) as journal:
        await _journal_with_broken_state(None, format_resource_id(info.id), data, info.etag,
                                         CASES["nbformat set to a string"][0], journal)
    async with start_service(site, tmp_path / "one", *options) as one, \
            start_service(site, tmp_path / "two", *options) as two:
        async with await raw_room_socket(one.url, einstein.token, path) as first:
            assert (await raw_reply(first, "cs3collab:save-failed", timeout=60))["reason"] == "invalid"
            async with await raw_room_socket(two.url, einstein.token, path) as later:
                notice = await raw_reply(later, "cs3collab:save-failed", timeout=30)
                assert notice["reason"] == "invalid" and "cannot be saved" in notice["message"]
        assert two.running.count("saved room=") == one.running.count("saved room=") == 0
