"""Versions and tags over REST (cs3collab.service.versions), against a real
devstack and a real service process.

What is checked, as a user notices it: the listing names who wrote each
save and pages; an old version comes back as notebook JSON (a broken one as
a clear 422); tags are seen by every participant, move, are removed, and
survive a restart of the service; a restore while a room is open reaches
every connected client without reconnecting and becomes a new CS3 version
naming the restorer; without a room CS3 restores it; viewers list and
fetch but may not tag or restore; bad input is refused with 400/404.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import anyio
import httpx
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from cs3collab.cs3 import roles
from cs3collab.cs3.shares import user_grantee
from cs3collab.service import ids
from tests.service.conftest import start_service
from tests.support.yclient import connect, wait_for

VERSIONS_CHANGED = {"type": "cs3collab:versions-changed"}
# ``svc`` (this module's service process, short timings) and ``start_service``
# come from tests/service/conftest.py


# -- helpers ------------------------------------------------------------------------


def notebook_file(*sources: str) -> bytes:
    return nbformat.writes(new_notebook(cells=[new_code_cell(source) for source in sources])).encode()


def uid(session) -> str:
    return f"{session.user.id.opaque_id}@{session.user.id.idp}"


async def stored_sources(session, path: str) -> list[str]:
    stored = nbformat.reads((await session.files.download(path)).decode(), as_version=4)
    return [cell.source for cell in stored.cells]


def cell_sources(client) -> list[str]:
    return [cell["source"] for cell in client.document.get()["cells"]]


def type_into(client, index: int, text: str) -> None:
    source = client.document.ycells[index]["source"]
    source.insert(len(source), text)


async def api(svc, session, method: str, suffix: str = "", **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {session.token}"} if session is not None else {}
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.request(method, f"{svc.url}/api/collaboration/versions/{suffix}", headers=headers, **kwargs)


async def listing(svc, session, file_id: str, **params) -> dict:
    response = await api(svc, session, "GET", quote(file_id, safe=""), params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def eventually(check, timeout: float = 15.0):
    """Poll CS3 state (it has no push) until ``check()`` returns something truthy."""
    with anyio.fail_after(timeout):
        while True:
            result = await check()
            if result:
                return result
            await anyio.sleep(0.1)


async def wait_raw(client, message: dict) -> None:
    await client.channel.wait_raw(lambda received: received == message)


async def new_file(session, workdir: str, name: str, *contents: bytes) -> tuple[str, str]:
    """Upload ``contents`` one after the other (each overwrite keeps a version)."""
    path = f"{workdir}/{name}"
    for content in contents:
        await session.files.upload(path, content)
    info = await session.files.stat(path)
    return path, ids.file_id_for(info.id)


async def current_authors(svc, session, file_id: str) -> set[str]:
    return {a["uid"] for a in (await listing(svc, session, file_id))["versions"][0]["authors"]}


def tag_url(file_id: str, name: str | None = None) -> str:
    return f"{quote(file_id, safe='')}/tags" + (f"/{quote(name, safe='')}" if name is not None else "")


def version_url(file_id: str, key: str, action: str = "") -> str:
    return f"{quote(file_id, safe='')}/{quote(key, safe='')}" + (f"/{action}" if action else "")


# -- listing ------------------------------------------------------------------------


async def test_listing_names_who_wrote_each_save(svc, einstein, marie, workdir):
    path, file_id = await new_file(einstein, workdir, "authors.ipynb", notebook_file("a = 1", "b = 2"))
    await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    async with connect(svc.url, einstein.token, path) as e, connect(svc.url, marie.token, file_id) as m:
        type_into(e, 0, "  # einstein")
        await eventually(lambda: _has(current_authors(svc, einstein, file_id), {uid(einstein)}))
        await wait_for(m.doc, lambda: cell_sources(m)[0] == "a = 1  # einstein")
        type_into(m, 1, "  # marie")
        await eventually(lambda: _has(current_authors(svc, einstein, file_id), {uid(marie)}))

    full = await listing(svc, einstein, file_id)
    versions = full["versions"]
    assert [v["current"] for v in versions] == [True] + [False] * (len(versions) - 1)
    assert versions[0]["key"] == "current"
    assert [a["uid"] for a in versions[0]["authors"]] == [uid(marie)]
    assert versions[0]["authors"][0]["name"] == marie.user.display_name
    assert versions[0]["authors"][0]["idp"] == marie.user.id.idp  # her institution, for the history panel
    assert [a["uid"] for a in versions[1]["authors"]] == [uid(einstein)]
    assert versions[-1]["authors"] == [], "the uploaded original was not written by the service"
    assert [v["time"] for v in versions] == sorted((v["time"] for v in versions), reverse=True)
    assert all(v["size"] > 0 and v["etag"] for v in versions)
    assert full["total"] == len(versions) == 3
    assert full["tags"] == {}

    # marie (a recipient) sees the same listing; pages cut it where asked
    assert (await listing(svc, marie, file_id))["versions"] == versions
    page = await listing(svc, einstein, file_id, limit=1, offset=1)
    assert page["versions"] == versions[1:2] and page["total"] == 3
    assert (await listing(svc, einstein, file_id, offset=3))["versions"] == []


async def _has(authors_coro, expected: set[str]) -> bool:
    return await authors_coro == expected


# -- fetching -----------------------------------------------------------------------


async def test_fetch_an_old_version_as_notebook_json(svc, einstein, workdir):
    _, file_id = await new_file(einstein, workdir, "old.ipynb", notebook_file("old = 1"), notebook_file("new = 2"))
    versions = (await listing(svc, einstein, file_id))["versions"]
    old_key = versions[1]["key"]

    response = await api(svc, einstein, "GET", version_url(file_id, old_key))
    assert response.status_code == 200, response.text
    old = response.json()
    nbformat.validate(nbformat.from_dict(old))
    assert [cell["source"] for cell in old["cells"]] == ["old = 1"]

    response = await api(svc, einstein, "GET", version_url(file_id, "current"))
    assert [cell["source"] for cell in response.json()["cells"]] == ["new = 2"]

    response = await api(svc, einstein, "GET", version_url(file_id, "no-such-version"))
    assert response.status_code == 404
    assert response.json()["error"] == "not_found" and "no-such-version" in response.json()["message"]


async def test_fetch_a_text_file_version_as_text(svc, einstein, workdir):
    _, file_id = await new_file(einstein, workdir, "notes.txt", b"first draft\n", b"second draft\n")
    old_key = (await listing(svc, einstein, file_id))["versions"][1]["key"]
    response = await api(svc, einstein, "GET", version_url(file_id, old_key))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "first draft\n"


async def test_a_broken_stored_notebook_is_422_with_a_clear_message(svc, einstein, workdir):
    _, file_id = await new_file(einstein, workdir, "broken.ipynb", b'{"cells": [', notebook_file("fixed = 1"))
    old_key = (await listing(svc, einstein, file_id))["versions"][1]["key"]
    response = await api(svc, einstein, "GET", version_url(file_id, old_key))
    assert response.status_code == 422
    assert "not JSON" in response.json()["message"] and old_key in response.json()["message"]


# -- tags ---------------------------------------------------------------------------


async def test_tags_are_seen_by_everyone_move_and_survive_a_restart(site, tmp_path, einstein, marie, richard, workdir):
    path, file_id = await new_file(einstein, workdir, "tagged.ipynb", notebook_file("v = 1"), notebook_file("v = 2"))
    await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    await einstein.shares.create(path, user_grantee(richard.user.id), roles.VIEWER)
    state = tmp_path / "svc"
    async with start_service(site, state) as first:
        versions = (await listing(first, einstein, file_id))["versions"]
        v1 = versions[1]
        tag = {"name": "submitted ✓", "key": v1["key"]}
        response = await api(first, einstein, "POST", tag_url(file_id), json=tag)
        assert response.status_code == 200, response.text
        assert response.json() == {"name": "submitted ✓", "key": v1["key"], "etag": v1["etag"]}

        seen = await listing(first, marie, file_id)
        assert seen["tags"] == {"submitted ✓": {"etag": v1["etag"], "key": v1["key"]}}
        assert [v["tags"] for v in seen["versions"]] == [[], ["submitted ✓"]]

        # the same name again moves the tag (here by another editor, to the current content)
        response = await api(first, marie, "POST", tag_url(file_id), json={"name": "submitted ✓", "key": "current"})
        assert response.status_code == 200, response.text
        seen = await listing(first, einstein, file_id)
        assert [v["tags"] for v in seen["versions"]] == [["submitted ✓"], []]

    async with start_service(site, state) as second:
        seen = await listing(second, richard, file_id)
        assert seen["tags"] == {"submitted ✓": {"etag": versions[0]["etag"], "key": "current"}}
        assert seen["versions"][0]["tags"] == ["submitted ✓"]

        response = await api(second, einstein, "DELETE", tag_url(file_id, "submitted ✓"))
        assert response.status_code == 200, response.text
        assert (await listing(second, richard, file_id))["tags"] == {}
        response = await api(second, einstein, "DELETE", tag_url(file_id, "submitted ✓"))
        assert response.status_code == 404


async def test_tagging_tells_the_open_room_to_refresh(svc, einstein, workdir):
    path, file_id = await new_file(einstein, workdir, "notify.ipynb", notebook_file("n = 1"))
    async with connect(svc.url, einstein.token, path) as client:
        response = await api(svc, einstein, "POST", tag_url(file_id), json={"name": "draft", "key": "current"})
        assert response.status_code == 200, response.text
        await wait_raw(client, VERSIONS_CHANGED)
        # while the room holds its lock, the tag was written with the lock id
        assert (await listing(svc, einstein, file_id))["versions"][0]["tags"] == ["draft"]
        client.channel.raw.clear()
        response = await api(svc, einstein, "DELETE", tag_url(file_id, "draft"))
        assert response.status_code == 200, response.text
        await wait_raw(client, VERSIONS_CHANGED)


async def test_tagging_current_saves_what_the_room_holds_first(site, tmp_path, einstein, workdir):
    path, file_id = await new_file(einstein, workdir, "flush.ipynb", notebook_file("f = 1"))
    # a service that would not save on its own for a long time: only the tag request can
    async with start_service(site, tmp_path / "svc", "--save-quiet=60", "--save-ceiling=120") as slow:
        async with connect(slow.url, einstein.token, path) as typist, connect(slow.url, einstein.token, path) as other:
            type_into(typist, 0, "  # typed just now")
            await wait_for(other.doc, lambda: cell_sources(other)[0] == "f = 1  # typed just now")  # the room has it
            response = await api(slow, einstein, "POST", tag_url(file_id), json={"name": "now", "key": "current"})
            assert response.status_code == 200, response.text
            tagged = response.json()["etag"]
            assert await stored_sources(einstein, path) == ["f = 1  # typed just now"]
            assert (await einstein.files.stat(path)).etag == tagged
            assert (await listing(slow, einstein, file_id))["versions"][0]["tags"] == ["now"]


@pytest.mark.parametrize(
    "name",
    ["", "   ", "x" * 65, "line\nbreak", "tab\tinside", "nul\x00", "\u2028sep", 42, None],
    ids=["empty", "blank", "65-chars", "newline", "tab", "nul", "line-separator", "number", "missing"],
)
async def test_bad_tag_names_are_400(svc, einstein, workdir, name):
    _, file_id = await new_file(einstein, workdir, "names.ipynb", notebook_file("t = 1"))
    body = {"key": "current"} if name is None else {"name": name, "key": "current"}
    response = await api(svc, einstein, "POST", tag_url(file_id), json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "bad_request"
    assert (await listing(svc, einstein, file_id))["tags"] == {}


async def test_tag_input_limits(svc, einstein, workdir):
    _, file_id = await new_file(einstein, workdir, "limits.ipynb", notebook_file("t = 1"))
    response = await api(svc, einstein, "POST", tag_url(file_id), json={"name": "é" * 64, "key": "current"})
    assert response.status_code == 200, response.text
    response = await api(svc, einstein, "POST", tag_url(file_id), json={"name": "x", "key": "no-such-version"})
    assert response.status_code == 404
    response = await api(svc, einstein, "POST", tag_url(file_id), json={"name": "x"})
    assert response.status_code == 400
    response = await api(svc, einstein, "POST", tag_url(file_id), content=b"not json")
    assert response.status_code == 400
    for params in ({"limit": "0"}, {"limit": "501"}, {"limit": "many"}, {"offset": "-1"}):
        response = await api(svc, einstein, "GET", quote(file_id, safe=""), params=params)
        assert response.status_code == 400, params


# -- restore ------------------------------------------------------------------------


async def test_live_restore_reaches_every_client_and_becomes_a_new_version(svc, einstein, marie, workdir):
    path, file_id = await new_file(einstein, workdir, "restore.ipynb", notebook_file("x = 1", "y = 2"))
    await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    async with connect(svc.url, einstein.token, path) as e, connect(svc.url, marie.token, file_id) as m:
        type_into(e, 0, "  # einstein was here")
        await eventually(lambda: _has(current_authors(svc, einstein, file_id), {uid(einstein)}))
        await wait_for(m.doc, lambda: cell_sources(m)[0] == "x = 1  # einstein was here")
        type_into(m, 1, "  # so was marie")
        await eventually(lambda: _has(current_authors(svc, einstein, file_id), {uid(marie)}))
        await wait_for(e.doc, lambda: cell_sources(e)[1] == "y = 2  # so was marie")
        original = (await listing(svc, einstein, file_id))["versions"][-1]
        assert original["authors"] == []

        response = await api(svc, einstein, "POST", version_url(file_id, original["key"], "restore"))
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["live"] and result["saved"] and result["changed"] and result["etag"]

        # both clients see the old content on the connection they already had
        await wait_for(e.doc, lambda: cell_sources(e) == ["x = 1", "y = 2"])
        await wait_for(m.doc, lambda: cell_sources(m) == ["x = 1", "y = 2"])
        await wait_raw(e, VERSIONS_CHANGED)
        await wait_raw(m, VERSIONS_CHANGED)
        # marie is told who went back to which version (her tab shows a notice)
        await wait_raw(m, {"type": "cs3collab:restored", "by": "Albert Einstein", "from": original["time"]})

        # ...and it is the new current version in CS3, saved by the restorer
        info = await einstein.files.stat(path)
        assert info.etag == result["etag"]
        assert await stored_sources(einstein, path) == ["x = 1", "y = 2"]
        current = (await listing(svc, marie, file_id))["versions"][0]
        assert uid(einstein) in {a["uid"] for a in current["authors"]}
        assert current["restored_from"] == original["key"]

        # the room carries on: an edit after the restore still reaches the other client
        type_into(m, 0, "  # after")
        await wait_for(e.doc, lambda: cell_sources(e)[0] == "x = 1  # after")


async def test_restore_without_a_room_goes_through_cs3(svc, einstein, workdir):
    path, file_id = await new_file(einstein, workdir, "cold.ipynb", notebook_file("first"), notebook_file("second"))
    old = (await listing(svc, einstein, file_id))["versions"][1]
    response = await api(svc, einstein, "POST", tag_url(file_id), json={"name": "good", "key": old["key"]})
    assert response.status_code == 200, response.text

    response = await api(svc, einstein, "POST", version_url(file_id, old["key"], "restore"))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["live"] is False and result["saved"] is True
    assert await stored_sources(einstein, path) == ["first"]
    assert (await einstein.files.stat(path)).etag == result["etag"]
    seen = await listing(svc, einstein, file_id)
    assert [a["uid"] for a in seen["versions"][0]["authors"]] == [uid(einstein)]
    assert seen["versions"][0]["restored_from"] == old["key"]
    # the tag follows its content, which CS3 made current again
    assert seen["tags"]["good"]["key"] == "current"

    # a room opened afterwards shows the restored content
    async with connect(svc.url, einstein.token, path) as client:
        assert cell_sources(client) == ["first"]


async def test_restore_refuses_current_and_unknown_keys(svc, einstein, workdir):
    _, file_id = await new_file(einstein, workdir, "keys.ipynb", notebook_file("k = 1"))
    response = await api(svc, einstein, "POST", version_url(file_id, "current", "restore"))
    assert response.status_code == 400
    response = await api(svc, einstein, "POST", version_url(file_id, "no-such-version", "restore"))
    assert response.status_code == 404


async def test_restore_is_refused_while_another_app_holds_the_lock(svc, einstein, workdir):
    path, file_id = await new_file(einstein, workdir, "office.ipynb", notebook_file("mine"), notebook_file("theirs"))
    old_key = (await listing(svc, einstein, file_id))["versions"][1]["key"]
    await einstein.locks.set(path, lock_id="office-1", app_name="office", lifetime=60)
    try:
        async with connect(svc.url, einstein.token, path) as client:
            await client.channel.wait_raw(lambda m: m.get("type") in ("cs3collab:role", "cs3collab:read-only"))
            response = await api(svc, einstein, "POST", version_url(file_id, old_key, "restore"))
            assert response.status_code == 409, response.text
            assert "office" in response.json()["message"]
            assert cell_sources(client) == ["theirs"]
        assert await stored_sources(einstein, path) == ["theirs"]
    finally:
        await einstein.locks.unlock(path, lock_id="office-1", app_name="office")


# -- who may do what ----------------------------------------------------------------


async def test_viewers_list_and_fetch_but_may_not_tag_or_restore(svc, einstein, richard, workdir):
    path, file_id = await new_file(einstein, workdir, "viewed.ipynb", notebook_file("one"), notebook_file("two"))
    await einstein.shares.create(path, user_grantee(richard.user.id), roles.VIEWER)
    response = await api(svc, einstein, "POST", tag_url(file_id), json={"name": "kept", "key": "current"})
    assert response.status_code == 200

    seen = await listing(svc, richard, file_id)
    assert seen["tags"]["kept"]["key"] == "current"
    old_key = seen["versions"][1]["key"]
    response = await api(svc, richard, "GET", version_url(file_id, old_key))
    assert response.status_code == 200 and response.json()["cells"][0]["source"] == "one"

    refused = [
        await api(svc, richard, "POST", tag_url(file_id), json={"name": "mine", "key": "current"}),
        await api(svc, richard, "DELETE", tag_url(file_id, "kept")),
        await api(svc, richard, "POST", version_url(file_id, old_key, "restore")),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403]
    assert all(r.json()["error"] == "forbidden" for r in refused)
    assert await stored_sources(einstein, path) == ["two"]
    assert (await listing(svc, einstein, file_id))["tags"].keys() == {"kept"}


async def test_unknown_files_and_missing_tokens(svc, einstein, marie, workdir):
    path, file_id = await new_file(einstein, workdir, "gone.ipynb", notebook_file("g = 1"))
    response = await api(svc, marie, "GET", quote(file_id, safe=""))
    assert response.status_code == 404, "a file marie cannot see is unknown to her"
    response = await api(svc, None, "GET", quote(file_id, safe=""))
    assert response.status_code == 401
    await einstein.files.delete(path)
    for method, suffix in (("GET", quote(file_id, safe="")), ("GET", version_url(file_id, "current")),
                           ("POST", version_url(file_id, "k", "restore"))):
        response = await api(svc, einstein, method, suffix)
        assert response.status_code == 404, (method, suffix, response.text)
        assert json.loads(response.text)["error"] == "not_found"
