"""The room registry: one room per file, opened once, freed after a grace period.

Many clients may ask for the same file at the same instant; they share one
load (the first caller's), so a file is downloaded once and there is only
ever one room for it. When the last participant leaves, the room waits a
grace period for someone to come back, then flushes what is unsaved,
releases the lock, compacts its journal and is freed. A room with a save
still failing is kept (and retried) rather than freed.

Each live room has one owner, :class:`LiveRoom`: its document, storage,
lock, access checks, read-only state and the task group of its background
work, each loop supervised (an unexpected failure is logged, counted and
retried with backoff; it never ends the room's other work). The registry
runs every room in its own task group; nothing here starts a loose task.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from cs3collab.cs3 import Session
from cs3collab.service import documents, kinds, memory
from cs3collab.service.access import AccessWatcher, TokenChecks
from cs3collab.service.awareness import AwarenessSettings
from cs3collab.service.documents import DocumentKind
from cs3collab.service.guard import DocumentLimits
from cs3collab.service.journal import Compressed, Journal
from cs3collab.service.room import Participant, Room
from cs3collab.service.room_replication import RoomReplication
from cs3collab.service.storage import RoomStorage, StorageSettings
from cs3collab.service.worker import DocumentWorker

if TYPE_CHECKING:
    from cs3collab.service.replicas import ReplicaLink

log = logging.getLogger("cs3collab.service.registry")


SUPERVISED_BACKOFF_MAX = 60.0
"""Longest wait, in seconds, before background work that failed is started again."""


class LiveRoom:
    """The one owner of a live room: its document and participants (``room``),
    its CS3 side (saving, polling, the lock), its access re-checks, its
    read-only state and the task group of its background work.

    Handlers and the versions service use only the public surface below;
    the parts behind it are this object's.

    Args:
        room: the room (document, journal handle, participants).
        resource_id: the file's CS3 resource id.
        settings: timings of its CS3 side.
        documents_worker: where documents are serialized and parsed.
        access_recheck: seconds between access re-checks.
        tokens: the service's shared token checks (the owner's re-checks, batched per user).
        link: this replica's link to the others (``--redis-url``), or None
            for a service on its own. With a link the room follows the other
            replicas' updates, awareness and notices and writes to CS3 only
            while this replica holds the room's lease (room_replication.py).
        idle_release: seconds without a change after which the room, when
            nothing is unsaved or in flight, drops its documents and keeps
            only its encoded state (Room.release); 0 never releases.
    """

    def __init__(self, room: Room, resource_id, settings: StorageSettings, documents_worker: DocumentWorker,
                 access_recheck: float, tokens: TokenChecks | None = None, link: ReplicaLink | None = None,
                 idle_release: float = 0.0) -> None:
        self.room = room
        self.settings = settings
        self.idle_release = idle_release
        self._storage = RoomStorage(room, resource_id, settings, documents_worker)
        self._access = AccessWatcher(room, resource_id, access_recheck, tokens)
        self._storage.before_save = self._access.check  # nobody who lost access is saved as
        self._replication: RoomReplication | None = None
        if link is not None:
            self._replication = RoomReplication(room, self._storage, self._access, link, persist=self._persist,
                                                save=self.save_asked, spawn=self._spawn)
            self._storage.notify = self.notify
        self.failures: dict[str, int] = {}  # unexpected failures of background work, by name
        self.task: asyncio.Task | None = None
        self.closer: asyncio.Task | None = None
        self.closing: asyncio.Future | None = None  # set while the room is being closed
        self.ready: asyncio.Future = asyncio.get_running_loop().create_future()
        self._work: asyncio.TaskGroup | None = None

    # -- public surface --------------------------------------------------------------

    @property
    def key(self) -> str:
        return self.room.key

    @property
    def kind(self):
        return self.room.kind

    @property
    def path(self) -> str:
        return self._storage.path

    @property
    def read_only(self) -> str | None:
        """Why nobody may edit the room (another app's lock), or None."""
        return self.room.read_only

    @property
    def lock_id(self) -> str:
        """The id of the CS3 lock this room takes ("" before it has one)."""
        return self._storage.lock.lock_id or ""

    @property
    def held_lock_id(self) -> str:
        """The lock id writes must present now ("" when the room holds no lock)."""
        return self._storage.lock.upload_lock_id

    def people(self) -> list:
        """The identities of the people connected now, once each (a lock holder
        from another site is named from here: this site's gateway may not know her)."""
        return list({p.identity.uid: p.identity for p in self.room.participants}.values())

    @property
    def unsaved(self) -> bool:
        return self._storage.unsaved

    @property
    def persisted_etag(self) -> str:
        return self._storage.persisted_etag

    @property
    def persisted_seq(self) -> int:
        return self._storage.persisted_seq

    @property
    def save_problem(self) -> dict | None:
        """The RAW ``cs3collab:save-failed`` notice while saves fail, else None
        (on a replica without the room's lease: as the holder told it)."""
        if self._replication is not None and not self._replication.persists_here():
            return self._replication.save_problem
        return self._storage.save_problem

    async def save(self) -> str:
        """Save now if anything is unsaved: ``success``, ``skipped`` or ``failed``.
        Never raises for a failed save (it is logged, counted and retried)."""
        if self._replication is not None and not self._replication.persists_here():
            return await self._replication.save_elsewhere()
        try:
            return await self._storage.save()
        except Exception:
            self._failed("save")
            return "failed"

    async def save_asked(self) -> tuple[str, bool]:
        """A save someone asked for (Ctrl+S): its status, and whether a CS3
        version was written meanwhile (by this save, or by a save already
        under way that the request waited for): the difference between
        "saved as a new version" and "nothing changed"."""
        if self._replication is not None and not self._replication.persists_here():
            return await self._replication.save_elsewhere()
        before = self._storage.versions_written
        status = await self.save()
        return status, self._storage.versions_written > before

    def request_save(self, reply: Callable[[str, bool], None]) -> None:
        """Save in the room's own task group and ``reply(status, new_version)``
        when done: the caller (a connection handling a frame) does not wait for CS3."""
        if self._work is None:
            reply("failed", False)
            return

        async def save_and_reply() -> None:
            reply(*await self.save_asked())

        self._work.create_task(save_and_reply(), name=f"save:{self.key}")

    async def edit(self, change: Callable[..., None], *, quiet: bool = False, author: Participant | None = None,
                   named: tuple[str, str] | None = None) -> int:
        """A server-authored change, ``change(document)``: journaled, then shown (see Room.edit);
        ``author``: on whose behalf (a shared kernel's run); ``named``: (user id,
        display name) of such a person connected to another replica, named in
        the save record instead."""
        seq = await self.room.edit(change, quiet=quiet, author=author, named=named)
        if author is None and named is not None and seq:
            # no await since the change: the save it woke has not read the authors yet
            self._storage.note_authors({named[0]: named[1]}, seq)
        return seq

    async def restore(self, content, restorer: Participant) -> tuple[int, str]:
        """Make the live document ``content`` (a version's), as ``restorer``,
        merged like an edit so that nobody is thrown out; then save.

        Returns the journal sequence of the change (0: nothing changed) and
        the save's status. The caller checks :attr:`read_only` first; raises
        UpdateRefused when the version is beyond the room's limits.
        """
        # no await between reading the room's state and trying the change:
        # the delta is exactly "this state -> the version", in one transaction
        self.room.revive("restore a version")
        delta = documents.outside_edit_update(self.room.kind, self.room.candidate.doc.get_update(), content)
        seq = await self.room.apply(delta, author=restorer)
        return seq, await self.save()

    def joining(self) -> None:
        """Someone is joining: an idle room polls its file now (a catch-up
        poll), so that an outside change made while it was idle is merged
        rather than worked around by the newcomer."""
        self._storage.wake()

    def notify(self, payload: dict) -> None:
        """A RAW JSON message to every participant (on every replica)."""
        self.room.notify(payload)
        if self._replication is not None:
            self._replication.notice(payload)

    def serialized(self) -> bytes:
        """The file content of the live document (InvalidDocument if it would not validate)."""
        self.room.revive("serialize")  # a reader (the webapp's live view) is about to edit, most likely
        return documents.serialize(self.room.kind, self.room.document, where=self._storage.path or self.key)

    # -- lifecycle (the registry's) ------------------------------------------------------

    async def load(self, session: Session) -> None:
        if self._replication is not None:
            await self._replication.take()
        await self._storage.load(session)
        if self._replication is not None:
            self._replication.loaded()

    async def run(self) -> None:
        """The room's background work until cancelled: saving, polling, the
        lock, access re-checks and requested saves, each supervised."""
        async with asyncio.TaskGroup() as work:
            self._work = work
            if self._replication is None:
                self._persist(work)
            else:  # only while this replica holds the room's lease
                work.create_task(self._supervised("persistence", self._replication.persist_while_leased))
                work.create_task(self._supervised("replicas", self._replication.follow))
            work.create_task(self._supervised("access", self._access.run))
            if self.idle_release > 0:
                work.create_task(self._supervised("idle release", self._release_when_idle))

    async def _release_when_idle(self) -> None:
        """Release the room's documents once it has been idle ``idle_release``
        seconds with nothing unsaved and nothing in flight (Room.release): an
        idle room then costs about its encoded state. The room rebuilds them
        itself on its next change or read."""
        room = self.room
        wait = self.idle_release
        while True:
            await asyncio.sleep(wait)  # a timer: the room's next check
            idle_for = time.monotonic() - room.last_activity
            if room.released:
                wait = self.idle_release
            elif idle_for < self.idle_release:
                wait = self.idle_release - idle_for
            elif not room.may_release() or self._storage.unsaved or self.closing is not None:
                wait = min(self.idle_release, 5.0)  # look again soon: a save or a commit is under way
            elif await room.release_soon(self._storage.persisted_compressed) is not None:  # compressed on a thread
                memory.give_back()
                wait = self.idle_release
            else:
                wait = min(self.idle_release, 5.0)  # it changed while its state was compressed

    def _spawn(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` in the room's task group, supervised (ignored once the room stopped)."""
        if self._work is not None:
            self._work.create_task(self._supervised(name, work), name=f"{name}:{self.key}")

    def _persist(self, work: asyncio.TaskGroup) -> None:
        """Saving, polling for outside edits and the CS3 lock: the room's writes to CS3."""
        work.create_task(self._supervised("saving", self._storage.save_loop))
        work.create_task(self._supervised("polling", self._storage.poll_loop))
        work.create_task(self._supervised("locking", lambda: self._storage.lock.run(self._storage.sessions)))


    async def _supervised(self, name: str, work: Callable[[], Awaitable[None]]) -> None:
        """Run ``work`` until it returns; an unexpected exception is logged
        (room, file, traceback), counted and ``work`` started again after a
        backoff (retry delay, doubling up to a minute); the room's other work
        carries on meanwhile."""
        delay = self.settings.retry_delay
        while True:
            started = time.monotonic()
            try:
                await work()
                return
            except Exception:
                self._failed(name)
            if time.monotonic() - started > SUPERVISED_BACKOFF_MAX:
                delay = self.settings.retry_delay  # it had been healthy for a while
            await asyncio.sleep(delay)  # backoff before starting the work again
            delay = min(delay * 2, SUPERVISED_BACKOFF_MAX)

    def _failed(self, name: str) -> None:
        self.failures[name] = self.failures.get(name, 0) + 1
        log.exception(
            "room background work failed, retrying room=%s path=%s work=%s failures=%d",
            self.key, self._storage.path, name, self.failures[name],
        )

    async def close(self) -> bool:
        """Flush and release the lock; False if something is still unsaved
        (then the room must be kept). A replica that does not persist the
        room leaves both to the one that does."""
        if self._replication is not None and not self._replication.persists_here():
            return True
        try:
            await self._storage.close()
        except Exception:
            self._failed("close")
        if self._storage.unsaved and self._replication is not None and not self._storage.sessions():
            # nobody here can save it (the edits came from other replicas' participants):
            # free the room, and with it the lease, for a replica whose participants can;
            # the journal holds everything
            log.warning("room left to other replicas to save room=%s path=%s", self.key, self._storage.path)
            return True
        return not self._storage.unsaved

    async def compact(self) -> None:
        """Fold the journal into the last saved state (the room is being freed)."""
        if self._replication is not None and not self._replication.persists_here():
            return  # its persisted state may be older than the holder's: the holder compacts
        saved = self._storage.persisted_compressed  # None before the first open or save
        if saved is not None:
            await self.room.journal.compact(self.key, Compressed(saved), self._storage.persisted_seq)


class RoomRegistry:
    """Maps room keys (CS3 resource ids) to live rooms.

    Args:
        journal: the journal every room appends to.
        settings: timings of the rooms' CS3 side.
        close_grace: seconds a room with nobody in it stays open.
        documents_worker: where parsing, building and serializing documents run.
        access_recheck: seconds between re-checks of each participant's access.
        awareness: how rooms guard and relay awareness (see awareness.py).
        link: this replica's link to the other replicas (``--redis-url``), or None.
        idle_release: seconds of no change after which a room releases its documents (0: never).
    """

    def __init__(
        self,
        journal: Journal,
        settings: StorageSettings,
        close_grace: float = 60.0,
        *,
        documents_worker: DocumentWorker,
        access_recheck: float = 5.0,
        awareness: AwarenessSettings | None = None,
        limits: DocumentLimits | None = None,
        link: ReplicaLink | None = None,
        idle_release: float = 0.0,
    ) -> None:
        self.idle_release = idle_release
        self.journal = journal
        self.link = link
        self.limits = limits or DocumentLimits()
        self.access_recheck = access_recheck
        self.tokens = TokenChecks(access_recheck)  # owners' re-checks, batched per user across rooms
        self.awareness = awareness
        self.documents_worker = documents_worker
        self.settings = settings
        self.close_grace = close_grace
        self.rooms: dict[str, LiveRoom] = {}
        self._tasks: asyncio.TaskGroup | None = None
        self._stopped = asyncio.Event()

    async def run(self, started: asyncio.Future | None = None) -> None:
        """Own the rooms' tasks until :meth:`stop`; then close every room."""
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            if started is not None:
                started.set_result(None)
            await self._stopped.wait()
            for key, live in list(self.rooms.items()):
                if live.closer is not None:  # a grace timer must not hold the shutdown
                    live.closer.cancel()
                    live.closer = None
                await self._close(key)
        self._tasks = None

    def stop(self) -> None:
        self._stopped.set()

    async def open(self, key: str, kind: DocumentKind, file_id: str, resource_id, session: Session) -> LiveRoom:
        """The live room of a file, loading it (once) if needed.

        Raises what loading raises (InvalidDocument, CS3 errors) to every
        caller that waited for that load; the room is then not kept.
        """
        live = self.rooms.get(key)
        if live is not None and live.closing is None and live.ready.done() \
                and kinds.replaceable(live.room.kind, len(live.room.participants), kind):
            await self._free_for_other_kind(key, live, kind)
        # a room being closed is not joined: wait until it is freed (then load
        # it again) or kept (then join it)
        while (live := self.rooms.get(key)) is not None and live.closing is not None:
            await asyncio.shield(live.closing)
        if live is None:
            if self._tasks is None:
                raise RuntimeError("the room registry is not running")
            room = Room(key, kind, file_id, self.journal, self.awareness, self.limits)
            live = LiveRoom(room, resource_id, self.settings, self.documents_worker, self.access_recheck,
                            self.tokens, self.link, self.idle_release)
            self.rooms[key] = live
            try:
                await kinds.adopt_journal(self.journal, key, kind)  # one history, one schema
                await live.load(session)
            except BaseException as exc:
                del self.rooms[key]
                live.ready.set_exception(exc)
                live.ready.exception()  # retrieved: later waiters re-raise it themselves
                raise
            live.task = self._tasks.create_task(self._run_room(live), name=f"room:{key}")
            live.ready.set_result(None)
        else:
            await asyncio.shield(live.ready)
        kinds.check_kind(live.room.kind, kind, key)  # one file, one live document type
        if live.closer is not None:
            live.closer.cancel()
            live.closer = None
        live.joining()
        return live

    async def _free_for_other_kind(self, key: str, live: LiveRoom, kind: DocumentKind) -> None:
        """Flush and free an empty room so that its file opens as ``kind`` (see kinds.py)."""
        log.info("room freed for another document type room=%s was=%s now=%s", key, live.room.kind.doc_type, kind.doc_type)
        if live.closer is not None:
            live.closer.cancel()
            live.closer = None
        await self._close(key)

    async def _run_room(self, live: LiveRoom) -> None:
        """A room's background work (supervised inside); nothing of it may end the other rooms'."""
        try:
            await live.run()
        except Exception:
            log.exception("room background work ended room=%s", live.room.key)

    def released(self, key: str) -> None:
        """Called when a participant left: schedule closing an empty room."""
        live = self.rooms.get(key)
        if live is None or live.room.participants or live.closer is not None or self._tasks is None:
            return
        live.closer = self._tasks.create_task(self._close_after_grace(key), name=f"close:{key}")

    async def _close_after_grace(self, key: str) -> None:
        await asyncio.sleep(self.close_grace)  # grace period timer
        live = self.rooms.get(key)
        if live is None or live.room.participants:
            return
        live.closer = None
        await self._close(key)

    async def _close(self, key: str) -> None:
        live = self.rooms.get(key)
        if live is None or live.closing is not None:
            return
        live.closing = asyncio.get_running_loop().create_future()
        try:
            saved = await live.close()
            if not saved and not self._stopped.is_set():
                log.warning("room kept open: its last save failed room=%s", key)
                live.closer = self._tasks.create_task(self._close_after_grace(key), name=f"close:{key}")
                return
            if live.task is not None:
                live.task.cancel()
            await live.compact()
            del self.rooms[key]
            if not live.room.participants:
                live.room.dispose()  # else its documents, still observed, are never freed
                memory.give_back()
            log.info("room closed room=%s unsaved=%s", key, live.unsaved)
        finally:
            closing, live.closing = live.closing, None
            closing.set_result(None)
