"""The Share dialog's REST routes (cs3collab/jupyter/sharing.py) on real
``jupyter server`` processes with the cs3collab extension, against the real
devstack gateway: what the sharer asks through her Jupyter server is what
the grantee then finds with their own CS3 session."""

from __future__ import annotations

import pytest
from cs3.sharing.collaboration.v1beta1 import resources_pb2 as sharing

from cs3collab.cs3.roles import can_write
from tests.conftest import DEMO_PASSWORDS
from tests.jupyter.conftest_bridge import (  # noqa: F401 - fixtures
    bridge_einstein,
    bridge_login,
    bridge_svc,
    jupyter_with_cs3collab,
)
from tests.service.rtc import put_notebook
from tests.support.processes import devstack

MARIE_ID = "f7fbf8c8-139b-4376-b307-cf0a8c2d0d9c"
RICHARD_ID = "932b4540-8d16-481e-8ef4-588e4b6b151c"


@pytest.fixture(scope="module")
async def jp_marie(site, bridge_svc, tmp_path_factory):  # noqa: F811
    """marie's own Jupyter server with the extension."""
    async with jupyter_with_cs3collab(
        tmp_path_factory.mktemp("jp-share-marie"), gateway=site.gateway, service_url=bridge_svc.url, username="marie"
    ) as server:
        yield server


def api_path(cs3_path: str, home: str) -> str:
    return cs3_path[len(home) :].lstrip("/")


def person(kind: str, user_id: str, idp: str = "cernbox.test") -> dict:
    return {"kind": kind, "id": user_id, "idp": idp}


async def received(session, name: str) -> list[sharing.ReceivedShare]:
    """The shares of a file named ``name`` that ``session``'s user received."""
    found = []
    for share in await session.shares.list_received():
        info = await session.files.stat(share.share.resource_id)
        if info.name == name:
            found.append(share)
    return found


async def test_share_change_role_and_revoke_reach_the_grantee(bridge_einstein, einstein, marie, workdir):  # noqa: F811
    home = await einstein.get_home()
    path = api_path(await put_notebook(einstein, f"{workdir}/analysis.ipynb", "x = 1"), home)
    async with bridge_einstein.client() as http:
        empty = await http.get("api/cs3collab/shares", params={"path": path})
        assert empty.status_code == 200, empty.text
        assert empty.json()["canShare"] is True
        assert empty.json()["shares"] == []
        assert empty.json()["resourceId"]
        assert empty.json()["owner"]["displayName"] == "Albert Einstein"

        made = await http.post(
            "api/cs3collab/shares", json={"path": path, "grantee": person("user", MARIE_ID), "role": "editor"}
        )
        assert made.status_code == 201, made.text
        share = made.json()
        assert share["kind"] == "user" and share["role"] == "editor"
        assert share["grantee"]["displayName"] == "Marie Curie"
        assert share["grantee"]["username"] == "marie"

        # marie, with her own CS3 session, received it (pending, as Reva does) and may write
        [got] = await received(marie, "analysis.ipynb")
        assert got.state == sharing.SHARE_STATE_PENDING
        assert can_write((await marie.files.stat(got.share.resource_id)).permission_set)

        listed = (await http.get("api/cs3collab/shares", params={"path": path})).json()["shares"]
        assert [(s["grantee"]["displayName"], s["role"]) for s in listed] == [("Marie Curie", "editor")]

        changed = await http.patch(f"api/cs3collab/shares/user/{share['id']}", json={"role": "viewer"})
        assert changed.status_code == 200, changed.text
        assert changed.json()["role"] == "viewer"
        assert not can_write((await marie.files.stat(got.share.resource_id)).permission_set)
        listed = (await http.get("api/cs3collab/shares", params={"path": path})).json()["shares"]
        assert [s["role"] for s in listed] == ["viewer"]

        revoked = await http.delete(f"api/cs3collab/shares/user/{share['id']}")
        assert revoked.status_code == 204
        assert await received(marie, "analysis.ipynb") == []
        assert (await http.get("api/cs3collab/shares", params={"path": path})).json()["shares"] == []
        # revoking it again: gone, said in words
        again = await http.delete(f"api/cs3collab/shares/user/{share['id']}")
        assert again.status_code == 404
        assert "not found" in again.json()["message"]


