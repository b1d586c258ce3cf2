"""Roles: who may open a room, and what a viewer's edits do (nothing).

What a user notices: a viewer sees the notebook and every live change, and
others see the viewer's cursor, but nothing the viewer types reaches anyone
or the file; someone without access, with a forged token or asking for a
missing file is refused with a clear answer.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx

from cs3collab.cs3 import roles
from cs3collab.cs3.shares import user_grantee
from tests.service.rtc import (
    closed_with,
    raw_reply,
    raw_socket,
    save_frame,
    saved_containing,
    sources,
    type_text,
    update_frame,
)
from tests.support.yclient import connect, open_session, send_awareness, wait_for


async def put_session(svc, token: str | None, path: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient() as http:
        return await http.put(
            f"{svc.url}/api/collaboration/session/{quote(path, safe='')}",
            json={"format": "json", "type": "notebook"},
            headers=headers,
        )


async def barrier(client, marker: str) -> None:
    """Everything the room broadcast before now has reached ``client``: its own
    awareness comes back to it (the room echoes awareness to the sender) after
    every frame queued before it."""
    await send_awareness(client, {"barrier": marker}, clock=len(client.channel.awareness) + 10)
    await client.channel.wait_awareness(lambda states: {"barrier": marker} in states.values())


async def test_viewer_follows_but_its_edits_go_nowhere(svc, einstein, richard, notebook):
    path = await notebook("visible = 1")
    await einstein.shares.create(path, user_grantee(richard.user.id), roles.VIEWER)
    async with connect(svc.url, einstein.token, path) as editor, connect(svc.url, richard.token, path) as viewer:
        assert sources(viewer) == ["visible = 1"]
        role = await viewer.channel.wait_raw(lambda m: m.get("type") == "cs3collab:role")
        assert role["role"] == "viewer"

        type_text(editor, 0, "  # live")
        await wait_for(viewer.doc, lambda: sources(viewer) == ["visible = 1  # live"])

        # the viewer types, then asks to save on the same socket: the "failed"
        # reply proves the room has handled (and dropped) the edit before it
        state = viewer.doc.get_state()
        type_text(viewer, 0, "  # VIEWER")
        await viewer.connection.send(update_frame(viewer.doc.get_update(state)))
        await viewer.connection.send(save_frame(1))
        reply = await viewer.channel.wait_raw(lambda m: m.get("type") == "save")
        assert reply["status"] == "failed"
        await barrier(editor, "after-viewer-edit")
        assert sources(editor) == ["visible = 1  # live"]
        async with connect(svc.url, einstein.token, path) as fresh:
            assert sources(fresh) == ["visible = 1  # live"]

        # the viewer's presence reaches the editor
        await send_awareness(viewer, {"user": {"username": "richard@cernbox.test", "display_name": "Richard"}})
        states = await editor.channel.wait_awareness(
            lambda s: any((v or {}).get("user", {}).get("username") == "richard@cernbox.test" for v in s.values())
        )
        assert viewer.doc.client_id in states

        type_text(editor, 0, "  # editor again")
        saved = await saved_containing(einstein, path, "# editor again")
    assert saved == ["visible = 1  # live  # editor again"]
    versions = await einstein.versions.list(path)
    for version in versions:
        assert b"VIEWER" not in await einstein.versions.download(path, version.key)


async def test_viewer_alone_never_changes_the_file(svc, einstein, richard, notebook):
    path = await notebook("untouched")
    await einstein.shares.create(path, user_grantee(richard.user.id), roles.VIEWER)
    etag = (await einstein.files.stat(path)).etag
    async with connect(svc.url, richard.token, path) as viewer:
        state = viewer.doc.get_state()
        type_text(viewer, 0, " VIEWER")
        await viewer.connection.send(update_frame(viewer.doc.get_update(state)))
        await viewer.connection.send(save_frame(1))
        assert (await viewer.channel.wait_raw(lambda m: m.get("type") == "save"))["status"] == "failed"
    async with connect(svc.url, einstein.token, path) as editor:
        assert sources(editor) == ["untouched"]
    assert (await einstein.files.stat(path)).etag == etag


async def test_no_access_is_refused(svc, einstein, marie, notebook):
    path = await notebook("private")
    response = await put_session(svc, marie.token, path)
    assert response.status_code in (403, 404)
    assert response.json()["error"] in ("forbidden", "not_found")
    # the room itself, named by einstein's fileId
    session = await open_session(svc.url, einstein.token, path)
    async with raw_socket(svc.url, marie.token, session.room, f"sessionId={session.sessionId}") as ws:
        code, reason = await closed_with(ws)
    assert code in (1003, 4404), (code, reason)
    if code == 1003:
        assert json.loads(reason)["reason"] == "forbidden"


async def test_missing_file_is_404(svc, einstein, workdir, notebook):
    response = await put_session(svc, einstein.token, f"{workdir}/no-such.ipynb")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    # a room whose file was deleted since the session was opened
    path = await notebook("soon gone")
    session = await open_session(svc.url, einstein.token, path)
    await einstein.files.delete(path)
    async with raw_socket(svc.url, einstein.token, session.room, f"sessionId={session.sessionId}") as ws:
        code, reason = await closed_with(ws)
    assert code == 4404 and reason


async def test_missing_or_forged_token_is_refused(svc, einstein, notebook):
    path = await notebook("secret")
    for token in (None, "forged-" + "x" * 40, einstein.token[:-4] + "abcd"):
        response = await put_session(svc, token, path)
        assert response.status_code == 401, (token, response.text)
        assert response.json()["error"] == "unauthenticated"
    session = await open_session(svc.url, einstein.token, path)
    for token in (None, "forged-" + "x" * 40):
        async with raw_socket(svc.url, token, session.room, f"sessionId={session.sessionId}") as ws:
            code, reason = await closed_with(ws)
        assert code == 1003
        assert json.loads(reason)["reason"] == "unauthenticated"


async def test_token_in_query_is_accepted(svc, einstein, notebook):
    path = await notebook("q = 1")
    session = await open_session(svc.url, einstein.token, path)
    async with raw_socket(svc.url, None, session.room, f"sessionId={session.sessionId}&token={einstein.token}") as ws:
        await ws.send(save_frame(5))
        assert (await raw_reply(ws, "save"))["status"] == "success"
