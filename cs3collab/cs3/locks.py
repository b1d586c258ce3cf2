"""CS3 locks (SetLock, GetLock, RefreshLock, Unlock).

A lock is held by a user *and* an application (``app_name``) and named by a
``lock_id``; uploads to a locked file must present that id. Locks expire:
the holder refreshes them while it works.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from cs3.storage.provider.v1beta1 import provider_api_pb2 as provider
from cs3.storage.provider.v1beta1 import resources_pb2 as storage
from cs3.types.v1beta1 import types_pb2 as types

from cs3collab.cs3.errors import NotFound
from cs3collab.cs3.refs import RefLike, describe, to_reference

if TYPE_CHECKING:
    from cs3collab.cs3.client import Session

WRITE = storage.LOCK_TYPE_WRITE


def make_lock(lock_id: str, app_name: str, lifetime: float | None, lock_type: int = WRITE) -> storage.Lock:
    """A Lock message expiring ``lifetime`` seconds from now (None: never)."""
    lock = storage.Lock(lock_id=lock_id, app_name=app_name, type=lock_type)
    if lifetime is not None:
        expires = time.time() + lifetime
        lock.expiration.CopyFrom(types.Timestamp(seconds=int(expires), nanos=int((expires % 1) * 1e9)))
    return lock


class LocksAPI:
    """Locks on files (``session.locks``)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    async def set(
        self, ref: RefLike, *, lock_id: str, app_name: str, lifetime: float | None = 60.0, lock_type: int = WRITE
    ) -> None:
        """Take a lock; a file locked by anyone (us included) gives FailedPrecondition."""
        request = provider.SetLockRequest(ref=to_reference(ref), lock=make_lock(lock_id, app_name, lifetime, lock_type))
        await self._session.call("SetLock", request, target=describe(ref), idempotent=False)

    async def get(self, ref: RefLike) -> storage.Lock | None:
        """The current lock, or None when the file is not locked."""
        request = provider.GetLockRequest(ref=to_reference(ref))
        try:
            reply = await self._session.call("GetLock", request, target=describe(ref))
        except NotFound:
            # Reva answers NOT_FOUND for "no lock"; tell it from a missing file.
            await self._session.files.stat(ref)
            return None
        return reply.lock if reply.HasField("lock") and reply.lock.lock_id else None

    async def refresh(
        self,
        ref: RefLike,
        *,
        lock_id: str,
        app_name: str,
        lifetime: float | None = 60.0,
        existing_lock_id: str = "",
        lock_type: int = WRITE,
    ) -> None:
        """Extend our lock (or replace its id, naming the old one in ``existing_lock_id``)."""
        request = provider.RefreshLockRequest(
            ref=to_reference(ref),
            lock=make_lock(lock_id, app_name, lifetime, lock_type),
            existing_lock_id=existing_lock_id,
        )
        await self._session.call("RefreshLock", request, target=describe(ref))

    async def unlock(self, ref: RefLike, *, lock_id: str, app_name: str, lock_type: int = WRITE) -> None:
        """Release our lock; someone else's gives FailedPrecondition."""
        request = provider.UnlockRequest(ref=to_reference(ref), lock=make_lock(lock_id, app_name, None, lock_type))
        await self._session.call("Unlock", request, target=describe(ref))
