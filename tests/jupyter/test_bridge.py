"""The Jupyter side of collaboration: identity, login page, and the bridge
that forwards the stock frontend's session and room calls to the service.

Real processes throughout: the session's devstack ``site``, a collaboration
service, and ``jupyter server`` processes with the cs3collab extension
(tests/jupyter/conftest_bridge.py). Clients speak only what the stock
frontend speaks to its Jupyter server: Jupyter's token or login cookie,
XSRF on the session PUT, y-websocket frames on the room WebSocket.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
import websockets
from jupyter_ydoc import YNotebook
from pycrdt import Doc, Provider

from cs3.identity.user.v1beta1 import resources_pb2 as identity_pb2

from cs3collab.cs3 import CS3Client
from cs3collab.jupyter.identity import user_for
from cs3collab.service import ids
from tests.conftest import DEMO_PASSWORDS
from tests.jupyter.conftest_bridge import (  # noqa: F401 - fixtures
    Jupyter,
    bridge_einstein,
    bridge_embedded,
    bridge_hub,
    bridge_login,
    bridge_svc,
    hub_token,
    jupyter_with_cs3collab,
)
from tests.service.rtc import put_notebook, sources, type_text
from tests.support.processes import devstack, service
from tests.support.yclient import Client, WebSocketChannel, connect, open_session, send_awareness, wait_for

COLOR = re.compile(r"^var\(--jp-collaborator-color[1-7]\)$")


# -- helpers ----------------------------------------------------------------------------


def api_path(cs3_path: str, home: str) -> str:
    """The contents API path of a file in the home."""
    return cs3_path[len(home) :].lstrip("/")


async def bridge_session(jp: Jupyter, http: httpx.AsyncClient, path: str, doc_type: str = "notebook") -> dict:
    fmt = "json" if doc_type == "notebook" else "text"
    response = await http.put(jp.session_path(path), json={"format": fmt, "type": doc_type})
    assert response.status_code == 200, response.text
    return response.json()


@contextlib.asynccontextmanager
async def bridge_client(jp: Jupyter, path: str, *, auth: str = "query") -> AsyncIterator[Client]:
    """A Yjs client of the notebook at API ``path`` through the Jupyter server,
    authenticated with Jupyter's token in the query or in the header."""
    async with jp.client() as http:
        session = await bridge_session(jp, http, path)
    async with room_client(jp, session, auth=auth) as client:
        yield client


@contextlib.asynccontextmanager
async def room_client(jp: Jupyter, session: dict, *, auth: str = "query") -> AsyncIterator[Client]:
    """A Yjs client on the room of an earlier session answer (as y-websocket
    reconnects: same URL, no new session request)."""
    room = f"{session['format']}:{session['type']}:{session['fileId']}"
    url = f"{jp.ws_url}api/collaboration/room/{room}?sessionId={session['sessionId']}"
    headers = {}
    if auth == "query":
        url += f"&token={jp.token}"
    else:
        headers["Authorization"] = f"token {jp.token}"
    async with websockets.connect(url, additional_headers=headers, max_size=None) as ws:
        channel = WebSocketChannel(ws, room)
        doc = Doc()
        async with Provider(doc, channel) as provider:
            with anyio.fail_after(10):
                await provider.synced.wait()
            yield Client(doc, YNotebook(doc), channel, ws)


async def log_in(http: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    """Fill in the login page as a browser does (XSRF cookie + form field)."""
    page = await http.get("login")
    assert page.status_code == 200
    return await http.post(
        "login", data={"username": username, "password": password, "_xsrf": http.cookies["_xsrf"]}
    )


def cookie_header(http: httpx.AsyncClient) -> str:
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in http.cookies.jar)


async def close_of(url: str, headers: dict) -> tuple[int, str]:
    """Connect, read until the server closes; the close code and reason received."""
    async with websockets.connect(url, additional_headers=headers) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            with anyio.fail_after(10):
                while True:
                    await ws.recv()
    return closed.value.rcvd.code, closed.value.rcvd.reason


def expected_identity(session) -> dict:
    user = session.user
    return {
        "username": f"{user.username}@{user.id.idp}",
        "name": user.display_name,
        "display_name": user.display_name,
        "idp": user.id.idp,
        "avatar_url": None,
    }


# -- identity ---------------------------------------------------------------------------------


