"""An embedded OpenID Connect issuer for the devstack's users: the site's IdP in the demo and the tests.

A real HTTP server on its own loopback port, started by the devstack site
process like its other servers (``--oidc``). It is the identity provider a
site runs next to Reva (Keycloak at CERN), reduced to what a login needs:

- ``/.well-known/openid-configuration``: OpenID Connect Discovery 1.0; the
  issuer is the server's base URL, exactly as its tokens' ``iss``.
- ``/jwks``: the public signing key (RS256) as a JWK set. The key lives in
  ``<data>/oidc/signing_key.pem`` (mode 600), so tokens outlive a restart.
- ``/authorize``: the authorization-code flow with PKCE (RFC 7636, S256
  only, required). GET shows the login page, POST checks the user's name and
  password against the site's users and redirects back with ``code``,
  ``state`` and ``iss`` (RFC 9207). A request with an unknown client or a
  redirect URI the client did not register is answered here (400), never
  redirected. A loopback redirect URI matches whatever its port (RFC 8252
  section 7.3): the hub picks its port at run time.
- ``/token``: ``authorization_code`` (code single use, 60 s, bound to the
  client, redirect URI and code challenge) and ``refresh_token`` (rotated on
  use). Confidential clients authenticate with ``client_secret_basic`` or
  ``client_secret_post``. Answers carry an access token and an ID token (both
  JWTs signed with the key above; ``sub`` is the user's name, as at CERN's
  SSO, ``aud`` the client id) and a refresh token; errors are RFC 6749 5.2.
- ``/userinfo``: the claims of a valid access token (Bearer).

Not modelled: consent, sessions at the IdP (every authorization asks for the
password), dynamic registration, logout. Loopback only: no TLS.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import logging
import os
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote_plus, urlencode, urlsplit

import jwt
import tornado.httpserver
import tornado.netutil
import tornado.web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .errors import NotFound, Unauthenticated
from .users import UserDirectory

log = logging.getLogger("cs3collab.devstack.oidc")

ALGORITHM = "RS256"
CODE_LIFETIME = 60.0
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


@dataclass(frozen=True)
class OIDCClient:
    """A client registered at the issuer (the site's JupyterHub).

    Args:
        client_id: the ``client_id`` it sends.
        secret: its client secret; None for a public client (PKCE only).
        redirect_uris: where codes may be sent; a loopback URI matches any port.
    """

    client_id: str
    secret: str | None = None
    redirect_uris: tuple[str, ...] = ()

    def allows_redirect(self, uri: str) -> bool:
        wanted = urlsplit(uri)
        for registered in map(urlsplit, self.redirect_uris):
            if uri == registered.geturl():
                return True
            if (registered.hostname in LOOPBACK_HOSTS and wanted.hostname == registered.hostname
                    and (wanted.scheme, wanted.path, wanted.query) == (registered.scheme, registered.path, registered.query)):
                return True
        return False


@dataclass
class _Grant:
    """What a code or refresh token stands for."""

    username: str
    client_id: str
    scope: str
    expires_at: float
    redirect_uri: str = ""
    challenge: str = ""
    nonce: str = ""
    auth_time: int = field(default_factory=lambda: int(time.time()))


def _load_key(folder: Path) -> rsa.RSAPrivateKey:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "signing_key.pem"
    if not path.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def s256(verifier: str) -> str:
    """The PKCE S256 code challenge of ``verifier`` (RFC 7636 4.2)."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class OIDCIssuer:
    """The issuer: keys, registered clients, grants, and its HTTP server.

    Args:
        users: the site's users (names and passwords).
        key_dir: folder of the signing key (created if missing).
        clients: the registered clients.
        token_lifetime: access and ID token lifetime in seconds.
        refresh_lifetime: refresh token lifetime in seconds.
        host: address to bind; port 0 picks a free one.
    """

    def __init__(self, users: UserDirectory, key_dir: Path, clients: list[OIDCClient], *,
                 token_lifetime: float = 300.0, refresh_lifetime: float = 8 * 3600.0,
                 host: str = "127.0.0.1", port: int = 0) -> None:
        self.users = users
        self.key = _load_key(key_dir)
        self.kid = hashlib.sha256(self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()[:16]
        self.clients = {c.client_id: c for c in clients}
        self.token_lifetime = token_lifetime
        self.refresh_lifetime = refresh_lifetime
        self._host = host
        self._port = port
        self._codes: dict[str, _Grant] = {}
        self._refresh: dict[str, _Grant] = {}
        self._server: tornado.httpserver.HTTPServer | None = None
        self.url = ""

    # -- grants --------------------------------------------------------------------

    def _sweep(self) -> None:
        now = time.time()
        for table in (self._codes, self._refresh):
            for key in [k for k, grant in table.items() if grant.expires_at < now]:
                del table[key]

    def new_code(self, grant: _Grant) -> str:
        self._sweep()  # codes never redeemed and refresh tokens never used do not pile up
        code = secrets.token_urlsafe(32)
        self._codes[code] = grant
        return code

    def take_code(self, code: str) -> _Grant | None:
        """The grant of ``code``, which is spent by this call (single use, RFC 6749 4.1.2)."""
        return self._codes.pop(code, None)

    def take_refresh(self, token: str) -> _Grant | None:
        """The grant of a refresh token, which is spent by this call (rotation)."""
        return self._refresh.pop(token, None)

    # -- tokens --------------------------------------------------------------------

    def sign(self, claims: dict) -> str:
        return jwt.encode(claims, self.key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def user_claims(self, username: str) -> dict:
        user = self.users.get_by_username(username)
        return {"sub": user.username, "preferred_username": user.username, "name": user.display_name,
                "email": user.mail, "email_verified": bool(user.mail)}

    def issue(self, grant: _Grant) -> dict:
        """The token response for ``grant`` (a new, rotated refresh token included)."""
        now = int(time.time())
        claims = self.user_claims(grant.username)
        common = {"iss": self.url, "aud": grant.client_id, "iat": now, "exp": now + int(self.token_lifetime),
                  "azp": grant.client_id}
        access = self.sign({**common, **claims, "jti": uuid.uuid4().hex, "scope": grant.scope,
                            "client_id": grant.client_id, "typ": "Bearer"})
        id_claims = {**common, **claims, "auth_time": grant.auth_time}
        if grant.nonce:
            id_claims["nonce"] = grant.nonce
        refresh = secrets.token_urlsafe(32)
        self._refresh[refresh] = _Grant(grant.username, grant.client_id, grant.scope,
                                        time.time() + self.refresh_lifetime, auth_time=grant.auth_time)
        log.info("oidc tokens issued user=%s client=%s", grant.username, grant.client_id)
        return {"access_token": access, "id_token": self.sign(id_claims), "refresh_token": refresh,
                "token_type": "Bearer", "expires_in": int(self.token_lifetime), "scope": grant.scope}

    def verify_access(self, token: str) -> dict:
        try:
            return jwt.decode(token, self.key.public_key(), algorithms=[ALGORITHM], issuer=self.url,
                              options={"verify_aud": False, "require": ["exp", "iss", "sub"]})
        except jwt.PyJWTError as e:
            raise Unauthenticated(f"invalid access token: {e}") from None

    def discovery(self) -> dict:
        return {
            "issuer": self.url,
            "authorization_endpoint": self.url + "/authorize",
            "token_endpoint": self.url + "/token",
            "userinfo_endpoint": self.url + "/userinfo",
            "jwks_uri": self.url + "/jwks",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "claims_supported": ["sub", "preferred_username", "name", "email", "email_verified"],
            "authorization_response_iss_parameter_supported": True,
        }

    def jwks(self) -> dict:
        key = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**key, "kid": self.kid, "use": "sig", "alg": ALGORITHM}]}

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        sockets = tornado.netutil.bind_sockets(self._port, self._host)
        app = tornado.web.Application([
            (r"/\.well-known/openid-configuration", _JSONHandler, {"body": self.discovery}),
            (r"/jwks", _JSONHandler, {"body": self.jwks}),
            (r"/authorize", _AuthorizeHandler, {"issuer": self}),
            (r"/token", _TokenHandler, {"issuer": self}),
            (r"/userinfo", _UserinfoHandler, {"issuer": self}),
        ])
        self._server = tornado.httpserver.HTTPServer(app, xheaders=False)
        self._server.add_sockets(sockets)
        self.url = f"http://{self._host}:{sockets[0].getsockname()[1]}"
        log.info("oidc issuer started url=%s clients=%s", self.url, ",".join(self.clients) or "-")

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.stop()
            await server.close_all_connections()


