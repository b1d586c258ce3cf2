"""Routes of the shared kernels: thin handlers over :class:`~cs3collab.service.execution.SharedExecution`.

* ``GET  /api/collaboration/kernel/{fileId}``: the kernel's status
  (``{state, connections, startedBy, startedAt, running}``), for anyone who
  may read the notebook;
* ``POST /api/collaboration/kernel/{fileId}``: start it (editors), answers the status;
* ``POST /api/collaboration/kernel/{fileId}/interrupt`` and ``.../restart`` (editors);
* ``WS   /api/collaboration/kernel/{fileId}/channels``: one participant's
  kernel channel. Frames are Jupyter messages as JSON text (jupyter_server's
  legacy kernel WebSocket protocol: ``{channel, header, parent_header,
  metadata, content}``); binary frames are refused.

Authentication and roles are the room's: ``Authorization: Bearer <CS3 token>``
at home, ``Authorization: OCM <share id>:<secret>`` from another site, and a
Stat as the caller says editor or viewer. Refusals go through the one table
(:mod:`cs3collab.service.errors`). With replicas the calls and messages are
done where the notebook's kernel runs, on this replica or relayed to another
(:mod:`cs3collab.service.kernel_relay`).
"""

from __future__ import annotations

import json
import logging

import tornado.websocket
from cs3.storage.provider.v1beta1 import resources_pb2 as storage

from cs3collab.cs3.refs import format_resource_id
from cs3collab.service import ids
from cs3collab.service.errors import RequestError, close_for
from cs3collab.service.execution import KernelParticipant
from cs3collab.service.handlers import APIHandler, ServiceContext, authenticate
from cs3collab.service.identity import Access, Identity, resolve_access
from cs3collab.service.protocol import CloseCode
from cs3collab.service.room import Participant

log = logging.getLogger("cs3collab.service.kernel_handlers")

MAX_KERNEL_FRAME = 8 * 1024 * 1024
CHANNELS = ("shell", "control", "stdin")


async def _notebook_access(session, file_id: str) -> Access:
    try:
        resource_id = ids.resource_id_for(file_id)
    except ValueError as exc:
        raise RequestError(400, str(exc)) from None
    access = await resolve_access(session, resource_id)
    if access.info.type != storage.RESOURCE_TYPE_FILE:
        raise RequestError(400, "shared kernels run notebooks only, not folders")
    return access


class _Silent:
    """The connection of a REST caller: nothing is ever sent to it."""

    def send(self, message: bytes) -> None:
        return None

    def close(self, code: int, reason: str) -> None:
        return None


class KernelHandler(APIHandler):
    """``GET``/``POST /api/collaboration/kernel/{fileId}[/interrupt|/restart]``."""

    async def _caller(self, file_id: str) -> tuple[str, Access, Participant]:
        session = await self.authenticate()
        access = await _notebook_access(session, file_id)
        participant = Participant(_Silent(), Identity.from_session(session), access.role, session)
        return format_resource_id(access.info.id), access, participant

    async def get(self, file_id: str, action: str | None = None) -> None:
        try:
            if action:
                raise RequestError(405, "use POST")
            key, access, participant = await self._caller(file_id)
            self.write_json(await self.context.execution.act(key, "status", file_id, access.info.id, participant))
        except Exception as exc:  # noqa: BLE001 - answered by the one table
            self.fail(exc)

    async def post(self, file_id: str, action: str | None = None) -> None:
        try:
            key, access, participant = await self._caller(file_id)
            if action not in (None, "interrupt", "restart"):
                raise RequestError(404, f"no kernel action {action[:40]!r}")
            self.write_json(await self.context.execution.act(key, action or "start", file_id, access.info.id,
                                                             participant))
        except Exception as exc:  # noqa: BLE001
            self.fail(exc)


