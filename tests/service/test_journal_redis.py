"""The Redis journal's own store: what Redis restarts and outages do to it.

The Journal contract itself is checked against both backends in
test_journal.py. Here each test runs its own redis-server (a real process
with its AOF, on a free port) because it kills or stops it.
"""

from __future__ import annotations

import asyncio
import signal

import anyio
import pytest

from cs3collab.service.journal import JournalCorruptError, JournalUnavailableError
from cs3collab.service.journal_redis import RedisJournal
from tests.support.redis import redis_server

ROOM = "storage-1$space-1!5b1d0c6e-7a3f-4c2b-9d8e-0f1e2d3c4b5a"


@pytest.mark.parametrize("appendfsync", ["everysec", "always"])
async def test_acknowledged_appends_survive_redis_sigkill(tmp_path, appendfsync):
    """Appends from 4 rooms in flight, Redis killed with SIGKILL, restarted
    on its AOF: every append that returned a seq is there with its bytes."""
    acked: dict[str, dict[int, bytes]] = {}
    enough = asyncio.Event()
    async with redis_server(tmp_path / "redis", appendfsync=appendfsync) as redis:
        port = redis.port
        journal = RedisJournal(redis.url, timeout=5)
        async with journal:

            async def writer(room: str) -> None:
                n = 0
                while True:
                    n += 1
                    data = b"%s:%d" % (room.encode(), n)
                    try:
                        seq = await journal.append(room, data)
                    except JournalUnavailableError:
                        return  # not acknowledged: may or may not be there
                    acked.setdefault(room, {})[seq] = data
                    if sum(map(len, acked.values())) >= 400:
                        enough.set()

            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    for i in range(4):
                        tg.start_soon(writer, f"{ROOM}-{i}")
                    await enough.wait()
                    redis.running.process.send_signal(signal.SIGKILL)
                    assert await redis.running.process.wait() == -signal.SIGKILL
    assert len(acked) == 4
    async with redis_server(tmp_path / "redis", port=port, appendfsync=appendfsync) as redis:
        async with RedisJournal(redis.url) as journal:
            for room, seqs in acked.items():
                record = await journal.load(room)
                assert record is not None and max(seqs) <= record.last_seq
                assert record.seqs == list(range(1, record.last_seq + 1))  # no gaps
                for seq, data in seqs.items():
                    assert record.updates[seq - 1] == data
            assert await journal.rooms_needing_flush() == sorted(acked)


async def test_unreachable_redis_fails_calls_then_recovers(tmp_path):
    """Redis stopped: calls fail as unavailable (not acknowledged) and the
    journal keeps running; Redis back on its port: calls succeed again and
    every acknowledged append is still there."""
    async with redis_server(tmp_path / "redis") as redis:
        port, url = redis.port, redis.url
        journal = RedisJournal(url, timeout=2)
        async with journal:
            assert await journal.append(ROOM, b"one") == 1
            await journal.ready()
            redis.running.process.send_signal(signal.SIGTERM)
            await redis.running.process.wait()
            with anyio.fail_after(30):
                with pytest.raises(JournalUnavailableError, match=f"127.0.0.1:{port}") as info:
                    await journal.append(ROOM, b"lost")
            assert "unavailable" in str(info.value)
            with pytest.raises(JournalUnavailableError):
                await journal.load(ROOM)
            with pytest.raises(JournalUnavailableError):
                await journal.ready()  # /readyz: not ready
            async with redis_server(tmp_path / "redis", port=port):
                with anyio.fail_after(30):
                    await journal.ready()
                    assert await journal.append(ROOM, b"two") == 2
                    record = await journal.load(ROOM)
                assert record.updates == [b"one", b"two"]


async def test_scripts_lost_by_redis_are_loaded_again_and_nothing_runs_twice(redis):
    """Redis forgets the journal's scripts (SCRIPT FLUSH, as a restart does):
    the calls of the next round trip are answered NOSCRIPT, which means they
    did not run; the journal loads the scripts and sends them again, so each
    append is journaled exactly once. And a round trip is one: the journal
    does not ask Redis whether it has its scripts before each pipeline."""
    import redis.asyncio as aioredis

    async with RedisJournal(redis.url, key_prefix="flushed") as journal:
        assert await journal.append(ROOM, b"one") == 1
        await journal.client.script_flush()
        seqs = await asyncio.gather(*(journal.append(ROOM, b"%d" % i) for i in range(2, 6)),
                                    journal.append(f"{ROOM}-2", b"other"))
        assert sorted(seqs[:4]) == [2, 3, 4, 5] and seqs[4] == 1
        record = await journal.load(ROOM)
        assert record.seqs == [1, 2, 3, 4, 5] and sorted(record.updates) == [b"2", b"3", b"4", b"5", b"one"]
    client = aioredis.Redis.from_url(redis.url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    assert "cmdstat_script|exists" not in stats and stats["cmdstat_evalsha"]["calls"] >= 7


async def test_redis_down_at_start_is_a_clear_error(tmp_path):
    from tests.support.redis import free_port

    with pytest.raises(JournalUnavailableError, match="unavailable"):
        async with RedisJournal(f"redis://127.0.0.1:{free_port()}/0", timeout=2):
            pass


async def test_foreign_prefix_refused(redis):
    """A key prefix already used by something else is not a journal."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis.url)
    try:
        await client.set("notours:journal", "some other application's value")
        await client.hset("oldschema:journal", "schema", 99)
    finally:
        await client.aclose()
    with pytest.raises(JournalCorruptError, match="not a cs3collab journal marker"):
        async with RedisJournal(redis.url, key_prefix="notours"):
            pass
    with pytest.raises(JournalCorruptError, match="schema version"):
        async with RedisJournal(redis.url, key_prefix="oldschema"):
            pass


def test_traits_validated():
    from traitlets import TraitError

    for bad in ({"url": "http://x"}, {"url": "redis://x", "key_prefix": "a:b"},
                {"url": "redis://x", "timeout": 0}, {"url": "redis://x", "max_update_size": -1}):
        with pytest.raises(TraitError):
            RedisJournal(**bad)
    assert "secret" not in repr(RedisJournal("redis://user:secret@host:6379/0"))


def test_service_picks_the_journal(tmp_path):
    """--redis-url, or the chart's journal_class + RedisJournal.url, gives
    the Redis journal; neither gives SQLite in the state dir."""
    from cs3collab.service.app import CollabService
    from cs3collab.service.journal_sqlite import SQLiteJournal

    def journal(*argv: str):
        app = CollabService()
        app.initialize(["--gateway=127.0.0.1:1", f"--state-dir={tmp_path}", *argv])
        return app.make_journal(tmp_path)

    by_url = journal("--redis-url=redis://127.0.0.1:6390/2")
    assert isinstance(by_url, RedisJournal) and by_url.url == "redis://127.0.0.1:6390/2"
    by_class = journal("--CollabService.journal_class=cs3collab.service.journal_redis.RedisJournal",
                       "--RedisJournal.url=redis://127.0.0.1:6391/0", "--RedisJournal.key_prefix=site-a")
    assert isinstance(by_class, RedisJournal) and (by_class.url, by_class.key_prefix) == ("redis://127.0.0.1:6391/0",
                                                                                        "site-a")
    default = journal()
    assert isinstance(default, SQLiteJournal) and default.path == str(tmp_path / "journal.sqlite3")
