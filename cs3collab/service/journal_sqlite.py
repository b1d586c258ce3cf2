"""The journal on one SQLite file, written by one thread with group commit.

Shape:

- One dedicated thread (a one-worker executor) owns the SQLite connection;
  the event loop never touches the database and never blocks on disk.
- One writer task, owned by the journal's task group, takes every call queued
  since its last commit (all calls of the same event-loop tick, and all calls
  made while the previous commit was in flight) and runs them in ONE
  transaction on that thread, each call inside its own savepoint so that one
  bad call fails alone. Callers await a future resolved after ``COMMIT``
  returned. Reads go through the same queue, so a read sees every write
  acknowledged before it was made.

Durability. The database is in WAL mode. A commit appends the transaction's
pages and a commit frame to the ``-wal`` file with ``write(2)`` before
``COMMIT`` returns, and ``append`` returns only after ``COMMIT`` returned:

- against a **process kill** (SIGKILL, OOM killer, segfault) both levels are
  durable: once ``write(2)`` returned the data is in the kernel's page cache,
  which outlives the process; the next open replays the WAL up to its last
  valid commit frame (frames carry checksums, so a torn tail is ignored, never
  half-applied).
- against an **OS crash or power loss** only ``synchronous=FULL`` is
  durable: it fsyncs the WAL at every commit, so an acknowledged update is on
  the device (as far as the device honours flushes). ``NORMAL`` (the default)
  fsyncs only at checkpoints, so the last commits before a power cut may roll
  back (the file stays consistent).

The default is ``NORMAL`` because an update waits for its commit before it
is broadcast: an fsync per commit puts the disk's flush latency into every
keystroke's propagation (measured in ``benchmarks/service_bench.py``: p99 25
ms with FULL against 6 ms with NORMAL in the 20-client scenario on this
project's CI machine). Group commit keeps ``FULL`` affordable in throughput
(one fsync covers every append of a batch, see ``benchmarks/journal_append.py``)
for sites that want power-loss durability too.

The file is opened in exclusive locking mode: a second service pointed at the
same journal fails at start with :class:`JournalInUseError` instead of
interleaving histories. The kernel drops the lock when a process dies, so a
restart after a kill opens the file normally.

Layout: ``rooms`` (one row per room key: last_seq, persisted_seq,
persisted_etag), ``updates`` (room, seq, Y update, codec), ``meta`` (room, key,
value). ``PRAGMA application_id`` marks the file as a cs3collab journal and
``user_version`` its schema version.

An update given as :class:`~cs3collab.service.journal.Compressed` (a fresh
open's first state, a compaction's snapshot: the large ones) is kept as zlib
made it (codec 1) and decompressed on this thread when loaded. A 4.4 MB
notebook state written raw took ~20 ms of the one writer thread (its pages
fill the WAL past the automatic checkpoint, which then runs inside that
commit), and every other room's keystrokes queued behind it; compressed, ~2
ms. Version 1 files (no codec column, every update raw) are upgraded in place
on open; an older cs3collab refuses a version 2 file, naming the version.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from traitlets import Bool, CaselessStrEnum, Int, TraitError, Unicode, validate
from traitlets.config import Configurable

from . import metrics
from .journal import (
    CheckedJournal,
    Compressed,
    _Call,
    JournalCorruptError,
    JournalError,
    JournalInUseError,
    JournalRecord,
)

log = logging.getLogger("cs3collab.service.journal")

#: ``PRAGMA application_id`` of a cs3collab journal ("cs3j").
APPLICATION_ID = int.from_bytes(b"cs3j", "big")
SCHEMA_VERSION = 2
RAW, ZLIB = 0, 1
"""``updates.codec``: how ``data`` holds the update."""

SCHEMA = """
CREATE TABLE rooms (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    last_seq INTEGER NOT NULL DEFAULT 0,
    persisted_seq INTEGER NOT NULL DEFAULT 0,
    persisted_etag TEXT NOT NULL DEFAULT '');
