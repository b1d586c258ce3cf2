"""Received OCM shares, opened live: where their room is and how to reach it.

A notebook shared with this server's user from another site (site A) lives
at A; so does its room. The received share says where A's collaboration
service is (the webapp protocol with app name ``cs3collab``) and carries the
shared secret; A knows the share by its own id, which is the received
share's ``remote_share_id`` (the OCM ``providerId``). :class:`OCMTarget`
holds what is needed to reach it; ``cs3_reference`` of the contents manager
returns one for an OCM entry, and the bridge and the contents manager use it
to talk to A's service (never with this site's CS3 token).

Two forms of the webapp protocol (docs/federation.md, "Compatibility"):

* OCM 1.2+ (Reva 3.x, #5664): ``uri`` = A's webapp endpoint joined with the
  share id, ``requirements: ["must-exchange-token"]``. The service's base
  URL is ``uri`` without ``/api/collaboration/ocm/<share id>``. The secret is
  only a code: it is exchanged at A's ``tokenEndPoint`` (from A's discovery;
  the OCM code flow, Reva #5552) for a bearer token, cached until
  ``expires_in``, and A's service is called with ``Authorization: Bearer
  <token>``.
* OCM 1.1 (no requirements): ``uri`` is the service's base URL and the
  secret is sent as ``Authorization: OCM <share id>:<secret>``.

With ``CS3CollabExtension.ocm_signing_key`` (:func:`set_signing_key`) the
exchange is an OCM 1.4 signed request (RFC 9421, :mod:`cs3collab.cs3.httpsig`)
with this site's key, which its OCM server publishes in its JWK Set.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode, urlsplit

import httpx
from cs3.sharing.ocm.v1beta1 import resources_pb2 as ocm

from cs3collab.cs3 import (CS3Error, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, Unauthenticated,
                           Unavailable)
from cs3collab.cs3.httpsig import SigningKey
from cs3collab.cs3.ocm import WEBAPP_NAME

if TYPE_CHECKING:
    from cs3collab.cs3.client import Session

log = logging.getLogger("cs3collab.jupyter.ocm")

EXCHANGE_TOKEN = "must-exchange-token"
"""The requirement of a share protocol that asks for the OCM code flow."""

SERVICE_SHARE_PATH = "/api/collaboration/ocm/"
"""A cs3collab service's per-share route: the webapp ``uri`` of an OCM 1.2+
share is ``<service URL>/api/collaboration/ocm/<share id>``."""


@dataclass(frozen=True)
class OCMTarget:
    """A file at another site, reached through its collaboration service.

    Args:
        service_url: base URL of the sharing site's collaboration service.
        share_id: the share's id at the sharing site.
        secret: the shared secret (a code to exchange when ``must_exchange``).
        must_exchange: the share requires the OCM code flow (``must-exchange-token``).
        sender_domain: the sharing site's OCM domain (to find its ``tokenEndPoint``).
        token_endpoint: where the secret is exchanged; set by :func:`with_token_endpoint`.
        client_id: this site's domain, sent as ``client_id`` of the exchange.
    """

    service_url: str
    share_id: str
    secret: str
    must_exchange: bool = False
    sender_domain: str = ""
    token_endpoint: str = ""
    client_id: str = ""
    path: str = ""  # inside a shared folder, relative to it ("" = the shared resource)

    def __repr__(self) -> str:  # never log a secret
        return f"OCMTarget(service_url={self.service_url!r}, share_id={self.share_id!r}, path={self.path!r})"

    @property
    def session_name(self) -> str:
        """How the sharing site's service names this file in a session
        request: ``ocm:<share id>`` or ``ocm:<share id>/<relative path>``."""
        return f"ocm:{self.share_id}/{self.path}" if self.path else f"ocm:{self.share_id}"

    @property
    def authorization(self) -> str:
        """The OCM 1.1 credentials (``OCM <share id>:<secret>``); a share that
        must exchange its secret uses :meth:`authorization_header` instead."""
        return f"OCM {self.share_id}:{self.secret}"

    async def authorization_header(self, *, timeout: float = 30.0) -> str:
        """The ``Authorization`` value for the sharing site's service: ``Bearer
        <exchanged token>`` when the share requires the code flow, else the
        OCM 1.1 credentials. Raises Unauthenticated when the sharing site
        refuses the exchange (share removed or expired), Unavailable when its
        token endpoint cannot be reached."""
        if not self.must_exchange:
            return self.authorization
        return f"Bearer {await TOKENS.token_for(self, timeout=timeout)}"

    def forget_token(self) -> None:
        """Drop a cached exchanged token (the sharing site refused it)."""
        TOKENS.forget(self)

    @property
    def session_path(self) -> str:
        """:attr:`session_name` as one URL path segment (the service's session route)."""
        return quote(self.session_name, safe="")

    @property
    def content_url(self) -> str:
        """The sharing site's content route for this file or folder."""
        return f"{self.service_url}/api/collaboration/ocm/{quote(self.share_id, safe='')}/content"


def service_url_from_uri(uri: str, share_id: str, *, new_form: bool) -> str:
    """The base URL of the sharing site's service from a webapp ``uri``: in
    the OCM 1.2+ form the uri is ``<endpoint>/<share id>`` and a cs3collab
    endpoint is ``<service>/api/collaboration/ocm``; in the OCM 1.1 form the
    uri is the service's base URL."""
    base = uri.rstrip("/")
    if not new_form:
        return base
    if share_id and base.endswith("/" + quote(share_id, safe="")):
        base = base[: -len(share_id) - 1]
    elif share_id and base.endswith("/" + share_id):
        base = base[: -len(share_id) - 1]
    suffix = SERVICE_SHARE_PATH.rstrip("/")
    return base[: -len(suffix)] if base.endswith(suffix) else base


def ocm_target(share: ocm.ReceivedShare) -> OCMTarget | None:
    """The target of a received share, or None when it offers no cs3collab webapp."""
    for protocol in share.protocols:
        if protocol.HasField("webapp_options"):
            app = protocol.webapp_options
            if app.app_name == WEBAPP_NAME and app.uri.startswith(("http://", "https://")) and app.shared_secret:
                share_id = share.remote_share_id or share.id.opaque_id
                new_form = bool(app.requirements) or bool(app.targets)
                sender = share.creator.idp or share.owner.idp
                return OCMTarget(service_url_from_uri(app.uri, share_id, new_form=new_form), share_id,
                                 app.shared_secret, must_exchange=EXCHANGE_TOKEN in app.requirements,
                                 sender_domain=sender)
    return None


class _TokenCache:
    """Exchanged tokens per (token endpoint, secret), kept until shortly
    before ``expires_in``; concurrent callers share one exchange."""

    MARGIN = 30.0  # seconds before expiry a token is no longer handed out

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], tuple[float, str]] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def forget(self, target: OCMTarget) -> None:
        self._tokens.pop((target.token_endpoint, target.secret), None)

    async def token_for(self, target: OCMTarget, *, timeout: float) -> str:
        if not target.token_endpoint:
            raise Unavailable("the sharing site advertises no OCM token endpoint",
                              operation="exchange OCM share code", target=target.share_id)
        key = (target.token_endpoint, target.secret)
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            cached = self._tokens.get(key)
            if cached is not None and cached[0] > time.monotonic():
                return cached[1]
            token, expires_in = await exchange_code(target, timeout=timeout)
            if len(self._tokens) > 10_000:
                now = time.monotonic()
                self._tokens = {k: v for k, v in self._tokens.items() if v[0] > now}
            self._tokens[key] = (time.monotonic() + max(0.0, expires_in - self.MARGIN), token)
            return token


