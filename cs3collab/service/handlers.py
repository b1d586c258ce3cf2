"""HTTP and WebSocket handlers of the collaboration service: thin by design.

Each handler parses the request, authenticates the CS3 token, calls one
service object and writes the answer; errors are translated by
:mod:`cs3collab.service.errors`. The routes are those of jupyter-collaboration
so that the stock JupyterLab frontend works unchanged:

* ``PUT /api/collaboration/session/{path}`` → ``{format, type, fileId, sessionId}``
* ``WS  /api/collaboration/room/{format}:{type}:{fileId}?sessionId=...``
* ``WS  /api/collaboration/room/JupyterLab:globalAwareness``

Authentication: ``Authorization: Bearer <CS3 access token>`` (``token`` is
accepted as the scheme too), or a ``token`` query parameter on WebSockets;
participants from other sites present ``Authorization: OCM <share id>:<secret>``
instead (see :mod:`cs3collab.service.federation`), and may name the file of a
session as ``ocm:<share id>``.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import tornado.web
import tornado.websocket
from cs3.storage.provider.v1beta1 import resources_pb2 as storage

from cs3collab.cs3 import PermissionDenied, Session, Unauthenticated
from cs3collab.cs3.refs import format_resource_id, parse_resource_id
from cs3collab.service import documents, ids, metrics
from cs3collab.service.errors import RequestError, close_for, message_for, refusal_for
from cs3collab.service.federation import (PATH_PREFIX, SCHEME, FederatedCaller, OCMCredentials,
                                          may_be_code_flow_token, share_reference)
from cs3collab.service.identity import Identity, RecentAccess, resolve_access
from cs3collab.service.guard import UpdateRefused
from cs3collab.service.limits import Admission, ConnectionLimits
from cs3collab.service.protocol import CloseCode, ProtocolError, raw_json_message, save_reply, session_close_reason
from cs3collab.service.room import JournalUnavailable, Participant, Room

log = logging.getLogger("cs3collab.service.handlers")

GLOBAL_AWARENESS = "JupyterLab:globalAwareness"


def reference_for(path: str, caller: FederatedCaller | None = None) -> Any:
    """A session request names a file by CS3 path (``/home/einstein/a.ipynb``;
    tornado has already decoded the URL, so ``%`` in a name stays a ``%``)
    or, for a recipient who knows it only by id, by resource id in Reva form
    (``storage$space!opaque``) or as a fileId (``b64.…``); a participant from
    another site names it ``ocm:<share id>`` (her credentials' share)."""
    if path.startswith(PATH_PREFIX):
        return share_reference(path, caller)
    if path.startswith("/"):
        return path
    try:
        return ids.resource_id_for(path) if path.startswith("b64.") else parse_resource_id(path)
    except ValueError:
        raise RequestError(400, f"not a CS3 path or resource id: {path[:100]!r}") from None


class ServiceContext:
    """What the handlers share: set up by the app, passed to every handler."""

    def __init__(self, *, authenticator, registry, session_id: str, global_room: Room, max_pending: int,
                 federation=None, limits: ConnectionLimits | None = None, execution=None,
                 recent_access: RecentAccess | None = None) -> None:
        self.authenticator = authenticator
        self.federation = federation
        self.registry = registry
        self.session_id = session_id
        self.global_room = global_room
        self.max_pending = max_pending
        self.limits = limits if limits is not None else ConnectionLimits()
        self.execution = execution  # shared kernels (cs3collab.service.execution.SharedExecution)
        self.recent_access = recent_access if recent_access is not None else RecentAccess(0)


def _credentials_from(handler: tornado.web.RequestHandler, allow_query: bool) -> str | OCMCredentials:
    header = handler.request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "token") and value.strip():
        return value.strip()
    if scheme.lower() == SCHEME:
        return OCMCredentials.parse(value)
    if allow_query:
        token = handler.get_query_argument("token", "")
        if token:
            return token
    raise Unauthenticated(
        "no CS3 access token (Authorization: Bearer <token>) nor OCM credentials (Authorization: OCM <id>:<secret>)",
        operation="authenticate",
    )


