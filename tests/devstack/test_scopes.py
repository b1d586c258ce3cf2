"""Scoped tokens and extension points, for the OCM part (in-process site,
real gRPC and HTTP)."""

from __future__ import annotations

import grpc
import httpx
from cs3.auth.provider.v1beta1 import resources_pb2 as auth_res
from cs3.gateway.v1beta1 import gateway_api_pb2 as gw
from cs3.gateway.v1beta1 import gateway_api_pb2_grpc as gw_grpc
from cs3.identity.user.v1beta1 import resources_pb2 as user_res
from cs3.rpc.v1beta1 import code_pb2

from cs3collab.devstack import DevstackSite

from .conftest import OK, Client, Stack, id_ref, path_ref

FEDERATED = user_res.User(username="alice", display_name="Alice",
                          id=user_res.UserId(idp="other-site.test", opaque_id="alice-id",
                                             type=user_res.USER_TYPE_FEDERATED))


async def test_scoped_tokens_see_only_their_resource_with_their_role(tmp_path):
    registered = []

    def extension(site):
        async def magic(client_id, client_secret):
            return FEDERATED, None
        site.auth_providers.register("magic", magic)
        registered.append(site)

    async with DevstackSite(tmp_path, domain="site-a.test", extensions=[extension]) as site:
        assert registered == [site]
        async with grpc.aio.insecure_channel(site.gateway_address) as ch, httpx.AsyncClient() as http:
            c = Client(Stack(site.gateway_address, site.http_url, site.domain, tmp_path), ch, http)
            owner = await c.login("einstein")
            await c.mkdir(owner, path_ref("/home/einstein/shared"))
            await c.upload(owner, path_ref("/home/einstein/shared/nb.ipynb"), b"nb")
            await c.upload(owner, path_ref("/home/einstein/private.txt"), b"p")
            folder = (await c.stat(owner, path_ref("/home/einstein/shared"))).info
            private = (await c.stat(owner, path_ref("/home/einstein/private.txt"))).info

            viewer = site.tokens.mint_scoped(FEDERATED, folder.id, auth_res.ROLE_VIEWER)
            res = await c.stat(viewer, id_ref(folder.id, "./nb.ipynb"))
            assert res.status.code == OK
            assert res.info.path == "./nb.ipynb"
            assert res.info.permission_set.initiate_file_download and not res.info.permission_set.initiate_file_upload
            assert await c.download(viewer, id_ref(folder.id, "./nb.ipynb")) == b"nb"
            assert (await c.initiate_upload(viewer, id_ref(folder.id, "./nb.ipynb"))).status.code == \
                code_pb2.CODE_PERMISSION_DENIED
            for ref in (id_ref(private.id), path_ref("/home/einstein/private.txt"), path_ref("/home/einstein")):
                assert (await c.stat(viewer, ref)).status.code == code_pb2.CODE_NOT_FOUND
            who = await c.stub.WhoAmI(gw.WhoAmIRequest(token=viewer), metadata=c.md(viewer))
            assert who.user.id.type == user_res.USER_TYPE_FEDERATED and who.user.id.idp == "other-site.test"

            editor = site.tokens.mint_scoped(FEDERATED, folder.id, auth_res.ROLE_EDITOR)
            assert (await c.upload(editor, id_ref(folder.id, "./nb.ipynb"), b"nb2")).status_code == 200
            assert await c.download(owner, path_ref("/home/einstein/shared/nb.ipynb")) == b"nb2"
            # an owner-scoped token of the federated user reaches nothing: it has no space here
            plain = site.tokens.mint(FEDERATED)
            assert (await c.stat(plain, id_ref(folder.id))).status.code == code_pb2.CODE_NOT_FOUND

            # a registered Authenticate type
            res = await c.stub.Authenticate(gw.AuthenticateRequest(type="magic", client_id="x", client_secret="y"))
            assert res.status.code == OK and res.user.username == "alice"

            info = await site.stat_by_id(folder.id, (await c.stub.WhoAmI(gw.WhoAmIRequest(token=owner),
                                                                     metadata=c.md(owner))).user)
            assert info.path == "/home/einstein/shared"


async def test_a_site_may_let_ocm_tokens_list_versions(tmp_path):
    """``--ocm-scope-extra ListFileVersions``: a site that patched Reva's ocmshare
    scope. The method gate lets such a token through for that method only (what
    it may reach is still decided per share: an unknown share reaches nothing)."""
    from cs3.storage.provider.v1beta1 import provider_api_pb2 as sp_api

    from cs3collab.devstack.ocm_gateway import OCMSettings

    async with DevstackSite(tmp_path, domain="site-a.test",
                            ocm=OCMSettings(extra_scope_methods=("ListFileVersions",))) as site:
        token = site.tokens.mint(FEDERATED, {"ocmshare:no-such-share": auth_res.Scope(role=auth_res.ROLE_VIEWER)})
        md = (("x-access-token", token),)
        async with grpc.aio.insecure_channel(site.gateway_address) as ch:
            stub = gw_grpc.GatewayAPIStub(ch)
            res = await stub.ListFileVersions(sp_api.ListFileVersionsRequest(ref=path_ref("/home/einstein/x")),
                                              metadata=md)
            assert res.status.code == code_pb2.CODE_NOT_FOUND  # through the gate; outside its share: nothing
            try:
                await stub.WhoAmI(gw.WhoAmIRequest(token=token), metadata=md)
                raise AssertionError("WhoAmI passed the ocmshare scope")
            except grpc.aio.AioRpcError as err:
                assert err.code() == grpc.StatusCode.PERMISSION_DENIED and "WhoAmI" in err.details()
