"""Persistence: what is typed becomes CS3 versions, labelled with who wrote them.

What a user notices: the file in CS3 (the web UI, a download) holds the
edit a moment after typing stops; the previous content is a CS3 version;
the version says who contributed; continuous typing does not flood the
version history; the RAW save message of Ctrl-S answers with the outcome.
"""

from __future__ import annotations

import anyio

from cs3collab.cs3 import format_resource_id, roles
from cs3collab.cs3.shares import user_grantee
from tests.service.rtc import (
    cell_sources_of_file,
    eventually,
    file_sources,
    raw_room_socket,
    raw_reply,
    save_frame,
    save_record,
    saved_containing,
    sources,
    type_text,
    update_frame,
)
from tests.support.yclient import connect, wait_for

SAVE_CEILING = 2.0


async def test_edit_becomes_a_version_naming_its_author(svc, einstein, notebook):
    path = await notebook("print(1)", "print(2)")
    before = await einstein.files.download(path)
    versions_before = await einstein.versions.list(path)
    async with connect(svc.url, einstein.token, path) as client:
        type_text(client, 1, "  # einstein was here")
        saved = await saved_containing(einstein, path, "einstein was here", timeout=SAVE_CEILING + 3)
        # the room tells its clients once the save is complete, labels included
        notice = await client.channel.wait_raw(lambda m: m.get("type") == "cs3collab:saved")
    assert saved == ["print(1)", "print(2)  # einstein was here"]
    versions = await einstein.versions.list(path)
    assert len(versions) == len(versions_before) + 1
    assert before in [await einstein.versions.download(path, v.key) for v in versions]
    etag, record = await save_record(einstein, path)
    assert notice["etag"] == etag
    assert record, f"no cs3collab.save.{etag.strip(chr(34))} metadata on the saved file"
    assert record["names"] == {f"{einstein.user.id.opaque_id}@{einstein.user.id.idp}": einstein.user.display_name}
    assert record["authors"] == [f"{einstein.user.id.opaque_id}@{einstein.user.id.idp}"]
    assert record["seq"] > 0


async def test_saved_as_the_editor_who_typed(svc, einstein, marie, notebook):
    """Marie edits through a share; einstein only watches: the save is marie's."""
    path = await notebook("shared = True")
    await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    file_id = format_resource_id((await einstein.files.stat(path)).id)
    async with connect(svc.url, einstein.token, path) as watcher, connect(svc.url, marie.token, file_id) as writer:
        type_text(writer, 0, "  # marie")
        await wait_for(watcher.doc, lambda: sources(watcher) == ["shared = True  # marie"])
        await saved_containing(einstein, path, "# marie", timeout=SAVE_CEILING + 3)
        await watcher.channel.wait_raw(lambda m: m.get("type") == "cs3collab:saved")
    _etag, record = await save_record(einstein, path)
    assert list(record["names"].values()) == [marie.user.display_name]


async def test_continuous_typing_is_not_saved_per_keystroke(svc, einstein, notebook):
    path = await notebook("")
    versions_before = len(await einstein.versions.list(path))
    typed = 0
    async with connect(svc.url, einstein.token, path) as client:
        with anyio.move_on_after(6.0):
            while True:
                type_text(client, 0, "x")
                typed += 1
                await anyio.sleep(0.05)  # a fast typist: 20 keystrokes a second, never quiet for 0.2 s
        final = "x" * typed
        await eventually(lambda: _holds_exactly(einstein, path, final), SAVE_CEILING + 3, "the last keystroke saved")
    uploads = len(await einstein.versions.list(path)) - versions_before
    assert typed > 60
    # saves at the ceiling (every 2 s) while typing, one after it: ~4, never one per keystroke
    assert 2 <= uploads <= 5, f"{uploads} uploads for {typed} keystrokes"


async def _holds_exactly(session, path, text):
    return (await file_sources(session, path)) == [text]


async def test_save_message_answers_success_and_saves(svc, einstein, notebook):
    path = await notebook("value = 1")
    async with connect(svc.url, einstein.token, path) as client:
        async with await raw_room_socket(svc.url, einstein.token, path) as ws:
            type_text(client, 0, "  # saved by ctrl-s")
            # the edit reached the room once another participant saw it
            async with connect(svc.url, einstein.token, path) as witness:
                await wait_for(witness.doc, lambda: "ctrl-s" in sources(witness)[0])
            await ws.send(save_frame(7))
            reply = await raw_reply(ws, "save")
            # success means saved: the file holds the edit right now, no waiting
            assert cell_sources_of_file(await einstein.files.download(path)) == ["value = 1  # saved by ctrl-s"]
            versions = len(await einstein.versions.list(path))
            # asked again with nothing new: success, and the reply says no version was written
            await ws.send(save_frame(8))
            again = await raw_reply(ws, "save")
    assert reply == {"type": "save", "responseTo": 7, "status": "success", "newVersion": True}
    assert again == {"type": "save", "responseTo": 8, "status": "success", "newVersion": False}
    assert len(await einstein.versions.list(path)) == versions


async def test_save_message_of_the_typist_saves_its_own_edit(svc, einstein, notebook):
    """Update then save on the same socket (y-websocket sends each update as
    it is made, so a save request always follows the edits before it): the
    reply comes once that edit is in CS3."""
    path = await notebook("a")
    async with connect(svc.url, einstein.token, path) as client:
        state = client.doc.get_state()
        type_text(client, 0, "bc")
        await client.connection.send(update_frame(client.doc.get_update(state)))
        await client.connection.send(save_frame(1))
        reply = await client.channel.wait_raw(lambda m: m.get("type") == "save")
        assert reply["status"] == "success" and reply["responseTo"] == 1
        assert cell_sources_of_file(await einstein.files.download(path)) == ["abc"]


async def test_save_message_of_a_viewer_fails(svc, einstein, richard, notebook):
    path = await notebook("read = 'only'")
    await einstein.shares.create(path, user_grantee(richard.user.id), roles.VIEWER)
    etag = (await einstein.files.stat(path)).etag
    async with await raw_room_socket(svc.url, richard.token, path) as ws:
        await ws.send(save_frame(3))
        reply = await raw_reply(ws, "save")
    assert reply == {"type": "save", "responseTo": 3, "status": "failed", "newVersion": False}
    assert (await einstein.files.stat(path)).etag == etag