class KernelChannelsHandler(tornado.websocket.WebSocketHandler):
    """``WS /api/collaboration/kernel/{fileId}/channels``: one participant on one shared kernel."""

    def initialize(self, context: ServiceContext) -> None:
        self.context = context
        self.channel: KernelParticipant | None = None
        self.key: str | None = None
        self._closed = False
        self._pending = 0

    def check_origin(self, origin: str) -> bool:
        return True  # tokens, not cookies, authenticate here

    @property
    def max_message_size(self) -> int:
        return MAX_KERNEL_FRAME

    async def open(self, file_id: str) -> None:
        self.set_nodelay(True)
        try:
            session, _federated = await authenticate(self.context, self, allow_query=True)
            access = await _notebook_access(session, file_id)
        except Exception as exc:  # noqa: BLE001
            code, reason = close_for(exc)
            log.info("kernel channel refused file=%s code=%s reason=%s", file_id[:120], code, reason)
            self.close(code, reason)
            return
        if self._closed:
            return
        participant = Participant(self, Identity.from_session(session), access.role, session)
        self.key = format_resource_id(access.info.id)
        self.channel = KernelParticipant(participant, file_id, access.info.id)
        self.context.execution.attach(self.channel, self.key)

    async def on_message(self, message: str | bytes) -> None:
        if self.channel is None or self._closed:
            return
        if isinstance(message, bytes):
            self.close(CloseCode.POLICY, "binary kernel frames are not accepted; send JSON text")
            return
        try:
            msg = json.loads(message)
            if not isinstance(msg, dict) or msg.get("channel") not in CHANNELS:
                raise ValueError("channel must be shell, control or stdin")
            header = msg.get("header")
            if not isinstance(header, dict) or not isinstance(header.get("msg_id"), str) \
                    or not isinstance(header.get("msg_type"), str):
                raise ValueError("header.msg_id and header.msg_type are required")
            for part in ("parent_header", "metadata", "content"):
                if not isinstance(msg.get(part) or {}, dict):
                    raise ValueError(f"{part} must be an object")
        except ValueError as exc:
            log.warning("bad kernel frame room=%s user=%s error=%s", self.key, self.channel.runner.user, exc)
            self.close(CloseCode.POLICY, f"not a Jupyter message: {exc}"[:120])
            return
        try:
            await self.context.execution.send(self.channel, self.key, msg)
        except Exception:  # noqa: BLE001 - this message is lost, the channel and the kernel carry on
            log.exception("kernel message failed room=%s user=%s", self.key, self.channel.runner.user)

    def on_close(self) -> None:
        self._closed = True
        if self.channel is not None and self.key is not None:
            self.context.execution.detach(self.channel, self.key)

    # -- the participant's connection ------------------------------------------------

    def send(self, message: bytes) -> None:
        """Room frames are never sent on a kernel channel (a Participant's connection)."""
        return None

    def send_json_text(self, message: dict) -> None:
        """Queue one kernel message; a participant too slow to take them is disconnected."""
        if self._closed or self.ws_connection is None:
            return
        if self._pending > self.context.max_pending:
            log.warning("kernel channel too slow, disconnecting room=%s user=%s pending=%d",
                        self.key, self.channel.runner.user if self.channel else "-", self._pending)
            self.close(CloseCode.POLICY, "client too slow to receive kernel messages")
            return
        text = json.dumps(message)
        self._pending += len(text)
        try:
            future = self.write_message(text)
        except tornado.websocket.WebSocketClosedError:
            self._pending -= len(text)
            return
        future.add_done_callback(lambda f, size=len(text): self._sent(f, size))

    def _sent(self, future, size: int) -> None:
        self._pending -= size
        if not future.cancelled():
            future.exception()  # a closed socket is handled by on_close

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        if not self._closed:
            self._closed = True
            super().close(code, reason)
            if self.channel is not None and self.key is not None:
                self.context.execution.detach(self.channel, self.key)


def kernel_routes(context: ServiceContext) -> list[tuple]:
    return [
        (r"/api/collaboration/kernel/([^/]+)/channels", KernelChannelsHandler, {"context": context}),
        (r"/api/collaboration/kernel/([^/]+)/(interrupt|restart)", KernelHandler, {"context": context}),
        (r"/api/collaboration/kernel/([^/]+)", KernelHandler, {"context": context}),
    ]
