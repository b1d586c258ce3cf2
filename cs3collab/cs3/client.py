"""Async client for a CS3 gateway: one gRPC channel, one HTTP pool, many sessions.

:class:`CS3Client` owns the connections to one gateway (``grpc.aio`` for the
CS3 APIs, ``httpx`` for the data transfers). A :class:`Session` is one
authenticated identity on it: it carries the access token as the gRPC
metadata ``x-access-token`` and, when it was opened with credentials that
allow it, authenticates again by itself when the token expires.

The operations are grouped by what they act on, each in its own module:
``session.files`` (namespace and transfers), ``session.versions``,
``session.locks``, ``session.metadata``, ``session.shares``, ``session.ocm``,
``session.users``, ``session.groups``, ``session.invites`` and
``session.app_passwords``.

Usage::

    async with CS3Client("127.0.0.1:19000") as client:
        session = await client.login("einstein", "relativity")
        home = await session.get_home()
        await session.files.upload(f"{home}/a.txt", b"hello")
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
from cs3.gateway.v1beta1 import gateway_api_pb2 as gw
from cs3.gateway.v1beta1 import gateway_api_pb2_grpc as gw_grpc
from cs3.identity.user.v1beta1 import resources_pb2 as identity
from cs3.rpc.v1beta1 import code_pb2

from cs3collab.cs3.errors import (
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
    error_from_grpc,
    raise_for_status,
)

log = logging.getLogger("cs3collab.cs3")

TOKEN_HEADER = "x-access-token"
"""gRPC metadata key and HTTP header that carry the CS3 access token (Reva's ``ctxpkg.TokenHeader``)."""


@dataclass(frozen=True)
class Credentials:
    """What a session authenticates with, and so can authenticate with again.

    ``auth_type`` is the gateway's auth type: ``basic`` (username and
    password), ``bearer`` (a token from an identity provider, in
    ``client_secret``), ``ocmshares`` (an OCM share id in ``client_id``
    and its shared secret in ``client_secret``) or ``ocmexchangedtoken`` (a
    share id, and a token of the OCM code flow in ``client_secret``).
    """

    auth_type: str
    client_id: str
    client_secret: str

    def __repr__(self) -> str:  # never print a secret
        return f"Credentials(auth_type={self.auth_type!r}, client_id={self.client_id!r})"


class CS3Client:
    """Connections to one CS3 gateway.

    Args:
        gateway: ``host:port`` of the gateway's gRPC endpoint.
        timeout: seconds allowed for one gRPC call.
        retries: how many times a call that is safe to repeat is tried again
            when the gateway is unreachable, with exponential backoff starting
            at ``backoff`` seconds; after that an ``Unavailable`` error names
            the gateway.
        http_timeout: seconds allowed to connect to a data server and between
            two chunks of a transfer (a large transfer may take longer in all).
        secure: use TLS for gRPC (the devstack speaks plaintext on loopback).
        reconnect_backoff: longest pause, in seconds, between two attempts of
            the gRPC channel to reconnect to a gateway that went away (gRPC's
            default grows to 120 s, so that a gateway back after a restart was
            noticed only ~30 s later); attempts start after 0.1 s and grow by
            gRPC's factor 1.6 (with its 20% jitter) up to this. Calls made
            while the channel waits fail at once with ``Unavailable`` and are
            retried as above.
        observer: called as ``observer(method, status, seconds)`` after every
            gateway call attempt, with the CS3 status name of the reply
            (``OK``, ``NOT_FOUND``, ...) or the gRPC status name when no
            reply came (``UNAVAILABLE``, ...); metrics use it. It must not
            raise or block.
    """

    def __init__(
        self,
        gateway: str,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.2,
        http_timeout: float = 60.0,
        secure: bool = False,
        reconnect_backoff: float = 1.0,
        observer: Callable[[str, str, float], None] | None = None,
    ) -> None:
        self.gateway = gateway
        self.observer = observer
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._http_timeout = http_timeout
        self._secure = secure
        self.reconnect_backoff = reconnect_backoff
        self._channel: grpc.aio.Channel | None = None
        self._stub: gw_grpc.GatewayAPIStub | None = None
        self._http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> CS3Client:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def open(self) -> None:
        if self._channel is not None:
            return
        backoff_ms = max(100, int(self.reconnect_backoff * 1000))
        options = [
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            # a gateway back from a restart is found within reconnect_backoff (see the class)
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", backoff_ms),
        ]
        if self._secure:
            self._channel = grpc.aio.secure_channel(self.gateway, grpc.ssl_channel_credentials(), options)
        else:
            self._channel = grpc.aio.insecure_channel(self.gateway, options)
        self._stub = gw_grpc.GatewayAPIStub(self._channel)
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(self._http_timeout), follow_redirects=False)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._stub = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            raise RuntimeError("CS3Client is not open: use 'async with CS3Client(...)'")
        return self._http

    async def call(
        self,
        method: str,
        request: Any,
        *,
        token: str | None = None,
        target: str = "",
        idempotent: bool = True,
    ) -> Any:
        """Call one gateway method and return its reply once its status is OK.

        A non-OK ``status.code`` and any gRPC-level failure are raised as the
        typed errors of :mod:`cs3collab.cs3.errors`. When the gateway cannot be
        reached, a call that is safe to repeat is retried ``retries`` times.
        """
        if self._stub is None:
            raise RuntimeError("CS3Client is not open: use 'async with CS3Client(...)'")
        rpc = getattr(self._stub, method)
        metadata = ((TOKEN_HEADER, token),) if token else None
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                reply = await rpc(request, metadata=metadata, timeout=self.timeout)
                self._observe(method, _status_name(reply.status.code), started)
                break
            except grpc.aio.AioRpcError as exc:
                self._observe(method, exc.code().name, started)
                if exc.code() == grpc.StatusCode.UNAVAILABLE and idempotent and attempt < self.retries:
                    delay = self.backoff * (2**attempt)
                    attempt += 1
                    log.warning(
                        "gateway unavailable, retrying gateway=%s op=%s attempt=%d delay=%.1fs",
                        self.gateway, method, attempt, delay,
                    )
                    await asyncio.sleep(delay)
                    continue
                raise error_from_grpc(exc, method, target, self.gateway) from None
        raise_for_status(reply.status, method, target)
        return reply

    def _observe(self, method: str, status: str, started: float) -> None:
        if self.observer is not None:
            self.observer(method, status, time.perf_counter() - started)

    async def ping(self, timeout: float = 5.0) -> None:
        """Raise :class:`Unavailable` unless the gateway answers a gRPC call now.

        One WhoAmI without a token, never retried: any answer (a CS3 status
        UNAUTHENTICATED included) shows the gateway is up and speaks the CS3
        APIs; a transport failure or a timeout does not. For readiness probes.
        """
        if self._stub is None:
            raise RuntimeError("CS3Client is not open: use 'async with CS3Client(...)'")
        started = time.perf_counter()
        try:
            reply = await self._stub.WhoAmI(gw.WhoAmIRequest(token=""), timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            self._observe("WhoAmI", exc.code().name, started)
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                              grpc.StatusCode.UNIMPLEMENTED):
                raise Unavailable(
                    f"CS3 gateway {self.gateway} unreachable: {exc.code().name} {exc.details() or ''}".strip(),
                    operation="WhoAmI", target="readiness probe", code=exc.code().name,
                ) from None
            return  # the gateway answered, if only to refuse
        self._observe("WhoAmI", _status_name(reply.status.code), started)

    async def authenticate(self, auth_type: str, client_id: str, client_secret: str) -> Session:
        """Authenticate with the gateway and return a session that re-authenticates by itself."""
        credentials = Credentials(auth_type, client_id, client_secret)
        token, user = await self._authenticate(credentials)
        return Session(self, token, user, credentials)

    async def login(self, username: str, password: str) -> Session:
        """Authenticate a user with username and password (auth type ``basic``)."""
        return await self.authenticate("basic", username, password)

    async def ocm_login(self, share_id: str, shared_secret: str) -> Session:
        """Authenticate as the grantee of an OCM share (auth type ``ocmshares``).

        As Reva's ``ocmshares`` auth manager: ``client_id`` is the share id at
        the sharing site (the ``providerId`` the receiver got), ``client_secret``
        the shared secret. The gateway scopes the session to the shared
        resource and the share's role.
        """
        return await self.authenticate("ocmshares", share_id, shared_secret)

    async def ocm_exchanged_login(self, share_id: str, token: str) -> Session:
        """Authenticate with a token obtained through the OCM code flow (auth
        type ``ocmexchangedtoken``, Reva #5552): ``client_id`` is the share id
        (empty: the token must carry exactly one OCM share scope). The session
        renews itself with the same token until that token expires."""
        return await self.authenticate("ocmexchangedtoken", share_id, token)

    async def session_for_token(self, token: str, renewer: Callable[[], Awaitable[str]] | None = None) -> Session:
        """Wrap an access token obtained elsewhere (e.g. from JupyterHub).

        The token is checked with WhoAmI. Without ``renewer`` such a session
        cannot renew itself, so an expired token surfaces as
        ``Unauthenticated``; with it, renewing awaits ``renewer()`` for a
        fresh token of the same user (from wherever the first came from).
        """
        # WhoAmI is a protected gateway call in Reva (not in UnprotectedEndpoints):
        # the token travels in the request and as x-access-token
        reply = await self.call("WhoAmI", gw.WhoAmIRequest(token=token), token=token, target="access token")
        return Session(self, token, reply.user, None, renewer)

    async def get_ocm_share_by_token(self, token: str):
        """The OCM share a token names, asked without logging in (as Reva allows)."""
        from cs3.sharing.ocm.v1beta1 import ocm_api_pb2 as ocm_api

        reply = await self.call("GetOCMShareByToken", ocm_api.GetOCMShareByTokenRequest(token=token), target="OCM share token")
        return reply.share

    async def _authenticate(self, credentials: Credentials) -> tuple[str, identity.User]:
        request = gw.AuthenticateRequest(
            type=credentials.auth_type,
            client_id=credentials.client_id,
            client_secret=credentials.client_secret,
        )
        target = f"{credentials.auth_type}:{credentials.client_id}"
        try:
            reply = await self.call("Authenticate", request, target=target)
        except (PermissionDenied, NotFound) as exc:
            # Reva's auth providers answer wrong credentials with
            # PERMISSION_DENIED (and an unknown OCM share with NOT_FOUND):
            # to our callers both mean "not authenticated".
            raise Unauthenticated(
                exc.message or "invalid credentials", operation="Authenticate", target=target, code=exc.code
            ) from None
        return reply.token, reply.user


