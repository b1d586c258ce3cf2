"""A folder shared through OCM: marie at site B works inside einstein's
``analysis/`` at site A, through her own Jupyter server only.

She lists the folder (and a folder in it), opens the notebook in it live in
einstein's room at A, reads and saves the data file beside it through A's
content route, and is refused what lies outside the share or beyond her
role. Removing the folder share closes her room.
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

import anyio
import httpx
import nbformat
from nbformat import v4

from cs3collab.cs3 import CS3Client, roles
from cs3collab.cs3.ocm import federated_user
from cs3collab.jupyter.ocm_remote import ocm_target, set_signing_key, with_token_endpoint
from tests.conftest import DEMO_PASSWORDS
from tests.federation.conftest import SHARED, room_through_lab
from tests.kernels.kernelclient import lab_kernel, open_kernel_session, outputs_text
from tests.service.rtc import sources, type_text
from tests.support.yclient import connect, wait_for

EVENTS = "mass_gev\n124.9\n125.3\n"


async def share_folder(fed, role: str):
    """A fresh folder at A (a notebook, a CSV, a sub-folder) shared with marie; (path at A, its name, the share)."""
    home = await fed.einstein.get_home()
    name = f"analysis-{uuid.uuid4().hex[:6]}"
    folder = f"{home}/{name}"
    await fed.einstein.files.mkdir(folder)
    await fed.einstein.files.mkdir(f"{folder}/runs")
    nb = v4.new_notebook(cells=[v4.new_code_cell("import csv"), v4.new_code_cell("rows = 0")])
    await fed.einstein.files.upload(f"{folder}/analysis.ipynb", nbformat.writes(nb).encode())
    await fed.einstein.files.upload(f"{folder}/events.csv", EVENTS.encode())
    await fed.einstein.files.upload(f"{folder}/runs/run1.csv", b"mass_gev\n91.2\n")
    info = await fed.einstein.files.stat(folder)
    share = await fed.einstein.ocm.create_share(info.id, federated_user("marie", "cesnet.test"), role)
    return folder, name, share


async def marie_authorization(fed, share) -> tuple[str, str]:
    """(A's service URL, the Authorization marie's server sends) for einstein's share, as site B builds it."""
    async with CS3Client(fed.b.gateway) as client:
        marie = await client.login("marie", DEMO_PASSWORDS["marie"])
        [received] = [r for r in await marie.ocm.list_received() if r.remote_share_id == share.id.opaque_id]
        target = await with_token_endpoint(ocm_target(received), marie)
        set_signing_key(fed.b.data_dir / "ocm-signing-key.pem")  # as site B's servers sign (OCM 1.4)
        try:
            return target.service_url, await target.authorization_header()
        finally:
            set_signing_key(None)


async def test_folder_listed_notebook_live_and_files_through_a(fed):
    folder, name, share = await share_folder(fed, roles.EDITOR)
    base = f"{SHARED}/{name}"
    async with fed.lab_b.http() as http:
        top = (await http.get(f"/api/contents/{quote(SHARED)}")).json()
        [entry] = [m for m in top["content"] if m["name"] == name]
        assert (entry["type"], entry["writable"]) == ("directory", True)

        listing = await http.get(f"/api/contents/{quote(base)}", params={"content": 1})
        assert listing.status_code == 200, listing.text
        kinds = {m["name"]: (m["type"], m["path"]) for m in listing.json()["content"]}
        assert kinds == {"analysis.ipynb": ("notebook", f"{base}/analysis.ipynb"),
                         "events.csv": ("file", f"{base}/events.csv"), "runs": ("directory", f"{base}/runs")}
        nested = (await http.get(f"/api/contents/{quote(base)}/runs", params={"content": 1})).json()
        assert [m["name"] for m in nested["content"]] == ["run1.csv"]

        events = (await http.get(f"/api/contents/{quote(base)}/events.csv", params={"content": 1})).json()
        assert (events["content"], events["format"], events["writable"]) == (EVENTS, "text", True)
        raw = await http.get(f"/files/{quote(base)}/events.csv")
        assert raw.status_code == 200 and raw.text == EVENTS
        about = (await http.get("/api/cs3collab/info", params={"path": f"{base}/events.csv"})).json()
        assert (about["type"], about["size"], about["owner"]["idp"]) == ("file", len(EVENTS), "cernbox.test")
        assert about["permissions"] == {"role": "editor", "can": ["read", "write"]}

        saved = await http.put(f"/api/contents/{quote(base)}/events.csv",
                               json={"type": "file", "format": "text", "content": EVENTS + "125.0\n"})
        assert saved.status_code == 200, saved.text
        assert await fed.einstein.files.download(f"{folder}/events.csv") == (EVENTS + "125.0\n").encode()
        # a new notebook saved in the folder at B is written at A
        fresh = v4.new_notebook(cells=[v4.new_code_cell("fit = None")])
        created = await http.put(f"/api/contents/{quote(base)}/fit.ipynb", json={"type": "notebook", "content": fresh})
        assert created.status_code in (200, 201) and created.json()["type"] == "notebook", created.text
        at_a = nbformat.reads((await fed.einstein.files.download(f"{folder}/fit.ipynb")).decode(), as_version=4)
        assert [c.source for c in at_a.cells] == ["fit = None"]
        missing = await http.get(f"/api/contents/{quote(base)}/nothing.csv")
        assert missing.status_code == 404, missing.text

    async with connect(fed.svc_a.url, fed.einstein.token, f"{folder}/analysis.ipynb") as einstein, \
            room_through_lab(fed.lab_b, f"{base}/analysis.ipynb") as marie:
        type_text(marie, 0, "  # from Prague")
        await wait_for(einstein.doc, lambda: sources(einstein)[0] == "import csv  # from Prague")
        type_text(einstein, 1, "  # from Geneva")
        await wait_for(marie.doc, lambda: sources(marie)[1] == "rows = 0  # from Geneva")

        # removing the folder share ends her session in the room at A
        await fed.einstein.ocm.remove_share(share.id.opaque_id)
        with anyio.fail_after(15):  # A re-checks access every 0.5 s
            await marie.connection.wait_closed()
        assert marie.connection.close_code == 1003 and "access_revoked" in marie.connection.close_reason


