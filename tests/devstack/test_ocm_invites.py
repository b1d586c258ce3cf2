"""OCM invitations between devstack sites, through the raw gateway stubs
and the spec's ``POST /ocm/invite-accepted``.

Sites A (``cernbox.test``) and B (``cesnet.test``) trust each other through
a providers file; site C (``untrusted.test``) trusts A, but A does not
know C.
"""

from __future__ import annotations

import contextlib
import time
import uuid

import grpc
import httpx
import pytest
from cs3.identity.user.v1beta1 import resources_pb2 as user_res
from cs3.ocm.invite.v1beta1 import invite_api_pb2 as invite_api
from cs3.ocm.invite.v1beta1 import resources_pb2 as invite_res
from cs3.ocm.provider.v1beta1 import provider_api_pb2 as provider_api
from cs3.ocm.provider.v1beta1 import resources_pb2 as provider_res
from cs3.rpc.v1beta1 import code_pb2
from cs3.types.v1beta1 import types_pb2

from tests.support.ocm_signing import signed, site_key
from tests.support.processes import devstack, trusting_sites

from .conftest import OK, Client, Stack
from .test_shares import USER_IDS

FEDERATED = user_res.USER_TYPE_FEDERATED


@pytest.fixture(scope="module")
async def sites(tmp_path_factory):
    root = tmp_path_factory.mktemp("invites")
    async with contextlib.AsyncExitStack() as stack:
        a, b = await stack.enter_async_context(trusting_sites(root))
        c = await stack.enter_async_context(devstack(root / "c", domain="untrusted.test",
                                                     extra=("--peer", f"cernbox.test={a.http_url}")))
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
        clients = []
        for site in (a, b, c):
            channel = await stack.enter_async_context(grpc.aio.insecure_channel(site.gateway))
            clients.append(Client(Stack(site.gateway, site.http_url, site.domain, site.data_dir), channel, http))
        yield tuple(clients)


async def generate(cs3: Client, token: str, description: str = "", expires_in: str = "") -> invite_res.InviteToken:
    opaque = types_pb2.Opaque(map={"expires_in": types_pb2.OpaqueEntry(decoder="plain", value=expires_in.encode())}) \
        if expires_in else None
    res = await cs3.stub.GenerateInviteToken(invite_api.GenerateInviteTokenRequest(
        description=description, opaque=opaque), metadata=cs3.md(token))
    assert res.status.code == OK, res.status
    return res.invite_token


async def forward(cs3: Client, token: str, invite: str, origin: str):
    info = await cs3.stub.GetInfoByDomain(provider_api.GetInfoByDomainRequest(domain=origin), metadata=cs3.md(token))
    provider = info.provider_info if info.status.code == OK else provider_res.ProviderInfo(domain=origin)
    return await cs3.stub.ForwardInvite(invite_api.ForwardInviteRequest(
        invite_token=invite_res.InviteToken(token=invite), origin_system_provider=provider), metadata=cs3.md(token))


async def contacts(cs3: Client, token: str, query: str = "") -> list[user_res.User]:
    res = await cs3.stub.FindAcceptedUsers(invite_api.FindAcceptedUsersRequest(filter=query), metadata=cs3.md(token))
    assert res.status.code == OK, res.status
    return list(res.accepted_users)


async def test_invite_makes_two_users_each_others_contacts(sites):
    a, b, _ = sites
    einstein, richard_a = await a.login("einstein"), await a.login("richard")
    marie = await b.login("marie")
    invite = await generate(a, einstein, "for marie")
    assert str(uuid.UUID(invite.token)) == invite.token and invite.description == "for marie"
    assert invite.user_id.opaque_id == USER_IDS["einstein"] and invite.user_id.idp == "cernbox.test"
    assert abs(invite.expiration.seconds - (time.time() + 24 * 3600)) < 60  # Reva's 24 h default
    listed = await a.stub.ListInviteTokens(invite_api.ListInviteTokensRequest(), metadata=a.md(einstein))
    assert invite.token in [t.token for t in listed.invite_tokens]
    others = await a.stub.ListInviteTokens(invite_api.ListInviteTokensRequest(), metadata=a.md(richard_a))
    assert invite.token not in [t.token for t in others.invite_tokens]

    info = await b.stub.GetInfoByDomain(provider_api.GetInfoByDomainRequest(domain="cernbox.test"),
                                        metadata=b.md(marie))
    assert info.status.code == OK
    [service] = info.provider_info.services
    assert service.endpoint.type.name == "OCM" and service.endpoint.path == f"{a.stack.http}/ocm/"

    res = await forward(b, marie, invite.token, "cernbox.test")
    assert res.status.code == OK, res.status
    assert res.user_id == user_res.UserId(idp="cernbox.test", opaque_id=USER_IDS["einstein"], type=FEDERATED)
    assert (res.display_name, res.email) == ("Albert Einstein", "einstein@example.org")

    [marie_at_a] = await contacts(a, einstein)
    assert marie_at_a.id == user_res.UserId(idp="cesnet.test", opaque_id=USER_IDS["marie"], type=FEDERATED)
    assert (marie_at_a.display_name, marie_at_a.mail) == ("Marie Curie", "marie@example.org")
    [einstein_at_b] = await contacts(b, marie)
    assert einstein_at_b.id == res.user_id and einstein_at_b.display_name == "Albert Einstein"
    assert await contacts(a, einstein, "CURIE") == [marie_at_a]
    assert await contacts(a, einstein, "cesnet") == [marie_at_a]
    assert await contacts(a, einstein, "nobody") == []
    assert await contacts(a, richard_a) == []  # contacts are per user
    got = await a.stub.GetAcceptedUser(invite_api.GetAcceptedUserRequest(remote_user_id=marie_at_a.id),
                                       metadata=a.md(einstein))
    assert got.status.code == OK and got.remote_user == marie_at_a

    # a repeated accept is refused; the origin side keeps one entry
    again = await forward(b, marie, invite.token, "cernbox.test")
    assert again.status.code == code_pb2.CODE_ALREADY_EXISTS
    assert len(await contacts(a, einstein)) == 1

    # forgetting a contact is local and idempotent
    for _ in range(2):
        res = await b.stub.DeleteAcceptedUser(invite_api.DeleteAcceptedUserRequest(
            remote_user_id=einstein_at_b.id), metadata=b.md(marie))
        assert res.status.code == OK
    assert await contacts(b, marie) == []
    assert await contacts(a, einstein) == [marie_at_a]
    res = await b.stub.GetAcceptedUser(invite_api.GetAcceptedUserRequest(remote_user_id=einstein_at_b.id),
                                       metadata=b.md(marie))
    assert res.status.code == code_pb2.CODE_NOT_FOUND