def _status_name(code: int) -> str:
    """``OK``, ``NOT_FOUND``... for a CS3 ``rpc.Code`` (its number when unknown)."""
    try:
        return code_pb2.Code.Name(code).removeprefix("CODE_")
    except ValueError:
        return str(code)


class Session:
    """One authenticated identity on a gateway.

    Args:
        client: the open :class:`CS3Client`.
        token: the CS3 access token.
        user: the CS3 user the token belongs to.
        credentials: how to authenticate again when the token expires; None
            when the session was built from a bare token.
        renewer: for a session from a bare token, where a fresh token comes
            from (awaited; returns the token); None: it cannot renew.
    """

    def __init__(
        self,
        client: CS3Client,
        token: str,
        user: identity.User,
        credentials: Credentials | None,
        renewer: Callable[[], Awaitable[str]] | None = None,
    ) -> None:
        from cs3collab.cs3.apppasswords import AppPasswordsAPI
        from cs3collab.cs3.files import FilesAPI
        from cs3collab.cs3.groups import GroupsAPI
        from cs3collab.cs3.invites import InvitesAPI
        from cs3collab.cs3.locks import LocksAPI
        from cs3collab.cs3.metadata import MetadataAPI
        from cs3collab.cs3.ocm import OCMAPI
        from cs3collab.cs3.shares import SharesAPI
        from cs3collab.cs3.users import UsersAPI
        from cs3collab.cs3.versions import VersionsAPI

        self.client = client
        self._token = token
        self.user = user
        self._credentials = credentials
        self._renewer = renewer
        self._renewing = asyncio.Lock()
        self.files = FilesAPI(self)
        self.versions = VersionsAPI(self)
        self.locks = LocksAPI(self)
        self.metadata = MetadataAPI(self)
        self.shares = SharesAPI(self)
        self.ocm = OCMAPI(self)
        self.users = UsersAPI(self)
        self.groups = GroupsAPI(self)
        self.invites = InvitesAPI(self)
        self.app_passwords = AppPasswordsAPI(self)

    @property
    def token(self) -> str:
        """The current access token (it changes when the session renews itself)."""
        return self._token

    @property
    def credentials(self) -> Credentials | None:
        """How this session authenticates (None for a bare token); its
        ``repr`` never shows the secret."""
        return self._credentials

    @property
    def renewable(self) -> bool:
        return self._credentials is not None or self._renewer is not None

    @property
    def username(self) -> str:
        return self.user.username

    async def renew(self, stale_token: str | None = None) -> None:
        """Authenticate again with the session's credentials (or ask its renewer).

        Concurrent callers that saw the same stale token share one renewal.
        """
        if not self.renewable:
            raise Unauthenticated(
                "the access token is no longer valid and this session has no credentials to renew it",
                operation="renew",
                target=self.user.username,
            )
        async with self._renewing:
            if stale_token is not None and stale_token != self._token:
                return  # another caller renewed already
            if self._credentials is not None:
                self._token, self.user = await self.client._authenticate(self._credentials)
            else:
                token = await self._renewer()
                # protected in Reva, as in session_for_token: the token also as x-access-token
                reply = await self.client.call("WhoAmI", gw.WhoAmIRequest(token=token), token=token,
                                               target="renewed token")
                if reply.user.id != self.user.id:
                    raise Unauthenticated("the renewed token belongs to someone else", operation="renew",
                                          target=self.user.username)
                self._token, self.user = token, reply.user
            log.info("renewed CS3 access token user=%s", self.user.username)

    async def call(self, method: str, request: Any, *, target: str = "", idempotent: bool = True) -> Any:
        """Call a gateway method as this session, renewing the token once if it expired."""
        token = self._token
        try:
            return await self.client.call(method, request, token=token, target=target, idempotent=idempotent)
        except Unauthenticated:
            if not self.renewable:
                raise
            await self.renew(stale_token=token)
            return await self.client.call(method, request, token=self._token, target=target, idempotent=idempotent)

    async def whoami(self) -> identity.User:
        reply = await self.call("WhoAmI", gw.WhoAmIRequest(token=self._token), target=self.user.username)
        return reply.user

    async def get_home(self) -> str:
        """The path of the user's home (Reva's GetHome)."""
        from cs3.storage.provider.v1beta1 import provider_api_pb2 as provider

        reply = await self.call("GetHome", provider.GetHomeRequest(), target=self.user.username)
        return reply.path
