"""A JupyterHub authenticator for CS3 sites: Reva's basic auth, or the site's OIDC through Reva.

``login`` chooses how a person logs in:

``basic`` (default): the hub's login form posts username and password; the
gateway's ``Authenticate`` (type ``basic``, or ``auth_type``) checks them and
returns a CS3 access token.

``oidc``: the person is sent to the site's identity provider (OAuth 2.0
authorization code with PKCE, done by oauthenticator's
``GenericOAuthenticator``, which this class extends: ``client_id``,
``authorize_url``, ``token_url``, ``userdata_url``, ... are its settings),
comes back to the hub's ``/hub/oauth_callback``, the hub exchanges the code
for the IdP's tokens and then calls the gateway's ``Authenticate`` (type
``oidc``, or ``oidc_auth_type``) with the IdP's access token (or ID token,
``oidc_token``) as client secret: Reva's OIDC auth manager checks it against
the issuer and answers a CS3 token for the user the token names. The hub
user's name is the CS3 username.

Either way the token never reaches the browser: it is kept in the user's
*auth state*, which JupyterHub stores encrypted
(``Authenticator.enable_auth_state``, key in ``JUPYTERHUB_CRYPT_KEY``;
JupyterHub refuses to start without it), with its expiry (and in ``oidc``
mode the IdP's refresh token), and is given to the single-user server in its
environment when it is spawned (``CS3COLLAB_TOKEN``, what
``cs3collab.jupyter`` reads).

Refresh: JupyterHub asks ``refresh_user`` when the auth state is older than
``auth_refresh_age``, before each spawn (``refresh_pre_spawn``, on by
default here) and when the user's server asks ``/hub/api/cs3collab/token``.
A token that expires within ``token_refresh_margin`` is renewed:

- ``basic``: exchanged for a fresh one (``Authenticate`` type ``bearer`` with
  the current token: the devstack takes its own tokens so; a stock Reva
  routes ``bearer`` to its OIDC provider, which refuses them, and then the
  user logs in again);
- ``oidc``: the IdP's refresh token gets fresh IdP tokens (the refresh
  grant), and the gateway's ``oidc`` login is done again with them.

A refusal (expired token, refresh token refused by the IdP, Reva refusing)
sends the user back to the login page; an outage (gateway or IdP
unreachable) keeps the state as it is while the token is still valid (the
next refresh decides).
"""

from __future__ import annotations

import inspect
import json
import time
from typing import Any

import jwt
from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.auth import Authenticator
from jupyterhub.user import User
from oauthenticator.generic import GenericOAuthenticator
from tornado import web
from tornado.httpclient import HTTPClientError
from traitlets import Bool, Enum, Float, Unicode, default

from cs3collab.cs3 import CS3Client, CS3Error, Unauthenticated, Unavailable

TOKEN_ENV = "CS3COLLAB_TOKEN"


