"""The session request: one room per file, however the file is named."""

import httpx
from urllib.parse import quote

from cs3collab.cs3 import format_resource_id, roles
from cs3collab.cs3.shares import user_grantee
from tests.service.rtc import put_notebook
from tests.support.yclient import connect, open_session, wait_for


async def test_a_percent_in_a_name_is_not_decoded_twice(svc, einstein, workdir):
    path = await put_notebook(einstein, f"{workdir}/a%41b.ipynb", "x = 1")
    session = await open_session(svc.url, einstein.token, path)
    info = await einstein.files.stat(path)
    assert session.fileId == format_resource_id(info.id)


async def test_owner_path_and_recipient_resource_id_reach_one_room(svc, einstein, marie, workdir):
    path = await put_notebook(einstein, f"{workdir}/shared.ipynb", "a = 1")
    info = await einstein.files.stat(path)
    await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    by_path = await open_session(svc.url, einstein.token, path)
    # marie knows the file only by its resource id (Reva form, in place of a path)
    by_id = await open_session(svc.url, marie.token, format_resource_id(info.id))
    assert by_id.fileId == by_path.fileId and by_id.room == by_path.room
    async with connect(svc.url, einstein.token, path) as owner:
        async with connect(svc.url, marie.token, format_resource_id(info.id)) as recipient:
            text = recipient.document.ycells[0]["source"]
            text.insert(len(text), "  # marie")
            await wait_for(owner.doc, lambda: "# marie" in owner.document.get()["cells"][0]["source"])


async def test_a_folder_or_junk_is_a_bad_request(svc, einstein, workdir):
    async with httpx.AsyncClient() as http:
        headers = {"Authorization": f"Bearer {einstein.token}"}
        body = {"format": "json", "type": "notebook"}
        folder = await http.put(f"{svc.url}/api/collaboration/session/{quote(workdir, safe='')}", json=body, headers=headers)
        assert folder.status_code == 400 and "not a file" in folder.json()["message"]
        junk = await http.put(f"{svc.url}/api/collaboration/session/no-such-form", json=body, headers=headers)
        assert junk.status_code == 400
        kind = await http.put(
            f"{svc.url}/api/collaboration/session/{quote(workdir + '/x.ipynb', safe='')}",
            json={"format": "base64", "type": "blob"}, headers=headers,
        )
        assert kind.status_code == 400 and "unsupported document type" in kind.json()["message"]
