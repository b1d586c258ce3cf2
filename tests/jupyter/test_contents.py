"""The CS3 contents manager against a real devstack: in-process, and through
a real ``jupyter server`` over the REST API."""

from __future__ import annotations

import base64
import copy
import json
import os
import uuid

import nbformat
import pytest
from nbformat import v4
from tornado.web import HTTPError

from cs3collab.cs3 import roles
from cs3collab.cs3.shares import ACCEPTED, user_grantee
from cs3collab.jupyter.checkpoints import version_key
from cs3collab.jupyter.contents import HASH_ALGORITHM
from jupyter_server.services.contents.handlers import validate_model

SHARED = "Shared with me"
TEXT = "naïve café ✓ — 日本語\nzweite Zeile\n"
BINARY = bytes(range(256)) * 64


def rich_notebook() -> nbformat.NotebookNode:
    """A notebook with non-ASCII text everywhere and several kinds of output."""
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.cells.append(v4.new_markdown_cell("# Grüße aus Genève — Ψ ∮ E⋅da = Q/ε₀ 🚀"))
    code = v4.new_code_cell("print('héllo wörld ✓')\n{'π': 3.14159}", execution_count=1)
    code.outputs = [
        v4.new_output("stream", name="stdout", text="héllo wörld ✓\n"),
        v4.new_output("execute_result", data={"text/plain": "{'π': 3.14159}"}, execution_count=1),
        v4.new_output(
            "display_data",
            data={"image/png": base64.b64encode(b"\x89PNG fake").decode(), "text/plain": "<Figure — ω>"},
        ),
        v4.new_output("error", ename="ValueError", evalue="schlecht ☹", traceback=["Traceback ⟶"]),
    ]
    nb.cells.append(code)
    nb.cells.append(v4.new_raw_cell("ραw ✓"))
    return nb


def without_trust(nb) -> dict:
    data = copy.deepcopy(dict(nb))
    for cell in data["cells"]:
        cell.get("metadata", {}).pop("trusted", None)
    return json.loads(json.dumps(data))


async def share(owner, recipient, path: str, role: str):
    """Share ``path`` (a CS3 path) with ``recipient`` and accept it; returns the resource info."""
    created = await owner.shares.create(path, user_grantee(recipient.user.id), role)
    await recipient.shares.update_received(created.id.opaque_id, state=ACCEPTED)
    return await owner.files.stat(path)


# -- in-process --------------------------------------------------------------------------------


async def test_home_listing(cm_einstein, einstein, wd):
    root = await cm_einstein.get("")
    validate_model(root, expect_content=True)
    assert root["type"] == "directory" and root["path"] == "" and root["writable"] is True
    by_name = {m["name"]: m for m in root["content"]}
    assert by_name[wd]["type"] == "directory" and by_name[wd]["path"] == wd
    assert by_name[SHARED]["type"] == "directory" and by_name[SHARED]["writable"] is False
    for model in root["content"]:
        validate_model(model, expect_content=False)
    assert await cm_einstein.dir_exists(wd) and await cm_einstein.dir_exists(SHARED)
    assert not await cm_einstein.file_exists(wd)
    assert await cm_einstein.is_hidden(f"{wd}/.secret") and not await cm_einstein.is_hidden(wd)


async def test_notebook_round_trip(cm_einstein, einstein, workdir, wd):
    nb = rich_notebook()
    path = f"{wd}/Résumé ✓.ipynb"
    saved = await cm_einstein.save({"type": "notebook", "content": nb}, path)
    validate_model(saved, expect_content=False)
    assert saved["type"] == "notebook" and saved["name"] == "Résumé ✓.ipynb" and saved["writable"] is True
    loaded = await cm_einstein.get(path)
    validate_model(loaded, expect_content=True)
    assert loaded["format"] == "json" and loaded["size"] == saved["size"] > 0
    assert without_trust(loaded["content"]) == without_trust(nb)
    raw = await einstein.files.download(f"{workdir}/Résumé ✓.ipynb")
    assert "Grüße aus Genève".encode() in raw  # stored as UTF-8, not \u-escaped
    assert nbformat.reads(raw.decode(), as_version=4).cells[1].outputs[0].text == "héllo wörld ✓\n"


