"""The issue's acceptance scenario, end to end over raw gRPC + HTTP."""

from __future__ import annotations

from cs3.identity.user.v1beta1 import resources_pb2 as user_res
from cs3.rpc.v1beta1 import code_pb2
from cs3.sharing.collaboration.v1beta1 import collaboration_api_pb2 as collab
from cs3.sharing.collaboration.v1beta1 import resources_pb2 as share_res
from cs3.storage.provider.v1beta1 import provider_api_pb2 as sp_api
from cs3.storage.provider.v1beta1 import resources_pb2 as sp_res

from .conftest import OK, id_ref, path_ref
from .roles import VIEWER


async def test_acceptance_scenario(cs3, einstein, marie, richard):
    # authenticate einstein (fixture) and find his home
    home = await cs3.home(einstein)
    assert home == "/home/einstein"
    path = f"{await cs3.workdir(einstein)}/analysis.ipynb"

    # upload a file, upload again: one version holding the first content
    assert (await cs3.upload(einstein, path_ref(path), b'{"v": 1}')).status_code == 200
    assert (await cs3.upload(einstein, path_ref(path), b'{"v": 2}')).status_code == 200
    versions = await cs3.stub.ListFileVersions(sp_api.ListFileVersionsRequest(ref=path_ref(path)),
                                               metadata=cs3.md(einstein))
    assert versions.status.code == OK
    assert len(versions.versions) == 1
    assert versions.versions[0].size == len(b'{"v": 1}')
    # download that version's old content; the current content is the new one
    assert await cs3.download(einstein, path_ref(path), versions.versions[0].key) == b'{"v": 1}'
    assert await cs3.download(einstein, path_ref(path)) == b'{"v": 2}'

    # lock the file as app "x": an upload without the lock id is refused
    lock = sp_res.Lock(lock_id="lock-1", type=sp_res.LOCK_TYPE_WRITE, app_name="x")
    res = await cs3.stub.SetLock(sp_api.SetLockRequest(ref=path_ref(path), lock=lock), metadata=cs3.md(einstein))
    assert res.status.code == OK
    init = await cs3.initiate_upload(einstein, path_ref(path))
    assert init.status.code == code_pb2.CODE_LOCKED
    init = await cs3.initiate_upload(einstein, path_ref(path), lock_id="lock-1")
    assert init.status.code == OK
    refused = await cs3.put(einstein, init, b'{"v": 3}')
    assert refused.status_code == 409
    accepted = await cs3.put(einstein, init, b'{"v": 3}', headers={"X-Lock-Id": "lock-1"})
    assert accepted.status_code == 200
    assert await cs3.download(einstein, path_ref(path)) == b'{"v": 3}'

    # share with marie as viewer: she downloads but cannot upload
    info = (await cs3.stat(einstein, path_ref(path))).info
    marie_id = user_res.UserId(opaque_id="f7fbf8c8-139b-4376-b307-cf0a8c2d0d9c", idp=cs3.stack.domain)
    created = await cs3.stub.CreateShare(collab.CreateShareRequest(
        resource_info=info,
        grant=share_res.ShareGrant(
            grantee=sp_res.Grantee(type=sp_res.GRANTEE_TYPE_USER, user_id=marie_id),
            permissions=share_res.SharePermissions(permissions=VIEWER))), metadata=cs3.md(einstein))
    assert created.status.code == OK
    assert await cs3.download(marie, id_ref(info.id)) == b'{"v": 3}'
    denied = await cs3.initiate_upload(marie, id_ref(info.id), lock_id="lock-1")
    assert denied.status.code == code_pb2.CODE_PERMISSION_DENIED
    stat = await cs3.stat(marie, id_ref(info.id))
    assert stat.status.code == OK
    assert stat.info.permission_set.initiate_file_download
    assert not stat.info.permission_set.initiate_file_upload

    # richard, a stranger, learns nothing about the file
    for ref in (id_ref(info.id), path_ref(path)):
        assert (await cs3.stat(richard, ref)).status.code == code_pb2.CODE_NOT_FOUND
        assert (await cs3.initiate_download(richard, ref)).status.code == code_pb2.CODE_NOT_FOUND
