"""User shares: roles, recipients' access by resource id, share management."""

from __future__ import annotations

from cs3.identity.group.v1beta1 import resources_pb2 as group_res
from cs3.identity.user.v1beta1 import resources_pb2 as user_res
from cs3.rpc.v1beta1 import code_pb2
from cs3.sharing.collaboration.v1beta1 import collaboration_api_pb2 as collab
from cs3.sharing.collaboration.v1beta1 import resources_pb2 as share_res
from cs3.storage.provider.v1beta1 import provider_api_pb2 as sp_api
from cs3.storage.provider.v1beta1 import resources_pb2 as sp_res
from google.protobuf import field_mask_pb2

from .conftest import OK, id_ref, path_ref
from .roles import EDITOR, VIEWER

USER_IDS = {"einstein": "4c510ada-c86b-4815-8820-42cdf82c3d51", "marie": "f7fbf8c8-139b-4376-b307-cf0a8c2d0d9c",
            "richard": "932b4540-8d16-481e-8ef4-588e4b6b151c"}


def grantee(username: str) -> sp_res.Grantee:
    return sp_res.Grantee(type=sp_res.GRANTEE_TYPE_USER, user_id=user_res.UserId(opaque_id=USER_IDS[username]))


async def share_with(cs3, token, info, username, perms, expect=OK):
    res = await cs3.stub.CreateShare(collab.CreateShareRequest(resource_info=info, grant=share_res.ShareGrant(
        grantee=grantee(username), permissions=share_res.SharePermissions(permissions=perms))),
        metadata=cs3.md(token))
    assert res.status.code == expect, res.status
    return res.share


async def test_editor_can_upload_and_browse_a_shared_folder(cs3, einstein, marie, richard, workdir):
    await cs3.mkdir(einstein, path_ref(f"{workdir}/proj"))
    await cs3.mkdir(einstein, path_ref(f"{workdir}/proj/sub"))
    await cs3.upload(einstein, path_ref(f"{workdir}/proj/sub/x.txt"), b"x1")
    folder = (await cs3.stat(einstein, path_ref(f"{workdir}/proj"))).info
    share = await share_with(cs3, einstein, folder, "marie", EDITOR)
    assert share.permissions.permissions == EDITOR
    assert share.grantee.user_id.idp == "site-a.test"
    assert share.owner.opaque_id == USER_IDS["einstein"] and share.creator.opaque_id == USER_IDS["einstein"]

    child = id_ref(folder.id, "./sub/x.txt")
    res = await cs3.stat(marie, child)
    assert res.status.code == OK
    assert res.info.permission_set == EDITOR
    assert res.info.path == "./sub/x.txt"
    assert (await cs3.upload(marie, child, b"x2")).status_code == 200
    assert (await cs3.upload(marie, id_ref(folder.id, "./new.txt"), b"n")).status_code == 200
    assert await cs3.download(einstein, path_ref(f"{workdir}/proj/sub/x.txt")) == b"x2"
    listing = await cs3.stub.ListContainer(sp_api.ListContainerRequest(ref=id_ref(folder.id)),
                                           metadata=cs3.md(marie))
    assert sorted(i.name for i in listing.infos) == ["new.txt", "sub"]
    # above the shared folder marie sees nothing; richard sees nothing at all
    assert (await cs3.stat(marie, path_ref(workdir))).status.code == code_pb2.CODE_NOT_FOUND
    assert (await cs3.stat(marie, id_ref(folder.id, "./../proj"))).status.code == code_pb2.CODE_NOT_FOUND
    assert (await cs3.stat(richard, child)).status.code == code_pb2.CODE_NOT_FOUND
    # the owner still has full permissions
    assert (await cs3.stat(einstein, child)).info.permission_set.add_grant


async def test_viewer_cannot_write(cs3, einstein, marie, workdir):
    path = f"{workdir}/ro.txt"
    await cs3.upload(einstein, path_ref(path), b"ro")
    info = (await cs3.stat(einstein, path_ref(path))).info
    await share_with(cs3, einstein, info, "marie", VIEWER)
    ref = id_ref(info.id)
    assert (await cs3.stat(marie, ref)).info.permission_set == VIEWER
    assert (await cs3.initiate_upload(marie, ref)).status.code == code_pb2.CODE_PERMISSION_DENIED
    res = await cs3.stub.Delete(sp_api.DeleteRequest(ref=ref), metadata=cs3.md(marie))
    assert res.status.code == code_pb2.CODE_PERMISSION_DENIED
    res = await cs3.stub.SetLock(sp_api.SetLockRequest(ref=ref, lock=sp_res.Lock(
        lock_id="m", type=sp_res.LOCK_TYPE_WRITE, app_name="a")), metadata=cs3.md(marie))
    assert res.status.code == code_pb2.CODE_PERMISSION_DENIED
    # an upload token minted for einstein does not let marie write either
    init = await cs3.initiate_upload(einstein, ref)
    assert (await cs3.put(marie, init, b"nope")).status_code == 403
    assert await cs3.download(marie, ref) == b"ro"