async def test_text_and_binary_round_trip(cm_einstein, einstein, workdir, wd):
    await cm_einstein.save({"type": "file", "format": "text", "content": TEXT}, f"{wd}/notes.txt")
    text = await cm_einstein.get(f"{wd}/notes.txt")
    validate_model(text, expect_content=True)
    assert (text["type"], text["format"], text["content"], text["mimetype"]) == ("file", "text", TEXT, "text/plain")
    assert text["size"] == len(TEXT.encode())

    encoded = base64.b64encode(BINARY).decode()
    await cm_einstein.save({"type": "file", "format": "base64", "content": encoded}, f"{wd}/blob.bin")
    blob = await cm_einstein.get(f"{wd}/blob.bin")
    assert (blob["format"], blob["mimetype"]) == ("base64", "application/octet-stream")
    assert base64.b64decode(blob["content"]) == BINARY
    assert await einstein.files.download(f"{workdir}/blob.bin") == BINARY
    as_b64 = await cm_einstein.get(f"{wd}/notes.txt", format="base64")
    assert base64.b64decode(as_b64["content"]).decode() == TEXT
    with pytest.raises(HTTPError) as err:
        await cm_einstein.get(f"{wd}/blob.bin", format="text")
    assert err.value.status_code == 400
    cheap = await cm_einstein.get(f"{wd}/blob.bin", content=False)
    assert cheap["content"] is None and cheap["size"] == len(BINARY)


async def test_hash_is_the_cs3_etag(cm_einstein, einstein, workdir, wd):
    await cm_einstein.new(path=f"{wd}/h.ipynb")
    model = await cm_einstein.get(f"{wd}/h.ipynb", content=False, require_hash=True)
    validate_model(model, expect_content=False, expect_hash=True)
    assert model["hash"] == (await einstein.files.stat(f"{workdir}/h.ipynb")).etag
    assert model["hash_algorithm"] == HASH_ALGORITHM
    assert (await cm_einstein.get(f"{wd}/h.ipynb", content=False))["hash"] is None


async def test_new_untitled_copy_rename_delete(cm_einstein, einstein, workdir, wd):
    first = await cm_einstein.new_untitled(path=wd, type="notebook")
    second = await cm_einstein.new_untitled(path=wd, ext=".ipynb")
    folder = await cm_einstein.new_untitled(path=wd, type="directory")
    text = await cm_einstein.new_untitled(path=wd, ext=".txt")
    assert [first["name"], second["name"], folder["name"], text["name"]] == [
        "Untitled.ipynb", "Untitled1.ipynb", "Untitled Folder", "untitled.txt"
    ]
    assert (await cm_einstein.get(first["path"]))["content"]["nbformat"] == 4
    copied = await cm_einstein.copy(first["path"])
    assert copied["name"] == "Untitled-Copy1.ipynb"

    before = await einstein.files.stat(f"{workdir}/Untitled.ipynb")
    renamed = await cm_einstein.update({"path": f"{wd}/Untitled Folder/Renamed ✓.ipynb"}, first["path"])
    assert renamed["path"] == f"{wd}/Untitled Folder/Renamed ✓.ipynb"
    after = await einstein.files.stat(f"{workdir}/Untitled Folder/Renamed ✓.ipynb")
    assert after.id == before.id
    assert await cm_einstein.cs3_reference(renamed["path"]) == f"{workdir}/Untitled Folder/Renamed ✓.ipynb"
    assert not await cm_einstein.file_exists(first["path"])
    with pytest.raises(HTTPError) as err:
        await cm_einstein.rename(second["path"], copied["path"])
    assert err.value.status_code == 409

    await cm_einstein.delete(copied["path"])
    assert not await cm_einstein.exists(copied["path"])
    await cm_einstein.delete(folder["path"])
    assert not await cm_einstein.dir_exists(folder["path"])
    with pytest.raises(HTTPError) as err:
        await cm_einstein.delete("")
    assert err.value.status_code == 400