async def test_paths_outside_the_share_are_refused_at_a(fed):
    _, _, share = await share_folder(fed, roles.EDITOR)
    _, other_name, other = await share_folder(fed, roles.EDITOR)
    url, authorization = await marie_authorization(fed, share)
    content = f"{url}/api/collaboration/ocm/{quote(share.id.opaque_id, safe='')}/content"
    async with httpx.AsyncClient(timeout=30, headers={"Authorization": authorization}) as http:
        inside = await http.get(content, params={"path": "runs/run1.csv"})
        assert inside.status_code == 200 and inside.json()["content"] == "mass_gev\n91.2\n", inside.text
        for bad in ("../" + other_name, "runs/../../x", "/home/einstein", "runs//run1.csv"):
            refused = await http.get(content, params={"path": bad})
            assert refused.status_code == 403 and "share" in refused.json()["message"], (bad, refused.text)
        session = await http.put(f"{url}/api/collaboration/session/{quote(f'ocm:{share.id.opaque_id}/../x', safe='')}",
                                 json={"format": "json", "type": "notebook"})
        assert session.status_code == 403, session.text
        # this share's token does not open another share of the same owner
        other_url = f"{url}/api/collaboration/ocm/{quote(other.id.opaque_id, safe='')}/content"
        assert (await http.get(other_url)).status_code in (401, 403)
        missing = await http.get(content, params={"path": "nothing.csv"})
        assert missing.status_code == 404 and "'nothing.csv' is not in this share" in missing.json()["message"]
        assert share.resource_id.opaque_id not in missing.text  # no raw id for the user


async def test_a_viewer_reads_but_cannot_write(fed):
    folder, name, _ = await share_folder(fed, roles.VIEWER)
    base = f"{SHARED}/{name}"
    async with fed.lab_b.http() as http:
        events = (await http.get(f"/api/contents/{quote(base)}/events.csv", params={"content": 1})).json()
        assert (events["content"], events["writable"]) == (EVENTS, False)
        refused = await http.put(f"/api/contents/{quote(base)}/events.csv",
                                 json={"type": "file", "format": "text", "content": "vandal\n"})
        assert refused.status_code == 403 and "does not allow you to write 'events.csv'" in refused.text, refused.text
        about = (await http.get("/api/cs3collab/info", params={"path": f"{base}/events.csv"})).json()
        assert about["permissions"] == {"role": "viewer", "can": ["read"]}
    assert await fed.einstein.files.download(f"{folder}/events.csv") == EVENTS.encode()
    async with room_through_lab(fed.lab_b, f"{base}/analysis.ipynb") as marie:
        role = await marie.channel.wait_raw(lambda m: m.get("type") == "cs3collab:role")
        assert role["role"] == "viewer"


async def test_the_notebook_in_the_folder_runs_at_a_beside_its_data(fed):
    """The demo's story: marie at B runs a cell of the notebook inside the
    folder in its shared kernel at A, which reads the data beside it at A."""
    folder, name, _ = await share_folder(fed, roles.EDITOR)
    async with connect(fed.svc_a.url, fed.einstein.token, f"{folder}/analysis.ipynb") as room:
        cells = [str(cell["id"]) for cell in room.document.ycells]
        session = await open_kernel_session(fed.lab_b.url, fed.lab_b.token, f"{SHARED}/{name}/analysis.ipynb")
        async with lab_kernel(fed.lab_b.url, fed.lab_b.token, session["kernel"]["id"]) as marie:
            run = await marie.execute("print(len(open('events.csv').read().splitlines()))", cells[1])
            assert (await marie.reply(run, timeout=90))["content"]["status"] == "ok"
            await wait_for(room.doc, lambda: outputs_text(room, 1) == f"{len(EVENTS.splitlines())}\n", timeout=30)
