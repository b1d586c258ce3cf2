"""A restart on the same data folder keeps files, versions, shares, locks and tokens."""

from __future__ import annotations

from cs3.storage.provider.v1beta1 import provider_api_pb2 as sp_api
from cs3.storage.provider.v1beta1 import resources_pb2 as sp_res

from .conftest import OK, connect, id_ref, path_ref, run_devstack
from .roles import VIEWER
from .test_shares import share_with


async def test_restart_keeps_everything(tmp_path):
    data = tmp_path / "site"
    async with run_devstack(data, "--domain", "keep.test") as first, connect(first) as c:
        token = await c.login("einstein")
        marie = await c.login("marie")
        ref = path_ref("/home/einstein/keep.txt")
        await c.upload(token, ref, b"v1")
        await c.upload(token, ref, b"v2")
        info = (await c.stat(token, ref)).info
        await share_with(c, token, info, "marie", VIEWER)
        lock = sp_res.Lock(lock_id="K", type=sp_res.LOCK_TYPE_WRITE, app_name="cs3collab")
        assert (await c.stub.SetLock(sp_api.SetLockRequest(ref=ref, lock=lock), metadata=c.md(token))).status.code == OK
    async with run_devstack(data, "--domain", "keep.test") as second, connect(second) as c:
        after = await c.stat(token, ref)  # a token minted before the restart still works
        assert after.status.code == OK
        assert after.info.id == info.id and after.info.etag == info.etag
        assert after.info.lock.lock_id == "K"
        assert await c.download(token, ref) == b"v2"
        versions = await c.stub.ListFileVersions(sp_api.ListFileVersionsRequest(ref=ref), metadata=c.md(token))
        assert [v.size for v in versions.versions] == [2]
        assert await c.download(token, ref, versions.versions[0].key) == b"v1"
        assert await c.download(marie, id_ref(info.id)) == b"v2"
