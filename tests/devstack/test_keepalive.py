"""A refused transfer leaves its connection usable, as Reva's data server does.

What a client notices: after a 401, 403 or 413 from the data server, its
next request on the same pooled connection works. The server either reads
(and throws away) the refused request's body and keeps the connection, or
says ``Connection: close`` and closes it; it never answers and then drops
a connection the client believes alive.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlsplit

import anyio
import httpx

from .conftest import OK, connect, path_ref, run_devstack

LIMIT = 1024


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response (status, lower-cased headers, body) from a raw connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    assert "content-length" in headers, headers
    body = await reader.readexactly(int(headers["content-length"]))
    return int(status_line.split()[1]), headers, body


@contextlib.asynccontextmanager
async def raw_connection(http_url: str):
    url = urlsplit(http_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def request(method: str, target: str, headers: dict[str, str], body: bytes = b"", chunked: bool = False) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: devstack", *(f"{k}: {v}" for k, v in headers.items())]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        payload = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:512], body[512:]) if part) + b"0\r\n\r\n"
    else:
        lines.append(f"Content-Length: {len(body)}")
        payload = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def test_refused_requests_keep_or_close_the_connection_cleanly(tmp_path):
    async with run_devstack(tmp_path / "site", "--max-upload-size", str(LIMIT)) as stack, connect(stack) as c:
        token = await c.login("einstein")
        ref = path_ref("/home/einstein/kept.txt")
        assert (await c.upload(token, ref, b"kept")).status_code == 200
        down = await c.initiate_download(token, ref)
        up = await c.initiate_upload(token, ref)
        assert down.status.code == OK and up.status.code == OK
        get_token = next(p for p in down.protocols if p.protocol == "simple").token
        put_token = next(p for p in up.protocols if p.protocol == "simple").token
        target = urlsplit(stack.http).path + "/datagateway"
        good_get = request("GET", target, {"x-access-token": token, "X-Reva-Transfer": get_token})
        refused = [
            (403, request("GET", target, {"x-access-token": token, "X-Reva-Transfer": "forged"})),
            (401, request("GET", target, {"X-Reva-Transfer": get_token})),
            (403, request("PUT", target, {"x-access-token": token, "X-Reva-Transfer": get_token}, b"u" * 700)),
            (401, request("PUT", target, {"x-access-token": "forged", "X-Reva-Transfer": put_token}, b"u" * 700,
                          chunked=True)),
            (413, request("PUT", target, {"x-access-token": token, "X-Reva-Transfer": put_token}, b"b" * 2 * LIMIT)),
            (413, request("PUT", target, {"x-access-token": token, "X-Reva-Transfer": put_token},
                          b"h" * 300 * 1024)),
        ]
        for status, refused_request in refused:
            async with raw_connection(stack.http) as (reader, writer):
                with anyio.fail_after(30):
                    writer.write(refused_request)
                    got, headers, _ = await read_response(reader)
                    assert got == status, refused_request[:60]
                    if headers.get("connection", "").lower() == "close":
                        with contextlib.suppress(ConnectionResetError):  # the unread body makes it a reset
                            assert await reader.read() == b""  # said so, and closed
                        continue
                    writer.write(good_get)  # the same connection serves the next request
                    got, _, body = await read_response(reader)
                    assert (got, body) == (200, b"kept"), refused_request[:60]

        # one pooled client (one connection at most): refused and accepted requests in a row
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(timeout=30, limits=limits) as pooled:
            endpoint = stack.http + "/datagateway"
            for _ in range(10):
                res = await pooled.get(endpoint, headers={"x-access-token": token, "X-Reva-Transfer": "forged"})
                assert res.status_code == 403
                res = await pooled.put(endpoint, content=b"x" * 2 * LIMIT,
                                       headers={"x-access-token": token, "X-Reva-Transfer": put_token})
                assert res.status_code == 413
                res = await pooled.put(endpoint, content=b"x", headers={"X-Reva-Transfer": put_token})
                assert res.status_code == 401
                res = await pooled.get(endpoint, headers={"x-access-token": token, "X-Reva-Transfer": get_token})
                assert (res.status_code, res.content) == (200, b"kept")
        assert (tmp_path / "site" / "uploads").exists()
        assert list((tmp_path / "site" / "uploads").iterdir()) == []  # refused uploads leave nothing behind