TOKENS = _TokenCache()


class _KeyFile:
    """This site's OCM signing key from its PEM file, read again when the file changes."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._key: SigningKey | None = None

    def current(self) -> SigningKey:
        st = self.path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp or self._key is None:
            self._key, self._stamp = SigningKey.from_pem(self.path.read_bytes()), stamp
        return self._key


_SIGNING: _KeyFile | None = None


def set_signing_key(path: str | os.PathLike | None) -> None:
    """Sign the code-flow exchange with the key in ``path`` (None: unsigned)."""
    global _SIGNING
    _SIGNING = _KeyFile(str(path)) if path else None


async def exchange_code(target: OCMTarget, *, timeout: float = 30.0) -> tuple[str, float]:
    """The OCM code flow: ``POST {tokenEndPoint}`` with ``grant_type=
    authorization_code``, ``code`` = the shared secret and ``client_id`` =
    this site (Reva ocmd ``token.go``); returns (access token, expires_in).
    Signed (OCM 1.4) when this server has the site's signing key."""
    form = {"grant_type": "authorization_code", "code": target.secret, "client_id": target.client_id}
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    content = urlencode(form).encode("ascii")
    if _SIGNING is not None:
        try:
            headers = _SIGNING.current().sign("POST", target.token_endpoint, headers, content)
        except (OSError, ValueError) as exc:
            log.warning("OCM signing key unreadable file=%s, exchanging unsigned: %s", _SIGNING.path, exc)
    try:
        async with httpx.AsyncClient(timeout=timeout) as http:
            response = await http.post(target.token_endpoint, content=content, headers=headers)
    except httpx.HTTPError as exc:
        raise Unavailable(f"the sharing site's OCM token endpoint is not reachable: {exc}",
                          operation="exchange OCM share code", target=target.share_id) from exc
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code == 200 and isinstance(body, dict) and isinstance(body.get("access_token"), str):
        try:
            expires_in = float(body.get("expires_in") or 0)
        except (TypeError, ValueError):
            expires_in = 0.0
        log.info("exchanged OCM share code share=%s site=%s expires_in=%d", target.share_id,
                 target.sender_domain or "-", expires_in)
        return body["access_token"], expires_in
    error = body.get("error", "") if isinstance(body, dict) else ""
    log.warning("OCM share code refused share=%s site=%s status=%d error=%s", target.share_id,
                target.sender_domain or "-", response.status_code, error or "-")
    if response.status_code == 401 and error == "invalid_client":
        # an OCM 1.4 site refuses an unsigned exchange from a site that advertises http-sig
        raise Unavailable("the sharing site refused this site's token request (invalid_client); if this site "
                          "advertises OCM signatures, its Jupyter servers need its signing key "
                          "(CS3CollabExtension.ocm_signing_key)",
                          operation="exchange OCM share code", target=target.share_id)
    if response.status_code == 400:
        raise Unauthenticated(f"the sharing site refused the share's code ({error or 'invalid_grant'}): "
                              "the share was removed or expired", operation="exchange OCM share code",
                              target=target.share_id)
    raise Unavailable(f"the sharing site's OCM token endpoint answered {response.status_code}",
                      operation="exchange OCM share code", target=target.share_id)


