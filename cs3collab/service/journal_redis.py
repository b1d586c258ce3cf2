"""The journal in Redis: one stream per room, shared by every replica.

Chosen by ``CollabService.redis_url`` (``cs3collab serve --redis-url
redis://HOST:PORT/DB``); without it the service keeps its SQLite journal.
Several service replicas pointed at one Redis share every room's history:
what one replica appends, the others read back from the same stream
(``fanout.py``), and a replica that dies leaves nothing behind that only it
knew.

Layout, for a room key R under the prefix P (``RedisJournal.key_prefix``;
the room key is the second-to-last part and the suffixes never contain ``:``,
so two rooms never share a key):

- ``P:room:R:stream`` -- the updates, one stream entry each, with the entry
  id ``<seq>-0`` (so a reader's last-seen id *is* a sequence number) and the
  fields ``u`` (the Y update), ``r`` (the replica that appended it, so a
  replica skips its own updates when it reads the stream) and, for a
  participant's change, ``a`` (its author's user id and display name, so
  that the replica saving the room names every author in the save record);
- ``P:room:R:state`` -- a hash: ``last_seq``, ``persisted_seq``,
  ``persisted_etag``, and after a compaction ``snapshot`` and
  ``snapshot_seq`` (the snapshot replaces the trimmed prefix of the stream);
- ``P:room:R:meta`` -- a hash of the room's small key/values;
- ``P:room:R:readers`` -- a hash: each replica following the room live
  (``fanout.py``) and the sequence number its reader has read up to, with
  an expiry; a compaction trims nothing beyond the lowest unexpired one of
  another replica, so no live replica loses entries it has not read;
- ``P:inbox:I`` -- replica I's inbox: a stream to which every append adds,
  for each replica with an unexpired position in the room's ``readers``,
  the room and the sequence number (and, for a replica other than the
  appending one, the entry itself), so that a replica waits on one stream
  whatever the number of rooms it has live (``fanout.py``); capped at about
  :data:`INBOX_LENGTH` entries, expiring :data:`INBOX_EXPIRY_MS` after its
  last entry;
- ``P:rooms`` -- the set of known room keys, ``P:dirty`` the set of rooms
  whose ``last_seq > persisted_seq`` (what :meth:`rooms_needing_flush` lists);
- ``P:journal`` -- a hash marking the prefix as a cs3collab journal with its
  schema version, checked at start.

Every call is one Lua script, so each is atomic (an append takes its
sequence number and adds its entry in one step; no two replicas ever get the
same number). Calls queued in the same event-loop tick, or while the previous
round trip was in flight, go to Redis as ONE pipeline (one round trip), the
Redis twin of the SQLite journal's group commit; each call still fails alone.

Durability. ``append`` returns once Redis replied, and Redis replies to a
write only after it wrote the command to its append-only file (with
``appendonly yes``; docs/operations.md lists what each ``appendfsync``
policy guarantees): a kill of the service or of Redis loses nothing
acknowledged; an OS crash of the Redis host loses up to the last second with
``everysec``, nothing with ``always``. Without the AOF a Redis restart loses
everything since its last RDB snapshot: the journal logs a warning at start
when ``CONFIG GET appendonly`` says ``no``.

The client never retries a call by itself: an append whose reply was lost
may have been carried out, and retrying it would journal the update twice.
A connection error fails the calls of that round trip with
:class:`~cs3collab.service.journal.JournalUnavailableError` (never
acknowledged). So that a Redis restart does not make the first calls after
it fail on connections the old server closed, a round trip after an error,
or after :data:`FRESH_AFTER_IDLE` seconds without one, first drops the idle
pooled connections and so runs on a new one (connecting sends nothing: no
call can be carried out twice).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from traitlets import Float, Int, TraitError, Unicode, validate
from traitlets.config import Configurable

from . import metrics
from .journal import (
    CheckedJournal,
    _Call,
    JournalCorruptError,
    JournalError,
    JournalRecord,
    JournalUnavailableError,
)


FRESH_AFTER_IDLE = 5.0
"""Seconds without a round trip after which the next one starts on a new connection."""
log = logging.getLogger("cs3collab.service.journal")

SCHEMA_VERSION = 1

INBOX_LENGTH = 10_000
"""About the most entries a replica's inbox keeps (``XADD MAXLEN ~``): a
replica this far behind reads the rooms' streams instead (fanout.py)."""
INBOX_EXPIRY_MS = 300_000
"""A replica's inbox expires this long after the last append told it anything
(a dead replica's inbox does not stay behind)."""

