"""The Jupyter server's own CS3 identity: one user, one CS3 session.

A Jupyter server is a single-user server (JupyterHub spawns one per user),
so it acts towards CS3 as exactly one user. That user's session comes from,
in order: a token handed over by JupyterHub (``CS3CollabConnection.token``,
or the ``CS3COLLAB_TOKEN`` environment variable), configured credentials
(``username``/``password``, for the embedded demo), or the login page, where
the user types their CS3 username and password. The CS3 token stays in this
process; the browser never sees it.
"""

from __future__ import annotations

import asyncio
import os

import httpx
from traitlets import Float, Unicode, default
from traitlets.config import LoggingConfigurable

from cs3collab.cs3 import CS3Client, PermissionDenied, Session, Unauthenticated, Unavailable

TOKEN_ENV = "CS3COLLAB_TOKEN"


class CS3CollabConnection(LoggingConfigurable):
    """Where CS3 is and who this server is there."""

    gateway = Unicode(
        "", help="host:port of the site's CS3 gateway (gRPC). Required."
    ).tag(config=True)
    token = Unicode(
        help=f"A CS3 access token for this server's user, e.g. from JupyterHub's auth state. "
        f"Default: the {TOKEN_ENV} environment variable; empty: use username/password or the login page."
    ).tag(config=True)
    username = Unicode("", help="CS3 username to log in with at start (demo setups); empty: none.").tag(config=True)
    password = Unicode("", help="CS3 password for username (demo setups).").tag(config=True)
    call_timeout = Float(30.0, help="Seconds allowed for one CS3 gRPC call (default 30).").tag(config=True)

    hub_token_url = Unicode(
        help="Where a fresh CS3 token for this server's user is fetched when the one it has expires: "
        "the hub's /hub/api/cs3collab/token (cs3collab.hub), asked with this server's JupyterHub API token. "
        "Default: derived from JUPYTERHUB_API_URL when the server runs under JupyterHub with a token from it; "
        "empty: a token from JupyterHub is never renewed."
    ).tag(config=True)

    @default("token")
    def _default_token(self) -> str:
        return os.environ.get(TOKEN_ENV, "")

    @default("hub_token_url")
    def _default_hub_token_url(self) -> str:
        api = os.environ.get("JUPYTERHUB_API_URL", "")
        if api and os.environ.get("JUPYTERHUB_API_TOKEN") and os.environ.get(TOKEN_ENV):
            return api.rstrip("/") + "/cs3collab/token"
        return ""

    async def _token_from_hub(self) -> str:
        """A fresh CS3 token from the hub (which refreshes its copy first when due)."""
        headers = {"Authorization": f"token {os.environ.get('JUPYTERHUB_API_TOKEN', '')}"}
        try:
            async with httpx.AsyncClient(timeout=self.call_timeout) as http:
                answer = await http.get(self.hub_token_url, headers=headers)
        except httpx.HTTPError as exc:
            raise Unavailable(f"JupyterHub cannot be reached for a fresh CS3 token: {exc}",
                              operation="renew", target=self.hub_token_url) from None
        if answer.status_code in (401, 403):
            raise Unauthenticated("the CS3 session ended: log in to JupyterHub again",
                                  operation="renew", target=self.hub_token_url)
        if answer.status_code != 200:
            raise Unavailable(f"JupyterHub answered {answer.status_code} for a fresh CS3 token",
                              operation="renew", target=self.hub_token_url)
        return answer.json()["token"]

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._client: CS3Client | None = None
        self._session: Session | None = None
        self._bound_to = None  # the CS3 user id this server belongs to, once someone logged in
        self._lock: asyncio.Lock | None = None

    async def client(self) -> CS3Client:
        """The open CS3 client (opened on first use, on the server's loop)."""
        if self._client is None:
            if not self.gateway:
                raise Unauthenticated("CS3CollabConnection.gateway is not configured", operation="connect")
            self._client = CS3Client(self.gateway, timeout=self.call_timeout)
            await self._client.open()
        return self._client

    @property
    def logged_in(self) -> bool:
        return self._session is not None

    async def session(self) -> Session:
        """This server's CS3 session; Unauthenticated until someone logged in."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._session is None:
                client = await self.client()
                if self.token:
                    renewer = self._token_from_hub if self.hub_token_url else None
                    self._session = await client.session_for_token(self.token, renewer)
                elif self.username:
                    self._session = await client.login(self.username, self.password)
            if self._session is None:
                raise Unauthenticated("not logged in to CS3", operation="session")
            return self._session

    async def login(self, username: str, password: str) -> Session:
        """Log in from the login page. A server bound to one user refuses another."""
        client = await self.client()
        session = await client.login(username, password)
        owner = self._session.user if self._session is not None else self._bound_to
        if owner is not None and owner.id != session.user.id:
            raise PermissionDenied(f"this Jupyter server belongs to {owner.username}", operation="login", target=username)
        self._session, self._bound_to = session, session.user
        return session

    def logout(self) -> None:
        """Forget a session that came from the login page (configured ones
        stay). The server still belongs to that user: only they log in again."""
        if not self.token and not self.username:
            self._session = None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
