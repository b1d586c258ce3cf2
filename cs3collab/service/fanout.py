"""Fan-out between replicas: each replica reads the rooms it has live from Redis.

With ``--redis-url`` a room may have participants on several replicas. Each
replica appends its participants' updates to the room's stream
(``journal_redis.py``) and broadcasts them locally; :class:`RoomBus` brings
the *other* replicas' updates in:

- **Updates** (durable): ONE reader task per replica, not one per room.
  Every append tells each replica that follows the room (its position is
  in the room's ``readers`` hash, below) in that replica's *inbox* stream
  (``journal_redis.py``): the room, the sequence number and, for the other
  replicas, the entry itself (the Y update, field ``r`` the appending
  replica, field ``a`` the author: user id → display name). The reader
  waits with ``XREAD BLOCK`` on its inbox alone, so a round costs the same
  with 10 rooms live as with 1000, and hands each room's new entries to
  its ``on_updates`` callback (which applies them to the local doc and
  broadcasts them to the local participants). This replica's own appends
  are not in its inbox (they would wake the reader for nothing): the
  journal hands their sequence numbers over as Redis confirms them
  (``RedisJournal.on_appended``). Together the two give every sequence
  number of a followed room, and a jump that is not this replica's own
  appends means entries it was not told about (its position had expired,
  the inbox was trimmed, it had just subscribed): the reader then reads
  the room's stream from its position, the one place that holds them.
  It does so too for every room every :attr:`RoomBus.sweep_every`
  seconds and whenever the inbox stays quiet for a block, so that
  nothing it was not told about stays unread. Stream entry ids are
  ``<seq>-0`` and consecutive, so a jump in the *stream* means a
  compaction trimmed entries this replica had not read: the room's
  ``on_gap`` callback reloads the room from the journal (Y updates are
  idempotent, so re-applying is harmless). A new subscription wakes the
  blocked reader through the inbox, so it takes effect at once.
- **Ephemeral messages** (awareness, revocations, read-only states): Redis
  pub/sub on ``P:bus:R`` per room, one listener task per replica; never
  stored, a replica that is down misses them, as a disconnected client
  misses awareness. Messages carry the sending replica's id, so a replica
  ignores its own.

- **Positions**: each replica reports, for every room it follows, the
  sequence number its reader has read up to (the highest unbroken one:
  every entry up to it is applied here or was this replica's own) in the
  hash ``P:room:R:readers``, with an expiry of ``position_ttl`` seconds,
  refreshed at least every ``report_every`` (the positions that moved are
  written at most once a second: a stale position only keeps more entries);
  the journal's compaction trims nothing beyond the lowest unexpired
  position of another replica, and appends notify only replicas with an
  unexpired position. A dead replica's position expires, so it stops
  holding entries back and being told.

A Redis error makes a task log, wait a back-off (0.1 s doubling to 5 s) and
resume from the same positions: nothing is skipped once Redis is back.
Callback errors are logged with the room and do not stop the reader.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import redis.exceptions
from anyio.abc import TaskStatus

from .journal import parse_author
from .journal_redis import INBOX_LENGTH, RedisJournal

log = logging.getLogger("cs3collab.service.fanout")

OnUpdates = Callable[[list[bytes], int, dict[str, str]], Awaitable[None]]
OnGap = Callable[[], Awaitable[None]]
OnMessage = Callable[[bytes], Awaitable[None]]

REPORT_MOVED_EVERY = 1.0
"""Seconds between the reader's reports of the positions that moved (a
stale position only makes compaction keep more)."""

_REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


@dataclass
class _Subscription:
    room: str
    last_seq: int
    on_updates: OnUpdates
    on_gap: OnGap
    on_message: OnMessage | None
    listening: anyio.Event = field(default_factory=anyio.Event)  # its channel is subscribed
    own: set[int] = field(default_factory=set)  # this replica's appends beyond last_seq

    def advance(self) -> None:
        """Move ``last_seq`` over this replica's own appends right after it."""
        while self.last_seq + 1 in self.own:
            self.last_seq += 1
            self.own.discard(self.last_seq)
        if self.own and min(self.own) <= self.last_seq:
            self.own = {seq for seq in self.own if seq > self.last_seq}

    def own_between(self, low: int, high: int) -> bool:
        """Whether every seq strictly between ``low`` and ``high`` is this replica's own."""
        return high - low - 1 <= len(self.own) and all(seq in self.own for seq in range(low + 1, high))


