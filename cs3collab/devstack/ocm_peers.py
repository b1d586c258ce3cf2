"""The mesh as one site sees it: trusted peer sites and how to reach them.

``TrustedPeers`` plays Reva's json provider authorizer
(pkg/ocm/provider/authorizer/json/json.go, ``ocm-providers.json``) plus its
``auto_accept_providers`` list: only listed sites may send us shares and
receive ours, and no invitation is needed. Peers come from ``--peer
DOMAIN=URL`` and/or a providers file, which is read again whenever its mtime
or size changes (so a launcher may write it after the sites started on
ports chosen at run time).

``OCMSender`` is the HTTP client towards them (Reva ocmd/client.go):
discovery (``/.well-known/ocm``, falling back to ``/ocm-provider``), the
Share Creation Notification (``POST {endPoint}/shares``), notifications and
``POST {endPoint}/invite-accepted`` (``post``). With a signing key every
POST carries an OCM 1.4 RFC 9421 signature (``ocm_signing``); discovery and
JWK Set fetches are plain GETs (the spec signs requests that carry a sender).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

import httpx

from .errors import DevstackError, InvalidArgument, PreconditionFailed, Unimplemented
from .ocm_model import OCM_API_VERSION, OCM_PREFIX, normalize_domain

log = logging.getLogger("cs3collab.devstack.ocm")


@dataclass(frozen=True)
class PeerSite:
    """A trusted OCM site: its domain (the fqdn of its OCM addresses), the
    base URL its discovery is served at, and optionally its OCM endpoint
    (known from a providers file; otherwise found by discovery)."""

    domain: str
    base_url: str
    ocm_endpoint: str = ""
    name: str = ""
    webapp_url: str = ""  # where the site's collaboration service is reached (a "cs3collab" service entry)


def _checked(peer: PeerSite) -> PeerSite:
    domain = normalize_domain(peer.domain)
    if not domain:
        raise ValueError(f"invalid peer domain {peer.domain!r}")
    base = peer.base_url.rstrip("/")
    if urlsplit(base).scheme not in ("http", "https"):
        raise ValueError(f"peer {domain}: base URL must be http(s): {peer.base_url!r}")
    return PeerSite(domain, base, peer.ocm_endpoint.rstrip("/"), peer.name or domain, peer.webapp_url.rstrip("/"))


def parse_peer_arg(arg: str) -> PeerSite:
    """``DOMAIN=URL``, e.g. ``b.test=http://127.0.0.1:8081``."""
    domain, sep, url = arg.partition("=")
    if not sep or not domain.strip() or not url.strip():
        raise ValueError(f"--peer expects DOMAIN=URL, got {arg!r}")
    return _checked(PeerSite(domain.strip(), url.strip()))


def parse_providers(doc: Any) -> list[PeerSite]:
    """The sites of a Reva ``ocm-providers.json`` document: a list of
    ProviderInfo objects; only those with a service whose
    ``endpoint.type.name`` is "OCM" count. The base URL is the scheme and
    host of that endpoint's ``path`` (e.g. ``http://127.0.0.1:8081/ocm/``).
    A service of type :data:`WEBAPP_SERVICE_TYPE` gives the URL of the
    site's collaboration service (sent as the webapp ``uri`` of its shares)."""
    if not isinstance(doc, list):
        raise ValueError("providers file must hold a JSON list")
    out = []
    for entry in doc:
        if not isinstance(entry, dict) or not entry.get("domain"):
            continue
        for service in entry.get("services") or []:
            endpoint = (service or {}).get("endpoint") or {}
            if ((endpoint.get("type") or {}).get("name")) != "OCM" or not endpoint.get("path"):
                continue
            parts = urlsplit(endpoint["path"])
            if parts.scheme not in ("http", "https") or not parts.netloc:
                continue
            webapp = next((((x or {}).get("endpoint") or {}).get("path", "") for x in entry.get("services") or []
                           if (((x or {}).get("endpoint") or {}).get("type") or {}).get("name") == WEBAPP_SERVICE_TYPE), "")
            out.append(_checked(PeerSite(entry["domain"], f"{parts.scheme}://{parts.netloc}",
                                         endpoint["path"], entry.get("full_name") or entry.get("name", ""),
                                         webapp or "")))
            break
    return out


