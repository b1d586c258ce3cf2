"""A live room's side of the replicas (``--redis-url``): its bus and its lease.

With several service replicas sharing rooms through Redis, every replica
serves its own participants of a room and :class:`RoomReplication` (one per
live room, owned by :class:`~cs3collab.service.registry.LiveRoom`) links
that room to the other replicas:

- it follows the room's stream through the replica's one reader
  (:mod:`~cs3collab.service.fanout`) and shows the other replicas' updates
  here (:meth:`Room.receive_remote <cs3collab.service.room.Room.receive_remote>`);
- it carries the room's ephemeral messages over the room's pub/sub channel,
  one byte saying what follows (the ``BUS_*`` constants below): awareness
  both ways, the lease holder's read-only state, access changes, RAW
  notices, and saves asked on a replica that does not hold the lease;
- it runs the room's CS3 writes (saving, polling, the lock) only while this
  replica holds the room's lease (:mod:`~cs3collab.service.lease`), with the
  fence checked right before each upload.

docs/architecture.md ("Replicas sharing rooms through Redis") has the design.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from cs3collab.service.access import AccessWatcher
from cs3collab.service.logthrottle import LogThrottle
from cs3collab.service.protocol import ProtocolError
from cs3collab.service.room import Room
from cs3collab.service.storage import READ_ONLY, SAVE_FAILED, SAVED, PersistenceMoved, RoomStorage

if TYPE_CHECKING:
    from cs3collab.service.replicas import ReplicaLink

log = logging.getLogger("cs3collab.service.room_replication")
throttle = LogThrottle(60.0)


class _LeaseMoved(Exception):
    """Ends a room's persistence tasks: this replica no longer holds its lease."""


BUS_OUTBOX_MAX = 256
"""Most awareness updates of one room waiting to go to the other replicas;
beyond it the oldest are dropped (awareness is ephemeral; the next state of a
cursor supersedes it)."""

#: The first byte of a room's ephemeral message on the replicas' bus says what follows:
#: an awareness update's payload,
BUS_AWARENESS = b"a"
#: the room's read-only reason as JSON (null: editable again), decided by the lease holder,
BUS_READ_ONLY = b"r"
#: the label of a user whose access a replica found removed or changed (the others check it now),
BUS_ACCESS = b"c"
#: a RAW notice for every participant (JSON: saved, save-failed, a kernel run, a restore, ...),
BUS_NOTICE = b"n"
#: a save asked on a replica that does not hold the lease (JSON {"id"}), and the holder's answer
#: (JSON {"id", "status"}).
BUS_SAVE = b"s"
BUS_SAVED = b"d"
#: a replica that just opened the room (empty), and the lease holder's answer: its
#: save-failed notice while saves fail (JSON, null when saving works), for tabs that join there.
BUS_HELLO = b"h"
BUS_SAVE_PROBLEM = b"p"

HELLO_WAIT = 10.0
"""Seconds a replica that opened a room waits for the room's channel to be
subscribed before it says hello anyway (Redis unreachable: the answer is lost;
the holder's next notice still arrives)."""
SAVE_ELSEWHERE_TIMEOUT = 60.0
"""Seconds a save asked on a replica that does not hold the room's lease
waits for the holder's answer before it is answered ``failed``."""