async def authenticate(
    context: ServiceContext, handler: tornado.web.RequestHandler, allow_query: bool
) -> tuple[Session, FederatedCaller | None]:
    """The caller's session, and the OCM share it is scoped to (None for a local user).

    A bearer token that WhoAmI refuses may be a token of the OCM code flow
    (scoped to one share, which Reva's scope does not let call WhoAmI): with
    federation on, it is then tried as one (``ocmexchangedtoken``), naming
    the share the request names (``ocm_share_hint`` of the handler)."""
    credentials = _credentials_from(handler, allow_query)
    peer = handler.request.remote_ip or "-"
    if isinstance(credentials, OCMCredentials):
        if context.federation is None:
            raise Unauthenticated("this service takes no OCM credentials", operation="authenticate")
        caller = await context.federation.login(credentials, peer=peer)
        return caller.session, caller
    try:
        return await context.authenticator.authenticate(credentials), None
    except (Unauthenticated, PermissionDenied) as exc:
        if context.federation is None or not may_be_code_flow_token(credentials):
            raise
        hint = getattr(handler, "ocm_share_hint", lambda: "")()
        try:
            caller = await context.federation.login_exchanged(credentials, hint, peer=peer)
        except Unauthenticated:
            raise exc from None
        return caller.session, caller


class APIHandler(tornado.web.RequestHandler):
    """Base of the REST handlers: JSON answers, JSON errors."""

    def initialize(self, context: ServiceContext) -> None:
        self.context = context
        self.federated: FederatedCaller | None = None

    async def authenticate(self) -> Session:
        session, self.federated = await authenticate(self.context, self, allow_query=False)
        return session

    def ocm_share_hint(self) -> str:
        """The OCM share id this request names (``ocm:<id>`` session path), if any."""
        from urllib.parse import unquote

        for arg in self.path_args:
            value = unquote(arg) if isinstance(arg, str) else ""
            if value.startswith(PATH_PREFIX):
                return value[len(PATH_PREFIX):].partition("/")[0]
        return ""

    def write_json(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))

    def fail(self, exc: BaseException) -> None:
        refusal = refusal_for(exc)
        metrics.refused(refusal.reason)
        if refusal.http_status >= 500:
            log.error("request failed path=%s error=%r", self.request.path, exc)
        self.write_json({"error": refusal.reason, "message": message_for(exc)}, refusal.http_status)

    def json_body(self) -> dict:
        try:
            body = json.loads(self.request.body or b"{}")
        except json.JSONDecodeError:
            raise RequestError(400, "the request body is not JSON") from None
        if not isinstance(body, dict):
            raise RequestError(400, "the request body is not a JSON object")
        return body


class SessionHandler(APIHandler):
    """``PUT /api/collaboration/session/{path}``: which room holds this file."""

    async def put(self, path: str) -> None:
        try:
            session = await self.authenticate()
            body = self.json_body()
            try:
                kind = documents.kind_for(str(body.get("type", "")), str(body.get("format", "")))
            except ValueError as exc:
                raise RequestError(400, str(exc)) from None
            access = await resolve_access(session, reference_for(path, self.federated))
            if access.info.type != storage.RESOURCE_TYPE_FILE:
                raise RequestError(400, f"{access.info.path or path} is not a file")
            file_id = ids.file_id_for(access.info.id)
            self.context.recent_access.lend(session.token, file_id, access)
            log.info("session user=%s path=%s room=%s role=%s", session.username, access.info.path, file_id, access.role)
            self.write_json(
                {"format": kind.fmt, "type": kind.doc_type, "fileId": file_id, "sessionId": self.context.session_id}
            )
        except Exception as exc:  # noqa: BLE001 - every error is answered by the one table
            self.fail(exc)


