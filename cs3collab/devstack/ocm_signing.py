"""OCM 1.4 HTTP signatures at a devstack site: our keys, and checking peers'.

Reva at aa6e45a signs nothing and checks nothing (its ocmd has no RFC 9421
code); this follows the OCM text as of its July 2026 revisions (see
:mod:`cs3collab.cs3.httpsig` for which pull requests) and docs/devstack.md:

- ``SiteKeys``: this site's Ed25519 signing key, kept in a PEM file
  (``--ocm-signing-key``, default ``<data>/ocm-signing-key.pem``, created on
  first start). The file is read again when it changes: a new key there
  becomes the signing key at once and the keys it replaced stay in the JWK
  Set (``/.well-known/jwks.json``, named by discovery's ``jwksUri``) so that
  requests signed just before still verify: that is key rotation.
- ``PeerSignatures``: the check of an incoming OCM request. A signed request
  is verified with the JWK Set of the peer it claims to come from (found by
  its discovery's ``jwksUri``, cached, fetched again when the signature
  names a key id the cache lacks). An unsigned request is refused when the
  peer advertises ``http-sig`` (or when ``--ocm-require-signatures`` is
  set), and accepted otherwise: OCM 1.1-1.3 peers and Reva 3.x sign nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any, Iterable

import httpx

from cs3collab.cs3.httpsig import (CAPABILITY, SignatureRefused, SigningKey, default_jwks_uri, jwks_document,
                                   public_keys, signature_of, verify)

from .errors import DevstackError, Unauthenticated
from .ocm_peers import OCMSender

log = logging.getLogger("cs3collab.devstack.ocm")

KEPT_KEYS = 3
"""How many keys the JWK Set lists: the current one and the two it replaced."""


class SiteKeys:
    """This site's signing keys, from a PEM file re-read when it changes."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._keys: list[SigningKey] = []
        self._refresh()

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            key = SigningKey.load_or_create(self.path)
            log.info("ocm signing key created file=%s kid=%s", self.path, key.kid)
            st = self.path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        try:
            key = SigningKey.from_pem(self.path.read_bytes())
        except (OSError, ValueError) as e:
            if not self._keys:
                raise
            log.warning("ocm signing key file=%s unreadable, keeping kid=%s: %s", self.path, self._keys[0].kid, e)
            return
        self._stamp = stamp
        if self._keys and self._keys[0].kid == key.kid:
            return
        if self._keys:
            log.info("ocm signing key rotated kid=%s previous=%s", key.kid, self._keys[0].kid)
        self._keys = ([key] + [k for k in self._keys if k.kid != key.kid])[:KEPT_KEYS]

    @property
    def current(self) -> SigningKey:
        self._refresh()
        return self._keys[0]

    def jwks(self) -> dict[str, Any]:
        self._refresh()
        return jwks_document(self._keys)


class PeerSignatures:
    """Checks incoming OCM requests against their peer's published keys.

    Args:
        sender: the site's OCMSender (discovery of trusted peers, its HTTP client).
        require_all: refuse unsigned requests from every peer, not only from
            those that advertise ``http-sig``.
    """

    def __init__(self, sender: OCMSender, *, require_all: bool = False) -> None:
        self.sender = sender
        self.require_all = require_all
        self._keys: dict[str, dict] = {}  # domain -> kid -> public key
        self._locks: dict[str, asyncio.Lock] = {}

    async def check(self, domain: str, route: str, method: str, url: str,
                    headers: Iterable[tuple[str, str]], body: bytes) -> str:
        """Pass or raise Unauthenticated (401) naming the peer and why.
        Returns "signed", "unsigned" or "unknown peer" (for the log). Only
        trusted peers are asked for keys; an untrusted claimed sender is left
        to the route's own trust check. An unsigned request from a peer that
        advertises ``http-sig`` is refused on every route, ``/token`` included
        (a receiving site's Jupyter servers sign their exchanges with the site's
        key: ``CS3CollabExtension.ocm_signing_key``)."""
        lines = list(headers)
        try:
            signed = signature_of(dict(lines))
        except SignatureRefused as e:
            return self._refuse(domain, route, str(e))
        if not domain or not self.sender.peers.is_trusted(domain):
            if signed is not None or self.require_all:
                return self._refuse(domain or "-", route, "the request names no trusted sending provider")
            return "unknown peer"
        if signed is None:
            if self.require_all:
                return self._refuse(domain, route, "this site requires signed OCM requests and the request is unsigned")
            try:
                disco = await self.sender.discover(domain)
            except DevstackError as e:
                log.info("ocm signature not checked peer=%s route=%s: discovery failed: %s", domain, route, e.message)
                return "unsigned"
            if _advertises(disco):
                return self._refuse(domain, route, f"{domain} advertises http-sig but the request is unsigned")
            return "unsigned"
        keys = await self._peer_keys(domain, signed.keyid)
        try:
            verify(method, url, lines, body, keys)
        except SignatureRefused as e:
            return self._refuse(domain, route, str(e))
        log.debug("ocm signature verified peer=%s route=%s kid=%s", domain, route, signed.keyid)
        return "signed"

    def _refuse(self, domain: str, route: str, why: str) -> str:
        log.warning("ocm signature refused peer=%s route=%s reason=%r", domain, route, why)
        raise Unauthenticated(f"HTTP signature refused: {why}")

    async def _peer_keys(self, domain: str, kid: str) -> dict:
        """The peer's keys, fetched again (once per request) when ``kid`` is not among the cached ones."""
        lock = self._locks.setdefault(domain, asyncio.Lock())
        async with lock:
            keys = self._keys.get(domain)
            if keys is not None and kid in keys:
                return keys
            reason = "first use" if keys is None else "unknown keyid"
            keys = await self._fetch(domain)
            self._keys[domain] = keys
            log.info("ocm jwks fetched peer=%s keys=%d reason=%s", domain, len(keys), reason)
            return keys

    async def _fetch(self, domain: str) -> dict:
        try:
            disco = await self.sender.discover(domain)
        except DevstackError as e:
            self._refuse(domain, "jwks", f"discovery of {domain} failed: {e.message}")
        uri = disco.get("jwksUri") if isinstance(disco.get("jwksUri"), str) and disco.get("jwksUri") else ""
        if not uri:
            if _advertises(disco):  # the spec: http-sig without jwksUri is non-conformant
                self._refuse(domain, "jwks", f"{domain} advertises http-sig without a jwksUri")
            uri = default_jwks_uri(self.sender.peers.get(domain).base_url)
        started = time.monotonic()
        try:
            resp = await self.sender.client.get(uri)
            doc = resp.json() if resp.status_code == 200 else None
            keys = public_keys(doc)
        except (httpx.HTTPError, ValueError) as e:
            self._refuse(domain, "jwks", f"the JWK Set of {domain} at {uri} cannot be read: {type(e).__name__}")
        log.debug("ocm jwks peer=%s uri=%s took=%.3fs", domain, uri, time.monotonic() - started)
        return keys


def _advertises(disco: Any) -> bool:
    caps = disco.get("capabilities") if isinstance(disco, dict) else None
    return isinstance(caps, list) and CAPABILITY in caps