def providers_json(peers: Iterable[PeerSite]) -> list[dict[str, Any]]:
    """Peers in Reva's ocm-providers.json format (what a launcher writes)."""
    return [_with_webapp({
        "name": p.domain, "full_name": p.name or p.domain, "domain": p.domain,
        "services": [{
            "endpoint": {"type": {"name": "OCM"}, "name": f"{p.name or p.domain} - OCM API",
                         "path": (p.ocm_endpoint or p.base_url.rstrip("/") + OCM_PREFIX) + "/"},
            "api_version": OCM_API_VERSION,
            "host": urlsplit(p.base_url).netloc,
        }],
    }, p) for p in peers]


def write_providers(path: Path, peers: Iterable[PeerSite]) -> None:
    """Write a providers file for ``peers``, replaced atomically: devstacks
    re-read it when it changes, so a launcher writes it once every site listens."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(providers_json(peers), indent=1))
    tmp.replace(path)


WEBAPP_SERVICE_TYPE = "cs3collab"
"""``endpoint.type.name`` of a provider's collaboration service in the providers file."""


def _with_webapp(entry: dict[str, Any], peer: PeerSite) -> dict[str, Any]:
    if peer.webapp_url:
        entry["services"].append({"endpoint": {"type": {"name": WEBAPP_SERVICE_TYPE},
                                               "name": f"{peer.name or peer.domain} - collaboration service",
                                               "path": peer.webapp_url}, "host": urlsplit(peer.webapp_url).netloc})
    return entry


class TrustedPeers:
    """Domain → peer site.

    Args:
        peers: fixed peers (``--peer``); they win over the file's.
        providers_file: a Reva ``ocm-providers.json``, re-read on use when
            its mtime or size changed; missing = no peers from it; a file
            that does not parse keeps the peers read before (and a warning).
    """

    def __init__(self, peers: Iterable[PeerSite] = (), providers_file: str | os.PathLike | None = None) -> None:
        self._static = {p.domain: p for p in map(_checked, peers)}
        self._file = Path(providers_file) if providers_file else None
        self._stamp: tuple[int, int] | None = None
        self._from_file: dict[str, PeerSite] = {}

    def _refresh(self) -> None:
        if self._file is None:
            return
        try:
            st = self._file.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            self._stamp, self._from_file = None, {}
            return
        if stamp == self._stamp:
            return
        try:
            peers = parse_providers(json.loads(self._file.read_text("utf-8")))
        except (OSError, ValueError) as e:
            log.warning("ocm providers file=%s unreadable, keeping %d peers: %s", self._file, len(self._from_file), e)
            return
        self._stamp, self._from_file = stamp, {p.domain: p for p in peers}
        log.info("ocm providers file=%s peers=%s", self._file, ",".join(sorted(self._from_file)) or "-")

    def add(self, peer: PeerSite) -> None:
        peer = _checked(peer)
        self._static[peer.domain] = peer

    def remove(self, domain: str) -> None:
        self._static.pop(normalize_domain(domain), None)

    def get(self, domain: str) -> PeerSite | None:
        self._refresh()
        d = normalize_domain(domain)
        return self._static.get(d) or self._from_file.get(d)

    def webapp_url(self, domain: str) -> str:
        """The collaboration service URL the providers file (or ``--peer``) lists for ``domain``, or ""."""
        peer = self.get(domain)
        return peer.webapp_url if peer is not None else ""

    def is_trusted(self, domain: str) -> bool:
        return self.get(domain) is not None

    @property
    def domains(self) -> list[str]:
        self._refresh()
        return sorted(self._static.keys() | self._from_file.keys())


def _error_message(resp: httpx.Response) -> str:
    try:
        doc = resp.json()
        if isinstance(doc, dict) and doc.get("message"):
            return str(doc["message"])[:300]
    except ValueError:
        pass
    return (resp.text or "")[:300]


