"""The HTTP data server: the data gateway for downloads and uploads.

Endpoint: ``<http_url>/datagateway`` (the ``download_endpoint`` /
``upload_endpoint`` the gateway returns), with the transfer token in the
``X-Reva-Transfer`` header or, as Reva's datagateway also accepts, as the
last path segment (``<http_url>/datagateway/<token>``). Every request also
needs the caller's access token in ``x-access-token``, as Reva's data
provider sits behind the HTTP auth interceptor.

- GET/HEAD: the current content, or the version named in the token.
- PUT: the new content, streamed to ``uploads/`` and committed by the store;
  ``X-Lock-Id`` must match the lock if the file is locked;
  ``X-Disable-Versioning`` (any value) overwrites without keeping a version.

Bodies are streamed in chunks to and from disk: a file is never held in
memory. Status codes, in one table (``HTTP_STATUS``), follow
cs3org/reva internal/http/services/datagateway/datagateway.go (bad transfer
token: 403), internal/http/interceptors/auth/auth.go (bad access token: 401)
and pkg/rhttp/datatx/manager/simple/simple.go (404, 403; a lock conflict is
409 as in Reva's current simple.go; failed preconditions 412 as in the
decomposedfs-era simple.go); an upload over the size limit is 413.

A refused request leaves its connection usable, as Reva's Go server does
(net/http reads up to 256 KiB of an unread body after the handler answered,
else it answers with ``Connection: close``): a refusal found before the body
(a bad token, a body over the size limit) is answered only once a body of at
most ``DISCARD_LIMIT`` declared bytes has been read and thrown away; a larger
body, or one of unknown length (chunked), is refused at once with
``Connection: close``. Never a response followed by a silent close on a
keep-alive connection, which breaks a pooled client's next request.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import uuid

import tornado.web

from . import content, errors
from .store import Store
from .tokens import TokenManager

log = logging.getLogger("cs3collab.devstack.data")

CHUNK = 64 * 1024
DISCARD_LIMIT = 256 * 1024
"""Largest declared body of a refused request read and thrown away to keep its
connection alive (Go's net/http reads up to 256 KiB too); larger: ``Connection: close``."""
HTTP_STATUS: dict[type, int] = {
    errors.NotFound: 404,
    errors.PermissionDenied: 403,
    errors.Unauthenticated: 401,
    errors.Locked: 409,
    errors.Aborted: 409,
    errors.PreconditionFailed: 412,
    errors.AlreadyExists: 412,
    errors.TooLarge: 413,
    errors.InvalidArgument: 400,
    errors.Unimplemented: 501,
}


def http_status_for(exc: errors.DevstackError) -> int:
    return HTTP_STATUS.get(type(exc), 500)


@tornado.web.stream_request_body
class DataGatewayHandler(tornado.web.RequestHandler):
    """GET/HEAD/PUT on ``/datagateway[/<token>]``."""

    def initialize(self, store: Store, tokens: TokenManager) -> None:
        self.store = store
        self.tokens = tokens
        self._tmp = None
        self._file = None
        self._size = 0
        self._too_large = False
        self._ident = None
        self._target: dict = {}
        self._refusal: tornado.web.HTTPError | None = None
        self._close_connection = False

    async def prepare(self) -> None:
        try:
            await self._admit()
        except tornado.web.HTTPError as refusal:
            self._refuse(refusal)

    def _refuse(self, refusal: tornado.web.HTTPError) -> None:
        """Answer ``refusal`` without breaking the connection: after the body
        when it is small enough to discard, else at once with ``Connection: close``."""
        length = self.request.headers.get("Content-Length")
        chunked = "chunked" in self.request.headers.get("Transfer-Encoding", "").lower()
        if not chunked and (not length or (length.isdigit() and int(length) <= DISCARD_LIMIT)):
            self._refusal = refusal  # data_received discards the body; the method raises it
            return
        self._close_connection = True  # send_error clears headers: write_error sets it
        raise refusal

    async def _admit(self) -> None:
        token = self.request.headers.get("X-Reva-Transfer") or self.path_kwargs.get("token") or ""
        try:
            self._target = self.tokens.verify_transfer(token)
        except errors.Unauthenticated as e:
            raise tornado.web.HTTPError(403, reason="Forbidden", log_message=e.message) from None
        try:
            self._ident = self.tokens.verify(self.request.headers.get("x-access-token", ""))
        except errors.Unauthenticated as e:
            raise tornado.web.HTTPError(401, log_message=e.message) from None
        wanted = "upload" if self.request.method == "PUT" else "download"
        if self._target.get("op") != wanted:
            raise tornado.web.HTTPError(403, log_message=f"transfer token is not for {wanted}")
        if self.request.method == "PUT":
            limit = self.store.max_upload_size
            length = self.request.headers.get("Content-Length")
            if limit is not None and length and length.isdigit() and int(length) > limit:
                raise tornado.web.HTTPError(413, log_message=f"{length} bytes exceed the limit of {limit}")
            self._tmp = self.store.uploads_dir / f"{uuid.uuid4().hex}.part"
            self._file = await asyncio.to_thread(open, self._tmp, "wb")

    async def data_received(self, chunk: bytes) -> None:
        if self._file is None:
            return
        self._size += len(chunk)
        limit = self.store.max_upload_size
        if limit is not None and self._size > limit:
            self._too_large = True
            await asyncio.to_thread(self._discard)
            return
        await asyncio.to_thread(self._file.write, chunk)

    def _discard(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)

    async def put(self, token: str | None = None) -> None:
        if self._refusal is not None:
            raise self._refusal
        if self._too_large:
            raise tornado.web.HTTPError(413, log_message="upload exceeds the size limit")
        await asyncio.to_thread(self._file.close)
        self._file = None
        try:
            info = await self.store.run(
                content.finish_upload, self._ident, self._target, self._tmp, self._size,
                self.request.headers.get("X-Lock-Id", ""), bool(self.request.headers.get("X-Disable-Versioning")))
        except errors.DevstackError as e:
            raise tornado.web.HTTPError(http_status_for(e), log_message=e.message) from None
        rid = info.id
        self.set_header("ETag", info.etag)
        self.set_header("OC-ETag", info.etag)
        self.set_header("OC-FileId", f"{rid.storage_id}${rid.space_id}!{rid.opaque_id}")
        self.set_header("Last-Modified", email.utils.formatdate(info.mtime.seconds, usegmt=True))
        self.set_status(200)

    async def _open(self):
        if self._refusal is not None:
            raise self._refusal
        try:
            return await self.store.run(content.open_download, self._ident, self._target)
        except errors.DevstackError as e:
            raise tornado.web.HTTPError(http_status_for(e), log_message=e.message) from None

    def _set_meta_headers(self, meta: dict) -> None:
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Length", str(meta["size"]))
        self.set_header("ETag", meta["etag"])
        self.set_header("OC-ETag", meta["etag"])
        self.set_header("OC-FileId", meta["file_id"])
        self.set_header("Last-Modified", email.utils.formatdate(meta["mtime_ns"] / 1e9, usegmt=True))

    async def get(self, token: str | None = None) -> None:
        fobj, meta = await self._open()
        try:
            self._set_meta_headers(meta)
            while True:
                chunk = await asyncio.to_thread(fobj.read, CHUNK)
                if not chunk:
                    break
                self.write(chunk)
                await self.flush()
        finally:
            await asyncio.to_thread(fobj.close)

    async def head(self, token: str | None = None) -> None:
        fobj, meta = await self._open()
        await asyncio.to_thread(fobj.close)
        self._set_meta_headers(meta)

    def write_error(self, status_code: int, **kwargs) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        if self._close_connection:
            self.set_header("Connection", "close")
        self.finish(f"{status_code} {self._reason}\n")

    def on_connection_close(self) -> None:
        self._discard()

    def on_finish(self) -> None:
        self._discard()
        user = self._ident.user.username if self._ident else "-"
        log.info("http=%s user=%s node=%s version=%s status=%d", self.request.method, user,
                 self._target.get("node") or self._target.get("name") or "-",
                 self._target.get("version_key") or "-", self.get_status())


def make_app(store: Store, tokens: TokenManager, extra_routes: list | None = None) -> tornado.web.Application:
    """The data server's tornado application; ``extra_routes`` lets
    extensions (OCM) add handlers."""
    kwargs = {"store": store, "tokens": tokens}
    routes = [
        (r"/datagateway/?", DataGatewayHandler, kwargs),
        (r"/datagateway/(?P<token>[^/]+)", DataGatewayHandler, kwargs),
        *(extra_routes or []),
    ]
    return tornado.web.Application(routes, log_function=lambda handler: None)
