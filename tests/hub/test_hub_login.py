"""JupyterHub as the front door: log in with CS3 credentials, get a server that holds the CS3 token.

A real JupyterHub (from PyPI) with a real configurable-http-proxy (from npm,
tools/chp, installed by ./dev) in front of a real devstack: a person logs in
on the hub's login page; the hub keeps the CS3 token in encrypted auth
state; the single-user server it spawns (JupyterHub's
SimpleLocalProcessSpawner: a local process, no system account) gets the
token and lists the user's CS3 home through the proxy.

JupyterHub must know its proxy's and its own ports before it starts the
proxy, so this module (only) picks free loopback ports by binding port 0 and
releasing it just before the hub starts.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import shutil
import sqlite3
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from cs3collab.cs3 import CS3Client
from tests.conftest import DEMO_PASSWORDS
from tests.support.processes import run_process, stable_port

pytest.importorskip("jupyterhub", reason="jupyterhub is a test dependency (./dev installs it)")
from cs3collab.hub import CS3Authenticator  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CHP = ROOT / "tools" / "chp" / "node_modules" / ".bin" / "configurable-http-proxy"
EXTENSION_CONFIG = ROOT / "jupyter-config" / "jupyter_server_config.d" / "zz_cs3collab.json"
HUB_READY = re.compile(r"JupyterHub is now running at (?P<url>http://127\.0\.0\.1:\d+)")
API_TOKEN = secrets.token_hex(16)

pytestmark = pytest.mark.timeout(300)


def free_port() -> int:
    # JupyterHub must know its ports before it starts the proxy; outside the
    # ephemeral range, so no other process's outgoing connection takes it meanwhile
    return stable_port()


def hub_config(base: Path, gateway: str) -> Path:
    users = base / "users"
    jupyter = base / "jupyter"
    (jupyter / "config" / "jupyter_server_config.d").mkdir(parents=True)
    shutil.copy(EXTENSION_CONFIG, jupyter / "config" / "jupyter_server_config.d" / EXTENSION_CONFIG.name)
    (jupyter / "config" / "jupyter_server_config.json").write_text(json.dumps(
        {"ServerApp": {"allow_root": True}, "CS3ContentsManager": {"shared_cache_seconds": 0}}))
    settings = {
        "gateway": gateway,
        "chp": str(CHP),
        "public": free_port(),
        "api": free_port(),
        "hub": free_port(),
        "base": str(base),
        "users": str(users),
        "python": sys.executable,
        "token": API_TOKEN,
        "jupyter_env": {"JUPYTER_CONFIG_DIR": str(jupyter / "config"), "JUPYTER_DATA_DIR": str(jupyter / "data"),
                        "JUPYTER_RUNTIME_DIR": str(jupyter / "runtime"), "JUPYTER_PLATFORM_DIRS": "1"},
    }
    config = base / "jupyterhub_config.py"
    config.write_text(f"""
s = {settings!r}
c.JupyterHub.authenticator_class = "cs3auth"
c.CS3Authenticator.gateway = s["gateway"]
c.CS3Authenticator.token_refresh_margin = 10 ** 9  # every refresh exchanges the token: shows that it happened
c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
c.SimpleLocalProcessSpawner.home_dir_template = s["users"] + "/{{username}}"
c.Spawner.cmd = [s["python"], "-m", "jupyterhub.singleuser"]
c.Spawner.environment = s["jupyter_env"]
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.JupyterHub.bind_url = "http://127.0.0.1:%d" % s["public"]
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = s["hub"]
c.ConfigurableHTTPProxy.command = [s["chp"]]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:%d" % s["api"]
c.ConfigurableHTTPProxy.pid_file = s["base"] + "/proxy.pid"
c.JupyterHub.db_url = "sqlite:///" + s["base"] + "/hub.sqlite"
c.JupyterHub.cookie_secret_file = s["base"] + "/cookie_secret"
c.JupyterHub.pid_file = s["base"] + "/hub.pid"
c.JupyterHub.cleanup_servers = True
c.JupyterHub.services = [{{"name": "probe", "api_token": s["token"]}}]
c.JupyterHub.load_roles = [{{"name": "probe", "services": ["probe"],
    "scopes": ["admin:users", "admin:auth_state", "admin:servers", "access:servers", "tokens"]}}]
