"""The group API at the gateway: FindGroups, GetGroup, GetMembers, and a
share to a group found that way reaching its members."""

from __future__ import annotations

import grpc
import pytest
from cs3.identity.group.v1beta1 import group_api_pb2 as group_api
from cs3.identity.group.v1beta1 import resources_pb2 as group_res
from cs3.rpc.v1beta1 import code_pb2
from cs3.sharing.collaboration.v1beta1 import collaboration_api_pb2 as collab
from cs3.sharing.collaboration.v1beta1 import resources_pb2 as share_res
from cs3.storage.provider.v1beta1 import resources_pb2 as sp_res

from .conftest import OK, id_ref, path_ref
from .roles import VIEWER
from .test_shares import USER_IDS

QUERY = group_api.Filter.TYPE_QUERY


async def find(cs3, token, query, **kw):
    res = await cs3.stub.FindGroups(group_api.FindGroupsRequest(
        filters=[group_api.Filter(type=QUERY, query=query)], **kw), metadata=cs3.md(token))
    assert res.status.code == OK, res.status
    return res.groups


async def test_find_groups_by_part_of_the_name(cs3, einstein):
    groups = await find(cs3, einstein, "LOVERS")
    assert [g.group_name for g in groups] == [
        "physics-lovers", "polonium-lovers", "quantum-lovers", "radium-lovers", "sailing-lovers"]
    physics = groups[0]
    assert physics.id == group_res.GroupId(idp="site-a.test", opaque_id="physics-lovers",
                                           type=group_res.GROUP_TYPE_REGULAR)
    assert sorted(m.opaque_id for m in physics.members) == sorted(USER_IDS.values())
    assert [g.group_name for g in await find(cs3, einstein, "hater")] == ["philosophy-haters", "violin-haters"]
    assert list(await find(cs3, einstein, "no-such-group")) == []
    skipped = await find(cs3, einstein, "radium", skip_fetching_members=True)
    assert [g.group_name for g in skipped] == ["radium-lovers"] and not skipped[0].members


async def test_find_groups_needs_a_query_and_a_token(cs3, einstein):
    res = await cs3.stub.FindGroups(group_api.FindGroupsRequest(), metadata=cs3.md(einstein))
    assert res.status.code == code_pb2.CODE_INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await cs3.stub.FindGroups(group_api.FindGroupsRequest(filters=[group_api.Filter(type=QUERY, query="x")]))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_get_group_and_members(cs3, einstein):
    res = await cs3.stub.GetGroup(group_api.GetGroupRequest(group_id=group_res.GroupId(opaque_id="radium-lovers")),
                                  metadata=cs3.md(einstein))
    assert res.status.code == OK
    assert res.group.group_name == "radium-lovers"
    assert [m.opaque_id for m in res.group.members] == [USER_IDS["marie"]]
    res = await cs3.stub.GetMembers(group_api.GetMembersRequest(group_id=group_res.GroupId(
        opaque_id="physics-lovers")), metadata=cs3.md(einstein))
    assert res.status.code == OK and len(res.members) == 3
    for missing in ("nobody-lovers", ""):
        gid = group_res.GroupId(opaque_id=missing)
        res = await cs3.stub.GetGroup(group_api.GetGroupRequest(group_id=gid), metadata=cs3.md(einstein))
        assert res.status.code == code_pb2.CODE_NOT_FOUND
        res = await cs3.stub.GetMembers(group_api.GetMembersRequest(group_id=gid), metadata=cs3.md(einstein))
        assert res.status.code == code_pb2.CODE_NOT_FOUND
    other_site = group_res.GroupId(idp="site-b.test", opaque_id="radium-lovers")
    res = await cs3.stub.GetGroup(group_api.GetGroupRequest(group_id=other_site), metadata=cs3.md(einstein))
    assert res.status.code == code_pb2.CODE_NOT_FOUND


async def test_a_share_to_a_found_group_is_received_by_its_members(cs3, einstein, marie, richard, workdir):
    path = f"{workdir}/for-the-group.txt"
    await cs3.upload(einstein, path_ref(path), b"g")
    info = (await cs3.stat(einstein, path_ref(path))).info
    (group,) = await find(cs3, einstein, "quantum")
    res = await cs3.stub.CreateShare(collab.CreateShareRequest(resource_info=info, grant=share_res.ShareGrant(
        grantee=sp_res.Grantee(type=sp_res.GRANTEE_TYPE_GROUP, group_id=group.id),
        permissions=share_res.SharePermissions(permissions=VIEWER))), metadata=cs3.md(einstein))
    assert res.status.code == OK, res.status

    async def received(token):
        res = await cs3.stub.ListReceivedShares(collab.ListReceivedSharesRequest(), metadata=cs3.md(token))
        assert res.status.code == OK
        return [r for r in res.shares if r.share.resource_id == info.id]

    (mine,) = await received(richard)  # richard is the one quantum-lover
    assert mine.share.grantee.group_id.opaque_id == "quantum-lovers"
    assert (await cs3.stat(richard, id_ref(info.id))).status.code == OK
    assert await received(marie) == []
    assert (await cs3.stat(marie, id_ref(info.id))).status.code == code_pb2.CODE_NOT_FOUND
