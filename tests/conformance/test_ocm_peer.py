"""OCM conformance both ways: a Reva-3.12-shaped peer against our devstack and service.

Site A is a devstack (``cernbox.test``) with its collaboration service; the
peer (``tests/conformance/reva_peer.py``, ``peer.test``) stands for a Reva
3.12 site. Checked: A accepts the peer's invitation answer with an empty name
and mail; A's share reaches the peer in the form Reva 3.12 validates (the
1.2+ webapp with ``must-exchange-token``); the peer exchanges the code at
A's ``tokenEndPoint`` and uses the token with A's service (session and the
browser view of the webapp ``uri``); A takes the peer's Reva-shaped share
and refuses its legacy webapp form; removing the share notifies the peer.
"""

from __future__ import annotations

import uuid
from contextlib import AsyncExitStack
from urllib.parse import quote

import httpx
import pytest

from cs3collab.cs3 import CS3Client
from cs3collab.cs3.ocm import federated_user
from cs3collab.cs3.roles import EDITOR
from cs3collab.devstack.ocm_peers import PeerSite, write_providers
from tests.conformance import reva_peer
from tests.support.processes import devstack, service

NOTEBOOK = b'{"cells": [{"cell_type": "code", "execution_count": null, "id": "c1", "metadata": {}, ' \
           b'"outputs": [], "source": "x = 42"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


@pytest.fixture(scope="module")
async def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("ocm-peer")
    state = reva_peer.PeerState()
    server = reva_peer.start_peer(state)
    providers = root / "ocm-providers.json"
    try:
        async with AsyncExitStack() as stack:
            a = await stack.enter_async_context(devstack(root / "a", domain="cernbox.test",
                                                         extra=("--ocm-providers", str(providers))))
            svc = await stack.enter_async_context(service(a.gateway, root / "svc-a"))
            write_providers(providers, [PeerSite(a.domain, a.http_url, webapp_url=svc.url),
                                        PeerSite(reva_peer.DOMAIN, state.url)])
            client = await stack.enter_async_context(CS3Client(a.gateway))
            einstein = await client.login("einstein", "relativity")
            yield a, svc, einstein, state
    finally:
        server.stop()


async def test_a_reva_peer_accepts_our_invitation_and_share_and_uses_the_code_flow(world):
    a, svc, einstein, peer = world
    async with httpx.AsyncClient(timeout=10) as http:
        # invitation: the peer answers with an empty name and mail, as Reva may
        invite = await einstein.invites.generate("conformance")
        accepted = await http.post(f"{a.http_url}/ocm/invite-accepted", json={
            "token": invite.token, "userID": "alice-id", "recipientProvider": reva_peer.DOMAIN,
            "name": "", "email": ""})
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["userID"] == einstein.user.id.opaque_id
        unknown = await http.post(f"{a.http_url}/ocm/invite-accepted", json={
            "token": "nope", "userID": "alice-id", "recipientProvider": reva_peer.DOMAIN})
        assert unknown.status_code == 400  # Reva 3.x: INVALID_ARGUMENT, not 404

        # our share, as the peer's ocmd validates it
        path = f"{await einstein.get_home()}/peer-{uuid.uuid4().hex[:8]}.ipynb"
        await einstein.files.upload(path, NOTEBOOK)
        info = await einstein.files.stat(path)
        share = await einstein.ocm.create_share(info.id, federated_user("alice-id", reva_peer.DOMAIN), EDITOR)
        [body] = [s for s in peer.shares if s["providerId"] == share.id.opaque_id]
        webapp = body["protocol"]["webapp"]
        assert webapp["uri"] == f"{svc.url}/api/collaboration/ocm/{share.id.opaque_id}"
        assert webapp["requirements"] == ["must-exchange-token"] and webapp["targets"] == ["blank"]
        assert set(webapp["permissions"]) == {"read", "write"} and "uriTemplate" not in webapp
        assert share.token not in webapp["uri"]

        # the peer's code flow at A's tokenEndPoint, then A's service with the token
        discovery = (await http.get(f"{a.http_url}/.well-known/ocm")).json()
        answer = await http.post(discovery["tokenEndPoint"], data={
            "grant_type": "authorization_code", "code": webapp["sharedSecret"], "client_id": reva_peer.DOMAIN})
        assert answer.status_code == 200, answer.text
        token = answer.json()["access_token"]
        session = await http.put(f"{svc.url}/api/collaboration/session/{quote('ocm:' + share.id.opaque_id, safe='')}",
                                 json={"format": "json", "type": "notebook"},
                                 headers={"Authorization": f"Bearer {token}"})
        assert session.status_code == 200, session.text
        page = await http.post(webapp["uri"], data={"access_token": token})
        assert page.status_code == 200 and "x = 42" in page.text and "can edit" in page.text
        bare = await http.put(f"{svc.url}/api/collaboration/session/{quote('ocm:' + share.id.opaque_id, safe='')}",
                              json={"format": "json", "type": "notebook"},
                              headers={"Authorization": f"OCM {share.id.opaque_id}:{webapp['sharedSecret']}"})
        assert bare.status_code == 401

    # removing the share tells the peer
    await einstein.ocm.remove_share(share.id.opaque_id)
    assert any(n.get("notificationType") == "SHARE_UNSHARED" and n.get("providerId") == share.id.opaque_id
               for n in peer.notifications)


