"""Idle rooms cost few CS3 calls (issue 14, point 2): access re-checks per
user, not per room; polls slow down when nobody edits, and further while
the room holds its CS3 lock; an idle room polls at once when it is used
again (an edit, a join) or loses its lock.

A service re-checking access every 0.5 s, with outside-edit polling pushed
out of the way, has einstein in 4 rooms of his own files and marie in one
room of a file shared with her. Counted from the service's own /metrics
(``cs3collab_cs3_calls_total``): each interval costs one WhoAmI for
einstein's token, shared by his 4 rooms, and one Stat for marie; his rooms
make no Stat at all. Revocation for marie keeps working (test_access.py).
"""

from __future__ import annotations

from contextlib import AsyncExitStack

import nbformat

from cs3collab.cs3 import roles
from cs3collab.cs3.shares import user_grantee
from tests.service.conftest import start_service
from tests.service.rtc import eventually, sources, type_text
from tests.support.metrics import cs3_calls
from tests.support.yclient import connect, wait_for


async def test_owner_rechecks_are_one_call_per_user(site, einstein, marie, notebook, tmp_path):
    async with start_service(site, tmp_path / "svc", "--access-recheck=0.5", "--poll-interval=3600") as svc:
        own = [await notebook(f"x = {i}") for i in range(4)]
        shared = await notebook("y = 1")
        await einstein.shares.create(shared, user_grantee(marie.user.id), roles.EDITOR)
        async with AsyncExitStack() as stack:
            for path in own:
                await stack.enter_async_context(connect(svc.url, einstein.token, path))
            await stack.enter_async_context(connect(svc.url, marie.token, shared))
            # after one full round every room knows its file's owner
            first = await cs3_calls(svc.url)
            await eventually(lambda: _whoami_above(svc.url, first, 1), 30, "a first owner token check")
            before = await cs3_calls(svc.url)
            after = await eventually(lambda: _whoami_above(svc.url, before, 6), 60, "6 more owner token checks")
        intervals = after.get("WhoAmI", 0) - before.get("WhoAmI", 0)
        stats = after.get("Stat", 0) - before.get("Stat", 0)
        # unbatched, this window would have cost 5 Stats per interval (one per room)
        assert stats <= intervals + 2, (stats, intervals)
        assert stats >= 1  # marie, a recipient, is still Stat'ed


async def _whoami_above(url: str, base: dict[str, float], n: int) -> dict[str, float] | None:
    now = await cs3_calls(url)
    return now if now.get("WhoAmI", 0) - base.get("WhoAmI", 0) >= n else None


async def test_idle_rooms_poll_slowly_and_still_see_outside_edits(site, einstein, notebook, tmp_path):
    """Polls every 0.3 s while active, every ~4-5 s once nobody edited for
    1 s (the room holds its lock: the locked idle interval, set to the same
    5 s here): over ~3 s of idleness (6 access re-checks of 0.5 s, used as
    the clock) a room polls at most twice instead of ~10 times; an outside
    edit to the idle room still reaches its client within the interval,
    with nobody typing."""
    async with start_service(site, tmp_path / "svc", "--access-recheck=0.5", "--poll-interval=0.3",
                             "--CollabService.poll_idle_interval=5", "--CollabService.poll_active_window=1",
                             "--CollabService.poll_locked_interval=5") as svc:
        path = await notebook("z = 0")
        async with connect(svc.url, einstein.token, path) as client:
            first = await cs3_calls(svc.url)
            await eventually(lambda: _whoami_above(svc.url, first, 4), 30, "idle for ~2 s")
            before = await cs3_calls(svc.url)
            after = await eventually(lambda: _whoami_above(svc.url, before, 6), 60, "6 more token checks")
            stats = after.get("Stat", 0) - before.get("Stat", 0)
            assert stats <= 2, stats
            # a writer below the room's lock (a storage mount) changes the cell, keeping its id
            stored = nbformat.reads((await einstein.files.download(path)).decode(), as_version=4)
            stored.cells[0].source = "z = 1  # outside"
            lock = await einstein.locks.get(path)
            await einstein.files.upload(path, nbformat.writes(stored).encode(), lock_id=lock.lock_id)
            await wait_for(client.doc, lambda: sources(client) == ["z = 1  # outside"], timeout=20)


IDLE_LOCKED = ("--access-recheck=0.5", "--poll-interval=0.3", "--CollabService.poll_idle_interval=1",
               "--CollabService.poll_active_window=1", "--CollabService.poll_locked_interval=3600",
               "--save-quiet=3600", "--save-ceiling=3600")
