"""The room journal (cs3collab.service.journal), both backends: SQLite and Redis.

The contract tests run against each backend (the ``make_journal`` and
``running`` fixtures); the rest are about one backend's store.

What is checked: acknowledged appends survive a SIGKILL of the process
(the service's for SQLite, Redis's own with its AOF);
sequence numbers; group commit; compaction keeps a continuous Y history
(a rebuilt room equals the original and a client with pre-compaction state
syncs without duplicates); persisted marks and crash-recovery listing;
both lifecycles; bad files and bad input.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import sqlite3
import sys
import uuid
import zlib
from pathlib import Path

import anyio
import pytest
from prometheus_client import REGISTRY
from pycrdt import Array, Doc, Map, Text

from cs3collab.service.journal import (
    MAX_ROOM_KEY_BYTES,
    Compressed,
    InvalidRoomKeyError,
    InvalidUpdateError,
    Journal,
    JournalClosedError,
    JournalCorruptError,
    JournalInUseError,
    JournalUnavailableError,
)
from cs3collab.service.journal_redis import RedisJournal
from cs3collab.service.journal_sqlite import SQLiteJournal
from tests.service.journal_writer import payload
from tests.support.redis import redis_server

ROOM = "storage-1$space-1!3f2a9c1e-0d4b-4a57-9b4e-5c8f1a2b3c4d"


@pytest.fixture(params=["sqlite", "redis"])
def make_journal(request, tmp_path):
    """``make_journal(**traits)``: a new (not started) journal object of the
    backend under test, on this test's store (the same SQLite file, or the
    same Redis key prefix, each time: a second object is a reopen)."""
    if request.param == "sqlite":
        return lambda **traits: SQLiteJournal(tmp_path / "journal.sqlite3", **traits)
    redis = request.getfixturevalue("redis")
    prefix = f"t{uuid.uuid4().hex[:12]}"
    return lambda **traits: RedisJournal(redis.url, key_prefix=prefix, **traits)


@pytest.fixture(params=["async-with", "task-group"])
def running(request, make_journal):
    """``async with running(**traits) as journal``: a started journal of
    the backend under test, through each of the two lifecycles."""

    def open_journal(**traits):
        journal = make_journal(**traits)
        if request.param == "async-with":
            return journal

        class _Started:
            async def __aenter__(self):
                self._tg = anyio.create_task_group()
                await self._tg.__aenter__()
                await self._tg.start(journal.start)
                return journal

            async def __aexit__(self, *exc):
                await journal.stop()
                return await self._tg.__aexit__(*exc)

        return _Started()

    return open_journal


# -- durability ----------------------------------------------------------------------


@pytest.mark.parametrize("synchronous", ["FULL", "NORMAL"])
async def test_acknowledged_appends_survive_sigkill(tmp_path, synchronous):
    """Kill a process that appends from 4 rooms mid-stream: every seq it was
    given back (and printed) is in the journal with its bytes."""
    path = tmp_path / "journal.sqlite3"
    writer = Path(__file__).with_name("journal_writer.py")
    repo = str(Path(__file__).parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")]))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(writer), str(path), synchronous, "4",
        stdout=asyncio.subprocess.PIPE, env=env)
    acked: list[tuple[str, int, int]] = []
    try:
        with anyio.fail_after(60):
            assert (await proc.stdout.readline()) == b"ready\n"
            while len(acked) < 600:
                line = await proc.stdout.readline()
                assert line.endswith(b"\n"), line
                room, seq, n = line.decode().split()
                acked.append((room, int(seq), int(n)))
            proc.send_signal(signal.SIGKILL)
            # Lines already in the pipe were printed before the kill: acknowledged too.
            for line in (await proc.stdout.read()).splitlines(keepends=True):
                if line.endswith(b"\n"):
                    room, seq, n = line.decode().split()
                    acked.append((room, int(seq), int(n)))
            assert await proc.wait() == -signal.SIGKILL
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    async with SQLiteJournal(path) as journal:
        records = {room: await journal.load(room) for room in {room for room, _, _ in acked}}
        assert await journal.rooms_needing_flush() == sorted(records)
    for room, seq, n in acked:
        record = records[room]
        assert record is not None and seq <= record.last_seq, (room, seq)
        assert record.updates[seq - 1] == payload(room, n)
    for record in records.values():
        assert len(record.updates) == record.last_seq  # no gaps


async def test_stop_commits_queued_appends(make_journal):
    journal = make_journal()
    async with anyio.create_task_group() as tg:
        await tg.start(journal.start)
        results: list[int] = []

        async def append(i: int) -> None:
            results.append(await journal.append(ROOM, b"u%d" % i))

        for i in range(20):
            tg.start_soon(append, i)
        await anyio.lowlevel.checkpoint()  # the appends are queued, not committed
        await journal.stop()
    assert sorted(results) == list(range(1, 21))
    with pytest.raises(JournalClosedError):
        await journal.append(ROOM, b"late")
    async with make_journal() as journal:
        assert (await journal.load(ROOM)).last_seq == 20


async def test_cancelled_owner_settles_every_call(make_journal):
    """Cancelling the journal's owner (not stop()) leaves no caller hanging:
    each queued call either committed (and is in the store) or raised."""
    journal = make_journal()
    outcomes: list[int | Exception] = []

    async def append(i: int) -> None:
        try:
            outcomes.append(await journal.append(ROOM, b"u%d" % i))
        except JournalClosedError as e:
            outcomes.append(e)

    with anyio.fail_after(10):
        async with anyio.create_task_group() as callers:
            async with anyio.create_task_group() as owner:
                await owner.start(journal.start)
                assert await journal.append(ROOM, b"first") == 1
                for i in range(10):
                    callers.start_soon(append, i)
                await anyio.lowlevel.checkpoint()
                owner.cancel_scope.cancel()
    assert len(outcomes) == 10
    committed = sorted(o for o in outcomes if isinstance(o, int))
    await journal.stop()  # already stopped: returns
    async with make_journal() as journal:
        assert (await journal.load(ROOM)).last_seq == 1 + len(committed)


# -- sequence numbers and group commit ---------------------------------------------------


async def test_seq_strictly_increasing_per_room(running):
    async with running() as journal:
        assert isinstance(journal, Journal)
        rooms = [f"{ROOM}-{i}" for i in range(5)]
        calls = [(rooms[i % 5], b"%d" % i) for i in range(200)]
        seqs = await asyncio.gather(*(journal.append(room, data) for room, data in calls))
        for room in rooms:
            mine = [seq for (r, _), seq in zip(calls, seqs) if r == room]
            assert mine == list(range(1, 41))  # in call order, no gaps
        assert await journal.append(rooms[0], b"next") == 41
        record = await journal.load(rooms[3])
        assert record.updates == [data for r, data in calls if r == rooms[3]]
        assert record.seqs == list(range(1, 41))
        assert (record.last_seq, record.persisted_seq, record.persisted_etag, record.meta) == (40, 0, "", {})


async def test_appends_of_one_tick_share_one_commit(running):
    async with running() as journal:
        await journal.append(ROOM, b"first")
        before = journal.stats.commits
        await asyncio.gather(*(journal.append(f"{ROOM}-{i % 7}", b"x" * 100) for i in range(300)))
        assert journal.stats.commits == before + 1
        assert journal.stats.appends == 301


async def test_each_commit_is_timed_for_the_metrics(running):
    """An operator's dashboard shows the journal's commit time for either
    backend (``cs3collab_journal_commit_seconds``): one observation per commit."""
    count = "cs3collab_journal_commit_seconds_count"
    async with running() as journal:
        observed, commits = REGISTRY.get_sample_value(count) or 0.0, journal.stats.commits
        await asyncio.gather(*(journal.append(ROOM, b"x") for _ in range(5)))  # one commit
        await journal.append(ROOM, b"y")  # and another
        assert journal.stats.commits - commits == 2
        assert REGISTRY.get_sample_value(count) - observed == 2


async def test_appends_during_a_commit_share_the_next_one(running):
    async with running() as journal:
        first = asyncio.ensure_future(journal.append(ROOM, b"a"))
        await asyncio.sleep(0)
        await asyncio.sleep(0)  # the first commit is now in flight
        before = journal.stats.commits
        rest = await asyncio.gather(*(journal.append(ROOM, b"b") for _ in range(50)))
        assert await first == 1 and rest == list(range(2, 52))
        assert journal.stats.commits - before <= 2


async def test_cancelled_append_does_not_disturb_others(running):
    async with running() as journal:
        doomed = asyncio.ensure_future(journal.append(ROOM, b"cancelled"))
        others = [asyncio.ensure_future(journal.append(ROOM, b"kept%d" % i)) for i in range(3)]
        doomed.cancel()
        assert sorted(await asyncio.gather(*others)) == [1, 2, 3]
        assert (await journal.load(ROOM)).updates == [b"kept0", b"kept1", b"kept2"]


# -- persistence marks, meta, forget ---------------------------------------------------------


async def test_persisted_marks_and_rooms_needing_flush(running):
    async with running() as journal:
        for i in range(3):
            await journal.append("room-a", b"a%d" % i)
            await journal.append("room-b", b"b%d" % i)
        await journal.set_meta("room-c", "type", "notebook")  # a room without updates
        assert await journal.rooms_needing_flush() == ["room-a", "room-b"]
        await journal.mark_persisted("room-a", 3, '"etag-3"')
        await journal.mark_persisted("room-b", 2, '"etag-2"')
        await journal.mark_persisted("room-b", 1, '"stale"')  # an older save finishing late
        assert await journal.rooms_needing_flush() == ["room-b"]
        with pytest.raises(ValueError, match="last seq is 3"):
            await journal.mark_persisted("room-a", 4, '"future"')
        await journal.mark_persisted("room-new", 0, '"opened"')
        await journal.set_meta("room-a", "type", "notebook")
        await journal.set_meta("room-a", "path", "/home/einstein/analysis.ipynb")
        await journal.set_meta("room-a", "type", "file")
    async with running() as journal:  # reopened
        a = await journal.load("room-a")
        assert (a.last_seq, a.persisted_seq, a.persisted_etag) == (3, 3, '"etag-3"')
        assert a.meta == {"type": "file", "path": "/home/einstein/analysis.ipynb"}
        b = await journal.load("room-b")
        assert (b.persisted_seq, b.persisted_etag, b.needs_flush) == (2, '"etag-2"', True)
        new = await journal.load("room-new")
        assert (new.updates, new.last_seq, new.persisted_etag) == ([], 0, '"opened"')
        assert await journal.rooms_needing_flush() == ["room-b"]
        assert await journal.load("room-unknown") is None


async def test_forget_drops_everything(running):
    async with running() as journal:
        await journal.append(ROOM, b"a")
        await journal.set_meta(ROOM, "type", "notebook")
        await journal.append("other", b"o")
        await journal.forget(ROOM)
        await journal.forget("never-seen")
        assert await journal.load(ROOM) is None
        assert await journal.rooms_needing_flush() == ["other"]
        assert await journal.append(ROOM, b"again") == 1
        assert (await journal.load(ROOM)).meta == {}


# -- compaction -------------------------------------------------------------------------


async def test_compact_replaces_prefix_only(running):
    async with running() as journal:
        for i in range(1, 11):
            await journal.append(ROOM, b"u%d" % i)
        await journal.compact(ROOM, b"snap5", 5)
        record = await journal.load(ROOM)
        assert record.updates == [b"snap5", b"u6", b"u7", b"u8", b"u9", b"u10"]
        assert record.seqs == [5, 6, 7, 8, 9, 10] and record.last_seq == 10
        await journal.compact(ROOM, b"snap3", 3)  # already compacted past 3: unchanged
        assert (await journal.load(ROOM)).updates == record.updates
        await journal.compact(ROOM, b"snap8", 8)
        assert (await journal.load(ROOM)).updates == [b"snap8", b"u9", b"u10"]
        for bad in (11, 0):
            with pytest.raises(ValueError):
                await journal.compact(ROOM, b"bad", bad)
        with pytest.raises(ValueError):
            await journal.compact("no-such-room", b"bad", 1)
        assert (await journal.load(ROOM)).updates == [b"snap8", b"u9", b"u10"]
        assert await journal.append(ROOM, b"u11") == 11


async def test_compressed_updates_load_as_the_updates(running):
    """A fresh open's first state and a compaction's snapshot come compressed
    (what the room already holds): whatever the backend keeps, a reload gives
    the updates themselves, and a compressed update over the limit is refused
    by the size it says."""
    big = os.urandom(3000) * 40  # 120 kB that compress well, as a notebook's state does
    async with running(max_update_size=200_000) as journal:
        assert await journal.append(ROOM, Compressed(zlib.compress(big, 1), len(big), big)) == 1
        assert await journal.append(ROOM, Compressed(zlib.compress(b"u2", 1), 2)) == 2
        await journal.append(ROOM, b"u3")
        record = await journal.load(ROOM)
        assert record.updates == [big, b"u2", b"u3"] and record.seqs == [1, 2, 3]
        await journal.compact(ROOM, Compressed(zlib.compress(b"snap2", 1)), 2)
        assert (await journal.load(ROOM)).updates == [b"snap2", b"u3"]
        with pytest.raises(InvalidUpdateError):
            await journal.append(ROOM, Compressed(zlib.compress(b"x", 1), 200_001))
        with pytest.raises(InvalidUpdateError):
            await journal.append(ROOM, Compressed(zlib.compress(b"x", 1)))  # an append must say its size
        assert (await journal.load(ROOM)).last_seq == 3


async def test_settled_waits_for_the_commits_under_way(running):
    """A large open's restore waits between its steps until the journal has
    committed what other rooms' keystrokes queued (Journal.settled)."""
    async with running() as journal:
        await asyncio.wait_for(journal.settled(), 5)  # nothing queued: at once
        appends = [asyncio.ensure_future(journal.append(f"{ROOM}-{i}", payload(ROOM, i + 1))) for i in range(20)]
        await asyncio.sleep(0)  # queued, the writer woken
        await asyncio.wait_for(journal.settled(), 10)
        assert all(append.done() for append in appends)  # every commit made before settled returned
        await asyncio.gather(*appends)
        waiting = asyncio.ensure_future(journal.settled())
        await asyncio.sleep(0)
        assert waiting.done()

        # a steady stream of appends (some always queued when a commit ends) does not keep it waiting;
        # at most 100 under way, which a commit takes only part of: the rest stay queued meanwhile
        stop = asyncio.Event()
        streamed: list[asyncio.Future] = []
        under_way: set[asyncio.Future] = set()

        async def stream() -> None:
            while not stop.is_set():
                if len(under_way) < 100:
                    append = asyncio.ensure_future(journal.append(f"{ROOM}-s", payload(ROOM, len(streamed) + 1)))
                    streamed.append(append)
                    under_way.add(append)
                    append.add_done_callback(under_way.discard)
                await asyncio.sleep(0)

        streaming = asyncio.ensure_future(stream())
        await asyncio.sleep(0)
        for _ in range(5):
            await asyncio.wait_for(journal.settled(), 10)
        stop.set()
        await streaming
        await asyncio.gather(*streamed)
    await asyncio.wait_for(journal.settled(), 5)  # a stopped journal has nothing under way