class RoomHandler(tornado.websocket.WebSocketHandler):
    """``WS /api/collaboration/room/{name}``: one participant of one room."""

    def initialize(self, context: ServiceContext) -> None:
        self.context = context
        self.participant: Participant | None = None
        self.room: Room | None = None
        self.live = None  # the room's owner (registry.LiveRoom); None for the global awareness room
        self._pending = 0
        self._closed = False
        self._closing = False
        self.federated: FederatedCaller | None = None
        self._admission: Admission | None = None

    def check_origin(self, origin: str) -> bool:
        # Tokens, not cookies, authenticate here, so a foreign page gains nothing.
        return True

    async def open(self, name: str) -> None:
        self.set_nodelay(True)  # small frames must not wait for Nagle's algorithm
        try:
            await self._join(name)
        except Exception as exc:  # noqa: BLE001
            code, reason = close_for(exc)
            refusal = refusal_for(exc).reason
            metrics.refused(refusal)
            if refusal == "internal_error":  # a bug, not a refusal: its traceback goes to the log
                log.exception("room join failed name=%s code=%s", name[:120], code)
            else:
                log.info("room refused name=%s code=%s reason=%s", name[:120], code, reason)
            self.close(code, reason)

    async def _join(self, name: str) -> None:
        session, self.federated = await authenticate(self.context, self, allow_query=True)
        identity = Identity.from_session(session)
        self._admission = self.context.limits.admit(identity, name[:120])  # per-user and per-site limits
        if self._closed:  # the client left while it was being authenticated: on_close has run
            self.context.limits.release(self._admission)
            return
        if name == GLOBAL_AWARENESS:
            self.room = self.context.global_room
            self.participant = Participant(self, identity, "viewer", session)
            self.room.join(self.participant)
            return
        try:
            fmt, doc_type, file_id = ids.parse_room_name(name)
            kind = documents.kind_for(doc_type, fmt)
            resource_id = ids.resource_id_for(file_id)
        except ValueError as exc:
            raise RequestError(400, str(exc)) from None
        session_id = self.get_query_argument("sessionId", "")
        if session_id and session_id != self.context.session_id:
            self.close(CloseCode.SESSION, session_close_reason("unknown_session", "", reloadable=True))
            return
        access = self.context.recent_access.take(session.token, file_id) or await resolve_access(session, resource_id)
        live = await self.context.registry.open(format_resource_id(access.info.id), kind, file_id, access.info.id, session)
        self.live = live
        self.room = live.room
        self.participant = Participant(self, identity, access.role, session)
        live.room.join(self.participant)
        if self._closed:  # the client left while the room was loading
            self.on_close()
            return
        if not access.can_edit or live.read_only:
            self.send(live.room.role_message(self.participant))
        if live.save_problem:  # a tab that joins while saves fail is told too
            self.send(raw_json_message(live.save_problem))

    async def on_message(self, message: str | bytes) -> None:
        if self.participant is None or self.room is None or self._closed or self._closing:
            return
        if isinstance(message, str):
            self.close(CloseCode.POLICY, "text frames are not part of the protocol")
            return
        try:
            await self.room.receive(self.participant, message, self._save)
        except ProtocolError as exc:
            log.warning("protocol error room=%s user=%s error=%s", self.room.key, self.participant.identity.label, exc)
            self.close(CloseCode.POLICY, str(exc)[:120])
        except (UpdateRefused, JournalUnavailable) as exc:
            code, reason = close_for(exc)
            log.warning("update refused room=%s user=%s site=%s code=%s error=%s",
                        self.room.key, self.participant.identity.label, self.participant.identity.idp, code, exc)
            self.close(code, reason)
        except Exception as exc:  # noqa: BLE001 - a bug must close only this connection, with a reason
            log.exception("frame handling failed room=%s user=%s site=%s",
                          self.room.key, self.participant.identity.label, self.participant.identity.idp)
            self.close(*close_for(exc))

    def _save(self, participant: Participant, save_id: int) -> None:
        """A save request (Ctrl+S): answered when the save is done, without
        holding up this connection's next frames meanwhile."""

        asked = time.monotonic()

        def reply(status: str, new_version: bool = False) -> None:
            participant.connection.send(save_reply(save_id, status, new_version))
            log.info("save request answered room=%s user=%s site=%s status=%s new_version=%s seconds=%.2f",
                     self.room.key if self.room else "-", participant.identity.label, participant.identity.idp,
                     status, new_version, time.monotonic() - asked)

        live = self.live
        if not participant.can_edit or live is None:
            reply("failed")
            return
        live.request_save(reply)

    def on_close(self) -> None:
        self._closed = True
        if self._admission is not None:
            self.context.limits.release(self._admission)
        if self.participant is not None and self.room is not None and self.participant in self.room.participants:
            self.room.leave(self.participant)
            if self.room is not self.context.global_room:
                self.context.registry.released(self.room.key)

    # -- Connection ------------------------------------------------------------

    def send(self, message: bytes) -> None:
        """Queue a frame; a client that falls too far behind is disconnected."""
        if self._closed or self.ws_connection is None:
            return
        if self._pending > self.context.max_pending:
            log.warning("client too slow, disconnecting room=%s pending=%d", getattr(self.room, "key", "-"), self._pending)
            self.close(CloseCode.POLICY, "client too slow to receive updates")
            return
        size = len(message)
        self._pending += size
        try:
            future = self.write_message(message, binary=True)
        except tornado.websocket.WebSocketClosedError:
            self._pending -= size
            return
        future.add_done_callback(lambda f, size=size: self._sent(f, size))

    def _sent(self, future, size: int) -> None:
        self._pending -= size
        if not future.cancelled():
            future.exception()  # a closed socket is handled by on_close

    def send_json(self, payload: dict) -> None:
        self.send(raw_json_message(payload))

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        self._closing = True  # frames already on their way are not handled any more
        if not self._closed:
            super().close(code, reason)
