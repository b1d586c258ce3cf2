"""CS3 gateway conformance: the client's contract, checked against any gateway.

The same checks run twice: against the devstack this test session starts,
and against a gateway a site names, so that a site can point them at its
real Reva:

    CS3COLLAB_TEST_GATEWAY=reva.example.org:9142 \\
    CS3COLLAB_TEST_USER=einstein CS3COLLAB_TEST_PASSWORD=relativity \\
    [CS3COLLAB_TEST_USER2=marie CS3COLLAB_TEST_PASSWORD2=radioactivity] \\
    [CS3COLLAB_TEST_OCM_GRANTEE=<opaque id>@<trusted provider domain>] \\
    ./dev test tests/conformance

Without CS3COLLAB_TEST_GATEWAY the external run is skipped and says so. Every
check works in a fresh folder of the first user's home and removes it after.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass

import pytest

from cs3.ocm.provider.v1beta1 import resources_pb2 as provider_res
from cs3.sharing.ocm.v1beta1 import ocm_api_pb2 as ocm_api
from cs3.storage.provider.v1beta1 import resources_pb2 as storage_res

from cs3collab.cs3 import (CS3Client, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, Session,
                           Unauthenticated, roles)
from cs3collab.cs3.ocm import access_methods, federated_user
from cs3collab.cs3.shares import user_grantee


@dataclass
class Target:
    name: str
    gateway: str
    user: tuple[str, str]
    user2: tuple[str, str] | None


@pytest.fixture(params=["devstack", "external"])
def target(request, site):
    if request.param == "devstack":
        return Target("devstack", site.gateway, ("einstein", "relativity"), ("marie", "radioactivity"))
    gateway = os.environ.get("CS3COLLAB_TEST_GATEWAY")
    if not gateway:
        pytest.skip(
            "external CS3 conformance not requested: set CS3COLLAB_TEST_GATEWAY=host:port, "
            "CS3COLLAB_TEST_USER and CS3COLLAB_TEST_PASSWORD (optionally CS3COLLAB_TEST_USER2/PASSWORD2)"
        )
    user = (os.environ["CS3COLLAB_TEST_USER"], os.environ["CS3COLLAB_TEST_PASSWORD"])
    user2 = None
    if os.environ.get("CS3COLLAB_TEST_USER2"):
        user2 = (os.environ["CS3COLLAB_TEST_USER2"], os.environ["CS3COLLAB_TEST_PASSWORD2"])
    return Target("external", gateway, user, user2)


@pytest.fixture
async def conn(target):
    async with CS3Client(target.gateway) as client:
        session = await client.login(*target.user)
        home = await session.get_home()
        folder = f"{home}/cs3collab-conformance-{uuid.uuid4().hex[:8]}"
        await session.files.mkdir(folder)
        try:
            yield client, session, folder
        finally:
            await session.files.delete(folder)


async def test_identity(conn, target):
    client, session, _ = conn
    assert session.username == target.user[0]
    assert (await session.whoami()).id == session.user.id


async def test_content_round_trip_and_etags(conn):
    _, session, folder = conn
    path = f"{folder}/nb.ipynb"
    await session.files.upload(path, "{\"ü\": 1}".encode())
    first = await session.files.stat(path)
    assert await session.files.download(path) == "{\"ü\": 1}".encode()
    await session.files.upload(path, b"{}", if_match=first.etag)
    second = await session.files.stat(path)
    assert second.etag != first.etag and second.id == first.id
    with pytest.raises(FailedPrecondition):
        await session.files.upload(path, b"stale", if_match=first.etag)


async def test_versions(conn):
    _, session, folder = conn
    path = f"{folder}/v.ipynb"
    await session.files.upload(path, b"one")
    await session.files.upload(path, b"two")
    versions = await session.versions.list(path)
    assert versions, "an overwrite must leave a version"
    assert b"one" in {await session.versions.download(path, v.key) for v in versions}


async def test_metadata(conn):
    _, session, folder = conn
    path = f"{folder}/m.ipynb"
    await session.files.upload(path, b"{}")
    await session.metadata.set(path, {"cs3collab.test": "yes"})
    assert await session.metadata.get(path, ["cs3collab.test"]) == {"cs3collab.test": "yes"}


async def test_locks(conn):
    _, session, folder = conn
    path = f"{folder}/l.ipynb"
    await session.files.upload(path, b"{}")
    lock_id = uuid.uuid4().hex
    await session.locks.set(path, lock_id=lock_id, app_name="cs3collab-conformance", lifetime=60)
    try:
        assert (await session.locks.get(path)).lock_id == lock_id
        with pytest.raises(FailedPrecondition):
            await session.files.upload(path, b"no lock id")
        await session.files.upload(path, b"with lock id", lock_id=lock_id)
    finally:
        await session.locks.unlock(path, lock_id=lock_id, app_name="cs3collab-conformance")
    assert await session.locks.get(path) is None


async def test_viewer_share(conn, target):
    client, session, folder = conn
    if target.user2 is None:
        pytest.skip("set CS3COLLAB_TEST_USER2/CS3COLLAB_TEST_PASSWORD2 to check shares")
    other: Session = await client.login(*target.user2)
    path = f"{folder}/s.ipynb"
    await session.files.upload(path, b"shared")
    info = await session.files.stat(path)
    share = await session.shares.create(path, user_grantee(other.user.id), roles.VIEWER)
    try:
        assert await other.files.download(info.id) == b"shared"
        with pytest.raises(PermissionDenied):
            await other.files.upload(info.id, b"nope")
    finally:
        await session.shares.remove(share.id.opaque_id)
    with pytest.raises((PermissionDenied, NotFound)):
        await other.files.download(info.id)


async def test_groups_of_the_user_are_found(conn):
    _, session, _ = conn
    if not session.user.groups:
        pytest.skip("the test user belongs to no group")
    name = session.user.groups[0]
    found = await session.groups.find(name)
    assert name in [g.group_name for g in found]
    group = await session.groups.get(next(g for g in found if g.group_name == name).id)
    assert group.group_name == name


async def test_invite_tokens(conn):
    _, session, _ = conn
    token = await session.invites.generate("cs3collab conformance")
    assert token.token and token.expiration.seconds > 0
    assert token.token in [t.token for t in await session.invites.list_tokens()]
    await session.invites.find_accepted_users()  # answers OK (raises otherwise)


async def test_token_check_sends_the_token_as_metadata(conn):
    """What the service does with every local participant's token: WhoAmI,
    which Reva 3.x protects (the token must also travel as x-access-token)."""
    client, session, _ = conn
    checked = await client.session_for_token(session.token)
    assert checked.user.id == session.user.id
    with pytest.raises(Unauthenticated):
        await client.session_for_token(session.token + "x")


async def test_ocm_share_needs_the_provider_service(conn, target):
    """CreateOCMShare as Reva 3.x takes it: the provider as GetInfoByDomain
    gives it (with its OCM service), never a bare domain. With
    CS3COLLAB_TEST_OCM_GRANTEE=<opaque id>@<domain> (a user at a provider the
    site trusts) the external run also creates and removes a real share."""
    _, session, folder = conn
    path = f"{folder}/ocm.ipynb"
    await session.files.upload(path, b"{}")
    info = await session.files.stat(path)
    with pytest.raises(NotFound):  # a provider the site does not know
        await session.ocm.provider_info("no-such-provider.invalid")
    bare = ocm_api.CreateOCMShareRequest(
        resource_id=info.id, grantee=storage_res.Grantee(type=storage_res.GRANTEE_TYPE_USER,
                                                         user_id=federated_user("x", "no-such-provider.invalid")),
        recipient_mesh_provider=provider_res.ProviderInfo(domain="no-such-provider.invalid"),
        access_methods=access_methods(roles.VIEWER, webapp=False))
    with pytest.raises(InvalidArgument):  # "the selected provider does not have an OCM endpoint"
        await session.call("CreateOCMShare", bare, idempotent=False)
    grantee = os.environ.get("CS3COLLAB_TEST_OCM_GRANTEE", "") if target.name == "external" else ""
    if not grantee:
        return
    opaque, _, domain = grantee.rpartition("@")
    share = await session.ocm.create_share(info.id, federated_user(opaque, domain), roles.VIEWER)
    try:
        assert share.id.opaque_id and share.token
        assert (await session.ocm.get_share(share.id.opaque_id)).resource_id == info.id
    finally:
        await session.ocm.remove_share(share.id.opaque_id)
