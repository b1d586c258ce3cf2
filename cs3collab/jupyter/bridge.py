"""The session and room bridge: the stock frontend's collaboration routes,
served by Jupyter and forwarded to the site's collaboration service.

The browser only ever talks to its own Jupyter server, authenticated the
Jupyter way (token or login cookie, plus XSRF on the session ``PUT``). This
module forwards its two collaboration calls to the collaboration service as
the server's CS3 user (``Authorization: Bearer <CS3 token>``); the CS3 token
stays in this process.

* ``PUT /api/collaboration/session/{path}``: the contents path the browser
  knows becomes a CS3 path or resource id (the contents manager owns that
  mapping, ``contents_manager.cs3_reference(path)``); the service answers
  ``{format, type, fileId, sessionId}``, which is returned as it came.
* ``WS /api/collaboration/room/{name}`` (document rooms and
  ``JupyterLab:globalAwareness``, which the frontend opens with no query
  string, so the login cookie alone must do): one service WebSocket per
  browser WebSocket; frames pass through unmodified in both directions; the
  service's close code and reason reach the browser unchanged (the frontend
  reads 1003 + JSON reason to show "access revoked" and similar dialogs).
* A notebook received through OCM from another site, or inside a folder
  received through OCM (:func:`~cs3collab.jupyter.ocm_remote.owning_site`
  gives an :class:`~cs3collab.jupyter.ocm_remote.OCMTarget`): the session
  ``PUT`` goes to *that site's* service, as ``ocm:<share id>`` or
  ``ocm:<share id>/<path inside the share>``, with the share's
  ``Authorization`` (``Bearer`` exchanged token, or ``OCM <share id>:<secret>``
  for OCM 1.1); the bridge remembers the room
  (fileId) the answer names, and the room WebSocket of that fileId goes
  there with the same credentials. This server's CS3 token never leaves
  for another site.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import parse_qsl, quote, urlencode

import httpx
import jwt
from cs3.storage.provider.v1beta1 import resources_pb2 as storage
from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.utils import ensure_async
from tornado import httpclient, web
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError, WebSocketHandler, websocket_connect

from cs3collab.cs3 import CS3Error, Session, Unauthenticated
from cs3collab.cs3.refs import format_resource_id
from cs3collab.jupyter.connection import CS3CollabConnection
from cs3collab.jupyter.ocm_remote import OCMTarget, owning_site

SESSION_ROUTE = r"/api/collaboration/session/(.*)"
ROOM_ROUTE = r"/api/collaboration/room/(.+)"
ROOM_PREFIX = "/api/collaboration/room/"

LOST = 1011
"""Close code for the browser when the service connection dropped without a
close frame (service restarted or unreachable): not special to the frontend,
so y-websocket reconnects."""


class ServiceUnavailable(Exception):
    """The collaboration service cannot be used right now (not configured,
    not started yet, unreachable)."""


def reference_segment(reference) -> str:
    """The URL path segment that names a file to the service: an absolute CS3
    path or a resource id in Reva form, percent-encoded (``/`` included).

    Args:
        reference: what ``cs3_reference`` returned: a path ``str``, a
            ``ResourceId``, a ``Reference`` to a path or to a resource itself,
            or ``(ResourceId, ".")``.
    """
    if isinstance(reference, tuple) and len(reference) == 2 and reference[1] in ("", "."):
        reference = reference[0]
    if isinstance(reference, storage.Reference):
        if reference.HasField("resource_id") and reference.path in ("", "."):
            reference = reference.resource_id
        elif not reference.HasField("resource_id") and reference.path.startswith("/"):
            reference = reference.path
    if isinstance(reference, storage.ResourceId):
        text = format_resource_id(reference)
    elif isinstance(reference, str) and reference.startswith("/"):
        text = reference
    else:
        raise TypeError(
            f"the collaboration service needs an absolute CS3 path or a resource id, got {reference!r}"
        )
    return quote(text, safe="")


TOKEN_MARGIN = 60.0
"""Seconds before its expiry at which a renewable session's token is renewed
before it is handed to the service (which checks it when a participant joins)."""


def _expires_within(token: str, seconds: float) -> bool:
    """Whether a JWT access token (Reva's kind) expires within ``seconds``.

    Read without verification: only to decide when to renew; tokens that are
    not JWTs, or carry no ``exp``, are never renewed early.
    """
    try:
        claims = jwt.decode(token, options={"verify_signature": False, "verify_exp": False})
    except jwt.PyJWTError:
        return False
    expiry = claims.get("exp")
    return isinstance(expiry, (int, float)) and expiry - time.time() < seconds


def _sendable(code: int | None) -> bool:
    """Whether ``code`` may appear in a close frame (RFC 6455 7.4)."""
    return code is not None and (code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011) or 3000 <= code <= 4999)


class CollaborationBridge:
    """Talks to the collaboration service as this server's CS3 user.

    One per Jupyter server, owned by the extension (which closes it in
    ``stop_extension``).

    Args:
        connection: the server's CS3 identity (shared with the contents
            manager and the identity provider).
        connect_timeout: seconds allowed to reach the service.
        request_timeout: seconds allowed for one session request.
        max_message_size: largest frame accepted from the service, in bytes.
    """

    def __init__(
        self,
        connection: CS3CollabConnection,
        *,
        connect_timeout: float = 10.0,
        request_timeout: float = 30.0,
        max_message_size: int = 128 * 1024 * 1024,
    ) -> None:
        self.connection = connection
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.max_message_size = max_message_size
        self._url: str | None = None
        self._unavailable: str | None = None
        self._known: asyncio.Event | None = None
        self._http: httpx.AsyncClient | None = None
        self._remote_rooms: dict[str, OCMTarget] = {}  # fileId -> the other site's room

    # -- where the service is ----------------------------------------------------

    def _event(self) -> asyncio.Event:
        if self._known is None:
            self._known = asyncio.Event()
        return self._known

    def set_service_url(self, url: str) -> None:
        """Point the bridge at the service (remote URL, or the embedded one once it listens)."""
        self._url = url.rstrip("/")
        self._unavailable = None
        self._event().set()

    def set_unavailable(self, why: str) -> None:
        """No service to forward to; requests are answered 503 with ``why``."""
        self._url = None
        self._unavailable = why
        self._event().set()

    async def service_url(self) -> str:
        """The service's base URL, waiting (up to connect_timeout) while the embedded one starts."""
        try:
            await asyncio.wait_for(self._event().wait(), self.connect_timeout)
        except asyncio.TimeoutError:
            raise ServiceUnavailable("the collaboration service has not started yet") from None
        if self._url is None:
            raise ServiceUnavailable(self._unavailable or "no collaboration service configured")
        return self._url

    async def _session(self) -> Session:
        """The server's CS3 session, its token renewed first if it is about to expire."""
        try:
            session = await self.connection.session()
            if session.renewable and _expires_within(session.token, TOKEN_MARGIN):
                await session.renew(stale_token=session.token)
            return session
        except Unauthenticated:
            raise
        except CS3Error as exc:
            raise ServiceUnavailable(f"CS3 is not reachable: {exc}") from exc

    # -- session PUT ---------------------------------------------------------------

    async def open_session(self, reference, body: bytes) -> tuple[int, bytes]:
        """Ask the service which room holds ``reference``; its (status, JSON body).

        A 401 from the service means the token went stale: a session that can
        renew itself (logged in with credentials) does so and the request is
        sent once more.
        """
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(self.request_timeout, connect=self.connect_timeout)
            )
        if isinstance(reference, OCMTarget):
            return await self._open_remote_session(reference, body)
        url = f"{await self.service_url()}/api/collaboration/session/{reference_segment(reference)}"
        session = await self._session()
        for attempt in (1, 2):
            token = session.token
            try:
                response = await self._http.put(
                    url,
                    content=body or b"{}",
                    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                )
            except httpx.HTTPError as exc:
                raise ServiceUnavailable(f"the collaboration service is not reachable: {exc}") from exc
            if response.status_code == 401 and attempt == 1 and session.renewable:
                await session.renew(stale_token=token)
                continue
            return response.status_code, response.content
        raise AssertionError("unreachable")

    async def _open_remote_session(self, target: OCMTarget, body: bytes) -> tuple[int, bytes]:
        url = f"{target.service_url}/api/collaboration/session/{target.session_path}"
        for attempt in (1, 2):
            try:
                response = await self._http.put(
                    url, content=body or b"{}",
                    headers={"Authorization": await target.authorization_header(),
                             "Content-Type": "application/json"},
                )
            except httpx.HTTPError as exc:
                raise ServiceUnavailable(f"the sharing site's collaboration service is not reachable: {exc}") from exc
            if response.status_code == 401 and target.must_exchange and attempt == 1:
                target.forget_token()  # an exchanged token that expired early: exchange the code again
                continue
            break
        if response.status_code == 200:
            try:
                file_id = response.json()["fileId"]
            except (ValueError, KeyError, TypeError):
                raise ServiceUnavailable("the sharing site's collaboration service answered no fileId") from None
            self._remote_rooms[str(file_id)] = target
        return response.status_code, response.content

    def remote_file(self, file_id: str) -> OCMTarget | None:
        """The other site's file behind a fileId this server opened a session
        for (an OCM share), or None for a file of this site."""
        return self._remote_rooms.get(file_id)

    def _remote_target(self, room_path: str) -> OCMTarget | None:
        """The other site's room a (percent-encoded) room name is in, if any."""
        from urllib.parse import unquote

        file_id = unquote(room_path).split(":", 2)[-1]
        return self._remote_rooms.get(file_id)

    # -- room WebSocket --------------------------------------------------------------

    async def connect_room(self, room_path: str, query: str) -> WebSocketClientConnection:
        """Open the service side of one room connection.

        Args:
            room_path: the room name exactly as it appeared in the browser's
                URL (still percent-encoded).
            query: the browser's query string without Jupyter's ``token``.
        """
        target = self._remote_target(room_path)
        if target is not None:
            base, authorization = target.service_url, await target.authorization_header()
        else:
            base, authorization = await self.service_url(), f"Bearer {(await self._session()).token}"
        ws_base = "ws" + base[len("http") :] if base.startswith("http") else base
        url = f"{ws_base}{ROOM_PREFIX}{room_path}" + (f"?{query}" if query else "")
        request = httpclient.HTTPRequest(
            url,
            headers={"Authorization": authorization},
            connect_timeout=self.connect_timeout,
            request_timeout=self.connect_timeout,
        )
        try:
            upstream = await websocket_connect(request, max_message_size=self.max_message_size)
        except httpclient.HTTPClientError as exc:
            raise ServiceUnavailable(f"the collaboration service refused the room connection: {exc}") from exc
        except OSError as exc:  # includes StreamClosedError, refused, timeouts
            raise ServiceUnavailable(f"the collaboration service is not reachable: {exc}") from exc
        if upstream.protocol is not None and upstream.protocol.stream is not None:
            upstream.protocol.stream.set_nodelay(True)  # small Yjs frames must not wait for Nagle
        return upstream

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def refusal(exc: BaseException) -> web.HTTPError:
    """One translation of what went wrong into the Jupyter API's HTTP error."""
    if isinstance(exc, web.HTTPError):
        return exc
    if isinstance(exc, ServiceUnavailable):
        return web.HTTPError(503, str(exc))
    if isinstance(exc, CS3Error):
        from cs3collab.service.errors import refusal_for

        return web.HTTPError(refusal_for(exc).http_status, str(exc))
    return web.HTTPError(500, f"{type(exc).__name__}: {exc}")


