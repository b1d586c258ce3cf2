"""Other CS3 apps: a foreign lock makes the room read-only; an outside upload is merged.

What a user notices: a notebook locked by another app (an office app over
WOPI) opens, tells who holds it, and nothing typed is saved over that app's
work; once it is unlocked the room takes edits again. A new content written
to CS3 while the room is live shows up in every tab without losing what was
being typed.
"""

from __future__ import annotations

import nbformat
import pytest

from cs3collab.cs3 import Locked
from pycrdt import Map

from cs3collab.service.storage import READ_ONLY_STATE
from tests.service.conftest import start_service
from tests.service.rtc import (
    eventually,
    file_sources,
    notebook_bytes,
    room_key,
    save_frame,
    saved_containing,
    sources,
    type_text,
    update_frame,
)
from tests.support.yclient import connect, send_awareness, wait_for


async def barrier(client, marker: str) -> None:
    """Everything the room broadcast before now has reached ``client`` (its
    own awareness comes back after every frame queued before it)."""
    await send_awareness(client, {"barrier": marker}, clock=len(client.channel.awareness) + 10)
    await client.channel.wait_awareness(lambda states: {"barrier": marker} in states.values())


def read_only_state(client) -> str | None:
    return client.doc.get("state", type=Map).get(READ_ONLY_STATE)


async def _file_is(session, path: str, expected: list[str]) -> bool:
    return await file_sources(session, path) == expected


async def test_foreign_lock_gives_a_read_only_room_until_unlocked(svc, einstein, notebook):
    path = await notebook("locked = True")
    await einstein.locks.set(path, lock_id="wopi-lock-1", app_name="wopi", lifetime=60)
    etag = (await einstein.files.stat(path)).etag
    async with connect(svc.url, einstein.token, path) as typist, connect(svc.url, einstein.token, path) as other:
        assert sources(typist) == ["locked = True"]
        notice = await typist.channel.wait_raw(lambda m: m.get("type") in ("cs3collab:role", "cs3collab:read-only"))
        holder = notice.get("readOnly") or notice.get("reason")
        assert holder == "locked by wopi (Albert Einstein)", notice  # the holder by name, not by id
        # a tab that missed the message reads it in the document's state, synced with the content
        assert read_only_state(typist) == "locked by wopi (Albert Einstein)"

        state = typist.doc.get_state()
        type_text(typist, 0, "  # dropped")
        await typist.connection.send(update_frame(typist.doc.get_update(state)))  # now, before the save
        await typist.connection.send(save_frame(1))
        assert (await typist.channel.wait_raw(lambda m: m.get("type") == "save"))["status"] == "failed"
        await barrier(other, "after-dropped-edit")
        assert sources(other) == ["locked = True"]
        assert (await einstein.files.stat(path)).etag == etag

        await einstein.locks.unlock(path, lock_id="wopi-lock-1", app_name="wopi")
        # the room's poll notices, tells everyone, and takes edits again
        await other.channel.wait_raw(lambda m: m == {"type": "cs3collab:read-only", "reason": None})
        await wait_for(other.doc, lambda: read_only_state(other) == "")
        type_text(other, 0, "  # after unlock")
        await wait_for(typist.doc, lambda: "after unlock" in sources(typist)[0])
        # the tab that typed under the lock and the room agree again: its next frame (here its
        # echo of the new text) makes the room ask it for what was dropped (Room._resync)
        await wait_for(other.doc, lambda: other.document.get() == typist.document.get())
        await eventually(lambda: _file_is(einstein, path, sources(other)), 20, "the file holds what the tabs show")


async def test_room_holds_its_lock(svc, einstein, notebook):
    path = await notebook("mine")
    async with connect(svc.url, einstein.token, path):
        lock = await einstein.locks.get(path)
        assert lock is not None and lock.app_name == "cs3collab"
        # an app that honours locks cannot write over the live room
        with pytest.raises(Locked):
            await einstein.files.upload(path, notebook_bytes("overwritten"))
    # the room is freed after its grace period and releases the lock
    await svc.running.wait_for_output(f"room closed room={await room_key(einstein, path)} ")
    assert await einstein.locks.get(path) is None
    assert await file_sources(einstein, path) == ["mine"]


