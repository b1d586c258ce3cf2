"""Across institutions: marie at site B co-edits einstein's notebook at site A.

marie has no account at A. Her Jupyter server (at B) exchanges the OCM
share's secret at A's /ocm/token (the code flow) and reaches A's
collaboration service with that token; the browser side
here is a pycrdt client talking only to her Jupyter server. einstein is a
pycrdt client directly on service A.
"""

from __future__ import annotations

import uuid

import anyio
import httpx
import pytest
import websockets
from urllib.parse import quote

from cs3collab.cs3 import CS3Client, roles
from cs3collab.cs3.ocm import federated_user
from cs3collab.service import ids
from tests.conftest import DEMO_PASSWORDS
from tests.federation.conftest import SHARED, room_through_lab
from tests.service.rtc import eventually, sources, type_text
from tests.support.ocm_signing import exchange, site_key
from tests.support.yclient import connect, send_awareness, wait_for


async def _versions(fed, file_id: str) -> list[dict]:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{fed.svc_a.url}/api/collaboration/versions/{quote(file_id, safe='')}",
                                  headers={"Authorization": f"Bearer {fed.einstein.token}"})
    response.raise_for_status()
    return response.json()["versions"]


async def test_coedit_presence_and_saves_at_a(fed):
    path, info, share = await fed.share(roles.EDITOR, "x = 1", "y = 2")
    api_path = f"{SHARED}/{info.name}"
    async with fed.lab_b.http() as http:
        listing = (await http.get(f"/api/contents/{quote(SHARED)}")).json()
        [entry] = [m for m in listing["content"] if m["name"] == info.name]
        assert (entry["type"], entry["writable"]) == ("notebook", True)
        model = (await http.get(f"/api/contents/{quote(api_path)}", params={"content": 1})).json()
        assert [c["source"] for c in model["content"]["cells"]] == ["x = 1", "y = 2"] and model["writable"]
        me = (await http.get("/api/me")).json()["identity"]
    [received] = [s for s in await _marie_b(fed) if s.remote_share_id == share.id.opaque_id]
    assert received.state == 2  # SHARE_STATE_ACCEPTED: opening accepted the pending share

    async with connect(fed.svc_a.url, fed.einstein.token, path) as einstein, \
            room_through_lab(fed.lab_b, api_path) as marie:
        type_text(marie, 0, "  # from Prague")
        await wait_for(einstein.doc, lambda: sources(einstein)[0] == "x = 1  # from Prague")
        type_text(einstein, 1, "  # from Geneva")
        await wait_for(marie.doc, lambda: sources(marie)[1] == "y = 2  # from Geneva")
        assert sources(marie) == sources(einstein)
        # marie's server signed the code-flow exchange with B's key, and A verified it (OCM 1.4)
        await fed.a.running.wait_for_output("client=cesnet.test issued expires_in=3600 signature=signed", timeout=30)
        # A's operators see her in A's metrics: one participant from cesnet.test
        async with httpx.AsyncClient(timeout=30) as http:
            scraped = (await http.get(f"{fed.svc_a.url}/metrics")).text
        assert 'cs3collab_federated_participants{site="cesnet.test"} 1.0' in scraped, scraped[-3000:]

        # presence: what her JupyterLab puts in awareness (from B's /api/me) reaches A as marie of cesnet.test
        await send_awareness(marie, {"user": me, "current": "remote"})
        states = await einstein.channel.wait_awareness(
            lambda s: any((v or {}).get("current") == "remote" for v in s.values()))
        [user] = [v["user"] for v in states.values() if (v or {}).get("current") == "remote"]
        assert (user["username"], user["idp"]) == ("marie@cesnet.test", "cesnet.test")

        # a forged identity is corrected at A
        await send_awareness(marie, {"user": {"username": "einstein@cernbox.test"}, "current": "forged"}, clock=2)
        states = await einstein.channel.wait_awareness(
            lambda s: any((v or {}).get("current") == "forged" for v in s.values()))
        [user] = [v["user"] for v in states.values() if (v or {}).get("current") == "forged"]
        assert (user["username"], user["idp"]) == ("marie@cesnet.test", "cesnet.test")
        await fed.svc_a.running.wait_for_output("awareness user corrected")

    # every save lands at A, as a CS3 version whose authors include the federated user
    file_id = ids.file_id_for(info.id)

    async def saved_by_marie():
        versions = await _versions(fed, file_id)
        return any("marie@cesnet.test" in {a["uid"] for a in v["authors"]} for v in versions)

    await eventually(saved_by_marie, 15, "a version at A authored by marie@cesnet.test")
    assert b"# from Prague" in await fed.einstein.files.download(path)


