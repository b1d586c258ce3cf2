"""The Jupyter user is a CS3 user: login page, cookie session, ``/api/me``.

A Jupyter server is single-user and acts towards CS3 as the one user of its
:class:`~cs3collab.jupyter.connection.CS3CollabConnection`. Two ways in:

* **Pre-configured** (the connection has a token, e.g. from JupyterHub, or a
  username and password, as in the demo): the server's user is that CS3 user;
  a browser that presents Jupyter's own token (URL ``?token=`` or
  ``Authorization: token``) or the login cookie set after it is that user.
  The login page also accepts Jupyter's token, or the user's CS3 password.
* **Login page** (no credentials configured): ``/login`` asks for a CS3
  username and password; a successful CS3 login becomes a signed cookie
  session, as jupyter_server's password login does. Until someone logs in,
  the server has no CS3 identity and every API call is refused.

The cookie holds only the identity's username, signed with the server's
cookie secret; the CS3 access token stays in this process and appears in no
cookie, page or API answer.

``/api/me`` identity (the fields the RTC frontend reads):

* ``username`` = ``"<cs3 username>@<idp>"``: unique across institutions (the
  collaborators panel de-duplicates on it and hides "me" with it);
* ``name`` = ``display_name`` = the CS3 display name; for a *federated* user
  (a user of another institution as this site's gateway sees them, e.g. an
  OCM guest) `` (<idp>)`` is appended, so cursors and the collaborators panel
  show where the person comes from;
* ``initials`` from the display name, ``color`` a stable
  ``var(--jp-collaborator-colorN)`` from the CS3 user id, ``avatar_url`` None;
* ``idp``: an extra field with the user's institution. jupyter_server's
  ``User`` has fixed fields, but ``/api/me`` serializes the dataclass with
  ``asdict``, so :class:`CS3User` (a ``User`` subclass) carries it; the stock
  frontend passes unknown fields through into awareness untouched.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import typing as t
from dataclasses import dataclass

from cs3.identity.user.v1beta1 import resources_pb2 as identity_pb2
from jupyter_server.auth.decorator import allow_unauthenticated
from jupyter_server.auth.identity import IdentityProvider, User
from jupyter_server.auth.login import LoginFormHandler
from jupyter_server.auth.logout import LogoutHandler
from tornado import web
from tornado.escape import url_escape, xhtml_escape
from traitlets import Instance, default

from cs3collab.cs3 import CS3Error, PermissionDenied, Unauthenticated
from cs3collab.jupyter.connection import CS3CollabConnection

COLLABORATOR_COLORS = 7
"""JupyterLab themes define ``--jp-collaborator-color1`` … ``7``."""


@dataclass
class CS3User(User):
    """A Jupyter user that is a CS3 user; ``idp`` is the user's institution."""

    idp: str = ""


def color_for(opaque_id: str, idp: str) -> str:
    """A stable collaborator color: the same CS3 user gets the same color on every server."""
    digest = hashlib.sha256(f"{opaque_id}@{idp}".encode()).digest()
    return f"var(--jp-collaborator-color{digest[0] % COLLABORATOR_COLORS + 1})"


def initials_for(display_name: str, username: str) -> str:
    """``"Albert Einstein"`` → ``"AE"``; a single word gives one letter."""
    words = [w for w in display_name.replace("-", " ").split() if w[:1].isalnum()]
    if not words:
        return (username[:1] or "?").upper()
    if len(words) == 1:
        return words[0][0].upper()
    return (words[0][0] + words[-1][0]).upper()


def user_for(cs3_user: identity_pb2.User) -> CS3User:
    """The Jupyter identity of a CS3 user (see the module docstring)."""
    idp = cs3_user.id.idp
    login = cs3_user.username or cs3_user.id.opaque_id
    display = cs3_user.display_name or login
    if cs3_user.id.type == identity_pb2.USER_TYPE_FEDERATED and idp:
        display = f"{display} ({idp})"
    return CS3User(
        username=f"{login}@{idp}" if idp else login,
        name=display,
        display_name=display,
        initials=initials_for(cs3_user.display_name, login),
        avatar_url=None,
        color=color_for(cs3_user.id.opaque_id, idp),
        idp=idp,
    )