_ENDPOINTS: dict[str, tuple[float, str]] = {}
ENDPOINT_CACHE_SECONDS = 300.0


async def token_endpoint(session: "Session", domain: str, *, timeout: float = 30.0) -> str:
    """The ``tokenEndPoint`` of OCM site ``domain``: its OCM endpoint as this
    site knows it (GetInfoByDomain), then its discovery (``/.well-known/ocm``
    at that origin); ``{endPoint}/token`` when discovery lists the
    ``exchange-token`` capability without an endpoint. The discovery is cached 5 minutes
    per OCM endpoint (a site that moved is discovered again)."""
    info = await session.ocm.provider_info(domain)
    endpoint = next((svc.endpoint.path for svc in info.services if svc.endpoint.type.name == "OCM"), "")
    if not endpoint:
        raise Unavailable(f"{domain} has no OCM endpoint", operation="exchange OCM share code", target=domain)
    cached = _ENDPOINTS.get(endpoint)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    parts = urlsplit(endpoint)
    try:
        async with httpx.AsyncClient(timeout=timeout) as http:
            response = await http.get(f"{parts.scheme}://{parts.netloc}/.well-known/ocm")
        doc = response.json() if response.status_code == 200 else {}
    except (httpx.HTTPError, ValueError) as exc:
        raise Unavailable(f"the OCM discovery of {domain} failed: {exc}", operation="exchange OCM share code",
                          target=domain) from exc
    url = doc.get("tokenEndPoint") if isinstance(doc, dict) else None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        caps = doc.get("capabilities") if isinstance(doc, dict) else None
        base = doc.get("endPoint") if isinstance(doc, dict) else None
        if isinstance(caps, list) and "exchange-token" in caps and isinstance(base, str):
            url = base.rstrip("/") + "/token"
        else:
            raise Unavailable(f"{domain} does not offer the OCM code flow (no tokenEndPoint)",
                              operation="exchange OCM share code", target=domain)
    _ENDPOINTS[endpoint] = (time.monotonic() + ENDPOINT_CACHE_SECONDS, url)
    return url


async def with_token_endpoint(target: OCMTarget, session: "Session") -> OCMTarget:
    """``target`` ready for :meth:`OCMTarget.authorization_header`: with the
    sharing site's token endpoint and this site's domain as ``client_id``
    when the share must exchange its secret (unchanged otherwise)."""
    if not target.must_exchange or target.token_endpoint:
        return target
    endpoint = await token_endpoint(session, target.sender_domain)
    return replace(target, token_endpoint=endpoint, client_id=session.user.id.idp)


