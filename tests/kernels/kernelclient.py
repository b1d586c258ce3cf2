"""A participant's kernel channel, spoken as the Jupyter server's proxy speaks it:
Jupyter messages as JSON text frames on ``/api/collaboration/kernel/{fileId}/channels``."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import websockets

from tests.support.yclient import open_session


class KernelSocket:
    """One participant's kernel WebSocket; every message received is kept in ``seen``."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.session = uuid.uuid4().hex
        self.seen: list[dict] = []
        self._arrived = asyncio.Condition()
        self.closed: tuple[int, str] | None = None

    async def pump(self) -> None:
        broken = ""
        try:
            async for frame in self.ws:
                async with self._arrived:
                    self.seen.append(json.loads(frame))
                    self._arrived.notify_all()
        except websockets.ConnectionClosed:
            pass
        except Exception as exc:  # noqa: BLE001 - said by the waits instead of a silent timeout
            broken = f"the test client stopped reading: {exc!r}"
        async with self._arrived:
            self.closed = (self.ws.close_code or 1006, broken or self.ws.close_reason or "")
            self._arrived.notify_all()

    def message(self, msg_type: str, content: dict, channel: str = "shell", metadata: dict | None = None) -> dict:
        header = {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "session": self.session, "username": "test",
                  "date": datetime.datetime.now(datetime.timezone.utc).isoformat(), "version": "5.3"}
        return {"channel": channel, "header": header, "parent_header": {}, "metadata": metadata or {},
                "content": content}

    async def send(self, message: dict) -> str:
        await self.ws.send(json.dumps(message))
        return message["header"]["msg_id"]

    async def execute(self, code: str, cell_id: str | None = None) -> str:
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                   "allow_stdin": False, "stop_on_error": True}
        return await self.send(self.message("execute_request", content, metadata={"cellId": cell_id} if cell_id else {}))

    async def wait(self, predicate: Callable[[dict], bool], timeout: float = 90.0) -> dict:
        """The first message (seen or to come) for which ``predicate`` holds."""
        async with asyncio.timeout(timeout):
            async with self._arrived:
                while True:
                    for msg in self.seen:
                        if predicate(msg):
                            return msg
                    if self.closed is not None:
                        raise AssertionError(f"kernel channel closed {self.closed} before the message came")
                    await self._arrived.wait()

    async def reply(self, msg_id: str, timeout: float = 90.0) -> dict:
        return await self.wait(lambda m: m["channel"] in ("shell", "control") and m["parent_header"].get("msg_id") == msg_id, timeout)

    async def idle(self, msg_id: str, timeout: float = 90.0) -> dict:
        return await self.wait(lambda m: m["channel"] == "iopub" and m["msg_type"] == "status"
                               and m["parent_header"].get("msg_id") == msg_id
                               and m["content"]["execution_state"] == "idle", timeout)

    async def wait_closed(self, timeout: float = 10.0) -> tuple[int, str]:
        async with asyncio.timeout(timeout):
            async with self._arrived:
                while self.closed is None:
                    await self._arrived.wait()
        return self.closed


def channels_url(service_url: str, file_id: str) -> str:
    return service_url.replace("http://", "ws://") + f"/api/collaboration/kernel/{file_id}/channels"


@contextlib.asynccontextmanager
async def kernel_channel(service_url: str, authorization: str, file_id: str) -> AsyncIterator[KernelSocket]:
    """A kernel channel as ``authorization`` (``Bearer <token>`` or ``OCM <id>:<secret>``)."""
    async with _pumped(channels_url(service_url, file_id), authorization) as socket:
        yield socket


@contextlib.asynccontextmanager
async def _pumped(url: str, authorization: str) -> AsyncIterator[KernelSocket]:
    """A kernel WebSocket whose incoming messages are read into a KernelSocket until it closes."""
    async with websockets.connect(url, additional_headers={"Authorization": authorization}, max_size=None) as ws:
        socket = KernelSocket(ws)
        pump = asyncio.ensure_future(socket.pump())
        try:
            yield socket
        finally:
            await ws.close()
            await pump


async def file_id_of(service_url: str, token: str, path: str) -> str:
    return (await open_session(service_url, token, path)).fileId


async def kernel_rest(service_url: str, authorization: str, file_id: str, action: str = "", method: str = "POST"):
    url = f"{service_url}/api/collaboration/kernel/{file_id}" + (f"/{action}" if action else "")
    async with httpx.AsyncClient(timeout=90) as http:
        return await http.request(method, url, headers={"Authorization": authorization})


def outputs_text(client, cell: int) -> str:
    """What a participant's notebook shows as a cell's outputs (stream text, results, errors)."""
    parts = []
    for output in client.document.ycells[cell]["outputs"]:
        kind = output.get("output_type")
        if kind == "stream":
            parts.append(str(output.get("text")))
        elif kind in ("execute_result", "display_data"):
            parts.append(str((output.get("data") or {}).get("text/plain", "")))
        elif kind == "error":
            parts.append(f"{output.get('ename')}: {output.get('evalue')}")
    return "".join(parts)


# -- through a participant's Jupyter server (what JupyterLab does) ------------------------


async def open_kernel_session(lab_url: str, lab_token: str, api_path: str) -> dict:
    """JupyterLab opening a notebook: ``POST /api/sessions`` on the user's own Jupyter server."""
    async with httpx.AsyncClient(base_url=lab_url.rstrip("/") + "/", timeout=90,
                                 headers={"Authorization": f"token {lab_token}"}) as http:
        answer = await http.post("api/sessions", json={"path": api_path, "name": api_path.rsplit("/", 1)[-1],
                                                       "type": "notebook", "kernel": {"name": "python3"}})
    assert answer.status_code == 201, answer.text
    return answer.json()


@contextlib.asynccontextmanager
async def lab_kernel(lab_url: str, lab_token: str, kernel_id: str) -> AsyncIterator[KernelSocket]:
    """The browser's kernel WebSocket on its own Jupyter server (legacy JSON frames)."""
    url = lab_url.rstrip("/").replace("http://", "ws://") + f"/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}"
    async with _pumped(url, f"token {lab_token}") as socket:
        yield socket
