"""The room journal: every document update is durable before it is applied.

A room appends each Y update from an editor to the journal and only then
applies it, broadcasts it and acknowledges it (DESIGN.md section 4, "Edit").
After a crash, even a SIGKILL, a restarted service rebuilds each live room from
the journal alone: the same Y items with the same ids, never rebuilt from the
file, so clients that reconnect with their old state sync without duplicating
content. Rooms whose journal holds updates newer than the last save in CS3
(:meth:`Journal.rooms_needing_flush`) are flushed on restart.

The service imports only this module: :class:`Journal` is the interface,
:class:`JournalRecord` what a room reads back, and the errors below what any
backend raises. Backends live in their own modules (``journal_sqlite.py``, one
file per service; ``journal_redis.py``, shared by replicas) and are chosen by
``CollabService.redis_url`` / ``CollabService.journal_class``.

Sequence numbers count a room's updates from 1, strictly increasing; they
restart only after :meth:`Journal.forget` dropped the room. Compaction
replaces a prefix of the history by one snapshot update (``Doc.get_update()``
of a doc holding exactly that prefix) kept under the prefix's last sequence
number, so later numbers never move.
"""

from __future__ import annotations

import asyncio
import zlib
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import anyio
from anyio.abc import TaskStatus

#: Longest room key accepted, in UTF-8 bytes. A Reva resource id
#: (``storage_id$space_id!opaque_id``) is far shorter; anything longer is a bug
#: or an attack, not a room.
MAX_ROOM_KEY_BYTES = 1024
#: Longest meta key and value accepted, in UTF-8 bytes: meta is for small
#: per-room facts (file type, path hint), not content.
MAX_META_KEY_BYTES = 256
MAX_META_VALUE_BYTES = 64 * 1024
#: Longest etag accepted, in UTF-8 bytes.
MAX_ETAG_BYTES = 1024


class JournalError(Exception):
    """Base of every error a journal raises."""


class JournalCorruptError(JournalError):
    """The journal file cannot be used: not a database, not a cs3collab
    journal, an unknown schema version, or damaged pages.

    Arguments:
        path: the journal file.
        reason: what is wrong with it.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"journal {path} is unusable: {reason}")


class JournalInUseError(JournalError):
    """Another process (or another journal object) holds the journal file."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"journal {path} is in use (another process or journal object holds its lock)")


class JournalUnavailableError(JournalError):
    """The journal's store cannot be reached (a Redis that is down,
    unreachable or too slow to answer): the call was not acknowledged. The
    journal keeps running; a later call may succeed.

    Arguments:
        where: the store (URL without password, key prefix).
        reason: what the client saw.
    """

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"journal {where} is unavailable: {reason}")


class JournalClosedError(JournalError):
    """The journal is not running (not started yet, or stopping/stopped)."""


class InvalidRoomKeyError(JournalError, ValueError):
    """A room key that is not a non-empty printable string of at most
    :data:`MAX_ROOM_KEY_BYTES` UTF-8 bytes."""


class InvalidUpdateError(JournalError, ValueError):
    """An update that is empty, not bytes, or larger than the backend's limit."""


@dataclass
class JournalRecord:
    """What :meth:`Journal.load` returns for one room.

    Attributes:
        room: the room key (the CS3 resource id in Reva form).
        updates: Y updates in append order; the first may be a compacted
            snapshot. Applying them all to an empty Doc rebuilds the room.
        last_seq: sequence number of the last update (0 if none).
        persisted_seq: updates with ``seq <= persisted_seq`` are known to be in CS3.
        persisted_etag: the CS3 etag of that save ('' if never saved).
        meta: small per-room key/values (e.g. file type, path hint).
        seqs: the sequence number of each of ``updates`` (same length; a
            compacted snapshot carries the last seq it covers), e.g. to
            rebuild the state saved at ``persisted_seq``.
    """

    room: str
    updates: list[bytes] = field(default_factory=list)
    last_seq: int = 0
    persisted_seq: int = 0
    persisted_etag: str = ""
    meta: dict[str, str] = field(default_factory=dict)
    seqs: list[int] = field(default_factory=list)

    @property
    def needs_flush(self) -> bool:
        """True when the journal holds updates not yet saved to CS3."""
        return self.last_seq > self.persisted_seq


