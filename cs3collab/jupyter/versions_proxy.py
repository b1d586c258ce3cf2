"""Version history for the labextension, served by Jupyter and forwarded to
the collaboration service.

The browser only talks to its own Jupyter server. The history panel of the
labextension calls these routes; each is authenticated the Jupyter way
(token or login cookie, XSRF on the writing verbs) and forwarded, as the
server's CS3 user (``Authorization: Bearer <CS3 token>``), to the service's
versions API (docs/architecture.md, "Versions and tags"):

* ``GET /api/cs3collab/file-id?path=<contents path>&type=notebook|file`` →
  ``{"fileId", "path"}``: the room's fileId of a contents path, asked of the
  service through the same session request the stock frontend makes
  (``contents_manager.cs3_reference`` names the file, the service answers
  with the fileId its rooms and versions use);
* ``GET|POST|DELETE /api/cs3collab/versions/{fileId}[/...]`` → the service's
  ``/api/collaboration/versions/{fileId}[/...]``, same tail, query and body;
  the service's status and JSON body (or text of a version) come back as
  they came, so its error table stays the one the browser sees.

The CS3 token never reaches the browser. A 401 from the service (stale
token) makes a renewable session renew and the request go once more.

A notebook another site shared with this server's user (an OCM share) has
its room and its versions at that site: once ``file-id`` named it (the
session request goes to the sharing site's service, as the stock frontend's
does, see bridge.py), its versions requests go to the same service with the
share's credentials (``OCMTarget.authorization_header()``, the header the room uses),
never with this site's CS3 token. The sharing site's service scopes them to
the share and its role (viewer or editor), as at home.
"""

from __future__ import annotations

import json
from urllib.parse import unquote

import httpx
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import ensure_async
from tornado import web

from cs3collab.cs3 import Unauthenticated
from cs3collab.jupyter.bridge import CollaborationBridge, ServiceUnavailable
from cs3collab.jupyter.bridge import refusal as bridge_refusal
from cs3collab.jupyter.ocm_remote import OCMTarget

FILE_ID_ROUTE = r"/api/cs3collab/file-id"
VERSIONS_ROUTE = r"/api/cs3collab/versions/(.+)"
VERSIONS_PREFIX = "/api/cs3collab/versions/"
SERVICE_PREFIX = "/api/collaboration/versions/"

FORWARDED_RESPONSE_HEADERS = ("Content-Type",)


def _checked_tail(tail: str) -> str:
    """The part of the URL after ``/api/cs3collab/versions/`` (still percent-encoded):
    ``{fileId}`` plus at most three segments, none of them empty, ``.`` or ``..``."""
    segments = tail.split("/")
    if not 1 <= len(segments) <= 4 or any(s in ("", ".", "..") for s in segments):
        raise web.HTTPError(400, "not a versions URL")
    return tail


def service_message(body: bytes) -> str:
    """The ``message`` of a service error answer (``{"error", "message"}``), or ""."""
    try:
        message = json.loads(body).get("message", "")
    except (ValueError, AttributeError):
        return ""
    return message if isinstance(message, str) else ""


