"""``/files/``: the raw bytes of a CS3 file, streamed.

The stock files handler loads a whole file through the contents manager's
``get``; this one streams it from CS3 chunk by chunk (``open_file`` of
:class:`~cs3collab.jupyter.contents.CS3ContentsManager`, whose
``files_handler_class`` it is).
"""

from __future__ import annotations

import mimetypes

from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import JupyterHandler
from tornado import web
from tornado.web import HTTPError

__all__ = ["CS3FilesHandler"]


class CS3FilesHandler(JupyterHandler):
    """``GET /files/{path}``: the raw bytes of a CS3 file, streamed chunk by chunk
    (the stock handler would load the whole file through ``get``)."""

    auth_resource = "contents"

    @property
    def content_security_policy(self):
        return super().content_security_policy + "; sandbox allow-scripts"

    @web.authenticated
    @authorized
    async def head(self, path: str) -> None:
        await self._serve(path, include_body=False)

    @web.authenticated
    @authorized
    async def get(self, path: str) -> None:
        await self._serve(path, include_body=True)

    async def _serve(self, path: str, include_body: bool) -> None:
        self.check_xsrf_cookie()
        cm = self.contents_manager  # a CS3ContentsManager: this handler is its files_handler_class
        path = path.strip("/")
        if not cm.allow_hidden and await ensure_async(cm.is_hidden(path)):
            raise HTTPError(404)
        name = path.rsplit("/", 1)[-1]
        async with cm.open_file(path) as (model, chunks):
            if self.get_argument("download", None):
                self.set_attachment_header(name)
            self.set_header("Content-Type", _content_type(name))
            self.set_header("Content-Length", str(model["size"]))
            self.set_header("Last-Modified", model["last_modified"])
            if include_body:
                async for chunk in chunks:
                    self.write(chunk)
                    await self.flush()
        await self.finish()


def _content_type(name: str) -> str:
    if name.lower().endswith(".ipynb"):
        return "application/x-ipynb+json"
    mime, encoding = mimetypes.guess_type(name)
    if encoding == "gzip":
        return "application/gzip"
    if encoding is not None or mime is None:
        return "application/octet-stream"
    return "text/plain; charset=UTF-8" if mime == "text/plain" else mime
