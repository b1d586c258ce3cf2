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
        self.awareness: list[dict[int, dict | None]] = []  # awareness updates received, decoded
        self._arrived = anyio.Event()

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
                self._wake()
                continue
            if isinstance(message, bytes) and message[:1] == b"\x01":
                self.awareness.append(_awareness_states(message))
                self._wake()
            return message

    def _wake(self) -> None:
        self._arrived.set()
        self._arrived = anyio.Event()


    async def wait_raw(self, predicate, timeout: float = 10.0) -> dict:
        """The first RAW message matching ``predicate``, waiting for it if needed
        (woken by each message; the timeout only bounds a failure)."""
        return await self._wait(self.raw, predicate, timeout)

    async def wait_awareness(self, predicate, timeout: float = 10.0) -> dict:
        """The first awareness update ({client id: state or None}) matching ``predicate``."""
        return await self._wait(self.awareness, predicate, timeout)

    async def _wait(self, seen: list, predicate, timeout: float):
        with anyio.fail_after(timeout):
            while True:
                for message in seen:
                    if predicate(message):
                        return message
                await self._arrived.wait()


def read_var_uint(data: bytes, pos: int) -> tuple[int, int]:
    """A lib0 varUint at ``pos``: (its value, the position after it)."""
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def _raw_json(message: bytes) -> dict:
    length, pos = read_var_uint(message, 1)
    return json.loads(message[pos : pos + length])


def _awareness_states(message: bytes) -> dict[int, dict | None]:
    """``1 varBytes(n × (clientID, clock, varString JSON))`` → {clientID: state}."""
    _size, pos = read_var_uint(message, 1)
    count, pos = read_var_uint(message, pos)
    states = {}
    for _ in range(count):
        client_id, pos = read_var_uint(message, pos)
        _clock, pos = read_var_uint(message, pos)
        length, pos = read_var_uint(message, pos)
        states[client_id] = json.loads(message[pos : pos + length])
        pos += length
    return states


async def send_awareness(client: "Client", state: dict | None, clock: int = 1) -> None:
    """Send the client's awareness state (None: gone), as y-websocket does."""
    body = json.dumps(state).encode()
    entry = _uint(client.doc.client_id) + _uint(clock) + _uint(len(body)) + body
    update = _uint(1) + entry
    await client.connection.send(b"\x01" + _uint(len(update)) + update)


def _uint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


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
async def connect(
    service_url: str, token: str, path: str, doc_type: str = "notebook", doc: Doc | None = None
) -> AsyncIterator[Client]:
    """Open a session and a synced room connection for ``path`` as ``token``'s user.

    ``doc``: reconnect an existing Doc (its old state is offered to the room,
    as y-websocket does after a dropped connection); a fresh Doc by default.
    """
    session = await open_session(service_url, token, path, doc_type)
    async with connect_room(
        service_url, token, session.room, f"sessionId={session.sessionId}", doc_type, doc
    ) as client:
        yield client


@contextlib.asynccontextmanager
async def connect_room(
    service_url: str, token: str, room: str, query: str = "", doc_type: str = "notebook", doc: Doc | None = None
) -> AsyncIterator[Client]:
    """A synced connection to the room named ``room`` (no session request:
    e.g. ``JupyterLab:globalAwareness``)."""
    ws_url = service_url.replace("http://", "ws://") + f"/api/collaboration/room/{room}" + (f"?{query}" if query else "")
    async with websockets.connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=None) as ws:
        channel = WebSocketChannel(ws, room)
        doc = Doc() if doc is None else doc
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
