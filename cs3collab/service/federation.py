"""The federated entry: participants from other sites, known by an OCM share.

A user at site B has no account here (site A). Her own Jupyter server holds
the OCM share she received (share id = the ``providerId`` we sent, and the
shared secret). Two ways in:

* **Code flow (OCM 1.2+, Reva 3.x; every share with our webapp).** B
  exchanged the secret at this site's ``/ocm/token`` and presents the token::

      Authorization: Bearer <exchanged token>

  It is an access token of this site's gateway scoped to the share, so
  WhoAmI refuses it (Reva's ``ocmshare`` scope does not allow WhoAmI); the
  service then logs in with ``Authenticate`` type ``ocmexchangedtoken``
  (client id = the share id named by the request, when it names one) and
  reads the share with ``GetOCMShare`` (allowed by the scope).
* **OCM 1.1 secret.** ``Authorization: OCM <share id>:<shared secret>``:
  ``GetOCMShareByToken`` (unauthenticated, as in Reva) names the shared
  resource and the grantee, then ``Authenticate`` type ``ocmshares`` gives a
  token the gateway scopes to that resource and the share's role. Refused
  (401) for a share that requires the code flow (``requires_exchange``).
 Everything the participant then does goes
through that token, so the gateway, not this module, keeps her inside the
share; a removed or expired share makes the token (and its renewal) fail.

A session request may name the file as ``ocm:<share id>`` (site B does not
know the resource id at A) or ``ocm:<share id>/<relative path>`` inside a
shared folder.

Refusals are logged with the remote site's name (the grantee's idp) when the
secret names a share at all.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
from dataclasses import dataclass

from cs3.sharing.ocm.v1beta1 import resources_pb2 as ocm
from cs3.storage.provider.v1beta1 import resources_pb2 as storage

from cs3collab.cs3 import CS3Client, CS3Error, NotFound, PermissionDenied, Session, Unauthenticated
from cs3collab.cs3.ocm import requires_exchange

log = logging.getLogger("cs3collab.service.federation")

SCHEME = "ocm"
"""The ``Authorization`` scheme of OCM credentials (case-insensitive)."""

EXCHANGED_AUTH_TYPE = "ocmexchangedtoken"
"""The gateway auth type of a token from the OCM code flow (Reva #5552)."""

PATH_PREFIX = "ocm:"
"""How a session request names the resource of an OCM share."""


@dataclass(frozen=True)
class OCMCredentials:
    """What a participant from another site presents: the share and its secret."""

    share_id: str
    secret: str

    def __repr__(self) -> str:  # never log a secret
        return f"OCMCredentials(share_id={self.share_id!r})"

    @classmethod
    def parse(cls, value: str) -> OCMCredentials:
        share_id, sep, secret = value.strip().partition(":")
        if not sep or not share_id or not secret:
            raise Unauthenticated("OCM credentials must be <share id>:<secret>", operation="authenticate")
        return cls(share_id, secret)


@dataclass(frozen=True)
class FederatedCaller:
    """A participant from another site: her session at this site, and the share it is scoped to."""

    session: Session
    share: ocm.Share

    @property
    def site(self) -> str:
        return self.share.grantee.user_id.idp


def _claims(token: str) -> dict | None:
    """A JWT's claims, read without verifying them (None: not a JWT)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, TypeError):
        return None
    return claims if isinstance(claims, dict) else None


def may_be_code_flow_token(token: str) -> bool:
    """Whether a bearer token WhoAmI refused is worth trying as a token of the
    OCM code flow: a JWT with an ``ocmshare:`` scope (Reva's and the
    devstack's claim ``scope``), or a token we cannot read. Only saves a
    pointless second login (and a misleading log line) for an expired local
    token; the gateway decides."""
    claims = _claims(token)
    if claims is None:
        return True
    scopes = claims.get("scope")
    return isinstance(scopes, dict) and any(str(name).startswith("ocmshare:") for name in scopes)


def token_expired(token: str, now: float | None = None) -> bool:
    """Whether an access token's ``exp`` has passed, read without verifying it.

    Only to tell an expired OCM session (close for a reconnect: site B
    exchanges the code again) from a revoked share (close for good); the
    gateway alone decides whether a token is valid. Reva's and the
    devstack's tokens are JWTs; anything else counts as not expired. ``exp``
    is a NumericDate in whole seconds for the verifiers (PyJWT and Go's jwt
    truncate it), so it is compared as such, with one second to spare for
    the time between the gateway's refusal and this check.
    """
    claims = _claims(token)
    try:
        exp = int(float(claims["exp"]))  # type: ignore[index]
    except (ValueError, KeyError, TypeError, OverflowError):
        return False
    return (time.time() if now is None else now) >= exp - 1


def code_flow_token_expired(session: Session) -> bool:
    """Whether ``session`` renews itself with a code-flow token that expired:
    then its site should exchange the code again (a reconnect), rather than
    the share being gone."""
    credentials = session.credentials
    return (credentials is not None and credentials.auth_type == EXCHANGED_AUTH_TYPE
            and token_expired(credentials.client_secret))


def relative_path(rel: str, share_id: str) -> str:
    """``rel`` checked as a path inside an OCM share (``""`` = the shared
    resource itself), without a trailing ``/``.

    Raises PermissionDenied for anything that could name a resource outside
    the share: an absolute path, a ``..`` or ``.`` segment, an empty segment
    (``a//b``), a backslash or a NUL. The gateway scopes the participant's
    token to the share anyway (Reva's ``ocmshare`` scope); this refuses the
    attempt before it reaches CS3, with a message that says why.
    """
    if not rel:
        return ""
    where = f"ocm:{share_id}/{rel[:200]}"
    if rel.startswith("/"):
        raise PermissionDenied("a path inside an OCM share is relative to the share; absolute paths are refused",
                               operation="resolve", target=where)
    parts = rel.rstrip("/").split("/")
    if any(part in ("", ".", "..") or "\\" in part or "\0" in part for part in parts):
        raise PermissionDenied("the path leaves the OCM share ('..', '.' or empty segments are refused)",
                               operation="resolve", target=where)
    return "/".join(parts)


def share_reference(path: str, caller: FederatedCaller | None):
    """The reference for a session path ``ocm:<share id>[/<relative path>]``
    (the relative path checked by :func:`relative_path`)."""
    share_id, _, rel = path[len(PATH_PREFIX):].partition("/")
    if caller is None or caller.share.id.opaque_id != share_id:
        raise PermissionDenied(
            "an ocm: path needs the credentials of that OCM share", operation="session", target=f"ocm:{share_id}"
        )
    rel = relative_path(rel, share_id)
    if rel:
        return storage.Reference(resource_id=caller.share.resource_id, path="./" + rel)
    return caller.share.resource_id


class FederatedLogin:
    """Exchanges OCM credentials for sessions at this site.

    Args:
        client: the service's open CS3 client (to this site's gateway).
        cache_seconds: how long a login is reused for the same credentials
            (0 = log in every time). Revocation is still caught by every CS3
            call made with the session, as for tokens.
    """

    def __init__(self, client: CS3Client, cache_seconds: float = 10.0) -> None:
        self._client = client
        self._cache_seconds = cache_seconds
        self._cache: dict[OCMCredentials, tuple[float, FederatedCaller]] = {}
        self._exchanged: dict[tuple[str, str, str], tuple[float, FederatedCaller]] = {}

    async def login(self, credentials: OCMCredentials, *, peer: str = "-") -> FederatedCaller:
        """The caller these credentials make; raises ``Unauthenticated`` (unknown,
        expired or revoked secret) or ``PermissionDenied`` (a secret for another share).

        Args:
            credentials: the share id and secret presented.
            peer: the network address of the caller, for the log.
        """
        now = time.monotonic()
        cached = self._cache.get(credentials)
        if cached is not None and cached[0] > now:
            return cached[1]
        site = "unknown"
        try:
            try:
                share = await self._client.get_ocm_share_by_token(credentials.secret)
            except NotFound:
                raise Unauthenticated("unknown or revoked OCM share secret", operation="authenticate",
                                      target=f"ocm:{credentials.share_id}") from None
            except PermissionDenied:
                raise Unauthenticated("the OCM share expired", operation="authenticate",
                                      target=f"ocm:{credentials.share_id}") from None
            site = share.grantee.user_id.idp or site
            if not secrets.compare_digest(share.id.opaque_id, credentials.share_id):
                raise PermissionDenied("the secret belongs to another OCM share", operation="authenticate",
                                       target=f"ocm:{credentials.share_id}")
            if requires_exchange(share):
                raise Unauthenticated(
                    "this OCM share requires the code flow: exchange its secret at the sharing site's "
                    "tokenEndPoint and send Authorization: Bearer <token>",
                    operation="authenticate", target=f"ocm:{credentials.share_id}")
            session = await self._client.ocm_login(credentials.share_id, credentials.secret)
        except (Unauthenticated, PermissionDenied) as exc:
            log.warning("federated access refused share=%s site=%s peer=%s reason=%s",
                        credentials.share_id, site, peer, exc.message or exc)
            raise
        caller = FederatedCaller(session, share)
        log.info("federated login share=%s site=%s user=%s peer=%s",
                 credentials.share_id, caller.site, session.user.id.opaque_id, peer)
        if self._cache_seconds > 0:
            if len(self._cache) > 10_000:
                self._cache = {c: e for c, e in self._cache.items() if e[0] > now}
            self._cache[credentials] = (now + self._cache_seconds, caller)
        return caller

    async def login_exchanged(self, token: str, share_id: str = "", *, peer: str = "-") -> FederatedCaller:
        """The caller of a token from the OCM code flow (``ocmexchangedtoken``).

        Args:
            token: the exchanged access token.
            share_id: the share the request names (``ocm:<id>`` paths, the
                content route); empty when it names none (a room by file id).
            peer: the network address of the caller, for the log.

        Raises ``Unauthenticated`` when the gateway refuses the token (expired,
        forged, not an OCM token, another share).
        """
        now = time.monotonic()
        key = ("exchanged", token, share_id)
        cached = self._exchanged.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            session = await self._client.ocm_exchanged_login(share_id, token)
        except (Unauthenticated, PermissionDenied, NotFound) as exc:
            log.warning("federated access refused share=%s site=unknown peer=%s reason=%s",
                        share_id or "-", peer, exc.message or exc)
            raise Unauthenticated("the OCM access token was refused (expired, revoked or for another share)",
                                  operation="authenticate", target=f"ocm:{share_id}" if share_id else "") from None
        share = ocm.Share(grantee=storage.Grantee(type=storage.GRANTEE_TYPE_USER, user_id=session.user.id))
        if share_id:
            try:
                share = await session.ocm.get_share(share_id)
            except CS3Error as exc:
                log.warning("federated access refused share=%s site=%s peer=%s reason=%s",
                            share_id, session.user.id.idp, peer, getattr(exc, "message", "") or exc)
                raise PermissionDenied("the OCM access token is not for this share", operation="authenticate",
                                       target=f"ocm:{share_id}") from None
        caller = FederatedCaller(session, share)
        log.info("federated login share=%s site=%s user=%s peer=%s flow=code",
                 share_id or "-", caller.site, session.user.id.opaque_id, peer)
        if self._cache_seconds > 0:
            if len(self._exchanged) > 10_000:
                self._exchanged = {c: e for c, e in self._exchanged.items() if e[0] > now}
            self._exchanged[key] = (now + self._cache_seconds, caller)
        return caller