"""Idle after 1 s; an idle room without its lock polls every ~1 s, one
holding it not within the test; saves are pushed out of the test (so that
only a poll can merge an outside edit: a save would merge it on its failed
``if_match``); access re-checks every 0.5 s are the tests' clock."""


async def _outside_edit(einstein, path: str, cell: int, source: str) -> None:
    """A writer below the room's lock (a storage mount, an app presenting its
    lock id) changes one cell, keeping its id."""
    stored = nbformat.reads((await einstein.files.download(path)).decode(), as_version=4)
    stored.cells[cell].source = source
    lock = await einstein.locks.get(path)
    await einstein.files.upload(path, nbformat.writes(stored).encode(), lock_id=lock.lock_id)


async def test_idle_room_holding_its_lock_polls_rarely_and_catches_up_when_used(site, einstein, notebook, tmp_path):
    """An idle room that holds its lock makes no Stat over ~3 s (one without
    it would make ~3); an outside edit made meanwhile is not seen until the
    room is used again: a tab that joins gets it, and so does the first
    keystroke after the next idle spell, before the typing is saved."""
    async with start_service(site, tmp_path / "svc", *IDLE_LOCKED) as svc:
        path = await notebook("a = 0", "b = 0")
        async with connect(svc.url, einstein.token, path) as first:
            start = await cs3_calls(svc.url)
            await eventually(lambda: _whoami_above(svc.url, start, 4), 30, "idle for ~2 s")
            before = await cs3_calls(svc.url)
            after = await eventually(lambda: _whoami_above(svc.url, before, 6), 60, "6 more token checks")
            assert after.get("Stat", 0) - before.get("Stat", 0) <= 1, (before, after)
            assert after.get("RefreshLock", 0) > before.get("RefreshLock", 0)  # the lock is kept meanwhile

            await _outside_edit(einstein, path, 0, "a = 1  # outside, while idle")
            seen = await cs3_calls(svc.url)
            await eventually(lambda: _whoami_above(svc.url, seen, 4), 60, "4 more token checks")
            assert sources(first) == ["a = 0", "b = 0"]  # not polled: the idle room holds its lock

            # a tab opening the notebook makes the room poll at once
            async with connect(svc.url, einstein.token, path) as second:
                await wait_for(second.doc, lambda: sources(second)[0] == "a = 1  # outside, while idle", timeout=20)
            await wait_for(first.doc, lambda: sources(first)[0] == "a = 1  # outside, while idle", timeout=20)

            # idle again; another outside edit; then the first keystroke polls
            start = await cs3_calls(svc.url)
            await eventually(lambda: _whoami_above(svc.url, start, 4), 30, "idle for ~2 s")
            await _outside_edit(einstein, path, 0, "a = 2  # outside, idle again")
            type_text(first, 1, "  # typed")
            await wait_for(first.doc, lambda: sources(first) == ["a = 2  # outside, idle again", "b = 0  # typed"],
                           timeout=20)
            assert await einstein.files.download(path) and "# typed" not in (await einstein.files.download(path)).decode()


async def test_idle_room_that_loses_its_lock_polls_at_once_and_without_it_keeps_polling(
        site, einstein, notebook, tmp_path):
    """Another app takes the file's lock from an idle room (ours was
    removed): the failed refresh makes the room poll at once, so its tabs
    turn read-only within seconds instead of the locked idle interval (an
    hour here); without its lock the idle room then polls every ~1 s."""
    async with start_service(site, tmp_path / "svc", *IDLE_LOCKED, "--lock-lifetime=3") as svc:
        path = await notebook("c = 0")
        async with connect(svc.url, einstein.token, path) as client:
            start = await cs3_calls(svc.url)
            await eventually(lambda: _whoami_above(svc.url, start, 4), 30, "idle for ~2 s")
            ours = await einstein.locks.get(path)
            await einstein.locks.unlock(path, lock_id=ours.lock_id, app_name="cs3collab")
            await einstein.locks.set(path, lock_id="wopi-lock-2", app_name="wopi", lifetime=120)
            notice = await client.channel.wait_raw(lambda m: m.get("type") == "cs3collab:read-only", timeout=20)
            assert notice["reason"] == "locked by wopi (Albert Einstein)"
            before = await cs3_calls(svc.url)
            after = await eventually(lambda: _whoami_above(svc.url, before, 6), 60, "6 more token checks")
            assert after.get("Stat", 0) - before.get("Stat", 0) >= 2, (before, after)
            await einstein.locks.unlock(path, lock_id="wopi-lock-2", app_name="wopi")
