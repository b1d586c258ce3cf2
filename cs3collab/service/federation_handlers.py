"""REST for participants of other sites: the current content of an OCM share.

``GET /api/collaboration/ocm/{share id}/content`` with
``Authorization: OCM <share id>:<secret>`` answers::

    {"name", "type": "notebook"|"file", "role": "editor"|"viewer",
     "writable", "etag", "mtime", "content"}

``content`` is the live room's document when a room is open (so it includes
what is acknowledged but not yet saved), else the file as CS3 holds it: a
notebook as nbformat JSON, any other file as text. The recipient's Jupyter
server uses it to answer a contents request for the share; live editing goes
through the room as for everyone. Errors through the one table.

``POST /api/collaboration/ocm/{share id}`` (the share's webapp ``uri``) with
the form field ``access_token`` (a token of the OCM code flow) answers a
read-only HTML view of the notebook: what a plain Reva, CERNBox or
Nextcloud receiver shows when its user opens our webapp in a browser.
"""

from __future__ import annotations

import json
from html import escape

from cs3collab.cs3.refs import format_resource_id
from cs3collab.cs3 import Unauthenticated
from cs3collab.service.errors import message_for, refusal_for
from cs3collab.service.handlers import APIHandler
from cs3collab.service.identity import resolve_access
from cs3collab.service.federation import share_reference, PATH_PREFIX


async def share_content(handler: APIHandler, session, share_id: str) -> dict:
    """The share's current content as the content route answers it."""
    access = await resolve_access(session, share_reference(PATH_PREFIX + share_id, handler.federated))
    info = access.info
    notebook = info.path.endswith(".ipynb") or info.name.endswith(".ipynb")
    live = handler.context.registry.rooms.get(format_resource_id(info.id))
    if live is not None and live.ready.done() and not live.ready.exception():
        data = live.serialized()  # the live document holds only durable changes
    else:
        data = await session.files.download(info.id)
    text = data.decode("utf-8")
    return {
        "name": info.name or info.path.rsplit("/", 1)[-1],
        "type": "notebook" if notebook else "file",
        "role": access.role,
        "writable": access.can_edit,
        "etag": info.etag,
        "mtime": info.mtime.seconds,
        "content": json.loads(text) if notebook else text,
    }


class OCMContentHandler(APIHandler):
    """``GET /api/collaboration/ocm/{share id}/content``."""

    def ocm_share_hint(self) -> str:
        return self.path_args[0] if self.path_args else ""

    async def get(self, share_id: str) -> None:
        try:
            session = await self.authenticate()
            self.write_json(await share_content(self, session, share_id))
        except Exception as exc:  # noqa: BLE001 - every error is answered by the one table
            self.fail(exc)


class OCMWebappHandler(APIHandler):
    """``POST /api/collaboration/ocm/{share id}`` (the share's webapp ``uri``).

    OCM 1.2+ webapp with ``must-exchange-token``: the receiving site's user
    opens the ``uri`` in a browser, which posts the exchanged token as the
    form field ``access_token`` (a ``GET`` with ``Authorization: Bearer`` is
    taken too). The answer is a read-only HTML view of the notebook (cells'
    sources and text outputs, the caller's role); no script runs in it. Live
    editing goes through a Jupyter server joining the room.
    """

    def check_xsrf_cookie(self) -> None:  # a cross-site form POST is the protocol here
        return None

    async def post(self, share_id: str) -> None:
        await self._view(share_id, self.get_body_argument("access_token", ""))

    async def get(self, share_id: str) -> None:
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        await self._view(share_id, token.strip() if scheme.lower() == "bearer" else "")

    async def _view(self, share_id: str, token: str) -> None:
        self.set_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
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
        self.finish(_page(model["name"], _render(model)))


def _page(title: str, body: str) -> str:
    return ("<!doctype html><html><head><meta charset='utf-8'><title>" + escape(title) + "</title>"
            "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}pre{background:#f6f6f6;"
            "padding:.5em;overflow:auto}.out{background:#fff;border-left:3px solid #ccc}</style></head><body>"
            f"<h1>{escape(title)}</h1>{body}</body></html>")


def _render(model: dict) -> str:
    """A notebook (or text file) as escaped HTML: no markup of the file is trusted."""
    role = "can edit" if model["writable"] else "can view"
    parts = [f"<p class='role'>You {role} this notebook (role: {escape(model['role'])}). "
             "Open it from your Jupyter to edit it live.</p>"]
    content = model["content"]
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
