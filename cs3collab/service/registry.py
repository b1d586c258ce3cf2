"""The room registry: one room per file, opened once, freed after a grace period.

Many clients may ask for the same file at the same instant; they share one
load (the first caller's), so a file is downloaded once and there is only
ever one room for it. When the last participant leaves, the room waits a
grace period for someone to come back, then flushes what is unsaved,
releases the lock, compacts its journal and is freed. A room with a save
still failing is kept (and retried) rather than freed.

The registry owns every room's background task (saving, polling, locking)
in its own task group; nothing here starts a loose task.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from cs3collab.cs3 import Session
from cs3collab.service import kinds
from cs3collab.service.access import AccessWatcher, TokenChecks
from cs3collab.service.awareness import AwarenessSettings
from cs3collab.service.documents import DocumentKind
from cs3collab.service.journal import Journal
from cs3collab.service.room import Room
from cs3collab.service.storage import RoomStorage, StorageSettings
from cs3collab.service.worker import DocumentWorker

log = logging.getLogger("cs3collab.service.registry")


@dataclass
class LiveRoom:
    """A room, its CS3 side and the task that runs them."""

    room: Room
    storage: RoomStorage
    access: AccessWatcher
    task: asyncio.Task | None = None
    closer: asyncio.Task | None = None
    closing: asyncio.Future | None = None  # set while the room is being closed
    ready: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class RoomRegistry:
    """Maps room keys (CS3 resource ids) to live rooms.

    Args:
        journal: the journal every room appends to.
        settings: timings of the rooms' CS3 side.
        close_grace: seconds a room with nobody in it stays open.
        documents_worker: where parsing, building and serializing documents run.
        access_recheck: seconds between re-checks of each participant's access.
        awareness: how rooms guard and relay awareness (see awareness.py).
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
    ) -> None:
        self.journal = journal
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
            room = Room(key, kind, file_id, self.journal, self.awareness)
            storage = RoomStorage(room, resource_id, self.settings, self.documents_worker)
            live = LiveRoom(room, storage, AccessWatcher(room, resource_id, self.access_recheck, self.tokens))
            storage.before_save = live.access.check  # nobody who lost access is saved as
            self.rooms[key] = live
            try:
                await kinds.adopt_journal(self.journal, key, kind)  # one history, one schema
                await live.storage.load(session)
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
        return live

    async def _free_for_other_kind(self, key: str, live: LiveRoom, kind: DocumentKind) -> None:
        """Flush and free an empty room so that its file opens as ``kind`` (see kinds.py)."""
        log.info("room freed for another document type room=%s was=%s now=%s", key, live.room.kind.doc_type, kind.doc_type)
        if live.closer is not None:
            live.closer.cancel()
            live.closer = None
        await self._close(key)

    async def _run_room(self, live: LiveRoom) -> None:
        """A room's background work; its failure must not end the other rooms'."""
        try:
            async with asyncio.TaskGroup() as work:
                work.create_task(live.storage.run())
                work.create_task(live.access.run())
        except Exception:
            log.exception("room background work failed room=%s", live.room.key)

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
            await live.storage.close()
            if live.storage.unsaved and not self._stopped.is_set():
                log.warning("room kept open: its last save failed room=%s", key)
                live.closer = self._tasks.create_task(self._close_after_grace(key), name=f"close:{key}")
                return
            if live.task is not None:
                live.task.cancel()
            if live.storage.persisted_seq:
                await self.journal.compact(key, live.storage.persisted_state, live.storage.persisted_seq)
            del self.rooms[key]
            log.info("room closed room=%s unsaved=%s", key, live.storage.unsaved)
        finally:
            closing, live.closing = live.closing, None
            closing.set_result(None)