async def test_group_share_reaches_its_members(bridge_einstein, einstein, richard, workdir):  # noqa: F811
    home = await einstein.get_home()
    path = api_path(await put_notebook(einstein, f"{workdir}/group.ipynb", "g = 1"), home)
    async with bridge_einstein.client() as http:
        made = await http.post(
            "api/cs3collab/shares",
            json={"path": path, "grantee": person("group", "quantum-lovers", ""), "role": "viewer"},
        )
        assert made.status_code == 201, made.text
        assert made.json()["kind"] == "group"
        assert made.json()["grantee"]["id"] == "quantum-lovers"
        [got] = await received(richard, "group.ipynb")  # richard is in quantum-lovers
        assert not can_write((await richard.files.stat(got.share.resource_id)).permission_set)
        listed = (await http.get("api/cs3collab/shares", params={"path": path})).json()["shares"]
        assert [(s["kind"], s["grantee"]["id"], s["role"]) for s in listed] == [("group", "quantum-lovers", "viewer")]


async def test_people_search_finds_users_and_groups_but_not_me(bridge_einstein):  # noqa: F811
    async with bridge_einstein.client() as http:
        mar = (await http.get("api/cs3collab/people", params={"q": "mar"})).json()["people"]
        assert {"kind": "user", "id": MARIE_ID, "idp": "cernbox.test", "username": "marie",
                "displayName": "Marie Curie", "mail": "marie@example.org"} in mar
        physics = (await http.get("api/cs3collab/people", params={"q": "physics"})).json()["people"]
        assert [p["id"] for p in physics if p["kind"] == "group"] == ["physics-lovers"]
        # einstein finds richard by mail domain, and never himself
        everyone = (await http.get("api/cs3collab/people", params={"q": "example.org"})).json()["people"]
        assert sorted(p["username"] for p in everyone if p["kind"] == "user") == ["marie", "richard"]
        assert (await http.get("api/cs3collab/people", params={"q": "m"})).json() == {"people": []}


