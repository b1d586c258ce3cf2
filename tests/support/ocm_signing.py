"""Requests signed as an OCM 1.4 peer site signs them (for tests that play a peer).

A devstack site keeps its signing key in ``<data>/ocm-signing-key.pem``; a
test that posts to site A in site B's name signs with B's key, as B would.
"""

from __future__ import annotations

import json as jsonlib
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from cs3collab.cs3.httpsig import SigningKey


def site_key(data_dir: Path) -> SigningKey:
    return SigningKey.from_pem((Path(data_dir) / "ocm-signing-key.pem").read_bytes())


def signed(key: SigningKey, url: str, *, json: Any = None, data: dict[str, str] | None = None) -> dict[str, Any]:
    """``httpx`` keyword arguments (``content``, ``headers``) of a POST to
    ``url`` with ``json`` or form ``data``, signed with ``key``."""
    if data is not None:
        body, ctype = urlencode(data).encode(), "application/x-www-form-urlencoded"
    else:
        body, ctype = jsonlib.dumps(json).encode(), "application/json"
    return {"content": body, "headers": key.sign("POST", url, {"Content-Type": ctype}, body)}


async def exchange(http_url: str, code: str, *, client_id: str = "cesnet.test", key: SigningKey | None = None,
                   grant: str = "authorization_code") -> httpx.Response:
    """The receiving site's side of the OCM code flow: ``POST {http_url}/ocm/token``
    for ``code`` as site ``client_id``, signed with ``key`` when given (a site
    that advertises ``http-sig`` signs its exchanges; the devstack refuses its
    unsigned ones)."""
    url = f"{http_url}/ocm/token"
    form = {"grant_type": grant, "code": code, "client_id": client_id}
    async with httpx.AsyncClient(timeout=30) as http:
        if key is None:
            return await http.post(url, data=form)
        return await http.post(url, **signed(key, url, data=form))