""")
    return config


@pytest.fixture(scope="module")
async def hub(site, tmp_path_factory):
    if not CHP.exists():
        pytest.fail(f"{CHP} is missing: ./dev test installs configurable-http-proxy from tools/chp")
    base = tmp_path_factory.mktemp("hub")
    config = hub_config(base, site.gateway)
    env = {"JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32)}
    async with run_process([sys.executable, "-m", "jupyterhub", "-f", str(config)], HUB_READY, env=env) as running:
        yield SimpleNamespace(url=running.ready["url"].rstrip("/"), running=running, db=base / "hub.sqlite")


async def log_in(http: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    """Fill in the hub's login form as a person would: the page's XSRF token, name, password."""
    page = await http.get("/hub/login")
    assert page.status_code == 200 and 'name="password"' in page.text, page.text[:500]
    xsrf = http.cookies.get("_xsrf")
    return await http.post("/hub/login", data={"username": username, "password": password, "_xsrf": xsrf})


async def test_a_wrong_password_is_refused_on_the_login_page(hub):
    async with httpx.AsyncClient(base_url=hub.url, timeout=60) as http:
        refused = await log_in(http, "einstein", "not-his-password")
    assert refused.status_code == 403
    assert "Invalid username or password" in refused.text
    await hub.running.wait_for_output("cs3 login refused user=einstein")


async def test_login_keeps_the_cs3_token_encrypted_and_the_server_gets_it(hub, site):
    async with httpx.AsyncClient(base_url=hub.url, timeout=60) as http:
        answer = await log_in(http, "einstein", DEMO_PASSWORDS["einstein"])
        assert answer.status_code == 302, answer.text[:500]
        assert answer.headers["location"].startswith("/hub/"), answer.headers
        assert (await http.get("/hub/api/user")).json()["name"] == "einstein"  # logged in, by the hub's cookie

    api = {"Authorization": f"token {API_TOKEN}"}
    async with httpx.AsyncClient(base_url=hub.url, headers=api, timeout=60) as http:
        user = (await http.get("/hub/api/users/einstein")).json()
        token = user["auth_state"]["cs3_token"]
        assert user["auth_state"]["cs3_user"]["username"] == "einstein"
        # the token is einstein's at the CS3 site
        async with CS3Client(site.gateway) as cs3:
            session = await cs3.session_for_token(token)
            assert session.username == "einstein"
        # and the hub's database holds it only encrypted
        with contextlib.closing(sqlite3.connect(hub.db)) as db:
            (stored,) = db.execute("SELECT encrypted_auth_state FROM users WHERE name = 'einstein'").fetchone()
        assert stored and token.encode() not in stored

        # the hub spawns einstein's server (a local process) with the token in its environment
        started = await http.post("/hub/api/users/einstein/server")
        assert started.status_code in (201, 202), started.text
        async with http.stream("GET", "/hub/api/users/einstein/server/progress", timeout=180) as events:
            async for line in events.aiter_lines():
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    assert not event.get("failed"), event
                    if event.get("ready"):
                        break
        # through the proxy, the server lists einstein's CS3 home
        home = await http.get("/user/einstein/api/contents", params={"content": 1})
        assert home.status_code == 200, home.text[:500]
        assert "Shared with me" in [item["name"] for item in home.json()["content"]]
        stopped = await http.delete("/hub/api/users/einstein/server")
        assert stopped.status_code in (202, 204)


async def test_a_running_server_renews_its_token_from_the_hub(hub, site, monkeypatch):
    async with httpx.AsyncClient(base_url=hub.url, timeout=60) as browser:
        assert (await log_in(browser, "marie", DEMO_PASSWORDS["marie"])).status_code == 302
        # a browser's cookie never gets the token
        assert (await browser.get("/hub/api/cs3collab/token")).status_code in (401, 403)
    api = {"Authorization": f"token {API_TOKEN}"}
    async with httpx.AsyncClient(base_url=hub.url, headers=api, timeout=60) as http:
        first = (await http.get("/hub/api/users/marie")).json()["auth_state"]["cs3_token"]
        # a token of marie's that may act for her server, as her server's JUPYTERHUB_API_TOKEN may
        made = await http.post("/hub/api/users/marie/tokens", json={"scopes": ["access:servers!user=marie"]})
        assert made.status_code == 201, made.text
        server_token = made.json()["token"]
        narrow = (await http.post("/hub/api/users/marie/tokens", json={"scopes": ["read:users:name!user=marie"]}))
        assert narrow.status_code == 201, narrow.text
        # a service, or a token of hers that may not act for her server, gets nothing
        assert (await http.get("/hub/api/cs3collab/token")).status_code == 403
    async with httpx.AsyncClient(base_url=hub.url, timeout=60) as http:
        refused = await http.get("/hub/api/cs3collab/token",
                                 headers={"Authorization": f"token {narrow.json()['token']}"})
        assert refused.status_code == 403

    # the server's side: its session from the spawn-time token renews itself through the hub
    from cs3collab.jupyter.connection import CS3CollabConnection

    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", server_token)
    connection = CS3CollabConnection(gateway=site.gateway, token=first,
                                     hub_token_url=f"{hub.url}/hub/api/cs3collab/token")
    try:
        session = await connection.session()
        assert session.renewable and session.username == "marie"
        await session.renew(stale_token=first)
        assert session.token != first and session.username == "marie"
        assert (await session.whoami()).username == "marie"  # the fresh token works at the gateway
    finally:
        await connection.close()
    await hub.running.wait_for_output("cs3 token refreshed user=marie")


class StoredUser:
    """What refresh_user reads of a hub user: a name and the auth state (a boundary of this module)."""

    def __init__(self, state: dict | None) -> None:
        self.name = "einstein"
        self.state = state

    async def get_auth_state(self) -> dict | None:
        return self.state


async def test_the_token_is_refreshed_before_it_expires_and_a_dead_one_means_login(site):
    authenticator = CS3Authenticator(gateway=site.gateway, token_refresh_margin=10**9)  # every token is "due"
    model = await authenticator.authenticate(None, {"username": "einstein", "password": DEMO_PASSWORDS["einstein"]})
    assert model["name"] == "einstein" and model["auth_state"]["cs3_expires_at"] > time.time()
    old = model["auth_state"]["cs3_token"]

    refreshed = await authenticator.refresh_user(StoredUser(model["auth_state"]))
    new = refreshed["auth_state"]["cs3_token"]
    async with CS3Client(site.gateway) as cs3:
        assert (await cs3.session_for_token(new)).username == "einstein"

    # far from expiry: nothing to do
    authenticator.token_refresh_margin = 60
    assert await authenticator.refresh_user(StoredUser(refreshed["auth_state"])) is True
    # expired, or no state at all: log in again
    assert await authenticator.refresh_user(StoredUser({**model["auth_state"], "cs3_expires_at": time.time() - 1})) is False
    assert await authenticator.refresh_user(StoredUser(None)) is False
    # a token the gateway refuses to exchange: log in again
    authenticator.token_refresh_margin = 10**9
    assert await authenticator.refresh_user(StoredUser({**model["auth_state"], "cs3_token": old + "x"})) is False


async def test_a_spawn_hands_on_the_token_and_the_gateway(site):
    authenticator = CS3Authenticator(gateway=site.gateway)
    model = await authenticator.authenticate(None, {"username": "marie", "password": DEMO_PASSWORDS["marie"]})
    spawner = SimpleNamespace(environment={}, args=[])
    await authenticator.pre_spawn_start(StoredUser(model["auth_state"]), spawner)
    assert spawner.environment == {"CS3COLLAB_TOKEN": model["auth_state"]["cs3_token"]}
    assert spawner.args == [f"--CS3CollabConnection.gateway={site.gateway}"]
    await authenticator.pre_spawn_start(StoredUser(model["auth_state"]), spawner)
    assert len(spawner.args) == 1  # not twice
