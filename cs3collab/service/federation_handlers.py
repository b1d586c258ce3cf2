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
"""

from __future__ import annotations

import json

from cs3collab.cs3.refs import format_resource_id
from cs3collab.service.handlers import APIHandler
from cs3collab.service.identity import resolve_access
from cs3collab.service.federation import share_reference, PATH_PREFIX


class OCMContentHandler(APIHandler):
    """``GET /api/collaboration/ocm/{share id}/content``."""

    async def get(self, share_id: str) -> None:
        try:
            session = await self.authenticate()
            access = await resolve_access(session, share_reference(PATH_PREFIX + share_id, self.federated))
            info = access.info
            notebook = info.path.endswith(".ipynb") or info.name.endswith(".ipynb")
            live = self.context.registry.rooms.get(format_resource_id(info.id))
            if live is not None and live.ready.done() and not live.ready.exception():
                data = live.serialized()
            else:
                data = await session.files.download(info.id)
            text = data.decode("utf-8")
            self.write_json({
                "name": info.name or info.path.rsplit("/", 1)[-1],
                "type": "notebook" if notebook else "file",
                "role": access.role,
                "writable": access.can_edit,
                "etag": info.etag,
                "mtime": info.mtime.seconds,
                "content": json.loads(text) if notebook else text,
            })
        except Exception as exc:  # noqa: BLE001 - every error is answered by the one table
            self.fail(exc)