async def test_chunked_upload_is_assembled_and_streamed(cm_einstein, einstein, workdir, wd, tmp_path):
    cm_einstein.upload_dir = str(tmp_path)
    payload = os.urandom(3 * 512 * 1024 + 17)
    parts = [payload[i:i + 512 * 1024] for i in range(0, len(payload), 512 * 1024)]
    path = f"{wd}/big.dat"
    for number, part in enumerate(parts, start=1):
        chunk = -1 if number == len(parts) else number
        model = await cm_einstein.save(
            {"type": "file", "format": "base64", "content": base64.b64encode(part).decode(), "chunk": chunk}, path
        )
        validate_model(model)
        if chunk != -1:
            assert not await einstein.files.exists(f"{workdir}/big.dat")  # nothing in CS3 before the last chunk
            assert model["size"] == sum(len(p) for p in parts[:number])
    assert model["size"] == len(payload)
    assert await einstein.files.download(f"{workdir}/big.dat") == payload
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone
    async with cm_einstein.open_file(path) as (info, chunks):
        streamed = b"".join([c async for c in chunks])
    assert streamed == payload and info["size"] == len(payload)
    with pytest.raises(HTTPError) as err:
        await cm_einstein.save({"type": "file", "format": "base64", "content": "", "chunk": 2}, f"{wd}/orphan.dat")
    assert err.value.status_code == 400


async def test_shared_with_me(cm_marie, cm_einstein, einstein, marie, workdir):
    tag = uuid.uuid4().hex[:6]
    folder = f"{workdir}/project-{tag}"
    await einstein.files.mkdir(folder)
    await einstein.files.upload(f"{folder}/data ✓.txt", TEXT.encode())
    analysis = rich_notebook()
    await einstein.files.upload(f"{folder}/analysis.ipynb", nbformat.writes(analysis).encode())
    viewer_nb = f"{workdir}/paper-{tag}.ipynb"
    await einstein.files.upload(viewer_nb, nbformat.writes(v4.new_notebook()).encode())
    folder_info = await share(einstein, marie, folder, roles.EDITOR)
    viewer_info = await share(einstein, marie, viewer_nb, roles.VIEWER)

    listing = await cm_marie.get(SHARED)
    validate_model(listing, expect_content=True)
    assert listing["writable"] is False
    entries = {m["name"]: m for m in listing["content"]}
    project, paper = entries[f"project-{tag}"], entries[f"paper-{tag}.ipynb"]
    assert (project["type"], project["writable"], project["path"]) == ("directory", True, f"{SHARED}/project-{tag}")
    assert (paper["type"], paper["writable"]) == ("notebook", False)
    assert (await cm_marie.get(paper["path"], content=False))["writable"] is False

    inside = await cm_marie.get(project["path"])
    assert sorted(m["name"] for m in inside["content"]) == ["analysis.ipynb", "data ✓.txt"]
    text = await cm_marie.get(f"{project['path']}/data ✓.txt")
    assert text["content"] == TEXT and text["writable"] is True
    nb = await cm_marie.get(f"{project['path']}/analysis.ipynb")
    assert without_trust(nb["content"]) == without_trust(analysis)

    # the editor writes through the share; the owner sees it
    await cm_marie.save({"type": "file", "format": "text", "content": "by marie ✓"}, f"{project['path']}/data ✓.txt")
    assert await einstein.files.download(f"{folder}/data ✓.txt") == "by marie ✓".encode()
    await cm_marie.new_untitled(path=project["path"], type="notebook")
    assert await einstein.files.exists(f"{folder}/Untitled.ipynb")

    # the bridge gets the resources' own ids: the owner's room
    assert await cm_marie.cs3_reference(paper["path"]) == viewer_info.id
    assert await cm_marie.cs3_reference(project["path"]) == folder_info.id
    nested = await einstein.files.stat(f"{folder}/analysis.ipynb")
    assert await cm_marie.cs3_reference(f"{project['path']}/analysis.ipynb") == nested.id
    hashed = await cm_marie.get(paper["path"], content=False, require_hash=True)
    assert hashed["hash"] == (await einstein.files.stat(viewer_nb)).etag

    # nothing can be created in the virtual folder
    with pytest.raises(HTTPError) as err:
        await cm_marie.new(path=f"{SHARED}/new-{tag}.ipynb")
    assert err.value.status_code == 403
    with pytest.raises(HTTPError) as err:
        await cm_marie.delete(project["path"])
    assert err.value.status_code == 403


