"""Tornado handlers for the OCM HTTP API of a devstack site.

Routes (no login, as in Reva where they are unprotected):

- ``GET /.well-known/ocm``: discovery (OCM 1.3.0 as Reva 3.x, or 1.4.0 with
  ``http-sig`` and ``jwksUri`` when the site signs; Reva 3.x serves no
  ``/ocm-provider``, and neither do we).
- ``GET /.well-known/jwks.json``: the JWK Set of this site's signing keys
  (only when the site signs).
- ``POST /ocm/token``: the code flow's token endpoint (Reva ocmd ``token.go``,
  #5552): form fields ``grant_type`` ("authorization_code" or "ocm_share"),
  ``code`` (the share's secret), ``client_id`` (the receiving server); 200
  ``{access_token, token_type: "Bearer", expires_in}``; 400
  ``{error: unsupported_grant_type | invalid_grant}``.
- ``POST /ocm/shares``: Share Creation Notification from a trusted peer.
- ``POST /ocm/notifications``: SHARE_UNSHARED from the sending peer.
- ``POST /ocm/invite-accepted``: a user of a trusted peer accepted one of our
  invite tokens (Reva ocmd ``invites.go``): JSON or form fields ``token``,
  ``userID``, ``recipientProvider``, ``name``, ``email`` (name and mail may be
  empty); 200 with the inviting user ``{userID, email, name}``; a missing
  token, userID or recipientProvider, an unknown or expired token 400,
  untrusted provider 403, accepted before 409.

OCM 1.4 signatures (``ocm_signing.PeerSignatures``, when the site signs):
each POST is checked against the sending peer named in the request
(``sender`` of a share, ``recipientProvider`` of an invite acceptance, the
sender of the received share a notification names, ``client_id`` at
``/token``); a refused signature is 401 ``{"code": "UNAUTHENTICATED",
"message": "HTTP signature refused: ..."}`` (``/token``: 401 ``{"error":
"invalid_client"}``).

Errors: the HTTP status comes from the data server's one table
(``dataserver.HTTP_STATUS``: InvalidArgument 400, Unauthenticated 401,
PermissionDenied 403, NotFound 404, Unimplemented 501); the body is Reva's
``{"code", "message"}`` (internal/http/services/reqres/reqres.go, the code
named after the status) plus the spec's ``validationErrors`` on a 400.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable

import tornado.web
from cs3.identity.user.v1beta1 import resources_pb2 as user_res

from . import errors
from .dataserver import http_status_for
from .ocm_inbox import OCMInbox
from .ocm_invites import InviteManager
from cs3collab.cs3.httpsig import JWKS_PATH

from .ocm_model import normalize_domain
from .ocm_payload import discovery_document
from .ocm_service import OCMConfig
from .ocm_signing import PeerSignatures, SiteKeys

log = logging.getLogger("cs3collab.devstack.ocm")

MAX_BODY = 256 * 1024
REVA_CODES = {400: "INVALID_PARAMETER", 401: "UNAUTHENTICATED", 403: "UNTRUSTED_SERVICE",
              404: "RESOURCE_NOT_FOUND", 405: "FUNCTION_NOT_IMPLEMENTED", 409: "ALREADY_EXIST",
              501: "FUNCTION_NOT_IMPLEMENTED"}


# (client_id, code) -> (access token, seconds it is valid); raises DevstackError
CodeExchange = Callable[[str, str], Awaitable[tuple[str, int]]]


class _OCMHandler(tornado.web.RequestHandler):
    def initialize(self, config: OCMConfig, inbox: OCMInbox, invites: InviteManager | None = None,
                   exchange: CodeExchange | None = None, keys: SiteKeys | None = None,
                   signatures: PeerSignatures | None = None) -> None:
        self.config = config
        self.inbox = inbox
        self.invites = invites
        self.exchange = exchange
        self.keys = keys
        self.signatures = signatures

    async def check_signature(self, route: str, domain: str) -> str:
        """Raise Unauthenticated when the request's OCM signature is refused
        (see ocm_signing); else "signed", "unsigned" or "unknown peer"."""
        if self.signatures is None:
            return "unchecked"
        r = self.request
        return await self.signatures.check(domain, route, r.method, r.full_url(), r.headers.get_all(), r.body)

    def check_xsrf_cookie(self) -> None:  # server-to-server API, no cookies
        return None

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")

    def write_json(self, status: int, doc: Any) -> None:
        self.set_status(status)
        self.finish(json.dumps(doc))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish(json.dumps({"code": REVA_CODES.get(status_code, "SERVER_ERROR"), "message": self._reason}))

    def json_body(self) -> Any:
        ctype = self.request.headers.get("Content-Type", "")
        if ctype.split(";", 1)[0].strip().lower() != "application/json":
            raise errors.InvalidArgument("Content-Type must be application/json")
        if len(self.request.body) > MAX_BODY:
            raise errors.InvalidArgument("request body too large")
        try:
            return json.loads(self.request.body or b"null")
        except (ValueError, UnicodeDecodeError):
            raise errors.InvalidArgument("malformed JSON body") from None

    async def answer(self, what: str, handle: Callable[[Any], Awaitable[dict]],
                     signer: Callable[[Any], Awaitable[str]] | None = None) -> None:
        """Parse the body, check its signature against the peer ``signer``
        names, run ``handle``, answer 201 or the error."""
        try:
            body = self.json_body()
            if signer is not None:
                await self.check_signature(what, await signer(body))
            doc = await handle(body)
        except errors.DevstackError as e:
            status = http_status_for(e)
            if status >= 500:
                log.exception("ocm %s from=%s failed", what, self.request.remote_ip)
            log.info("ocm %s from=%s refused status=%d msg=%r", what, self.request.remote_ip, status, e.message)
            body = {"code": REVA_CODES.get(status, "SERVER_ERROR"), "message": e.message}
            if getattr(e, "details", None):
                body["validationErrors"] = e.details
            self.write_json(status, body)
            return
        self.write_json(201, doc)


class DiscoveryHandler(_OCMHandler):
    def get(self) -> None:
        jwks_uri = self.config.public_url + JWKS_PATH if self.keys is not None else ""
        self.write_json(200, discovery_document(self.config.endpoint, self.config.provider_name,
                                                self.config.public_url, jwks_uri=jwks_uri))


class JWKSHandler(_OCMHandler):
    """``GET /.well-known/jwks.json``: the public keys peers check our signatures with."""

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/jwk-set+json")
        self.set_header("Cache-Control", "max-age=300")

    def get(self) -> None:
        self.write_json(200, self.keys.jwks())


def _domain_of(address: Any) -> str:
    """The provider part of an OCM address ``user@provider`` (the last "@")."""
    if not isinstance(address, str) or "@" not in address:
        return ""
    return normalize_domain(address.rsplit("@", 1)[1])


class TokenHandler(_OCMHandler):
    """``POST /ocm/token``: a share's secret (the code) for a bearer token."""

    async def post(self) -> None:
        grant = self.get_argument("grant_type", "")
        code = self.get_argument("code", "")
        client_id = self.get_argument("client_id", "")
        if grant not in ("authorization_code", "ocm_share"):
            return self._refuse("unsupported_grant_type", grant)
        if not code:
            return self._refuse("invalid_grant", "no code")
        try:
            signature = await self.check_signature("/token", normalize_domain(client_id))
        except errors.Unauthenticated as e:
            log.info("ocm /token from=%s client=%s refused error=invalid_client msg=%r", self.request.remote_ip,
                     client_id or "-", e.message)
            self.write_json(401, {"error": "invalid_client"})
            return
        try:
            token, expires_in = await self.exchange(client_id, code)
        except (errors.NotFound, errors.PermissionDenied, errors.Unauthenticated) as e:
            return self._refuse("invalid_grant", e.message)
        except errors.DevstackError as e:
            log.exception("ocm /token from=%s failed", self.request.remote_ip)
            self.write_json(500, {"error": "server_error"})
            return
        log.info("ocm /token from=%s client=%s issued expires_in=%d signature=%s", self.request.remote_ip,
                 client_id or "-", expires_in, signature.replace(" ", "-"))
        self.write_json(200, {"access_token": token, "token_type": "Bearer", "expires_in": expires_in})

    def _refuse(self, error: str, why: str) -> None:
        log.info("ocm /token from=%s refused error=%s msg=%r", self.request.remote_ip, error, why)
        self.write_json(400, {"error": error})


