"""A notebook in CS3 runs in its shared kernel, at the site that stores it.

This Jupyter server does not start a kernel for such a notebook: its kernel
session is mapped to the notebook's shared kernel, owned by the collaboration
service of the notebook's site (``/api/collaboration/kernel/{fileId}``), the
way jupyter_server's gateway mode maps sessions to a remote gateway's
kernels, but chosen per notebook. Three classes, configured by the extension
as it configures the contents manager:

* :class:`SharedKernelSessionManager` (``ServerApp.session_manager_class``):
  a ``notebook`` session for a CS3 notebook asks the kernel manager for the
  shared kernel instead of a local one; any other session (consoles,
  notebooks not in CS3) starts a local kernel as usual;
* :class:`SharedKernelManager` (``ServerApp.kernel_manager_class``): keeps a
  :class:`SharedKernelHandle` among its kernels, under a kernel id derived
  from the service and the notebook's fileId (so the same notebook maps to
  the same id after this server restarts); interrupt and restart go to the
  service; "shut down" only detaches this server (the kernel is everyone's);
* :class:`SharedKernelWebsocketConnection`
  (``ServerApp.kernel_websocket_connection_class``): for a shared kernel,
  relays ``/api/kernels/{id}/channels`` to the service's kernel WebSocket with
  this server's credentials (its user's CS3 token at home, the OCM share's
  secret for a notebook from another site); for a local kernel it is
  jupyter_server's ZMQ connection, unchanged.

The browser speaks the legacy (JSON text) kernel WebSocket protocol on shared
kernels; the frontend supports both and the service relays JSON only.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import uuid
from urllib.parse import quote

import httpx
from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from jupyter_server.services.sessions.sessionmanager import SessionManager
from jupyter_server.utils import ensure_async
from tornado import httpclient, web
from tornado.websocket import WebSocketClientConnection, WebSocketClosedError, websocket_connect
from traitlets.config import LoggingConfigurable

from cs3collab.jupyter.bridge import ServiceUnavailable
from cs3collab.jupyter.ocm_remote import OCMTarget, owning_site

_ID_NAMESPACE = uuid.UUID("0b7e4f1e-7d0c-4c8e-9d0a-6a3f5b2c1d94")
KERNEL_PREFIX = "/api/collaboration/kernel/"
LOST = 1011


class SharedKernelHandle(LoggingConfigurable):
    """What this server knows of a shared kernel: where it is and how to reach it.

    Stands where jupyter_server keeps a KernelManager (its ``parent`` is the
    kernel manager), with the attributes its kernel model and kernel
    WebSocket read.

    Args:
        kernel_id: this server's id for it; kernel_name: the name the frontend asked for.
        service_url: the owning site's collaboration service; file_id: the notebook there.
        remote: for a notebook of another site, its service and the OCM share's credentials.
    """

    def __init__(self, kernel_id: str, kernel_name: str, service_url: str, file_id: str,
                 remote: OCMTarget | None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.kernel_id = kernel_id
        self.kernel_name = kernel_name
        self.service_url = service_url
        self.file_id = file_id
        self.remote = remote
        self.last_activity = datetime.datetime.now(datetime.timezone.utc)
        self.execution_state = "idle"
        self.reason = ""

    def update_env(self, *, env: dict) -> None:
        """A shared kernel's environment is the owning site's, not this server's: ignored."""

    @property
    def url(self) -> str:
        return f"{self.service_url}{KERNEL_PREFIX}{quote(self.file_id, safe='')}"

    def ws_url(self) -> str:
        base = "ws" + self.url[len("http"):] if self.url.startswith("http") else self.url
        return base + "/channels"


