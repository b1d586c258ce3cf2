"""Stat, listing, folders, moves, deletes, etags/mtimes and metadata."""

from __future__ import annotations

import re

from cs3.rpc.v1beta1 import code_pb2
from cs3.storage.provider.v1beta1 import provider_api_pb2 as sp_api
from cs3.storage.provider.v1beta1 import resources_pb2 as sp_res

from .conftest import OK, id_ref, path_ref

ETAG = re.compile(r'^"[0-9a-f]{32}"$')


async def test_stat_fields(cs3, einstein, workdir):
    path = f"{workdir}/nb.ipynb"
    put = await cs3.upload(einstein, path_ref(path), b"12345")
    res = await cs3.stat(einstein, path_ref(path))
    assert res.status.code == OK
    info = res.info
    assert info.type == sp_res.RESOURCE_TYPE_FILE
    assert info.path == path and info.name == "nb.ipynb"
    assert info.size == 5
    assert ETAG.match(info.etag) and put.headers["ETag"] == info.etag
    assert put.headers["OC-FileId"] == f"{info.id.storage_id}${info.id.space_id}!{info.id.opaque_id}"
    assert info.mtime.seconds > 0
    assert info.owner.opaque_id == "4c510ada-c86b-4815-8820-42cdf82c3d51"
    assert info.owner.idp == "site-a.test"
    assert info.mime_type == "application/x-ipynb+json"
    parent = (await cs3.stat(einstein, path_ref(workdir))).info
    assert info.parent_id == parent.id
    assert parent.type == sp_res.RESOURCE_TYPE_CONTAINER
    assert parent.size == 5
    perms = info.permission_set
    assert perms.stat and perms.initiate_file_upload and perms.add_grant and perms.delete
    assert not info.HasField("lock")
    by_id = await cs3.stat(einstein, id_ref(info.id))
    assert by_id.info.path == path and by_id.info.etag == info.etag


async def test_every_write_changes_etag_and_mtime_of_file_and_parents(cs3, einstein, workdir):
    path = f"{workdir}/f.txt"
    await cs3.upload(einstein, path_ref(path), b"a")
    seen_file, seen_dir = set(), set()
    last = None
    for body in (b"b", b"c", b"c"):
        before_dir = (await cs3.stat(einstein, path_ref(workdir))).info
        await cs3.upload(einstein, path_ref(path), body)
        info = (await cs3.stat(einstein, path_ref(path))).info
        after_dir = (await cs3.stat(einstein, path_ref(workdir))).info
        assert info.etag not in seen_file
        seen_file.add(info.etag)
        assert after_dir.etag != before_dir.etag
        assert after_dir.etag not in seen_dir
        seen_dir.add(after_dir.etag)
        mtime = (info.mtime.seconds, info.mtime.nanos)
        assert last is None or mtime > last
        last = mtime


async def test_list_container(cs3, einstein, workdir):
    await cs3.mkdir(einstein, path_ref(f"{workdir}/sub"))
    await cs3.upload(einstein, path_ref(f"{workdir}/a.txt"), b"aa")
    res = await cs3.stub.ListContainer(sp_api.ListContainerRequest(ref=path_ref(workdir)), metadata=cs3.md(einstein))
    assert res.status.code == OK
    assert sorted((i.name, i.path, i.type) for i in res.infos) == [
        ("a.txt", f"{workdir}/a.txt", sp_res.RESOURCE_TYPE_FILE),
        ("sub", f"{workdir}/sub", sp_res.RESOURCE_TYPE_CONTAINER)]
    res = await cs3.stub.ListContainer(sp_api.ListContainerRequest(ref=path_ref(f"{workdir}/a.txt")),
                                       metadata=cs3.md(einstein))
    assert res.status.code == code_pb2.CODE_INVALID_ARGUMENT


async def test_create_container_codes(cs3, einstein, workdir):
    res = await cs3.stub.CreateContainer(sp_api.CreateContainerRequest(ref=path_ref(workdir)),
                                         metadata=cs3.md(einstein))
    assert res.status.code == code_pb2.CODE_ALREADY_EXISTS
    res = await cs3.stub.CreateContainer(sp_api.CreateContainerRequest(ref=path_ref(f"{workdir}/no/such")),
                                         metadata=cs3.md(einstein))
    assert res.status.code == code_pb2.CODE_NOT_FOUND
    assert (await cs3.stat(einstein, path_ref(f"{workdir}/missing"))).status.code == code_pb2.CODE_NOT_FOUND


