"""The labextension's version routes on the Jupyter server
(cs3collab/jupyter/versions_proxy.py), against a real ``jupyter server`` and
a real collaboration service: the browser names a notebook by its contents
path, learns its fileId, and reaches the service's versions API through its
own server, authenticated the Jupyter way; the service's answers and errors
come back as the service gave them."""

from __future__ import annotations

from urllib.parse import quote

from cs3collab.service import ids
from tests.conftest import DEMO_PASSWORDS
from tests.jupyter.conftest_bridge import (  # noqa: F401 - fixtures
    bridge_einstein,
    bridge_login,
    bridge_svc,
)
from tests.service.rtc import put_notebook


def api_path(cs3_path: str, home: str) -> str:
    """The contents path of a file in the server user's home."""
    return cs3_path[len(home) :].lstrip("/")


async def test_file_id_of_a_contents_path(bridge_einstein, einstein, workdir):
    home = await einstein.get_home()
    path = await put_notebook(einstein, f"{workdir}/a b.ipynb", "x = 1")
    async with bridge_einstein.client() as http:
        found = await http.get("api/cs3collab/file-id", params={"path": api_path(path, home)})
        missing = await http.get("api/cs3collab/file-id", params={"path": api_path(f"{workdir}/none.ipynb", home)})
        no_path = await http.get("api/cs3collab/file-id")
    assert found.status_code == 200
    assert found.json()["fileId"] == ids.file_id_for((await einstein.files.stat(path)).id)
    assert missing.status_code == 404
    assert no_path.status_code == 400


async def test_versions_list_content_and_tags_through_the_server(bridge_einstein, einstein, workdir):
    home = await einstein.get_home()
    path = await put_notebook(einstein, f"{workdir}/v.ipynb", "first = 1")
    await put_notebook(einstein, path, "second = 2")  # the first content becomes a CS3 version
    async with bridge_einstein.client() as http:
        file_id = (await http.get("api/cs3collab/file-id", params={"path": api_path(path, home)})).json()["fileId"]
        listing = await http.get(f"api/cs3collab/versions/{file_id}", params={"limit": 10})
        assert listing.status_code == 200, listing.text
        versions = listing.json()["versions"]
        assert [v["current"] for v in versions] == [True, False]
        old = versions[1]["key"]
        content = await http.get(f"api/cs3collab/versions/{file_id}/{quote(old, safe='')}", params={"type": "notebook"})
        assert content.status_code == 200
        assert content.headers["Content-Type"].startswith("application/json")
        assert [c["source"] for c in content.json()["cells"]] == ["first = 1"]

        tag = await http.post(f"api/cs3collab/versions/{file_id}/tags", json={"name": "sent / to referee", "key": "current"})
        assert tag.status_code == 200, tag.text
        tagged = (await http.get(f"api/cs3collab/versions/{file_id}")).json()
        assert tagged["versions"][0]["tags"] == ["sent / to referee"]
        untag = await http.delete(f"api/cs3collab/versions/{file_id}/tags/{quote('sent / to referee', safe='')}")
        assert untag.status_code == 200, untag.text
        assert (await http.get(f"api/cs3collab/versions/{file_id}")).json()["versions"][0]["tags"] == []

        # the service's errors come through: an unknown version, a bad tag name
        unknown = await http.get(f"api/cs3collab/versions/{file_id}/no-such-key")
        assert unknown.status_code == 404
        bad = await http.post(f"api/cs3collab/versions/{file_id}/tags", json={"name": " ", "key": "current"})
        assert bad.status_code == 400
        # and only version URLs are forwarded
        assert (await http.get(f"api/cs3collab/versions/{file_id}/a/b/c/d")).status_code == 400


async def test_versions_need_jupyter_auth_and_xsrf(bridge_login, einstein, workdir):
    home = await einstein.get_home()
    path = await put_notebook(einstein, f"{workdir}/auth.ipynb", "x = 1")
    async with bridge_login.client(token=False) as http:
        assert (await http.get("api/cs3collab/file-id", params={"path": "x.ipynb"})).status_code == 403
        assert (await http.get("login")).status_code == 200
        answer = await http.post(
            "login", data={"username": "einstein", "password": DEMO_PASSWORDS["einstein"], "_xsrf": http.cookies["_xsrf"]}
        )
        assert answer.status_code == 302
        file_id = (await http.get("api/cs3collab/file-id", params={"path": api_path(path, home)})).json()["fileId"]
        body = {"name": "v1", "key": "current"}
        assert (await http.post(f"api/cs3collab/versions/{file_id}/tags", json=body)).status_code == 403
        with_xsrf = await http.post(
            f"api/cs3collab/versions/{file_id}/tags", json=body, headers={"X-XSRFToken": http.cookies["_xsrf"]}
        )
        assert with_xsrf.status_code == 200, with_xsrf.text
