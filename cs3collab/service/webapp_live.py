"""The live notebook behind the webapp ``uri``: a browser without JupyterLab joins the room.

A plain Reva, CERNBox or Nextcloud receiver opens our webapp by POSTing the
exchanged OCM token (``access_token``) to ``/api/collaboration/ocm/<share
id>`` (:class:`~cs3collab.service.federation_handlers.OCMWebappHandler`).
The page it gets shows the notebook, escaped, and loads one small script of
ours (``/api/collaboration/ocm-view.js``; CSP ``script-src 'self'``, nothing
of the notebook ever runs). The script opens
``WS /api/collaboration/ocm/<share id>/live`` and sends the token as its
first frame (a browser WebSocket cannot send an Authorization header, and a
URL would leave it in logs). From then on, JSON text frames:

server → page
    ``{"type": "notebook", "name", "role", "writable", "acked", "cells":
    [{"id", "cell_type", "source", "outputs": [text...]}]}`` when the page
    joins, after each change of the room and after each edit of the page
    (coalesced, at most every 0.1 s); ``acked`` is the ``n`` of the page's
    last edit applied, so that the page does not take a notebook rendered
    before its edit arrived for the truth and overwrite its own typing;
    ``{"type": "error", "message"}`` before the socket closes (refused,
    revoked, or an edit refused; the close code is the room's).
page → server
    ``{"type": "auth", "token"}`` first; then, an editor only,
    ``{"type": "source", "cell", "source", "n"}``: the cell's whole new source
    (``n``: the page's count of its edits),
    applied to the room as the smallest text change (common prefix and
    suffix kept), so that others' concurrent typing elsewhere in the cell
    survives.

The connection is a room participant like any other (the same exchanged
token path as site B's server: ``Federation.login_exchanged``, the share's
role, the access re-checks and revocation of the room); it never speaks
y-sync: the room's binary frames only tell it that something changed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import tornado.web
import tornado.websocket
from cs3.storage.provider.v1beta1 import resources_pb2 as storage

from cs3collab.cs3.refs import format_resource_id
from cs3collab.service import documents, ids
from cs3collab.service.errors import RequestError, close_for, message_for
from cs3collab.service.federation import PATH_PREFIX, share_reference
from cs3collab.service.identity import Identity, resolve_access
from cs3collab.service.room import JournalUnavailable, Participant
from cs3collab.service.guard import UpdateRefused

log = logging.getLogger("cs3collab.service.federation")

SCRIPT = Path(__file__).with_name("static") / "ocm-view.js"
RENDER_DELAY = 0.1
"""Seconds a change waits for more before the page is sent the notebook again."""
MAX_FRAME = 4 * 1024 * 1024
"""Largest frame a page may send (a cell's whole source), in bytes."""


class ViewScriptHandler(tornado.web.RequestHandler):
    """``GET /api/collaboration/ocm-view.js``: the live view's one script."""

    _body: bytes | None = None

    def get(self) -> None:
        if ViewScriptHandler._body is None:
            ViewScriptHandler._body = SCRIPT.read_bytes()
        self.set_header("Content-Type", "text/javascript; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(ViewScriptHandler._body)


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def view_of(notebook: dict) -> list[dict]:
    """The cells as the page shows them: sources and the text of outputs."""
    cells = []
    for cell in notebook.get("cells") or []:
        outputs = []
        for output in cell.get("outputs") or []:
            text = output.get("text") or (output.get("data") or {}).get("text/plain") \
                or "\n".join(output.get("traceback") or [])
            if text:
                outputs.append(_text(text))
        cells.append({"id": str(cell.get("id", "")), "cell_type": str(cell.get("cell_type", "code")),
                      "source": _text(cell.get("source", "")), "outputs": outputs})
    return cells


def replace_source(document, cell_id: str, new: str) -> bool:
    """Change cell ``cell_id``'s source to ``new`` by the smallest edit; False when there is no such cell."""
    for cell in document.ycells:
        if cell.get("id") != cell_id:
            continue
        text = cell["source"]
        old = str(text)
        start = 0
        while start < min(len(old), len(new)) and old[start] == new[start]:
            start += 1
        end_old, end_new = len(old), len(new)
        while end_old > start and end_new > start and old[end_old - 1] == new[end_new - 1]:
            end_old -= 1
            end_new -= 1
        if end_old > start:
            del text[start:end_old]
        if end_new > start:
            text.insert(start, new[start:end_new])
        return True
    return False


class LiveViewHandler(tornado.websocket.WebSocketHandler):
    """``WS /api/collaboration/ocm/{share id}/live``: the page's room connection."""

    def initialize(self, context) -> None:
        self.context = context
        self.share_id = ""
        self.participant: Participant | None = None
        self.live = None
        self.name = ""
        self._admission = None
        self._render: asyncio.TimerHandle | None = None
        self._closed = False
        self._busy = False
        self._acked = 0  # the page's last edit applied (its "n")

    def check_origin(self, origin: str) -> bool:
        return True  # the token in the first frame authenticates, not a cookie

    def get_compression_options(self):
        return None

    def open(self, share_id: str) -> None:
        self.share_id = share_id

    async def on_message(self, message: str | bytes) -> None:
        if self._closed or self._busy:
            return
        try:
            if not isinstance(message, str) or len(message) > MAX_FRAME:
                raise RequestError(400, "the live view speaks JSON text frames")
            try:
                frame = json.loads(message)
            except ValueError:
                raise RequestError(400, "the frame is not JSON") from None
            if not isinstance(frame, dict):
                raise RequestError(400, "the frame is not a JSON object")
            if self.participant is None:
                self._busy = True
                try:
                    await self._join(frame)
                finally:
                    self._busy = False
            elif frame.get("type") == "source":
                await self._edit(frame)
        except Exception as exc:  # noqa: BLE001 - every refusal is told to the page, then closed
            self._refuse(exc)

    async def _join(self, frame: dict) -> None:
        token = frame.get("token")
        if frame.get("type") != "auth" or not isinstance(token, str) or not token:
            raise RequestError(401, "the first frame must carry the access token")
        federation = self.context.federation
        if federation is None:
            raise RequestError(401, "this service takes no OCM credentials")
        caller = await federation.login_exchanged(token, self.share_id, peer=self.request.remote_ip or "-")
        session = caller.session
        access = await resolve_access(session, share_reference(PATH_PREFIX + self.share_id, caller))
        info = access.info
        self.name = info.name or info.path.rstrip("/").rsplit("/", 1)[-1]
        if info.type != storage.RESOURCE_TYPE_FILE or not self.name.endswith(".ipynb"):
            raise RequestError(400, "only a notebook opens live here")
        identity = Identity.from_session(session)
        self._admission = self.context.limits.admit(identity, f"ocm:{self.share_id}")
        if self._closed:
            self.context.limits.release(self._admission)
            return
        file_id = ids.file_id_for(info.id)
        live = await self.context.registry.open(format_resource_id(info.id), documents.NOTEBOOK, file_id, info.id,
                                                session)
        self.live = live
        self.participant = Participant(self, identity, access.role, session)
        live.room.join(self.participant)
        log.info("ocm live view joined share=%s site=%s user=%s role=%s room=%s", self.share_id,
                 identity.idp, identity.label, access.role, live.key)
        if self._closed:
            self.on_close()
            return
        self._send_notebook()

    async def _edit(self, frame: dict) -> None:
        cell, source = frame.get("cell"), frame.get("source")
        if not isinstance(cell, str) or not isinstance(source, str):
            raise RequestError(400, "an edit names a cell and its source")
        live, participant = self.live, self.participant
        n = frame.get("n")
        if not participant.can_edit or live.read_only:
            self._acked_up_to(n)  # done with, unapplied: the page takes the room's text again
            self._tell(f"your role on this share does not allow editing ({live.read_only or participant.role})")
            self.send(b"")
            return
        found = []
        try:
            await live.edit(lambda document: found.append(replace_source(document, cell, source)),
                            author=participant)
        except (UpdateRefused, JournalUnavailable) as exc:
            log.warning("ocm live view edit refused share=%s user=%s site=%s error=%s", self.share_id,
                        participant.identity.label, participant.identity.idp, exc)
            raise
        self._acked_up_to(n)  # after the edit is in the room: a notebook rendered from now on has it
        if found and not found[0]:
            self._tell("that cell is no longer in the notebook")
            self._send_notebook()
        else:  # its own edit is not echoed by the room: the page learns it is in, with what others typed
            self.send(b"")

    def _acked_up_to(self, n: object) -> None:
        if isinstance(n, int) and not isinstance(n, bool):
            self._acked = max(self._acked, n)

    # -- what the page is told ---------------------------------------------------------

    def _tell(self, message: str) -> None:
        self._write({"type": "error", "message": message})

    def _write(self, payload: dict) -> None:
        if self._closed or self.ws_connection is None:
            return
        try:
            future = self.write_message(json.dumps(payload))
        except tornado.websocket.WebSocketClosedError:
            return
        future.add_done_callback(lambda f: f.cancelled() or f.exception())

    def _send_notebook(self) -> None:
        self._render = None
        live, participant = self.live, self.participant
        if live is None or participant is None or self._closed:
            return
        try:
            notebook = json.loads(live.serialized())
        except Exception as exc:  # noqa: BLE001 - an unsavable state is told, the view stays
            self._tell(message_for(exc))
            return
        self._write({"type": "notebook", "name": self.name, "role": participant.role,
                     "writable": participant.can_edit and not live.read_only, "acked": self._acked,
                     "cells": view_of(notebook)})

    def _refuse(self, exc: BaseException) -> None:
        code, reason = close_for(exc)
        log.info("ocm live view refused share=%s code=%s reason=%s", self.share_id, code, reason)
        self._tell(message_for(exc))
        self.close(code, reason)

    # -- room Connection ------------------------------------------------------------------

    def send(self, message: bytes) -> None:
        """A frame of the room: something changed; the page gets the notebook once things settle."""
        if self._render is None and not self._closed:
            self._render = asyncio.get_running_loop().call_later(RENDER_DELAY, self._send_notebook)

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        if not self._closed and self.participant is not None and code not in (None, 1000):
            self._tell(reason or "the notebook was closed")
        if not self._closed:
            super().close(code if code is not None else 1000, reason)

    def on_close(self) -> None:
        self._closed = True
        if self._render is not None:
            self._render.cancel()
            self._render = None
        if self._admission is not None:
            self.context.limits.release(self._admission)
            self._admission = None
        live, participant = self.live, self.participant
        if live is not None and participant is not None and participant in live.room.participants:
            live.room.leave(participant)
            self.context.registry.released(live.room.key)
            log.info("ocm live view left share=%s user=%s", self.share_id, participant.identity.label)
