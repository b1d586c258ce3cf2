"""Namespace and content through the client: what a user of a CS3 home sees."""

import hashlib
import os

import pytest

from cs3collab.cs3 import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, TooLarge
from cs3.storage.provider.v1beta1 import resources_pb2 as storage


async def test_upload_download_round_trip_keeps_every_byte(einstein, workdir):
    path = f"{workdir}/Größe – données.ipynb"
    body = "{\"cells\": [], \"note\": \"αβγ 中文 🚀\"}".encode()
    await einstein.files.upload(path, body)
    assert await einstein.files.download(path) == body
    info = await einstein.files.stat(path)
    assert info.type == storage.RESOURCE_TYPE_FILE
    assert info.size == len(body)
    assert info.name == "Größe – données.ipynb"
    assert info.path == path


async def test_every_write_changes_etag_and_mtime(einstein, workdir):
    path = f"{workdir}/a.txt"
    await einstein.files.upload(path, b"one")
    first = await einstein.files.stat(path)
    await einstein.files.upload(path, b"two")
    second = await einstein.files.stat(path)
    assert second.etag != first.etag
    assert (second.mtime.seconds, second.mtime.nanos) > (first.mtime.seconds, first.mtime.nanos)
    assert second.id == first.id


async def test_streams_a_large_file_both_ways(einstein, workdir, tmp_path):
    path = f"{workdir}/big.bin"
    chunk = os.urandom(1024 * 1024)
    total = 24
    expected = hashlib.sha256()

    async def chunks():
        for _ in range(total):
            expected.update(chunk)
            yield chunk

    await einstein.files.upload(path, chunks(), size=total * len(chunk))
    got = hashlib.sha256()
    received = 0
    async with einstein.files.open_download(path) as stream:
        async for part in stream:
            got.update(part)
            received += len(part)
    assert received == total * len(chunk)
    assert got.hexdigest() == expected.hexdigest()
    parts = await einstein.files.download_chunks(path)  # what a fresh open hands to its worker
    assert len(parts) > 1 and hashlib.sha256(b"".join(parts)).hexdigest() == expected.hexdigest()
    local = tmp_path / "copy.bin"
    assert await einstein.files.download_to(path, local) == total * len(chunk)
    again = f"{workdir}/big-again.bin"
    await einstein.files.upload_file(again, local)
    assert (await einstein.files.stat(again)).size == total * len(chunk)


async def test_list_mkdir_move_delete(einstein, workdir):
    await einstein.files.mkdir(f"{workdir}/sub")
    await einstein.files.upload(f"{workdir}/sub/n.ipynb", b"{}")
    names = sorted(info.name for info in await einstein.files.list(workdir))
    assert names == ["sub"]
    before = await einstein.files.stat(f"{workdir}/sub/n.ipynb")
    await einstein.files.move(f"{workdir}/sub/n.ipynb", f"{workdir}/renamed.ipynb")
    after = await einstein.files.stat(f"{workdir}/renamed.ipynb")
    assert after.id == before.id, "a rename keeps the resource id"
    by_id = await einstein.files.stat(before.id)
    assert by_id.path == f"{workdir}/renamed.ipynb"
    assert not await einstein.files.exists(f"{workdir}/sub/n.ipynb")
    await einstein.files.delete(f"{workdir}/renamed.ipynb")
    with pytest.raises(NotFound) as caught:
        await einstein.files.stat(f"{workdir}/renamed.ipynb")
    assert f"{workdir}/renamed.ipynb" in str(caught.value)


async def test_mkdir_twice_is_already_exists(einstein, workdir):
    await einstein.files.mkdir(f"{workdir}/d")
    with pytest.raises(AlreadyExists):
        await einstein.files.mkdir(f"{workdir}/d")


async def test_missing_parent_and_missing_file(einstein, workdir):
    with pytest.raises(NotFound) as caught:
        await einstein.files.download(f"{workdir}/nope.ipynb")
    assert "nope.ipynb" in str(caught.value)
    with pytest.raises((NotFound, FailedPrecondition)):
        await einstein.files.upload(f"{workdir}/no/such/dir/x.txt", b"x")


async def test_if_match_precondition(einstein, workdir):
    path = f"{workdir}/n.ipynb"
    await einstein.files.upload(path, b"v1")
    etag = (await einstein.files.stat(path)).etag
    await einstein.files.upload(path, b"v2", if_match=etag)
    with pytest.raises(FailedPrecondition):
        await einstein.files.upload(path, b"v3", if_match=etag)  # stale etag
    assert await einstein.files.download(path) == b"v2"


async def test_if_not_exist_precondition(einstein, workdir):
    path = f"{workdir}/new.ipynb"
    await einstein.files.upload(path, b"first", if_not_exist=True)
    with pytest.raises((FailedPrecondition, AlreadyExists)):
        await einstein.files.upload(path, b"second", if_not_exist=True)
    assert await einstein.files.download(path) == b"first"


@pytest.mark.parametrize(
    "escape",
    ["/../../etc/passwd", "/{home}/../marie/x.txt", "/{home}/../../x.txt", "/users/marie/x.txt"],
)
async def test_paths_outside_the_namespace_are_refused(einstein, escape, site):
    home = await einstein.get_home()
    path = escape.replace("/{home}", home)
    with pytest.raises((PermissionDenied, NotFound, InvalidArgument)):
        await einstein.files.upload(path, b"evil")
    # and nothing landed outside the data folder
    assert not any(p.name == "x.txt" for p in site.data_dir.parent.rglob("x.txt"))


async def test_upload_above_the_size_limit_is_refused(tmp_path_factory):
    from cs3collab.cs3 import CS3Client
    from tests.support.processes import devstack

    async with devstack(tmp_path_factory.mktemp("small"), extra=("--max-upload-size", "1000")) as small:
        async with CS3Client(small.gateway) as client:
            session = await client.login("einstein", "relativity")
            home = await session.get_home()
            await session.files.upload(f"{home}/ok.txt", b"x" * 1000)
            with pytest.raises(TooLarge):
                await session.files.upload(f"{home}/big.txt", b"x" * 1001)
            with pytest.raises(NotFound):
                await session.files.stat(f"{home}/big.txt")