async def test_shared_names_are_disambiguated(cm_marie, einstein, marie, workdir):
    tag = uuid.uuid4().hex[:6]
    for sub in ("a", "b"):
        await einstein.files.mkdir(f"{workdir}/{sub}")
        await einstein.files.upload(f"{workdir}/{sub}/same-{tag}.txt", sub.encode())
        await share(einstein, marie, f"{workdir}/{sub}/same-{tag}.txt", roles.VIEWER)
    names = [m["name"] for m in (await cm_marie.get(SHARED))["content"] if tag in m["name"]]
    assert sorted(names) == [f"same-{tag} (2).txt", f"same-{tag}.txt"]
    assert (await cm_marie.get(f"{SHARED}/same-{tag}.txt"))["content"] == "a"
    assert (await cm_marie.get(f"{SHARED}/same-{tag} (2).txt"))["content"] == "b"


async def test_checkpoints_are_versions(cm_einstein, einstein, workdir, wd):
    path = f"{wd}/cp.ipynb"
    nb = v4.new_notebook(cells=[v4.new_code_cell("version = 1  # ✓")])
    await cm_einstein.save({"type": "notebook", "content": nb}, path)
    etag0 = (await einstein.files.stat(f"{workdir}/cp.ipynb")).etag
    current = await cm_einstein.create_checkpoint(path)  # no version yet: the content itself, nothing written
    assert current["id"] == "current"
    assert (await einstein.files.stat(f"{workdir}/cp.ipynb")).etag == etag0
    assert [c["id"] for c in await cm_einstein.list_checkpoints(path)] == ["current"]
    await cm_einstein.restore_checkpoint("current", path)  # a no-op
    assert (await einstein.files.stat(f"{workdir}/cp.ipynb")).etag == etag0

    nb2 = v4.new_notebook(cells=[v4.new_code_cell("version = 2")])
    await cm_einstein.save({"type": "notebook", "content": nb2}, path)
    etag = (await einstein.files.stat(f"{workdir}/cp.ipynb")).etag
    first = await cm_einstein.create_checkpoint(path)  # the save kept version 1: nothing is written
    assert (await einstein.files.stat(f"{workdir}/cp.ipynb")).etag == etag
    listed = await cm_einstein.list_checkpoints(path)
    assert [c["id"] for c in listed] == [first["id"]]
    assert all(c["last_modified"].tzinfo is not None for c in listed)
    assert b"version = 1" in await einstein.versions.download(f"{workdir}/cp.ipynb", version_key(first["id"]))

    await cm_einstein.restore_checkpoint(first["id"], path)
    assert (await cm_einstein.get(path))["content"].cells[0].source == "version = 1  # ✓"
    with pytest.raises(HTTPError) as err:
        await cm_einstein.delete_checkpoint(first["id"], path)
    assert err.value.status_code == 405
    with pytest.raises(HTTPError) as err:
        await cm_einstein.restore_checkpoint("bm90LWEta2V5", path)
    assert err.value.status_code == 404
    assert await cm_einstein.list_checkpoints(wd) == []


