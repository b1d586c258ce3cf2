"""Version history of a federated notebook (issue 13, point 3): marie at
site B (cesnet.test) lists, previews, tags and, as an editor, restores the
versions of a notebook that lives at site A (cernbox.test), through her own
Jupyter server and site A's service with the share's credentials (the path
her room already uses), never with an account at A."""

from __future__ import annotations

from urllib.parse import quote

import nbformat
from nbformat import v4

from cs3collab.cs3 import CS3Client, roles
from tests.conftest import DEMO_PASSWORDS
from tests.federation.test_browse_federated import SHARED, received_id


async def accepted(fed, share) -> str:
    """marie accepts the share at B; its contents path there."""
    share_id = await received_id(fed, share.id.opaque_id)
    async with fed.lab_b.http() as http:
        answer = await http.post(f"/api/cs3collab/received/federated/{quote(share_id, safe='')}",
                                 json={"state": "accepted"})
        assert answer.status_code == 200, answer.text
        return answer.json()["path"]


async def test_marie_at_b_lists_previews_tags_and_restores_versions_of_a_notebook_at_a(fed):
    path, info, share = await fed.share(roles.EDITOR, "first = 1")
    # a second version at A: the first one becomes an older version
    second = v4.new_notebook(cells=[v4.new_code_cell("second = 2")])
    await fed.einstein.files.upload(path, nbformat.writes(second).encode())
    at_b = await accepted(fed, share)
    assert at_b == f"{SHARED}/{info.name}"

    async with fed.lab_b.http() as http:
        named = await http.get("/api/cs3collab/file-id", params={"path": at_b, "type": "notebook"})
        assert named.status_code == 200, named.text
        file_id = quote(named.json()["fileId"], safe="")

        listing = await http.get(f"/api/cs3collab/versions/{file_id}")
        assert listing.status_code == 200, listing.text
        versions = listing.json()["versions"]
        assert versions[0]["current"] and len(versions) >= 2
        older = versions[-1]

        preview = await http.get(f"/api/cs3collab/versions/{file_id}/{quote(older['key'], safe='')}",
                                 params={"type": "notebook"})
        assert preview.status_code == 200, preview.text
        assert preview.json()["cells"][0]["source"] == "first = 1"

        tagged = await http.post(f"/api/cs3collab/versions/{file_id}/tags",
                                 json={"name": "from cesnet", "key": older["key"]})
        assert tagged.status_code == 200, tagged.text

        # File info at B tells A's facts: size, modification time, versions, and the live room's lock
        about = (await http.get("/api/cs3collab/info", params={"path": at_b})).json()
        assert about["versions"] == len(versions) - 1
        assert about["size"] == versions[0]["size"] and about["mtime"]

        # Jupyter's checkpoints at B answer from A's versions (not 501)
        checkpoints = await http.get(f"/api/contents/{quote(at_b)}/checkpoints")
        assert checkpoints.status_code == 200, checkpoints.text
        assert len(checkpoints.json()) == len(versions) - 1  # the older versions, newest first

        restored = await http.post(f"/api/cs3collab/versions/{file_id}/{quote(older['key'], safe='')}/restore")
        assert restored.status_code == 200, restored.text

    # at A, the file is the first version again, and the tag is einstein's to see too
    stored = nbformat.reads((await fed.einstein.files.download(path)).decode(), as_version=4)
    assert [c.source for c in stored.cells] == ["first = 1"]
    async with CS3Client(fed.b.gateway) as client:  # marie has no account at A: only at B
        marie = await client.login("marie", DEMO_PASSWORDS["marie"])
        assert marie.user.id.idp == "cesnet.test"


async def test_a_viewer_at_b_lists_but_cannot_restore(fed):
    path, info, share = await fed.share(roles.VIEWER, "only = 1")
    await fed.einstein.files.upload(path, nbformat.writes(v4.new_notebook(cells=[v4.new_code_cell("x")])).encode())
    at_b = await accepted(fed, share)
    async with fed.lab_b.http() as http:
        named = await http.get("/api/cs3collab/file-id", params={"path": at_b, "type": "notebook"})
        assert named.status_code == 200, named.text
        file_id = quote(named.json()["fileId"], safe="")
        listing = await http.get(f"/api/cs3collab/versions/{file_id}")
        assert listing.status_code == 200, listing.text
        older = listing.json()["versions"][-1]
        refused = await http.post(f"/api/cs3collab/versions/{file_id}/{quote(older['key'], safe='')}/restore")
        assert refused.status_code == 403, refused.text
        # another app locks the file at A: File info at B says so
        await fed.einstein.locks.set(path, lock_id="office-lock", app_name="Collabora Online", lifetime=300)
        about = (await http.get("/api/cs3collab/info", params={"path": at_b})).json()
        assert about["lock"]["app"] == "Collabora Online" and about["lock"]["expires"]
        # and who holds it, named by A's service (GetUser there), in the shape File info at home
        # gives its own locks' holders (tests/jupyter/test_browse.py)
        einstein = {"displayName": "Albert Einstein", "username": "einstein", "idp": "cernbox.test"}
        assert about["lock"]["holder"] == einstein
