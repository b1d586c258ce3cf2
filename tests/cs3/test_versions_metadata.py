"""Versions and arbitrary metadata through the client."""

import pytest

from cs3collab.cs3 import NotFound


async def test_overwrite_keeps_the_previous_content_as_a_version(einstein, workdir):
    path = f"{workdir}/n.ipynb"
    await einstein.files.upload(path, b"first")
    assert await einstein.versions.list(path) == []
    await einstein.files.upload(path, b"second")
    versions = await einstein.versions.list(path)
    assert len(versions) == 1
    assert versions[0].size == len(b"first")
    assert await einstein.versions.download(path, versions[0].key) == b"first"
    await einstein.files.upload(path, b"third!")
    versions = await einstein.versions.list(path)
    assert len(versions) == 2
    assert versions[0].mtime >= versions[1].mtime, "newest first"
    contents = {await einstein.versions.download(path, v.key) for v in versions}
    assert contents == {b"first", b"second"}


async def test_restore_makes_the_current_content_a_version(einstein, workdir):
    path = f"{workdir}/r.ipynb"
    await einstein.files.upload(path, b"old")
    await einstein.files.upload(path, b"new")
    (old,) = await einstein.versions.list(path)
    await einstein.versions.restore(path, old.key)
    assert await einstein.files.download(path) == b"old"
    contents = {await einstein.versions.download(path, v.key) for v in await einstein.versions.list(path)}
    assert b"new" in contents


async def test_disable_versioning(einstein, workdir):
    path = f"{workdir}/nv.ipynb"
    await einstein.files.upload(path, b"a")
    await einstein.files.upload(path, b"b", disable_versioning=True)
    assert await einstein.versions.list(path) == []
    assert await einstein.files.download(path) == b"b"


async def test_unknown_version_key_is_not_found(einstein, workdir):
    path = f"{workdir}/k.ipynb"
    await einstein.files.upload(path, b"a")
    with pytest.raises(NotFound):
        await einstein.versions.download(path, "no-such-key")


async def test_arbitrary_metadata(einstein, workdir):
    path = f"{workdir}/m.ipynb"
    await einstein.files.upload(path, b"{}")
    await einstein.metadata.set(path, {"cs3collab.ystate": "abc", "cs3collab.authors": "einstein,marie"})
    assert await einstein.metadata.get(path, ["cs3collab.ystate"]) == {"cs3collab.ystate": "abc"}
    both = await einstein.metadata.get(path, ["cs3collab.ystate", "cs3collab.authors"])
    assert both == {"cs3collab.ystate": "abc", "cs3collab.authors": "einstein,marie"}
    await einstein.metadata.unset(path, ["cs3collab.ystate"])
    assert await einstein.metadata.get(path, ["cs3collab.ystate", "cs3collab.authors"]) == {
        "cs3collab.authors": "einstein,marie"
    }
    # metadata survives a content write
    await einstein.files.upload(path, b"{\"x\": 1}")
    assert await einstein.metadata.get(path, ["cs3collab.authors"]) == {"cs3collab.authors": "einstein,marie"}
