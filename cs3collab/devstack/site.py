"""``DevstackSite``: one embedded CS3 site, a gRPC gateway plus a data server.

    async with DevstackSite(data_dir, domain="cern.example") as site:
        site.gateway_address   # "127.0.0.1:PORT"
        site.http_url          # "http://127.0.0.1:PORT"

or ``await site.start()`` ... ``await site.stop()``.

Every site speaks OCM (``ocm_gateway.install_ocm`` runs first; ``ocm``
gives its peers and public URL). Extension points: pass ``gateway_class``
(a subclass of ``ocm_gateway.OCMGateway`` implementing more calls) and/or
``extensions``: callables (plain or async) run with the site after its
store, users and tokens exist and before the servers start, which may call
``add_grpc_handlers``, ``add_http_routes``, ``add_unprotected``,
``add_scope_rule``, ``add_cleanup`` and ``auth_providers.register``.
``site.tokens.mint_scoped(user, resource_id, role)`` mints a token limited
to one resource (and its children) with a viewer or editor role.

With ``oidc`` settings the site logs users in with an OpenID Connect
issuer's tokens (auth type ``oidc``, as Reva's OIDC auth manager:
``oidc_auth``) and may run the embedded issuer for its users on a port of
its own (``oidc_issuer``; ``site.oidc_issuer.url``).
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable

import grpc
import tornado.httpserver
import tornado.netutil
from cs3.gateway.v1beta1 import gateway_api_pb2_grpc as gw_grpc
from cs3.auth.provider.v1beta1 import resources_pb2 as auth_res
from cs3.identity.user.v1beta1 import resources_pb2 as user_res
from cs3.storage.provider.v1beta1 import resources_pb2 as sp_res

from . import namespace
from .app_passwords import create_tables as create_app_password_tables
from .app_passwords import install_app_passwords

from .auth import AuthInterceptor, AuthProviders
from .dataserver import make_app
from .gateway import Gateway
from .ocm_gateway import OCMGateway, OCMSettings, install_ocm
from .oidc_auth import OIDCAuth
from .oidc_issuer import OIDCClient, OIDCIssuer
from .store import Store
from .tokens import Identity, TokenManager, owner_scope
from .users import UserDirectory

log = logging.getLogger("cs3collab.devstack.site")

GATEWAY_SERVICE = "cs3.gateway.v1beta1.GatewayAPI"


@dataclass(frozen=True)
class OIDCSettings:
    """OIDC login at the site (Reva's ``oidc`` auth manager, see ``oidc_auth``).

    Args:
        embedded: run the embedded issuer (``oidc_issuer``) on its own port.
        issuer: the trusted issuer URL; empty = the embedded issuer's.
        id_claim: the claim naming the user (Reva's ``default_id_claim``).
        audience: None as Reva (no audience check), or the client id tokens must name.
        clients: the embedded issuer's registered clients.
        token_lifetime: the embedded issuer's access/ID token lifetime, seconds.
        issuer_port: the embedded issuer's port (0: a free one).
    """

    embedded: bool = True
    issuer: str = ""
    id_claim: str = "sub"
    audience: str | None = None
    clients: tuple[OIDCClient, ...] = ()
    token_lifetime: float = 300.0
    issuer_port: int = 0


class DevstackSite:
    """An embedded CS3 site on a local data folder.

    Args:
        data_dir: folder holding everything the site stores (created if
            missing); a restart on the same folder keeps all data and
            accepts tokens minted before.
        domain: the site's domain: the ``idp`` of its users and the
            ``iss`` of its tokens. Default "localhost".
        grpc_port: gateway port on ``host``; 0 picks a free port.
        http_port: data server port on ``host``; 0 picks a free port.
        users_file: a Reva-style users JSON file; None = the demo users
            einstein, marie and richard.
        token_lifetime: access token lifetime in seconds (default 3600, as
            Reva's JWT token manager).
        max_upload_size: largest accepted upload in bytes; None = no limit.
        host: address both servers bind; default loopback only.
        gateway_class: the servicer class (an ``OCMGateway`` subclass).
        extensions: callables ``ext(site)`` (or async ones) run before the
            servers start.
        ocm: OCM settings (trusted peers, providers file, public URL);
            None = no peers yet, public URL = ``http_url``.
        oidc: OIDC login settings; None = no ``oidc`` auth type and no issuer.
    """

    def __init__(self, data_dir: Path | str, *, domain: str = "localhost", grpc_port: int = 0,
                 http_port: int = 0, users_file: Path | str | None = None, token_lifetime: float = 3600,
                 max_upload_size: int | None = None, host: str = "127.0.0.1",
                 gateway_class: type[OCMGateway] = OCMGateway,
                 extensions: Iterable[Callable[["DevstackSite"], Any]] = (),
                 ocm: OCMSettings | None = None, oidc: "OIDCSettings | None" = None) -> None:
        self.data_dir = Path(data_dir)
        self.domain = domain
        self.host = host
        self._grpc_port = grpc_port
        self._http_port = http_port
        self._gateway_class = gateway_class
        self._extensions = list(extensions)
        self.ocm_settings = ocm or OCMSettings()
        self.oidc_settings = oidc
        self.oidc_issuer: OIDCIssuer | None = None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.users = UserDirectory(domain, users_file)
        self.tokens = TokenManager(self.data_dir, domain, token_lifetime)
        self.store = Store(self.data_dir, self.users, max_upload_size)
        self.auth_providers = AuthProviders(self.users, self.tokens)
        self.gateway: Gateway | None = None
        self._grpc_handlers: list[grpc.GenericRpcHandler] = []
        self._http_routes: list = []
        self._unprotected: set[str] = set()
        self._scope_rules: dict[str, Callable[[auth_res.Scope, str], bool]] = {}
        self._cleanups: list[Callable[[], Awaitable[None]]] = []
        self._grpc_server: grpc.aio.Server | None = None
        self._http_server: tornado.httpserver.HTTPServer | None = None
        self.gateway_address = ""
        self.http_url = ""

    # -- extension points --------------------------------------------------------

    def add_grpc_handlers(self, *handlers: grpc.GenericRpcHandler) -> None:
        """Register extra gRPC services (e.g. an OCM provider API)."""
        self._grpc_handlers.extend(handlers)

    def add_http_routes(self, *routes) -> None:
        """Register extra tornado routes on the data server (e.g. OCM)."""
        self._http_routes.extend(routes)

    def add_unprotected(self, *full_methods: str) -> None:
        """Let these gRPC methods ("/package.Service/Method") run without an
        access token, like Reva's per-service unprotected lists."""
        self._unprotected.update(full_methods)

    def add_scope_rule(self, kind: str, allows: Callable[[auth_res.Scope, str], bool]) -> None:
        """Limit the gRPC methods a token with a scope named ``kind:...`` may
        call: ``allows(scope, method)`` with the bare method name (e.g.
        "Stat"); a refusal is a gRPC PERMISSION_DENIED, as Reva's scope check."""
        self._scope_rules[kind] = allows

    def add_cleanup(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Await ``fn()`` when the site stops, after its servers (last added, first run)."""
        self._cleanups.append(fn)

    async def stat_by_id(self, resource_id: sp_res.ResourceId, caller: user_res.User) -> sp_res.ResourceInfo:
        """Stat a resource as ``caller`` (a full, owner-scoped identity);
        raises ``errors.NotFound`` / ``errors.PermissionDenied``. The OCM
        part's ``ResourceLookup``."""
        ident = Identity(user=caller, scopes=owner_scope())
        return await self.store.run(namespace.stat, ident, sp_res.Reference(resource_id=resource_id, path="."))

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> None:
        await self.store.open()
        self.gateway = self._gateway_class(self.store, self.users, self.tokens, self.auth_providers)
        self.add_unprotected(*(f"/{GATEWAY_SERVICE}/{m}" for m in self.gateway.UNPROTECTED))
        try:
            await install_ocm(self, self.ocm_settings)
            if self.oidc_settings is not None:
                await self._install_oidc(self.oidc_settings)
            await create_app_password_tables(self)
            self.gateway.app_passwords = install_app_passwords(self)
            for extension in self._extensions:
                result = extension(self)
                if inspect.isawaitable(result):
                    await result
            sockets = tornado.netutil.bind_sockets(self._http_port, self.host)
            self._http_server = tornado.httpserver.HTTPServer(
                make_app(self.store, self.tokens, self._http_routes), max_body_size=1 << 50)
            self._http_server.add_sockets(sockets)
            self.http_url = f"http://{self.host}:{sockets[0].getsockname()[1]}"
            self.gateway.data_url = self.http_url
            server = grpc.aio.server(interceptors=[
                AuthInterceptor(self.tokens, self._unprotected, self._scope_rules)])
            gw_grpc.add_GatewayAPIServicer_to_server(self.gateway, server)
            if self._grpc_handlers:
                server.add_generic_rpc_handlers(tuple(self._grpc_handlers))
            port = server.add_insecure_port(f"{self.host}:{self._grpc_port}")
            if port == 0:
                raise OSError(f"cannot bind gRPC port {self.host}:{self._grpc_port}")
            self._grpc_server = server
            await server.start()
            self.gateway_address = f"{self.host}:{port}"
        except BaseException:
            await self.stop()
            raise
        log.info("devstack started domain=%s gateway=%s http=%s data=%s",
                 self.domain, self.gateway_address, self.http_url, self.data_dir)

    async def _install_oidc(self, settings: "OIDCSettings") -> None:
        """The ``oidc`` auth type, trusting ``settings.issuer`` or the embedded issuer started here."""
        issuer_url = settings.issuer
        if settings.embedded:
            self.oidc_issuer = OIDCIssuer(self.users, self.data_dir / "oidc", list(settings.clients), host=self.host,
                                          token_lifetime=settings.token_lifetime, port=settings.issuer_port)
            await self.oidc_issuer.start()
            self.add_cleanup(self.oidc_issuer.stop)
            issuer_url = issuer_url or self.oidc_issuer.url
        if not issuer_url:
            raise ValueError("the oidc auth type needs an issuer: an external one or the embedded one")
        auth = OIDCAuth(self.users, issuer_url, id_claim=settings.id_claim, audience=settings.audience)
        self.auth_providers.register("oidc", auth.authenticate)

    async def stop(self) -> None:
        if self._grpc_server is not None:
            server, self._grpc_server = self._grpc_server, None
            await server.stop(grace=1)
        if self._http_server is not None:
            http, self._http_server = self._http_server, None
            http.stop()
            await http.close_all_connections()
        while self._cleanups:
            await self._cleanups.pop()()
        await self.store.close()
        log.info("devstack stopped domain=%s", self.domain)

    async def __aenter__(self) -> "DevstackSite":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()
