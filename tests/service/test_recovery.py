"""Crash recovery: a SIGKILLed service loses nothing it acknowledged.

An edit is acknowledged once the room broadcast it (the journal made it
durable first), so "seen by a second client" is the user-visible proof. The
service is killed with SIGKILL, a new one starts on the same state folder,
clients reconnect: every acknowledged edit is in the room, then in CS3,
and the room takes new edits at once (it does not take its own previous
lock for someone else's).
"""

from __future__ import annotations

import contextlib

import anyio
import nbformat
import websockets

from tests.service.conftest import start_service
from tests.service.rtc import saved_containing, sources, type_text
from tests.support.yclient import connect, wait_for

NO_SAVE_BEFORE_KILL = ("--save-quiet=60", "--save-ceiling=120")
LONG_LOCK = ("--lock-lifetime=30",)
"""A lock that outlives the test: the restarted room must not wait for it to expire."""


@contextlib.asynccontextmanager
async def until_killed(cm):
    """A client context whose socket may die with the service."""
    try:
        async with cm as client:
            yield client
    except* (websockets.ConnectionClosed, OSError):
        pass


async def kill(svc) -> None:
    svc.running.process.kill()
    await svc.running.process.wait()


async def test_acknowledged_edits_survive_sigkill(site, tmp_path, einstein, notebook):
    path = await notebook("cell one", "cell two")
    state_dir = tmp_path / "state"
    async with start_service(site, state_dir, *NO_SAVE_BEFORE_KILL, *LONG_LOCK) as svc:
        async with until_killed(connect(svc.url, einstein.token, path)) as typist, until_killed(
            connect(svc.url, einstein.token, path)
        ) as witness:
            type_text(typist, 0, " +typed")
            type_text(typist, 1, " +also")
            await wait_for(witness.doc, lambda: sources(witness) == ["cell one +typed", "cell two +also"])
            typist_doc = typist.doc
            await kill(svc)
    assert (await einstein.files.download(path)).count(b"+typed") == 0  # nothing was saved before the kill

    async with start_service(site, state_dir, *LONG_LOCK) as svc:
        async with connect(svc.url, einstein.token, path) as fresh:
            assert sources(fresh) == ["cell one +typed", "cell two +also"]
            # the typist's tab reconnects with its old state: no duplicates
            async with connect(svc.url, einstein.token, path, doc=typist_doc) as back:
                assert sources(back) == ["cell one +typed", "cell two +also"]
                # and the room takes new edits right away
                type_text(back, 1, " +after restart")
                await wait_for(fresh.doc, lambda: sources(fresh)[1] == "cell two +also +after restart")
                saved = await saved_containing(einstein, path, "+after restart", timeout=5)
    assert saved == ["cell one +typed", "cell two +also +after restart"]


async def test_kill_while_typing_loses_no_acknowledged_keystroke(site, tmp_path, einstein, notebook):
    path = await notebook("")
    state_dir = tmp_path / "state"
    async with start_service(site, state_dir, *LONG_LOCK) as svc:
        async with until_killed(connect(svc.url, einstein.token, path)) as typist, until_killed(
            connect(svc.url, einstein.token, path)
        ) as witness:
            count = 0
            while count < 40 or not sources(witness)[0]:
                type_text(typist, 0, f"k{count};")
                count += 1
                await anyio.sleep(0.02)  # keystrokes at 50 Hz; saves (quiet 0.2 s, ceiling 2 s) run meanwhile
            await kill(svc)
            acknowledged = sources(witness)[0]
    assert acknowledged.startswith("k0;")

    async with start_service(site, state_dir, *LONG_LOCK) as svc:
        async with connect(svc.url, einstein.token, path) as fresh:
            text = sources(fresh)[0]
            assert text.startswith(acknowledged), (acknowledged, text)
            assert len(fresh.document.ycells) == 1
            saved = await saved_containing(einstein, path, acknowledged, timeout=5)
    assert saved[0].startswith(acknowledged)


async def test_kill_after_an_outside_edit_was_merged_into_unsaved_typing(site, tmp_path, einstein, notebook):
    """Another tool changes the stored file while typing in the room is unsaved;
    the room merges it, and the service dies before it saves. After the restart
    the outside change is there once (not merged a second time from the stored
    file) and the typing is kept; then both are saved."""
    path = await notebook("cell one", "cell two")
    state_dir = tmp_path / "state"
    expected = ["cell one + typed, unsaved", "cell two, changed outside"]
    async with start_service(site, state_dir, *NO_SAVE_BEFORE_KILL, *LONG_LOCK) as svc:
        async with until_killed(connect(svc.url, einstein.token, path)) as typist, until_killed(
            connect(svc.url, einstein.token, path)
        ) as witness:
            type_text(typist, 0, " + typed, unsaved")
            await wait_for(witness.doc, lambda: sources(witness)[0] == "cell one + typed, unsaved")
            # a writer below the room's lock changes cell 2 of the stored file (cell ids kept)
            stored = nbformat.reads((await einstein.files.download(path)).decode(), as_version=4)
            stored.cells[1].source = "cell two, changed outside"
            lock = await einstein.locks.get(path)
            await einstein.files.upload(path, nbformat.writes(stored).encode(), lock_id=lock.lock_id)
            await wait_for(witness.doc, lambda: sources(witness) == expected)  # merged, not saved
            await kill(svc)
    stored_now = nbformat.reads((await einstein.files.download(path)).decode(), as_version=4)
    assert [c.source for c in stored_now.cells] == ["cell one", "cell two, changed outside"]

    async with start_service(site, state_dir, *LONG_LOCK) as svc:
        async with connect(svc.url, einstein.token, path) as fresh:
            assert sources(fresh) == expected
            saved = await saved_containing(einstein, path, "+ typed, unsaved", timeout=5)
    assert saved == expected
