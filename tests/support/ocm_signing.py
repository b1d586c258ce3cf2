"""Requests signed as an OCM 1.4 peer site signs them (for tests that play a peer).

A devstack site keeps its signing key in ``<data>/ocm-signing-key.pem``; a
test that posts to site A in site B's name signs with B's key, as B would.
"""

from __future__ import annotations

import json as jsonlib
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

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