class VersionsProxy:
    """Forwards version requests to the collaboration service as the server's CS3 user.

    Args:
        bridge: the server's collaboration bridge (it knows where the service
            is and holds the server's CS3 connection).
        request_timeout: seconds allowed for one request to the service
            (a restore waits for a save).
    """

    def __init__(self, bridge: CollaborationBridge, *, request_timeout: float = 60.0) -> None:
        self.bridge = bridge
        self.request_timeout = request_timeout
        self._http: httpx.AsyncClient | None = None

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(self.request_timeout, connect=self.bridge.connect_timeout)
            )
        return self._http

    async def forward(self, method: str, tail: str, query: str, body: bytes | None) -> httpx.Response:
        """One request to ``{service}/api/collaboration/versions/{tail}?{query}``
        (the sharing site's service for a file of an OCM share)."""
        tail = _checked_tail(tail)
        remote = self.bridge.remote_file(unquote(tail.split("/", 1)[0]))
        if remote is not None:
            return await self._forward_remote(remote, method, tail, query, body)
        url = f"{await self.bridge.service_url()}{SERVICE_PREFIX}{tail}"
        if query:
            url += f"?{query}"
        session = await self.bridge.connection.session()
        for attempt in (1, 2):
            token = session.token
            headers = {"Authorization": f"Bearer {token}"}
            if body is not None:
                headers["Content-Type"] = "application/json"
            try:
                response = await self._client().request(method, url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                raise ServiceUnavailable(f"the collaboration service is not reachable: {exc}") from exc
            if response.status_code == 401 and attempt == 1 and session.renewable:
                await session.renew(stale_token=token)
                continue
            return response
        raise AssertionError("unreachable")

    async def _forward_remote(
        self, target: OCMTarget, method: str, tail: str, query: str, body: bytes | None
    ) -> httpx.Response:
        url = f"{target.service_url}{SERVICE_PREFIX}{tail}" + (f"?{query}" if query else "")
        headers = {"Authorization": await target.authorization_header()}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            return await self._client().request(method, url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(f"the sharing site's collaboration service is not reachable: {exc}") from exc

    async def file_id(self, contents_manager, path: str, doc_type: str = "notebook") -> str:
        """The room's fileId of the contents ``path``, asked of the service
        through the session request the stock frontend makes; what went wrong
        as the Jupyter API's HTTP error (the service's status and words)."""
        fmt = "json" if doc_type == "notebook" else "text"
        try:
            cs3_reference = getattr(contents_manager, "cs3_reference", None)
            if cs3_reference is None:
                raise web.HTTPError(500, f"{type(contents_manager).__name__} cannot name CS3 files")
            reference = await ensure_async(cs3_reference(path))
            body = json.dumps({"format": fmt, "type": doc_type}).encode()
            status, answer = await self.bridge.open_session(reference, body)
        except Exception as exc:  # noqa: BLE001 - answered as JSON by APIHandler.write_error
            raise proxy_refusal(exc) from exc
        if status >= 400:
            raise web.HTTPError(status, service_message(answer) or f"the collaboration service answered {status}")
        return json.loads(answer)["fileId"]

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def proxy_refusal(exc: BaseException) -> web.HTTPError:
    """What went wrong, as the Jupyter API's HTTP error (answered as JSON by
    APIHandler): the bridge's translation, except that a server without a
    CS3 session is a 403 here (the panel is not a login)."""
    if isinstance(exc, Unauthenticated):
        return web.HTTPError(403, f"no CS3 session on this server: {exc}")
    return bridge_refusal(exc)


class FileIdHandler(APIHandler):
    """``GET /api/cs3collab/file-id?path=...&type=notebook``: the fileId of a contents path."""

    auth_resource = "contents"

    def initialize(self, proxy: VersionsProxy) -> None:
        super().initialize()
        self.proxy = proxy

    @web.authenticated
    @authorized
    async def get(self) -> None:
        path = self.get_query_argument("path", "").strip("/")
        doc_type = self.get_query_argument("type", "notebook")
        if not path:
            raise web.HTTPError(400, "path is required")
        if doc_type not in ("notebook", "file"):
            raise web.HTTPError(400, "type must be notebook or file")
        file_id = await self.proxy.file_id(self.contents_manager, path, doc_type)
        self.finish({"fileId": file_id, "path": path})


class VersionsProxyHandler(APIHandler):
    """``/api/cs3collab/versions/{fileId}[/...]``: forwarded to the service as it came."""

    auth_resource = "contents"

    def initialize(self, proxy: VersionsProxy) -> None:
        super().initialize()
        self.proxy = proxy

    def _tail(self) -> str:
        # the raw path keeps the percent-encoding of tag names and keys
        return self.request.path.split(VERSIONS_PREFIX, 1)[1]

    async def _forward(self, method: str, body: bytes | None) -> None:
        try:
            response = await self.proxy.forward(method, self._tail(), self.request.query, body)
        except Exception as exc:  # noqa: BLE001 - answered as JSON by APIHandler.write_error
            raise proxy_refusal(exc) from exc
        self.set_status(response.status_code)
        for name in FORWARDED_RESPONSE_HEADERS:
            if name in response.headers:
                self.set_header(name, response.headers[name])
        self.finish(response.content)

    @web.authenticated
    @authorized
    async def get(self, _tail: str) -> None:
        await self._forward("GET", None)

    @web.authenticated
    @authorized
    async def post(self, _tail: str) -> None:
        await self._forward("POST", self.request.body or b"{}")

    @web.authenticated
    @authorized
    async def delete(self, _tail: str) -> None:
        await self._forward("DELETE", None)


def versions_handlers(proxy: VersionsProxy) -> list[tuple[str, type, dict]]:
    """The routes the extension installs (base_url is prepended by ExtensionApp)."""
    return [
        (FILE_ID_ROUTE, FileIdHandler, {"proxy": proxy}),
        (VERSIONS_ROUTE, VersionsProxyHandler, {"proxy": proxy}),
    ]

