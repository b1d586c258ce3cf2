"""``cs3collab``: the Jupyter server extension that puts a Jupyter server on CS3.

Installing the package enables it (``etc/jupyter/jupyter_server_config.d/
zz_cs3collab.json``) and disables jupyter-server-ydoc if that happens to be
installed: the collaboration routes are ours. The extension

* makes the server's contents CS3 storage and its user a CS3 user
  (``ServerApp.contents_manager_class``, ``ServerApp.identity_provider_class``,
  unless the configuration names other classes explicitly);
* shares one :class:`CS3CollabConnection` between the contents manager, the
  identity provider and the bridge: the server acts as one CS3 user;
* serves the stock RTC frontend's session and room routes and forwards them
  to the site's collaboration service (:mod:`cs3collab.jupyter.bridge`),
  either a remote one (``service_url``) or one started inside this process
  (``embedded_service``).

Start a server (devstack gateway on 127.0.0.1:19000, service on :8765)::

    jupyter lab --CS3CollabConnection.gateway=127.0.0.1:19000 \\
        --CS3CollabConnection.username=einstein --CS3CollabConnection.password=relativity \\
        --CS3CollabExtension.service_url=http://127.0.0.1:8765
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Float, Instance, Int, Unicode, validate
from traitlets.config import TraitError

from cs3collab.jupyter import ocm_remote
from cs3collab.jupyter.bridge import CollaborationBridge, bridge_handlers
from cs3collab.jupyter.browse import browse_handlers
from cs3collab.jupyter.connection import CS3CollabConnection
from cs3collab.jupyter.diff import NotebookDiffer, diff_handlers
from cs3collab.jupyter.sharing import Sharing, sharing_handlers
from cs3collab.jupyter.versions_proxy import VersionsProxy, versions_handlers

CONTENTS_MANAGER_CLASS = "cs3collab.jupyter.contents.CS3ContentsManager"
KERNEL_MANAGER_CLASS = "cs3collab.jupyter.kernels.SharedKernelManager"
SESSION_MANAGER_CLASS = "cs3collab.jupyter.kernels.SharedKernelSessionManager"
KERNEL_CONNECTION_CLASS = "cs3collab.jupyter.kernels.SharedKernelWebsocketConnection"
IDENTITY_PROVIDER_CLASS = "cs3collab.jupyter.identity.CS3IdentityProvider"
EXTENSION_NAME = "cs3collab"
log = logging.getLogger("cs3collab.jupyter")

CONNECTION_SETTING = "cs3collab_connection"
"""Tornado settings key of the shared connection (the contents manager looks there too)."""


def shared_connection(serverapp) -> CS3CollabConnection:
    """The server's one CS3 connection: the cs3collab extension's, when it is
    linked to ``serverapp``; otherwise a connection of its own, configured from
    ``serverapp``'s config (a contents manager or identity provider used
    without the extension)."""
    manager = getattr(serverapp, "extension_manager", None)
    point = manager.extension_points.get(EXTENSION_NAME) if manager is not None else None
    app = getattr(point, "app", None) if point is not None else None
    if isinstance(app, CS3CollabExtension) and app.connection is not None:
        return app.connection
    return CS3CollabConnection(parent=serverapp)


class CS3CollabExtension(ExtensionApp):
    """Jupyter on CS3: contents, identity and real-time collaboration."""

    name = EXTENSION_NAME
    description = "Jupyter on CS3 storage with real-time collaboration through the site's collaboration service."
    load_other_extensions = True
    classes = [*ExtensionApp.classes, CS3CollabConnection]

    service_url = Unicode(
        "",
        help="Base URL of the site's collaboration service (`cs3collab serve`), e.g. "
        "http://127.0.0.1:8765. Required for collaboration unless embedded_service is on; "
        "empty (default): use the embedded service, or none.",
    ).tag(config=True)
    embedded_service = Bool(
        True,
        help="When service_url is empty, run the collaboration service inside this Jupyter server "
        "on a loopback port (default True). Collaboration then happens among this server's "
        "tabs and any other server whose service_url points at it (its URL is logged at start). "
        "False with no service_url: collaboration requests are answered 503.",
    ).tag(config=True)
    embedded_port = Int(
        0, help="Loopback port of the embedded service; 0 (default) picks a free one."
    ).tag(config=True)
    embedded_state_dir = Unicode(
        "",
        help="Journal folder of the embedded service; created if missing. Default: "
        "<jupyter data dir>/cs3collab/embedded-<Jupyter port>, so the journal survives restarts "
        "of a server on the same port and two servers never share one.",
    ).tag(config=True)
    connect_timeout = Float(
        10.0, help="Seconds allowed to reach the collaboration service (default 10)."
    ).tag(config=True)
    request_timeout = Float(
        30.0, help="Seconds allowed for one session request to the collaboration service (default 30)."
    ).tag(config=True)
    max_message_size = Int(
        128 * 1024 * 1024,
        help="Largest WebSocket frame relayed, in bytes, either way (default 128 MiB); the service "
        "applies its own, usually lower, limit.",
    ).tag(config=True)
    max_diff_size = Int(
        32 * 1024 * 1024,
        help="Largest notebook a version diff compares, in bytes (default 32 MiB): the request of "
        "POST /api/cs3collab/diff (the live notebook the browser sends) and the version fetched for it. "
        "Larger ones are refused with 413.",
    ).tag(config=True)

    shared_kernels = Bool(
        True,
        help="Run CS3 notebooks in their shared kernel at the notebook's site (one per notebook, for every "
        "participant), through the collaboration service; notebooks not in CS3 keep local kernels (default True). "
        "False: every notebook gets a kernel of this server, as stock Jupyter does.",
    ).tag(config=True)

    ocm_signing_key = Unicode(
        "",
        help="PEM file of this site's OCM signing key (Ed25519, the key the site publishes at its "
        "/.well-known/jwks.json; for the devstack <data>/ocm-signing-key.pem). When set, the OCM code-flow "
        "exchange this server makes at another site's tokenEndPoint is signed with it (OCM 1.4, RFC 9421), "
        "as a peer that requires signatures wants; read again when the file changes. Empty (default): "
        "the exchange goes unsigned, as OCM 1.3 and Reva 3.x send it.",
    ).tag(config=True)

    share_search_limit = Int(
        20,
        help="Most people the Share dialog's search returns of each kind (local users, groups, "
        "federated contacts) per query (default 20).",
    ).tag(config=True)

    connection = Instance(CS3CollabConnection, allow_none=True)
    bridge = Instance(CollaborationBridge, allow_none=True)
    _embedded: EmbeddedService | None = None
    _embedded_task: asyncio.Task | None = None

    @validate("service_url")
    def _validate_service_url(self, proposal):
        url = proposal["value"].strip().rstrip("/")
        if url and not url.startswith(("http://", "https://")):
            raise TraitError(f"CS3CollabExtension.service_url must be an http(s) URL, got {url!r}")
        return url

    @validate("connect_timeout", "request_timeout", "max_message_size", "max_diff_size", "share_search_limit")
    def _validate_positive(self, proposal):
        if proposal["value"] <= 0:
            raise TraitError(f"CS3CollabExtension.{proposal['trait'].name} must be positive")
        return proposal["value"]

    # -- linking: before the server builds its contents manager and identity provider --

    def _link_jupyter_server_extension(self, serverapp) -> None:
        super()._link_jupyter_server_extension(serverapp)
        self.connection = CS3CollabConnection(parent=self)
        configured = serverapp.config.get("ServerApp", {})
        if "contents_manager_class" not in configured:
            serverapp.contents_manager_class = CONTENTS_MANAGER_CLASS
        if "identity_provider_class" not in configured:
            serverapp.identity_provider_class = IDENTITY_PROVIDER_CLASS
        if self.shared_kernels:
            for trait, value in (("kernel_manager_class", KERNEL_MANAGER_CLASS),
                                 ("session_manager_class", SESSION_MANAGER_CLASS),
                                 ("kernel_websocket_connection_class", KERNEL_CONNECTION_CLASS)):
                if trait not in configured:
                    setattr(serverapp, trait, value)
        if serverapp.jpserver_extensions.get("jupyter_server_ydoc"):
            self.log.error(
                "cs3collab: jupyter_server_ydoc is enabled and serves the same collaboration routes; "
                "disable it (ServerApp.jpserver_extensions.jupyter_server_ydoc = False)"
            )

    # -- loading: the server's managers exist now ---------------------------------

    def initialize_settings(self) -> None:
        ocm_remote.set_signing_key(self.ocm_signing_key or None)
        if not self.connection.gateway:
            self.log.error("cs3collab: CS3CollabConnection.gateway is not set; CS3 cannot be reached")
        # one CS3 identity for the whole server
        self.settings[CONNECTION_SETTING] = self.connection
        self.serverapp.contents_manager.connection = self.connection
        self.serverapp.identity_provider.connection = self.connection
        self.bridge = CollaborationBridge(
            self.connection,
            connect_timeout=self.connect_timeout,
            request_timeout=self.request_timeout,
            max_message_size=self.max_message_size,
        )
        if self.service_url:
            self.bridge.set_service_url(self.service_url)
            self.log.info("cs3collab: collaboration through %s", self.service_url)
        elif not self.embedded_service:
            self.bridge.set_unavailable(
                "no collaboration service configured (CS3CollabExtension.service_url)"
            )
            self.log.warning("cs3collab: no collaboration service: documents open without real-time collaboration")

    def initialize_handlers(self) -> None:
        self.handlers.extend(bridge_handlers(self.bridge))
        self.versions_proxy = VersionsProxy(self.bridge)  # the labextension's history panel
        self.handlers.extend(versions_handlers(self.versions_proxy))
        # the history panel's "Diff": a version against the live notebook
        self.handlers.extend(diff_handlers(NotebookDiffer(self.versions_proxy, max_size=self.max_diff_size)))
        self.handlers.extend(browse_handlers())  # the labextension's CS3 file browser and File info
        # the labextension's Share dialog
        self.handlers.extend(sharing_handlers(Sharing(self.connection, search_limit=self.share_search_limit)))

    async def _start_jupyter_server_extension(self, serverapp) -> None:
        if self.service_url or not self.embedded_service:
            return
        state_dir = self.embedded_state_dir or str(
            Path(jupyter_data_dir()) / "cs3collab" / f"embedded-{serverapp.port}"
        )
        self._embedded = EmbeddedService(
            config=self.config, gateway=self.connection.gateway, state_dir=state_dir, port=self.embedded_port
        )
        started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        # the extension owns this one task; stop_extension ends it
        self._embedded_task = asyncio.ensure_future(self._embedded.run(started))
        try:
            url = await asyncio.shield(started)
        except Exception as exc:  # noqa: BLE001 - reported to every collaboration request
            self.log.error("cs3collab: the embedded collaboration service did not start: %s", exc)
            self.bridge.set_unavailable(f"the embedded collaboration service did not start: {exc}")
            return
        self.bridge.set_service_url(url)
        self.log.info("cs3collab: embedded collaboration service at %s (state %s)", url, state_dir)

    async def stop_extension(self) -> None:
        if self._embedded is not None:
            self._embedded.stop()
        if self._embedded_task is not None:
            await self._embedded_task
        if self.bridge is not None:
            await self.bridge.close()
        if getattr(self, "versions_proxy", None) is not None:
            await self.versions_proxy.close()
        if self.connection is not None:
            await self.connection.close()


class EmbeddedService:
    """The collaboration service running on the Jupyter server's event loop.

    It is ``cs3collab serve`` without the process around it: the same
    :class:`~cs3collab.service.app.CollabService` settings (configurable as
    ``CollabService.*`` in the Jupyter config) and the same routes, on a
    loopback port, but no signal handlers (the Jupyter server owns those).

    Args:
        config: the Jupyter server's traitlets config (``CollabService`` section).
        gateway: the CS3 gateway (the connection's).
        state_dir: the journal folder.
        port: loopback port; 0 picks a free one.
    """

    def __init__(self, *, config, gateway: str, state_dir: str, port: int = 0) -> None:
        from cs3collab.service.app import CollabService

        self.app = CollabService(config=config)
        self.app.gateway = gateway
        self.app.state_dir = state_dir
        self.app.ip = "127.0.0.1"
        self.app.port = port
        self._stopped = asyncio.Event()

    async def run(self, started: asyncio.Future) -> None:
        """Serve until :meth:`stop`; ``started`` gets the base URL once listening."""
        try:
            async with self.app.running() as url:
                started.set_result(url)
                await self._stopped.wait()
        except Exception as exc:  # noqa: BLE001 - this task's owner learns of it, once
            if not started.done():
                started.set_exception(exc)  # the extension reports it and answers 503
            else:
                log.exception("cs3collab: the embedded collaboration service failed")

    def stop(self) -> None:
        self._stopped.set()
