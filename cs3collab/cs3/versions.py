"""File versions: every overwrite of a CS3 file keeps the previous content."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cs3.storage.provider.v1beta1 import provider_api_pb2 as provider
from cs3.storage.provider.v1beta1 import resources_pb2 as storage

from cs3collab.cs3.refs import RefLike, describe, to_reference

if TYPE_CHECKING:
    from cs3collab.cs3.client import Session


class VersionsAPI:
    """Versions of files (``session.versions``)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    async def list(self, ref: RefLike) -> list[storage.FileVersion]:
        """All versions of a file (key, size, mtime, etag), newest first."""
        versions: list[storage.FileVersion] = []
        page_token = ""
        while True:
            request = provider.ListFileVersionsRequest(ref=to_reference(ref), page_token=page_token)
            reply = await self._session.call("ListFileVersions", request, target=describe(ref))
            versions.extend(reply.versions)
            page_token = reply.next_page_token
            if not page_token:
                break
        versions.sort(key=lambda v: (v.mtime, v.key), reverse=True)
        return versions

    async def download(self, ref: RefLike, key: str) -> bytes:
        """The content of one version (InitiateFileDownload with opaque ``version_key``)."""
        return await self._session.files.download(ref, version_key=key)

    async def restore(self, ref: RefLike, key: str, *, lock_id: str = "") -> None:
        """Make a version the current content; the current content becomes a version."""
        request = provider.RestoreFileVersionRequest(ref=to_reference(ref), key=key, lock_id=lock_id)
        await self._session.call(
            "RestoreFileVersion", request, target=f"{describe(ref)} version {key}", idempotent=False
        )