class SharedKernelManager(AsyncMappingKernelManager):
    """The kernels of this server: local ones, and handles of shared ones."""

    def _bridge(self):
        from cs3collab.jupyter.app import EXTENSION_NAME

        app = self.parent
        point = app.extension_manager.extension_points.get(EXTENSION_NAME) if app is not None else None
        bridge = getattr(getattr(point, "app", None), "bridge", None)
        if bridge is None:
            raise web.HTTPError(503, "the cs3collab extension is not loaded")
        return bridge

    def is_shared(self, kernel_id: str) -> bool:
        return isinstance(self._kernels.get(kernel_id), SharedKernelHandle)

    async def authorization(self, handle: SharedKernelHandle) -> str:
        if handle.remote is not None:
            return await handle.remote.authorization_header()
        return f"Bearer {(await self._bridge()._session()).token}"

    async def start_shared_kernel(self, path: str, kernel_name: str | None, contents_manager) -> str | None:
        """The kernel id of ``path``'s shared kernel (attached, started for an editor),
        or None when the notebook is not in CS3 (then it gets a local kernel)."""
        cs3_reference = getattr(contents_manager, "cs3_reference", None)
        if cs3_reference is None or not path.endswith(".ipynb"):
            return None
        try:
            # a notebook another site owns (an OCM share, or inside a shared folder): its kernel is there
            reference = await owning_site(contents_manager, path) or await ensure_async(cs3_reference(path))
        except Exception as exc:  # noqa: BLE001 - not a CS3 notebook: a local kernel
            self.log.info("cs3collab: %s gets a local kernel (%s)", path, exc)
            return None
        bridge = self._bridge()
        try:
            status, body = await bridge.open_session(reference, json.dumps({"format": "json", "type": "notebook"}).encode())
        except ServiceUnavailable as exc:
            self.log.warning("cs3collab: no shared kernel for %s: %s", path, exc)
            raise web.HTTPError(503, "the notebook's collaboration service is not reachable") from exc
        if status != 200:
            raise web.HTTPError(status, f"the notebook's collaboration service refused it: {body[:200].decode(errors='replace')}")
        file_id = str(json.loads(body)["fileId"])
        remote = reference if isinstance(reference, OCMTarget) else None
        service_url = remote.service_url if remote is not None else await bridge.service_url()
        kernel_id = str(uuid.uuid5(_ID_NAMESPACE, f"{service_url}|{file_id}"))
        handle = SharedKernelHandle(kernel_id, kernel_name or "python3", service_url, file_id, remote, parent=self)
        answer = await self._call(handle, "POST", "")
        if answer.status_code == 503:
            # the kernel cannot start now (a limit, a missing provisioner): the session still
            # maps to it; each run is answered with the reason, in the cell, and retries the start
            self.log.warning("cs3collab: the shared kernel of %s did not start: %s", path, _message(answer))
            handle.reason = _message(answer)
        if answer.status_code in (403, 503):  # a viewer: attached, to watch an editor's kernel
            answer = await self._call(handle, "GET", "")
        if answer.status_code != 200:
            raise web.HTTPError(answer.status_code, _message(answer))
        handle.execution_state = _state(answer.json())
        self._kernels[kernel_id] = handle
        self.log.info("cs3collab: %s uses the shared kernel at %s (kernel %s)", path, service_url, kernel_id)
        return kernel_id

    async def _call(self, handle: SharedKernelHandle, method: str, action: str) -> httpx.Response:
        url = handle.url + (f"/{action}" if action else "")
        try:
            async with httpx.AsyncClient(timeout=90) as http:
                return await http.request(method, url, headers={"Authorization": await self.authorization(handle)})
        except httpx.HTTPError as exc:
            raise web.HTTPError(503, f"the notebook's collaboration service is not reachable: {exc}") from exc

    # -- jupyter_server's kernel API, for shared kernels ---------------------------------

    def kernel_model(self, kernel_id):
        handle = self._kernels.get(kernel_id)
        if isinstance(handle, SharedKernelHandle):
            return {"id": kernel_id, "name": handle.kernel_name, "last_activity": handle.last_activity.isoformat(),
                    "execution_state": handle.execution_state, "connections": self._kernel_connections.get(kernel_id, 0)}
        return super().kernel_model(kernel_id)

    async def interrupt_kernel(self, kernel_id, *args, **kwargs):
        handle = self._kernels.get(kernel_id)
        if not isinstance(handle, SharedKernelHandle):
            return await super().interrupt_kernel(kernel_id, *args, **kwargs)
        answer = await self._call(handle, "POST", "interrupt")
        if answer.status_code != 200:
            raise web.HTTPError(answer.status_code, _message(answer))

    async def restart_kernel(self, kernel_id, *args, **kwargs):
        handle = self._kernels.get(kernel_id)
        if not isinstance(handle, SharedKernelHandle):
            return await super().restart_kernel(kernel_id, *args, **kwargs)
        answer = await self._call(handle, "POST", "restart")
        if answer.status_code != 200:
            raise web.HTTPError(answer.status_code, _message(answer))
        handle.execution_state = _state(answer.json())

    async def shutdown_kernel(self, kernel_id, *args, **kwargs):
        handle = self._kernels.get(kernel_id)
        if not isinstance(handle, SharedKernelHandle):
            return await super().shutdown_kernel(kernel_id, *args, **kwargs)
        # the kernel is everyone's: this server only lets go of it
        self._kernels.pop(kernel_id, None)
        self.log.info("cs3collab: detached from shared kernel %s", kernel_id)

    async def shutdown_all(self, now=False):
        for kernel_id in [k for k, v in self._kernels.items() if isinstance(v, SharedKernelHandle)]:
            self._kernels.pop(kernel_id, None)
        await super().shutdown_all(now=now)

    async def cull_kernel_if_idle(self, kernel_id):
        if self.is_shared(kernel_id):
            return  # the owning service culls shared kernels
        return await super().cull_kernel_if_idle(kernel_id)


