"""Federated contacts through the client: an invitation between two sites
(real devstack processes that trust each other through a providers file)."""

from __future__ import annotations

import pytest
from cs3.identity.user.v1beta1 import resources_pb2 as identity

from cs3collab.cs3 import AlreadyExists, CS3Client, InvalidArgument, NotFound
from cs3collab.cs3.invites import ocm_address
from cs3collab.cs3.ocm import federated_user
from cs3collab.cs3.roles import VIEWER
from tests.conftest import DEMO_PASSWORDS
from tests.support.processes import trusting_sites


@pytest.fixture(scope="module")
async def two_sites(tmp_path_factory):
    async with trusting_sites(tmp_path_factory.mktemp("contacts")) as (a, b):
        async with CS3Client(a.gateway) as ca, CS3Client(b.gateway) as cb:
            yield ca, cb


async def test_invitation_makes_contacts_on_both_sides(two_sites):
    client_a, client_b = two_sites
    einstein = await client_a.login("einstein", DEMO_PASSWORDS["einstein"])
    marie = await client_b.login("marie", DEMO_PASSWORDS["marie"])
    token = await einstein.invites.generate("for Marie", expires_in=600)
    assert token.token in [t.token for t in await einstein.invites.list_tokens()]

    inviter = await marie.invites.forward(token.token, "cernbox.test")
    assert inviter.display_name == "Albert Einstein"
    assert (inviter.id.idp, inviter.id.type) == ("cernbox.test", identity.USER_TYPE_FEDERATED)
    assert ocm_address(inviter) == f"{einstein.user.id.opaque_id}@cernbox.test"

    [seen_by_einstein] = await einstein.invites.find_accepted_users("marie")
    assert seen_by_einstein.display_name == "Marie Curie"
    assert (seen_by_einstein.id.idp, seen_by_einstein.id.opaque_id) == ("cesnet.test", marie.user.id.opaque_id)
    assert [u.id for u in await marie.invites.find_accepted_users()] == [inviter.id]
    assert (await einstein.invites.get_accepted_user(seen_by_einstein.id)).mail == "marie@example.org"
    with pytest.raises(AlreadyExists):
        await marie.invites.forward(token.token, "cernbox.test")

    # a contact is a grantee for an OCM share as it is
    path = f"{await einstein.get_home()}/for-marie.ipynb"
    await einstein.files.upload(path, b"{}")
    info = await einstein.files.stat(path)
    contact = seen_by_einstein.id
    share = await einstein.ocm.create_share(info.id, federated_user(contact.opaque_id, contact.idp), VIEWER)
    assert [r.remote_share_id for r in await marie.ocm.list_received()] == [share.id.opaque_id]

    await marie.invites.delete_accepted_user(inviter.id)
    assert await marie.invites.find_accepted_users() == []
    with pytest.raises(NotFound):
        await marie.invites.get_accepted_user(inviter.id)


async def test_unknown_origin_and_token(two_sites):
    client_a, client_b = two_sites
    richard = await client_b.login("richard", DEMO_PASSWORDS["richard"])
    with pytest.raises(NotFound):  # B does not trust (know) that provider
        await richard.invites.forward("whatever", "nowhere.test")
    with pytest.raises(InvalidArgument):  # A does not know the token: Reva 3.x answers 400, as for an expired one
        await richard.invites.forward("00000000-0000-0000-0000-000000000000", "cernbox.test")
    assert await richard.invites.find_accepted_users() == []