async def test_errors(cm_einstein, cm_marie, cm_richard, einstein, marie, workdir, wd):
    with pytest.raises(HTTPError) as err:
        await cm_einstein.get(f"{wd}/missing ✓.ipynb")
    assert err.value.status_code == 404 and f"{wd}/missing ✓.ipynb" in err.value.log_message
    with pytest.raises(HTTPError) as err:
        await cm_einstein.get(f"{SHARED}/no-such-share")
    assert err.value.status_code == 404

    # viewer save → 403 with the CS3 message
    tag = uuid.uuid4().hex[:6]
    await einstein.files.upload(f"{workdir}/ro-{tag}.txt", b"read only")
    await share(einstein, marie, f"{workdir}/ro-{tag}.txt", roles.VIEWER)
    with pytest.raises(HTTPError) as err:
        await cm_marie.save({"type": "file", "format": "text", "content": "x"}, f"{SHARED}/ro-{tag}.txt")
    assert err.value.status_code == 403 and f"ro-{tag}.txt" in err.value.log_message
    assert "PERMISSION_DENIED" in err.value.log_message
    assert await einstein.files.download(f"{workdir}/ro-{tag}.txt") == b"read only"

    # locked by another application → 409
    await cm_einstein.save({"type": "file", "format": "text", "content": "v1"}, f"{wd}/locked.txt")
    await einstein.locks.set(f"{workdir}/locked.txt", lock_id=uuid.uuid4().hex, app_name="other-app", lifetime=60)
    with pytest.raises(HTTPError) as err:
        await cm_einstein.save({"type": "file", "format": "text", "content": "v2"}, f"{wd}/locked.txt")
    assert err.value.status_code == 409 and "locked" in err.value.log_message.lower()
    with pytest.raises(HTTPError) as err:
        await cm_einstein.delete(f"{wd}/locked.txt")
    assert err.value.status_code == 409

    # a stranger: no share, so nothing to name it by
    with pytest.raises(HTTPError) as err:
        await cm_richard.get(f"{SHARED}/ro-{tag}.txt")
    assert err.value.status_code == 404
    assert f"ro-{tag}.txt" not in {m["name"] for m in (await cm_richard.get(SHARED))["content"]}
    # ... and a path climbing out of the home is refused (dot segments are hidden, and invalid)
    with pytest.raises(HTTPError) as err:
        await cm_richard.get(f"../einstein/{wd}")
    assert err.value.status_code == 404
    with pytest.raises(HTTPError) as err:
        await cm_richard.cs3_reference(f"x/../../einstein/{wd}")
    assert err.value.status_code == 400


async def test_share_revoked_is_gone(cm_marie, einstein, marie, workdir):
    tag = uuid.uuid4().hex[:6]
    await einstein.files.upload(f"{workdir}/gone-{tag}.txt", b"soon gone")
    created = await einstein.shares.create(f"{workdir}/gone-{tag}.txt", user_grantee(marie.user.id), roles.EDITOR)
    await marie.shares.update_received(created.id.opaque_id, state=ACCEPTED)
    assert (await cm_marie.get(f"{SHARED}/gone-{tag}.txt"))["content"] == "soon gone"
    await einstein.shares.remove(created.id.opaque_id)
    with pytest.raises(HTTPError) as err:
        await cm_marie.get(f"{SHARED}/gone-{tag}.txt")
    assert err.value.status_code in (403, 404)


# -- through a real jupyter server ---------------------------------------------------------------


