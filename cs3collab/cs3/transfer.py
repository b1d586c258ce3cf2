"""HTTP data transfers: the second half of CS3's two-step download and upload.

InitiateFileDownload/InitiateFileUpload answer with protocols, each with an
endpoint and a transfer token; the client then GETs or PUTs the bytes there
with the access token (``x-access-token``) and the transfer token
(``X-Reva-Transfer``), as Reva's datagateway expects. Content is streamed in
both directions: nothing here holds a whole file in memory unless the caller
asks for bytes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import httpx

from cs3collab.cs3.errors import InvalidArgument, Unavailable, error_from_http

TRANSFER_HEADER = "X-Reva-Transfer"
LOCK_HEADER = "X-Lock-Id"
DISABLE_VERSIONING_HEADER = "X-Disable-Versioning"
PREFERRED_PROTOCOLS = ("simple", "spaces")
CHUNK_SIZE = 1024 * 1024


def pick_protocol(protocols: Any, operation: str, target: str) -> Any:
    """Choose the simple (single request) protocol among those offered."""
    by_name = {p.protocol: p for p in protocols}
    for name in PREFERRED_PROTOCOLS:
        if name in by_name:
            return by_name[name]
    offered = ", ".join(by_name) or "none"
    raise InvalidArgument(
        f"the gateway offered no usable transfer protocol (offered: {offered})",
        operation=operation,
        target=target,
    )


@contextlib.asynccontextmanager
async def stream_get(
    http: httpx.AsyncClient,
    endpoint: str,
    headers: dict[str, str],
    *,
    operation: str,
    target: str,
) -> AsyncIterator[AsyncIterator[bytes]]:
    """GET ``endpoint`` and yield an iterator over the body's chunks."""
    try:
        async with http.stream("GET", endpoint, headers=headers) as response:
            if response.status_code != 200:
                body = (await response.aread()).decode("utf-8", errors="replace")
                raise error_from_http(response.status_code, body, operation, target)
            yield response.aiter_bytes(CHUNK_SIZE)
    except httpx.TransportError as exc:
        raise Unavailable(
            f"data server {_origin(endpoint)} failed: {exc!r}", operation=operation, target=target
        ) from None


async def put(
    http: httpx.AsyncClient,
    endpoint: str,
    headers: dict[str, str],
    content: bytes | AsyncIterable[bytes],
    *,
    operation: str,
    target: str,
) -> httpx.Response:
    """PUT ``content`` (bytes or an async stream of chunks) to ``endpoint``."""
    try:
        response = await http.put(endpoint, headers=headers, content=content)
    except httpx.TransportError as exc:
        raise Unavailable(
            f"data server {_origin(endpoint)} failed: {exc!r}", operation=operation, target=target
        ) from None
    if response.status_code not in (200, 201, 204):
        raise error_from_http(response.status_code, response.text, operation, target)
    return response


def _origin(endpoint: str) -> str:
    url = httpx.URL(endpoint)
    return f"{url.scheme}://{url.host}:{url.port}" if url.port else f"{url.scheme}://{url.host}"