class CS3LogoutHandler(LogoutHandler):
    """Logging out also forgets the CS3 session that came from the login page
    (a configured identity, e.g. JupyterHub's token, stays)."""

    @allow_unauthenticated
    def get(self) -> None:
        self.identity_provider.connection.logout()
        super().get()


class CS3IdentityProvider(IdentityProvider):
    """Jupyter's identity provider for a server that acts as one CS3 user."""

    connection = Instance(
        CS3CollabConnection,
        help="The server's CS3 identity. Set by the cs3collab extension (one object shared with "
        "the contents manager and the bridge); default: the extension's, if loaded.",
    )

    @default("connection")
    def _default_connection(self) -> CS3CollabConnection:
        from cs3collab.jupyter.app import shared_connection

        return shared_connection(self.parent)

    @default("login_handler_class")
    def _default_login_handler_class(self):
        return CS3LoginHandler

    @default("logout_handler_class")
    def _default_logout_handler_class(self):
        return CS3LogoutHandler

    @default("updatable_fields")
    def _default_updatable_fields(self) -> list[str]:
        return []  # the identity comes from CS3; nothing is edited in the browser

    @default("need_token")
    def _default_need_token(self) -> bool:
        # With credentials configured, Jupyter's token is how a browser gets in;
        # with the login page, the CS3 password is (as with a Jupyter password).
        return self.preconfigured

    @property
    def preconfigured(self) -> bool:
        """Whether the CS3 identity is fixed by configuration (token or credentials)."""
        return bool(self.connection.token or self.connection.username)

    @property
    def login_available(self) -> bool:
        return True

    # -- who is asking -------------------------------------------------------------

    async def server_user(self) -> CS3User | None:
        """The server's CS3 user, or None while nobody is logged in (or CS3 refuses)."""
        connection = self.connection
        if not (connection.logged_in or self.preconfigured):
            return None
        try:
            session = await connection.session()
        except CS3Error as exc:
            self.log.warning("cs3collab: no CS3 session for this server: %s", exc)
            return None
        return user_for(session.user)

    async def get_user_token(self, handler: web.RequestHandler) -> User | None:
        """Jupyter's token (``?token=`` or ``Authorization: token``) means the server's CS3 user."""
        token = self.token
        if not token:
            return None
        presented = self.get_token(handler) or ""
        if not hmac.compare_digest(presented.encode(), token.encode()):
            return None
        return await self.server_user()

    async def get_user_cookie(self, handler: web.RequestHandler) -> User | None:
        """The login cookie, valid while it names the server's current CS3 user."""
        raw = handler.get_secure_cookie(self.get_cookie_name(handler), **self.get_secure_cookie_kwargs)
        if not raw:
            return None
        try:
            username = json.loads(raw)["username"]
        except (ValueError, KeyError, TypeError):
            return None
        user = await self.server_user()
        if user is None or user.username != username:
            return None  # e.g. the server restarted and nobody has logged in to CS3 again
        return user

    def user_to_cookie(self, user: User) -> str:
        return json.dumps({"username": user.username})

    def user_from_cookie(self, cookie_value: str) -> User | None:  # pragma: no cover - not used
        raise NotImplementedError("cs3collab resolves cookies against the CS3 session (get_user_cookie)")

    def generate_anonymous_user(self, handler: web.RequestHandler) -> User:
        raise web.HTTPError(403, "cs3collab has no anonymous users")

    # -- login page -------------------------------------------------------------------

    async def log_in(self, handler: web.RequestHandler, username: str, password: str) -> CS3User:
        """Check what the login form says; the user, or an error with what to tell them.

        Raises:
            LoginRefused: with the HTTP status and a message for the page.
        """
        if not username and self.token and hmac.compare_digest(password.encode(), self.token.encode()):
            user = await self.server_user()
            if user is None:
                raise LoginRefused(503, "This server cannot reach its CS3 account; try again later.")
            return user
        if not username:
            raise LoginRefused(401, "Enter your CS3 username and password.")
        try:
            session = await self.connection.login(username, password)
        except Unauthenticated:
            raise LoginRefused(401, "Invalid CS3 username or password.") from None
        except PermissionDenied as exc:
            raise LoginRefused(403, exc.message or str(exc)) from None
        except CS3Error as exc:
            self.log.warning("cs3collab: CS3 login of %s failed: %s", username, exc)
            raise LoginRefused(503, "The CS3 site cannot be reached; try again later.") from None
        return user_for(session.user)


class LoginRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · Jupyter on CS3</title>
<style>
 body {{ font-family: system-ui, sans-serif; background: #f5f5f5; margin: 0; }}
 main {{ max-width: 22rem; margin: 10vh auto; background: #fff; padding: 2rem; border-radius: 6px;
        box-shadow: 0 1px 4px rgba(0,0,0,.15); }}
 h1 {{ font-size: 1.3rem; margin: 0 0 1rem; }}
 label {{ display: block; margin: .8rem 0 .2rem; font-size: .9rem; }}
 input[type=text], input[type=password] {{ width: 100%; box-sizing: border-box; padding: .5rem; font-size: 1rem; }}
 button {{ margin-top: 1.2rem; width: 100%; padding: .6rem; font-size: 1rem; }}
 .error {{ color: #b00020; margin: .8rem 0 0; }}
 .hint {{ color: #555; font-size: .85rem; margin-top: 1rem; }}
</style>
</head>
<body>
<main>
<h1>Log in with your CS3 account</h1>
<form action="{action}" method="post">
{xsrf}
<label for="username_input">Username</label>
<input type="text" name="username" id="username_input" autocomplete="username" value="{username}" autofocus>
<label for="password_input">Password</label>
<input type="password" name="password" id="password_input" autocomplete="current-password">
<button type="submit" id="login_submit">Log in</button>
</form>
{error}
{hint}
</main>
</body>
</html>
"""


class CS3LoginHandler(LoginFormHandler):
    """``GET/POST /login``: CS3 username and password (or, on a pre-configured
    server, Jupyter's token in the password field with no username)."""

    def _render(self, message: dict | None = None, username: str = "") -> None:
        provider = t.cast(CS3IdentityProvider, self.identity_provider)
        error = ""
        if message and message.get("error"):
            error = f'<p class="error" id="login_error">{xhtml_escape(message["error"])}</p>'
        hint = ""
        if provider.preconfigured and provider.token:
            hint = '<p class="hint">Or leave the username empty and paste this server\'s Jupyter token.</p>'
        next_url = self.get_argument("next", default=self.base_url)
        self.write(
            _PAGE.format(
                action=xhtml_escape(f"{self.base_url}login?next={url_escape(next_url)}"),
                xsrf=self.xsrf_form_html(),
                username=xhtml_escape(username),
                error=error,
                hint=hint,
            )
        )

    @allow_unauthenticated
    async def post(self) -> None:
        provider = t.cast(CS3IdentityProvider, self.identity_provider)
        username = self.get_argument("username", default="").strip()
        password = self.get_argument("password", default="")
        try:
            user = await provider.log_in(self, username, password)
        except LoginRefused as refused:
            self.set_status(refused.status)
            self._render(message={"error": refused.message}, username=username)
            return
        self.current_user = user
        self.log.info("cs3collab: %s logged in", user.username)
        provider.set_login_cookie(self, user)
        self._redirect_safe(self.get_argument("next", default=self.base_url))