async def test_me_is_the_cs3_user(bridge_einstein, einstein):
    async with bridge_einstein.client() as http:
        response = await http.get("api/me")
    assert response.status_code == 200
    identity = response.json()["identity"]
    assert identity["username"] == "einstein@cernbox.test"
    assert {k: identity[k] for k in expected_identity(einstein)} == expected_identity(einstein)
    assert identity["display_name"] == "Albert Einstein"
    assert identity["initials"] == "AE"
    assert COLOR.match(identity["color"]), identity["color"]
    assert response.json()["permissions"]["updatable_fields"] == []


def test_federated_user_shows_the_institution():
    """Users of another institution are told apart by name; everyone's
    identity carries the idp and a stable color."""

    def cs3_user(kind: int) -> identity_pb2.User:
        user_id = identity_pb2.UserId(idp="cesnet.test", opaque_id="0b7d-marie", type=kind)
        return identity_pb2.User(id=user_id, username="marie", display_name="Marie Curie")

    guest = user_for(cs3_user(identity_pb2.USER_TYPE_FEDERATED))
    local = user_for(cs3_user(identity_pb2.USER_TYPE_PRIMARY))
    assert guest.username == local.username == "marie@cesnet.test"
    assert guest.display_name == guest.name == "Marie Curie (cesnet.test)"
    assert local.display_name == local.name == "Marie Curie"
    assert guest.idp == local.idp == "cesnet.test"
    assert guest.initials == local.initials == "MC"
    assert guest.color == local.color and COLOR.match(local.color)


async def test_cs3_token_never_reaches_the_browser(bridge_hub, hub_token):
    """A server given a CS3 token (as by JupyterHub) is that user, and the
    token appears in no answer, header or cookie the browser gets."""
    async with bridge_hub.client(token=False) as http:
        seen = []
        for url in (f"lab?token={bridge_hub.token}", "api/me", "lab", "api/contents?content=1"):
            response = await http.get(url)
            seen.append(response)
        assert [r.status_code for r in seen] == [200, 200, 200, 200]
        assert seen[1].json()["identity"]["username"] == "einstein@cernbox.test"
        for response in seen:
            assert hub_token not in response.text
            assert all(hub_token not in value for _, value in response.headers.multi_items())
        assert all(hub_token not in cookie.value for cookie in http.cookies.jar)
        assert "jupyter-config-data" in seen[2].text  # the page config was looked at


async def test_identity_is_stable_across_servers(bridge_einstein, bridge_hub):
    """The same CS3 user has the same identity (and color) on every server."""
    identities = []
    for jp in (bridge_einstein, bridge_hub):
        async with jp.client() as http:
            identities.append((await http.get("api/me")).json()["identity"])
    assert identities[0] == identities[1]


async def test_login_page(bridge_login, bridge_einstein):
    async with bridge_login.client(token=False) as http:
        assert (await http.get("api/me")).status_code == 403
        lab = await http.get("lab")
        assert lab.status_code == 302 and "/login" in lab.headers["location"]

        wrong = await log_in(http, "einstein", "not-relativity")
        assert wrong.status_code == 401
        assert "Invalid CS3 username or password." in wrong.text
        assert 'name="password"' in wrong.text and 'name="username"' in wrong.text
        assert (await http.get("api/me")).status_code == 403

        right = await log_in(http, "einstein", DEMO_PASSWORDS["einstein"])
        assert right.status_code == 302
        me = await http.get("api/me")
        assert me.status_code == 200
        async with bridge_einstein.client() as other:
            assert me.json()["identity"] == (await other.get("api/me")).json()["identity"]

    async with bridge_login.client(token=False) as stranger:
        # a single-user server: someone else's CS3 account does not get in
        refused = await log_in(stranger, "marie", DEMO_PASSWORDS["marie"])
        assert refused.status_code == 403
        assert "belongs to einstein" in refused.text
        assert (await stranger.get("api/me")).status_code == 403

    async with bridge_login.client(token=False) as http:
        await log_in(http, "einstein", DEMO_PASSWORDS["einstein"])
        assert (await http.get("api/me")).status_code == 200
        cookies = dict(http.cookies)
        assert (await http.get("logout")).status_code == 200
        assert (await http.get("api/me")).status_code == 403
    # logging out forgets the CS3 session on the server, not only the cookie
    async with bridge_login.client(token=False) as replay:
        replay.cookies.update(cookies)
        assert (await replay.get("api/me")).status_code == 403
    async with bridge_login.client(token=False) as stranger:
        assert (await log_in(stranger, "marie", DEMO_PASSWORDS["marie"])).status_code == 403  # still einstein's