class _JSONHandler(tornado.web.RequestHandler):
    def initialize(self, body) -> None:
        self._body = body

    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(self._body()))


LOGIN_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Sign in to {site}</title></head>
<body><main>
<h1>Sign in to {site}</h1>
<p>{client} asks you to sign in.</p>
{error}
<form method="post" action="authorize">
{hidden}
<label>Username <input name="username" id="username" autocomplete="username" autofocus></label>
<label>Password <input name="password" id="password" type="password" autocomplete="current-password"></label>
<button type="submit" id="sign-in">Sign in</button>
</form>
</main></body></html>
"""

AUTHORIZE_PARAMS = ("client_id", "redirect_uri", "response_type", "scope", "state", "nonce",
                    "code_challenge", "code_challenge_method")


class _AuthorizeHandler(tornado.web.RequestHandler):
    def initialize(self, issuer: OIDCIssuer) -> None:
        self.issuer = issuer

    def _params(self) -> dict[str, str]:
        return {name: self.get_argument(name, "") for name in AUTHORIZE_PARAMS}

    def _checked(self) -> tuple[dict[str, str], OIDCClient] | None:
        """The request's parameters and client; None once an error was answered (400 or redirected)."""
        params = self._params()
        client = self.issuer.clients.get(params["client_id"])
        if client is None or not client.allows_redirect(params["redirect_uri"]):
            what = "unknown client" if client is None else "redirect URI not registered for this client"
            log.info("oidc authorize refused client=%s reason=%r", params["client_id"] or "-", what)
            self.set_status(400)
            self.finish(f"<!doctype html><p>Sign-in request refused: {html.escape(what)}.</p>")
            return None
        problem = None
        if params["response_type"] != "code":
            problem = ("unsupported_response_type", "only the authorization code flow (response_type=code)")
        elif not params["code_challenge"] or params["code_challenge_method"] != "S256":
            problem = ("invalid_request", "PKCE with code_challenge_method=S256 is required")
        elif "openid" not in params["scope"].split():
            problem = ("invalid_scope", "the scope must include openid")
        if problem:
            log.info("oidc authorize refused client=%s reason=%r", client.client_id, problem[1])
            self._back(params, {"error": problem[0], "error_description": problem[1]})
            return None
        return params, client

    def _back(self, params: dict[str, str], answer: dict[str, str]) -> None:
        if params["state"]:
            answer["state"] = params["state"]
        answer["iss"] = self.issuer.url
        separator = "&" if "?" in params["redirect_uri"] else "?"
        self.redirect(params["redirect_uri"] + separator + urlencode(answer))

    def _page(self, params: dict[str, str], client: OIDCClient, error: str = "") -> None:
        hidden = "\n".join(f'<input type="hidden" name="{name}" value="{html.escape(value)}">'
                           for name, value in params.items())
        self.set_header("Cache-Control", "no-store")
        # form-action covers the redirect that follows the post: the client's redirect URI is allowed too
        back = urlsplit(params["redirect_uri"])
        self.set_header("Content-Security-Policy",
                        f"default-src 'none'; form-action 'self' {back.scheme}://{back.netloc}")
        self.finish(LOGIN_PAGE.format(
            site=html.escape(self.issuer.users.domain), client=html.escape(client.client_id), hidden=hidden,
            error=f'<p role="alert">{html.escape(error)}</p>' if error else ""))

    def get(self) -> None:
        checked = self._checked()
        if checked:
            self._page(*checked)

    def post(self) -> None:
        checked = self._checked()
        if not checked:
            return
        params, client = checked
        username = self.get_body_argument("username", "").strip()
        try:
            self.issuer.users.authenticate(username, self.get_body_argument("password", ""))
        except Unauthenticated:
            log.info("oidc login refused user=%s client=%s", username or "-", client.client_id)
            self.set_status(401)
            self._page(params, client, "Invalid username or password.")
            return
        code = self.issuer.new_code(_Grant(
            username, client.client_id, params["scope"], time.time() + CODE_LIFETIME,
            redirect_uri=params["redirect_uri"], challenge=params["code_challenge"], nonce=params["nonce"]))
        log.info("oidc login user=%s client=%s", username, client.client_id)
        self._back(params, {"code": code})