async def test_errors_in_words(bridge_einstein, jp_marie, einstein, marie, workdir):  # noqa: F811
    home = await einstein.get_home()
    path = api_path(await put_notebook(einstein, f"{workdir}/twice.ipynb", "t = 1"), home)
    async with bridge_einstein.client() as http:
        missing = await http.get("api/cs3collab/shares", params={"path": f"{path}.nothere"})
        assert missing.status_code == 404
        assert "does not exist" in missing.json()["message"]
        share_missing = await http.post(
            "api/cs3collab/shares",
            json={"path": f"{path}.nothere", "grantee": person("user", MARIE_ID), "role": "viewer"},
        )
        assert share_missing.status_code == 404

        bad_role = await http.post(
            "api/cs3collab/shares", json={"path": path, "grantee": person("user", MARIE_ID), "role": "owner"}
        )
        assert bad_role.status_code == 400
        assert "viewer or editor" in bad_role.json()["message"]
        bad_kind = await http.post(
            "api/cs3collab/shares", json={"path": path, "grantee": person("robot", MARIE_ID), "role": "viewer"}
        )
        assert bad_kind.status_code == 400
        malformed = await http.post(
            "api/cs3collab/shares", content=b'{"path": ', headers={"Content-Type": "application/json"}
        )
        assert malformed.status_code == 400
        assert "not valid JSON" in malformed.json()["message"]
        assert (await http.patch("api/cs3collab/shares/user/x", content=b"[1]")).status_code == 400

        first = await http.post(
            "api/cs3collab/shares", json={"path": path, "grantee": person("user", MARIE_ID), "role": "viewer"}
        )
        assert first.status_code == 201, first.text
        twice = await http.post(
            "api/cs3collab/shares", json={"path": path, "grantee": person("user", MARIE_ID), "role": "editor"}
        )
        assert twice.status_code == 409
        assert twice.json()["message"] == "Marie Curie already has access to twice.ipynb"

    # marie, a viewer, sees the file in her "Shared with me" once she accepts it, and cannot reshare it
    [got] = await received(marie, "twice.ipynb")
    await marie.shares.update_received(got.share.id.opaque_id, state=sharing.SHARE_STATE_ACCEPTED)
    async with jp_marie.client() as http:
        mine = await http.get("api/cs3collab/shares", params={"path": "Shared with me/twice.ipynb"})
        assert mine.status_code == 200, mine.text
        assert mine.json()["canShare"] is False
        assert "you are a viewer" in mine.json()["reason"]
        assert mine.json()["owner"]["username"] == "einstein"  # who she may ask
        assert mine.json()["shares"] == []  # einstein's shares are his to see
        reshare = await http.post(
            "api/cs3collab/shares",
            json={"path": "Shared with me/twice.ipynb", "grantee": person("user", RICHARD_ID), "role": "viewer"},
        )
        assert reshare.status_code == 403
        assert reshare.json()["message"].startswith("You cannot share twice.ipynb")
        # nor change or revoke einstein's share
        assert (await http.delete(f"api/cs3collab/shares/user/{got.share.id.opaque_id}")).status_code == 404
        # the virtual folder is not a file to share
        assert (await http.get("api/cs3collab/shares", params={"path": "Shared with me"})).status_code == 400

    # made an editor, she still may not reshare, and her dialog says so in good English
    await einstein.shares.update_role(got.share.id.opaque_id, "editor")
    async with jp_marie.client() as http:
        mine = await http.get("api/cs3collab/shares", params={"path": "Shared with me/twice.ipynb"})
        assert mine.status_code == 200, mine.text
        assert mine.json()["canShare"] is False
        assert "You cannot share twice.ipynb: you are an editor of it," in mine.json()["reason"]


async def test_writes_need_xsrf_with_a_login_cookie(bridge_login, einstein, workdir):  # noqa: F811
    home = await einstein.get_home()
    path = api_path(await put_notebook(einstein, f"{workdir}/xsrf.ipynb", "x = 1"), home)
    body = {"path": path, "grantee": person("user", MARIE_ID), "role": "viewer"}
    async with bridge_login.client(token=False) as http:
        assert (await http.get("api/cs3collab/shares", params={"path": path})).status_code == 403
        assert (await http.get("login")).status_code == 200
        answer = await http.post(
            "login", data={"username": "einstein", "password": DEMO_PASSWORDS["einstein"], "_xsrf": http.cookies["_xsrf"]}
        )
        assert answer.status_code == 302
        assert (await http.get("api/cs3collab/shares", params={"path": path})).status_code == 200
        assert (await http.post("api/cs3collab/shares", json=body)).status_code == 403
        assert await einstein.shares.list((await einstein.files.stat(f"{workdir}/xsrf.ipynb")).id) == []
        with_xsrf = await http.post("api/cs3collab/shares", json=body, headers={"X-XSRFToken": http.cookies["_xsrf"]})
        assert with_xsrf.status_code == 201, with_xsrf.text


async def test_gateway_gone_is_a_503_naming_it(bridge_svc, tmp_path):  # noqa: F811
    """The server logged in while its gateway was up; then the gateway stops."""
    async with devstack(tmp_path / "site", domain="gone.test") as doomed:
        async with jupyter_with_cs3collab(
            tmp_path / "jp", gateway=doomed.gateway, service_url=bridge_svc.url, username="einstein"
        ) as jp, jp.client() as http:
            assert (await http.get("api/contents")).status_code == 200
            doomed.running.process.terminate()
            await doomed.running.process.wait()
            listing = await http.get("api/cs3collab/shares", params={"path": "a.ipynb"})
            search = await http.get("api/cs3collab/people", params={"q": "marie"})
    for answer in (listing, search):
        assert answer.status_code == 503
        assert doomed.gateway in answer.json()["message"]
