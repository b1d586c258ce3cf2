"""Idle rooms cost few CS3 calls (issue 14, point 2): access re-checks per
user, not per room; polls slow down when nobody edits.

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
from tests.service.rtc import eventually, sources
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
    1 s: over ~3 s of idleness (6 access re-checks of 0.5 s, used as the
    clock) a room polls at most twice instead of ~10 times; an outside edit
    to the idle room still reaches its client."""
    async with start_service(site, tmp_path / "svc", "--access-recheck=0.5", "--poll-interval=0.3",
                             "--CollabService.poll_idle_interval=5", "--CollabService.poll_active_window=1") as svc:
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