async def test_rest_round_trip(jp_einstein, einstein, workdir, wd):
    http = jp_einstein.http
    root = await http.get("api/contents")
    assert root.status_code == 200
    assert {m["name"] for m in root.json()["content"]} >= {wd, SHARED}

    nb = rich_notebook()
    path = f"{wd}/rest ✓.ipynb"
    url = jp_einstein.contents(path)
    created = await http.put(url, json={"type": "notebook", "content": nb})
    assert created.status_code == 201, created.text
    loaded = (await http.get(url)).json()
    assert without_trust(loaded["content"]) == without_trust(nb) and loaded["writable"] is True
    saved = await http.put(url, json={"type": "notebook", "content": nb})
    assert saved.status_code == 200
    hashed = (await http.get(url, params={"content": "0", "hash": "1"})).json()
    assert hashed["hash"] == (await einstein.files.stat(f"{workdir}/rest ✓.ipynb")).etag
    assert hashed["hash_algorithm"] == "cs3-etag" and hashed["content"] is None

    blob = await http.put(
        jp_einstein.contents(f"{wd}/b.bin"),
        json={"type": "file", "format": "base64", "content": base64.b64encode(BINARY).decode()},
    )
    assert blob.status_code == 201
    raw = await http.get(f"files/{wd}/b.bin")
    assert raw.status_code == 200 and raw.content == BINARY
    assert raw.headers["Content-Type"] == "application/octet-stream"
    dl = await http.get(f"files/{wd}/rest ✓.ipynb", params={"download": "1"})
    assert dl.headers["Content-Type"] == "application/x-ipynb+json" and "attachment" in dl.headers["Content-Disposition"]

    untitled = await http.post(jp_einstein.contents(wd), json={"type": "notebook"})
    assert untitled.status_code == 201 and untitled.json()["name"] == "Untitled.ipynb"
    renamed = await http.patch(jp_einstein.contents(untitled.json()["path"]), json={"path": f"{wd}/moved.ipynb"})
    assert renamed.status_code == 200 and renamed.json()["path"] == f"{wd}/moved.ipynb"
    assert (await http.delete(jp_einstein.contents(f"{wd}/moved.ipynb"))).status_code == 204

    checkpoint = await http.post(f"{url}/checkpoints")
    assert checkpoint.status_code == 201, checkpoint.text
    listed = (await http.get(f"{url}/checkpoints")).json()
    assert checkpoint.json()["id"] in [c["id"] for c in listed]
    restored = await http.post(f"{url}/checkpoints/{listed[-1]['id']}")
    assert restored.status_code == 204
    refused = await http.delete(f"{url}/checkpoints/{listed[-1]['id']}")
    assert refused.status_code == 405 and "versions" in refused.json()["message"]


async def test_rest_errors(jp_einstein, jp_marie, einstein, marie, workdir, wd):
    missing = await jp_einstein.http.get(jp_einstein.contents(f"{wd}/nope.ipynb"))
    assert missing.status_code == 404 and f"{wd}/nope.ipynb" in missing.text

    tag = uuid.uuid4().hex[:6]
    await einstein.files.upload(f"{workdir}/view-{tag}.ipynb", nbformat.writes(v4.new_notebook()).encode())
    await share(einstein, marie, f"{workdir}/view-{tag}.ipynb", roles.VIEWER)
    url = jp_marie.contents(f"{SHARED}/view-{tag}.ipynb")
    model = (await jp_marie.http.get(url, params={"content": "0"})).json()
    assert model["writable"] is False
    refused = await jp_marie.http.put(url, json={"type": "notebook", "content": v4.new_notebook()})
    assert refused.status_code == 403 and "PERMISSION_DENIED" in refused.json()["message"]

    await einstein.files.upload(f"{workdir}/lock-{tag}.txt", b"v1")
    await einstein.locks.set(f"{workdir}/lock-{tag}.txt", lock_id=uuid.uuid4().hex, app_name="other-app", lifetime=60)
    locked = await jp_einstein.http.put(
        jp_einstein.contents(f"{wd}/lock-{tag}.txt"), json={"type": "file", "format": "text", "content": "v2"}
    )
    assert locked.status_code == 409 and locked.json()["reason"] == "Locked"
    assert f"lock-{tag}.txt" in locked.json()["message"]


