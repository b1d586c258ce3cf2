"""Arbitrary metadata: string key/value pairs attached to a CS3 resource."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from cs3.storage.provider.v1beta1 import provider_api_pb2 as provider
from cs3.storage.provider.v1beta1 import resources_pb2 as storage

from cs3collab.cs3.refs import RefLike, describe, to_reference

if TYPE_CHECKING:
    from cs3collab.cs3.client import Session


class MetadataAPI:
    """Arbitrary metadata (``session.metadata``)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    async def get(self, ref: RefLike, keys: Iterable[str]) -> dict[str, str]:
        """The values of ``keys`` that are set (through Stat)."""
        info = await self._session.files.stat(ref, metadata_keys=keys)
        return dict(info.arbitrary_metadata.metadata)

    async def set(self, ref: RefLike, values: Mapping[str, str], *, lock_id: str = "") -> None:
        request = provider.SetArbitraryMetadataRequest(
            ref=to_reference(ref),
            arbitrary_metadata=storage.ArbitraryMetadata(metadata=dict(values)),
            lock_id=lock_id,
        )
        await self._session.call("SetArbitraryMetadata", request, target=describe(ref))

    async def unset(self, ref: RefLike, keys: Iterable[str], *, lock_id: str = "") -> None:
        request = provider.UnsetArbitraryMetadataRequest(
            ref=to_reference(ref), arbitrary_metadata_keys=list(keys), lock_id=lock_id
        )
        await self._session.call("UnsetArbitraryMetadata", request, target=describe(ref))