# -- session PUT ------------------------------------------------------------------------------


async def test_session_put_answers_what_the_service_answers(bridge_einstein, bridge_svc, einstein, workdir):
    home = await einstein.get_home()
    path = await put_notebook(einstein, f"{workdir}/ünïcode name.ipynb", "x = 1")
    async with bridge_einstein.client() as http:
        response = await http.put(
            bridge_einstein.session_path(api_path(path, home)), json={"format": "json", "type": "notebook"}
        )
        missing = await http.put(
            bridge_einstein.session_path(api_path(f"{workdir}/missing.ipynb", home)),
            json={"format": "json", "type": "notebook"},
        )
    direct = await open_session(bridge_svc.url, einstein.token, path)
    assert response.status_code == 200
    assert response.json() == {"format": "json", "type": "notebook", "fileId": direct.fileId, "sessionId": direct.sessionId}
    info = await einstein.files.stat(path)
    assert direct.fileId == ids.file_id_for(info.id)
    assert missing.status_code == 404


async def test_session_put_needs_xsrf_with_cookie_auth(bridge_login, einstein, workdir):
    """As the stock frontend calls it: login cookie plus X-XSRFToken."""
    home = await einstein.get_home()
    path = await put_notebook(einstein, f"{workdir}/xsrf.ipynb", "y = 2")
    async with bridge_login.client(token=False) as http:
        assert (await log_in(http, "einstein", DEMO_PASSWORDS["einstein"])).status_code == 302
        body = {"format": "json", "type": "notebook"}
        url = bridge_login.session_path(api_path(path, home))
        without = await http.put(url, json=body)
        assert without.status_code == 403
        with_xsrf = await http.put(url, json=body, headers={"X-XSRFToken": http.cookies["_xsrf"]})
        assert with_xsrf.status_code == 200
        assert with_xsrf.json()["fileId"] == ids.file_id_for((await einstein.files.stat(path)).id)


# -- room WebSocket ---------------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["query", "header"])
async def test_room_passes_through(bridge_einstein, bridge_svc, einstein, workdir, auth):
    """A client through the bridge and a client directly on the service are in
    the same room: each sees the other's edits."""
    home = await einstein.get_home()
    path = await put_notebook(einstein, f"{workdir}/room-{auth}.ipynb", "a = 1", "b = 2")
    async with bridge_client(bridge_einstein, api_path(path, home), auth=auth) as browser, connect(
        bridge_svc.url, einstein.token, path
    ) as direct:
        assert sources(browser) == sources(direct) == ["a = 1", "b = 2"]
        type_text(browser, 0, "  # from Jupyter")
        await wait_for(direct.doc, lambda: sources(direct)[0] == "a = 1  # from Jupyter")
        type_text(direct, 1, "  # from the service")
        await wait_for(browser.doc, lambda: sources(browser)[1] == "b = 2  # from the service")


async def test_service_close_reaches_the_browser_unchanged(bridge_einstein, bridge_svc, einstein, workdir):
    """The service refuses an unknown session with 1003 + JSON reason; the
    browser-side client gets exactly that close."""
    home = await einstein.get_home()
    path = await put_notebook(einstein, f"{workdir}/closed.ipynb", "z = 0")
    async with bridge_einstein.client() as http:
        session = await bridge_session(bridge_einstein, http, api_path(path, home))
    room = f"json:notebook:{session['fileId']}"
    direct = await close_of(
        f"{bridge_svc.url.replace('http', 'ws', 1)}/api/collaboration/room/{room}?sessionId=stale",
        {"Authorization": f"Bearer {einstein.token}"},
    )
    through = await close_of(
        f"{bridge_einstein.ws_url}api/collaboration/room/{room}?sessionId=stale",
        {"Authorization": f"token {bridge_einstein.token}"},
    )
    assert direct[0] == 1003
    assert json.loads(direct[1])["reason"] == "unknown_session"
    assert through == direct


async def test_browser_leaving_closes_the_service_side(bridge_einstein, bridge_svc, einstein, workdir):
    """When the browser socket goes, the service sees that participant leave
    (its awareness state is removed for the others)."""
    home = await einstein.get_home()
    path = await put_notebook(einstein, f"{workdir}/leave.ipynb", "w = 3")
    async with connect(bridge_svc.url, einstein.token, path) as direct:  # its provider reads the socket
        async with bridge_client(bridge_einstein, api_path(path, home)) as browser:
            await send_awareness(browser, {"user": {"username": "einstein@cernbox.test"}})
            await direct.channel.wait_awareness(lambda update: browser.doc.client_id in update)
            leaving = browser.doc.client_id
        await direct.channel.wait_awareness(lambda update: update.get(leaving, "absent") is None)


