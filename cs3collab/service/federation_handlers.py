"""REST for participants of other sites: the content of an OCM share.

``GET /api/collaboration/ocm/{share id}/content[?path=<relative>][&content=0]``
with the share's credentials (``Authorization: Bearer <exchanged token>``,
or ``OCM <share id>:<secret>`` for OCM 1.1) answers::

    {"name", "path", "type": "notebook"|"file"|"directory",
     "role": "editor"|"viewer", "writable", "etag", "mtime", "size",
     "format": "json"|"text"|"base64"|null, "content"}

``path`` names something inside a shared folder, relative to it (empty: the
shared resource itself); ``..``, ``.``, empty segments and absolute paths
are refused with 403 (:func:`~cs3collab.service.federation.relative_path`),
a path that does not exist in the share is 404. For a folder ``content`` is
its entries (``name``, ``type``, ``writable``, ``etag``, ``mtime``,
``size``), sorted by name. For a file it is the live room's document when a
room is open (so it includes what is acknowledged but not yet saved), else
the file as CS3 holds it: a notebook as nbformat JSON, any other file as
UTF-8 text, or base64 when it is not UTF-8. ``content=0`` leaves it out.

``PUT`` on the same URL with ``{"format", "content"}`` writes a file inside
the share through the participant's session, so the gateway applies the
share's role (a viewer gets 403). A file open in a live room is refused
(409): its edits go through the room. The answer is the model without
content. The recipient's Jupyter server uses these to answer contents
requests for the share (:mod:`cs3collab.jupyter.ocm_remote`); live editing
goes through the room as for everyone. Errors through the one table.

This is our own REST rather than the share's OCM WebDAV URI. It follows
what Reva does there (cs3org/reva aa6e45a,
``internal/http/services/owncloud/ocdav/dav.go``, the ``"ocm"`` case: the
bearer token is the exchanged token, the URL path is ``/<share id>/<path
inside the share>``; ``pkg/auth/scope/ocmshare.go``: the token reaches only
the shared resource and what is below it, and writes need the editor role),
but answers with Jupyter models and the live room's content instead of
PROPFIND XML and the last saved bytes.

``POST /api/collaboration/ocm/{share id}`` (the share's webapp ``uri``) with
the form field ``access_token`` (a token of the OCM code flow) answers an
HTML view of the notebook: what a plain Reva, CERNBox or Nextcloud receiver
shows when its user opens our webapp in a browser. The notebook is rendered
escaped on the server; the page's one script (``/api/collaboration/ocm-view.js``,
CSP ``script-src 'self'``) then joins the room live through
:mod:`cs3collab.service.webapp_live`: an editor edits the cells' sources, a
viewer follows live.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
from html import escape

from cs3.storage.provider.v1beta1 import resources_pb2 as storage

from cs3collab.cs3.refs import format_resource_id
from cs3collab.cs3 import NotFound, PermissionDenied, Unauthenticated
from cs3collab.cs3.roles import can_write
from cs3collab.service.errors import RequestError, message_for, refusal_for
from cs3collab.service.handlers import APIHandler
from cs3collab.service.identity import resolve_access
from cs3collab.service.federation import relative_path, share_reference, PATH_PREFIX

log = logging.getLogger("cs3collab.service.federation")


def _name(info) -> str:
    return info.name or info.path.rstrip("/").rsplit("/", 1)[-1]


def _kind(info) -> str:
    if info.type == storage.RESOURCE_TYPE_CONTAINER:
        return "directory"
    return "notebook" if _name(info).endswith(".ipynb") else "file"


@contextlib.contextmanager
def _in_share(share_id: str, rel: str, doing: str):
    """Say a refusal of the gateway in the participant's words: what in the
    share was not found or not allowed (not the resource id and CS3 call)."""
    where = f"ocm:{share_id}/{rel}" if rel else f"ocm:{share_id}"
    what = repr(rel) if rel else "the shared item"
    try:
        yield
    except NotFound as exc:
        log.info("ocm content not found share=%s path=%s cs3=%s", share_id, rel or "-", exc)
        raise NotFound(f"{what} is not in this share", operation=doing, target=where) from None
    except PermissionDenied as exc:
        log.info("ocm content refused share=%s path=%s cs3=%s", share_id, rel or "-", exc)
        raise PermissionDenied(f"your role on this share does not allow you to {doing} {what}",
                               operation=doing, target=where) from None


async def share_content(handler: APIHandler, session, share_id: str, rel: str = "", *, content: bool = True) -> dict:
    """The share's current content (or that of ``rel`` inside a shared
    folder) as the content route answers it; ``content=False`` leaves the
    content out (a folder's entries, a file's bytes)."""
    rel = relative_path(rel, share_id)
    ref = share_reference(PATH_PREFIX + share_id + (f"/{rel}" if rel else ""), handler.federated)
    with _in_share(share_id, rel, "read"):
        return await _content(handler, session, share_id, rel, ref, content)


async def _content(handler: APIHandler, session, share_id: str, rel: str, ref, content: bool) -> dict:
    access = await resolve_access(session, ref)
    info = access.info
    kind = _kind(info)
    model = {
        "name": _name(info),
        "path": rel,
        "type": kind,
        "role": access.role,
        "writable": access.can_edit,
        "etag": info.etag,
        "mtime": info.mtime.seconds,
        "size": None if kind == "directory" else info.size,
        "format": None,
        "content": None,
    }
    if not content:
        return model
    if kind == "directory":
        entries = []
        for child in await session.files.list(info.id):
            child_kind = _kind(child)
            entries.append({"name": _name(child), "type": child_kind, "writable": can_write(child.permission_set),
                            "etag": child.etag, "mtime": child.mtime.seconds,
                            "size": None if child_kind == "directory" else child.size})
        model["content"], model["format"] = sorted(entries, key=lambda e: e["name"]), "json"
        return model
    live = handler.context.registry.rooms.get(format_resource_id(info.id))
    if live is not None and live.ready.done() and not live.ready.exception():
        data = live.serialized()  # the live document holds only durable changes
    else:
        data = await session.files.download(info.id)
    if kind == "notebook":
        model["content"], model["format"] = json.loads(data.decode("utf-8")), "json"
    else:
        try:
            model["content"], model["format"] = data.decode("utf-8"), "text"
        except UnicodeDecodeError:
            model["content"], model["format"] = base64.b64encode(data).decode("ascii"), "base64"
    return model


def _body_bytes(body: dict) -> bytes:
    """The bytes a content ``PUT`` body carries (``format`` json, text or base64)."""
    fmt, value = body.get("format"), body.get("content")
    if fmt == "json" and isinstance(value, dict):
        return (json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")  # as nbformat
    if fmt == "text" and isinstance(value, str):
        return value.encode("utf-8")
    if fmt == "base64" and isinstance(value, str):
        try:
            return base64.b64decode(value.encode("ascii"), validate=True)
        except (ValueError, UnicodeError):
            raise RequestError(400, "content is not valid base64") from None
    raise RequestError(400, "the body must be {format: json|text|base64, content}")


class OCMContentHandler(APIHandler):
    """``GET`` / ``PUT /api/collaboration/ocm/{share id}/content[?path=<relative path>]``."""

    def ocm_share_hint(self) -> str:
        return self.path_args[0] if self.path_args else ""

    async def get(self, share_id: str) -> None:
        try:
            session = await self.authenticate()
            rel = self.get_query_argument("path", "")
            wanted = self.get_query_argument("content", "1") not in ("0", "false")
            self.write_json(await share_content(self, session, share_id, rel, content=wanted))
        except Exception as exc:  # noqa: BLE001 - every error is answered by the one table
            self.fail(exc)

    async def put(self, share_id: str) -> None:
        """Write a file inside the share as the share's role allows (the
        gateway refuses a viewer's upload). A file open in a live room here is
        refused (409): its edits go through the room, which saves it."""
        try:
            session = await self.authenticate()
            rel = relative_path(self.get_query_argument("path", ""), share_id)
            ref = share_reference(PATH_PREFIX + share_id + (f"/{rel}" if rel else ""), self.federated)
            data = _body_bytes(self.json_body())
            with _in_share(share_id, rel, "write"):
                try:
                    info = await session.files.stat(ref)
                except NotFound:
                    info = None
                if info is not None:
                    if info.type == storage.RESOURCE_TYPE_CONTAINER:
                        raise RequestError(400, f"{rel or _name(info)!r} is a folder, not a file")
                    if format_resource_id(info.id) in self.context.registry.rooms:
                        raise RequestError(409, f"{_name(info)!r} is open live: its edits are saved by its room")
                await session.files.upload(ref, data)
            log.info("ocm content saved share=%s site=%s path=%s bytes=%d", share_id,
                     self.federated.site if self.federated else "-", rel or "-", len(data))
            self.write_json(await share_content(self, session, share_id, rel, content=False))
        except Exception as exc:  # noqa: BLE001 - every error is answered by the one table
            self.fail(exc)


class OCMWebappHandler(APIHandler):
    """``POST /api/collaboration/ocm/{share id}`` (the share's webapp ``uri``).

    OCM 1.2+ webapp with ``must-exchange-token``: the receiving site's user
    opens the ``uri`` in a browser, which posts the exchanged token as the
    form field ``access_token`` (a ``GET`` with ``Authorization: Bearer`` is
    taken too). The answer is an HTML view of the notebook (cells' sources
    and text outputs, the caller's role), escaped; for a notebook it also
    loads our live-view script, which joins the room with the same token
    (webapp_live.py). Nothing of the notebook's content runs.
    """

    def check_xsrf_cookie(self) -> None:  # a cross-site form POST is the protocol here
        return None

    async def post(self, share_id: str) -> None:
        await self._view(share_id, self.get_body_argument("access_token", ""))

    async def get(self, share_id: str) -> None:
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        await self._view(share_id, token.strip() if scheme.lower() == "bearer" else "")

    async def _view(self, share_id: str, token: str) -> None:
        self.set_header("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; "
                        "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Cache-Control", "no-store")
        try:
            if not token:
                raise Unauthenticated("no access_token: exchange the share's secret at the sharing site's "
                                      "tokenEndPoint first", operation="authenticate", target=f"ocm:{share_id}")
            if self.context.federation is None:
                raise Unauthenticated("this service takes no OCM credentials", operation="authenticate")
            caller = await self.context.federation.login_exchanged(token, share_id,
                                                                   peer=self.request.remote_ip or "-")
            self.federated = caller
            model = await share_content(self, caller.session, share_id)
        except Exception as exc:  # noqa: BLE001 - every error is answered by the one table
            refusal = refusal_for(exc)
            self.set_status(refusal.http_status)
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.finish(_page("Cannot open this notebook", f"<p>{escape(message_for(exc))}</p>"))
            return
        self.set_header("Content-Type", "text/html; charset=utf-8")
        body = _render(model)
        if model["type"] == "notebook":
            body = (f"<main id='notebook' data-share='{escape(share_id)}' data-token='{escape(token)}'>"
                    "<p id='status' role='status'>Showing the notebook as saved; joining it live…</p>"
                    f"<div id='static'>{body}</div><div id='cells'></div></main>"
                    "<script src='/api/collaboration/ocm-view.js'></script>")
        self.finish(_page(model["name"], body))


def _page(title: str, body: str) -> str:
    return ("<!doctype html><html><head><meta charset='utf-8'><title>" + escape(title) + "</title>"
            "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}pre{background:#f6f6f6;"
            "padding:.5em;overflow:auto}.out{background:#fff;border-left:3px solid #ccc}"
            "textarea.source{width:100%;font-family:monospace;background:#f6f6f6;border:1px solid #ddd}"
            ".cell{margin:.5em 0}</style></head><body>"
            f"<h1>{escape(title)}</h1>{body}</body></html>")


def _render(model: dict) -> str:
    """A notebook (or text file) as escaped HTML: no markup of the file is trusted."""
    role = "can edit" if model["writable"] else "can view"
    parts = [f"<p class='role'>You {role} this notebook (role: {escape(model['role'])}).</p>"]
    content = model["content"]
    if model["type"] == "directory" and isinstance(content, list):
        return "".join(parts) + "<ul>" + "".join(f"<li>{escape(e['name'])}</li>" for e in content) + "</ul>"
    if model["type"] != "notebook" or not isinstance(content, dict):
        return "".join(parts) + f"<pre>{escape(str(content))}</pre>"
    for cell in content.get("cells") or []:
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        parts.append(f"<pre class='{escape(str(cell.get('cell_type', 'code')))}'>{escape(source)}</pre>")
        for output in cell.get("outputs") or []:
            text = output.get("text") or (output.get("data") or {}).get("text/plain") or ""
            text = "".join(text) if isinstance(text, list) else str(text)
            if text:
                parts.append(f"<pre class='out'>{escape(text)}</pre>")
    return "".join(parts)
