"""The OCM code flow between two devstack sites, as Reva 3.x runs it.

Site A (``cernbox.test``) requires an accepted invitation before a grantee
may use a share (``--ocm-require-invite``, Reva's ``ocmshares`` /
``ocmsharecode`` accepted-user check); site B (``cesnet.test``) receives.
The share's secret is only a code: B exchanges it at A's ``/ocm/token``
(Reva #5552) for an access token scoped to the share, whose scope allows
neither WhoAmI nor ListFileVersions (Reva's ``ocmshare`` scope).
"""

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack

import httpx
import pytest
from cs3.gateway.v1beta1 import gateway_api_pb2 as gw
from cs3.storage.provider.v1beta1 import provider_api_pb2 as sp_api

from cs3collab.cs3 import CS3Client
from cs3collab.cs3.errors import PermissionDenied, Unauthenticated
from cs3collab.cs3.ocm import federated_user
from cs3collab.cs3.refs import to_reference
from cs3collab.cs3.roles import EDITOR
from cs3collab.demo import exchange_invite
from cs3collab.devstack.ocm_peers import PeerSite, write_providers
from tests.support.ocm_signing import exchange, signed, site_key
from tests.support.processes import devstack

PASSWORDS = {"einstein": "relativity", "marie": "radioactivity"}
NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


@pytest.fixture(scope="module")
async def sites(tmp_path_factory):
    root = tmp_path_factory.mktemp("code-flow")
    providers = root / "ocm-providers.json"
    extra = ("--ocm-providers", str(providers))
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(devstack(root / "a", domain="cernbox.test",
                                                     extra=extra + ("--ocm-require-invite",)))
        b = await stack.enter_async_context(devstack(root / "b", domain="cesnet.test", extra=extra))
        write_providers(providers, [PeerSite(a.domain, a.http_url), PeerSite(b.domain, b.http_url)])
        ca = await stack.enter_async_context(CS3Client(a.gateway))
        cb = await stack.enter_async_context(CS3Client(b.gateway))
        yield a, b, ca, cb


async def test_code_flow_needs_an_invitation_and_gives_a_scoped_token(sites):
    a, b, ca, cb = sites
    einstein = await ca.login("einstein", PASSWORDS["einstein"])
    marie = await cb.login("marie", PASSWORDS["marie"])
    path = f"{await einstein.get_home()}/flow-{uuid.uuid4().hex[:8]}.ipynb"
    await einstein.files.upload(path, NOTEBOOK)
    info = await einstein.files.stat(path)
    share = await einstein.ocm.create_share(info.id, federated_user(marie.user.id.opaque_id, "cesnet.test"), EDITOR)

    # B received the OCM 1.2+ webapp form: uri = endpoint/<share id>, must-exchange-token
    [rs] = [s for s in await marie.ocm.list_received() if s.remote_share_id == share.id.opaque_id]
    [app] = [p.webapp_options for p in rs.protocols if p.HasField("webapp_options")]
    assert app.uri == f"{a.http_url}/app/ocm/{share.id.opaque_id}" and share.token not in app.uri
    assert list(app.requirements) == ["must-exchange-token"] and list(app.targets) == ["blank"]

    # no invitation yet: the grantee is not an accepted user of einstein, so no login of any kind
    assert (await exchange(a.http_url, share.token, key=site_key(b.data_dir))).json() == {"error": "invalid_grant"}
    with pytest.raises(Unauthenticated, match="not an accepted user"):
        await ca.ocm_login(share.id.opaque_id, share.token)
    await exchange_invite(einstein, marie, "cernbox.test")

    password_grant = await exchange(a.http_url, share.token, grant="password", key=site_key(b.data_dir))
    assert password_grant.json() == {"error": "unsupported_grant_type"}
    assert (await exchange(a.http_url, "", key=site_key(b.data_dir))).json() == {"error": "invalid_grant"}
    answer = await exchange(a.http_url, share.token, key=site_key(b.data_dir))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token_type"] == "Bearer" and 0 < body["expires_in"] <= 3600
    token = body["access_token"]

    # the token works for the share's resource, through ocmexchangedtoken too
    fed = await ca.ocm_exchanged_login(share.id.opaque_id, token)
    assert fed.user.id.idp == "cesnet.test" and await fed.files.download(info.id) == NOTEBOOK
    with pytest.raises(Unauthenticated, match="scope mismatch"):  # another share's id
        await ca.ocm_exchanged_login("another-share", token)
    # Reva's ocmshare scope: neither WhoAmI nor ListFileVersions
    for method, request in (("WhoAmI", gw.WhoAmIRequest(token=token)),
                            ("ListFileVersions", sp_api.ListFileVersionsRequest(ref=to_reference(info.id)))):
        with pytest.raises(PermissionDenied, match=f"scope does not allow {method}"):
            await ca.call(method, request, token=token)

    # removing the share ends the token and the code
    await einstein.ocm.remove_share(share.id.opaque_id)
    with pytest.raises(Unauthenticated):
        await fed.files.stat(info.id)
    assert (await exchange(a.http_url, share.token, key=site_key(b.data_dir))).json() == {"error": "invalid_grant"}


async def test_legacy_webapp_payload_is_refused(sites):
    """Reva 3.12 takes only the OCM 1.2+ webapp form: the 1.1 form (uriTemplate, viewMode) is a 400."""
    a, b, _, _ = sites
    body = {"shareWith": "marie@cesnet.test", "name": "nb.ipynb", "providerId": "legacy-1",
            "owner": "einstein@cernbox.test", "sender": "einstein@cernbox.test", "shareType": "user",
            "resourceType": "file",
            "protocol": {"name": "multi", "webapp": {"uriTemplate": f"{a.http_url}/app/ocm/legacy-1",
                                                     "viewMode": "read", "sharedSecret": "s"}}}
    url = f"{b.http_url}/ocm/shares"
    async with httpx.AsyncClient(timeout=10) as http:  # signed as A signs (A advertises http-sig)
        answer = await http.post(url, **signed(site_key(a.data_dir), url, json=body))
    assert answer.status_code == 400
    assert answer.json()["validationErrors"] == [{"name": "protocol.webapp.uri", "message": "LEGACY_FORM"}]