async def test_rename_and_move_keep_the_resource_id(cs3, einstein, workdir):
    await cs3.mkdir(einstein, path_ref(f"{workdir}/dest"))
    await cs3.upload(einstein, path_ref(f"{workdir}/old.txt"), b"content")
    before = (await cs3.stat(einstein, path_ref(f"{workdir}/old.txt"))).info

    async def move(src, dst):
        res = await cs3.stub.Move(sp_api.MoveRequest(source=path_ref(src), destination=path_ref(dst)),
                                  metadata=cs3.md(einstein))
        return res.status.code

    assert await move(f"{workdir}/old.txt", f"{workdir}/new.txt") == OK
    assert await move(f"{workdir}/new.txt", f"{workdir}/dest/moved.txt") == OK
    after = await cs3.stat(einstein, id_ref(before.id))
    assert after.info.id == before.id
    assert after.info.path == f"{workdir}/dest/moved.txt"
    assert after.info.parent_id != before.parent_id
    assert (await cs3.stat(einstein, path_ref(f"{workdir}/old.txt"))).status.code == code_pb2.CODE_NOT_FOUND
    assert await cs3.download(einstein, id_ref(before.id)) == b"content"
    await cs3.upload(einstein, path_ref(f"{workdir}/other.txt"), b"o")
    assert await move(f"{workdir}/other.txt", f"{workdir}/dest/moved.txt") == code_pb2.CODE_ALREADY_EXISTS
    assert await move(f"{workdir}/dest", f"{workdir}/dest/inside") == code_pb2.CODE_INVALID_ARGUMENT
    assert await move(f"{workdir}/nothing", f"{workdir}/x") == code_pb2.CODE_NOT_FOUND


async def test_delete(cs3, einstein, workdir):
    await cs3.mkdir(einstein, path_ref(f"{workdir}/d"))
    await cs3.upload(einstein, path_ref(f"{workdir}/d/f.txt"), b"x")
    info = (await cs3.stat(einstein, path_ref(f"{workdir}/d/f.txt"))).info
    res = await cs3.stub.Delete(sp_api.DeleteRequest(ref=path_ref(f"{workdir}/d")), metadata=cs3.md(einstein))
    assert res.status.code == OK
    assert (await cs3.stat(einstein, id_ref(info.id))).status.code == code_pb2.CODE_NOT_FOUND
    res = await cs3.stub.Delete(sp_api.DeleteRequest(ref=path_ref(f"{workdir}/d")), metadata=cs3.md(einstein))
    assert res.status.code == code_pb2.CODE_NOT_FOUND


async def test_arbitrary_metadata(cs3, einstein, marie, workdir):
    path = f"{workdir}/m.txt"
    await cs3.upload(einstein, path_ref(path), b"m")
    md = sp_res.ArbitraryMetadata(metadata={"cs3collab:ystate": "abc", "label": "sent to referee"})
    res = await cs3.stub.SetArbitraryMetadata(sp_api.SetArbitraryMetadataRequest(
        ref=path_ref(path), arbitrary_metadata=md), metadata=cs3.md(einstein))
    assert res.status.code == OK
    info = (await cs3.stat(einstein, path_ref(path), keys=["label"])).info
    assert dict(info.arbitrary_metadata.metadata) == {"label": "sent to referee"}
    info = (await cs3.stat(einstein, path_ref(path), keys=["*"])).info
    assert dict(info.arbitrary_metadata.metadata) == {"cs3collab:ystate": "abc", "label": "sent to referee"}
    res = await cs3.stub.UnsetArbitraryMetadata(sp_api.UnsetArbitraryMetadataRequest(
        ref=path_ref(path), arbitrary_metadata_keys=["label"]), metadata=cs3.md(einstein))
    assert res.status.code == OK
    info = (await cs3.stat(einstein, path_ref(path), keys=["*"])).info
    assert dict(info.arbitrary_metadata.metadata) == {"cs3collab:ystate": "abc"}
    res = await cs3.stub.SetArbitraryMetadata(sp_api.SetArbitraryMetadataRequest(
        ref=path_ref(path), arbitrary_metadata=md), metadata=cs3.md(marie))
    assert res.status.code == code_pb2.CODE_NOT_FOUND


async def test_touch_file(cs3, einstein, workdir):
    req = sp_api.TouchFileRequest(ref=path_ref(f"{workdir}/empty"))
    assert (await cs3.stub.TouchFile(req, metadata=cs3.md(einstein))).status.code == OK
    assert (await cs3.stub.TouchFile(req, metadata=cs3.md(einstein))).status.code == code_pb2.CODE_ALREADY_EXISTS
    assert await cs3.download(einstein, path_ref(f"{workdir}/empty")) == b""