# KEYS: state, stream, rooms, dirty, readers. ARGV: room, update, replica, author,
# inbox key prefix, inbox length, inbox expiry (ms). Returns the seq.
# Then tells every other replica following the room (readers: field replica
# -> "<seq>:<expiry ms>", unexpired) in its inbox stream: the entry itself,
# with the room and seq. The appending replica is not told: it learns its own
# seqs from the reply (RedisJournal.on_appended), and an entry in its own
# inbox would only wake its reader for nothing (fanout.py).
_APPEND = """
local seq = redis.call('HINCRBY', KEYS[1], 'last_seq', 1)
if ARGV[4] == '' then
  redis.call('XADD', KEYS[2], seq .. '-0', 'u', ARGV[2], 'r', ARGV[3])
else
  redis.call('XADD', KEYS[2], seq .. '-0', 'u', ARGV[2], 'r', ARGV[3], 'a', ARGV[4])
end
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
local readers = redis.call('HGETALL', KEYS[5])
if #readers > 0 then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local entry = {'m', ARGV[1], 's', seq, 'u', ARGV[2], 'r', ARGV[3]}
  if ARGV[4] ~= '' then entry[#entry + 1] = 'a'; entry[#entry + 1] = ARGV[4] end
  for i = 1, #readers, 2 do
    local expiry = string.match(readers[i + 1], '^%d+:(%d+)$')
    if readers[i] ~= ARGV[3] and expiry and tonumber(expiry) > now then
      local inbox = ARGV[5] .. readers[i]
      redis.call('XADD', inbox, 'MAXLEN', '~', ARGV[6], '*', unpack(entry))
      redis.call('PEXPIRE', inbox, ARGV[7])
    end
  end
end
return seq
"""

# KEYS: state, stream, meta, rooms. ARGV: room. Returns nil for an unknown room.
_LOAD = """
if redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 0 then return false end
local state = redis.call('HMGET', KEYS[1], 'last_seq', 'persisted_seq', 'persisted_etag',
                         'snapshot_seq', 'snapshot')
return {state, redis.call('XRANGE', KEYS[2], '-', '+'), redis.call('HGETALL', KEYS[3])}
"""

# KEYS: state, rooms, dirty. ARGV: room, seq, etag. Returns {outcome, number}.
_MARK_PERSISTED = """
local last = tonumber(redis.call('HGET', KEYS[1], 'last_seq') or '0')
local seq = tonumber(ARGV[2])
if seq > last then return {'beyond', last} end
local persisted = tonumber(redis.call('HGET', KEYS[1], 'persisted_seq') or '0')
if seq < persisted then return {'stale', persisted} end
redis.call('HSET', KEYS[1], 'persisted_seq', ARGV[2], 'persisted_etag', ARGV[3])
redis.call('SADD', KEYS[2], ARGV[1])
if seq >= last then redis.call('SREM', KEYS[3], ARGV[1]) end
return {'ok', last}
"""

# KEYS: state, stream, readers. ARGV: upto_seq, snapshot, replica. Returns {outcome, number, upto}.
# Trims no further than the lowest position another replica's reader reported
# (readers: field replica -> "<seq>:<expiry ms>"; expired positions are a dead
# replica's and do not count), so a live replica never loses what it has not read.
_COMPACT = """
local last = tonumber(redis.call('HGET', KEYS[1], 'last_seq') or '0')
local upto = tonumber(ARGV[1])
if upto < 1 or upto > last then return {'outside', last, upto} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local readers = redis.call('HGETALL', KEYS[3])
for i = 1, #readers, 2 do
  if readers[i] ~= ARGV[3] then
    local pos, expiry = string.match(readers[i + 1], '^(%d+):(%d+)$')
    if pos and tonumber(expiry) > now and tonumber(pos) < upto then upto = tonumber(pos) end
  end
end
if upto < 1 then return {'skipped', -1, upto} end
local snap = redis.call('HGET', KEYS[1], 'snapshot_seq')
local first = nil
if snap then
  first = tonumber(snap)
else
  local entries = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
  if #entries > 0 then first = tonumber(string.match(entries[1][1], '^(%d+)')) end
end
if first == nil then return {'skipped', -1, upto} end
if first > upto then return {'skipped', first, upto} end
local removed = redis.call('XTRIM', KEYS[2], 'MINID', string.format('%d-1', upto))
if snap then removed = removed + 1 end
redis.call('HSET', KEYS[1], 'snapshot_seq', upto, 'snapshot', ARGV[2])
return {'ok', removed, upto}
"""

