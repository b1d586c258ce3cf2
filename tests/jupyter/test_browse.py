"""The CS3 file browser's routes (cs3collab/jupyter/browse.py) on real
``jupyter server`` processes with the cs3collab extension, over a real
devstack: received shares to accept or decline, the shares a user made, and
File info. Shares are made with the CS3 client, as another user's web UI
would make them."""

from __future__ import annotations

import contextlib
import uuid
from urllib.parse import quote

import pytest

from cs3collab.cs3 import format_resource_id, roles
from cs3collab.cs3.shares import ACCEPTED, user_grantee
from tests.conftest import DEMO_PASSWORDS
from tests.jupyter.conftest_bridge import jupyter_with_cs3collab
from tests.service.rtc import put_notebook

SHARED = "Shared with me"


@pytest.fixture(scope="module")
async def jp(site, tmp_path_factory):
    """``await jp("marie")``: a Jupyter server with cs3collab as that user (no
    collaboration service: these routes need none), started once per user."""
    running: dict = {}
    async with contextlib.AsyncExitStack() as stack:

        async def _server(user: str):
            if user not in running:
                running[user] = await stack.enter_async_context(jupyter_with_cs3collab(
                    tmp_path_factory.mktemp(f"jp-browse-{user}"), gateway=site.gateway, username=user,
                    extra={"CS3CollabExtension": {"embedded_service": False}},
                ))
            return running[user]

        yield _server


def contents_path(cs3_path: str, home: str) -> str:
    return cs3_path[len(home):].lstrip("/")


async def received(http, share_id: str) -> dict | None:
    answer = await http.get("api/cs3collab/received")
    assert answer.status_code == 200, answer.text
    return next((s for s in answer.json()["shares"] if s["id"] == share_id), None)


async def shared_names(http) -> list[str]:
    answer = await http.get(f"api/contents/{quote(SHARED)}")
    assert answer.status_code == 200, answer.text
    return [item["name"] for item in answer.json()["content"]]


async def test_a_pending_share_is_accepted_then_declined(jp, einstein, marie, workdir):
    name = f"pending-{uuid.uuid4().hex[:6]}.ipynb"
    path = await put_notebook(einstein, f"{workdir}/{name}", "x = 1")
    share = await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    server = await jp("marie")
    async with server.client() as http:
        # pending: listed with who shared it and how, but not yet in "Shared with me"
        entry = await received(http, share.id.opaque_id)
        assert entry is not None
        assert entry["kind"] == "user" and entry["state"] == "pending" and entry["path"] is None
        assert entry["name"] == name and entry["type"] == "notebook" and entry["role"] == "editor"
        assert entry["owner"] == {"id": einstein.user.id.opaque_id, "username": "einstein", "idp": "cernbox.test",
                                  "displayName": "Albert Einstein", "institution": "cernbox.test"}
        info = await einstein.files.stat(path)
        assert entry["size"] == info.size
        assert entry["mtime"] and entry["shared"]
        listing = (await http.get("api/cs3collab/received")).json()["shares"]
        states = [s["state"] for s in listing]
        assert states == sorted(states, key=["pending", "accepted", "declined"].index), "pending ones first"
        assert name not in await shared_names(http)

        # accept: at once in "Shared with me", where its path leads
        accepted = await http.post(f"api/cs3collab/received/user/{share.id.opaque_id}", json={"state": "accepted"})
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["state"] == "accepted"
        assert accepted.json()["path"] == f"{SHARED}/{name}"
        assert (await received(http, share.id.opaque_id))["path"] == f"{SHARED}/{name}"
        assert name in await shared_names(http)
        opened = await http.get(f"api/contents/{quote(accepted.json()['path'])}")
        assert opened.status_code == 200 and opened.json()["content"]["cells"][0]["source"] == "x = 1"

        # decline: gone from "Shared with me", listed as declined
        declined = await http.post(f"api/cs3collab/received/user/{share.id.opaque_id}", json={"state": "declined"})
        assert declined.status_code == 200, declined.text
        assert declined.json()["state"] == "declined" and declined.json()["path"] is None
        assert name not in await shared_names(http)
        assert (await http.get(f"api/contents/{quote(SHARED)}/{quote(name)}")).status_code == 404


async def test_shared_by_me_lists_my_shares_with_roles(jp, einstein, marie, richard, workdir):
    home = await einstein.get_home()
    name = f"mine-{uuid.uuid4().hex[:6]}.ipynb"
    path = await put_notebook(einstein, f"{workdir}/{name}", "y = 2")
    to_marie = await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    to_richard = await einstein.shares.create(path, user_grantee(richard.user.id), roles.VIEWER)
    server = await jp("einstein")
    async with server.client() as http:
        answer = await http.get("api/cs3collab/shared-by-me")
    assert answer.status_code == 200, answer.text
    mine = {s["id"]: s for s in answer.json()["shares"]}
    for share, user, display, role in ((to_marie, "marie", "Marie Curie", "editor"),
                                       (to_richard, "richard", "Richard Feynman", "viewer")):
        entry = mine[share.id.opaque_id]
        assert entry["kind"] == "user" and entry["role"] == role
        assert entry["name"] == name and entry["path"] == contents_path(path, home)
        assert entry["grantee"]["username"] == user and entry["grantee"]["displayName"] == display
        assert entry["grantee"]["idp"] == entry["grantee"]["institution"] == "cernbox.test"
        assert entry["created"]
    # marie made none of these
    marie_server = await jp("marie")
    async with marie_server.client() as http:
        theirs = {s["id"] for s in (await http.get("api/cs3collab/shared-by-me")).json()["shares"]}
    assert to_marie.id.opaque_id not in theirs