class SharedKernelSessionManager(SessionManager):
    """Sessions whose notebook is in CS3 get the notebook's shared kernel."""

    async def start_kernel_for_session(self, session_id, path, name, type, kernel_name, kernel_id=None):
        manager = self.kernel_manager
        self.log.debug("cs3collab: kernel for session path=%s type=%s kernel=%s", path, type, kernel_name)
        if isinstance(manager, SharedKernelManager) and type == "notebook" and path and kernel_id is None:
            shared = await manager.start_shared_kernel(path, kernel_name, self.contents_manager)
            if shared is not None:
                return shared
        return await super().start_kernel_for_session(session_id, path, name, type, kernel_name, kernel_id)

    async def update_session(self, session_id, **kwargs):
        """JupyterLab creates a notebook's session under a placeholder path (a
        uuid) and then PATCHes the real path: that is when a CS3 notebook's
        session moves to the shared kernel (the sessions handler then shuts
        the placeholder's local kernel down, and the frontend follows the new
        kernel id in the PATCH answer)."""
        manager = self.kernel_manager
        path = kwargs.get("path")
        if path and "kernel_id" not in kwargs and isinstance(manager, SharedKernelManager):
            model = await self.get_session(session_id=session_id)
            kernel = model.get("kernel") or {}
            if model.get("type") == "notebook" and kernel.get("id") and not manager.is_shared(kernel["id"]):
                try:
                    shared = await manager.start_shared_kernel(path, kernel.get("name"), self.contents_manager)
                except Exception as exc:
                    # A notebook in CS3 never keeps a private local kernel: the placeholder session
                    # and its local kernel go, and JupyterLab shows the reason ("Error Starting
                    # Kernel"); choosing the kernel again opens a new session.
                    self.log.warning("cs3collab: no shared kernel for %s, its placeholder session is removed: %s",
                                     path, getattr(exc, "log_message", None) or exc)
                    await self.delete_session(session_id)
                    raise
                if shared is not None:
                    kwargs["kernel_id"] = shared
        return await super().update_session(session_id, **kwargs)


