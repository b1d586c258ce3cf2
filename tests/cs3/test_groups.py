"""Groups through the client: search, lookup, members, and sharing with one."""

import pytest

from cs3collab.cs3 import NotFound, roles
from cs3collab.cs3.shares import group_grantee


async def test_find_and_get_groups(einstein):
    found = await einstein.groups.find("Physics")
    assert [g.group_name for g in found] == ["physics-lovers"]
    assert not found[0].members  # not fetched unless asked
    with_members = await einstein.groups.find("physics", members=True)
    assert {m.opaque_id for m in with_members[0].members} == {
        u.id.opaque_id for u in await einstein.users.find("example.org")}
    group = await einstein.groups.get(found[0].id)
    assert group.id.idp == "cernbox.test" and len(group.members) == 3
    marie = await einstein.users.by_username("marie")
    assert await einstein.groups.members("radium-lovers") == [marie.id]
    with pytest.raises(NotFound):
        await einstein.groups.get("no-such-group")
    with pytest.raises(NotFound):
        await einstein.groups.members("no-such-group")


async def test_members_of_a_shared_group_receive_the_share(einstein, marie, richard, workdir):
    path = f"{workdir}/group.ipynb"
    await einstein.files.upload(path, b"{}")
    info = await einstein.files.stat(path)
    (polonium,) = await einstein.groups.find("polonium")
    await einstein.shares.create(path, group_grantee(polonium.id), roles.VIEWER)
    assert [r.share.resource_id for r in await marie.shares.list_received()
            if r.share.resource_id == info.id] == [info.id]
    assert await marie.files.download(info.id) == b"{}"
    assert not [r for r in await richard.shares.list_received() if r.share.resource_id == info.id]
