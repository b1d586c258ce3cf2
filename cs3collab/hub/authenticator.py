"""A JupyterHub authenticator for CS3 sites (Reva's basic auth).

Login: the hub's login form posts username and password; the gateway's
``Authenticate`` (type ``basic``, or ``auth_type``) checks them and returns a
CS3 access token. The token never reaches the browser: it is kept in the
user's *auth state*, which JupyterHub stores encrypted
(``Authenticator.enable_auth_state``, key in ``JUPYTERHUB_CRYPT_KEY``; this
class refuses to start without it), and is given to the single-user server
in its environment when it is spawned (``CS3COLLAB_TOKEN``, what
``cs3collab.jupyter`` reads).

Refresh: JupyterHub asks ``refresh_user`` when the auth state is older than
``auth_refresh_age`` and before each spawn (``refresh_pre_spawn``, on by
default here). A token that expires within ``token_refresh_margin`` is
exchanged for a fresh one (``Authenticate`` type ``bearer`` with the current
token: the devstack takes its own tokens so; a stock Reva routes ``bearer``
to its OIDC provider, which refuses them, and then the user logs in again);
an expired or refused token sends the user back to the login page; a gateway
outage keeps the state as it is (the next refresh decides).

At a site whose users log in with OIDC, Reva's ``bearer``/``oidc`` auth does
the same exchange from the identity provider's token; that path is not built
here yet (docs/deployment.md).
"""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.auth import Authenticator
from jupyterhub.user import User
from tornado import web
from traitlets import Bool, Float, Unicode, default

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


class CS3Authenticator(Authenticator):
    """Log in to JupyterHub with CS3 credentials."""

    gateway = Unicode(
        help="host:port of the site's CS3 gateway (gRPC). Required."
    ).tag(config=True)
    auth_type = Unicode(
        "basic", help="Gateway auth type the login form's username and password are checked with (default basic)."
    ).tag(config=True)
    refresh_auth_type = Unicode(
        "bearer",
        help="Gateway auth type that exchanges a valid access token for a fresh one (default bearer, as Reva's "
        "gateway offers for its own tokens); empty: never refresh, users log in again when the token expires.",
    ).tag(config=True)
    token_refresh_margin = Float(
        600.0,
        help="Seconds before its expiry at which a CS3 token is exchanged for a fresh one (default 600).",
    ).tag(config=True)
    call_timeout = Float(15.0, help="Seconds allowed for one gateway call (default 15).").tag(config=True)
    pass_gateway = Bool(
        True,
        help="Also give the spawned server the gateway (--CS3CollabConnection.gateway on its command line), "
        "for spawners that have no other config for it (default True).",
    ).tag(config=True)

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

    async def authenticate(self, handler, data: dict) -> dict | None:
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

    async def refresh_user(self, user, handler=None) -> bool | dict:
        state = await user.get_auth_state()
        if not state or not state.get("cs3_token"):
            return False  # no token to hand on: log in again
        expires_at = state.get("cs3_expires_at")
        now = time.time()
        if expires_at is None or expires_at - now > self.token_refresh_margin:
            return True
        if expires_at <= now or not self.refresh_auth_type:
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

    def get_handlers(self, app) -> list:
        return [*super().get_handlers(app), (r"/api/cs3collab/token", CS3TokenHandler)]

    async def pre_spawn_start(self, user, spawner) -> None:
        state = await user.get_auth_state()
        if not state or not state.get("cs3_token"):
            raise web.HTTPError(403, "No CS3 session for this user: log out and log in again.")
        # a new dict: the configured one may be shared by every user's spawner
        spawner.environment = {**spawner.environment, TOKEN_ENV: state["cs3_token"]}
        flag = "--CS3CollabConnection.gateway="
        if self.pass_gateway and not any(str(a).startswith(flag) for a in spawner.args):
            spawner.args = [*spawner.args, flag + self.gateway]