CREATE TABLE updates (
    room_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    codec INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, seq));
CREATE TABLE meta (
    room_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (room_id, key));
"""


@dataclass
class JournalStats:
    """Counters since start, for benchmarks and tests."""

    commits: int = 0
    appends: int = 0
    appended_bytes: int = 0


class _Store:
    """The SQLite connection and the synchronous operations on it; only ever
    used on the journal thread."""

    def __init__(self, path: Path, synchronous: str, check_integrity: bool) -> None:
        self.path = path
        self.synchronous = synchronous
        self.check_integrity = check_integrity
        self.conn: sqlite3.Connection | None = None

    # -- open / close ---------------------------------------------------------------

    def open(self) -> int:
        """Open (or create) the journal; return the number of rooms. Raises
        JournalCorruptError / JournalInUseError naming the path."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=1.0)
        try:
            self._prepare(conn)
            rooms = conn.execute("SELECT count(*) FROM rooms").fetchone()[0]
        except JournalError:
            conn.close()
            raise
        except sqlite3.OperationalError as e:
            conn.close()
            if getattr(e, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise JournalInUseError(str(self.path)) from e
            raise JournalCorruptError(str(self.path), str(e)) from e
        except sqlite3.DatabaseError as e:
            conn.close()
            raise JournalCorruptError(str(self.path), str(e)) from e
        self.conn = conn
        return rooms

    def _prepare(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode != "wal":
            raise JournalCorruptError(str(self.path), f"cannot switch to WAL mode (journal_mode={mode})")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        # Take the exclusive lock now, so that a second opener fails here.
        conn.execute("BEGIN IMMEDIATE")
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]
            if app_id == 0 and version == 0 and tables == 0:
                # Not executescript(): it would COMMIT the open transaction.
                for statement in filter(str.strip, SCHEMA.split(";")):
                    conn.execute(statement)
                conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                log.info("journal created path=%s", self.path)
            elif app_id != APPLICATION_ID:
                raise JournalCorruptError(
                    str(self.path), f"not a cs3collab journal (application_id={app_id:#x}, {tables} schema objects)")
            elif version == 1:
                # version 2 added the codec column; every row so far is raw
                conn.execute(f"ALTER TABLE updates ADD COLUMN codec INTEGER NOT NULL DEFAULT {RAW}")
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                log.info("journal upgraded path=%s from_version=1 to_version=%d", self.path, SCHEMA_VERSION)
            elif version != SCHEMA_VERSION:
                raise JournalCorruptError(
                    str(self.path), f"schema version {version}, this cs3collab reads version {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if self.check_integrity:
            problems = [row[0] for row in conn.execute("PRAGMA quick_check(5)")]
            if problems != ["ok"]:
                raise JournalCorruptError(str(self.path), "integrity check failed: " + "; ".join(problems))

    def close(self) -> None:
        if self.conn is None:
            return
        conn, self.conn = self.conn, None
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as e:  # the WAL stays and is replayed at next open
            log.warning("journal checkpoint failed path=%s error=%s", self.path, e)
        conn.close()

    # -- batches --------------------------------------------------------------------

    def run_batch(self, calls: list[tuple[str, tuple]]) -> list[tuple[bool, Any]]:
        """Run ``calls`` in one transaction, each in a savepoint; return one
        (ok, result-or-exception) per call. Raises if the transaction as a
        whole fails (then nothing of it is committed)."""
        conn = self.conn
        assert conn is not None
        outcomes: list[tuple[bool, Any]] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for op, args in calls:
                conn.execute("SAVEPOINT call")
                try:
                    result = getattr(self, "op_" + op)(conn, *args)
                except Exception as e:
                    if not conn.in_transaction:  # SQLite rolled back the whole transaction
                        raise
                    conn.execute("ROLLBACK TO call")
                    conn.execute("RELEASE call")
                    outcomes.append((False, e))
                else:
                    conn.execute("RELEASE call")
                    outcomes.append((True, result))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return outcomes

    # -- operations (inside run_batch's transaction) --------------------------------------

    @staticmethod
    def _room_id(conn: sqlite3.Connection, room: str, create: bool) -> int | None:
        if create:
            sql = "INSERT INTO rooms (key) VALUES (?) ON CONFLICT (key) DO UPDATE SET key = key RETURNING id"
        else:
            sql = "SELECT id FROM rooms WHERE key = ?"
        row = conn.execute(sql, (room,)).fetchone()
        return None if row is None else row[0]

    @staticmethod
    def _row(update: bytes | Compressed) -> tuple[bytes, int]:
        """(data, codec) of an update as it is stored."""
        return (update.data, ZLIB) if isinstance(update, Compressed) else (update, RAW)

    def _update(self, data: bytes, codec: int, room: str, seq: int) -> bytes:
        if codec == RAW:
            return bytes(data)
        if codec == ZLIB:
            try:
                return zlib.decompress(data)
            except zlib.error as e:
                raise JournalCorruptError(str(self.path), f"room {room} update {seq} does not decompress: {e}") from e
        raise JournalCorruptError(str(self.path), f"room {room} update {seq} has unknown codec {codec}")

    def op_append(self, conn: sqlite3.Connection, room: str, update: bytes | Compressed, author: str = "") -> int:
        # ``author`` is not kept: one process saves every room it journals and
        # knows its authors (a kill loses the names of unsaved changes, not them)
        room_id, seq = conn.execute(
            "INSERT INTO rooms (key, last_seq) VALUES (?, 1) "
            "ON CONFLICT (key) DO UPDATE SET last_seq = last_seq + 1 RETURNING id, last_seq",
            (room,)).fetchone()
        conn.execute("INSERT INTO updates (room_id, seq, data, codec) VALUES (?, ?, ?, ?)",
                     (room_id, seq, *self._row(update)))
        return seq

    def op_load(self, conn: sqlite3.Connection, room: str) -> JournalRecord | None:
        row = conn.execute(
            "SELECT id, last_seq, persisted_seq, persisted_etag FROM rooms WHERE key = ?", (room,)).fetchone()
        if row is None:
            return None
        room_id, last_seq, persisted_seq, etag = row
        rows = conn.execute(
            "SELECT seq, data, codec FROM updates WHERE room_id = ? ORDER BY seq", (room_id,)).fetchall()
        meta = dict(conn.execute("SELECT key, value FROM meta WHERE room_id = ?", (room_id,)).fetchall())
        updates = [self._update(data, codec, room, seq) for seq, data, codec in rows]
        return JournalRecord(room=room, updates=updates, last_seq=last_seq,
                             persisted_seq=persisted_seq, persisted_etag=etag, meta=meta,
                             seqs=[row[0] for row in rows])

    def op_mark_persisted(self, conn: sqlite3.Connection, room: str, seq: int, etag: str) -> None:
        row = conn.execute("SELECT last_seq, persisted_seq FROM rooms WHERE key = ?", (room,)).fetchone()
        last_seq, persisted_seq = row if row is not None else (0, 0)
        if seq > last_seq:
            raise ValueError(f"room {room}: cannot mark seq {seq} persisted, last seq is {last_seq}")
        if seq < persisted_seq:
            log.info("journal stale mark_persisted ignored room=%s seq=%d persisted_seq=%d",
                     room, seq, persisted_seq)
            return
        room_id = self._room_id(conn, room, create=True)
        conn.execute("UPDATE rooms SET persisted_seq = ?, persisted_etag = ? WHERE id = ?", (seq, etag, room_id))

    def op_compact(self, conn: sqlite3.Connection, room: str, snapshot: bytes | Compressed, upto_seq: int) -> None:
        row = conn.execute("SELECT id, last_seq FROM rooms WHERE key = ?", (room,)).fetchone()
        last_seq = 0 if row is None else row[1]
        if not 1 <= upto_seq <= last_seq:
            raise ValueError(f"room {room}: cannot compact up to seq {upto_seq}, last seq is {last_seq}")
        room_id = row[0]
        first_seq = conn.execute("SELECT min(seq) FROM updates WHERE room_id = ?", (room_id,)).fetchone()[0]
        if first_seq is None or first_seq > upto_seq:
            log.info("journal compact skipped room=%s upto_seq=%s first_seq=%s reason=already-compacted",
                     room, upto_seq, first_seq)
            return
        removed = conn.execute("DELETE FROM updates WHERE room_id = ? AND seq <= ?", (room_id, upto_seq)).rowcount
        data, codec = self._row(snapshot)
        conn.execute("INSERT INTO updates (room_id, seq, data, codec) VALUES (?, ?, ?, ?)",
                     (room_id, upto_seq, data, codec))
        log.info("journal compacted room=%s upto_seq=%d removed=%d snapshot_bytes=%d stored_bytes=%d",
                 room, upto_seq, removed, snapshot.size if codec == ZLIB else len(data), len(data))

    def op_set_meta(self, conn: sqlite3.Connection, room: str, key: str, value: str) -> None:
        room_id = self._room_id(conn, room, create=True)
        conn.execute("INSERT INTO meta (room_id, key, value) VALUES (?, ?, ?) "
                     "ON CONFLICT (room_id, key) DO UPDATE SET value = excluded.value", (room_id, key, value))

    def op_ready(self, conn: sqlite3.Connection) -> None:
        """Nothing to write: run_batch's ``BEGIN IMMEDIATE`` took the write
        lock and its ``COMMIT`` went through, which is what readiness asks."""

    def op_rooms_needing_flush(self, conn: sqlite3.Connection) -> list[str]:
        return [r[0] for r in conn.execute("SELECT key FROM rooms WHERE last_seq > persisted_seq ORDER BY key")]

    def op_forget(self, conn: sqlite3.Connection, room: str) -> None:
        room_id = self._room_id(conn, room, create=False)
        if room_id is None:
            return
        removed = conn.execute("DELETE FROM updates WHERE room_id = ?", (room_id,)).rowcount
        conn.execute("DELETE FROM meta WHERE room_id = ?", (room_id,))
        conn.execute("DELETE FROM rooms WHERE id = ?", (room_id,))
        log.info("journal forgot room=%s updates=%d", room, removed)


class SQLiteJournal(CheckedJournal, Configurable):
    """The :class:`~cs3collab.service.journal.Journal` on one SQLite file.

    Arguments:
        path: the journal file (also settable as the ``path`` trait); created,
            with its folder, if missing.
        **kwargs: traits (``synchronous``, ``max_update_size``,
            ``check_integrity``) and ``parent``/``config`` as for any
            Configurable.
    """

    stores_compressed = True  # a Compressed update is written as it is (codec 1)

    path = Unicode(
        "", help="Journal file (SQLite, WAL mode). Created with its folder if missing. Required."
    ).tag(config=True)

    synchronous = CaselessStrEnum(
        ["FULL", "NORMAL"], default_value="NORMAL",
        help="SQLite synchronous level. NORMAL (default): a commit is in the WAL file, in the kernel's "
             "cache, before an update is broadcast, so an acknowledged update survives the service "
             "process being killed (SIGKILL, OOM, crash); the WAL is fsync'd at checkpoints, so an OS "
             "crash or power loss may lose the last commits. FULL: every commit fsyncs the WAL, so "
             "acknowledged updates also survive an OS crash or power loss, at a cost in latency that "
             "depends on the disk (benchmarks/service_bench.py measures it).",
    ).tag(config=True)

    max_update_size = Int(
        64 * 1024 * 1024,
        help="Largest update accepted by append, in bytes (default 64 MiB); 0 means no limit. "
             "Snapshots given to compact are not limited.",
    ).tag(config=True)

    check_integrity = Bool(
        True, help="Run PRAGMA quick_check when starting, so damaged pages fail the start (naming the "
                   "file) rather than a later call. Costs one read of the file; the journal is small "
                   "once compacted.",
    ).tag(config=True)

    @validate("path")
    def _validate_path(self, proposal):
        value = proposal["value"]
        if not value or not value.strip():
            raise TraitError("SQLiteJournal.path must name a file")
        if value == ":memory:" or value.startswith("file:"):
            raise TraitError(f"SQLiteJournal.path must be a file path, not {value!r}: the journal must be durable")
        return value

    @validate("max_update_size")
    def _validate_max_update_size(self, proposal):
        if proposal["value"] < 0:
            raise TraitError("SQLiteJournal.max_update_size must be >= 0 (0 means no limit)")
        return proposal["value"]

    def __init__(self, path: str | os.PathLike[str] | None = None, **kwargs: Any) -> None:
        if path is not None:
            kwargs["path"] = os.fspath(path)
        super().__init__(**kwargs)
        self.stats = JournalStats()
        self._store: _Store | None = None
        self._executor: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"<SQLiteJournal path={self.path!r} state={self._state}>"

    @property
    def where(self) -> str:
        """What logs and errors name: the journal file."""
        return self.path

    # -- the store ------------------------------------------------------------------

    async def _open_store(self) -> None:
        """Open the file on the journal thread (the base closes again if this raises)."""
        if not self.path:
            raise JournalError("SQLiteJournal.path is not set")
        assert self._loop is not None
        self._store = _Store(Path(self.path), self.synchronous.upper(), self.check_integrity)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cs3collab-journal")
        rooms = await self._loop.run_in_executor(self._executor, self._store.open)
        log.info("journal opened path=%s synchronous=%s rooms=%d", self.path, self._store.synchronous, rooms)

    async def _close_store(self) -> None:
        """Close the file and the thread."""
        if self._executor is not None:
            executor, self._executor = self._executor, None
            assert self._loop is not None and self._store is not None
            try:
                await self._loop.run_in_executor(executor, self._store.close)
            finally:
                executor.shutdown(wait=False)
            log.info("journal closed path=%s commits=%d appends=%d bytes=%d",
                     self.path, self.stats.commits, self.stats.appends, self.stats.appended_bytes)

    # -- one batch on the thread ------------------------------------------------------

    async def _commit(self, batch: list[_Call]) -> None:
        assert self._loop is not None and self._store is not None
        started = time.perf_counter()
        try:
            outcomes = await self._loop.run_in_executor(
                self._executor, self._store.run_batch, [(call.op, call.args) for call in batch])
        except Exception as e:
            log.warning("journal commit failed path=%s calls=%d error=%s", self.path, len(batch), e)
            error = JournalError(f"journal {self.path}: commit failed: {e}")
            error.__cause__ = e
            for call in batch:
                if not call.future.done():
                    call.future.set_exception(error)
            return
        self.stats.commits += 1
        metrics.journal_committed(time.perf_counter() - started)
        appends = appended = 0
        for call, (ok, result) in zip(batch, outcomes):
            if call.op == "append" and ok:
                appends += 1
                update = call.args[1]
                appended += update.size if isinstance(update, Compressed) else len(update)
            if not ok:
                log.warning("journal call failed op=%s room=%s error=%s",
                            call.op, call.args[0] if call.args else "", result)
            if call.future.done():
                continue
            if ok:
                call.future.set_result(result)
            else:
                call.future.set_exception(result)
        self.stats.appends += appends
        self.stats.appended_bytes += appended
        log.debug("journal commit calls=%d appends=%d bytes=%d ms=%.2f",
                  len(batch), appends, appended, (time.perf_counter() - started) * 1000)

    # -- the Journal interface ----------------------------------------------------------

    # append, load, mark_persisted, compact, set_meta, rooms_needing_flush,
    # forget and ready: checked and queued by CheckedJournal (journal.py)

