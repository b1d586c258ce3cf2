"""Bad input: namespace escapes, bad names, bad tokens, oversize uploads."""

from __future__ import annotations

import os

import pytest
from cs3.rpc.v1beta1 import code_pb2
from cs3.storage.provider.v1beta1 import provider_api_pb2 as sp_api
from cs3.storage.provider.v1beta1 import resources_pb2 as sp_res
from cs3.types.v1beta1 import types_pb2

from .conftest import OK, connect, id_ref, path_ref, run_devstack

NOT_FOUND = code_pb2.CODE_NOT_FOUND


async def test_other_users_paths_and_dotdot_are_refused(cs3, einstein, marie, workdir):
    await cs3.upload(einstein, path_ref(f"{workdir}/secret.txt"), b"secret")
    name = workdir.rsplit("/", 1)[1]
    for path in (f"{workdir}/secret.txt", f"/home/marie/../einstein/{name}/secret.txt",
                 f"/home/marie/../../home/einstein/{name}/secret.txt", "/home/einstein", "/home", "/"):
        assert (await cs3.stat(marie, path_ref(path))).status.code == NOT_FOUND, path
        assert (await cs3.initiate_download(marie, path_ref(path))).status.code == NOT_FOUND, path
    # marie cannot create anything in einstein's home, even by a .. detour
    init = await cs3.initiate_upload(marie, path_ref(f"/home/marie/../einstein/{name}/planted.txt"))
    assert init.status.code == NOT_FOUND
    for outside in ("/../../etc/passwd", "/users/marie/x.txt", "/home/nobody/x.txt"):
        init = await cs3.initiate_upload(einstein, path_ref(outside))
        assert init.status.code == NOT_FOUND, outside  # no personal space there
    # ".." inside a path is cleaned lexically, like Go's path.Clean in Reva
    res = await cs3.stat(einstein, path_ref(f"{workdir}/sub/../secret.txt"))
    assert res.status.code == OK and res.info.path == f"{workdir}/secret.txt"


async def test_relative_references_cannot_escape(cs3, einstein, workdir):
    await cs3.mkdir(einstein, path_ref(f"{workdir}/inner"))
    inner = (await cs3.stat(einstein, path_ref(f"{workdir}/inner"))).info
    await cs3.upload(einstein, path_ref(f"{workdir}/outside.txt"), b"o")
    for rel in ("./../outside.txt", "./../../", "./x/../../outside.txt"):
        assert (await cs3.stat(einstein, id_ref(inner.id, rel))).status.code == NOT_FOUND, rel
    res = await cs3.initiate_upload(einstein, id_ref(inner.id, "./../evil.txt"))
    assert res.status.code == code_pb2.CODE_FAILED_PRECONDITION  # no such parent: decomposedfs' answer
    assert (await cs3.stat(einstein, id_ref(inner.id, "../outside.txt"))).status.code == code_pb2.CODE_INVALID_ARGUMENT
    assert (await cs3.stat(einstein, path_ref("relative/path"))).status.code == code_pb2.CODE_INVALID_ARGUMENT
    bogus = sp_res.ResourceId(storage_id="other", space_id=inner.id.space_id, opaque_id=inner.id.opaque_id)
    assert (await cs3.stat(einstein, id_ref(bogus))).status.code == NOT_FOUND


@pytest.mark.parametrize("name,code", [
    ("..", code_pb2.CODE_INVALID_ARGUMENT), ("a\x00b", code_pb2.CODE_INVALID_ARGUMENT),
    (".", code_pb2.CODE_ALREADY_EXISTS),  # "./." is the folder itself
])
async def test_bad_names_are_refused(cs3, einstein, workdir, name, code):
    ref = id_ref((await cs3.stat(einstein, path_ref(workdir))).info.id, f"./{name}")
    res = await cs3.stub.CreateContainer(sp_api.CreateContainerRequest(ref=ref), metadata=cs3.md(einstein))
    assert res.status.code == code
    assert (await cs3.initiate_upload(einstein, ref)).status.code in (code, code_pb2.CODE_FAILED_PRECONDITION)


