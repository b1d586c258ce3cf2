"""REST handlers of versions and tags: thin, over :mod:`cs3collab.service.versions`.

Routes (``{fileId}`` as in room names; keys and tag names URL-encoded):

* ``GET    /api/collaboration/versions/{fileId}?limit=&offset=`` → the listing
* ``GET    /api/collaboration/versions/{fileId}/{key}[?type=notebook|file]`` →
  the content: the notebook as nbformat JSON, a text file as text/plain
* ``POST   /api/collaboration/versions/{fileId}/tags`` ``{"name", "key"}`` → the tag
* ``DELETE /api/collaboration/versions/{fileId}/tags/{name}``
* ``POST   /api/collaboration/versions/{fileId}/{key}/restore`` → the restore's outcome

Authentication as everywhere (``Authorization: Bearer <CS3 token>``); errors
are answered by the one table in :mod:`cs3collab.service.errors`. The routes
are registered in :meth:`cs3collab.service.app.CollabService.make_app`, the
``tags`` ones before the ``{key}`` ones.
"""

from __future__ import annotations

from cs3collab.service.documents import TEXT_FILE
from cs3collab.service.handlers import APIHandler
from cs3collab.service.versions import VersionService, page_bounds


class _VersionsAPIHandler(APIHandler):
    @property
    def versions(self) -> VersionService:
        return VersionService(self.context.registry)


class VersionListHandler(_VersionsAPIHandler):
    """``GET .../versions/{fileId}``: versions newest first, the current content first."""

    async def get(self, file_id: str) -> None:
        try:
            session = await self.authenticate()
            limit, offset = page_bounds(self.get_query_argument("limit", None), self.get_query_argument("offset", None))
            self.write_json(await self.versions.list(session, file_id, limit, offset))
        except Exception as exc:  # noqa: BLE001 - every error is answered by the one table
            self.fail(exc)


class VersionContentHandler(_VersionsAPIHandler):
    """``GET .../versions/{fileId}/{key}``: one version's content."""

    async def get(self, file_id: str, key: str) -> None:
        try:
            session = await self.authenticate()
            kind, content = await self.versions.fetch(session, file_id, key, self.get_query_argument("type", ""))
            if kind is TEXT_FILE:
                self.set_header("Content-Type", "text/plain; charset=utf-8")
                self.finish(content.encode("utf-8"))
            else:
                self.write_json(content)
        except Exception as exc:  # noqa: BLE001
            self.fail(exc)


class TagsHandler(_VersionsAPIHandler):
    """``POST .../versions/{fileId}/tags`` with ``{"name", "key"}``."""

    async def post(self, file_id: str) -> None:
        try:
            session = await self.authenticate()
            body = self.json_body()
            self.write_json(await self.versions.tag(session, file_id, body.get("name"), body.get("key")))
        except Exception as exc:  # noqa: BLE001
            self.fail(exc)


class TagHandler(_VersionsAPIHandler):
    """``DELETE .../versions/{fileId}/tags/{name}``."""

    async def delete(self, file_id: str, name: str) -> None:
        try:
            session = await self.authenticate()
            await self.versions.untag(session, file_id, name)
            self.write_json({"deleted": name})
        except Exception as exc:  # noqa: BLE001
            self.fail(exc)


class RestoreHandler(_VersionsAPIHandler):
    """``POST .../versions/{fileId}/{key}/restore``: 200 once saved as a new
    version, 202 when restored live but not saved yet (the room keeps trying)."""

    async def post(self, file_id: str, key: str) -> None:
        try:
            session = await self.authenticate()
            result = await self.versions.restore(session, file_id, key)
            self.write_json(result.to_json(), 200 if result.saved else 202)
        except Exception as exc:  # noqa: BLE001
            self.fail(exc)