class _TokenError(Exception):
    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error, self.description, self.status = error, description, status


class _TokenHandler(tornado.web.RequestHandler):
    def initialize(self, issuer: OIDCIssuer) -> None:
        self.issuer = issuer

    def check_xsrf_cookie(self) -> None:  # a back-channel call, no browser
        return None

    def _client(self) -> OIDCClient:
        client_id = self.get_body_argument("client_id", "")
        secret = self.get_body_argument("client_secret", None)
        header = self.request.headers.get("Authorization", "")
        if header.lower().startswith("basic "):
            try:
                pair = base64.b64decode(header[6:]).decode()
            except ValueError:
                raise _TokenError("invalid_client", "malformed basic credentials", 401) from None
            basic_id, _, basic_secret = pair.partition(":")
            client_id, secret = unquote_plus(basic_id), unquote_plus(basic_secret)
        client = self.issuer.clients.get(client_id)
        if client is None:
            raise _TokenError("invalid_client", "unknown client", 401)
        if client.secret is not None and not (secret and secrets.compare_digest(secret, client.secret)):
            raise _TokenError("invalid_client", "client authentication failed", 401)
        return client

    def post(self) -> None:
        try:
            client = self._client()
            grant_type = self.get_body_argument("grant_type", "")
            if grant_type == "authorization_code":
                grant = self._code_grant(client)
            elif grant_type == "refresh_token":
                grant = self._refresh_grant(client)
            else:
                raise _TokenError("unsupported_grant_type", f"grant_type {grant_type!r} is not supported")
            answer, status = self.issuer.issue(grant), 200
        except _TokenError as e:
            log.info("oidc token refused client=%s error=%s reason=%r", self.get_body_argument("client_id", "-"),
                     e.error, e.description)
            answer, status = {"error": e.error, "error_description": e.description}, e.status
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(answer))

    def _code_grant(self, client: OIDCClient) -> _Grant:
        grant = self.issuer.take_code(self.get_body_argument("code", ""))
        if grant is None or grant.expires_at < time.time() or grant.client_id != client.client_id:
            raise _TokenError("invalid_grant", "the code is unknown, used, expired or for another client")
        if grant.redirect_uri != self.get_body_argument("redirect_uri", ""):
            raise _TokenError("invalid_grant", "redirect_uri does not match the authorization request")
        verifier = self.get_body_argument("code_verifier", "")
        if not verifier or not secrets.compare_digest(s256(verifier), grant.challenge):
            raise _TokenError("invalid_grant", "PKCE verification failed (code_verifier)")
        return grant

    def _refresh_grant(self, client: OIDCClient) -> _Grant:
        grant = self.issuer.take_refresh(self.get_body_argument("refresh_token", ""))
        if grant is None or grant.expires_at < time.time() or grant.client_id != client.client_id:
            raise _TokenError("invalid_grant", "the refresh token is unknown, used, expired or for another client")
        return grant


class _UserinfoHandler(tornado.web.RequestHandler):
    def initialize(self, issuer: OIDCIssuer) -> None:
        self.issuer = issuer

    def check_xsrf_cookie(self) -> None:
        return None

    def get(self) -> None:
        header = self.request.headers.get("Authorization", "")
        if not header.lower().startswith("bearer "):
            self.set_status(401)
            self.set_header("WWW-Authenticate", 'Bearer error="invalid_request"')
            self.finish({"error": "invalid_request", "error_description": "Bearer access token required"})
            return
        try:
            claims = self.issuer.verify_access(header[7:].strip())
        except Unauthenticated as e:
            self.set_status(401)
            self.set_header("WWW-Authenticate", 'Bearer error="invalid_token"')
            self.finish({"error": "invalid_token", "error_description": e.message})
            return
        try:
            self.finish(self.issuer.user_claims(claims["sub"]))
        except NotFound:
            self.set_status(401)
            self.set_header("WWW-Authenticate", 'Bearer error="invalid_token"')
            self.finish({"error": "invalid_token", "error_description": "the token's user is gone"})

    post = get
