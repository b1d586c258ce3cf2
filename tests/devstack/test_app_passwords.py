"""App passwords with a resourceinfo token scope and the ``appauth`` login
(Reva's applicationauth), over raw gRPC: the authority a shared kernel gets."""

from __future__ import annotations

import time

import grpc
import pytest
from cs3.auth.applications.v1beta1 import applications_api_pb2 as app_api
from cs3.auth.provider.v1beta1 import resources_pb2 as auth_res
from cs3.gateway.v1beta1 import gateway_api_pb2 as gw
from cs3.rpc.v1beta1 import code_pb2
from cs3.sharing.collaboration.v1beta1 import collaboration_api_pb2 as collab
from cs3.sharing.collaboration.v1beta1 import resources_pb2 as share_res
from cs3.storage.provider.v1beta1 import provider_api_pb2 as sp_api
from cs3.types.v1beta1 import types_pb2

from cs3collab.devstack.app_passwords import resource_info_scope

from .conftest import OK, id_ref, path_ref
from .roles import EDITOR, VIEWER
from .test_shares import share_with

NOT_FOUND = code_pb2.CODE_NOT_FOUND


async def generate(cs3, token, scopes, expect=OK, **fields):
    res = await cs3.stub.GenerateAppPassword(app_api.GenerateAppPasswordRequest(token_scope=scopes, **fields),
                                             metadata=cs3.md(token))
    assert res.status.code == expect, res.status
    return res.app_password


async def appauth(cs3, username, password, expect=OK):
    res = await cs3.stub.Authenticate(gw.AuthenticateRequest(type="appauth", client_id=username,
                                                             client_secret=password))
    assert res.status.code == expect, res.status
    return res.token


async def test_a_resourceinfo_app_password_reaches_its_folder_only(cs3, einstein, marie, workdir):
    await cs3.mkdir(einstein, path_ref(f"{workdir}/higgs"))
    await cs3.upload(einstein, path_ref(f"{workdir}/higgs/events.csv"), b"125")
    await cs3.upload(einstein, path_ref(f"{workdir}/private.txt"), b"secret")
    folder = (await cs3.stat(einstein, path_ref(f"{workdir}/higgs"))).info
    private = (await cs3.stat(einstein, path_ref(f"{workdir}/private.txt"))).info

    password = await generate(cs3, einstein, resource_info_scope(folder, auth_res.ROLE_EDITOR), label="kernel")
    assert password.password and password.label == "kernel" and password.user.opaque_id
    scoped = await appauth(cs3, "einstein", password.password)
    res = await cs3.stat(scoped, id_ref(folder.id, "./events.csv"))
    assert res.status.code == OK and res.info.path == "./events.csv"
    assert await cs3.download(scoped, id_ref(folder.id, "./events.csv")) == b"125"
    assert (await cs3.upload(scoped, id_ref(folder.id, "./fit.txt"), b"fit")).status_code == 200
    for ref in (id_ref(private.id), path_ref(f"{workdir}/private.txt"), path_ref(workdir), path_ref("/home/marie")):
        assert (await cs3.stat(scoped, ref)).status.code == NOT_FOUND
    listing = await cs3.stub.ListContainer(sp_api.ListContainerRequest(ref=path_ref(workdir)), metadata=cs3.md(scoped))
    assert listing.status.code == NOT_FOUND
    # calls outside the scope's method list are refused by the interceptor
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await cs3.stub.GenerateAppPassword(app_api.GenerateAppPasswordRequest(
            token_scope=resource_info_scope(folder, auth_res.ROLE_EDITOR)), metadata=cs3.md(scoped))
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED

    # listed (the digest, as Reva lists the hash), then invalidated: no more logins
    listed = await cs3.stub.ListAppPasswords(app_api.ListAppPasswordsRequest(), metadata=cs3.md(einstein))
    mine = [p for p in listed.app_passwords if p.label == "kernel"]
    assert mine and all(p.password != password.password for p in mine)
    res = await cs3.stub.InvalidateAppPassword(app_api.InvalidateAppPasswordRequest(password=password.password),
                                               metadata=cs3.md(einstein))
    assert res.status.code == OK
    await appauth(cs3, "einstein", password.password, expect=code_pb2.CODE_PERMISSION_DENIED)


async def test_scopes_a_caller_could_not_use_are_refused(cs3, einstein, marie, workdir):
    await cs3.mkdir(einstein, path_ref(f"{workdir}/data"))
    folder = (await cs3.stat(einstein, path_ref(f"{workdir}/data"))).info
    # not hers
    await generate(cs3, marie, resource_info_scope(folder, auth_res.ROLE_VIEWER), expect=NOT_FOUND)
    # nothing, another kind, or an expiration in the past
    await generate(cs3, einstein, {}, expect=code_pb2.CODE_INVALID_ARGUMENT)
    await generate(cs3, einstein, {"publicshare:x": auth_res.Scope(role=auth_res.ROLE_VIEWER)},
                   expect=code_pb2.CODE_INVALID_ARGUMENT)
    await generate(cs3, einstein, resource_info_scope(folder, auth_res.ROLE_VIEWER),
                   expect=code_pb2.CODE_INVALID_ARGUMENT, expiration=types_pb2.Timestamp(seconds=int(time.time()) - 5))
    # a viewer share gives a viewer scope, not an editor one
    share = await share_with(cs3, einstein, folder, "marie", VIEWER)
    await generate(cs3, marie, resource_info_scope(folder, auth_res.ROLE_EDITOR), expect=code_pb2.CODE_PERMISSION_DENIED)
    viewer = await generate(cs3, marie, resource_info_scope(folder, auth_res.ROLE_VIEWER))
    token = await appauth(cs3, "marie", viewer.password)
    assert (await cs3.stat(token, id_ref(folder.id))).status.code == OK
    assert (await cs3.initiate_upload(token, id_ref(folder.id, "./x.txt"))).status.code == code_pb2.CODE_PERMISSION_DENIED
    # removing her share ends the scoped token's reach at its next call
    res = await cs3.stub.RemoveShare(collab.RemoveShareRequest(
        ref=share_res.ShareReference(id=share.id)), metadata=cs3.md(einstein))
    assert res.status.code == OK
    assert (await cs3.stat(token, id_ref(folder.id))).status.code == NOT_FOUND


async def test_an_editor_share_gives_an_editor_scope(cs3, einstein, marie, workdir):
    await cs3.mkdir(einstein, path_ref(f"{workdir}/shared"))
    folder = (await cs3.stat(einstein, path_ref(f"{workdir}/shared"))).info
    await share_with(cs3, einstein, folder, "marie", EDITOR)
    password = await generate(cs3, marie, resource_info_scope(folder, auth_res.ROLE_EDITOR))
    token = await appauth(cs3, "marie", password.password)
    assert (await cs3.upload(token, id_ref(folder.id, "./by-marie.txt"), b"m")).status_code == 200
    assert await cs3.download(einstein, path_ref(f"{workdir}/shared/by-marie.txt")) == b"m"
    assert (await cs3.stat(token, path_ref("/home/marie"))).status.code == NOT_FOUND  # not even her own home