@dataclass(frozen=True, eq=False)
class Compressed:
    """A Y update as zlib compressed it, for :meth:`Journal.append` and
    :meth:`Journal.compact`: what a room already holds of a large update (a
    fresh open's first state, the saved state a compaction folds in), so that
    nobody compresses or decompresses it again on the event loop.

    A backend that declares ``stores_compressed`` keeps ``data`` as it is (the
    SQLite journal: a quarter of the bytes to write, and of the WAL to
    checkpoint, for a notebook's state); for any other, the journal uses
    ``raw`` or decompresses ``data`` on a thread. :meth:`Journal.load` always
    gives the updates uncompressed.

    Attributes:
        data: the update, zlib-compressed.
        size: the update's size uncompressed, what the size limit counts (0:
            unknown, accepted only by compact, which has no limit).
        raw: the update itself, if the caller still holds it.
    """

    data: bytes
    size: int = 0
    raw: bytes | None = None


@runtime_checkable
class Journal(Protocol):
    """Durable, per-room, append-only log of Y updates.

    Lifecycle, as every long-lived object of the service: either
    ``async with journal:``, or ``await tg.start(journal.start)`` then
    ``await journal.stop()``. ``start`` opens the store, reports started once
    the journal accepts calls, and returns only when the journal has stopped.
    ``stop`` refuses new calls, lets every call already made finish (pending
    appends are committed, not dropped), then closes the store.

    Calls made while the journal is not running raise :class:`JournalClosedError`.
    A call whose awaiting task is cancelled before its commit started is not
    carried out; once the commit started it may or may not be, as a cancelled
    call was never acknowledged.
    """

    async def __aenter__(self) -> Journal: ...

    async def __aexit__(self, *exc_info: object) -> bool | None: ...

    async def start(self, *, task_status: TaskStatus[None] = ...) -> None:
        """Open the store and serve calls until :meth:`stop`."""

    async def stop(self) -> None:
        """Commit the calls already made, close the store; idempotent."""

    async def append(self, room: str, update: bytes | Compressed, author: str = "") -> int:
        """Append one Y update to ``room`` (created on first use); return its
        sequence number once the update is durable. ``author``: who made it
        (:func:`author_tag`), for a journal shared by replicas, so that the
        replica that saves can name the authors of changes made on another
        one; a journal of one process may ignore it. Raises
        :class:`InvalidRoomKeyError` or :class:`InvalidUpdateError` on bad input."""

    async def load(self, room: str) -> JournalRecord | None:
        """Everything journaled for ``room``, or None for an unknown room."""

    async def mark_persisted(self, room: str, seq: int, etag: str) -> None:
        """Record that updates up to ``seq`` are saved in CS3 under ``etag``.
        A ``seq`` below the recorded one is ignored (an older save finishing
        late); one above ``last_seq`` raises ValueError. ``seq`` 0 records
        the etag of a room with no updates."""

    async def compact(self, room: str, snapshot: bytes | Compressed, upto_seq: int) -> None:
        """Atomically replace the updates with ``seq <= upto_seq`` by
        ``snapshot``, kept as the first update under ``upto_seq``; later
        updates are untouched. ``snapshot`` must hold at least everything
        those updates held (``Doc.get_update()`` of a doc built from them and
        possibly later ones). A room already compacted past ``upto_seq`` is
        left as it is; ``upto_seq`` outside ``1..last_seq`` raises ValueError.
        A journal shared by replicas trims no further than the lowest
        position another live replica has read (journal_redis.py): the
        snapshot then stands for that lower sequence number, and replaying
        it with the entries after is the same document."""

    async def set_meta(self, room: str, key: str, value: str) -> None:
        """Set one small key/value of ``room`` (created on first use)."""

    async def rooms_needing_flush(self) -> list[str]:
        """Rooms whose ``last_seq > persisted_seq``, sorted: the rooms to
        rebuild and save after a crash."""

    async def forget(self, room: str) -> None:
        """Drop ``room`` entirely: updates, meta, sequence numbers."""

    async def ready(self) -> None:
        """Return once the journal could commit a write now; raise
        :class:`JournalError` (or :class:`JournalClosedError`) saying why not.
        Answers the service's readiness probe (``/readyz``)."""

    async def settled(self) -> None:
        """Return once every call made before it has been committed (at
        once if none is under way; calls made later do not extend the wait).
        Long work on the event loop waits for this between its steps (a large
        open's restore): a commit of the SQLite journal needs the GIL on its
        thread, which a loop busy with Python work lends it only every few
        milliseconds, and every room's keystrokes wait for commits."""