class RoomReplication:
    """One live room's link to the other replicas (see the module's docstring).

    Args:
        room: the room.
        storage: its CS3 side (told whether it may persist, fenced, its notices relayed).
        access: its access re-checks (their changes told to the other replicas).
        link: this replica's :class:`~cs3collab.service.replicas.ReplicaLink`.
        persist: start the room's CS3 writes in a task group (the owner's
            saving, polling and locking, each supervised).
        save: the owner's save (what a save asked by another replica runs).
        spawn: run ``work()`` in the owner's task group, supervised, under a name.
    """

    def __init__(self, room: Room, storage: RoomStorage, access: AccessWatcher, link: ReplicaLink, *,
                 persist: Callable[[asyncio.TaskGroup], None], save: Callable[[], Awaitable[tuple[str, bool]]],
                 spawn: Callable[[str, Callable[[], Awaitable[None]]], None]) -> None:
        self.room = room
        self.storage = storage
        self.access = access
        self.link = link
        self._persist = persist
        self._save = save
        self._spawn = spawn
        self.seq = 0  # the journal sequence up to which other replicas' updates are in this room
        self._outbox: list[bytes] = []
        self._wakeup = asyncio.Event()
        self._saves_elsewhere: dict[str, asyncio.Future] = {}
        # the holder's save-failed notice while its saves fail, as this replica
        # heard it (its own storage's is None: it does not save)
        self.save_problem: dict | None = None
        room.on_awareness(lambda payload: self.out(BUS_AWARENESS + payload))
        storage.may_persist = self.persists_here
        storage.before_upload = self.fence
        storage.on_read_only = lambda reason: self.out(BUS_READ_ONLY + json.dumps(reason).encode())
        access.on_change = lambda user: self.out(BUS_ACCESS + user.encode())

    @property
    def key(self) -> str:
        return self.room.key

    async def take(self) -> None:
        """Take the room's lease if nobody holds it: the first replica to open
        the room persists it (merges, locks, saves) from the start."""
        await self.link.take(self.key)

    def loaded(self) -> None:
        """The room was loaded from the journal: follow the stream from there."""
        self.seq = self.room.last_seq

    def notice(self, payload: dict) -> None:
        """A RAW notice shown here: to the other replicas' participants too."""
        self.out(BUS_NOTICE + json.dumps(payload).encode())

    # -- the persistence lease -------------------------------------------
    #
    # Every replica serves the room's participants; only the one holding the
    # room's lease (lease.py) saves, locks and polls. Its persistence tasks run
    # while the lease is held and are cancelled the moment this replica learns
    # it lost it (a renewal or a fence check that failed); the fence (a check
    # in Redis of this replica's token) runs again right before each upload.

    def persists_here(self) -> bool:
        return self.link.holds(self.key) is not None

    async def fence(self) -> None:
        lease = self.link.holds(self.key)
        if lease is None:
            raise PersistenceMoved("this replica does not hold the room's lease")
        if not await self.link.still_holds(lease):
            raise PersistenceMoved(f"the room's lease (token {lease.token}) is no longer this replica's")

    async def persist_while_leased(self) -> None:
        while True:
            lease = self.link.holds(self.key)
            if lease is None:
                await self.link.lease_changed(self.key)
                continue
            log.info("room persistence here room=%s path=%s replica=%s token=%d", self.key, self.storage.path,
                     self.link.replica, lease.token)
            await self.storage.adopt_persisted()  # the previous holder's saves are not outside edits
            try:
                async with asyncio.TaskGroup() as persistence:
                    self._persist(persistence)
                    persistence.create_task(self._until_lease_moves(lease))
            except* _LeaseMoved:
                log.warning("room persistence moved away room=%s replica=%s token=%d", self.key,
                         self.link.replica, lease.token)

    async def _until_lease_moves(self, lease) -> None:
        while self.link.holds(self.key) is lease:
            await self.link.lease_changed(self.key)
        raise _LeaseMoved()

    # -- the other replicas ---------------------------------------------
    #
    # Updates: every replica journals its own participants' updates in the
    # room's Redis stream before showing them; the replica's one stream reader
    # (fanout.RoomBus) hands this room the entries the other replicas
    # appended, in stream order, and they are shown here through
    # Room.receive_remote (candidate first, then the live document, then the
    # participants). Its position is the last sequence number read, so an
    # entry is delivered once; a re-delivery (a reload after a gap) has no
    # effect on the document and is not broadcast. Awareness: each awareness
    # update the room relays from its own participants is published on the
    # room's pub/sub channel; the other replicas relay it to theirs.

    async def follow(self) -> None:
        """Follow the other replicas until cancelled (the room's owner supervises it)."""
        bus = self.link.bus
        await bus.subscribe(self.key, self.seq, self._remote_updates, self._remote_gap, self._remote_message)
        log.info("room follows other replicas room=%s replica=%s from_seq=%d", self.key, self.link.replica,
                 self.seq)
        try:
            # the holder says whether saves fail (its notice went out before this replica listened);
            # asked once this replica hears the room's channel, or the answer is lost
            await bus.listening(self.key, HELLO_WAIT)
            self.out(BUS_HELLO)
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
                while self._outbox:
                    message = self._outbox.pop(0)
                    try:
                        await bus.publish(self.key, message)
                    except Exception as exc:  # noqa: BLE001 - Redis down: ephemeral, typing goes on
                        # (a read-only state also travels in the document's state; access is re-checked on a timer)
                        throttle.log(log, logging.WARNING, (self.key, "bus-publish"),
                                     "message not sent to other replicas room=%s replica=%s kind=%r error=%s",
                                     self.key, self.link.replica, message[:1], f"{type(exc).__name__}: {exc}")
        finally:
            await bus.unsubscribe(self.key)

    async def save_elsewhere(self) -> tuple[str, bool]:
        """A save asked here while another replica holds the lease: ask the
        holder over the bus and answer with its status and whether it wrote a
        version (its ``saved`` notice reaches this replica's participants
        first, as at home)."""
        request = uuid.uuid4().hex
        future = asyncio.get_running_loop().create_future()
        self._saves_elsewhere[request] = future
        self.out(BUS_SAVE + json.dumps({"id": request}).encode())
        try:
            async with asyncio.timeout(SAVE_ELSEWHERE_TIMEOUT):
                return await future
        except TimeoutError:
            log.warning("save asked of the lease holder got no answer room=%s replica=%s", self.key,
                        self.link.replica if self.link else "-")
            return "failed", False
        finally:
            self._saves_elsewhere.pop(request, None)

    async def _answer_save(self, request: str) -> None:
        status, new_version = await self._save()
        self.out(BUS_SAVED + json.dumps({"id": request, "status": status, "new": new_version}).encode())

    def out(self, message: bytes) -> None:
        if len(self._outbox) >= BUS_OUTBOX_MAX:
            del self._outbox[0]
        self._outbox.append(message)
        self._wakeup.set()

    async def _remote_updates(self, updates: list[bytes], last_seq: int, authors: dict[str, str]) -> None:
        self.storage.note_authors(authors, last_seq)  # before the change listeners run: a save names them
        self.room.receive_remote(updates, last_seq)
        self.seq = max(self.seq, last_seq)

    async def _remote_gap(self) -> None:
        """Entries this replica had not read were compacted away: take the
        room's whole journal again (what the document has already is no change)."""
        record = await self.room.journal.load(self.key)
        if record is not None:
            shown = self.room.receive_remote(record.updates, record.last_seq)
            self.seq = max(self.seq, record.last_seq)
            log.info("room caught up from the journal room=%s seq=%d changes=%d", self.key, record.last_seq, shown)

    async def _remote_message(self, message: bytes) -> None:
        kind, payload = message[:1], message[1:]
        if kind == BUS_AWARENESS:
            try:
                self.room.receive_remote_awareness(payload)
            except ProtocolError as exc:
                log.warning("awareness from another replica refused room=%s error=%s", self.key, exc)
        elif kind == BUS_READ_ONLY:
            reason = json.loads(payload)
            if reason != self.room.read_only and (reason is None or isinstance(reason, str)):
                # as the holder told its own participants (storage._update_read_only)
                self.room.read_only = reason
                self.room.notify({"type": READ_ONLY, "reason": reason})
                log.info("room read-only state changed room=%s path=%s reason=%s source=replica", self.key,
                         self.storage.path, reason)
        elif kind == BUS_NOTICE:
            notice = json.loads(payload)
            if isinstance(notice, dict):
                if notice.get("type") == SAVE_FAILED:
                    self.save_problem = notice
                elif notice.get("type") == SAVED:
                    self.save_problem = None
                self.room.notify(notice)  # here only: it came from the bus
        elif kind == BUS_HELLO:
            if self.persists_here():
                self.out(BUS_SAVE_PROBLEM + json.dumps(self.storage.save_problem).encode())
        elif kind == BUS_SAVE_PROBLEM:
            problem = json.loads(payload)
            if (problem is None or (isinstance(problem, dict) and problem.get("type") == SAVE_FAILED)) \
                    and problem != self.save_problem and not self.persists_here():
                told = self.save_problem
                self.save_problem = problem
                if problem is not None and told is None:  # nobody here heard it: tell them now
                    self.room.notify(problem)
        elif kind == BUS_SAVE:
            request = json.loads(payload).get("id")
            if isinstance(request, str) and self.persists_here():
                log.info("save asked by another replica room=%s", self.key)
                self._spawn("save-for-replica", lambda: self._answer_save(request))
        elif kind == BUS_SAVED:
            answer = json.loads(payload)
            future = self._saves_elsewhere.get(answer.get("id"))
            if future is not None and not future.done() and isinstance(answer.get("status"), str):
                future.set_result((answer["status"], answer.get("new") is True))
        elif kind == BUS_ACCESS:
            user = payload.decode(errors="replace")
            if any(p.identity.label == user for p in self.room.participants):
                # check that user's access here now rather than at the next tick: the same
                # check, close reason and role message as for a change found here
                log.info("access re-check asked by another replica room=%s user=%s", self.key, user)
                self._spawn("access-now", self.access.check)
        else:
            log.warning("unknown message from another replica room=%s kind=%r", self.key, kind)
