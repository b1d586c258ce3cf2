"""The hub's OIDC login: a person signs in at the site's identity provider, and Reva logs her in with its token.

Real processes throughout: a devstack site with its embedded OpenID Connect
issuer (``cs3collab devstack --oidc``, its own port), the collaboration
service, a JupyterHub in OIDC mode (``CS3Authenticator.login = "oidc"``, as
``cs3collab.hub.local.write_config(oidc_issuer=...)`` writes it for the demo)
with configurable-http-proxy, and Debian's chromium driven by Playwright.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from cs3collab.cs3 import CS3Client
from tests.conftest import DEMO_PASSWORDS
from tests.support import processes
from tests.support.processes import devstack, run_process, service

pytest.importorskip("oauthenticator", reason="oauthenticator is a test dependency (./dev installs it)")
from playwright.async_api import async_playwright  # noqa: E402

from cs3collab.hub import local as local_hub  # noqa: E402

CHROMIUM = Path(os.environ.get("CS3COLLAB_CHROMIUM") or "/usr/bin/chromium")
LOAD_MS = 180_000  # a hub spawning a server on a loaded 2-core machine

TOKEN_LIFETIME = 120  # seconds a CS3 token of the site lives
REFRESH_MARGIN = 110  # the hub renews a CS3 token in its last 110 s, so 10 s after it was issued

pytestmark = pytest.mark.timeout(420)


@pytest.fixture(scope="module")
async def oidc_hub(tmp_path_factory):
    """Site (with its IdP, short-lived CS3 tokens), service and a hub in OIDC mode."""
    base = tmp_path_factory.mktemp("hub-oidc")
    api_token = secrets.token_hex(16)
    async with contextlib.AsyncExitStack() as stack:
        site = await stack.enter_async_context(devstack(
            base / "site", domain="cernbox.test", extra=("--oidc", "--token-lifetime", str(TOKEN_LIFETIME))))
        svc = await stack.enter_async_context(service(site.gateway, base / "service"))
        config = local_hub.write_config(base / "hub", gateway=site.gateway, service_url=svc.url,
                                        oidc_issuer=site.oidc_url)
        with config.open("a") as out:
            out.write(f"""
c.CS3Authenticator.token_refresh_margin = {REFRESH_MARGIN}  # a CS3 token is "near expiry" soon after it was issued
c.JupyterHub.services = [{{"name": "probe", "api_token": {api_token!r}}}]
c.JupyterHub.load_roles = [{{"name": "probe", "services": ["probe"],
    "scopes": ["admin:users", "admin:auth_state", "admin:servers", "tokens"]}}]