async def test_upload_preconditions(cs3, einstein, workdir):
    ref = path_ref(f"{workdir}/p.txt")
    assert (await cs3.upload(einstein, ref, b"1", if_not_exist=True)).status_code == 200
    assert (await cs3.initiate_upload(einstein, ref, if_not_exist=True)).status.code == code_pb2.CODE_ALREADY_EXISTS
    etag = (await cs3.stat(einstein, ref)).info.etag
    assert (await cs3.initiate_upload(einstein, ref, if_match='"stale"')).status.code == \
        code_pb2.CODE_FAILED_PRECONDITION
    init = await cs3.initiate_upload(einstein, ref, if_match=etag)
    assert init.status.code == OK
    assert (await cs3.upload(einstein, ref, b"2")).status_code == 200  # someone else writes in between
    assert (await cs3.put(einstein, init, b"3")).status_code == 412  # the precondition is checked again
    assert await cs3.download(einstein, ref) == b"2"
    dir_ref = path_ref(workdir)
    assert (await cs3.initiate_upload(einstein, dir_ref)).status.code == code_pb2.CODE_FAILED_PRECONDITION


async def test_transfer_tokens(cs3, einstein, marie, workdir):
    ref = path_ref(f"{workdir}/t.txt")
    await cs3.upload(einstein, ref, b"t")
    init = await cs3.initiate_download(einstein, ref)
    proto = init.protocols[0]
    assert proto.download_endpoint == f"{cs3.stack.http}/datagateway"
    assert {p.protocol for p in init.protocols} == {"simple", "spaces"}
    http = cs3.http
    res = await http.get(proto.download_endpoint, headers={"x-access-token": einstein, "X-Reva-Transfer": "bad"})
    assert res.status_code == 403
    res = await http.get(proto.download_endpoint, headers={"x-access-token": einstein})
    assert res.status_code == 403
    res = await http.get(proto.download_endpoint, headers={"X-Reva-Transfer": proto.token})
    assert res.status_code == 401
    res = await http.get(proto.download_endpoint, headers={"x-access-token": "forged", "X-Reva-Transfer": proto.token})
    assert res.status_code == 401
    res = await http.get(f"{proto.download_endpoint}/{proto.token}", headers={"x-access-token": einstein})
    assert res.status_code == 200 and res.content == b"t"  # token as last path segment, as in Reva
    res = await http.put(proto.download_endpoint, content=b"x",
                         headers={"x-access-token": einstein, "X-Reva-Transfer": proto.token})
    assert res.status_code == 403  # a download token does not allow an upload
    res = await http.get(proto.download_endpoint, headers={"x-access-token": marie, "X-Reva-Transfer": proto.token})
    assert res.status_code == 404  # the token is not a capability: marie cannot see the file


async def test_size_limit(tmp_path):
    async with run_devstack(tmp_path / "small", "--max-upload-size", "1024") as small, connect(small) as c:
        token = await c.login("einstein")
        ref = path_ref("/home/einstein/big.bin")
        assert (await c.upload(token, ref, b"x" * 1024)).status_code == 200
        init = await c.initiate_upload(token, ref)
        assert (await c.put(token, init, b"y" * 2048)).status_code == 413

        async def chunks():
            for _ in range(4):
                yield b"z" * 512

        proto = init.protocols[0]
        res = await c.http.put(proto.upload_endpoint, content=chunks(),
                               headers={"x-access-token": token, "X-Reva-Transfer": proto.token})
        assert res.status_code == 413  # no Content-Length: counted while streaming
        assert await c.download(token, ref) == b"x" * 1024
        opaque = types_pb2.Opaque(map={"Upload-Length": types_pb2.OpaqueEntry(decoder="plain", value=b"4096")})
        res = await c.initiate_upload(token, ref, opaque=opaque)
        assert res.status.code == code_pb2.CODE_INSUFFICIENT_STORAGE
        assert os.listdir(small.data / "uploads") == []  # refused uploads leave nothing behind


async def test_nothing_is_written_outside_the_data_folder(tmp_path):
    data = tmp_path / "site"
    async with run_devstack(data) as s, connect(s) as c:
        token = await c.login("einstein")
        for path in ("/home/einstein/../../../tmp/escape.txt", "/home/einstein/a/../../../../escape.txt"):
            init = await c.initiate_upload(token, path_ref(path))
            assert init.status.code != OK, path
        assert (await c.upload(token, path_ref("/home/einstein/ok.txt"), b"ok")).status_code == 200
    outside = [p for p in tmp_path.rglob("*") if data not in p.parents and p != data]
    assert outside == []
    assert not any("escape" in p.name or p.name == "ok.txt" for p in data.rglob("*"))