# KEYS: meta, rooms. ARGV: room, key, value.
_SET_META = """
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
"""

# KEYS: state, stream, meta, rooms, dirty, readers. ARGV: room. Returns the updates dropped.
_FORGET = """
if redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 0 then return -1 end
local removed = redis.call('XLEN', KEYS[2])
if redis.call('HEXISTS', KEYS[1], 'snapshot_seq') == 1 then removed = removed + 1 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[6])
redis.call('SREM', KEYS[4], ARGV[1])
redis.call('SREM', KEYS[5], ARGV[1])
return removed
"""


@dataclass
class RedisJournalStats:
    """Counters since start, for benchmarks and tests (``commits`` counts
    round trips, the twin of the SQLite journal's transactions)."""

    commits: int = 0
    appends: int = 0
    appended_bytes: int = 0


def _redacted(url: str) -> str:
    """The URL without a password, for logs and errors."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rpartition('@')[2]}"


class RedisJournal(CheckedJournal, Configurable):
    """The :class:`~cs3collab.service.journal.Journal` in Redis, shared by replicas.

    Arguments:
        url: ``redis://HOST:PORT/DB`` (also the ``url`` trait).
        **kwargs: traits (``key_prefix``, ``max_update_size``, ``timeout``)
            and ``parent``/``config`` as for any Configurable.

    Attributes:
        replica_id: tags every update this journal appends, so that this
            replica's stream reader skips its own updates.
        client: the redis-py asyncio client while running (for the fan-out
            reader and the leases of this replica, which share the URL).
    """

    url = Unicode("", help="Redis URL, redis://HOST:PORT/DB (rediss:// for TLS); the service sets it from CollabService.redis_url.").tag(config=True)

    key_prefix = Unicode(
        "cs3collab",
        help="Prefix of every Redis key the journal writes (default 'cs3collab'): replicas of one site share "
             "it; two sites (or a test) sharing one Redis use different prefixes.",
    ).tag(config=True)

    max_update_size = Int(
        64 * 1024 * 1024,
        help="Largest update accepted by append, in bytes (default 64 MiB); 0 means no limit. Redis itself "
             "refuses values above its proto-max-bulk-len (512 MiB by default).",
    ).tag(config=True)

    timeout = Float(
        10.0,
        help="Seconds to wait for Redis to answer one round trip (and to connect) before the calls in it fail "
             "as unavailable (default 10). A call that timed out was not acknowledged, though Redis may "
             "have carried it out.",
    ).tag(config=True)

    @validate("url")
    def _validate_url(self, proposal):
        value = proposal["value"]
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise TraitError(f"RedisJournal.url must be redis://HOST:PORT/DB, not {_redacted(value)!r}")
        return value

    @validate("key_prefix")
    def _validate_prefix(self, proposal):
        value = proposal["value"]
        if not value or not value.isprintable() or ":" in value:
            raise TraitError("RedisJournal.key_prefix must be non-empty, printable, without ':'")
        return value

    @validate("max_update_size")
    def _validate_max_update_size(self, proposal):
        if proposal["value"] < 0:
            raise TraitError("RedisJournal.max_update_size must be >= 0 (0 means no limit)")
        return proposal["value"]

    @validate("timeout")
    def _validate_timeout(self, proposal):
        if proposal["value"] <= 0:
            raise TraitError("RedisJournal.timeout must be positive")
        return proposal["value"]

    def __init__(self, url: str | os.PathLike[str] | None = None, **kwargs: Any) -> None:
        if url is not None:
            kwargs["url"] = os.fspath(url)
        super().__init__(**kwargs)
        self.stats = RedisJournalStats()
        self.replica_id = uuid.uuid4().hex[:16]
        self.client: aioredis.Redis | None = None
        self._scripts: dict[str, Any] = {}
        self._fresh_needed = False  # drop the idle pooled connections before the next round trip
        self._last_round_trip = time.monotonic()
        self.on_appended: Callable[[str, int], None] | None = None
        """Called with (room, seq) for each append Redis confirmed, before its
        caller hears of it: the fan-out's reader counts these seqs as read
        (nothing tells it of its own appends otherwise)."""

    def __repr__(self) -> str:
        return f"<RedisJournal url={_redacted(self.url)!r} prefix={self.key_prefix!r} state={self._state}>"

    @property
    def where(self) -> str:
        """What logs and errors name: the URL (no password) and the prefix."""
        return f"{_redacted(self.url)} prefix={self.key_prefix}"

    # -- keys -----------------------------------------------------------------------

    def stream_key(self, room: str) -> str:
        return f"{self.key_prefix}:room:{room}:stream"

    def readers_key(self, room: str) -> str:
        """The hash of the replicas' reader positions in ``room``'s stream (fanout.py writes it)."""
        return f"{self.key_prefix}:room:{room}:readers"

    def inbox_key(self, replica: str) -> str:
        """The stream in which every append tells ``replica`` about the rooms it follows (fanout.py reads it)."""
        return f"{self.key_prefix}:inbox:{replica}"

    def _state_key(self, room: str) -> str:
        return f"{self.key_prefix}:room:{room}:state"

    def _meta_key(self, room: str) -> str:
        return f"{self.key_prefix}:room:{room}:meta"

    @property
    def _rooms_key(self) -> str:
        return f"{self.key_prefix}:rooms"

    @property
    def _dirty_key(self) -> str:
        return f"{self.key_prefix}:dirty"

    # -- the store ------------------------------------------------------------------

    async def _open_store(self) -> None:
        """Connect and check the prefix (the base closes again if this raises)."""
        if not self.url:
            raise JournalError("RedisJournal.url is not set")
        self.client = aioredis.Redis.from_url(
            self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
            retry=Retry(NoBackoff(), 0), decode_responses=False)
        for name, source in (("append", _APPEND), ("load", _LOAD), ("mark_persisted", _MARK_PERSISTED),
                             ("compact", _COMPACT), ("set_meta", _SET_META), ("forget", _FORGET)):
            self._scripts[name] = self.client.register_script(source)
        rooms = await self._check_store()
        try:
            await self._load_scripts()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as e:
            raise JournalUnavailableError(self.where, str(e)) from e
        log.info("journal opened redis=%s rooms=%d replica=%s", self.where, rooms, self.replica_id)

    async def _check_store(self) -> int:
        """Mark a fresh prefix as a journal, refuse a foreign one; return the
        number of rooms. Raises JournalUnavailableError / JournalCorruptError."""
        assert self.client is not None
        marker = f"{self.key_prefix}:journal"
        try:
            kind = (await self.client.type(marker)).decode()
            if kind == "none":
                await self.client.hsetnx(marker, "schema", SCHEMA_VERSION)
            elif kind != "hash":
                raise JournalCorruptError(self.where, f"{marker} is a Redis {kind}, not a cs3collab journal marker")
            version = await self.client.hget(marker, "schema")
            if version is None or int(version) != SCHEMA_VERSION:
                raise JournalCorruptError(
                    self.where, f"schema version {version!r}, this cs3collab reads version {SCHEMA_VERSION}")
            rooms = await self.client.scard(self._rooms_key)
            try:
                appendonly = (await self.client.config_get("appendonly")).get(b"appendonly")
            except redis.exceptions.ResponseError:  # CONFIG disabled (managed Redis): cannot tell
                appendonly = None
        except redis.exceptions.ResponseError as e:
            raise JournalCorruptError(self.where, str(e)) from e
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as e:
            raise JournalUnavailableError(self.where, str(e)) from e
        if appendonly == b"no":
            log.warning("journal redis without AOF redis=%s: acknowledged updates are lost if Redis restarts "
                        "(set appendonly yes, docs/operations.md)", self.where)
        return rooms

    async def _close_store(self) -> None:
        if self.client is not None:
            client, self.client = self.client, None
            try:
                await client.aclose()
            except Exception as e:  # noqa: BLE001 - closing a broken connection
                log.debug("journal close error redis=%s error=%s", self.where, e)
            log.info("journal closed redis=%s commits=%d appends=%d bytes=%d",
                     self.where, self.stats.commits, self.stats.appends, self.stats.appended_bytes)

    # -- the writer's round trip ------------------------------------------------------

    def _queue_call(self, pipe: Any, op: str, args: tuple) -> None:
        """Add one call to ``pipe`` (no I/O). Scripts go by their SHA1 alone:
        redis-py's own script calls would ask Redis, before every pipeline,
        whether it has them (SCRIPT EXISTS, one more round trip per commit);
        a call Redis answers NOSCRIPT did not run, and :meth:`_commit` loads
        the scripts and sends it again."""
        room = args[0] if args else ""
        if op == "append":
            keys = [self._state_key(room), self.stream_key(room), self._rooms_key, self._dirty_key,
                    self.readers_key(room)]
            argv = [room, args[1], self.replica_id, args[2] if len(args) > 2 else "", self.inbox_key(""),
                    INBOX_LENGTH, INBOX_EXPIRY_MS]
        elif op == "load":
            keys = [self._state_key(room), self.stream_key(room), self._meta_key(room), self._rooms_key]
            argv = [room]
        elif op == "mark_persisted":
            keys, argv = [self._state_key(room), self._rooms_key, self._dirty_key], [room, args[1], args[2]]
        elif op == "compact":
            keys = [self._state_key(room), self.stream_key(room), self.readers_key(room)]
            argv = [args[2], args[1], self.replica_id]
        elif op == "set_meta":
            keys, argv = [self._meta_key(room), self._rooms_key], [room, args[1], args[2]]
        elif op == "forget":
            keys = [self._state_key(room), self.stream_key(room), self._meta_key(room), self._rooms_key,
                    self._dirty_key, self.readers_key(room)]
            argv = [room]
        elif op == "rooms_needing_flush":
            pipe.smembers(self._dirty_key)
            return
        elif op == "ready":  # a real write: fails on a read-only replica, a full Redis (OOM), a lost AOF disk
            pipe.set(f"{self.key_prefix}:ready:{self.replica_id}", "1", px=60_000)
            return
        else:  # pragma: no cover - a bug in this module
            raise AssertionError(op)
        pipe.evalsha(self._scripts[op].sha, len(keys), *keys, *argv)

    async def _load_scripts(self) -> None:
        """Give Redis every script (one round trip)."""
        assert self.client is not None
        async with self.client.pipeline(transaction=False) as pipe:
            for script in self._scripts.values():
                pipe.script_load(script.script)
            await pipe.execute()

    async def _commit(self, batch: list[_Call]) -> None:
        assert self.client is not None
        started = time.perf_counter()
        try:
            if self._fresh_needed or time.monotonic() - self._last_round_trip > FRESH_AFTER_IDLE:
                # a connection idle through a Redis restart is closed at the other end: a
                # call sent on it fails although Redis is back, so start on a new one
                await self.client.connection_pool.disconnect(inuse_connections=False)
                self._fresh_needed = False
            self._last_round_trip = time.monotonic()
            async with self.client.pipeline(transaction=False) as pipe:
                for call in batch:
                    self._queue_call(pipe, call.op, call.args)
                replies = await pipe.execute(raise_on_error=False)
            unknown = [i for i, reply in enumerate(replies) if isinstance(reply, redis.exceptions.NoScriptError)]
            if unknown:  # Redis lost the scripts (restarted, SCRIPT FLUSH): those calls did not run
                log.info("journal redis lacks its scripts redis=%s calls=%d: loading them", self.where, len(unknown))
                await self._load_scripts()
                async with self.client.pipeline(transaction=False) as pipe:
                    for i in unknown:
                        self._queue_call(pipe, batch[i].op, batch[i].args)
                    for i, reply in zip(unknown, await pipe.execute(raise_on_error=False)):
                        replies[i] = reply
        except Exception as e:  # connection refused/lost, timeout: nothing in this round trip is acknowledged
            self._fresh_needed = True
            log.warning("journal redis unavailable redis=%s calls=%d error=%s", self.where, len(batch),
                        f"{type(e).__name__}: {e}")
            error = JournalUnavailableError(self.where, f"{type(e).__name__}: {e}")
            error.__cause__ = e
            for call in batch:
                if not call.future.done():
                    call.future.set_exception(error)
            return
        self.stats.commits += 1
        metrics.journal_committed(time.perf_counter() - started)
        appends = appended = 0
        for call, reply in zip(batch, replies):
            try:
                if isinstance(reply, Exception):
                    raise JournalError(f"journal {self.where}: {call.op} failed: {reply}") from reply
                result = getattr(self, "_result_" + call.op)(call.args, reply)
            except Exception as e:  # noqa: BLE001 - handed to the caller
                log.warning("journal call failed op=%s room=%s error=%s",
                            call.op, call.args[0] if call.args else "", e)
                if not call.future.done():
                    call.future.set_exception(e)
                continue
            if call.op == "append":
                appends += 1
                appended += len(call.args[1])
                if self.on_appended is not None:
                    try:
                        self.on_appended(call.args[0], result)
                    except Exception:  # noqa: BLE001 - the append is durable whatever a listener does
                        log.exception("journal append listener failed room=%s seq=%d", call.args[0], result)
            if not call.future.done():
                call.future.set_result(result)
        for call in batch[len(replies):]:  # never leave a caller hanging
            if not call.future.done():
                call.future.set_exception(JournalError(f"journal {self.where}: no reply for {call.op}"))
        self.stats.appends += appends
        self.stats.appended_bytes += appended
        log.debug("journal commit calls=%d appends=%d bytes=%d ms=%.2f",
                  len(batch), appends, appended, (time.perf_counter() - started) * 1000)

    # -- replies --------------------------------------------------------------------

    @staticmethod
    def _result_append(args: tuple, reply: Any) -> int:
        return int(reply)

    @staticmethod
    def _result_load(args: tuple, reply: Any) -> JournalRecord | None:
        if reply is None:
            return None
        (last_seq, persisted_seq, etag, snapshot_seq, snapshot), entries, meta = reply
        updates: list[bytes] = []
        seqs: list[int] = []
        if snapshot is not None:
            updates.append(bytes(snapshot))
            seqs.append(int(snapshot_seq))
        for entry_id, fields in entries:
            values = dict(zip(fields[::2], fields[1::2]))
            updates.append(bytes(values[b"u"]))
            seqs.append(int(entry_id.split(b"-")[0]))
        pairs = [value.decode() for value in meta]
        return JournalRecord(
            room=args[0], updates=updates, last_seq=int(last_seq or 0), persisted_seq=int(persisted_seq or 0),
            persisted_etag=(etag or b"").decode(), meta=dict(zip(pairs[::2], pairs[1::2])), seqs=seqs)

    @staticmethod
    def _result_mark_persisted(args: tuple, reply: Any) -> None:
        outcome, number = reply[0].decode(), int(reply[1])
        room, seq = args[0], args[1]
        if outcome == "beyond":
            raise ValueError(f"room {room}: cannot mark seq {seq} persisted, last seq is {number}")
        if outcome == "stale":
            log.info("journal stale mark_persisted ignored room=%s seq=%d persisted_seq=%d", room, seq, number)

    @staticmethod
    def _result_compact(args: tuple, reply: Any) -> None:
        outcome, number, upto = reply[0].decode(), int(reply[1]), int(reply[2])
        room, snapshot, upto_seq = args
        if outcome == "outside":
            raise ValueError(f"room {room}: cannot compact up to seq {upto_seq}, last seq is {number}")
        if outcome == "skipped":
            log.info("journal compact skipped room=%s upto_seq=%s first_seq=%s reason=%s",
                     room, upto_seq, None if number < 0 else number,
                     "unread-by-another-replica" if upto < 1 else "already-compacted")
            return
        log.info("journal compacted room=%s upto_seq=%d removed=%d snapshot_bytes=%d kept_for_readers=%d",
                 room, upto, number, len(snapshot), upto_seq - upto)

    @staticmethod
    def _result_set_meta(args: tuple, reply: Any) -> None:
        return None

    @staticmethod
    def _result_forget(args: tuple, reply: Any) -> None:
        if int(reply) >= 0:
            log.info("journal forgot room=%s updates=%d", args[0], int(reply))

    @staticmethod
    def _result_ready(args: tuple, reply: Any) -> None:
        return None

    @staticmethod
    def _result_rooms_needing_flush(args: tuple, reply: Any) -> list[str]:
        return sorted(room.decode() for room in reply)

    # -- the Journal interface ----------------------------------------------------------

    # append, load, mark_persisted, compact, set_meta, rooms_needing_flush,
    # forget and ready: checked and queued by CheckedJournal (journal.py)
