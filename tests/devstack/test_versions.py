"""Versions: kept on overwrite, listed newest first, downloadable, restorable."""

from __future__ import annotations

from cs3.rpc.v1beta1 import code_pb2
from cs3.storage.provider.v1beta1 import provider_api_pb2 as sp_api

from .conftest import OK, path_ref


async def _versions(cs3, token, path):
    res = await cs3.stub.ListFileVersions(sp_api.ListFileVersionsRequest(ref=path_ref(path)), metadata=cs3.md(token))
    assert res.status.code == OK
    return list(res.versions)


async def test_each_overwrite_keeps_a_version(cs3, einstein, workdir):
    path = f"{workdir}/v.txt"
    etags = []
    for body in (b"one", b"two!", b"three"):
        await cs3.upload(einstein, path_ref(path), body)
        etags.append((await cs3.stat(einstein, path_ref(path))).info.etag)
    versions = await _versions(cs3, einstein, path)
    assert [v.size for v in versions] == [4, 3]  # newest first
    assert [v.etag for v in versions] == [etags[1], etags[0]]  # the etag the content had when current
    assert all(v.key.count(".REVISION.") == 1 and v.mtime > 0 for v in versions)
    assert await cs3.download(einstein, path_ref(path), versions[0].key) == b"two!"
    assert await cs3.download(einstein, path_ref(path), versions[1].key) == b"one"
    res = await cs3.initiate_download(einstein, path_ref(path), "no-such-version")
    assert res.status.code == code_pb2.CODE_NOT_FOUND


async def test_disable_versioning_header(cs3, einstein, workdir):
    path = f"{workdir}/nv.txt"
    await cs3.upload(einstein, path_ref(path), b"first")
    await cs3.upload(einstein, path_ref(path), b"second", headers={"X-Disable-Versioning": "true"})
    assert await _versions(cs3, einstein, path) == []
    assert await cs3.download(einstein, path_ref(path)) == b"second"


async def test_restore_makes_the_current_content_a_version(cs3, einstein, workdir):
    path = f"{workdir}/r.txt"
    await cs3.upload(einstein, path_ref(path), b"old")
    await cs3.upload(einstein, path_ref(path), b"new")
    before = (await cs3.stat(einstein, path_ref(path))).info
    (old,) = await _versions(cs3, einstein, path)
    res = await cs3.stub.RestoreFileVersion(sp_api.RestoreFileVersionRequest(ref=path_ref(path), key=old.key),
                                            metadata=cs3.md(einstein))
    assert res.status.code == OK
    after = (await cs3.stat(einstein, path_ref(path))).info
    assert await cs3.download(einstein, path_ref(path)) == b"old"
    assert after.etag != before.etag and after.id == before.id
    versions = await _versions(cs3, einstein, path)
    assert [v.size for v in versions] == [3]
    assert versions[0].key != old.key
    assert await cs3.download(einstein, path_ref(path), versions[0].key) == b"new"
    res = await cs3.stub.RestoreFileVersion(sp_api.RestoreFileVersionRequest(ref=path_ref(path), key=old.key),
                                            metadata=cs3.md(einstein))
    assert res.status.code == code_pb2.CODE_NOT_FOUND
