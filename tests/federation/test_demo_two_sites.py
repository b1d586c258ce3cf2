"""``cs3collab demo --two-sites`` as a user runs it: real processes, its own output.

The demo starts both sites, each with its own JupyterHub, makes einstein@A
and marie@B contacts by an OCM invitation, shares the sample notebook at A
with marie at B through OCM and prints each site's hub with the logins.
marie logs in at her own site's hub (B) with her CS3 password; the server
her hub starts opens "Shared with me/analysis.ipynb" from A's service, in the
same room as einstein's server at A (and the notebook and data in
"Shared with me/higgs-analysis/"); and a JupyterLab whose cs3collab
extension failed to link is refused at start.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import httpx
import pytest

from cs3collab.cs3 import CS3Client
from cs3collab.demo import DEMO_USERS, JUPYTER_READY, check_lab, jupyter_command, jupyter_env
from tests.support import processes
from tests.support.processes import run_process

READY = re.compile(r"cs3collab two-site demo ready")


def _printed(output: list[str], who: str) -> tuple[str, str, str, str]:
    """(hub URL, user, password, notebook path) of the line the demo printed for ``who``."""
    [line] = [line for line in output if line.strip().startswith(who) and "http://" in line]
    user, password = re.search(r"as (\w+) / (\w+)", line).groups()
    url = urlsplit(line.split()[-1])
    hub = f"{url.scheme}://{url.netloc}"
    assert url.path.startswith(f"/user/{user}/lab/tree/"), line
    return hub, user, password, unquote(url.path.split("/lab/tree/", 1)[1])


@contextlib.asynccontextmanager
async def log_in(hub: str, user: str, password: str) -> AsyncIterator[httpx.AsyncClient]:
    """Log in on ``hub``'s login form, start the server there, and return a client of that server
    with a token the user made for it (as on the hub's token page)."""
    async with httpx.AsyncClient(base_url=hub, timeout=60) as browser:
        page = await browser.get("/hub/login")
        assert 'name="password"' in page.text
        answer = await browser.post("/hub/login", data={"username": user, "password": password,
                                                        "_xsrf": browser.cookies.get("_xsrf")})
        assert answer.status_code == 302, answer.text[:300]
        made = await browser.post(f"/hub/api/users/{user}/tokens", json={"note": "test"},
                                  headers={"X-XSRFToken": browser.cookies.get("_xsrf", path="/hub/")})
        assert made.status_code == 201, made.text
    headers = {"Authorization": f"token {made.json()['token']}"}
    async with httpx.AsyncClient(base_url=hub, timeout=60, headers=headers) as api:
        started = await api.post(f"/hub/api/users/{user}/server")
        assert started.status_code in (201, 202), started.text
        async with api.stream("GET", f"/hub/api/users/{user}/server/progress", timeout=240) as events:
            async for line in events.aiter_lines():
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    assert not event.get("failed"), event
                    if event.get("ready"):
                        break
    async with httpx.AsyncClient(base_url=f"{hub}/user/{user}", timeout=60, headers=headers) as server:
        yield server


async def test_two_site_demo(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(processes, "READY_TIMEOUT", 300.0)  # six processes and the seeding before the ready line
    args = [sys.executable, "-m", "cs3collab", "demo", "--two-sites", "--dir", str(tmp_path / "demo")]
    async with run_process(args, READY) as demo:
        await demo.wait_for_output("Ctrl-C stops everything", timeout=10)
        hub_b, marie_user, marie_password, marie_path = _printed(demo.output, "marie@cesnet.demo")
        hub_a, einstein_user, einstein_password, einstein_path = _printed(demo.output, "einstein@cernbox.demo")
        assert (einstein_path, marie_path) == ("analysis.ipynb", "Shared with me/analysis.ipynb")
        assert (marie_user, marie_password) == ("marie", DEMO_USERS["marie"])
        # one hub per site, and each site's line names its own
        hubs = dict(re.findall(r"site [AB] (\S+): JupyterHub (http://\S+)/hub/login", "\n".join(demo.output)))
        assert hubs == {"cernbox.demo": hub_a, "cesnet.demo": hub_b} and hub_a != hub_b
        async with log_in(hub_b, marie_user, marie_password) as http:
            me = (await http.get("/api/me")).json()["identity"]
            assert (me["username"], me["display_name"]) == ("marie@cesnet.demo", "Marie Curie")
            model = (await http.get(f"/api/contents/{quote(marie_path)}", params={"content": 1})).json()
            assert model["type"] == "notebook" and model["writable"]
            assert "Detector calibration" in model["content"]["cells"][0]["source"]
            session = await http.put(f"/api/collaboration/session/{quote(marie_path, safe='')}",
                                     json={"format": "json", "type": "notebook"})
            assert session.status_code == 200, session.text
            # the higgs-analysis/ folder shared through OCM: listed, its data read and its notebook opened at B
            folder = (await http.get(f"/api/contents/{quote('Shared with me/higgs-analysis')}")).json()
            assert {m["name"] for m in folder["content"]} >= {"analysis.ipynb", "events.csv"}, folder
            events = (await http.get(f"/api/contents/{quote('Shared with me/higgs-analysis/events.csv')}")).json()
            assert events["format"] == "text" and events["content"].count("\n") > 1000
            higgs_path = quote("Shared with me/higgs-analysis/analysis.ipynb", safe="")
            higgs = await http.put(f"/api/collaboration/session/{higgs_path}", json={"format": "json", "type": "notebook"})
            assert higgs.status_code == 200, higgs.text
        async with log_in(hub_a, einstein_user, einstein_password) as http:
            mine = await http.put(f"/api/collaboration/session/{quote(einstein_path, safe='')}",
                                  json={"format": "json", "type": "notebook"})
        assert mine.json()["fileId"] == session.json()["fileId"]  # one room, at A
        # einstein and marie became contacts by an OCM invitation
        assert any("OCM contacts (by invitation): einstein@" in line for line in demo.output)
        gateways = dict(re.findall(r"site [AB] (\S+): gateway (\S+)", "\n".join(demo.output)))
        async with CS3Client(gateways["cernbox.demo"]) as cs3_a, CS3Client(gateways["cesnet.demo"]) as cs3_b:
            einstein = await cs3_a.login("einstein", DEMO_USERS["einstein"])
            marie = await cs3_b.login("marie", DEMO_USERS["marie"])
            assert [(u.id.idp, u.display_name) for u in await einstein.invites.find_accepted_users()] == \
                [("cesnet.demo", "Marie Curie")]
            assert [(u.id.idp, u.id.opaque_id) for u in await marie.invites.find_accepted_users()] == \
                [("cernbox.demo", einstein.user.id.opaque_id)]


async def test_lab_without_linked_extension_is_refused(tmp_path: Path):
    """A service URL that is not http(s) makes the extension fail linking; Jupyter
    then serves its plain contents manager, which the demo's check catches."""
    (tmp_path / "work").mkdir()
    args = jupyter_command("marie", "t0k", "127.0.0.1:1", "127.0.0.1:1234", tmp_path / "work")
    async with run_process(args, JUPYTER_READY, env=jupyter_env(tmp_path)) as lab:
        with pytest.raises(RuntimeError, match="did not link"):
            await check_lab(lab.ready["url"], "t0k", "lab-marie")
