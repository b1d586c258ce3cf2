"""Lock operations: SetLock, GetLock, RefreshLock, Unlock.

Semantics follow cs3org/reva: the storage provider's mapping in
internal/grpc/services/storageprovider/storageprovider.go (a Conflict on
SetLock and a BadRequest on RefreshLock/Unlock become FAILED_PRECONDITION)
over the eos driver's checks (pkg/storage/fs/eos/locks.go), with
decomposedfs' permission checks (locks need the upload permission, GetLock
the download permission) and expiry (node/locks.go ``ReadLock``).

- SetLock on a locked resource: PreconditionFailed.
- GetLock on an unlocked (or expired) resource: NotFound.
- RefreshLock/Unlock when not locked, by another holder (user AND app name,
  and the caller must be the lock's user), or with another lock id (for
  RefreshLock, ``existing_lock_id`` names the lock being replaced, else the
  new lock must carry the current id): PreconditionFailed.
- A lock without a user is taken for the caller; a lock naming another user
  is PermissionDenied. LOCK_TYPE_SHARED is not supported (as in eos).
"""

from __future__ import annotations

import time

from cs3.storage.provider.v1beta1 import resources_pb2 as sp_res

from . import access as A
from .errors import InvalidArgument, NotFound, PermissionDenied, PreconditionFailed, Unimplemented
from .store import Tree
from .tokens import Identity


def _normalized(caller: Identity, lock: sp_res.Lock) -> sp_res.Lock:
    if lock is None or not lock.lock_id:
        raise InvalidArgument("a lock needs a lock_id")
    if lock.type == sp_res.LOCK_TYPE_SHARED:
        raise Unimplemented("shared locks are not supported")
    if lock.type not in (sp_res.LOCK_TYPE_WRITE, sp_res.LOCK_TYPE_EXCL):
        raise InvalidArgument("lock type must be WRITE or EXCL")
    out = sp_res.Lock()
    out.CopyFrom(lock)
    if not out.user.opaque_id:
        out.user.CopyFrom(caller.user.id)
    elif (out.user.idp, out.user.opaque_id) != caller.user_key:
        raise PermissionDenied("a lock can only be taken for oneself")
    return out


def _store(tree: Tree, node_id: str, lock: sp_res.Lock) -> None:
    expires = None
    if lock.HasField("expiration") and (lock.expiration.seconds or lock.expiration.nanos):
        expires = lock.expiration.seconds + lock.expiration.nanos / 1e9
    tree.conn.execute("INSERT OR REPLACE INTO locks (node_id, lock, expires) VALUES (?,?,?)",
                      (node_id, lock.SerializeToString(), expires))


def _same_holder(caller: Identity, held: sp_res.Lock, asked: sp_res.Lock) -> bool:
    same_user = (held.user.idp, held.user.opaque_id) == (asked.user.idp, asked.user.opaque_id)
    return same_user and held.app_name == asked.app_name and caller.user_key == (held.user.idp, held.user.opaque_id)


def set_lock(tree: Tree, caller: Identity, ref: sp_res.Reference, lock: sp_res.Lock) -> None:
    node = A.existing(tree, caller, ref)
    A.allowed(tree, caller, node, "initiate_file_upload")
    new = _normalized(caller, lock)
    if A.current_lock(tree, node.id) is not None:
        raise PreconditionFailed("reference already locked")
    if not new.HasField("creation_time"):
        new.creation_time.seconds = int(time.time())
    _store(tree, node.id, new)


def get_lock(tree: Tree, caller: Identity, ref: sp_res.Reference) -> sp_res.Lock:
    node = A.existing(tree, caller, ref)
    A.allowed(tree, caller, node, "initiate_file_download")
    lock = A.current_lock(tree, node.id)
    if lock is None:
        raise NotFound("lock not found")
    return lock


def refresh_lock(tree: Tree, caller: Identity, ref: sp_res.Reference, lock: sp_res.Lock,
                 existing_lock_id: str = "") -> None:
    node = A.existing(tree, caller, ref)
    A.allowed(tree, caller, node, "initiate_file_upload")
    new = _normalized(caller, lock)
    held = A.current_lock(tree, node.id)
    if held is None:
        raise PreconditionFailed("reference not locked")
    if not _same_holder(caller, held, new):
        raise PreconditionFailed("caller does not hold the lock")
    if existing_lock_id and existing_lock_id != held.lock_id:
        raise PreconditionFailed("mismatching existing lock id")
    if not existing_lock_id and new.lock_id != held.lock_id:
        raise PreconditionFailed("mismatching lock id")
    new.creation_time.CopyFrom(held.creation_time)
    _store(tree, node.id, new)


def unlock(tree: Tree, caller: Identity, ref: sp_res.Reference, lock: sp_res.Lock) -> None:
    node = A.existing(tree, caller, ref)
    A.allowed(tree, caller, node, "initiate_file_upload")
    held = A.current_lock(tree, node.id)
    if held is None:
        raise PreconditionFailed("reference not locked")
    asked = sp_res.Lock()
    asked.CopyFrom(lock)
    if not asked.user.opaque_id:
        asked.user.CopyFrom(caller.user.id)
    if asked.lock_id != held.lock_id:
        raise PreconditionFailed("lock id does not match")
    if not _same_holder(caller, held, asked):
        raise PreconditionFailed("caller does not hold the lock")
    tree.conn.execute("DELETE FROM locks WHERE node_id=?", (node.id,))