async def test_share_management(cs3, einstein, marie, richard, workdir):
    path = f"{workdir}/s.txt"
    await cs3.upload(einstein, path_ref(path), b"s")
    info = (await cs3.stat(einstein, path_ref(path))).info
    share = await share_with(cs3, einstein, info, "marie", VIEWER)
    await share_with(cs3, einstein, info, "marie", EDITOR, expect=code_pb2.CODE_ALREADY_EXISTS)
    await share_with(cs3, marie, info, "richard", VIEWER, expect=code_pb2.CODE_PERMISSION_DENIED)
    await share_with(cs3, einstein, info, "einstein", VIEWER, expect=code_pb2.CODE_INVALID_ARGUMENT)
    ref = share_res.ShareReference(id=share.id)

    by_resource = share_res.Filter(type=share_res.Filter.TYPE_RESOURCE_ID, resource_id=info.id)
    listed = await cs3.stub.ListShares(collab.ListSharesRequest(filters=[by_resource]), metadata=cs3.md(einstein))
    assert [s.id.opaque_id for s in listed.shares] == [share.id.opaque_id]
    listed = await cs3.stub.ListShares(collab.ListSharesRequest(filters=[by_resource]), metadata=cs3.md(marie))
    assert list(listed.shares) == []

    got = await cs3.stub.GetShare(collab.GetShareRequest(ref=ref), metadata=cs3.md(marie))
    assert got.status.code == OK
    got = await cs3.stub.GetShare(collab.GetShareRequest(ref=ref), metadata=cs3.md(richard))
    assert got.status.code == code_pb2.CODE_NOT_FOUND

    upd = await cs3.stub.UpdateShare(collab.UpdateShareRequest(ref=ref, field=collab.UpdateShareRequest.UpdateField(
        permissions=share_res.SharePermissions(permissions=EDITOR))), metadata=cs3.md(einstein))
    assert upd.status.code == OK and upd.share.permissions.permissions == EDITOR
    assert (await cs3.stat(marie, id_ref(info.id))).info.permission_set.initiate_file_upload

    received = await cs3.stub.ListReceivedShares(collab.ListReceivedSharesRequest(), metadata=cs3.md(marie))
    mine = [r for r in received.shares if r.share.id.opaque_id == share.id.opaque_id]
    assert len(mine) == 1 and mine[0].state == share_res.SHARE_STATE_PENDING

    accept = share_res.ReceivedShare(share=share_res.Share(id=share.id), state=share_res.SHARE_STATE_ACCEPTED)
    res = await cs3.stub.UpdateReceivedShare(collab.UpdateReceivedShareRequest(
        share=accept, update_mask=field_mask_pb2.FieldMask(paths=["state"])), metadata=cs3.md(marie))
    assert res.status.code == OK and res.share.state == share_res.SHARE_STATE_ACCEPTED
    mount = res.share.mount_point.path
    assert mount.startswith("s.txt")
    assert (await cs3.stat(marie, id_ref(info.id))).info.path == f"/Shares/{mount}"
    assert await cs3.download(marie, path_ref(f"/Shares/{mount}")) == b"s"
    got = await cs3.stub.GetReceivedShare(collab.GetReceivedShareRequest(ref=ref), metadata=cs3.md(marie))
    assert got.share.state == share_res.SHARE_STATE_ACCEPTED
    res = await cs3.stub.UpdateReceivedShare(collab.UpdateReceivedShareRequest(
        share=accept, update_mask=field_mask_pb2.FieldMask(paths=["state"])), metadata=cs3.md(richard))
    assert res.status.code == code_pb2.CODE_NOT_FOUND

    assert (await cs3.stub.RemoveShare(collab.RemoveShareRequest(ref=ref), metadata=cs3.md(marie))).status.code \
        == code_pb2.CODE_NOT_FOUND
    assert (await cs3.stub.RemoveShare(collab.RemoveShareRequest(ref=ref), metadata=cs3.md(einstein))).status.code \
        == OK
    assert (await cs3.stat(marie, id_ref(info.id))).status.code == code_pb2.CODE_NOT_FOUND
    assert (await cs3.stat(marie, path_ref(f"/Shares/{mount}"))).status.code == code_pb2.CODE_NOT_FOUND


async def test_group_share(cs3, einstein, marie, richard, workdir):
    path = f"{workdir}/g.txt"
    await cs3.upload(einstein, path_ref(path), b"g")
    info = (await cs3.stat(einstein, path_ref(path))).info
    res = await cs3.stub.CreateShare(collab.CreateShareRequest(resource_info=info, grant=share_res.ShareGrant(
        grantee=sp_res.Grantee(type=sp_res.GRANTEE_TYPE_GROUP, group_id=group_res.GroupId(opaque_id="radium-lovers")),
        permissions=share_res.SharePermissions(permissions=VIEWER))), metadata=cs3.md(einstein))
    assert res.status.code == OK
    assert (await cs3.stat(marie, id_ref(info.id))).status.code == OK  # marie is a radium-lover
    assert (await cs3.stat(richard, id_ref(info.id))).status.code == code_pb2.CODE_NOT_FOUND
