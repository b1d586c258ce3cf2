"""OCM 1.4 between two devstack sites: RFC 9421 signatures, JWK Sets, invite strings.

Real processes: site A (cernbox.test) and site B (cesnet.test) trust each
other and both sign (the devstack's default). A test that plays a peer signs
with that peer's key file, as the peer does. What a site admin or user would
notice: discovery says ``http-sig`` and where the keys are; a share signed by
A reaches marie at B; a tampered or unsigned one in A's name does not, with
a 401 in words and a log line naming the peer; a rotated key keeps working;
the invite string a user pastes is accepted.
"""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from cs3collab.cs3 import CS3Client
from cs3collab.cs3.errors import InvalidArgument
from cs3collab.cs3.httpsig import SigningKey
from cs3collab.cs3.invites import invite_string
from cs3collab.cs3.ocm import federated_user
from cs3collab.cs3.roles import VIEWER
from tests.support.ocm_signing import signed, site_key
from tests.support.processes import trusting_sites


@pytest.fixture(scope="module")
async def sites(tmp_path_factory):
    async with trusting_sites(tmp_path_factory.mktemp("ocm-sig")) as (a, b):
        async with httpx.AsyncClient(timeout=30) as http, CS3Client(b.gateway) as cb, CS3Client(a.gateway) as ca:
            yield a, b, http, ca, cb


def share_body(secret: str, webdav_uri: str) -> dict:
    """A Share Creation Notification from einstein at A to marie at B."""
    return {"shareWith": "marie@cesnet.test", "name": f"sig-{secret[:6]}.ipynb", "providerId": f"sig-{secret}",
            "owner": "einstein@cernbox.test", "sender": "einstein@cernbox.test", "shareType": "user",
            "resourceType": "file", "protocol": {"name": "multi", "webdav": {
                "sharedSecret": secret, "permissions": ["read"], "uri": webdav_uri}}}


async def received_ids(cb: CS3Client) -> set[str]:
    marie = await cb.login("marie", "radioactivity")
    return {s.remote_share_id for s in await marie.ocm.list_received()}


async def test_discovery_advertises_http_sig_and_the_jwks(sites):
    a, _, http, _, _ = sites
    doc = (await http.get(f"{a.http_url}/.well-known/ocm")).json()
    assert doc["apiVersion"] == "1.4.0" and "http-sig" in doc["capabilities"]
    assert doc["jwksUri"] == f"{a.http_url}/.well-known/jwks.json"
    res = await http.get(doc["jwksUri"])
    assert res.status_code == 200 and res.headers["content-type"].startswith("application/jwk-set+json")
    [jwk] = res.json()["keys"]
    assert jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and jwk["kid"] == site_key(a.data_dir).kid
    assert "d" not in jwk  # never the private part


async def test_a_signed_share_is_accepted_and_tampering_is_refused(sites):
    a, b, http, _, cb = sites
    url = f"{b.http_url}/ocm/shares"
    key = site_key(a.data_dir)
    body = share_body(uuid.uuid4().hex, f"{a.http_url}/remote.php/dav/ocm/x")
    good = await http.post(url, **signed(key, url, json=body))
    assert good.status_code == 201, good.text
    assert body["providerId"] in await received_ids(cb)

    # the body changed after signing (the Content-Digest no longer matches it)
    forged = share_body(uuid.uuid4().hex, "https://evil.example/dav")
    request = signed(key, url, json=forged)
    tampered = {**request, "content": json.dumps({**forged, "name": "other.ipynb"}).encode()}
    res = await http.post(url, **tampered)
    assert res.status_code == 401 and "HTTP signature refused" in res.json()["message"]
    # ... and with a digest made to match the new body: the signature covers the digest
    changed = json.dumps({**forged, "name": "other.ipynb"}).encode()
    other = SigningKey.generate().sign("POST", url, {"Content-Type": "application/json"}, changed)
    res = await http.post(url, content=changed,
                          headers={**request["headers"], "Content-Digest": other["Content-Digest"]})
    assert res.status_code == 401
    # a covered header component changed: signed for another route of B
    res = await http.post(url, content=request["content"],
                          headers=signed(key, f"{b.http_url}/ocm/notifications", json=forged)["headers"])
    assert res.status_code == 401
    # signed by a key A never published
    res = await http.post(url, **signed(SigningKey.generate(), url, json=forged))
    assert res.status_code == 401 and "unknown keyid" in res.json()["message"]
    assert forged["providerId"] not in await received_ids(cb)
    await b.running.wait_for_output("ocm signature refused peer=cernbox.test route=/shares", count=4, timeout=30)


