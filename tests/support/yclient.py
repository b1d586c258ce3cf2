"""A Yjs client in Python, for tests: pycrdt's Provider over a real WebSocket.

It speaks only the public protocol (session PUT, room WebSocket, y-sync),
exactly as a client written outside this project would.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote

import anyio
import httpx
import websockets
from jupyter_ydoc import YNotebook, YUnicode
from pycrdt import Doc, Provider


class WebSocketChannel:
    """pycrdt's Channel over a ``websockets`` client connection."""

    def __init__(self, connection, path: str) -> None:
        self._connection = connection
        self._path = path
        self.raw: list[dict] = []  # RAW (type 2) JSON messages the server sent

    @property
    def path(self) -> str:
        return self._path

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.recv()
        except websockets.ConnectionClosed:
            raise StopAsyncIteration from None

    async def send(self, message: bytes) -> None:
        await self._connection.send(message)

    async def recv(self) -> bytes:
        while True:
            message = await self._connection.recv()
            if isinstance(message, bytes) and message[:1] == b"\x02":
                self.raw.append(_raw_json(message))
                continue
            return message


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


@dataclass
class Session:
    format: str
    type: str
    fileId: str
    sessionId: str

    @property
    def room(self) -> str:
        return f"{self.format}:{self.type}:{self.fileId}"


async def open_session(service_url: str, token: str, path: str, doc_type: str = "notebook") -> Session:
    fmt = "json" if doc_type == "notebook" else "text"
    async with httpx.AsyncClient() as http:
        response = await http.put(
            f"{service_url}/api/collaboration/session/{quote(path, safe='')}",
            json={"format": fmt, "type": doc_type},
            headers={"Authorization": f"Bearer {token}"},
        )
    response.raise_for_status()
    return Session(**response.json())


@dataclass
class Client:
    doc: Doc
    document: YNotebook | YUnicode
    channel: WebSocketChannel
    connection: object


@contextlib.asynccontextmanager
async def connect(service_url: str, token: str, path: str, doc_type: str = "notebook") -> AsyncIterator[Client]:
    """Open a session and a synced room connection for ``path`` as ``token``'s user."""
    session = await open_session(service_url, token, path, doc_type)
    ws_url = service_url.replace("http://", "ws://") + f"/api/collaboration/room/{session.room}?sessionId={session.sessionId}"
    async with websockets.connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=None) as ws:
        channel = WebSocketChannel(ws, session.room)
        doc = Doc()
        document = YNotebook(doc) if doc_type == "notebook" else YUnicode(doc)
        async with Provider(doc, channel) as provider:
            with anyio.fail_after(10):
                await provider.synced.wait()
            yield Client(doc, document, channel, ws)


async def wait_for(doc: Doc, predicate, timeout: float = 10.0) -> None:
    """Wait until ``predicate()`` holds, re-checking it after each change of ``doc``.

    Event-driven: it wakes on the document's transactions, never on a timer;
    the timeout only bounds a failure.
    """
    changed = anyio.Event()

    def on_change(_event) -> None:
        changed.set()

    subscription = doc.observe(on_change)
    try:
        with anyio.fail_after(timeout):
            while not predicate():
                await changed.wait()
                changed = anyio.Event()
    finally:
        doc.unobserve(subscription)
