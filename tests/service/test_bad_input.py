"""Bad input closes only the connection that sent it; the room carries on.

Each case opens a room with an honest client who has typed (and had it
acknowledged), then a second connection misbehaves. What the user notices:
the misbehaving tab is told why (close code and reason), the honest tab
keeps working and converges with newcomers, and nothing acknowledged is
lost. A file in storage that is not a notebook refuses the room with a
reason and is left untouched.
"""

from __future__ import annotations

import json

import pytest

from tests.service.conftest import start_service
from tests.service.rtc import (
    closed_with,
    raw_room_socket,
    raw_socket,
    sources,
    type_text,
    update_frame,
    var_bytes,
    var_uint,
)
from tests.support.yclient import connect, open_session, wait_for

MAX_FRAME = 64 * 1024


@pytest.fixture(scope="module")
async def svc(site, tmp_path_factory):
    """A service accepting frames up to 64 KiB."""
    async with start_service(site, tmp_path_factory.mktemp("svc"), f"--max-frame-size={MAX_FRAME}") as running:
        yield running


BAD_FRAMES = {
    "empty frame": (b"", 1008, "empty frame"),
    "truncated update": (b"\x00\x02\x10abc", 1008, "truncated frame"),
    "truncated varUint": (b"\x00\x02\xff", 1008, "truncated frame"),
    "unknown message type": (b"\x07\x00", 1008, "unknown message type 7"),
    "unknown sync type": (b"\x00\x05\x00", 1008, "unknown sync message type 5"),
    "unknown RAW message": (var_uint(2) + var_bytes(b"delete-everything") + var_uint(1), 1008, "unknown RAW message"),
    "update that does not apply": (update_frame(b"\xff\xff\xff\xff\x0fgarbage"), 1008, "update does not apply"),
    "awareness that is not JSON": (b"\x01" + var_bytes(b"\x01\x05\x01" + var_bytes(b"{nope")), 1008, "not JSON"),
    "state vector that does not decode": (b"\x00\x00" + var_bytes(b"\xff\xff\xff"), 1008, "invalid state vector"),
    "frame above the size limit": (update_frame(b"\x00" * (MAX_FRAME + 10)), 1009, ""),
}


@pytest.mark.parametrize("case", sorted(BAD_FRAMES))
async def test_bad_frame_closes_only_its_connection(svc, einstein, notebook, case):
    frame, code, reason = BAD_FRAMES[case]
    path = await notebook("honest")
    async with connect(svc.url, einstein.token, path) as honest, connect(svc.url, einstein.token, path) as witness:
        type_text(honest, 0, " + acknowledged")
        await wait_for(witness.doc, lambda: sources(witness) == ["honest + acknowledged"])

        async with await raw_room_socket(svc.url, einstein.token, path) as offender:
            await offender.send(frame)
            got_code, got_reason = await closed_with(offender)
        assert got_code == code, (case, got_code, got_reason)
        assert reason in got_reason

        # the room carries on: the honest clients still converge, newcomers too
        type_text(witness, 0, " + after")
        await wait_for(honest.doc, lambda: sources(honest) == ["honest + acknowledged + after"])
        async with connect(svc.url, einstein.token, path) as newcomer:
            assert sources(newcomer) == ["honest + acknowledged + after"]


async def test_text_frame_closes_only_its_connection(svc, einstein, notebook):
    path = await notebook("honest")
    async with connect(svc.url, einstein.token, path) as honest:
        type_text(honest, 0, " + acknowledged")
        async with await raw_room_socket(svc.url, einstein.token, path) as offender:
            await offender.send("hello, I am text")
            code, reason = await closed_with(offender)
        assert (code, reason) == (1008, "text frames are not part of the protocol")
        async with connect(svc.url, einstein.token, path) as newcomer:
            await wait_for(newcomer.doc, lambda: sources(newcomer) == ["honest + acknowledged"])
            type_text(newcomer, 0, "!")
            await wait_for(honest.doc, lambda: sources(honest) == ["honest + acknowledged!"])


@pytest.mark.parametrize(
    ("room", "code"),
    [
        ("garbage", 4400),  # not format:type:fileId
        ("json:notebook:b64.!!!", 4400),  # a fileId that cannot be one
        ("json:spreadsheet:abc$def!ghi", 4400),  # an unsupported document type
        ("json:notebook:nostorage$nospace!no-such-file", 4404),  # well formed, names nothing
    ],
)
async def test_unknown_room_is_refused(svc, einstein, room, code):
    async with raw_socket(svc.url, einstein.token, room) as ws:
        got_code, reason = await closed_with(ws)
    assert got_code == code, (room, got_code, reason)
    assert reason  # says why


async def test_session_id_mismatch_is_unknown_session(svc, einstein, notebook):
    path = await notebook("x")
    session = await open_session(svc.url, einstein.token, path)
    async with raw_socket(svc.url, einstein.token, session.room, "sessionId=not-this-server") as ws:
        code, reason = await closed_with(ws)
    assert code == 1003
    payload = json.loads(reason)
    assert payload["reason"] == "unknown_session"
    assert len(reason.encode()) <= 123


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"{this is not json", "not JSON"),
        (b'{"cells": [{"cell_type": "code"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}', "not a valid notebook"),
        (b'{"just": "json"}', "not a notebook"),
    ],
)
async def test_invalid_notebook_in_storage_refuses_the_room(svc, einstein, workdir, content, words):
    path = f"{workdir}/broken.ipynb"
    await einstein.files.upload(path, content)
    etag = (await einstein.files.stat(path)).etag
    session = await open_session(svc.url, einstein.token, path)
    for _attempt in range(2):  # refused every time, not only while loading
        async with raw_socket(svc.url, einstein.token, session.room, f"sessionId={session.sessionId}") as ws:
            code, reason = await closed_with(ws)
        assert code == 1003
        payload = json.loads(reason)
        assert payload["reason"] == "initialization_error"
        assert words in payload["errorReason"], payload
    assert (await einstein.files.stat(path)).etag == etag
    assert await einstein.files.download(path) == content
    assert await einstein.locks.get(path) is None
