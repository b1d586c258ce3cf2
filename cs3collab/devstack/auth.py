"""The gRPC auth interceptor and the pluggable credential checkers.

Follows cs3org/reva internal/grpc/interceptors/auth/auth.go: every method
not in the unprotected list needs an ``x-access-token`` metadata entry; a
missing token is a gRPC-level UNAUTHENTICATED error, a token that does not
verify (forged, expired, or from another site) is a gRPC-level
PERMISSION_DENIED error ("auth: core access token is invalid"). A token
whose scopes have a method rule (``ocmshare:...``, see
``DevstackSite.add_scope_rule``) may only call the methods the rule allows,
else PERMISSION_DENIED, as Reva's scope check in the same interceptor. On
success the caller's ``Identity`` is available to the handler via
``current_identity()``.

``AuthProviders`` maps an ``Authenticate`` type to a checker, as Reva's
auth registry maps types to auth providers: ``basic`` (users file) and
``bearer`` (a token of this site) are built in; the OCM part registers
more (e.g. ``ocmshares``).
"""

from __future__ import annotations

import contextvars
import logging
from typing import Awaitable, Callable

import grpc
from cs3.auth.provider.v1beta1 import resources_pb2 as auth_res
from cs3.identity.user.v1beta1 import resources_pb2 as user_res

from .errors import Unauthenticated
from .tokens import Identity, TokenManager
from .users import UserDirectory

log = logging.getLogger("cs3collab.devstack.auth")

TOKEN_HEADER = "x-access-token"
_identity: contextvars.ContextVar[Identity | None] = contextvars.ContextVar("devstack_identity", default=None)

# (client_id, client_secret) -> (user, scopes or None for the owner scope)
Checker = Callable[[str, str], Awaitable[tuple[user_res.User, dict[str, auth_res.Scope] | None]]]


def current_identity() -> Identity | None:
    """The authenticated caller of the running gRPC handler, if any."""
    return _identity.get()


class AuthProviders:
    """Registry of ``Authenticate`` types."""

    def __init__(self, users: UserDirectory, tokens: TokenManager) -> None:
        self._checkers: dict[str, Checker] = {}

        async def basic(client_id: str, client_secret: str):
            return users.authenticate(client_id, client_secret), None

        async def bearer(client_id: str, client_secret: str):
            ident = tokens.verify(client_secret)
            return ident.user, dict(ident.scopes)

        self.register("basic", basic)
        self.register("bearer", bearer)

    def register(self, auth_type: str, checker: Checker) -> None:
        """Add or replace the checker for ``auth_type``. A checker raises a
        DevstackError (e.g. Unauthenticated) to refuse."""
        self._checkers[auth_type] = checker

    def get(self, auth_type: str) -> Checker | None:
        return self._checkers.get(auth_type)


def _denier(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    async def deny(request, context):
        await context.abort(code, message)

    async def deny_stream(request, context):
        await context.abort(code, message)
        yield  # pragma: no cover - makes this an async generator

    kwargs = dict(request_deserializer=handler.request_deserializer,
                  response_serializer=handler.response_serializer)
    if handler.unary_stream or handler.stream_stream:
        return grpc.unary_stream_rpc_method_handler(deny_stream, **kwargs)
    return grpc.unary_unary_rpc_method_handler(deny, **kwargs)


def _with_identity(handler: grpc.RpcMethodHandler, ident: Identity) -> grpc.RpcMethodHandler:
    if handler.unary_unary is None:
        return handler  # streaming calls are all UNIMPLEMENTED here

    inner = handler.unary_unary

    async def call(request, context):
        _identity.set(ident)
        return await inner(request, context)

    return grpc.unary_unary_rpc_method_handler(call, request_deserializer=handler.request_deserializer,
                                               response_serializer=handler.response_serializer)


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Checks ``x-access-token`` on every protected call.

    Args:
        tokens: the site's token manager.
        unprotected: full method names that need no token (a shared set:
            extensions may add to it before the server starts).
        scope_rules: scope kind (the part of a scope name before ":") →
            ``allows(scope, bare method name)``; shared like ``unprotected``.
    """

    def __init__(self, tokens: TokenManager, unprotected: set[str],
                 scope_rules: dict[str, Callable[[auth_res.Scope, str], bool]] | None = None) -> None:
        self._tokens = tokens
        self._unprotected = unprotected
        self._scope_rules = scope_rules if scope_rules is not None else {}

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        if method in self._unprotected:
            return handler
        token = ""
        for key, value in handler_call_details.invocation_metadata or ():
            if key == TOKEN_HEADER:
                token = value
        if not token:
            log.info("auth refused method=%s reason=missing-token grpc=UNAUTHENTICATED", method)
            return _denier(handler, grpc.StatusCode.UNAUTHENTICATED, "auth: core access token not found")
        try:
            ident = self._tokens.verify(token)
        except Unauthenticated as e:
            log.info("auth refused method=%s reason=%r grpc=PERMISSION_DENIED", method, e.message)
            return _denier(handler, grpc.StatusCode.PERMISSION_DENIED, "auth: core access token is invalid")
        bare = method.rsplit("/", 1)[-1]
        for name, scope in ident.scopes.items():
            rule = self._scope_rules.get(name.partition(":")[0])
            if rule is not None and not rule(scope, bare):
                log.info("auth refused method=%s reason=scope:%s grpc=PERMISSION_DENIED", method, name)
                return _denier(handler, grpc.StatusCode.PERMISSION_DENIED,
                               f"auth: access token scope does not allow {bare}")
        return _with_identity(handler, ident)
