"""The virtual "Shared with me" folder of the CS3 contents manager.

Its entries are the user shares the user accepted (each a Stat of the shared
resource, so a recipient opens the owner's file and room by resource id)
and the received OCM shares not declined (content at the sharing site,
reached through its collaboration service, also below a shared folder).
Names are the shared files' names, made unique in share order with
`` (n)`` before the extension; a dangling share (its resource gone) is left
out. A listing is reused for ``shared_cache_seconds`` to map paths below the
folder (listing the folder itself always asks CS3 again).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cs3.sharing.collaboration.v1beta1 import resources_pb2 as sharing
from cs3.sharing.ocm.v1beta1 import resources_pb2 as ocm
from cs3.storage.provider.v1beta1 import resources_pb2 as storage

from cs3collab.cs3 import NotFound, PermissionDenied, Session, Unimplemented

if TYPE_CHECKING:
    from cs3collab.jupyter.contents import CS3ContentsManager

log = logging.getLogger("cs3collab.jupyter.contents")


@dataclass
class SharedEntry:
    """One entry of the "Shared with me" folder."""

    name: str
    info: storage.ResourceInfo | None = None  # user share: Stat of the shared resource
    ocm: ocm.ReceivedShare | None = None  # OCM share: the received share

    @property
    def is_dir(self) -> bool:
        if self.ocm is not None:
            return self.ocm.shared_resource_type == ocm.SHARE_RESOURCE_TYPE_CONTAINER
        return self.info is not None and self.info.type == storage.RESOURCE_TYPE_CONTAINER

    def unreachable(self, api_path: str) -> Unimplemented:
        owner = self.ocm.owner if self.ocm is not None else None
        site = owner.idp if owner is not None and owner.idp else "another site"
        return Unimplemented(
            f"{self.name!r} is shared with you from {site} through OCM; its content lives there and is not "
            f"reachable through this server (open it at {site})",
            operation="open OCM share",
            target=api_path,
        )


def with_suffix(name: str, n: int, is_dir: bool) -> str:
    """``name (n).ext`` (the extension stays, so a notebook stays a notebook)."""
    stem, dot, ext = name.rpartition(".")
    if is_dir or not dot or not stem:
        return f"{name} ({n})"
    return f"{stem} ({n}).{ext}"


class SharedWithMe:
    """The folder's entries for one contents manager (whose traits it reads)."""

    def __init__(self, manager: CS3ContentsManager) -> None:
        self.manager = manager
        self._cache: tuple[float, str, dict[str, SharedEntry]] | None = None  # (time, user id, entries)

    def forget(self) -> None:
        """Drop the cached listing (after a share was accepted or declined)."""
        self._cache = None

    async def entries(self, session: Session, fresh: bool = False) -> dict[str, SharedEntry]:
        """The folder's entries by name (a listing of at most ``shared_cache_seconds`` ago unless ``fresh``)."""
        user = session.user.id.opaque_id
        cached = self._cache
        reusable = cached is not None and cached[1] == user
        if not fresh and reusable and time.monotonic() - cached[0] < self.manager.shared_cache_seconds:
            return cached[2]
        received = await session.shares.list_received(state=sharing.SHARE_STATE_ACCEPTED)

        async def stat(share: sharing.ReceivedShare) -> storage.ResourceInfo | None:
            try:
                return await session.files.stat(share.share.resource_id)
            except (NotFound, PermissionDenied) as exc:  # a dangling share: the resource is gone
                log.debug("skipping received share %s: %s", share.share.id.opaque_id, exc)
                return None

        infos = await asyncio.gather(*(stat(r) for r in received))
        found: list[tuple[tuple, SharedEntry]] = []
        for share, info in zip(received, infos):
            if info is None:
                continue
            name = info.name or info.path.rstrip("/").rsplit("/", 1)[-1] or share.share.id.opaque_id
            order = (share.share.ctime.seconds, share.share.ctime.nanos, share.share.id.opaque_id)
            found.append((order, SharedEntry(name=name, info=info)))
        try:
            remote = await session.ocm.list_received()
        except (Unimplemented, PermissionDenied, NotFound) as exc:  # a site without OCM
            log.debug("no received OCM shares: %s", exc)
            remote = []
        for share in remote:
            if share.state == ocm.SHARE_STATE_REJECTED:
                continue
            order = (share.ctime.seconds, share.ctime.nanos, share.id.opaque_id)
            found.append((order, SharedEntry(name=share.name or share.id.opaque_id, ocm=share)))
        entries: dict[str, SharedEntry] = {}
        for _, entry in sorted(found, key=lambda item: item[0]):
            name, n = entry.name, 1
            while name in entries:
                n += 1
                name = with_suffix(entry.name, n, entry.is_dir)
            entry.name = name
            entries[name] = entry
        self._cache = (time.monotonic(), user, entries)
        return entries

    async def entry(self, session: Session, name: str, api_path: str) -> SharedEntry:
        """The entry called ``name`` (listed afresh once if the cached listing lacks it)."""
        entries = await self.entries(session)
        if name not in entries:
            entries = await self.entries(session, fresh=True)
        if name not in entries:
            raise NotFound(
                f"no accepted share named {name!r} in {self.manager.shared_folder_name!r}",
                operation="resolve",
                target=api_path,
            )
        return entries[name]