async def drain(client: Client) -> None:
    """Read a provider-less client's socket so its awareness updates are recorded."""
    while True:
        await client.channel.recv()


async def test_global_awareness_with_cookie_only(bridge_login, bridge_svc, einstein):
    """The frontend opens JupyterLab:globalAwareness with no query string:
    the login cookie alone must get it through, to the service's global room."""
    global_room = "api/collaboration/room/JupyterLab:globalAwareness"
    async with bridge_login.client(token=False) as http:
        assert (await log_in(http, "einstein", DEMO_PASSWORDS["einstein"])).status_code == 302
        cookies = cookie_header(http)

    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(f"{bridge_login.ws_url}{global_room}"):
            pass
    assert refused.value.response.status_code == 403

    service_ws = bridge_svc.url.replace("http", "ws", 1)
    async with websockets.connect(
        f"{service_ws}/{global_room}", additional_headers={"Authorization": f"Bearer {einstein.token}"}
    ) as direct_ws, websockets.connect(f"{bridge_login.ws_url}{global_room}", additional_headers={"Cookie": cookies}) as browser_ws:
        direct = Client(Doc(), None, WebSocketChannel(direct_ws, "global"), direct_ws)
        browser = Client(Doc(), None, WebSocketChannel(browser_ws, "global"), browser_ws)
        async with anyio.create_task_group() as group:
            group.start_soon(drain, direct)
            group.start_soon(drain, browser)
            user = {"user": {"username": "einstein@cernbox.test"}}
            await send_awareness(browser, {**user, "current": "notebook:a.ipynb"})
            update = await direct.channel.wait_awareness(lambda u: browser.doc.client_id in u)
            assert update[browser.doc.client_id] == user  # the site-wide room carries no paths
            await send_awareness(direct, {**user, "current": None})  # the same user, another tab
            update = await browser.channel.wait_awareness(lambda u: direct.doc.client_id in u)
            assert update[direct.doc.client_id] == user
            group.cancel_scope.cancel()


# -- in-process service ---------------------------------------------------------------------------


async def test_embedded_service(bridge_embedded, einstein, workdir):
    """With no service URL, the service runs inside the Jupyter server: two
    tabs share the room and the edit reaches CS3."""
    home = await einstein.get_home()
    path = await put_notebook(einstein, f"{workdir}/embedded.ipynb", "e = 1")
    async with bridge_client(bridge_embedded, api_path(path, home)) as one, bridge_client(
        bridge_embedded, api_path(path, home), auth="header"
    ) as two:
        type_text(one, 0, "  # saved")
        await wait_for(two.doc, lambda: sources(two)[0] == "e = 1  # saved")
    with anyio.fail_after(20):
        while b"e = 1  # saved" not in await einstein.files.download(path):
            await anyio.sleep(0.1)  # CS3 has no push: poll for the save


# -- expiring CS3 tokens ------------------------------------------------------------------------------


async def test_expired_cs3_token_is_renewed(tmp_path):
    """On a site whose tokens live 2 s, a server logged in with credentials
    keeps its rooms working after its token expired: a reconnect (same room
    URL, no new session request, as y-websocket does) still joins and syncs."""
    async with devstack(tmp_path / "site", domain="short.test", extra=("--token-lifetime=2",)) as short_site:
        async with CS3Client(short_site.gateway) as cs3:
            owner = await cs3.login("einstein", DEMO_PASSWORDS["einstein"])
            home = await owner.get_home()
            path = await put_notebook(owner, f"{home}/expiry.ipynb", "t = 0")
        async with service(short_site.gateway, tmp_path / "svc") as svc, jupyter_with_cs3collab(
            tmp_path / "jp", gateway=short_site.gateway, service_url=svc.url, username="einstein"
        ) as jp:
            async with jp.client() as http:
                session = await bridge_session(jp, http, "expiry.ipynb")
            await anyio.sleep(2.5)  # outlive the server's token: nothing to await but time
            async with room_client(jp, session) as one, room_client(jp, session, auth="header") as two:
                type_text(one, 0, "  # after expiry")
                await wait_for(two.doc, lambda: sources(two)[0] == "t = 0  # after expiry")