async def test_unknown_and_expired_tokens_are_refused(sites):
    a, b, _ = sites
    einstein, richard = await a.login("einstein"), await b.login("richard")
    # Reva 3.x: an unknown token is INVALID_ARGUMENT at A (ocmd 400), as an expired one
    res = await forward(b, richard, str(uuid.uuid4()), "cernbox.test")
    assert res.status.code == code_pb2.CODE_INVALID_ARGUMENT

    # a token given a millisecond (its expiration is whole seconds, rounded down) has
    # expired by the time it comes back through two gateways (Reva: valid while now < expiration)
    short = await generate(a, einstein, expires_in="0.001")
    assert short.expiration.seconds <= time.time()
    res = await forward(b, richard, short.token, "cernbox.test")
    assert res.status.code == code_pb2.CODE_INVALID_ARGUMENT and "not valid" in res.status.message
    assert [u for u in await contacts(a, einstein) if u.id.opaque_id == USER_IDS["richard"]] == []
    assert await contacts(b, richard) == []

    bad = await a.stub.GenerateInviteToken(invite_api.GenerateInviteTokenRequest(opaque=types_pb2.Opaque(
        map={"expires_in": types_pb2.OpaqueEntry(decoder="plain", value=b"soon")})), metadata=a.md(einstein))
    assert bad.status.code == code_pb2.CODE_INVALID_ARGUMENT


async def test_untrusted_providers_are_refused(sites):
    a, b, c = sites
    einstein = await a.login("einstein")
    invite = await generate(a, einstein)
    # C trusts A, A does not trust C: A refuses, C's user gets PERMISSION_DENIED
    marie_c = await c.login("marie")
    res = await forward(c, marie_c, invite.token, "cernbox.test")
    assert res.status.code == code_pb2.CODE_PERMISSION_DENIED, res.status
    assert await contacts(c, marie_c) == []
    # B does not know the origin at all
    marie_b = await b.login("marie")
    info = await b.stub.GetInfoByDomain(provider_api.GetInfoByDomainRequest(domain="untrusted.test"),
                                        metadata=b.md(marie_b))
    assert info.status.code == code_pb2.CODE_NOT_FOUND
    res = await forward(b, marie_b, invite.token, "untrusted.test")
    assert res.status.code == code_pb2.CODE_PERMISSION_DENIED
    assert [u for u in await contacts(a, einstein) if u.id.idp == "untrusted.test"] == []


async def test_invite_accepted_endpoint(sites):
    a, b, _ = sites
    b_key = site_key(b.stack.data)  # cesnet.test advertises http-sig: its requests are signed
    einstein = await a.login("einstein")
    invite = await generate(a, einstein)
    url = f"{a.stack.http}/ocm/invite-accepted"
    body = {"token": invite.token, "userID": "alice-id", "recipientProvider": "evil.test",
            "name": "Alice", "email": "alice@evil.test"}
    res = await a.http.post(url, json=body)
    assert res.status_code == 403 and res.json()["code"] == "UNTRUSTED_SERVICE"
    res = await a.http.post(url, json={"token": invite.token})
    assert res.status_code == 400 and res.json()["code"] == "INVALID_PARAMETER"
    res = await a.http.post(url, content=b"{not json", headers={"Content-Type": "application/json"})
    assert res.status_code == 400
    res = await a.http.post(url, **signed(b_key, url, json={**body, "recipientProvider": "cesnet.test",
                                                              "token": "nope"}))
    assert res.status_code == 400 and res.json()["message"] == "token invalid or not found"
    # Reva may send an empty name and mail: only token, userID and recipientProvider are required
    empty = await a.http.post(url, **signed(b_key, url, json={**body, "recipientProvider": "cesnet.test",
                                                              "userID": "quiet-user", "name": "", "email": ""}))
    assert empty.status_code == 200, empty.text
    # the form encoding Reva also accepts; the answer names the inviting user
    form = {**body, "recipientProvider": "cesnet.test", "userID": "form-user"}
    res = await a.http.post(url, **signed(b_key, url, data=form))
    assert res.status_code == 200, res.text
    assert res.json() == {"userID": USER_IDS["einstein"], "email": "einstein@example.org", "name": "Albert Einstein"}
    res = await a.http.post(url, **signed(b_key, url, data=form))
    assert res.status_code == 409 and res.json()["code"] == "ALREADY_EXIST"
    assert "form-user" in [u.id.opaque_id for u in await contacts(a, einstein, "form-user")]