def share_writable(share: ocm.ReceivedShare) -> bool:
    """Whether the share's role lets the recipient edit (upload permission)."""
    for protocol in share.protocols:
        if protocol.HasField("webdav_options"):
            return protocol.webdav_options.permissions.permissions.initiate_file_upload
    return False


async def fetch_content(target: OCMTarget, *, content: bool = True, timeout: float = 30.0) -> dict:
    """The current content of the share, or of ``target.path`` inside a
    shared folder, at its site (``GET .../ocm/{id}/content?path=``); without
    ``content`` only its model (type, role, etag...).

    Raises the CS3 error matching the answer: 401 → Unauthenticated, 403 →
    PermissionDenied, 404 → NotFound (no such share or path, or no
    collaboration service at that uri), unreachable or 5xx → Unavailable.
    """
    params = {"path": target.path} if target.path else {}
    if not content:
        params["content"] = "0"
    return await _call(target, "GET", params, None, "open OCM share", timeout)


async def save_content(target: OCMTarget, fmt: str, content: object, *, timeout: float = 30.0) -> dict:
    """Write ``target`` (a file of the share, or inside a shared folder) at
    the sharing site (``PUT .../ocm/{id}/content?path=``) with ``format``
    ``json`` (a notebook), ``text`` or ``base64``; the sharing site applies
    the share's role (403 for a viewer) and refuses a file open live (409).
    Returns the saved file's model (no content). Errors as :func:`fetch_content`,
    plus 409 → FailedPrecondition."""
    params = {"path": target.path} if target.path else {}
    return await _call(target, "PUT", params, {"format": fmt, "content": content}, "save to OCM share", timeout)


async def _call(target: OCMTarget, method: str, params: dict, body: dict | None, operation: str,
                timeout: float) -> dict:
    where = target.session_name
    for attempt in (1, 2):
        try:
            async with httpx.AsyncClient(timeout=timeout) as http:
                response = await http.request(method, target.content_url, params=params, json=body,
                                              headers={"Authorization": await target.authorization_header()})
        except httpx.HTTPError as exc:
            raise Unavailable(f"the sharing site's collaboration service is not reachable: {exc}",
                              operation=operation, target=where) from exc
        if response.status_code == 401 and target.must_exchange:
            target.forget_token()  # an exchanged token that expired early: exchange the code once more
            if attempt == 1:
                continue
        break
    if response.status_code == 200:
        return response.json()
    try:
        message = response.json().get("message", "")
    except ValueError:
        message = response.text[:200]
    error: type[CS3Error] = {401: Unauthenticated, 403: PermissionDenied, 404: NotFound,
                             409: FailedPrecondition, 400: InvalidArgument}.get(response.status_code, Unavailable)
    raise error(f"the sharing site answered {response.status_code}: {message}", operation=operation, target=where)


async def owning_site(contents_manager, api_path: str) -> OCMTarget | None:
    """How to reach a contents path under "Shared with me" at the site that owns it.

    For a path that is, or lies inside, an OCM share received from another
    site (e.g. ``Shared with me/higgs-analysis/analysis.ipynb``) this returns
    an :class:`OCMTarget` with everything needed to work on it there:

    * ``target.service_url``: the owning site's collaboration service;
    * ``target.session_name``: the session path that service takes,
      ``ocm:<share id>`` or ``ocm:<share id>/<path inside the share>``
      (``target.session_path`` is it URL-encoded as one segment, for
      ``PUT {service_url}/api/collaboration/session/{session_path}``);
    * ``await target.authorization_header()``: the ``Authorization`` value
      (``Bearer <token>`` from the OCM code flow, exchanged and cached here;
      ``OCM <id>:<secret>`` for an OCM 1.1 share); call it for every request,
      it renews an expired token.

    Returns None for a path served by this site (the home, user shares).
    Opening a pending share accepts it. Raises the contents manager's HTTP
    errors (404 no such share or path, 501 an OCM share without our webapp).

    Used by the room bridge (session PUT and room WebSocket) and meant for
    the kernel bridge: a federated notebook's kernel session goes to the
    shared kernel at ``target.service_url`` with the same header.
    """
    locate = getattr(contents_manager, "owning_site", None)
    if locate is None:
        return None
    return await locate(api_path)