async def _marie_b(fed):
    from cs3collab.cs3 import CS3Client
    from tests.conftest import DEMO_PASSWORDS

    async with CS3Client(fed.b.gateway) as client:
        marie = await client.login("marie", DEMO_PASSWORDS["marie"])
        return await marie.ocm.list_received()


async def test_viewer_share_is_read_only(fed):
    path, info, _ = await fed.share(roles.VIEWER, "v = 1")
    api_path = f"{SHARED}/{info.name}"
    async with fed.lab_b.http() as http:
        model = (await http.get(f"/api/contents/{quote(api_path)}", params={"content": 1})).json()
    assert model["writable"] is False
    async with connect(fed.svc_a.url, fed.einstein.token, path) as einstein, \
            room_through_lab(fed.lab_b, api_path) as marie:
        role = await marie.channel.wait_raw(lambda m: m.get("type") == "cs3collab:role")
        assert role["role"] == "viewer"
        type_text(marie, 0, "  # vandal")
        type_text(einstein, 0, "  # owner")
        await wait_for(marie.doc, lambda: "# owner" in sources(marie)[0])
        assert "vandal" not in sources(einstein)[0]
    assert b"vandal" not in await fed.einstein.files.download(path)


async def test_revoking_the_share_disconnects_the_remote_participant(fed):
    path, info, share = await fed.share(roles.EDITOR, "r = 1")
    async with room_through_lab(fed.lab_b, f"{SHARED}/{info.name}") as marie:
        await fed.einstein.ocm.remove_share(share.id.opaque_id)
        with anyio.fail_after(10):  # the re-check period is 0.5 s
            await marie.connection.wait_closed()
        assert marie.connection.close_code == 1003 and "access_revoked" in marie.connection.close_reason
    await fed.svc_a.running.wait_for_output("site=cesnet.test reason=access_revoked")


async def _exchange(fed, code: str, *, signed: bool = True) -> httpx.Response:
    """B's side of the OCM code flow at A's /ocm/token, signed with B's key
    (B advertises http-sig) unless ``signed`` is false."""
    return await exchange(fed.a.http_url, code, key=site_key(fed.b.data_dir) if signed else None)


