"""Authentication, tokens, users, homes and the auth interceptor."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from cs3.gateway.v1beta1 import gateway_api_pb2 as gw
from cs3.identity.user.v1beta1 import resources_pb2 as user_res
from cs3.identity.user.v1beta1 import user_api_pb2 as user_api
from cs3.rpc.v1beta1 import code_pb2
from cs3.sharing.ocm.v1beta1 import ocm_api_pb2 as ocm_api
from cs3.storage.provider.v1beta1 import provider_api_pb2 as sp_api

from .conftest import OK, connect, path_ref, run_devstack


async def test_basic_login_gives_user_of_the_site_domain(cs3):
    res = await cs3.stub.Authenticate(gw.AuthenticateRequest(type="basic", client_id="einstein",
                                                            client_secret="relativity"))
    assert res.status.code == OK
    assert res.token
    assert res.user.username == "einstein"
    assert res.user.id.idp == "site-a.test"
    assert res.user.id.type == user_res.USER_TYPE_PRIMARY
    assert res.user.mail == "einstein@example.org"


@pytest.mark.parametrize("user,secret", [("einstein", "wrong"), ("nobody", "relativity"), ("einstein", "")])
async def test_bad_credentials_are_permission_denied(cs3, user, secret):
    res = await cs3.stub.Authenticate(gw.AuthenticateRequest(type="basic", client_id=user, client_secret=secret))
    assert res.status.code == code_pb2.CODE_PERMISSION_DENIED
    assert not res.token


async def test_bearer_login_gives_a_fresh_token_for_the_same_user(cs3, einstein):
    res = await cs3.stub.Authenticate(gw.AuthenticateRequest(type="bearer", client_secret=einstein))
    assert res.status.code == OK
    assert res.token and res.token != einstein
    who = await cs3.stub.WhoAmI(gw.WhoAmIRequest(token=res.token), metadata=cs3.md(res.token))
    assert who.user.username == "einstein"
    bad = await cs3.stub.Authenticate(gw.AuthenticateRequest(type="bearer", client_secret=einstein + "x"))
    assert bad.status.code == code_pb2.CODE_PERMISSION_DENIED


async def test_unknown_auth_type_is_internal_as_in_reva(cs3):
    res = await cs3.stub.Authenticate(gw.AuthenticateRequest(type="kerberos", client_id="a", client_secret="b"))
    assert res.status.code == code_pb2.CODE_INTERNAL


async def test_whoami(cs3, marie):
    res = await cs3.stub.WhoAmI(gw.WhoAmIRequest(token=marie), metadata=cs3.md(marie))
    assert res.status.code == OK and res.user.username == "marie"
    # WhoAmI is protected in Reva (not in the gateway's UnprotectedEndpoints): the
    # interceptor refuses it without the x-access-token metadata, and a bad token
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await cs3.stub.WhoAmI(gw.WhoAmIRequest(token=marie))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED and "core access token not found" in err.value.details()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await cs3.stub.WhoAmI(gw.WhoAmIRequest(token="not-a-token"), metadata=cs3.md("not-a-token"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # a valid caller asking about another token: the token in the request is checked
    res = await cs3.stub.WhoAmI(gw.WhoAmIRequest(token="not-a-token"), metadata=cs3.md(marie))
    assert res.status.code == code_pb2.CODE_UNAUTHENTICATED


async def test_missing_token_is_grpc_unauthenticated(cs3):
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await cs3.stub.Stat(sp_api.StatRequest(ref=path_ref("/home/einstein")))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_forged_token_is_grpc_permission_denied_as_in_reva(cs3, einstein):
    header, payload, _ = einstein.split(".")
    for forged in ("garbage", f"{header}.{payload}.AAAA"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await cs3.stub.Stat(sp_api.StatRequest(ref=path_ref("/home/einstein")), metadata=cs3.md(forged))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_token_of_another_site_is_refused(cs3, tmp_path):
    async with run_devstack(tmp_path / "b", "--domain", "site-b.test") as other, connect(other) as b:
        foreign = await b.login("einstein")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await cs3.stub.GetHome(sp_api.GetHomeRequest(), metadata=cs3.md(foreign))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        res = await b.stub.GetUser(user_api.GetUserRequest(user_id=user_res.UserId(
            idp="site-b.test", opaque_id="4c510ada-c86b-4815-8820-42cdf82c3d51")))
        assert res.status.code == OK and res.user.id.idp == "site-b.test"


async def test_every_site_serves_ocm_calls(cs3, einstein):
    res = await cs3.stub.ListOCMShares(ocm_api.ListOCMSharesRequest(), metadata=cs3.md(einstein))
    assert res.status.code == OK and list(res.shares) == []


async def test_home_exists_from_the_start_and_is_owned(cs3, richard):
    home = await cs3.home(richard)
    assert home == "/home/richard"
    res = await cs3.stat(richard, path_ref(home))
    assert res.status.code == OK
    assert res.info.owner.opaque_id == "932b4540-8d16-481e-8ef4-588e4b6b151c"
    assert res.info.id.space_id == res.info.id.opaque_id == res.info.owner.opaque_id
    assert res.info.permission_set.add_grant and res.info.permission_set.delete


async def test_get_user_and_find_users(cs3, einstein):
    uid = user_res.UserId(idp="site-a.test", opaque_id="f7fbf8c8-139b-4376-b307-cf0a8c2d0d9c")
    res = await cs3.stub.GetUser(user_api.GetUserRequest(user_id=uid))
    assert res.status.code == OK and res.user.username == "marie"
    res = await cs3.stub.GetUser(user_api.GetUserRequest(user_id=user_res.UserId(idp="x", opaque_id="y")))
    assert res.status.code == code_pb2.CODE_NOT_FOUND

    def query(q):
        return user_api.Filter(type=user_api.Filter.TYPE_QUERY, query=q)

    async def find(*filters):
        res = await cs3.stub.FindUsers(user_api.FindUsersRequest(filters=list(filters)), metadata=cs3.md(einstein))
        return res.status.code, [u.username for u in res.users]

    assert await find(query("RIE")) == (OK, ["marie"])  # username and display name, any case
    assert await find(query("feynman")) == (OK, ["richard"])
    assert await find(query("example.org")) == (OK, ["einstein", "marie", "richard"])
    assert await find(query("nobody-here")) == (OK, [])
    usertype = user_api.Filter(type=user_api.Filter.TYPE_USERTYPE, usertype=user_res.USER_TYPE_FEDERATED)
    assert await find(query("e"), usertype) == (OK, [])
    assert (await find())[0] == code_pb2.CODE_INVALID_ARGUMENT


async def test_expired_token_is_refused(tmp_path):
    # 5 s: the three calls before expiry must fit in it on a loaded machine (1 s did not, L7)
    async with run_devstack(tmp_path / "short", "--token-lifetime", "5") as short, connect(short) as c:
        token = await c.login("einstein")
        assert (await c.upload(token, path_ref("/home/einstein/f.txt"), b"x")).status_code == 200
        init = await c.initiate_download(token, path_ref("/home/einstein/f.txt"))
        assert init.status.code == OK
        deadline = time.monotonic() + 30
        while True:  # bounded wait on the real clock for the 5 s lifetime to pass (expiry is no event)
            try:
                await c.stat(token, path_ref("/home/einstein"))
            except grpc.aio.AioRpcError as e:
                assert e.code() == grpc.StatusCode.PERMISSION_DENIED
                break
            assert time.monotonic() < deadline, "token never expired"
            await asyncio.sleep(0.2)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await c.stub.WhoAmI(gw.WhoAmIRequest(token=token), metadata=c.md(token))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert (await c.get(token, init)).status_code == 401  # data server: expired access token
        fresh = await c.login("einstein")
        assert (await c.get(fresh, init)).status_code == 200  # the transfer token lives longer
