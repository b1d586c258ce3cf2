"""Lock semantics (SetLock/GetLock/RefreshLock/Unlock and locked writes)."""

from __future__ import annotations

import time

from cs3.rpc.v1beta1 import code_pb2
from cs3.storage.provider.v1beta1 import provider_api_pb2 as sp_api
from cs3.storage.provider.v1beta1 import resources_pb2 as sp_res
from cs3.types.v1beta1 import types_pb2

from .conftest import OK, path_ref

FAILED = code_pb2.CODE_FAILED_PRECONDITION


def lock(lock_id="L1", app="cs3collab", expires_in=None, user=None):
    lk = sp_res.Lock(lock_id=lock_id, type=sp_res.LOCK_TYPE_WRITE, app_name=app)
    if expires_in is not None:
        lk.expiration.CopyFrom(types_pb2.Timestamp(seconds=int(time.time() + expires_in)))
    if user is not None:
        lk.user.CopyFrom(user)
    return lk


async def _file(cs3, token, workdir, name="l.txt"):
    path = f"{workdir}/{name}"
    assert (await cs3.upload(token, path_ref(path), b"v1")).status_code == 200
    return path_ref(path)


async def test_set_get_unlock(cs3, einstein, workdir):
    ref = await _file(cs3, einstein, workdir)
    md = cs3.md(einstein)
    assert (await cs3.stub.GetLock(sp_api.GetLockRequest(ref=ref), metadata=md)).status.code == code_pb2.CODE_NOT_FOUND
    assert (await cs3.stub.SetLock(sp_api.SetLockRequest(ref=ref, lock=lock()), metadata=md)).status.code == OK
    got = await cs3.stub.GetLock(sp_api.GetLockRequest(ref=ref), metadata=md)
    assert got.status.code == OK
    assert got.lock.lock_id == "L1" and got.lock.app_name == "cs3collab"
    assert got.lock.user.opaque_id == "4c510ada-c86b-4815-8820-42cdf82c3d51"
    assert (await cs3.stat(einstein, ref)).info.lock.lock_id == "L1"
    again = await cs3.stub.SetLock(sp_api.SetLockRequest(ref=ref, lock=lock("L2")), metadata=md)
    assert again.status.code == FAILED
    res = await cs3.stub.Unlock(sp_api.UnlockRequest(ref=ref, lock=lock("wrong")), metadata=md)
    assert res.status.code == FAILED
    res = await cs3.stub.Unlock(sp_api.UnlockRequest(ref=ref, lock=lock(app="other")), metadata=md)
    assert res.status.code == FAILED
    assert (await cs3.stub.Unlock(sp_api.UnlockRequest(ref=ref, lock=lock()), metadata=md)).status.code == OK
    res = await cs3.stub.Unlock(sp_api.UnlockRequest(ref=ref, lock=lock()), metadata=md)
    assert res.status.code == FAILED  # not locked any more
    assert not (await cs3.stat(einstein, ref)).info.HasField("lock")


async def test_refresh(cs3, einstein, workdir):
    ref = await _file(cs3, einstein, workdir)
    md = cs3.md(einstein)
    res = await cs3.stub.RefreshLock(sp_api.RefreshLockRequest(ref=ref, lock=lock()), metadata=md)
    assert res.status.code == FAILED  # not locked
    await cs3.stub.SetLock(sp_api.SetLockRequest(ref=ref, lock=lock(expires_in=60)), metadata=md)
    res = await cs3.stub.RefreshLock(sp_api.RefreshLockRequest(ref=ref, lock=lock(expires_in=600)), metadata=md)
    assert res.status.code == OK
    got = (await cs3.stub.GetLock(sp_api.GetLockRequest(ref=ref), metadata=md)).lock
    assert got.expiration.seconds > time.time() + 300
    res = await cs3.stub.RefreshLock(sp_api.RefreshLockRequest(ref=ref, lock=lock("L2")), metadata=md)
    assert res.status.code == FAILED  # another lock id without existing_lock_id
    res = await cs3.stub.RefreshLock(sp_api.RefreshLockRequest(ref=ref, lock=lock(app="x")), metadata=md)
    assert res.status.code == FAILED  # another app
    res = await cs3.stub.RefreshLock(sp_api.RefreshLockRequest(ref=ref, lock=lock("L2"), existing_lock_id="nope"),
                                     metadata=md)
    assert res.status.code == FAILED
    res = await cs3.stub.RefreshLock(sp_api.RefreshLockRequest(ref=ref, lock=lock("L2"), existing_lock_id="L1"),
                                     metadata=md)
    assert res.status.code == OK  # unlock-and-relock with a new id
    assert (await cs3.stub.GetLock(sp_api.GetLockRequest(ref=ref), metadata=md)).lock.lock_id == "L2"