# -- OCM: received from another site ---------------------------------------------------------------


@pytest.fixture(scope="module")
async def two_sites(tmp_path_factory):
    """Sites A (cernbox.test) and B (cesnet.test) that know each other for OCM."""
    from tests.support.processes import trusting_sites

    async with trusting_sites(tmp_path_factory.mktemp("jp-ocm")) as (a, b):
        yield a, b


async def test_ocm_shares_are_listed_and_only_notebooks_open(two_sites):
    """Site A here runs no collaboration service (its shares' webapp uri is
    the devstack's ``/app/ocm/<id>``): the notebook and the folder are listed
    as the share's role allows; opening either, a path inside the folder or
    saving reaches out to that uri and fails with a clear error (the
    federation tests cover a site with a service)."""
    from cs3collab.cs3 import CS3Client
    from cs3collab.cs3.ocm import federated_user
    from cs3collab.jupyter.connection import CS3CollabConnection
    from cs3collab.jupyter.contents import OCM_MIMETYPE, CS3ContentsManager
    from cs3collab.jupyter.ocm_remote import set_signing_key
    from tests.conftest import DEMO_PASSWORDS

    a, b = two_sites
    async with CS3Client(a.gateway) as client_a:
        einstein_a = await client_a.login("einstein", DEMO_PASSWORDS["einstein"])
        home = await einstein_a.get_home()
        await einstein_a.files.mkdir(f"{home}/remote-project")
        await einstein_a.files.upload(f"{home}/remote.ipynb", nbformat.writes(v4.new_notebook()).encode())
        for name in ("remote.ipynb", "remote-project"):
            info = await einstein_a.files.stat(f"{home}/{name}")
            await einstein_a.ocm.create_share(info.id, federated_user("marie", "cesnet.test"), roles.EDITOR)

    connection = CS3CollabConnection(gateway=b.gateway, username="marie", password=DEMO_PASSWORDS["marie"])
    cm = CS3ContentsManager(connection=connection)
    set_signing_key(b.data_dir / "ocm-signing-key.pem")  # site B's servers sign their code-flow exchanges
    try:
        listing = await cm.get(SHARED)
        entries = {m["name"]: m for m in listing["content"]}
        nb, folder = entries["remote.ipynb"], entries["remote-project"]
        assert (nb["type"], nb["mimetype"], nb["writable"]) == ("notebook", OCM_MIMETYPE, True)
        assert (folder["type"], folder["mimetype"]) == ("directory", OCM_MIMETYPE)
        validate_model(await cm.get(nb["path"], content=False, require_hash=True), expect_hash=True)
        target = await cm.cs3_reference(nb["path"])
        assert target.service_url.startswith(a.http_url) and target.secret
        with pytest.raises(HTTPError) as err:
            await cm.get(nb["path"])
        assert err.value.status_code == 404 and "sharing site" in err.value.log_message
        inside = await cm.owning_site(f"{folder['path']}/x.ipynb")
        assert (inside.session_name, inside.service_url) == (f"ocm:{inside.share_id}/x.ipynb", target.service_url)
        for call in (cm.get(folder["path"]), cm.get(f"{folder['path']}/x.ipynb"),
                     cm.save({"type": "notebook", "content": v4.new_notebook()}, nb["path"])):
            with pytest.raises(HTTPError) as err:
                await call
            assert err.value.status_code == 404 and "sharing site" in err.value.log_message
        assert await cm.file_exists(nb["path"]) and await cm.dir_exists(folder["path"])
        assert await cm.owning_site("") is None and not await cm.exists(f"{folder['path']}/x.ipynb")
    finally:
        set_signing_key(None)
        await connection.close()