class SessionBridgeHandler(APIHandler):
    """``PUT /api/collaboration/session/{path}``, as jupyter-server-ydoc's
    ``DocSessionHandler``: authenticated, authorized on ``contents``, XSRF
    checked (the frontend sends ``X-XSRFToken``; token requests are exempt)."""

    auth_resource = "contents"

    def initialize(self, bridge: CollaborationBridge) -> None:
        super().initialize()
        self.bridge = bridge

    @web.authenticated
    @authorized
    async def put(self, path: str) -> None:
        try:
            cs3_reference = getattr(self.contents_manager, "cs3_reference", None)
            if cs3_reference is None:
                raise web.HTTPError(
                    500, f"{type(self.contents_manager).__name__} cannot name CS3 files (no cs3_reference)"
                )
            # a file another site owns (an OCM share, or inside a shared folder): its room is there
            reference = await owning_site(self.contents_manager, path)
            if reference is None:
                reference = await ensure_async(cs3_reference(path))
            status, body = await self.bridge.open_session(reference, self.request.body)
        except Exception as exc:  # noqa: BLE001 - answered as JSON by APIHandler.write_error
            error = refusal(exc)
            if error.status_code >= 500:
                self.log.warning("collaboration session for %s failed: %s", path, exc)
            raise error from exc
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(body)