class RoomBus:
    """One replica's link to the other replicas, for every room live here.

    Arguments:
        journal: this replica's running :class:`RedisJournal` (its client,
            key prefix and replica id are shared).
        block: seconds one ``XREAD`` blocks waiting for entries (default 1;
            must stay below the journal's ``timeout``).
        count: most entries read per stream per ``XREAD``.
        report_every: seconds between reports of an unchanged position.
        position_ttl: seconds a reported position holds compaction back
            (a replica that stops reporting, a dead one, stops holding it).
        sweep_every: seconds between reads of every followed room's stream
            while the inbox is busy (entries this replica was not told
            about are read then at the latest).

    Lifecycle: ``await tg.start(bus.run)``, cancelled with its task group.
    """

    def __init__(self, journal: RedisJournal, *, block: float = 1.0, count: int = 500,
                 report_every: float = 10.0, position_ttl: float = 60.0, sweep_every: float = 5.0) -> None:
        self.journal = journal
        self.block_ms = max(1, int(block * 1000))
        self.count = count
        self.report_every = report_every
        self.position_ttl = position_ttl
        self.sweep_every = sweep_every
        self.rooms: dict[str, _Subscription] = {}
        self._reported: dict[str, tuple[int, float]] = {}  # room -> (seq, monotonic time) last reported
        self._inbox_key = journal.inbox_key(journal.replica_id)
        self._inbox_id = "0-0"
        self._unread: set[str] = set()  # rooms whose stream must be read: told of a jump, or just subscribed
        self._swept = self._reported_at = time.monotonic()
        self._pubsub = None
        self._channels_changed = anyio.Event()
        journal.on_appended = self._appended

    def _appended(self, room: str, seq: int) -> None:
        sub = self.rooms.get(room)
        if sub is not None and seq > sub.last_seq:
            sub.own.add(seq)
            sub.advance()

    def _channel(self, room: str) -> str:
        return f"{self.journal.key_prefix}:bus:{room}"

    # -- subscriptions ----------------------------------------------------------------

    async def subscribe(self, room: str, last_seq: int, on_updates: OnUpdates, on_gap: OnGap,
                        on_message: OnMessage | None = None) -> None:
        """Deliver ``room``'s updates after ``last_seq`` appended by other
        replicas to ``on_updates(updates, last_seq, authors)``, and their ephemeral
        messages to ``on_message``."""
        self.rooms[room] = _Subscription(room, last_seq, on_updates, on_gap, on_message)
        self._unread.add(room)  # what was appended before the appends tell this replica
        self._channels_changed.set()
        try:  # from now on, compaction keeps what this replica has not read, and appends tell it
            await self.report_positions()
        except _REDIS_ERRORS as e:  # the reader reports again on its next round
            log.debug("fanout position not reported room=%s replica=%s error=%s", room, self.journal.replica_id, e)
        await self._wake()

    async def listening(self, room: str, timeout: float) -> bool:
        """Wait (at most ``timeout`` seconds) until ``room``'s ephemeral
        channel is subscribed, so that an answer to a message sent from now on
        is heard (subscribe only asks the listener to subscribe). False when
        it is not (Redis unreachable, or the room is not subscribed here)."""
        sub = self.rooms.get(room)
        if sub is None:
            return False
        with anyio.move_on_after(timeout):
            await sub.listening.wait()
        return sub.listening.is_set()

    async def unsubscribe(self, room: str) -> None:
        if self.rooms.pop(room, None) is not None:
            self._channels_changed.set()
        self._unread.discard(room)
        if self._reported.pop(room, None) is not None and self.journal.client is not None:
            try:
                await self.journal.client.hdel(self.journal.readers_key(room), self.journal.replica_id)
            except _REDIS_ERRORS as e:  # the position expires by itself
                log.debug("fanout position not withdrawn room=%s replica=%s error=%s", room,
                          self.journal.replica_id, e)

    async def report_positions(self) -> None:
        """Write the positions that moved, or were last written more than
        ``report_every`` ago, in one round trip (the reader does at most once
        a second)."""
        assert self.journal.client is not None
        now = self._reported_at = time.monotonic()
        due = [sub for sub in self.rooms.values()
               if (seen := self._reported.get(sub.room)) is None or seen[0] != sub.last_seq
               or now - seen[1] >= self.report_every]
        if not due:
            return
        expiry_ms = int((time.time() + self.position_ttl) * 1000)
        async with self.journal.client.pipeline(transaction=False) as pipe:
            for sub in due:
                pipe.hset(self.journal.readers_key(sub.room), self.journal.replica_id, f"{sub.last_seq}:{expiry_ms}")
            await pipe.execute()
        for sub in due:
            self._reported[sub.room] = (sub.last_seq, now)

    async def publish(self, room: str, message: bytes) -> None:
        """Send an ephemeral ``message`` (awareness, a revocation, a
        read-only state) to ``room``'s participants on the other replicas."""
        assert self.journal.client is not None
        await self.journal.client.publish(self._channel(room), self.journal.replica_id.encode() + b"|" + message)

    async def _wake(self) -> None:
        assert self.journal.client is not None
        try:
            await self.journal.client.xadd(self._inbox_key, {"w": "1"}, maxlen=INBOX_LENGTH, approximate=True)
        except _REDIS_ERRORS as e:  # the reader is retrying anyway; it will see the room then
            log.debug("fanout wake failed replica=%s error=%s", self.journal.replica_id, e)

    # -- the tasks ---------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The reader and the listener, until cancelled."""
        assert self.journal.client is not None
        self._pubsub = self.journal.client.pubsub()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._supervised, "reader", self._read_once)
                tg.start_soon(self._supervised, "listener", self._listen_once)
                task_status.started()
        finally:
            if self.journal.on_appended == self._appended:
                self.journal.on_appended = None
            with anyio.CancelScope(shield=True):
                await self._pubsub.aclose()

    async def _supervised(self, name: str, step: Callable[[], Awaitable[None]]) -> None:
        backoff = 0.1
        while True:
            try:
                await step()
                backoff = 0.1
            except _REDIS_ERRORS as e:
                log.warning("fanout %s redis unavailable replica=%s retry_s=%.1f error=%s",
                            name, self.journal.replica_id, backoff, f"{type(e).__name__}: {e}")
                await anyio.sleep(backoff)  # back-off before reconnecting, not a wait for an event
                backoff = min(backoff * 2, 5.0)

    async def _read_once(self) -> None:
        """One round: what the inbox says (waiting for it unless a room's stream
        is to be read), then the streams of the rooms it cannot vouch for."""
        assert self.journal.client is not None
        replies = await self.journal.client.xread({self._inbox_key: self._inbox_id}, count=self.count,
                                                  block=None if self._unread else self.block_ms)
        told: dict[str, list[tuple[int, dict]]] = {}
        for _key, entries in replies or []:
            for entry_id, fields in entries:
                self._inbox_id = entry_id.decode()
                values = _fields(fields)
                room = values.get(b"m")
                sub = self.rooms.get(room.decode()) if room is not None else None
                if sub is None or sub.room in self._unread:
                    continue  # a wake-up, a room no longer here, or one whose stream is read below
                seq = int(values[b"s"])
                last = told[sub.room][-1][0] if sub.room in told else sub.last_seq
                if seq <= last:
                    continue  # read from the stream already
                if seq != last + 1 and not sub.own_between(last, seq):
                    self._unread.add(sub.room)  # entries this replica was not told about: the stream has them
                    continue
                told.setdefault(sub.room, []).append((seq, values))
        for room, items in told.items():
            sub = self.rooms.get(room)
            if sub is not None:
                await self._deliver(sub, items)
        now = time.monotonic()
        if not replies or now - self._swept >= self.sweep_every:
            self._unread.update(self.rooms)  # the inbox was quiet for a block, or a sweep is due
            self._swept = now
        if self._unread:
            await self._read_streams()
        if now - self._reported_at >= REPORT_MOVED_EVERY:
            await self.report_positions()  # after delivery: what is reported is applied here

    async def _read_streams(self) -> None:
        """Read the streams of the rooms in ``_unread`` from their positions;
        a room with more than ``count`` new entries stays in it."""
        assert self.journal.client is not None
        rooms = [room for room in self._unread if room in self.rooms]
        self._unread.clear()
        if not rooms:
            return
        streams = {self.journal.stream_key(room): f"{self.rooms[room].last_seq}-0" for room in rooms}
        replies = await self.journal.client.xread(streams, count=self.count)
        for key, entries in replies or []:
            key = key.decode()
            sub = self.rooms.get(key[len(self.journal.key_prefix) + len(":room:"):-len(":stream")])
            if sub is not None:
                if len(entries) >= self.count:
                    self._unread.add(sub.room)
                await self._deliver(sub, [(int(entry_id.split(b"-")[0]), _fields(fields))
                                          for entry_id, fields in entries])

    async def _deliver(self, sub: _Subscription, entries: list[tuple[int, dict]]) -> None:
        """Hand ``entries`` ((seq, fields), in order) to the room, skipping this
        replica's own; a jump is a compaction (``on_gap``): only a stream read
        can show one, the inbox's entries come here unbroken but for this
        replica's own appends."""
        me = self.journal.replica_id.encode()
        updates: list[bytes] = []
        authors: dict[str, str] = {}
        gap = False
        seq = sub.last_seq
        for entry_seq, values in entries:
            if entry_seq <= seq:
                continue  # delivered meanwhile (a stream read and the inbox overlap)
            if entry_seq != seq + 1 and not sub.own_between(seq, entry_seq):
                gap = True
            seq = entry_seq
            update = values.get(b"u")
            if update is not None and values.get(b"r") != me:
                updates.append(bytes(update))
                author = parse_author(values.get(b"a") or b"")
                if author is not None:
                    authors[author[0]] = author[1]
        sub.last_seq = seq
        sub.advance()
        try:
            if gap:
                log.info("fanout gap room=%s replica=%s reason=compacted-unread", sub.room, self.journal.replica_id)
                await sub.on_gap()
            elif updates:
                await sub.on_updates(updates, seq, authors)
        except Exception:  # noqa: BLE001 - one room's failure must not stop the others
            log.exception("fanout delivery failed room=%s replica=%s seq=%d", sub.room, self.journal.replica_id, seq)

    async def _listen_once(self) -> None:
        assert self._pubsub is not None
        wanted = {self._channel(room) for room in self.rooms}
        current = {c.decode() if isinstance(c, bytes) else c for c in self._pubsub.channels}
        if wanted - current:
            await self._pubsub.subscribe(*(wanted - current))
        for room, sub in list(self.rooms.items()):
            if self._channel(room) in wanted:
                sub.listening.set()
        if current - wanted:
            await self._pubsub.unsubscribe(*(current - wanted))
        self._channels_changed = anyio.Event()
        if not wanted:
            await self._channels_changed.wait()
            return
        with anyio.move_on_after(self.block_ms / 1000):  # re-check the channel set now and then
            while not self._channels_changed.is_set():
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=self.block_ms / 1000)
                if message is None or message["type"] != "message":
                    continue
                sender, _, payload = message["data"].partition(b"|")
                if sender == self.journal.replica_id.encode():
                    continue
                channel = message["channel"].decode()
                sub = self.rooms.get(channel[len(self.journal.key_prefix) + len(":bus:"):])
                if sub is not None and sub.on_message is not None:
                    try:
                        await sub.on_message(payload)
                    except Exception:  # noqa: BLE001
                        log.exception("fanout message delivery failed room=%s replica=%s",
                                      sub.room, self.journal.replica_id)


def _fields(fields: list | dict) -> dict:
    """A stream entry's fields as a dict (redis-py gives a flat list or a dict)."""
    return dict(zip(fields[::2], fields[1::2])) if isinstance(fields, list) else fields