async def test_sqlite_keeps_compressed_updates_compressed(tmp_path):
    """The SQLite journal writes the compressed bytes (a quarter of a
    notebook state's pages on its one writer thread) and reads them back."""
    path = tmp_path / "journal.sqlite3"
    big = os.urandom(3000) * 40
    packed = zlib.compress(big, 1)
    async with SQLiteJournal(path) as journal:
        await journal.append(ROOM, Compressed(packed, len(big), big))
        assert journal.stats.appended_bytes == len(big)
    with sqlite3.connect(path) as conn:
        stored = conn.execute("SELECT length(data), codec FROM updates").fetchall()
    conn.close()
    assert stored == [(len(packed), 1)] and len(packed) < len(big) / 10
    async with SQLiteJournal(path) as journal:
        assert (await journal.load(ROOM)).updates == [big]


async def test_a_version_1_journal_is_upgraded_in_place(tmp_path):
    """A journal written before compressed updates (schema version 1) opens
    with everything in it, then takes compressed updates."""
    path = tmp_path / "journal.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript("""
        CREATE TABLE rooms (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, last_seq INTEGER NOT NULL DEFAULT 0,
            persisted_seq INTEGER NOT NULL DEFAULT 0, persisted_etag TEXT NOT NULL DEFAULT '');
        CREATE TABLE updates (room_id INTEGER NOT NULL, seq INTEGER NOT NULL, data BLOB NOT NULL,
            PRIMARY KEY (room_id, seq));
        CREATE TABLE meta (room_id INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (room_id, key));
    """)
    conn.execute("INSERT INTO rooms (key, last_seq, persisted_seq, persisted_etag) VALUES (?, 2, 1, 'e1')", (ROOM,))
    conn.executemany("INSERT INTO updates (room_id, seq, data) VALUES (1, ?, ?)", [(1, b"u1"), (2, b"u2")])
    conn.execute(f"PRAGMA application_id={int.from_bytes(b'cs3j', 'big')}")
    conn.execute("PRAGMA user_version=1")
    conn.close()
    async with SQLiteJournal(path) as journal:
        record = await journal.load(ROOM)
        assert (record.updates, record.last_seq, record.persisted_seq, record.persisted_etag) == \
            ([b"u1", b"u2"], 2, 1, "e1")
        await journal.append(ROOM, Compressed(zlib.compress(b"u3", 1), 2))
    async with SQLiteJournal(path) as journal:
        assert (await journal.load(ROOM)).updates == [b"u1", b"u2", b"u3"]


async def test_a_newer_journal_is_refused_by_its_version(tmp_path):
    path = tmp_path / "journal.sqlite3"
    async with SQLiteJournal(path):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version=3")
    conn.close()
    with pytest.raises(JournalCorruptError, match="schema version 3"):
        async with SQLiteJournal(path):
            pass


def _roots(doc: Doc) -> tuple[Text, Map, Array, Map]:
    return (doc.get("text", type=Text), doc.get("map", type=Map),
            doc.get("cells", type=Array), doc.get("meta", type=Map))


def _content(doc: Doc) -> dict:
    text, map_, cells, meta = _roots(doc)
    return {"text": str(text), "map": map_.to_py(), "cells": cells.to_py(), "meta": meta.to_py()}


def _doc_from(updates: list[bytes]) -> Doc:
    doc = Doc()
    for update in updates:
        doc.apply_update(update)
    return doc


class _Client:
    """One editing client: a Doc with a fixed client id, its local updates,
    and remote updates it has not applied yet (so edits are concurrent)."""

    def __init__(self, client_id: int) -> None:
        self.doc = Doc(client_id=client_id)
        self.inbox: list[bytes] = []
        self.outbox: list[bytes] = []
        self._local = False
        self.doc.observe(self._on_transaction)

    def _on_transaction(self, event) -> None:
        if self._local:
            self.outbox.append(event.update)

    def receive(self) -> None:
        for update in self.inbox:
            self.doc.apply_update(update)
        self.inbox.clear()

    def edit(self, rng: random.Random) -> None:
        text, map_, cells, meta = _roots(self.doc)
        self._local = True
        try:
            kind = rng.randrange(9)
            if kind == 0 or len(cells) == 0:
                source = Text("".join(rng.choices("abc xyz=1\n", k=rng.randrange(1, 20))))
                cells.insert(rng.randrange(len(cells) + 1), Map({
                    "id": f"c{rng.randrange(10**6)}", "cell_type": "code", "source": source,
                    "metadata": Map({"tags": Array(["t"])}), "outputs": Array(), "execution_count": None}))
            elif kind == 1 and len(cells) > 3:
                del cells[rng.randrange(len(cells))]
            elif kind in (2, 3):
                source = cells[rng.randrange(len(cells))]["source"]
                if len(source) > 5 and rng.random() < 0.4:
                    start = rng.randrange(len(source) - 2)
                    del source[start:start + 2]
                else:
                    source.insert(rng.randrange(len(source) + 1), rng.choice(["print(x)", "\n", "e", "s"]))
            elif kind == 4:
                cell = cells[rng.randrange(len(cells))]
                cell["outputs"].append(Map({"output_type": "stream", "name": "stdout",
                                            "text": Text(f"out {rng.randrange(100)}")}))
                cell["execution_count"] = rng.randrange(1, 50)
            elif kind == 5:
                cells[rng.randrange(len(cells))]["metadata"][f"k{rng.randrange(4)}"] = rng.randrange(100)
            elif kind == 6:
                if len(text) > 10 and rng.random() < 0.3:
                    start = rng.randrange(len(text) - 4)
                    del text[start:start + 4]
                else:
                    text.insert(rng.randrange(len(text) + 1), rng.choice(["Hello ", "world ", "y", "\n"]))
            elif kind == 7:
                map_[f"key{rng.randrange(6)}"] = rng.choice([1, "two", 3.5, True, None, [1, 2], "é ß 🙂"])
            else:
                if "metadata" not in meta:
                    meta["metadata"] = Map({"kernelspec": Map({"name": "python3"})})
                    meta["nbformat"] = 4
                else:
                    meta["metadata"][f"m{rng.randrange(3)}"] = f"v{rng.randrange(100)}"
        finally:
            self._local = False


async def test_compaction_keeps_a_continuous_y_history(make_journal):
    """500 updates from 3 clients, compacted at update 300 with a snapshot of
    the doc built from the first 300, 200 more, journal reopened: the rebuilt
    room equals the original, and clients holding pre-compaction state sync
    with it without duplicated content."""
    rng = random.Random(20240611)
    clients = [_Client(client_id) for client_id in (101, 202, 303)]
    server = Doc()  # what a room would hold: every update, in journal order
    journaled: list[bytes] = []
    seqs: list[int] = []
    stale: dict[str, Doc] = {}
    compact_at = 300

    async with make_journal() as journal:
        while len(journaled) < 500:
            author = rng.choice(clients)
            author.edit(rng)
            for update in author.outbox:
                seqs.append(await journal.append(ROOM, update))
                journaled.append(update)
                server.apply_update(update)
                for other in clients:
                    if other is not author:
                        other.inbox.append(update)
                if len(journaled) == 250:
                    stale["before"] = _doc_from(journaled)
                if len(journaled) == compact_at:
                    stale["at"] = _doc_from(journaled)
                    snapshot = _doc_from(journaled).get_update()
                    await journal.compact(ROOM, snapshot, upto_seq=seqs[-1])
            author.outbox.clear()
            for client in clients:
                if rng.random() < 0.5:  # clients lag: edits are concurrent
                    client.receive()
        assert seqs == list(range(1, len(journaled) + 1))

    async with make_journal() as journal:  # a new process, as after a restart
        record = await journal.load(ROOM)
    assert record.last_seq == len(journaled)
    assert len(record.updates) == len(journaled) - compact_at + 1
    assert record.updates[0] == snapshot and record.updates[1:] == journaled[compact_at:]

    expected = _content(server)
    assert len(expected["cells"]) > 3 and expected["text"] and expected["map"] and expected["meta"]
    rebuilt = _doc_from(record.updates)
    assert _content(rebuilt) == expected
    assert _content(_doc_from(journaled)) == expected

    for client in clients:  # live clients catch up through the rebuilt room
        client.receive()
        client.doc.apply_update(rebuilt.get_update(client.doc.get_state()))
        assert _content(client.doc) == expected
    for name, doc in stale.items():  # clients that held pre-compaction state
        before = _content(doc)
        assert before != expected, name
        doc.apply_update(rebuilt.get_update(doc.get_state()))
        assert _content(doc) == expected, name
        rebuilt.apply_update(doc.get_update(rebuilt.get_state()))  # and back: nothing new
        assert _content(rebuilt) == expected, name

    # Control: a snapshot rebuilt from the content (new Y items) would duplicate.
    from_file = Doc(client_id=999)
    from_file.get("text", type=Text).insert(0, expected["text"])
    stale["at"].apply_update(from_file.get_update())
    assert str(stale["at"].get("text", type=Text)) == expected["text"] * 2


# -- lifecycle and bad input -------------------------------------------------------------


async def test_lifecycle_errors(make_journal):
    journal = make_journal()
    with pytest.raises(JournalClosedError):
        await journal.append(ROOM, b"before start")
    await journal.stop()  # not started: nothing to do
    async with journal:
        pass
    await journal.stop()  # idempotent
    with pytest.raises(JournalClosedError):
        await journal.load(ROOM)


async def test_corrupt_file_names_the_path(tmp_path):
    path = tmp_path / "journal.sqlite3"
    path.write_bytes(b"this is not a database" * 500)
    with pytest.raises(JournalCorruptError, match=str(path)) as info:
        async with SQLiteJournal(path):
            pass
    assert info.value.path == str(path) and "not a database" in info.value.reason


async def test_foreign_database_refused(tmp_path):
    path = tmp_path / "other.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (x)")
    conn.close()
    with pytest.raises(JournalCorruptError, match="not a cs3collab journal") as info:
        async with SQLiteJournal(path):
            pass
    assert str(path) in str(info.value)


async def test_damaged_pages_fail_the_start(tmp_path):
    path = tmp_path / "journal.sqlite3"
    async with SQLiteJournal(path) as journal:
        for i in range(300):
            await journal.append(f"room-{i % 3}", os.urandom(1000))
    data = bytearray(path.read_bytes())
    page = 4096
    data[3 * page:5 * page] = b"\xff" * (2 * page)  # wreck two b-tree pages, keep the header
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorruptError, match=str(path)):
        async with SQLiteJournal(path):
            pass


async def test_second_opener_refused(tmp_path):
    async with SQLiteJournal(tmp_path / "journal.sqlite3"):
        with pytest.raises(JournalInUseError, match="in use"):
            async with SQLiteJournal(tmp_path / "journal.sqlite3"):
                pass


@pytest.mark.parametrize("room", [
    "", "x" * (MAX_ROOM_KEY_BYTES + 1), "é" * (MAX_ROOM_KEY_BYTES // 2 + 1), "bad\x00key", "line\nbreak",
    "\ud800", b"bytes-key", None, 42,
])
async def test_invalid_room_keys_refused(make_journal, room):
    async with make_journal() as journal:
        for call in (journal.append(room, b"x"), journal.load(room), journal.set_meta(room, "k", "v"),
                     journal.mark_persisted(room, 0, ""), journal.compact(room, b"s", 1), journal.forget(room)):
            with pytest.raises(InvalidRoomKeyError):
                await call
        assert await journal.rooms_needing_flush() == []
        assert await journal.append("x" * MAX_ROOM_KEY_BYTES, b"ok") == 1  # the longest valid key


async def test_invalid_updates_and_values_refused(make_journal):
    async with make_journal(max_update_size=1000) as journal:
        for bad in (b"", "text", None, b"x" * 1001):
            with pytest.raises(InvalidUpdateError):
                await journal.append(ROOM, bad)
        assert await journal.append(ROOM, bytearray(b"x" * 1000)) == 1
        with pytest.raises(ValueError):
            await journal.set_meta(ROOM, "", "v")
        with pytest.raises(ValueError):
            await journal.set_meta(ROOM, "k", "v" * (64 * 1024 + 1))
        with pytest.raises(ValueError):
            await journal.mark_persisted(ROOM, -1, "")
        with pytest.raises(ValueError):
            await journal.compact(ROOM, b"", 1)
        assert (await journal.load(ROOM)).updates == [b"x" * 1000]


def test_path_trait_validated(tmp_path):
    from traitlets import TraitError

    with pytest.raises(TraitError):
        SQLiteJournal(":memory:")
    with pytest.raises(TraitError):
        SQLiteJournal(tmp_path / "j", max_update_size=-1)
    assert SQLiteJournal(tmp_path / "j", synchronous="normal").synchronous == "NORMAL"


async def test_logs_are_key_value(make_journal, caplog):
    caplog.set_level(logging.DEBUG, logger="cs3collab.service.journal")
    async with make_journal() as journal:
        for i in range(3):
            await journal.append(ROOM, b"u%d" % i)
        await journal.compact(ROOM, b"snap", 2)
        with pytest.raises(ValueError):
            await journal.compact(ROOM, b"snap", 9)
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith(("journal opened path=", "journal opened redis=")) for m in messages)
    assert any(m.startswith(f"journal compacted room={ROOM} upto_seq=2 removed=2") for m in messages)
    assert any(m.startswith(f"journal call failed op=compact room={ROOM} error=") for m in messages)
    assert any(m.startswith("journal commit calls=") for m in messages)
    assert any(m.startswith(("journal closed path=", "journal closed redis=")) for m in messages)
