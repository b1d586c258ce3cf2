"""Fan-out between replicas (cs3collab.service.fanout) on a real Redis.

Two RedisJournals with the same prefix stand for two replicas, each with
its RoomBus. What is checked: a replica receives the other's updates for
the rooms it subscribed (in order, as Y updates that converge), never its
own; a compaction it had not read reaches it as a gap (reload), and a
compaction while it follows the room trims nothing it has not read; ephemeral
messages cross replicas and are not echoed; a Redis restart does not lose
the reader's position.
"""

from __future__ import annotations

import uuid

import anyio
import pytest
from pycrdt import Doc, Text

from cs3collab.service.fanout import RoomBus
from cs3collab.service.journal import JournalUnavailableError, author_tag
from cs3collab.service.journal_redis import RedisJournal
from tests.support.redis import redis_server

ROOM = "storage-1$space-1!7e6d5c4b-3a29-4810-9f8e-7d6c5b4a3928"


class Inbox:
    """What one replica's callbacks received for one room."""

    def __init__(self) -> None:
        self.updates: list[bytes] = []
        self.authors: dict[str, str] = {}
        self.messages: list[bytes] = []
        self.gaps = 0
        self.changed = anyio.Event()

    def _note(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    async def on_updates(self, updates, last_seq, authors):
        self.updates += updates
        self.authors.update(authors)
        self._note()

    async def on_gap(self):
        self.gaps += 1
        self._note()

    async def on_message(self, payload):
        self.messages.append(payload)
        self._note()

    async def until(self, check, timeout: float = 20.0) -> None:
        with anyio.fail_after(timeout):
            while not check():
                await self.changed.wait()


async def following(tg, journal: RedisJournal, since: int = 0, **settings) -> tuple[RoomBus, Inbox]:
    """A replica's bus, running in ``tg``, following ROOM from ``since``, and what it receives."""
    bus = RoomBus(journal, **settings)
    await tg.start(bus.run)
    inbox = Inbox()
    await bus.subscribe(ROOM, since, inbox.on_updates, inbox.on_gap)
    return bus, inbox


def _edits(client_id: int, n: int) -> list[bytes]:
    doc = Doc(client_id=client_id)
    text = doc.get("t", type=Text)
    out: list[bytes] = []
    doc.observe(lambda event: out.append(event.update))
    for i in range(n):
        text += f"{client_id}:{i} "
    return out


@pytest.fixture
def prefix():
    return f"t{uuid.uuid4().hex[:12]}"


async def test_updates_and_messages_cross_replicas(redis, prefix):
    async with RedisJournal(redis.url, key_prefix=prefix) as one, \
            RedisJournal(redis.url, key_prefix=prefix) as two, anyio.create_task_group() as tg:
        bus_one, bus_two = RoomBus(one), RoomBus(two)
        await tg.start(bus_one.run)
        await tg.start(bus_two.run)
        in_one, in_two = Inbox(), Inbox()
        await bus_one.subscribe(ROOM, 0, in_one.on_updates, in_one.on_gap, in_one.on_message)
        await bus_two.subscribe(ROOM, 0, in_two.on_updates, in_two.on_gap, in_two.on_message)
        mine, theirs = _edits(1, 30), _edits(2, 30)
        for a, b in zip(mine, theirs):
            await one.append(ROOM, a, author_tag("einstein@idp", "Albert Einstein"))
            await two.append(ROOM, b)  # the server's own change: no author
        await in_two.until(lambda: len(in_two.updates) == 30)
        await in_one.until(lambda: len(in_one.updates) == 30)
        assert in_two.updates == mine and in_one.updates == theirs  # in order, never one's own
        # who made them travels with them (the replica that saves names them)
        assert in_two.authors == {"einstein@idp": "Albert Einstein"} and in_one.authors == {}
        converged = [Doc(), Doc()]
        for doc, own, received in zip(converged, (mine, theirs), (in_one.updates, in_two.updates)):
            for update in own + received:
                doc.apply_update(update)
        assert str(converged[0].get("t", type=Text)) == str(converged[1].get("t", type=Text))
        await bus_one.publish(ROOM, b"awareness-of-one")
        await bus_two.publish(ROOM, b'{"revoked": "marie"}')
        await in_two.until(lambda: in_two.messages == [b"awareness-of-one"])
        await in_one.until(lambda: in_one.messages == [b'{"revoked": "marie"}'])
        await bus_two.unsubscribe(ROOM)
        await one.append(ROOM, b"after-unsubscribe")
        await bus_one.publish(ROOM, b"probe")
        await in_one.until(lambda: True)
        tg.cancel_scope.cancel()
    assert len(in_two.updates) == 30 and in_two.messages == [b"awareness-of-one"]


async def test_unread_compaction_is_a_gap(redis, prefix):
    async with RedisJournal(redis.url, key_prefix=prefix) as one, \
            RedisJournal(redis.url, key_prefix=prefix) as two, anyio.create_task_group() as tg:
        for update in _edits(1, 10):
            await one.append(ROOM, update)
        await one.compact(ROOM, b"snapshot", 8)
        bus, inbox = await following(tg, two, since=3)  # replica two had seen up to 3
        await inbox.until(lambda: inbox.gaps == 1)
        assert bus.rooms[ROOM].last_seq == 10
        tg.cancel_scope.cancel()


async def test_compaction_keeps_what_a_following_replica_has_not_read(redis, prefix):
    """Replica two follows the room and has read up to 3, then falls behind
    (its reader stops): replica one's compaction up to 6 trims only up to
    3, and two's reader, back, reads 4..6 with no gap. Once two stops
    following (its position withdrawn), the next compaction goes all the way."""
    async with RedisJournal(redis.url, key_prefix=prefix) as one, \
            RedisJournal(redis.url, key_prefix=prefix) as two:
        edits = _edits(1, 6)
        for update in edits[:3]:
            await one.append(ROOM, update)
        bus = RoomBus(two)
        inbox = Inbox()
        async with anyio.create_task_group() as tg:
            await tg.start(bus.run)
            await bus.subscribe(ROOM, 0, inbox.on_updates, inbox.on_gap)
            await inbox.until(lambda: len(inbox.updates) == 3)
            await bus.report_positions()  # as its reader does after delivering (whichever writes first)
            assert (await two.client.hget(two.readers_key(ROOM), two.replica_id)).startswith(b"3:")
            tg.cancel_scope.cancel()  # replica two falls behind
        for update in edits[3:]:
            await one.append(ROOM, update)
        await one.compact(ROOM, _snapshot(edits), 6)
        record = await one.load(ROOM)
        assert record.seqs == [3, 4, 5, 6]  # the snapshot stands for 1..3; 4..6 are kept for replica two
        async with anyio.create_task_group() as tg:
            await tg.start(bus.run)  # reads on from its position, 3
            await inbox.until(lambda: len(inbox.updates) == 6)
            assert inbox.updates == edits and inbox.gaps == 0
            await bus.unsubscribe(ROOM)
            tg.cancel_scope.cancel()
        await one.compact(ROOM, _snapshot(edits), 6)
        assert (await one.load(ROOM)).seqs == [6]


def _snapshot(updates: list[bytes]) -> bytes:
    doc = Doc()
    for update in updates:
        doc.apply_update(update)
    return doc.get_update()


async def test_reader_resumes_after_redis_restart(tmp_path, prefix):
    async with redis_server(tmp_path / "redis") as server:
        port = server.port
        one = RedisJournal(server.url, key_prefix=prefix, timeout=2)
        two = RedisJournal(server.url, key_prefix=prefix, timeout=2)
        async with one, two, anyio.create_task_group() as tg:
            bus, inbox = await following(tg, two)
            edits = _edits(1, 4)
            await one.append(ROOM, edits[0])
            await inbox.until(lambda: len(inbox.updates) == 1)
            server.running.process.terminate()
            await server.running.process.wait()
            async with redis_server(tmp_path / "redis", port=port):
                with anyio.fail_after(30):
                    for update in edits[1:]:
                        # a call on a connection Redis closed fails, unacknowledged,
                        # as it may have run: the sender (a client resyncing) sends again
                        while True:
                            try:
                                await one.append(ROOM, update)
                                break
                            except JournalUnavailableError:
                                continue
                await inbox.until(lambda: len(set(inbox.updates)) == 4, timeout=30)
                assert list(dict.fromkeys(inbox.updates)) == edits and inbox.gaps == 0
                tg.cancel_scope.cancel()


async def test_appends_tell_only_the_replicas_that_follow_the_room(redis, prefix):
    """Each append adds its entry to the inbox of every other replica
    following the room; the appending replica, and a replica that does not
    follow the room, are not told."""
    async with RedisJournal(redis.url, key_prefix=prefix) as one, \
            RedisJournal(redis.url, key_prefix=prefix) as two, \
            RedisJournal(redis.url, key_prefix=prefix) as three, anyio.create_task_group() as tg:
        buses = [RoomBus(journal) for journal in (one, two, three)]
        for bus in buses:
            await tg.start(bus.run)
        inbox = Inbox()
        await buses[0].subscribe(ROOM, 0, Inbox().on_updates, Inbox().on_gap)
        await buses[1].subscribe(ROOM, 0, inbox.on_updates, inbox.on_gap)
        edit = _edits(1, 1)[0]
        await one.append(ROOM, edit)
        await inbox.until(lambda: inbox.updates == [edit])

        async def told(journal):
            entries = await one.client.xrange(one.inbox_key(journal.replica_id))
            return [{k: v for k, v in fields.items()} for _id, fields in entries if b"w" not in fields]

        mine, theirs, none = await told(one), await told(two), await told(three)
        assert mine == []
        assert theirs == [{b"m": ROOM.encode(), b"s": b"1", b"u": edit, b"r": one.replica_id.encode()}]
        assert none == []
        tg.cancel_scope.cancel()


async def test_entries_a_replica_was_not_told_about_are_read_from_the_stream(redis, prefix):
    """Replica two's position vanished from the room (as when it expires while
    Redis was unreachable): appends do not tell it. The next append that does
    shows it a jump in the sequence numbers, and it reads the missing entries
    from the room's stream at once: all arrive in order, long before its
    periodic sweep or the end of its blocking read (both 30 s and more here)."""
    async with RedisJournal(redis.url, key_prefix=prefix) as one, \
            RedisJournal(redis.url, key_prefix=prefix, timeout=60) as two, anyio.create_task_group() as tg:
        bus, inbox = await following(tg, two, block=30, sweep_every=3600)
        edits = _edits(1, 4)
        await one.append(ROOM, edits[0])
        await inbox.until(lambda: len(inbox.updates) == 1)
        position = await one.client.hget(one.readers_key(ROOM), two.replica_id)
        await one.client.hdel(one.readers_key(ROOM), two.replica_id)
        await one.append(ROOM, edits[1])
        await one.append(ROOM, edits[2])
        await one.client.hset(one.readers_key(ROOM), two.replica_id, position)
        await one.append(ROOM, edits[3])
        await inbox.until(lambda: len(inbox.updates) == 4, timeout=10)
        assert inbox.updates == edits and inbox.gaps == 0
        tg.cancel_scope.cancel()


async def test_a_replica_told_nothing_reads_the_streams_when_it_sweeps(redis, prefix):
    """No append tells replica two anything (its position is gone and nothing
    re-registers it before its next report): its sweep reads the room's
    stream, so the entries still arrive."""
    async with RedisJournal(redis.url, key_prefix=prefix) as one, \
            RedisJournal(redis.url, key_prefix=prefix) as two, anyio.create_task_group() as tg:
        bus, inbox = await following(tg, two, block=5, sweep_every=0.5, report_every=3600)
        await one.client.hdel(one.readers_key(ROOM), two.replica_id)
        edits = _edits(1, 3)
        for update in edits:
            await one.append(ROOM, update)
        told = [fields for _id, fields in await one.client.xrange(one.inbox_key(two.replica_id)) if b"w" not in fields]
        assert told == []  # and no later append shows it a jump: only its sweep finds them
        await inbox.until(lambda: len(inbox.updates) == 3, timeout=20)
        assert inbox.updates == edits and inbox.gaps == 0
        tg.cancel_scope.cancel()


async def test_own_appends_move_the_position_without_a_stream_read(redis, prefix):
    """Two replicas type in turns. Each learns its own sequence numbers from
    the journal, not from its inbox, so the other's entries, which skip them,
    arrive in order with no gap, reload or read of the room's stream. When
    the other's entry is read before this replica's own earlier append is
    confirmed, that jump costs one stream read and nothing else."""
    async with RedisJournal(redis.url, key_prefix=prefix) as one, \
            RedisJournal(redis.url, key_prefix=prefix) as two, \
            RedisJournal(redis.url, key_prefix=prefix) as three, anyio.create_task_group() as tg:
        (bus_one, inbox_one), (bus_two, inbox_two) = [
            await following(tg, journal, block=30, sweep_every=3600) for journal in (one, two)]
        first = _edits(3, 1)[0]
        await three.append(ROOM, first)  # once both have it, their first read of the stream is done
        await inbox_one.until(lambda: inbox_one.updates == [first])
        await inbox_two.until(lambda: inbox_two.updates == [first])
        stream_reads = []
        for bus in (bus_one, bus_two):
            original = bus._read_streams

            async def counted(original=original, bus=bus):
                if bus._unread:
                    stream_reads.append(bus.journal.replica_id)
                await original()
            bus._read_streams = counted
        mine, theirs = _edits(1, 4), _edits(2, 4)
        for i in range(4):
            await one.append(ROOM, mine[i])
            await two.append(ROOM, theirs[i])
        await inbox_one.until(lambda: len(inbox_one.updates) == 5)
        await inbox_two.until(lambda: len(inbox_two.updates) == 5)
        assert inbox_one.updates == [first, *theirs] and inbox_two.updates == [first, *mine]
        assert stream_reads == [] and bus_one.rooms[ROOM].last_seq == bus_two.rooms[ROOM].last_seq == 9
        # replica one's next append is confirmed to its reader only after replica two's is told
        confirm, one.on_appended = one.on_appended, None
        seq = await one.append(ROOM, _edits(4, 1)[0])
        more = _edits(5, 1)[0]
        await two.append(ROOM, more)
        await inbox_one.until(lambda: len(inbox_one.updates) == 6)
        await inbox_two.until(lambda: len(inbox_two.updates) == 6)
        assert inbox_one.updates[-1] == more and stream_reads == [one.replica_id]
        confirm(ROOM, seq)
        assert bus_one.rooms[ROOM].last_seq == bus_two.rooms[ROOM].last_seq == seq + 1
        assert inbox_one.gaps == inbox_two.gaps == 0
        tg.cancel_scope.cancel()
