"""The gateway's ``oidc`` auth type: Reva's OIDC auth manager, for the devstack.

Modelled on cs3org/reva pkg/auth/manager/oidc/oidc.go at aa6e45a (v3.12.2-11)
and the go-oidc v3 verifier it uses (coreos/go-oidc oidc/verify.go):
``Authenticate(type "oidc", client_id ignored, client_secret = the IdP's
token)``:

1. read the token's claims without verifying (a JWT is required) and its
   ``iss``; the issuer must be the configured one ("issuer not recognised");
2. discover the issuer (``<iss>/.well-known/openid-configuration``, whose
   ``issuer`` must equal it), once per issuer, then cached as Reva does;
3. verify as go-oidc's ID-token verifier with ``SkipClientIDCheck: true``:
   ``iss`` equals the issuer, ``exp`` not passed, ``nbf`` not more than a
   minute ahead, the algorithm one of the discovery's
   ``id_token_signing_alg_values_supported`` (RS256 when absent), the
   signature by a key of the issuer's JWKS (fetched again once for a key id
   it does not know, as go-oidc's remote key set re-syncs). Reva does **not**
   check the audience: a token the IdP issued to another client of the same
   issuer logs in too. ``audience`` makes the devstack stricter (go-oidc's
   ``ClientID`` check) for a site that wants that;
4. map the ``id_claim`` (Reva's ``default_id_claim``, default ``sub``) to a
   user by username (Reva: gateway ``GetUserByClaim("username", value)``);
5. the owner scope; the gateway mints its own token for that user.

Every refusal raises ``AuthenticationFailed`` with Reva's wording of the
reason; Reva's auth provider answers it as UNAUTHENTICATED "error
authenticating user" and logs the reason, the devstack says both.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

import jwt
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from .errors import AuthenticationFailed, NotFound
from .users import UserDirectory

log = logging.getLogger("cs3collab.devstack.oidc")

NBF_LEEWAY = 60.0  # go-oidc's leeway on nbf
HTTP_TIMEOUT = 10.0  # Reva's OIDC HTTP client timeout


@dataclass
class _Provider:
    issuer: str
    jwks_uri: str
    algorithms: list[str]
    keys: dict[str, jwt.PyJWK]


class OIDCAuth:
    """The ``oidc`` checker of one devstack site.

    Args:
        users: the site's users (the claim's value is looked up by username).
        issuer: the one trusted issuer URL (Reva's ``issuer``).
        id_claim: the claim naming the user (Reva's ``default_id_claim``, default ``sub``).
        audience: None, as Reva (no audience check); a client id: tokens must name it in ``aud``.
    """

    def __init__(self, users: UserDirectory, issuer: str, id_claim: str = "sub", audience: str | None = None) -> None:
        self.users = users
        self.issuer = issuer
        self.id_claim = id_claim
        self.audience = audience
        self._providers: dict[str, _Provider] = {}

    async def _fetch(self, url: str) -> dict:
        try:
            response = await AsyncHTTPClient().fetch(url, request_timeout=HTTP_TIMEOUT, connect_timeout=HTTP_TIMEOUT)
            return json.loads(response.body)
        except (HTTPClientError, OSError, ValueError) as e:
            raise AuthenticationFailed(f"oidc: error creating a new oidc provider: {url}: {e}") from None

    async def _provider(self, issuer: str) -> _Provider:
        provider = self._providers.get(issuer)
        if provider is None:
            meta = await self._fetch(issuer.rstrip("/") + "/.well-known/openid-configuration")
            if meta.get("issuer") != issuer:
                raise AuthenticationFailed(
                    f"oidc: issuer did not match the issuer returned by provider, expected {issuer!r} "
                    f"got {meta.get('issuer')!r}")
            provider = _Provider(issuer, str(meta.get("jwks_uri", "")),
                                 list(meta.get("id_token_signing_alg_values_supported") or ["RS256"]), {})
            await self._load_keys(provider)
            self._providers[issuer] = provider
        return provider

    async def _load_keys(self, provider: _Provider) -> None:
        try:
            keyset = jwt.PyJWKSet.from_dict(await self._fetch(provider.jwks_uri))
        except jwt.PyJWTError as e:
            raise AuthenticationFailed(f"oidc: failed to decode keys: {e}") from None
        provider.keys = {key.key_id or "": key for key in keyset.keys}

    async def _verify(self, token: str, provider: _Provider) -> dict:
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as e:
            raise AuthenticationFailed(f"oidc: malformed jwt: {e}") from None
        if claims.get("iss") != provider.issuer:
            raise AuthenticationFailed(f"oidc: id token issued by a different provider, expected "
                                       f"{provider.issuer!r} got {claims.get('iss')!r}")
        if self.audience is not None:
            audience = claims.get("aud")
            audiences = audience if isinstance(audience, list) else [audience]
            if self.audience not in audiences:
                raise AuthenticationFailed(f"oidc: expected audience {self.audience!r} got {audience!r}")
        now = time.time()
        expiry = claims.get("exp")
        if not isinstance(expiry, (int, float)) or expiry < now:
            raise AuthenticationFailed(f"oidc: token is expired (Token Expiry: {_when(expiry)})")
        not_before = claims.get("nbf")
        if isinstance(not_before, (int, float)) and now + NBF_LEEWAY < not_before:
            raise AuthenticationFailed(f"oidc: current time {_when(now)} before the nbf (not before) time: "
                                       f"{_when(not_before)}")
        algorithm = header.get("alg")
        if algorithm not in provider.algorithms:
            raise AuthenticationFailed(f"oidc: id token signed with unsupported algorithm, expected "
                                       f"{provider.algorithms} got {algorithm!r}")
        kid = header.get("kid") or ""
        candidates = [k for name, k in provider.keys.items() if not kid or name == kid]
        if not candidates:
            await self._load_keys(provider)  # the IdP may have rotated its keys (go-oidc re-syncs once)
            candidates = [k for name, k in provider.keys.items() if not kid or name == kid]
        for key in candidates:
            try:
                jwt.decode(token, key, algorithms=[algorithm], options={
                    "verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False})
                return claims
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError as e:
                raise AuthenticationFailed(f"failed to verify signature: {e}") from None
        raise AuthenticationFailed("failed to verify signature: the token is not signed by a key of the issuer")

    async def authenticate(self, client_id: str, client_secret: str):
        """The checker: (user, None for the owner scope), or AuthenticationFailed with the reason."""
        try:
            claims = jwt.decode(client_secret, options={"verify_signature": False})
        except jwt.PyJWTError as e:
            raise AuthenticationFailed(f"error extracting claims from oidc token: {e}") from None
        issuer = claims.get("iss")
        if not isinstance(issuer, str) or not issuer:
            raise AuthenticationFailed("issuer not contained in the token")
        if issuer != self.issuer:
            raise AuthenticationFailed("issuer not recognised")
        provider = await self._provider(issuer)
        try:
            claims = await self._verify(client_secret, provider)
        except AuthenticationFailed as e:
            raise AuthenticationFailed(f"oidc token failed verification: {e.message}") from None
        value = claims.get(self.id_claim)
        if value is None:
            value = claims.get("sub")  # Reva falls back to the subject when the claim is absent
        if not isinstance(value, str) or not value:
            raise AuthenticationFailed("the token names no user (no subject)")
        try:
            user = self.users.get_by_username(value)
        except NotFound:
            raise AuthenticationFailed(f"unknown user for claim {self.id_claim}={value!r}") from None
        log.info("oidc token accepted user=%s issuer=%s", user.username, issuer)
        return user, None


def _when(epoch) -> str:
    if not isinstance(epoch, (int, float)):
        return "none"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))