async def test_other_user_is_not_the_holder(cs3, einstein, marie, workdir):
    from .test_shares import share_with
    from .roles import EDITOR
    ref = await _file(cs3, einstein, workdir)
    info = (await cs3.stat(einstein, ref)).info
    await share_with(cs3, einstein, info, "marie", EDITOR)
    await cs3.stub.SetLock(sp_api.SetLockRequest(ref=ref, lock=lock()), metadata=cs3.md(einstein))
    mine = sp_res.Reference(resource_id=info.id, path=".")
    res = await cs3.stub.Unlock(sp_api.UnlockRequest(ref=mine, lock=lock()), metadata=cs3.md(marie))
    assert res.status.code == FAILED
    res = await cs3.stub.RefreshLock(sp_api.RefreshLockRequest(ref=mine, lock=lock()), metadata=cs3.md(marie))
    assert res.status.code == FAILED
    got = await cs3.stub.GetLock(sp_api.GetLockRequest(ref=mine), metadata=cs3.md(marie))
    assert got.status.code == OK and got.lock.lock_id == "L1"
    # marie can write only with the lock id, and only through the lock check
    init = await cs3.initiate_upload(marie, mine)
    assert init.status.code == code_pb2.CODE_LOCKED
    init = await cs3.initiate_upload(marie, mine, lock_id="other")
    assert init.status.code == code_pb2.CODE_ABORTED


async def test_locked_writes(cs3, einstein, workdir):
    ref = await _file(cs3, einstein, workdir)
    md = cs3.md(einstein)
    await cs3.stub.SetLock(sp_api.SetLockRequest(ref=ref, lock=lock()), metadata=md)
    init = await cs3.initiate_upload(einstein, ref, lock_id="L1")
    assert init.status.code == OK
    assert (await cs3.put(einstein, init, b"v2", {"X-Lock-Id": "L0"})).status_code == 409
    assert (await cs3.put(einstein, init, b"v2")).status_code == 409
    assert (await cs3.put(einstein, init, b"v2", {"X-Lock-Id": "L1"})).status_code == 200
    res = await cs3.stub.Delete(sp_api.DeleteRequest(ref=ref), metadata=md)
    assert res.status.code == code_pb2.CODE_LOCKED
    dest = path_ref(ref.path + ".moved")
    res = await cs3.stub.Move(sp_api.MoveRequest(source=ref, destination=dest), metadata=md)
    assert res.status.code == code_pb2.CODE_LOCKED
    res = await cs3.stub.Move(sp_api.MoveRequest(source=ref, destination=dest, lock_id="L1"), metadata=md)
    assert res.status.code == OK
    res = await cs3.stub.SetArbitraryMetadata(sp_api.SetArbitraryMetadataRequest(
        ref=dest, arbitrary_metadata=sp_res.ArbitraryMetadata(metadata={"k": "v"})), metadata=md)
    assert res.status.code == code_pb2.CODE_LOCKED
    res = await cs3.stub.Delete(sp_api.DeleteRequest(ref=dest, lock_id="L1"), metadata=md)
    assert res.status.code == OK


async def test_expired_lock_is_gone(cs3, einstein, workdir):
    ref = await _file(cs3, einstein, workdir)
    md = cs3.md(einstein)
    res = await cs3.stub.SetLock(sp_api.SetLockRequest(ref=ref, lock=lock(expires_in=-1)), metadata=md)
    assert res.status.code == OK
    assert (await cs3.stub.GetLock(sp_api.GetLockRequest(ref=ref), metadata=md)).status.code == code_pb2.CODE_NOT_FOUND
    assert (await cs3.upload(einstein, ref, b"free")).status_code == 200
    assert (await cs3.stub.SetLock(sp_api.SetLockRequest(ref=ref, lock=lock("L9")), metadata=md)).status.code == OK


async def test_lock_for_someone_else_or_shared_is_refused(cs3, einstein, workdir):
    ref = await _file(cs3, einstein, workdir)
    md = cs3.md(einstein)
    other = lock(user=sp_res.Lock().user.__class__(idp="site-a.test", opaque_id="someone-else"))
    res = await cs3.stub.SetLock(sp_api.SetLockRequest(ref=ref, lock=other), metadata=md)
    assert res.status.code == code_pb2.CODE_PERMISSION_DENIED
    shared = sp_res.Lock(lock_id="S", type=sp_res.LOCK_TYPE_SHARED, app_name="a")
    res = await cs3.stub.SetLock(sp_api.SetLockRequest(ref=ref, lock=shared), metadata=md)
    assert res.status.code == code_pb2.CODE_UNIMPLEMENTED
    res = await cs3.stub.SetLock(sp_api.SetLockRequest(ref=ref, lock=sp_res.Lock(app_name="a")), metadata=md)
    assert res.status.code == code_pb2.CODE_INVALID_ARGUMENT
