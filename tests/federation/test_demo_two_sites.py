"""``cs3collab demo --two-sites`` as a user runs it: real processes, its own output.

The demo starts both sites, makes einstein@A and marie@B contacts by an OCM
invitation, shares the sample notebook at A with marie at B through OCM and
prints two URLs; marie's Jupyter server (site B) opens
"Shared with me/analysis.ipynb" from A's service (and the notebook and data
in "Shared with me/higgs-analysis/"), and a JupyterLab whose
cs3collab extension failed to link is refused at start.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

import httpx
import pytest

from cs3collab.cs3 import CS3Client
from cs3collab.demo import DEMO_USERS, JUPYTER_READY, check_lab, jupyter_command, jupyter_env
from tests.support import processes
from tests.support.processes import run_process

READY = re.compile(r"cs3collab two-site demo ready")


def _lab(output: list[str], who: str) -> tuple[str, str, str]:
    """(server URL, token, contents path) of the URL the demo printed for ``who``."""
    [line] = [line for line in output if line.strip().startswith(who) and "http://" in line]
    url = urlsplit(line.split()[-1])
    return f"{url.scheme}://{url.netloc}", parse_qs(url.query)["token"][0], unquote(url.path.split("/lab/tree/", 1)[1])


async def test_two_site_demo(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(processes, "READY_TIMEOUT", 120.0)  # six processes start before the ready line
    args = [sys.executable, "-m", "cs3collab", "demo", "--two-sites", "--dir", str(tmp_path / "demo")]
    async with run_process(args, READY) as demo:
        await demo.wait_for_output("Ctrl-C stops everything", timeout=10)
        marie_url, marie_token, marie_path = _lab(demo.output, "marie@cesnet.demo")
        einstein_url, einstein_token, einstein_path = _lab(demo.output, "einstein@cernbox.demo")
        assert (einstein_path, marie_path) == ("analysis.ipynb", "Shared with me/analysis.ipynb")
        headers = {"Authorization": f"token {marie_token}"}
        async with httpx.AsyncClient(base_url=marie_url, headers=headers, timeout=30) as http:
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
        async with httpx.AsyncClient(base_url=einstein_url, timeout=30,
                                     headers={"Authorization": f"token {einstein_token}"}) as http:
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