""")
        ready = processes.READY_TIMEOUT
        processes.READY_TIMEOUT = max(ready, 120.0)  # a hub and its proxy on a loaded machine
        try:
            hub = await stack.enter_async_context(run_process(
                local_hub.hub_command(config), local_hub.HUB_READY, env=local_hub.hub_env(base / "hub")))
        finally:
            processes.READY_TIMEOUT = ready
        yield site, hub, hub.ready["url"].rstrip("/"), {"Authorization": f"token {api_token}"}, base / "hub" / "hub.sqlite"


async def test_a_person_signs_in_at_the_idp_lands_in_her_server_as_her_cs3_user(oidc_hub, tmp_path):
    site, hub, url, api, db = oidc_hub
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: these tests use Debian's chromium (./dev test installs it with apt)")
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                               args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            page = await browser.new_page()
            await page.goto(f"{url}/hub/login")
            # the hub's login page offers the institution's sign-in, not a password form
            assert await page.locator("input[name=password]").count() == 0
            await page.get_by_role("button", name=re.compile("Sign in with your institution")).click()
            # the IdP's page (another origin): a wrong password first, then hers
            await page.wait_for_url(f"{site.oidc_url}/authorize*", timeout=LOAD_MS)
            await page.locator("#username").fill("marie")
            await page.locator("#password").fill("not-her-password")
            await page.locator("#sign-in").click()
            await page.get_by_text("Invalid username or password").wait_for(timeout=LOAD_MS)
            await page.locator("#username").fill("marie")
            await page.locator("#password").fill(DEMO_PASSWORDS["marie"])
            await page.locator("#sign-in").click()
            # back through the hub's OAuth callback, her server starts and JupyterLab opens
            await page.wait_for_url(re.compile(r".*/user/marie/lab.*"), timeout=LOAD_MS)
            me = await page.request.get(f"{url}/user/marie/api/me")
            assert me.ok, await me.text()
            identity = (await me.json())["identity"]
            assert identity["username"] == "marie@cernbox.test" and identity["name"] == "Marie Curie"
            listing = await page.request.get(f"{url}/user/marie/api/contents", params={"content": "1"})
            assert "Shared with me" in [item["name"] for item in (await listing.json())["content"]]
        except Exception as exc:
            raise AssertionError(f"at {page.url}: {exc}\n--- hub:\n" + "\n".join(hub.output[-30:])
                                 + "\n--- site:\n" + "\n".join(site.running.output[-15:])) from exc
        finally:
            await browser.close()
    await hub.wait_for_output("cs3 login user=marie site=cernbox.test via=oidc", timeout=30)
    await site.running.wait_for_output("oidc token accepted user=marie", timeout=30)

    # the hub keeps the CS3 token (marie's at the site), its expiry and the IdP's refresh token
    async with httpx.AsyncClient(base_url=url, headers=api, timeout=60) as http:
        state = (await http.get("/hub/api/users/marie")).json()["auth_state"]
    assert state["cs3_user"]["username"] == "marie" and state["cs3_expires_at"] and state["refresh_token"]
    async with CS3Client(site.gateway) as cs3:
        assert (await cs3.session_for_token(state["cs3_token"])).username == "marie"
    # and the hub's database holds the tokens only encrypted
    with contextlib.closing(sqlite3.connect(db)) as database:
        (stored,) = database.execute("SELECT encrypted_auth_state FROM users WHERE name = 'marie'").fetchone()
    assert stored and state["cs3_token"].encode() not in stored and state["refresh_token"].encode() not in stored


async def test_a_token_near_expiry_is_renewed_at_the_idp_and_at_reva(oidc_hub):
    site, hub, url, api, _ = oidc_hub
    async with httpx.AsyncClient(base_url=url, headers=api, timeout=60) as http:
        before = (await http.get("/hub/api/users/marie")).json()["auth_state"]
        made = await http.post("/hub/api/users/marie/tokens", json={"scopes": ["access:servers!user=marie"]})
        assert made.status_code == 201, made.text
    # the CS3 token nears expiry (within the margin) a few seconds after it was issued: that moment
    await asyncio.sleep(max(0.0, before["cs3_expires_at"] - REFRESH_MARGIN - time.time()))
    issued = site.running.count("oidc tokens issued user=marie")
    refreshed = hub.count("cs3 token refreshed user=marie via=oidc")
    # what her server does when its CS3 token nears expiry: ask the hub, with its own token
    async with httpx.AsyncClient(base_url=url, timeout=60,
                                 headers={"Authorization": f"token {made.json()['token']}"}) as server:
        answer = await server.get("/hub/api/cs3collab/token")
    assert answer.status_code == 200, answer.text
    await hub.wait_for_output("cs3 token refreshed user=marie via=oidc", count=refreshed + 1, timeout=30)
    await site.running.wait_for_output("oidc tokens issued user=marie", count=issued + 1, timeout=30)
    fresh = answer.json()["token"]
    assert fresh != before["cs3_token"]
    async with httpx.AsyncClient(base_url=url, headers=api, timeout=60) as http:
        after = (await http.get("/hub/api/users/marie")).json()["auth_state"]
    assert after["cs3_token"] == fresh and after["refresh_token"] != before["refresh_token"]  # rotated at the IdP
    async with CS3Client(site.gateway) as cs3:
        assert (await cs3.session_for_token(fresh)).username == "marie"


class StoredUser:
    """What refresh_user reads of a hub user: a name and the auth state (a boundary of this module)."""

    def __init__(self, state: dict | None) -> None:
        self.name = "einstein"
        self.state = state

    async def get_auth_state(self) -> dict | None:
        return self.state


async def idp_tokens(issuer: str, user: str) -> dict:
    """The IdP's token answer for ``user`` (the code flow over HTTP, as the hub's callback gets it)."""
    import base64
    import hashlib
    from urllib.parse import parse_qs, urlsplit

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect = "http://127.0.0.1:9/hub/oauth_callback"
    params = {"client_id": local_hub.OIDC_CLIENT_ID, "redirect_uri": redirect, "response_type": "code",
              "scope": "openid", "code_challenge": challenge, "code_challenge_method": "S256"}
    async with httpx.AsyncClient(base_url=issuer, timeout=30) as http:
        back = await http.post("/authorize", data={**params, "username": user, "password": DEMO_PASSWORDS[user]})
        code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
        answer = await http.post("/token", data={"grant_type": "authorization_code", "code": code,
                                                 "redirect_uri": redirect, "client_id": local_hub.OIDC_CLIENT_ID,
                                                 "code_verifier": verifier})
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_a_refresh_the_idp_refuses_means_login_and_an_idp_outage_keeps_a_valid_token(oidc_hub):
    from cs3collab.cs3 import Unauthenticated
    from cs3collab.hub import CS3Authenticator
    from tests.support.processes import stable_port

    site = oidc_hub[0]
    authenticator = CS3Authenticator(
        login="oidc", gateway=site.gateway, client_id=local_hub.OIDC_CLIENT_ID, authorize_url=site.oidc_url + "/authorize",
        token_url=site.oidc_url + "/token", userdata_url=site.oidc_url + "/userinfo", token_refresh_margin=10**9)
    tokens = await idp_tokens(site.oidc_url, "einstein")
    state = await authenticator.build_auth_state_dict(tokens, {})
    assert state["cs3_user"]["username"] == "einstein" and state["refresh_token"] == tokens["refresh_token"]

    refreshed = await authenticator.refresh_user(StoredUser(state))
    assert refreshed["name"] == "einstein" and refreshed["auth_state"]["cs3_token"] != state["cs3_token"]
    # the IdP rotated the refresh token: the old state's is refused there, so the person logs in again
    assert await authenticator.refresh_user(StoredUser(state)) is False
    # an IdP that cannot be reached: a still valid CS3 token is kept, an expired one means login
    fresh = refreshed["auth_state"]
    authenticator.token_url = f"http://127.0.0.1:{stable_port()}/token"  # nothing listens there
    assert await authenticator.refresh_user(StoredUser(fresh)) is True
    assert await authenticator.refresh_user(StoredUser({**fresh, "cs3_expires_at": time.time() - 1})) is False
    # a token Reva does not accept never becomes a CS3 session
    with pytest.raises(Unauthenticated):
        await authenticator.build_auth_state_dict({**tokens, "access_token": tokens["access_token"][:-4] + "AAAA"}, {})