def check_room_key(room: object) -> str:
    """Return ``room`` if it is a valid room key, else raise
    :class:`InvalidRoomKeyError` saying why (without echoing a huge key)."""
    if not isinstance(room, str):
        raise InvalidRoomKeyError(f"room key must be a str, not {type(room).__name__}")
    if not room:
        raise InvalidRoomKeyError("room key is empty")
    try:
        size = len(room.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidRoomKeyError("room key is not valid Unicode (lone surrogate)") from None
    if size > MAX_ROOM_KEY_BYTES:
        raise InvalidRoomKeyError(f"room key is {size} bytes, more than {MAX_ROOM_KEY_BYTES}")
    if not room.isprintable():
        raise InvalidRoomKeyError(f"room key has non-printable characters: {room[:80]!r}")
    return room


def check_text(what: str, value: object, limit: int, *, allow_empty: bool = True) -> str:
    """Return ``value`` if it is a str of at most ``limit`` UTF-8 bytes
    (non-empty unless ``allow_empty``), else raise ValueError naming ``what``."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a str, not {type(value).__name__}")
    if not value and not allow_empty:
        raise ValueError(f"{what} is empty")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(f"{what} is not valid Unicode (lone surrogate)") from None
    if size > limit:
        raise ValueError(f"{what} is {size} bytes, more than {limit}")
    return value


AUTHOR_MAX = 512
"""Longest author tag an append takes (a user id and a display name)."""
_AUTHOR_SEP = "\x1f"


def author_tag(uid: str, name: str) -> str:
    """An update's author as the journal keeps it (:func:`parse_author` reads it back)."""
    return f"{uid}{_AUTHOR_SEP}{name}"[:AUTHOR_MAX]


def parse_author(tag: bytes | str) -> tuple[str, str] | None:
    """(user id, display name) of an author tag; None if it is not one."""
    text = tag.decode("utf-8", "replace") if isinstance(tag, bytes) else tag
    uid, sep, name = text.partition(_AUTHOR_SEP)
    return (uid, name) if sep and uid else None


def check_update(update: object, limit: int | None) -> bytes:
    """Return ``update`` as bytes if it is a non-empty bytes-like object of at
    most ``limit`` bytes (no limit if None), else raise :class:`InvalidUpdateError`."""
    if not isinstance(update, (bytes, bytearray, memoryview)):
        raise InvalidUpdateError(f"update must be bytes, not {type(update).__name__}")
    data = bytes(update)
    if not data:
        raise InvalidUpdateError("update is empty")
    if limit is not None and len(data) > limit:
        raise InvalidUpdateError(f"update is {len(data)} bytes, more than {limit}")
    return data


def check_seq(seq: object, minimum: int) -> int:
    """Return ``seq`` if it is an int (not a bool) of at least ``minimum``,
    else raise ValueError."""
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise ValueError(f"seq must be an int, not {type(seq).__name__}")
    if seq < minimum:
        raise ValueError(f"seq must be >= {minimum}, not {seq}")
    return seq


_NEW, _STARTING, _RUNNING, _CLOSING, _STOPPED = "new", "starting", "running", "closing", "stopped"


@dataclass(eq=False)
class _Call:
    """One queued call: what the backend runs and who waits for it."""

    op: str
    args: tuple
    future: asyncio.Future = field(repr=False)


class CheckedJournal:
    """What every backend shares: the :class:`Journal` calls with their
    arguments checked once, the same way for all, and the call queue with its
    lifecycle (new, starting, running, closing, stopped).

    A call is checked, queued as a :class:`_Call` and awaited; one writer task,
    owned by the journal's task group, hands everything queued since its last
    round (all calls of one event-loop tick, and all calls made while the
    previous round was in flight) to the backend's :meth:`_commit` as one
    batch: the SQLite journal's group commit, the Redis journal's pipeline.
    :meth:`stop` refuses new calls and lets the queued ones run; whatever is
    still queued when the journal closes fails with :class:`JournalClosedError`.

    A backend subclasses this (before ``Configurable``), has a
    ``max_update_size`` and a ``where`` (what logs and errors name), and
    implements only its store: :meth:`_open_store`, :meth:`_commit` (resolve
    each call's future) and :meth:`_close_store`.
    """

    max_update_size: int
    where: str
    stores_compressed = False
    """Whether the backend's store takes a :class:`Compressed` update as it is."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._state = _NEW
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: list[_Call] = []
        self._wakeup: asyncio.Event | None = None
        # calls queued so far, calls whose batch has run, and settled()'s waiters: (calls to wait for, future)
        self._calls_made = self._calls_run = 0
        self._settle_waiters: list[tuple[int, asyncio.Future]] = []
        self._stopped: asyncio.Event | None = None
        self._exit_stack: AsyncExitStack | None = None

    # -- what a backend implements ----------------------------------------------------

    async def _open_store(self) -> None:  # pragma: no cover - the backend's
        """Open the store (raise JournalError saying why not)."""
        raise NotImplementedError

    async def _commit(self, batch: list[_Call]) -> None:  # pragma: no cover - the backend's
        """Run ``batch`` in one round; resolve every call's future."""
        raise NotImplementedError

    async def _close_store(self) -> None:  # pragma: no cover - the backend's
        """Release the store; called once, after the queue was failed."""
        raise NotImplementedError

    # -- lifecycle ------------------------------------------------------------------

    async def __aenter__(self):
        await self._open()
        async with AsyncExitStack() as stack:
            stack.push_async_callback(self._close)  # if starting the writer fails
            tg = await stack.enter_async_context(anyio.create_task_group())
            await tg.start(self._serve)
            self._exit_stack = stack.pop_all()
        return self

    async def __aexit__(self, *exc_info: object) -> bool | None:
        await self.stop()
        stack, self._exit_stack = self._exit_stack, None
        if stack is None:
            return None
        return await stack.__aexit__(*exc_info)

    async def start(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Open the store, report started, serve calls until :meth:`stop`.
        Use as ``await tg.start(journal.start)``."""
        await self._open()
        await self._serve(task_status=task_status)

    async def stop(self) -> None:
        """Refuse new calls, run the queued ones, close the store; returns
        once the journal has stopped. Idempotent."""
        if self._state in (_NEW, _STOPPED):
            return
        if self._state in (_STARTING, _RUNNING):
            self._state = _CLOSING
            assert self._wakeup is not None
            self._wakeup.set()
        assert self._stopped is not None
        await self._stopped.wait()

    async def _open(self) -> None:
        if self._state != _NEW:
            raise JournalError(f"journal {self.where} was already started (state {self._state})")
        self._state = _STARTING
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()
        self._stopped = asyncio.Event()
        try:
            await self._open_store()
        except BaseException:
            await self._close()
            raise

    async def _serve(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run the writer in the journal's own task group until stopped, then
        close. Called once the store is open."""
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._writer)
                if self._state == _STARTING:
                    self._state = _RUNNING
                task_status.started()
        finally:
            with anyio.CancelScope(shield=True):
                await self._close()

    async def _close(self) -> None:
        """Fail what is still queued, close the store."""
        if self._state == _STOPPED:
            return
        self._state = _STOPPED
        self._calls_run = self._calls_made  # nothing will be committed any more
        self._wake_settled()
        queued, self._queue = self._queue, []
        for call in queued:
            if not call.future.done():
                call.future.set_exception(JournalClosedError(f"journal {self.where} stopped before the call ran"))
        try:
            await self._close_store()
        finally:
            if self._stopped is not None:
                self._stopped.set()

    async def _writer(self) -> None:
        """The one task that talks to the store: everything queued, batch after batch."""
        assert self._wakeup is not None
        while True:
            if not self._queue:
                if self._state != _RUNNING:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                # Let every call of this tick that woke us reach the queue.
                await anyio.lowlevel.checkpoint()
                continue
            batch, self._queue = self._queue, []
            taken = len(batch)
            batch = [call for call in batch if not call.future.done()]  # cancelled callers
            if batch:
                # A batch always runs to its end: its callers learn its outcome
                # even if the journal is being cancelled.
                with anyio.CancelScope(shield=True):
                    await self._commit(batch)
            self._calls_run += taken
            self._wake_settled()

    async def _call(self, op: str, *args: object) -> Any:
        if self._state != _RUNNING:
            raise JournalClosedError(f"journal {self.where} is not running (state {self._state})")
        assert self._loop is not None and self._wakeup is not None
        future = self._loop.create_future()
        self._queue.append(_Call(op, args, future))
        self._calls_made += 1
        self._wakeup.set()
        return await future

    # -- the Journal calls, checked -------------------------------------------------

    async def append(self, room: str, update: bytes | Compressed, author: str = "") -> int:
        """Append ``update`` to ``room``; return its seq once the backend made it durable."""
        check_room_key(room)
        limit = self.max_update_size or None
        if isinstance(update, Compressed):
            if not isinstance(update.size, int) or update.size <= 0:
                raise InvalidUpdateError("a compressed update to append must say its size")
            if limit is not None and update.size > limit:
                raise InvalidUpdateError(f"update is {update.size} bytes, more than {limit}")
        if not isinstance(author, str) or len(author) > AUTHOR_MAX:
            raise InvalidUpdateError(f"an update's author must be a string of at most {AUTHOR_MAX} characters")
        data = await self._stored(update, limit)
        return await self._call("append", room, data, author)

    async def _stored(self, update: object, limit: int | None) -> bytes | Compressed:
        """``update`` checked, as the backend stores it: bytes, or a
        :class:`Compressed` for a backend that ``stores_compressed``."""
        if not isinstance(update, Compressed):
            return check_update(update, limit)
        check_update(update.data, None)
        if self.stores_compressed:
            return update
        if update.raw is not None:
            return check_update(update.raw, limit)
        return check_update(await asyncio.to_thread(zlib.decompress, update.data), limit)

    async def load(self, room: str) -> JournalRecord | None:
        return await self._call("load", check_room_key(room))

    async def mark_persisted(self, room: str, seq: int, etag: str) -> None:
        check_room_key(room)
        check_seq(seq, minimum=0)
        check_text("etag", etag, MAX_ETAG_BYTES)
        await self._call("mark_persisted", room, seq, etag)

    async def compact(self, room: str, snapshot: bytes | Compressed, upto_seq: int) -> None:
        check_room_key(room)
        check_seq(upto_seq, minimum=1)
        data = await self._stored(snapshot, None)
        await self._call("compact", room, data, upto_seq)

    async def set_meta(self, room: str, key: str, value: str) -> None:
        check_room_key(room)
        check_text("meta key", key, MAX_META_KEY_BYTES, allow_empty=False)
        check_text("meta value", value, MAX_META_VALUE_BYTES)
        await self._call("set_meta", room, key, value)

    async def rooms_needing_flush(self) -> list[str]:
        return await self._call("rooms_needing_flush")

    async def forget(self, room: str) -> None:
        await self._call("forget", check_room_key(room))

    async def ready(self) -> None:
        """Return once the backend accepted a write now (the readiness probe)."""
        await self._call("ready")

    async def settled(self) -> None:
        # the calls made so far, not "until nothing is queued": under a steady
        # stream of appends that moment might never come
        target = self._calls_made
        if self._calls_run >= target or self._loop is None:
            return
        waiter = self._loop.create_future()
        self._settle_waiters.append((target, waiter))
        await waiter

    def _wake_settled(self) -> None:
        waiting = []
        for target, waiter in self._settle_waiters:
            if self._calls_run >= target:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                waiting.append((target, waiter))
        self._settle_waiters = waiting