async def test_wrong_secret_or_other_share_refused(fed):
    _, info, share = await fed.share(roles.EDITOR)
    _, _, other = await fed.share(roles.EDITOR)
    url = f"{fed.svc_a.url}/api/collaboration/session/{quote('ocm:' + share.id.opaque_id, safe='')}"
    body = {"format": "json", "type": "notebook"}
    exchanged = await _exchange(fed, share.token)
    assert exchanged.status_code == 200 and exchanged.json()["token_type"] == "Bearer"
    assert 0 < exchanged.json()["expires_in"] <= 3600
    token = exchanged.json()["access_token"]
    assert (await _exchange(fed, "nope")).json() == {"error": "invalid_grant"}
    # B advertises http-sig (OCM 1.4): its unsigned exchange is refused, even with the right secret
    unsigned = await _exchange(fed, share.token, signed=False)
    assert unsigned.status_code == 401 and unsigned.json() == {"error": "invalid_client"}
    other_token = (await _exchange(fed, other.token)).json()["access_token"]
    async with httpx.AsyncClient(timeout=10) as http:
        ok = await http.put(url, json=body, headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200 and ok.json()["fileId"] == ids.file_id_for(info.id)
        # a share with our webapp requires the code flow: its bare secret is refused
        bare = await http.put(url, json=body, headers={"Authorization": f"OCM {share.id.opaque_id}:{share.token}"})
        assert bare.status_code == 401 and "code flow" in bare.json()["message"]
        wrong = await http.put(url, json=body, headers={"Authorization": f"OCM {share.id.opaque_id}:nope"})
        assert wrong.status_code == 401 and wrong.json()["error"] == "unauthenticated"
        crossed = await http.put(url, json=body, headers={"Authorization": f"OCM {share.id.opaque_id}:{other.token}"})
        assert crossed.status_code == 403
        # the other share's own token does not name this share's file either
        mixed = await http.put(url, json=body, headers={"Authorization": f"Bearer {other_token}"})
        assert mixed.status_code in (401, 403) and mixed.json()["error"] in ("unauthenticated", "forbidden")
    await fed.svc_a.running.wait_for_output("federated access refused share=" + share.id.opaque_id + " site=cesnet.test")
    room = f"{fed.svc_a.url.replace('http', 'ws', 1)}/api/collaboration/room/json:notebook:{ids.file_id_for(info.id)}"
    async with websockets.connect(room, additional_headers={"Authorization": f"OCM {share.id.opaque_id}:nope"}) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd.code == 1003 and "unauthenticated" in closed.value.rcvd.reason


async def test_a_contact_by_invitation_is_shared_with_and_promoted_live(fed):
    """The fixture's invitation made marie@B einstein's contact: a share to
    that contact reaches her Jupyter at B, and raising her role at A turns
    her open viewer session into an editor's without reconnecting."""
    [marie_contact] = await fed.einstein.invites.find_accepted_users("curie")
    assert marie_contact.id.idp == "cesnet.test" and marie_contact.display_name == "Marie Curie"
    home = await fed.einstein.get_home()
    path = f"{home}/contact-{uuid.uuid4().hex[:8]}.ipynb"
    await fed.einstein.files.upload(path, b'{"cells": [{"cell_type": "code", "source": "c = 1", "metadata": {}, '
                                          b'"outputs": [], "execution_count": null, "id": "c1"}], "metadata": {}, '
                                          b'"nbformat": 4, "nbformat_minor": 5}')
    info = await fed.einstein.files.stat(path)
    share = await fed.einstein.ocm.create_share(info.id, federated_user(marie_contact.id.opaque_id, "cesnet.test"),
                                                roles.VIEWER)
    async with connect(fed.svc_a.url, fed.einstein.token, path) as einstein, \
            room_through_lab(fed.lab_b, f"{SHARED}/{info.name}") as marie:
        await marie.channel.wait_raw(lambda m: m.get("type") == "cs3collab:role" and m["role"] == "viewer")
        await fed.einstein.ocm.update_share(share.id.opaque_id, roles.EDITOR)
        await marie.channel.wait_raw(lambda m: m.get("type") == "cs3collab:role" and m["role"] == "editor")
        type_text(marie, 0, "  # marie, now an editor")
        await wait_for(einstein.doc, lambda: "# marie, now an editor" in sources(einstein)[0])
    await fed.einstein.ocm.remove_share(share.id.opaque_id)


async def test_browser_opens_the_webapp_uri_with_an_exchanged_token(fed):
    """What a plain Reva/CERNBox receiver does with our webapp: exchange the
    code, then POST ``access_token`` to the share's webapp ``uri`` in a browser."""
    _, _, share = await fed.share(roles.VIEWER, "print('<b>hello</b>')")
    async with CS3Client(fed.b.gateway) as client_b:
        marie = await client_b.login("marie", DEMO_PASSWORDS["marie"])
        [received] = [r for r in await marie.ocm.list_received() if r.remote_share_id == share.id.opaque_id]
    [app] = [p.webapp_options for p in received.protocols if p.HasField("webapp_options")]
    assert app.uri == f"{fed.svc_a.url}/api/collaboration/ocm/{share.id.opaque_id}"
    token = (await _exchange(fed, share.token)).json()["access_token"]
    async with httpx.AsyncClient(timeout=10) as http:
        page = await http.post(app.uri, data={"access_token": token})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "print(&#x27;&lt;b&gt;hello&lt;/b&gt;&#x27;)" in page.text and "<b>hello" not in page.text
        assert "can view" in page.text
        csp = dict(d.split(None, 1) for d in page.headers["content-security-policy"].split("; "))
        assert csp["default-src"] == "'none'" and csp["script-src"] == "'self'"  # our one script, nothing inline
        # the bare secret is no token; no token at all is refused too
        for data in ({"access_token": share.token}, {}):
            refused = await http.post(app.uri, data=data)
            assert refused.status_code == 401 and "Cannot open this notebook" in refused.text