async def test_unsigned_requests_in_the_name_of_an_http_sig_peer_are_refused(sites):
    a, b, http, _, cb = sites
    body = share_body(uuid.uuid4().hex, f"{a.http_url}/remote.php/dav/ocm/y")
    res = await http.post(f"{b.http_url}/ocm/shares", json=body)
    assert res.status_code == 401
    assert res.json()["message"] == "HTTP signature refused: cernbox.test advertises http-sig but the request is unsigned"
    assert body["providerId"] not in await received_ids(cb)
    res = await http.post(f"{a.http_url}/ocm/invite-accepted", json={
        "token": "whatever", "userID": "mallory", "recipientProvider": "cesnet.test", "name": "", "email": ""})
    assert res.status_code == 401 and res.json()["code"] == "UNAUTHENTICATED"
    await a.running.wait_for_output("ocm signature refused peer=cesnet.test route=/invite-accepted", timeout=30)


async def test_real_traffic_between_the_sites_is_signed_and_a_rotated_key_is_fetched_again(sites, tmp_path):
    a, b, http, ca, cb = sites
    einstein = await ca.login("einstein", "relativity")
    home = await einstein.get_home()

    async def share_one() -> str:
        path = f"{home}/rot-{uuid.uuid4().hex[:8]}.ipynb"
        await einstein.files.upload(path, b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
        info = await einstein.files.stat(path)
        share = await einstein.ocm.create_share(info.id, federated_user("marie", "cesnet.test"), VIEWER)
        return share.id.opaque_id

    first = await share_one()  # B verifies A's signature with A's published key
    assert first in await received_ids(cb)
    await b.running.wait_for_output("ocm jwks fetched peer=cernbox.test", timeout=30)
    old_kid = site_key(a.data_dir).kid

    # A rotates its key (a new key file); B holds A's old JWK Set in its cache
    new = SigningKey.generate()
    new.write(a.data_dir / "ocm-signing-key.pem")
    second = await share_one()
    assert second in await received_ids(cb)
    await b.running.wait_for_output("ocm jwks fetched peer=cernbox.test keys=2 reason=unknown keyid", timeout=30)
    kids = [k["kid"] for k in (await http.get(f"{a.http_url}/.well-known/jwks.json")).json()["keys"]]
    assert kids == [new.kid, old_kid]  # the old key stays published for what was signed just before
    await a.running.wait_for_output(f"ocm signing key rotated kid={new.kid}", timeout=30)


async def test_the_ocm_1_4_invite_string_is_accepted(sites):
    a, b, _, ca, cb = sites
    einstein = await ca.login("einstein", "relativity")
    marie = await cb.login("marie", "radioactivity")
    token = await einstein.invites.generate("as a string")
    pasted = invite_string(token.token, "cernbox.test")  # what einstein sends marie
    assert "@" not in pasted and pasted.rstrip("=") == pasted
    contact = await marie.invites.forward(pasted)  # no provider given: the string names it
    assert (contact.id.idp, contact.display_name) == ("cernbox.test", "Albert Einstein")
    with pytest.raises(InvalidArgument, match="the invitation is from cernbox.test, not cesnet.test"):
        await marie.invites.forward(invite_string(token.token, "cernbox.test"), "cesnet.test")
    with pytest.raises(InvalidArgument, match="not an OCM invite string"):
        await marie.invites.forward("no-provider-here")
    # the inviting site also takes the string as the token of /invite-accepted (signed, as B signs)
    again = await einstein.invites.generate("string at the endpoint")
    url = f"{a.http_url}/ocm/invite-accepted"
    async with httpx.AsyncClient(timeout=30) as http:
        res = await http.post(url, **signed(site_key(b.data_dir), url, json={
            "token": invite_string(again.token, "cernbox.test"), "userID": "string-user",
            "recipientProvider": "cesnet.test", "name": "", "email": ""}))
    assert res.status_code == 200, res.text
    assert res.json()["name"] == "Albert Einstein"
