"""CS3 lock semantics as Reva defines them, through the client."""

import uuid

import pytest

from cs3collab.cs3 import FailedPrecondition, Locked, NotFound


@pytest.fixture
async def notebook(einstein, workdir):
    path = f"{workdir}/locked.ipynb"
    await einstein.files.upload(path, b"{}")
    return path


async def test_lock_lifecycle(einstein, notebook):
    assert await einstein.locks.get(notebook) is None
    lock_id = str(uuid.uuid4())
    await einstein.locks.set(notebook, lock_id=lock_id, app_name="cs3collab", lifetime=60)
    lock = await einstein.locks.get(notebook)
    assert lock.lock_id == lock_id and lock.app_name == "cs3collab"
    assert lock.user == einstein.user.id
    info = await einstein.files.stat(notebook)
    assert info.lock.lock_id == lock_id
    await einstein.locks.refresh(notebook, lock_id=lock_id, app_name="cs3collab", lifetime=120)
    assert (await einstein.locks.get(notebook)).expiration.seconds > lock.expiration.seconds
    await einstein.locks.unlock(notebook, lock_id=lock_id, app_name="cs3collab")
    assert await einstein.locks.get(notebook) is None


async def test_set_lock_on_a_locked_file_fails(einstein, notebook):
    await einstein.locks.set(notebook, lock_id="a", app_name="x")
    with pytest.raises(FailedPrecondition):
        await einstein.locks.set(notebook, lock_id="b", app_name="x")


async def test_upload_needs_the_lock_id(einstein, notebook):
    await einstein.locks.set(notebook, lock_id="L1", app_name="x")
    with pytest.raises(Locked):
        await einstein.files.upload(notebook, b"without lock")
    with pytest.raises(FailedPrecondition) as caught:  # Reva: ABORTED for a wrong lock id
        await einstein.files.upload(notebook, b"wrong lock", lock_id="L2")
    assert not isinstance(caught.value, Locked)
    await einstein.files.upload(notebook, b"with lock", lock_id="L1")
    assert await einstein.files.download(notebook) == b"with lock"


async def test_only_the_holder_app_refreshes_or_unlocks(einstein, notebook):
    await einstein.locks.set(notebook, lock_id="L1", app_name="wopi")
    with pytest.raises(FailedPrecondition):
        await einstein.locks.unlock(notebook, lock_id="L1", app_name="cs3collab")
    with pytest.raises(FailedPrecondition):
        await einstein.locks.refresh(notebook, lock_id="L1", app_name="cs3collab")
    with pytest.raises(FailedPrecondition):
        await einstein.locks.unlock(notebook, lock_id="other", app_name="wopi")
    assert (await einstein.locks.get(notebook)).app_name == "wopi"


async def test_an_expired_lock_is_gone(einstein, notebook):
    # a lock whose expiration is already past is not a lock
    await einstein.locks.set(notebook, lock_id="old", app_name="x", lifetime=-1)
    assert await einstein.locks.get(notebook) is None
    await einstein.files.upload(notebook, b"free again")


async def test_get_lock_on_missing_file_is_not_found(einstein, workdir):
    with pytest.raises(NotFound):
        await einstein.locks.get(f"{workdir}/missing.ipynb")