class RoomBridgeHandler(WebSocketHandler, JupyterHandler):
    """``WS /api/collaboration/room/{name}``: one browser socket relayed to one
    service socket.

    Authenticated as jupyter-server-ydoc's room handler is (``ws_authenticated``
    + ``authorized`` on ``contents``): Jupyter's token or the login cookie,
    no XSRF. Keep-alive pings follow the server's ``websocket_ping_interval``.

    The relay from the service runs inside ``get``, which tornado awaits for
    the connection's whole life, so it ends with the connection; ``on_close``
    closes the service side when the browser goes away.
    """

    auth_resource = "contents"

    async def prepare(self, *args, **kwargs) -> None:
        # a WebSocket is refused (403), never redirected to the login page
        await super().prepare(*args, _redirect_to_login=False, **kwargs)

    def check_origin(self, origin: str | None = None) -> bool:
        # Jupyter's rule (same host, or ServerApp.allow_origin[_pat]), as for kernel sockets
        return WebSocketMixin.check_origin(self, origin)

    def initialize(self, bridge: CollaborationBridge) -> None:
        self.bridge = bridge
        self._upstream: WebSocketClientConnection | None = None
        self._opened = asyncio.Event()
        self._browser_closed = False

    @property
    def max_message_size(self) -> int:  # tornado's per-frame limit for the browser side
        return self.bridge.max_message_size

    def _room_path(self) -> str:
        """The room name as the browser wrote it (percent-encoding kept)."""
        return self.request.path.split(ROOM_PREFIX, 1)[1]

    def _forwarded_query(self) -> str:
        """The browser's query minus Jupyter's own ``token`` (never sent on)."""
        pairs = [(k, v) for k, v in parse_qsl(self.request.query, keep_blank_values=True) if k != "token"]
        return urlencode(pairs)

    @ws_authenticated
    @authorized
    async def get(self, *args, **kwargs) -> None:
        try:
            upstream = await self.bridge.connect_room(self._room_path(), self._forwarded_query())
        except Unauthenticated as exc:
            raise web.HTTPError(403, f"no CS3 session on this server: {exc}") from exc
        except ServiceUnavailable as exc:
            self.log.warning("room %s: %s", self._room_path()[:120], exc)
            raise web.HTTPError(503, str(exc)) from exc
        self._upstream = upstream
        async with asyncio.TaskGroup() as group:
            relay = group.create_task(self._relay_from_service(upstream))
            try:
                await super().get(*args, **kwargs)
            finally:
                upstream.close()  # no-op when the service closed first
                if not self._opened.is_set():
                    relay.cancel()  # the upgrade never happened: nothing to relay to

    async def open(self, *args, **kwargs) -> None:
        self.set_nodelay(True)
        self._opened.set()

    async def _relay_from_service(self, upstream: WebSocketClientConnection) -> None:
        """Service → browser, frame by frame; then the service's close, as it came."""
        await self._opened.wait()
        while (message := await upstream.read_message()) is not None:
            if self._browser_closed:
                continue  # drain until the service side is closed too
            try:
                await self.write_message(message, binary=isinstance(message, bytes))
            except WebSocketClosedError:
                self._browser_closed = True
        if not self._browser_closed:
            code, reason = upstream.close_code, upstream.close_reason
            if _sendable(code):
                self.close(code, reason)
            else:
                self.close(LOST, "collaboration service connection lost")

    async def on_message(self, message: str | bytes) -> None:
        """Browser → service; awaiting the write keeps the browser's pace to the service's."""
        upstream = self._upstream
        if upstream is None:
            return
        try:
            await upstream.write_message(message, binary=isinstance(message, bytes))
        except WebSocketClosedError:
            pass  # the relay closes the browser side with the service's code

    def on_close(self) -> None:
        self._browser_closed = True
        if self._upstream is not None:
            code = self.close_code if _sendable(self.close_code) else 1000
            self._upstream.close(code, "browser closed the connection")


def bridge_handlers(bridge: CollaborationBridge) -> list[tuple[str, type, dict]]:
    """The routes the extension installs (base_url is prepended by ExtensionApp)."""
    return [
        (SESSION_ROUTE, SessionBridgeHandler, {"bridge": bridge}),
        (ROOM_ROUTE, RoomBridgeHandler, {"bridge": bridge}),
    ]