class SharedKernelWebsocketConnection(ZMQChannelsWebsocketConnection):
    """``/api/kernels/{id}/channels``: relayed to the service for a shared kernel, ZMQ otherwise.

    For a shared kernel, the relay from the service is the one task this
    connection owns: started in ``connect``, ended by ``disconnect`` or when
    the service closes (whose close code and reason reach the browser).
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._shared = isinstance(self.parent, SharedKernelHandle)
        if self._shared:
            self.kernel_ws_protocol = ""  # legacy JSON frames: what the service relays
        self._upstream: WebSocketClientConnection | None = None
        self._relay_task: asyncio.Task | None = None

    async def prepare(self):
        if not self._shared:
            return await super().prepare()
        return None

    async def connect(self):
        if not self._shared:
            return await super().connect()
        handle: SharedKernelHandle = self.parent
        manager: SharedKernelManager = self.multi_kernel_manager
        request = httpclient.HTTPRequest(handle.ws_url(), headers={"Authorization": await manager.authorization(handle)},
                                         connect_timeout=30, request_timeout=30)
        try:
            self._upstream = await websocket_connect(request, max_message_size=64 * 1024 * 1024)
        except (httpclient.HTTPClientError, OSError) as exc:
            self.log.warning("cs3collab: shared kernel %s not reachable: %s", handle.kernel_id, exc)
            self.websocket_handler.close(LOST, "the notebook's shared kernel is not reachable")
            return
        manager.notify_connect(handle.kernel_id)
        # the one task this connection owns; it ends when the service side closes (disconnect closes it)
        self._relay_task = asyncio.ensure_future(self._relay_from_service(self._upstream))

    async def _relay_from_service(self, upstream: WebSocketClientConnection) -> None:
        try:
            await self._relay(upstream)
        except Exception:  # noqa: BLE001 - never dies quietly: logged, and the browser is told
            self.log.exception("cs3collab: shared kernel relay failed (kernel %s)", self.parent.kernel_id)
            upstream.close()
            self.websocket_handler.close(LOST, "the connection to the notebook's shared kernel failed")

    async def _relay(self, upstream: WebSocketClientConnection) -> None:
        handle: SharedKernelHandle = self.parent
        while (message := await upstream.read_message()) is not None:
            if isinstance(message, str) and '"status"' in message:
                try:
                    msg = json.loads(message)
                    if msg.get("msg_type") == "status":
                        handle.execution_state = msg["content"].get("execution_state", handle.execution_state)
                        handle.last_activity = datetime.datetime.now(datetime.timezone.utc)
                except (ValueError, KeyError, AttributeError):
                    pass
            try:
                await self.websocket_handler.write_message(message, binary=isinstance(message, bytes))
            except WebSocketClosedError:
                upstream.close()
                return
        code, reason = upstream.close_code, upstream.close_reason
        if code is not None and (code in (1000, 1001, 1003, 1008, 1011) or 3000 <= code <= 4999):
            self.websocket_handler.close(code, reason)
        else:
            self.websocket_handler.close(LOST, "the connection to the notebook's shared kernel was lost")

    def handle_incoming_message(self, incoming_msg) -> None:
        if not self._shared:
            return super().handle_incoming_message(incoming_msg)
        if self._upstream is None:
            return
        if not isinstance(incoming_msg, str):
            self.log.warning("cs3collab: binary kernel frame not relayed to a shared kernel (%d bytes)", len(incoming_msg))
            return
        try:
            future = self._upstream.write_message(incoming_msg)
        except WebSocketClosedError:
            return
        future.add_done_callback(lambda f: f.cancelled() or f.exception())

    def disconnect(self):
        if not self._shared:
            return super().disconnect()
        if self._upstream is not None:
            self._upstream.close(1000, "the browser closed the connection")
            self._upstream = None
            self.multi_kernel_manager.notify_disconnect(self.parent.kernel_id)
        return None


def _state(status: dict) -> str:
    state = status.get("state", "idle")
    return {"none": "idle", "starting": "starting", "restarting": "restarting", "dead": "dead"}.get(state, state)


def _message(answer: httpx.Response) -> str:
    try:
        return str(answer.json().get("message", answer.text[:200]))
    except ValueError:
        return answer.text[:200]