class SharesHandler(_OCMHandler):
    async def post(self) -> None:
        async def sender(body: Any) -> str:
            return _domain_of(body.get("sender") if isinstance(body, dict) else None)
        await self.answer("/shares", self.inbox.receive_share, sender)


class NotificationsHandler(_OCMHandler):
    async def post(self) -> None:
        await self.answer("/notifications", self.inbox.receive_notification, self.inbox.notification_sender)


class InviteAcceptedHandler(_OCMHandler):
    def _fields(self) -> dict[str, str]:
        names = ("token", "userID", "recipientProvider", "name", "email")
        ctype = self.request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if ctype == "application/json":
            doc = self.json_body()
            if not isinstance(doc, dict):
                raise errors.InvalidArgument("missing parameters in request")
            return {n: doc.get(n) if isinstance(doc.get(n), str) else "" for n in names}
        return {n: self.get_body_argument(n, "") for n in names}

    async def post(self) -> None:
        try:
            f = self._fields()
            await self.check_signature("/invite-accepted", normalize_domain(f["recipientProvider"]))
            remote = user_res.User(id=user_res.UserId(opaque_id=f["userID"], idp=f["recipientProvider"]),
                                   mail=f["email"], display_name=f["name"])
            initiator = await self.invites.accept(f["token"], remote)
        except errors.DevstackError as e:
            status = 409 if isinstance(e, errors.AlreadyExists) else http_status_for(e)
            if status >= 500:
                log.exception("ocm /invite-accepted from=%s failed", self.request.remote_ip)
            log.info("ocm /invite-accepted from=%s refused status=%d msg=%r", self.request.remote_ip, status, e.message)
            self.write_json(status, {"code": REVA_CODES.get(status, "SERVER_ERROR"), "message": e.message})
            return
        self.write_json(200, {"userID": initiator.id.opaque_id, "email": initiator.mail,
                              "name": initiator.display_name})


def ocm_http_rules(config: OCMConfig, inbox: OCMInbox, invites: InviteManager | None = None,
                   exchange: CodeExchange | None = None, keys: SiteKeys | None = None,
                   signatures: PeerSignatures | None = None) -> list[tuple]:
    """Tornado rules for the OCM HTTP API (``site.add_http_routes``);
    ``/invite-accepted`` only with ``invites``, ``/token`` only with
    ``exchange``, the JWK Set only with ``keys``; incoming signatures are
    checked with ``signatures``."""
    kw = {"config": config, "inbox": inbox, "invites": invites, "exchange": exchange, "keys": keys,
          "signatures": signatures}
    return ([(r"/\.well-known/jwks\.json", JWKSHandler, kw)] if keys is not None else []) + [
        (r"/\.well-known/ocm/?", DiscoveryHandler, kw),
        (r"/ocm/shares/?", SharesHandler, kw),
        (r"/ocm/notifications/?", NotificationsHandler, kw),
    ] + ([(r"/ocm/invite-accepted/?", InviteAcceptedHandler, kw)] if invites is not None else []) \
      + ([(r"/ocm/token/?", TokenHandler, kw)] if exchange is not None else [])