async def test_a_reva_peers_share_is_received_and_its_legacy_webapp_refused(world):
    a, _, einstein, peer = world
    me = f"{einstein.user.id.opaque_id}@cernbox.test"
    provider_id = f"p-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(timeout=10) as http:
        ok = await http.post(f"{a.http_url}/ocm/shares",
                             json=reva_peer.reva_share(provider_id, me, "alice-id", "s3cr3t", peer.url))
        assert ok.status_code == 201, ok.text
        legacy = reva_peer.reva_share("p-legacy", me, "alice-id", "s3cr3t", peer.url)
        legacy["protocol"]["webapp"] = {"uriTemplate": f"{peer.url}/app/p-legacy", "viewMode": "read",
                                        "sharedSecret": "s3cr3t"}
        refused = await http.post(f"{a.http_url}/ocm/shares", json=legacy)
        assert refused.status_code == 400 and refused.json()["validationErrors"][0]["name"] == "protocol.webapp.uri"
    [received] = [r for r in await einstein.ocm.list_received() if r.remote_share_id == provider_id]
    [app] = [p.webapp_options for p in received.protocols if p.HasField("webapp_options")]
    assert list(app.requirements) == ["must-exchange-token"] and list(app.targets) == ["blank"]
    assert app.share_permissions.initiate_file_upload and app.app_name == "cs3collab"


async def test_unsigned_reva_peer_against_a_site_that_requires_signatures(world, tmp_path):
    """Reva 3.x signs nothing: a site with --ocm-require-signatures refuses its
    share with a 401 in words, a site with --ocm-http-sig off looks like Reva 3.x."""
    _, _, einstein, peer = world
    me = f"{einstein.user.id.opaque_id}@strict.test"
    async with devstack(tmp_path / "strict", domain="strict.test",
                        extra=("--peer", f"{reva_peer.DOMAIN}={peer.url}", "--ocm-require-signatures")) as strict, \
            devstack(tmp_path / "plain", domain="plain.test", extra=("--ocm-http-sig", "off")) as plain:
        async with httpx.AsyncClient(timeout=10) as http:
            refused = await http.post(f"{strict.http_url}/ocm/shares",
                                      json=reva_peer.reva_share("p-strict", me, "alice-id", "s3cr3t", peer.url))
            assert refused.status_code == 401
            assert refused.json()["message"] == ("HTTP signature refused: this site requires signed OCM requests "
                                                 "and the request is unsigned")
            doc = (await http.get(f"{plain.http_url}/.well-known/ocm")).json()
            assert doc["apiVersion"] == "1.3.0" and "http-sig" not in doc["capabilities"] and "jwksUri" not in doc
            assert (await http.get(f"{plain.http_url}/.well-known/jwks.json")).status_code == 404
        await strict.running.wait_for_output("ocm signature refused peer=peer.test route=/shares", timeout=30)