def token_expiry(token: str) -> float | None:
    """The ``exp`` of a JWT access token (Reva's kind), read without verifying
    it: only to decide when to refresh. None when it is no JWT or has none."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    expiry = claims.get("exp")
    return float(expiry) if isinstance(expiry, (int, float)) else None


class CS3TokenHandler(APIHandler):
    """``GET /hub/api/cs3collab/token``: the caller's current CS3 token, refreshed first when due.

    For the user's own single-user server, which asks with its
    ``JUPYTERHUB_API_TOKEN`` when its token nears expiry. Only token-authenticated
    requests of a user, with a token that may access that user's servers; a
    browser's cookie never gets the token.
    """

    _accept_cookie_auth = False

    async def get(self) -> None:
        user = self.current_user
        if not isinstance(user, User):
            raise web.HTTPError(403, "Only a user's own server may ask for the user's CS3 token.")
        scopes = self.expanded_scopes
        if not ("access:servers" in scopes or f"access:servers!user={user.name}" in scopes
                or any(s.startswith(f"access:servers!server={user.name}/") for s in scopes)):
            raise web.HTTPError(403, "This token may not act for the user's server.")
        if await self.refresh_auth(user, force=True) is None:
            raise web.HTTPError(401, "The CS3 session ended: log in to JupyterHub again.")
        state = await user.get_auth_state() or {}
        if not state.get("cs3_token"):
            raise web.HTTPError(401, "No CS3 session for this user: log in to JupyterHub again.")
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"token": state["cs3_token"], "expires_at": state.get("cs3_expires_at")}))


class CS3Authenticator(GenericOAuthenticator):
    """Log in to JupyterHub with CS3 credentials: the hub's form (basic) or the site's IdP (oidc)."""

    login = Enum(
        ["basic", "oidc"], "basic",
        help="How people log in: basic (the hub's form, username and password checked by the gateway's auth_type) "
        "or oidc (the site's identity provider, then the gateway's oidc_auth_type with the IdP's token; set "
        "client_id, authorize_url, token_url, userdata_url and oauth_callback_url). Default basic.",
    ).tag(config=True)
    oidc_auth_type = Unicode(
        "oidc",
        help="oidc login: the gateway auth type that takes the IdP's token as client secret (Reva's auth provider "
        "with the oidc auth manager, registered for this type in the gateway's auth_providers). Default oidc.",
    ).tag(config=True)
    oidc_token = Enum(
        ["access_token", "id_token"], "access_token",
        help="oidc login: which of the IdP's tokens the gateway gets (a JWT either way: Reva reads its issuer). "
        "Default access_token.",
    ).tag(config=True)

    gateway = Unicode(
        help="host:port of the site's CS3 gateway (gRPC). Required."
    ).tag(config=True)
    auth_type = Unicode(
        "basic", help="Gateway auth type the login form's username and password are checked with (default basic)."
    ).tag(config=True)
    refresh_auth_type = Unicode(
        "bearer",
        help="basic login: the gateway auth type that exchanges a valid access token for a fresh one (default bearer, "
        "as the devstack offers for its own tokens); empty: never refresh, users log in again when the token "
        "expires. (oidc login renews with the IdP's refresh token instead.)",
    ).tag(config=True)
    token_refresh_margin = Float(
        600.0,
        help="Seconds before its expiry at which a CS3 token is renewed: exchanged (basic), or the IdP's refresh "
        "token used and the gateway's oidc login done again (oidc) (default 600).",
    ).tag(config=True)
    call_timeout = Float(15.0, help="Seconds allowed for one gateway call (default 15).").tag(config=True)
    pass_gateway = Bool(
        True,
        help="Also give the spawned server the gateway (--CS3CollabConnection.gateway on its command line), "
        "for spawners that have no other config for it (default True).",
    ).tag(config=True)

    @default("login_service")
    def _default_login_service(self) -> str:
        # the hub's login page: a form in basic mode, a "Sign in with ..." button in oidc mode
        return "your institution's account" if self.login == "oidc" else ""

    @default("username_claim")
    def _default_username_claim(self) -> str:
        return "sub"  # any IdP has it; the hub user's name is then the CS3 username (update_auth_model)

    @default("scope")
    def _default_scope(self) -> list[str]:
        return ["openid", "profile", "email"]

    @default("enable_auth_state")
    def _default_enable_auth_state(self) -> bool:
        return True  # the CS3 token lives there, encrypted

    @default("refresh_pre_spawn")
    def _default_refresh_pre_spawn(self) -> bool:
        return True  # a server starts with a token that is not about to expire

    @default("allow_all")
    def _default_allow_all(self) -> bool:
        # whoever the site's CS3 accepts; restrict with allowed_users / blocked_users
        return not (self.allowed_users or getattr(self, "allowed_groups", None))

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._client: CS3Client | None = None

    async def _cs3(self) -> CS3Client:
        if not self.gateway:
            raise web.HTTPError(500, "CS3Authenticator.gateway is not configured")
        if self._client is None:
            self._client = CS3Client(self.gateway, timeout=self.call_timeout, retries=1)
            await self._client.open()
        return self._client

    def _state(self, token: str, user) -> dict[str, Any]:
        return {
            "cs3_token": token,
            "cs3_expires_at": token_expiry(token),
            "cs3_user": {
                "username": user.username,
                "opaque_id": user.id.opaque_id,
                "idp": user.id.idp,
                "display_name": user.display_name,
                "mail": user.mail,
            },
            "refreshed_at": time.time(),
        }

    # -- the two modes: JupyterHub's own form (basic), oauthenticator's OAuth handlers (oidc)

    def get_handlers(self, app) -> list:
        handlers = super().get_handlers(app) if self.login == "oidc" else Authenticator.get_handlers(self, app)
        return [*handlers, (r"/api/cs3collab/token", CS3TokenHandler)]

    def login_url(self, base_url: str) -> str:
        return super().login_url(base_url) if self.login == "oidc" else Authenticator.login_url(self, base_url)

    async def check_allowed(self, username: str, auth_model: dict | None = None) -> bool:
        if self.login == "oidc":
            return await super().check_allowed(username, auth_model)
        allowed = Authenticator.check_allowed(self, username, auth_model)
        return (await allowed) if inspect.isawaitable(allowed) else allowed

    async def authenticate(self, handler, data: dict | None = None, **kwargs) -> dict | None:
        if self.login == "oidc":
            return await self._oidc_login(handler, data, **kwargs)
        return await self._basic_login(data)

    async def refresh_user(self, user, handler=None, **kwargs) -> bool | dict:
        state = await user.get_auth_state()
        if not state or not state.get("cs3_token"):
            return False  # no token to hand on: log in again
        expires_at = state.get("cs3_expires_at")
        now = time.time()
        if expires_at is None or expires_at - now > self.token_refresh_margin:
            return True
        if self.login == "oidc":
            return await self._oidc_refresh(user, state, handler)
        return await self._basic_refresh(user, state)

    # -- oidc ------------------------------------------------------------------------

    async def _cs3_from_idp(self, token_info: dict):
        """The gateway's oidc login with the IdP's token: a CS3 session, or a CS3Error."""
        idp_token = token_info.get(self.oidc_token)
        if not idp_token:
            raise web.HTTPError(502, f"The identity provider gave no {self.oidc_token.replace('_', ' ')}.")
        return await (await self._cs3()).authenticate(self.oidc_auth_type, "", idp_token)

    async def build_auth_state_dict(self, token_info: dict, user_info: dict) -> dict:
        """oauthenticator's auth state (IdP tokens, refresh token included) plus the CS3 token and its user."""
        state = super().build_auth_state_dict(token_info, user_info)
        if inspect.isawaitable(state):
            state = await state
        session = await self._cs3_from_idp(token_info)
        return {**state, **self._state(session.token, session.user)}

    async def update_auth_model(self, auth_model: dict) -> dict:
        name = self.normalize_username(auth_model["auth_state"]["cs3_user"]["username"])
        return {**auth_model, "name": name, "admin": True if name in self.admin_users else None}

    async def _oidc_login(self, handler, data, **kwargs) -> dict | None:
        try:
            model = await super().authenticate(handler, data, **kwargs)
        except Unauthenticated as exc:
            self.log.warning("cs3 oidc login refused gateway=%s status=%s error=%s", self.gateway, exc.code, exc)
            raise web.HTTPError(403, "Your institution's sign-in worked, but the storage service (CS3) did not "
                                     "accept it. Ask your site's support.") from None
        except Unavailable as exc:
            self.log.error("cs3 oidc login failed gateway=%s error=%s", self.gateway, exc)
            raise web.HTTPError(503, "The storage service (CS3) cannot be reached; try again in a moment.") from None
        except CS3Error as exc:
            self.log.error("cs3 oidc login failed gateway=%s status=%s error=%s", self.gateway, exc.code, exc)
            raise web.HTTPError(502, "The storage service (CS3) refused the login; try again later.") from None
        if model:
            state = model["auth_state"]
            self.log.info("cs3 login user=%s site=%s via=oidc", model["name"], state["cs3_user"]["idp"])
        return model

    async def _oidc_refresh(self, user, state: dict, handler) -> bool | dict:
        still_valid = (state.get("cs3_expires_at") or 0) > time.time()
        refresh_token = state.get("refresh_token")
        if not refresh_token:
            self.log.info("cs3 token due and no IdP refresh token, login needed user=%s", user.name)
            return False
        try:
            token_info = await self.get_token_info(handler, self.build_refresh_token_request_params(refresh_token))
        except (HTTPClientError, web.HTTPError) as exc:
            code = getattr(exc, "code", None) or getattr(exc, "status_code", 0)
            if 400 <= code < 500:
                self.log.info("cs3 oidc refresh refused by the IdP, login needed user=%s status=%s", user.name, code)
                return False
            self.log.warning("cs3 oidc refresh failed at the IdP user=%s status=%s", user.name, code)
            return still_valid
        except OSError as exc:
            self.log.warning("cs3 oidc refresh failed at the IdP user=%s error=%s", user.name, exc)
            return still_valid
        token_info.setdefault("refresh_token", refresh_token)  # an IdP that does not rotate keeps the old one
        try:
            user_info = await self.token_to_user(token_info)
            auth_state = await self.build_auth_state_dict(token_info, user_info)
        except Unauthenticated as exc:
            self.log.info("cs3 token refresh refused, login needed user=%s status=%s", user.name, exc.code)
            return False
        except CS3Error as exc:
            self.log.warning("cs3 token refresh failed user=%s gateway=%s status=%s error=%s",
                             user.name, self.gateway, exc.code, exc)
            return still_valid
        model = await self.update_auth_model({"name": user.name, "admin": None, "auth_state": auth_state})
        self.log.info("cs3 token refreshed user=%s via=oidc", user.name)
        return model

    # -- basic -----------------------------------------------------------------------

    async def _basic_login(self, data: dict | None) -> dict | None:
        username = (data or {}).get("username", "").strip()
        password = (data or {}).get("password", "")
        if not username or not password:
            return None
        client = await self._cs3()
        try:
            session = await client.authenticate(self.auth_type, username, password)
        except Unauthenticated as exc:
            self.log.warning("cs3 login refused user=%s gateway=%s status=%s", username, self.gateway, exc.code)
            return None  # the hub says "Invalid username or password"
        except Unavailable as exc:
            self.log.error("cs3 login failed user=%s gateway=%s error=%s", username, self.gateway, exc)
            raise web.HTTPError(503, "The storage service (CS3) cannot be reached; try again in a moment.") from None
        except CS3Error as exc:
            self.log.error("cs3 login failed user=%s gateway=%s status=%s error=%s",
                           username, self.gateway, exc.code, exc)
            raise web.HTTPError(502, "The storage service (CS3) refused the login; try again later.") from None
        name = session.user.username or username
        self.log.info("cs3 login user=%s site=%s", name, session.user.id.idp)
        return {"name": name, "auth_state": self._state(session.token, session.user)}

    async def _basic_refresh(self, user, state: dict) -> bool | dict:
        if state["cs3_expires_at"] <= time.time() or not self.refresh_auth_type:
            self.log.info("cs3 token expired, login needed user=%s", user.name)
            return False
        client = await self._cs3()
        try:
            session = await client.authenticate(self.refresh_auth_type, "", state["cs3_token"])
        except Unauthenticated as exc:
            self.log.info("cs3 token refresh refused, login needed user=%s status=%s", user.name, exc.code)
            return False
        except CS3Error as exc:
            # the token is still valid for a while: keep it, the next refresh tries again
            self.log.warning("cs3 token refresh failed user=%s gateway=%s status=%s error=%s",
                             user.name, self.gateway, exc.code, exc)
            return True
        self.log.info("cs3 token refreshed user=%s", user.name)
        return {"name": user.name, "auth_state": self._state(session.token, session.user)}

    async def pre_spawn_start(self, user, spawner) -> None:
        state = await user.get_auth_state()
        if not state or not state.get("cs3_token"):
            raise web.HTTPError(403, "No CS3 session for this user: log out and log in again.")
        # a new dict: the configured one may be shared by every user's spawner
        spawner.environment = {**spawner.environment, TOKEN_ENV: state["cs3_token"]}
        flag = "--CS3CollabConnection.gateway="
        if self.pass_gateway and not any(str(a).startswith(flag) for a in spawner.args):
            spawner.args = [*spawner.args, flag + self.gateway]