class OCMSender:
    """HTTP client towards trusted peers (httpx, async).

    Args:
        peers: the trusted peers; only those are contacted.
        timeout: seconds per request (Reva's ocmshareprovider default is 10).
        notify_timeout: seconds per notification (they are awaited inline).
        discovery_ttl: seconds a discovery document is cached.
        signing_key: asked for this site's current signing key before each
            POST (``SiteKeys.current``); None = requests go unsigned.
    """

    def __init__(self, peers: TrustedPeers, *, timeout: float = 10.0, notify_timeout: float = 3.0,
                 discovery_ttl: float = 60.0, signing_key: Callable[[], Any] | None = None) -> None:
        self.peers = peers
        self.signing_key = signing_key
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False,
                                         headers={"Accept": "application/json"})
        self._notify_timeout = notify_timeout
        self._ttl = discovery_ttl
        self._cache: dict[str, tuple[float, str, dict[str, Any]]] = {}

    async def aclose(self) -> None:
        await self._client.aclose()

    @property
    def client(self) -> httpx.AsyncClient:
        return self._client

    async def _post(self, url: str, body: dict[str, Any], *, timeout: float | None = None) -> httpx.Response:
        """POST ``body`` as JSON, signed when this site has a signing key."""
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self.signing_key is not None:
            headers = self.signing_key().sign("POST", url, headers, data)
        kwargs: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        return await self._client.post(url, content=data, headers=headers, **kwargs)

    def _peer(self, domain: str) -> PeerSite:
        peer = self.peers.get(domain)
        if peer is None:
            raise InvalidArgument(f"provider not trusted: {domain}")
        return peer

    async def discover(self, domain: str) -> dict[str, Any]:
        """The peer's discovery document (a JSON object with ``enabled``
        true and an ``endPoint``), cached per base URL for ``discovery_ttl``."""
        peer = self._peer(domain)
        cached = self._cache.get(peer.domain)
        if cached and cached[1] == peer.base_url and time.monotonic() - cached[0] < self._ttl:
            return cached[2]
        last_error = "no answer"
        for path in ("/.well-known/ocm", "/ocm-provider"):
            try:
                resp = await self._client.get(peer.base_url + path)
            except httpx.HTTPError as e:
                last_error = f"{path}: {type(e).__name__}"
                continue
            if resp.status_code != 200:
                last_error = f"{path}: HTTP {resp.status_code}"
                continue
            try:
                doc = resp.json()
            except ValueError:
                last_error = f"{path}: invalid JSON"
                continue
            if not isinstance(doc, dict) or not isinstance(doc.get("endPoint"), str) or not doc["endPoint"]:
                last_error = f"{path}: not an OCM discovery document"
                continue
            if doc.get("enabled") is not True:
                raise PreconditionFailed(f"OCM is not enabled at {peer.domain}")
            self._cache[peer.domain] = (time.monotonic(), peer.base_url, doc)
            return doc
        raise DevstackError(f"OCM discovery of {peer.domain} at {peer.base_url} failed: {last_error}")

    async def endpoint(self, domain: str) -> str:
        peer = self._peer(domain)
        if peer.ocm_endpoint:
            return peer.ocm_endpoint.rstrip("/")
        return (await self.discover(domain))["endPoint"].rstrip("/")

    async def send_share(self, domain: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST {endPoint}/shares``; the answer's JSON object (may be empty).
        Errors as Reva's ``parseNewShareResponse``: 400 → InvalidArgument,
        401/403 → InvalidArgument ("does not trust"), 501 → Unimplemented,
        unreachable or anything else → internal error."""
        url = await self.endpoint(domain) + "/shares"
        try:
            resp = await self._post(url, body)
        except httpx.HTTPError as e:
            raise DevstackError(f"cannot reach {domain} at {url}: {type(e).__name__}") from None
        if resp.status_code in (200, 201):
            try:
                doc = resp.json()
            except ValueError:
                doc = {}
            return doc if isinstance(doc, dict) else {}
        detail = _error_message(resp)
        if resp.status_code == 400:
            raise InvalidArgument(f"{domain} refused the share: {detail}")
        if resp.status_code in (401, 403):
            raise InvalidArgument(f"{domain} does not trust this provider: {detail}")
        if resp.status_code == 501:
            raise Unimplemented(f"{domain} does not support the share: {detail}")
        raise DevstackError(f"{domain} answered HTTP {resp.status_code}: {detail}")

    async def post(self, domain: str, path: str, body: dict[str, Any]) -> httpx.Response:
        """``POST {endPoint}{path}`` with a JSON body; unreachable → internal error."""
        url = await self.endpoint(domain) + path
        try:
            return await self._post(url, body)
        except httpx.HTTPError as e:
            raise DevstackError(f"cannot reach {domain} at {url}: {type(e).__name__}") from None

    async def notify(self, domain: str, body: dict[str, Any]) -> bool:
        """Best-effort ``POST {endPoint}/notifications``; True on 2xx."""
        try:
            url = await self.endpoint(domain) + "/notifications"
            resp = await self._post(url, body, timeout=self._notify_timeout)
        except (httpx.HTTPError, DevstackError) as e:
            log.info("ocm notification to=%s failed: %s", domain, getattr(e, "message", "") or type(e).__name__)
            return False
        if not 200 <= resp.status_code < 300:
            log.info("ocm notification to=%s refused: HTTP %d %s", domain, resp.status_code, _error_message(resp))
        return 200 <= resp.status_code < 300