@pytest.fixture(scope="module")
async def slow_saving(site, tmp_path_factory):
    """A service that saves only when asked (RAW save): typed text stays unsaved."""
    async with start_service(site, tmp_path_factory.mktemp("svc"), "--save-quiet=60", "--save-ceiling=120") as svc:
        yield svc


async def test_outside_upload_is_merged_and_typing_kept(slow_saving, einstein, notebook):
    svc = slow_saving
    path = await notebook("cell one", "cell two")
    async with connect(svc.url, einstein.token, path) as typist, connect(svc.url, einstein.token, path) as other:
        type_text(typist, 0, " + typed, unsaved")
        await wait_for(other.doc, lambda: sources(other)[0] == "cell one + typed, unsaved")
        assert await file_sources(einstein, path) == ["cell one", "cell two"]

        # The room holds its lock, so the outside writer presents the lock id,
        # as a writer below the lock (a storage mount) effectively does.
        # Another tool changes cell 2 of the file as stored (cell ids kept, as
        # Jupyter and nbformat keep them).
        stored = nbformat.reads((await einstein.files.download(path)).decode(), as_version=4)
        stored.cells[1].source = "cell two, changed outside"
        lock = await einstein.locks.get(path)
        await einstein.files.upload(path, nbformat.writes(stored).encode(), lock_id=lock.lock_id)

        expected = ["cell one + typed, unsaved", "cell two, changed outside"]
        for client in (typist, other):
            await wait_for(client.doc, lambda c=client: sources(c) == expected)

        await typist.connection.send(save_frame(1))
        assert (await typist.channel.wait_raw(lambda m: m.get("type") == "save"))["status"] == "success"
    assert await file_sources(einstein, path) == expected


async def test_a_tab_that_changed_its_document_while_locked_edits_on_after_unlock(svc, einstein, notebook):
    """JupyterLab writes into a read-only tab's document on its own (the
    kernel's metadata when it connects); the room drops that change. After
    the unlock the tab's next edit builds on it: the room asks the tab for
    what it lacks instead of closing it (1003: 'depends on changes the server
    does not have'), and everyone ends with the same document."""
    path = await notebook("locked = True")
    await einstein.locks.set(path, lock_id="wopi-lock-2", app_name="wopi", lifetime=60)
    async with connect(svc.url, einstein.token, path) as tab, connect(svc.url, einstein.token, path) as other:
        await tab.channel.wait_raw(lambda m: m.get("type") in ("cs3collab:role", "cs3collab:read-only"))
        state = tab.doc.get_state()
        with tab.doc.transaction():
            tab.document._ymeta["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        await tab.connection.send(update_frame(tab.doc.get_update(state)))  # dropped: the room is read-only
        await einstein.locks.unlock(path, lock_id="wopi-lock-2", app_name="wopi")
        await tab.channel.wait_raw(lambda m: m == {"type": "cs3collab:read-only", "reason": None})

        # the next edit builds on the dropped change
        state = tab.doc.get_state()
        with tab.doc.transaction():
            tab.document._ymeta["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)"}
        type_text(tab, 0, "  # after unlock")
        await tab.connection.send(update_frame(tab.doc.get_update(state)))
        await wait_for(other.doc, lambda: sources(other) == ["locked = True  # after unlock"])
        await wait_for(other.doc, lambda: other.document.get() == tab.document.get())
        saved = await saved_containing(einstein, path, "after unlock")
        assert saved == ["locked = True  # after unlock"]
    stored = nbformat.reads((await einstein.files.download(path)).decode(), as_version=4)
    assert stored.metadata.kernelspec.display_name == "Python 3 (ipykernel)"