async def test_info_of_my_notebook(jp, einstein, marie, workdir):
    home = await einstein.get_home()
    path = await put_notebook(einstein, f"{workdir}/info.ipynb", "a = 1")
    await put_notebook(einstein, path, "a = 2")
    await put_notebook(einstein, path, "a = 3")  # two overwrites: two CS3 versions
    await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    server = await jp("einstein")
    async with server.client() as http:
        answer = await http.get("api/cs3collab/info", params={"path": contents_path(path, home)})
    assert answer.status_code == 200, answer.text
    info = answer.json()
    stat = await einstein.files.stat(path)
    assert info["path"] == contents_path(path, home) and info["name"] == "info.ipynb" and info["type"] == "notebook"
    assert info["owner"] == {"username": "einstein", "idp": "cernbox.test", "displayName": "Albert Einstein"}
    assert info["size"] == stat.size and info["mtime"]
    assert info["permissions"]["role"] == "owner"
    assert {"read", "write", "share", "delete"} <= set(info["permissions"]["can"])
    assert info["lock"] is None
    assert info["versions"] == len(await einstein.versions.list(path)) == 2
    assert info["resourceId"] == format_resource_id(stat.id)
    assert [(s["grantee"]["username"], s["role"]) for s in info["shares"]] == [("marie", "editor")]


async def test_info_names_the_lock_holder(jp, einstein, workdir):
    home = await einstein.get_home()
    path = await put_notebook(einstein, f"{workdir}/locked.ipynb", "b = 1")
    await einstein.locks.set(path, lock_id=uuid.uuid4().hex, app_name="cs3collab", lifetime=300)
    server = await jp("einstein")
    async with server.client() as http:
        info = (await http.get("api/cs3collab/info", params={"path": contents_path(path, home)})).json()
    assert info["lock"]["app"] == "cs3collab"
    assert info["lock"]["holder"] == {"displayName": "Albert Einstein", "username": "einstein", "idp": "cernbox.test"}
    assert info["lock"]["expires"]


async def test_info_as_a_recipient(jp, einstein, marie, richard, workdir):
    name = f"recv-{uuid.uuid4().hex[:6]}.ipynb"
    path = await put_notebook(einstein, f"{workdir}/{name}", "c = 1")
    for user, role in ((marie, roles.EDITOR), (richard, roles.VIEWER)):
        share = await einstein.shares.create(path, user_grantee(user.user.id), role)
        await user.shares.update_received(share.id.opaque_id, state=ACCEPTED)
    for user, role in (("marie", "editor"), ("richard", "viewer")):
        server = await jp(user)
        async with server.client() as http:
            answer = await http.get("api/cs3collab/info", params={"path": f"{SHARED}/{name}"})
        assert answer.status_code == 200, answer.text
        info = answer.json()
        assert info["owner"]["displayName"] == "Albert Einstein"
        assert info["permissions"]["role"] == role
        assert ("write" in info["permissions"]["can"]) is (role == "editor")
        assert "share" not in info["permissions"]["can"]
        assert info["shares"] is None  # a recipient may not list the owner's grants
        assert info["versions"] == 0


async def test_errors_are_clear(jp):
    server = await jp("marie")
    async with server.client() as http:
        missing = await http.get("api/cs3collab/info", params={"path": "no/such/file.ipynb"})
        assert missing.status_code == 404 and "no/such/file.ipynb" in missing.json()["message"]
        assert (await http.get("api/cs3collab/info")).status_code == 400
        bad_state = await http.post("api/cs3collab/received/user/whatever", json={"state": "maybe"})
        assert bad_state.status_code == 400 and "accepted" in bad_state.json()["message"]
        unknown = await http.post("api/cs3collab/received/user/no-such-share", json={"state": "accepted"})
        assert unknown.status_code == 404, unknown.text
        unknown_ocm = await http.post("api/cs3collab/received/federated/no-such-share", json={"state": "declined"})
        assert unknown_ocm.status_code == 404, unknown_ocm.text
        bad_kind = await http.post("api/cs3collab/received/carrier-pigeon/1", json={"state": "accepted"})
        assert bad_kind.status_code == 404
        malformed = await http.post("api/cs3collab/received/user/x", content=b"{not json",
                                    headers={"Content-Type": "application/json"})
        assert malformed.status_code == 400 and "JSON" in malformed.json()["message"]


async def test_routes_need_jupyter_auth_and_xsrf(site, tmp_path_factory):
    """A browser session (login cookie): reads work, a POST needs the XSRF header."""
    async with jupyter_with_cs3collab(
        tmp_path_factory.mktemp("jp-browse-login"), gateway=site.gateway, jupyter_token=False,
        extra={"CS3CollabExtension": {"embedded_service": False}},
    ) as server, server.client(token=False) as http:
        assert (await http.get("api/cs3collab/received")).status_code == 403
        assert (await http.get("api/cs3collab/info", params={"path": ""})).status_code == 403
        assert (await http.get("login")).status_code == 200
        answer = await http.post(
            "login", data={"username": "marie", "password": DEMO_PASSWORDS["marie"], "_xsrf": http.cookies["_xsrf"]}
        )
        assert answer.status_code == 302
        assert (await http.get("api/cs3collab/received")).status_code == 200
        body = {"state": "accepted"}
        assert (await http.post("api/cs3collab/received/user/no-such-share", json=body)).status_code == 403
        with_xsrf = await http.post("api/cs3collab/received/user/no-such-share", json=body,
                                    headers={"X-XSRFToken": http.cookies["_xsrf"]})
        assert with_xsrf.status_code == 404, with_xsrf.text  # through the XSRF check, to CS3
