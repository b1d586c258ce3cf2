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
