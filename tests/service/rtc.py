"""Helpers of the service tests: notebooks, typing, raw frames, CS3 polls.

Everything here speaks only the public protocol (session PUT, room
WebSocket, y-sync frames) and the CS3 client, as an outside client would.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import nbformat
import websockets
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from cs3collab.cs3 import format_resource_id
from tests.support.yclient import Client, open_session

CS3_POLL = 0.1
"""Seconds between two looks at CS3 while waiting for a save: CS3 has no push."""


# -- notebooks -------------------------------------------------------------------


def notebook_bytes(*sources: str, markdown_first: bool = False) -> bytes:
    """A valid nbformat 4.5 notebook with one code cell per source."""
    cells = [new_code_cell(source) for source in sources]
    if markdown_first:
        cells[0] = new_markdown_cell(sources[0])
    return nbformat.writes(new_notebook(cells=cells)).encode()


async def put_notebook(session, path: str, *sources: str) -> str:
    """Upload a notebook with these cell sources to ``path``; return the path."""
    await session.files.upload(path, notebook_bytes(*sources))
    return path


def cell_sources_of_file(data: bytes) -> list[str]:
    """The cell sources of a notebook file (what a user opening it would read)."""
    notebook = nbformat.reads(data.decode(), as_version=4)
    return [cell.source for cell in notebook.cells]


# -- live documents ----------------------------------------------------------------


def sources(client: Client) -> list[str]:
    """What the client's notebook shows: each cell's source."""
    return [str(cell["source"]) for cell in client.document.ycells]


def type_text(client: Client, cell: int, text: str) -> None:
    """Type ``text`` at the end of a cell, as one local edit."""
    source = client.document.ycells[cell]["source"]
    source.insert(len(source), text)


# -- CS3 -------------------------------------------------------------------------------


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    """Poll CS3 until ``check()`` returns something truthy (CS3 has no push).

    Bounded by ``timeout``; the failure names ``what`` was awaited.
    """
    try:
        with anyio.fail_after(timeout):
            while True:
                result = await check()
                if result:
                    return result
                await anyio.sleep(CS3_POLL)
    except TimeoutError:
        raise AssertionError(f"not seen within {timeout}s: {what}") from None


async def room_key(session, path: str) -> str:
    """How the service's log names the room of ``path`` (its resource id)."""
    return format_resource_id((await session.files.stat(path)).id)


async def file_sources(session, path: str) -> list[str]:
    return cell_sources_of_file(await session.files.download(path))


async def saved_containing(session, path: str, text: str, timeout: float = 6.0) -> list[str]:
    """Wait until the file in CS3 holds ``text`` in some cell; return its sources."""

    async def check():
        found = await file_sources(session, path)
        return found if any(text in source for source in found) else None

    return await eventually(check, timeout, f"{text!r} saved in {path}")


async def save_record(session, path: str) -> tuple[str, dict]:
    """The current etag of ``path`` and its ``cs3collab.save.<etag>`` record."""
    info = await session.files.stat(path)
    key = "cs3collab.save." + info.etag.strip('"')
    values = await session.metadata.get(path, [key])
    return info.etag, json.loads(values[key]) if key in values else {}


# -- raw frames --------------------------------------------------------------------------


def var_uint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def var_bytes(data: bytes) -> bytes:
    return var_uint(len(data)) + data


def save_frame(save_id: int) -> bytes:
    """The RAW save request of ``@jupyter/docprovider``."""
    return var_uint(2) + var_bytes(b"save") + var_uint(save_id)


def update_frame(update: bytes) -> bytes:
    return b"\x00\x02" + var_bytes(update)


def room_url(service_url: str, room: str, query: str = "") -> str:
    return service_url.replace("http://", "ws://") + f"/api/collaboration/room/{room}" + (f"?{query}" if query else "")


@contextlib.asynccontextmanager
async def raw_socket(service_url: str, token: str | None, room: str, query: str = "") -> AsyncIterator[Any]:
    """A bare WebSocket on a room: no provider, the test speaks frames itself."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with websockets.connect(room_url(service_url, room, query), additional_headers=headers, max_size=None) as ws:
        yield ws


async def raw_room_socket(service_url: str, token: str, path: str, doc_type: str = "notebook"):
    """A session for ``path`` and a bare WebSocket on its room (a context manager)."""
    session = await open_session(service_url, token, path, doc_type)
    return raw_socket(service_url, token, session.room, f"sessionId={session.sessionId}")


async def closed_with(ws, timeout: float = 10.0) -> tuple[int, str]:
    """Read until the server closes the connection; return (code, reason)."""
    with anyio.fail_after(timeout):
        try:
            while True:
                await ws.recv()
        except websockets.ConnectionClosed as closed:
            frame = closed.rcvd
            return (frame.code, frame.reason) if frame is not None else (1006, "")


async def raw_reply(ws, kind: str, timeout: float = 10.0) -> dict:
    """Read frames until a RAW JSON message of ``type`` ``kind`` arrives."""
    with anyio.fail_after(timeout):
        while True:
            message = await ws.recv()
            if isinstance(message, bytes) and message[:1] == b"\x02":
                payload = _raw_json(message)
                if payload.get("type") == kind:
                    return payload


def _raw_json(message: bytes) -> dict:
    pos, length, shift = 1, 0, 0
    while True:
        byte = message[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
    return json.loads(message[pos : pos + length])
