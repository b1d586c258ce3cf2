"""Namespace and content operations: Stat, ListContainer, CreateContainer,
Delete, Move, and downloads/uploads through the data servers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from cs3.gateway.v1beta1 import gateway_api_pb2 as gw
from cs3.storage.provider.v1beta1 import provider_api_pb2 as provider
from cs3.storage.provider.v1beta1 import resources_pb2 as storage
from cs3.types.v1beta1 import types_pb2 as types

from cs3collab.cs3 import transfer
from cs3collab.cs3.client import TOKEN_HEADER
from cs3collab.cs3.errors import NotFound
from cs3collab.cs3.refs import RefLike, describe, to_reference

if TYPE_CHECKING:
    from cs3collab.cs3.client import Session


def plain_opaque(**entries: str) -> types.Opaque:
    """An Opaque map of plain-text entries, as Reva reads e.g. ``version_key``."""
    opaque = types.Opaque()
    for key, value in entries.items():
        opaque.map[key].CopyFrom(types.OpaqueEntry(decoder="plain", value=value.encode()))
    return opaque


class FilesAPI:
    """Files and folders of one session (``session.files``)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    async def stat(self, ref: RefLike, metadata_keys: Iterable[str] = ()) -> storage.ResourceInfo:
        """Stat a resource; ``metadata_keys`` selects arbitrary metadata to return (``"*"`` for all)."""
        request = provider.StatRequest(ref=to_reference(ref), arbitrary_metadata_keys=list(metadata_keys))
        reply = await self._session.call("Stat", request, target=describe(ref))
        return reply.info

    async def exists(self, ref: RefLike) -> bool:
        try:
            await self.stat(ref)
        except NotFound:
            return False
        return True

    async def list(self, ref: RefLike, metadata_keys: Iterable[str] = ()) -> list[storage.ResourceInfo]:
        """List a folder's entries."""
        request = provider.ListContainerRequest(ref=to_reference(ref), arbitrary_metadata_keys=list(metadata_keys))
        reply = await self._session.call("ListContainer", request, target=describe(ref))
        return list(reply.infos)

    async def mkdir(self, ref: RefLike) -> None:
        """Create a folder; its parent must exist."""
        request = provider.CreateContainerRequest(ref=to_reference(ref))
        await self._session.call("CreateContainer", request, target=describe(ref), idempotent=False)

    async def delete(self, ref: RefLike, *, lock_id: str = "") -> None:
        request = provider.DeleteRequest(ref=to_reference(ref), lock_id=lock_id)
        await self._session.call("Delete", request, target=describe(ref), idempotent=False)

    async def move(self, source: RefLike, destination: RefLike, *, lock_id: str = "") -> None:
        """Move or rename; the resource keeps its id."""
        request = provider.MoveRequest(
            source=to_reference(source), destination=to_reference(destination), lock_id=lock_id
        )
        target = f"{describe(source)} -> {describe(destination)}"
        await self._session.call("Move", request, target=target, idempotent=False)

    # -- downloads ---------------------------------------------------------

    @contextlib.asynccontextmanager
    async def open_download(self, ref: RefLike, *, version_key: str | None = None) -> AsyncIterator[AsyncIterator[bytes]]:
        """Stream a file's content (or one of its versions) chunk by chunk::

            async with session.files.open_download(path) as chunks:
                async for chunk in chunks: ...
        """
        target = describe(ref) if version_key is None else f"{describe(ref)} version {version_key}"
        request = provider.InitiateFileDownloadRequest(ref=to_reference(ref))
        if version_key is not None:
            request.opaque.CopyFrom(plain_opaque(version_key=version_key))
        reply = await self._session.call("InitiateFileDownload", request, target=target)
        protocol = transfer.pick_protocol(reply.protocols, "download", target)
        headers = {TOKEN_HEADER: self._session.token, transfer.TRANSFER_HEADER: protocol.token}
        async with transfer.stream_get(
            self._session.client.http, protocol.download_endpoint, headers, operation="download", target=target
        ) as chunks:
            yield chunks

    async def download(self, ref: RefLike, *, version_key: str | None = None) -> bytes:
        """A file's whole content as bytes (for small files such as notebooks)."""
        return b"".join(await self.download_chunks(ref, version_key=version_key))

    async def download_chunks(self, ref: RefLike, *, version_key: str | None = None) -> list[bytes]:
        """A file's whole content as the chunks it arrived in, for a caller
        that hands it on to another process: joining megabytes into fresh
        memory is better done there than on the event loop."""
        parts: list[bytes] = []
        async with self.open_download(ref, version_key=version_key) as chunks:
            async for chunk in chunks:
                parts.append(chunk)
        return parts

    async def download_to(self, ref: RefLike, destination: Path, *, version_key: str | None = None) -> int:
        """Stream a file to a local path; returns the number of bytes written."""
        written = 0
        async with await anyio.open_file(destination, "wb") as out:
            async with self.open_download(ref, version_key=version_key) as chunks:
                async for chunk in chunks:
                    await out.write(chunk)
                    written += len(chunk)
        return written

    # -- uploads -----------------------------------------------------------

    async def upload(
        self,
        ref: RefLike,
        content: bytes | AsyncIterable[bytes],
        *,
        if_match: str | None = None,
        if_not_exist: bool = False,
        lock_id: str = "",
        disable_versioning: bool = False,
        size: int | None = None,
    ) -> str | None:
        """Write a file: InitiateFileUpload, then PUT the content.

        Args:
            content: the bytes, or an async iterable of chunks (streamed).
            if_match: only write if the file's current etag is this one.
            if_not_exist: only write if the file does not exist yet.
            lock_id: the lock id to present if the file is locked
                (sent as ``lock_id`` and as the ``X-Lock-Id`` header).
            disable_versioning: ask the server not to keep the previous
                content as a version (``X-Disable-Versioning``).
            size: the content length when streaming, if known.

        Returns:
            the new etag when the data server reports it, else None.
        """
        target = describe(ref)
        request = provider.InitiateFileUploadRequest(ref=to_reference(ref), lock_id=lock_id)
        if if_match is not None:
            request.if_match = if_match
        elif if_not_exist:
            request.if_not_exist = True
        length = len(content) if isinstance(content, (bytes, bytearray)) else size
        if length is not None:
            request.opaque.CopyFrom(plain_opaque(**{"Upload-Length": str(length)}))
        reply: gw.InitiateFileUploadResponse = await self._session.call(
            "InitiateFileUpload", request, target=target, idempotent=False
        )
        protocol = transfer.pick_protocol(reply.protocols, "upload", target)
        headers = {TOKEN_HEADER: self._session.token, transfer.TRANSFER_HEADER: protocol.token}
        if lock_id:
            headers[transfer.LOCK_HEADER] = lock_id
        if disable_versioning:
            headers[transfer.DISABLE_VERSIONING_HEADER] = "true"
        if length is not None:
            headers["Content-Length"] = str(length)
        response = await transfer.put(
            self._session.client.http, protocol.upload_endpoint, headers, content, operation="upload", target=target
        )
        return response.headers.get("ETag") or response.headers.get("OC-ETag")

    async def upload_file(self, ref: RefLike, source: Path, **options: object) -> str | None:
        """Stream a local file to CS3 (same options as :meth:`upload`)."""
        size = Path(source).stat().st_size

        async def chunks() -> AsyncIterator[bytes]:
            async with await anyio.open_file(source, "rb") as handle:
                while chunk := await handle.read(transfer.CHUNK_SIZE):
                    yield chunk

        return await self.upload(ref, chunks(), size=size, **options)  # type: ignore[arg-type]
