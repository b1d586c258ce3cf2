"""User shares: the owner, an editor, a viewer and a stranger, through the client."""

import pytest

from cs3collab.cs3 import InvalidArgument, NotFound, PermissionDenied, roles
from cs3collab.cs3.shares import ACCEPTED, user_grantee


@pytest.fixture
async def shared(einstein, marie, workdir):
    path = f"{workdir}/shared.ipynb"
    await einstein.files.upload(path, b"v1")
    info = await einstein.files.stat(path)
    return path, info


async def test_viewer_reads_but_cannot_write(einstein, marie, richard, shared):
    path, info = shared
    share = await einstein.shares.create(path, user_grantee(marie.user.id), roles.VIEWER)
    assert share.resource_id == info.id
    seen = await marie.files.stat(info.id)
    assert roles.role_of(seen.permission_set) == roles.VIEWER
    assert await marie.files.download(info.id) == b"v1"
    with pytest.raises(PermissionDenied):
        await marie.files.upload(info.id, b"marie was here")
    assert await einstein.files.download(path) == b"v1"
    with pytest.raises((PermissionDenied, NotFound)):
        await richard.files.download(info.id)
    with pytest.raises((PermissionDenied, NotFound)):
        await richard.files.stat(info.id)


async def test_editor_writes(einstein, marie, shared):
    path, info = shared
    await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    seen = await marie.files.stat(info.id)
    assert roles.role_of(seen.permission_set) == roles.EDITOR
    await marie.files.upload(info.id, b"v2 by marie")
    assert await einstein.files.download(path) == b"v2 by marie"
    assert len(await einstein.versions.list(path)) == 1


async def test_owner_sees_full_permissions(einstein, shared):
    path, _ = shared
    info = await einstein.files.stat(path)
    assert info.permission_set == roles.owner_permissions()


async def test_received_shares_and_accept(einstein, marie, shared):
    path, info = shared
    share = await einstein.shares.create(path, user_grantee(marie.user.id), roles.VIEWER)
    received = [r for r in await marie.shares.list_received() if r.share.id == share.id]
    assert len(received) == 1
    assert received[0].share.resource_id == info.id
    updated = await marie.shares.update_received(share.id.opaque_id, state=ACCEPTED)
    assert updated.state == ACCEPTED
    accepted = [r for r in await marie.shares.list_received(state=ACCEPTED) if r.share.id == share.id]
    assert len(accepted) == 1


async def test_owner_lists_updates_and_revokes(einstein, marie, shared):
    path, info = shared
    share = await einstein.shares.create(path, user_grantee(marie.user.id), roles.VIEWER)
    listed = await einstein.shares.list(resource_id=info.id)
    assert [s.id for s in listed] == [share.id]
    await einstein.shares.update_role(share.id.opaque_id, roles.EDITOR)
    assert roles.role_of((await marie.files.stat(info.id)).permission_set) == roles.EDITOR
    await einstein.shares.update_role(share.id.opaque_id, roles.VIEWER)
    with pytest.raises(PermissionDenied):
        await marie.files.upload(info.id, b"after downgrade")
    await einstein.shares.remove(share.id.opaque_id)
    with pytest.raises((PermissionDenied, NotFound)):
        await marie.files.download(info.id)
    assert await einstein.shares.list(resource_id=info.id) == []


async def test_stranger_cannot_share_or_see_shares(einstein, richard, marie, shared):
    path, info = shared
    with pytest.raises((PermissionDenied, NotFound)):
        await richard.shares.create(info.id, user_grantee(marie.user.id), roles.EDITOR)


async def test_shared_folder_children(einstein, marie, workdir):
    folder = f"{workdir}/project"
    await einstein.files.mkdir(folder)
    await einstein.files.upload(f"{folder}/a.ipynb", b"A")
    info = await einstein.files.stat(folder)
    await einstein.shares.create(folder, user_grantee(marie.user.id), roles.EDITOR)
    assert [i.name for i in await marie.files.list(info.id)] == ["a.ipynb"]
    await marie.files.upload((info.id, "./b.ipynb"), b"B")
    assert await einstein.files.download(f"{folder}/b.ipynb") == b"B"
    with pytest.raises((PermissionDenied, NotFound, InvalidArgument)):
        await marie.files.download((info.id, "./../shared-escape.ipynb"))


async def test_find_users(marie):
    found = await marie.users.find("ein")
    assert [u.username for u in found] == ["einstein"]
    assert (await marie.users.by_username("richard")).display_name
