"""One replica's link to the others: leases and the cross-replica reader.

Started by the service when its journal is a :class:`RedisJournal`
(``--redis-url``). It owns, in one task group, the replica's
:class:`~cs3collab.service.lease.LeaseKeeper` loop (renew the leases of the
rooms live here, take over those whose holder died) and its
:class:`~cs3collab.service.fanout.RoomBus` (the other replicas' updates and
ephemeral messages). Both are supervised: a Redis error makes them log and
retry, never end quietly; any other error ends the service (the task group
raises).

The room asks :meth:`ReplicaLink.holds` before saving, locking and polling,
and :meth:`ReplicaLink.fence` right before each CS3 write.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

import anyio
import redis.exceptions
from anyio.abc import TaskStatus

from .fanout import RoomBus
from .journal_redis import RedisJournal
from .lease import Lease, LeaseKeeper, LeaseLostError

log = logging.getLogger("cs3collab.service.replicas")


class ReplicaLink:
    """Leases and fan-out of one replica.

    Arguments:
        journal: the replica's running Redis journal.
        lease_seconds: lease lifetime (renewed every third of it).
    """

    def __init__(self, journal: RedisJournal, lease_seconds: float) -> None:
        assert journal.client is not None, "the journal must be running"
        self.journal = journal
        self.leases = LeaseKeeper(journal.client, journal.key_prefix, journal.replica_id, lease_seconds,
                                  on_change=self._changed)
        self.bus = RoomBus(journal)
        self._changes: dict[str, asyncio.Event] = {}

    @property
    def replica(self) -> str:
        return self.journal.replica_id

    def holds(self, room: str) -> Lease | None:
        """This replica's lease on ``room``, or None: only the holder saves."""
        return self.leases.held.get(room)

    async def take(self, room: str) -> Lease | None:
        """Take ``room``'s lease now if nobody holds it (a room opening
        here), rather than at the keeper's next pass; None if another
        replica holds it."""
        try:
            return await self.leases.try_acquire(room)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as e:
            # the room opens all the same; the keeper's next pass takes the lease
            log.warning("lease not taken at open room=%s replica=%s error=%s", room, self.replica,
                        f"{type(e).__name__}: {e}")
            return None

    async def lease_changed(self, room: str) -> None:
        """Return at the next change of this replica's lease on ``room``
        (taken, lost or released)."""
        event = self._changes.get(room)
        if event is None:
            event = self._changes[room] = asyncio.Event()
        await event.wait()

    def _changed(self, room: str) -> None:
        event = self._changes.pop(room, None)
        if event is not None:
            event.set()

    async def fence(self, lease: Lease) -> None:
        """Raise LeaseLostError unless ``lease`` is still ours (before a CS3 write)."""
        await self.leases.check(lease)

    async def still_holds(self, lease: Lease) -> bool:
        """Whether ``lease`` is still this replica's as Redis sees it now:
        the fence before each CS3 write. False too when Redis cannot be
        asked (no write without the check); the save is retried."""
        try:
            await self.leases.check(lease)
        except LeaseLostError:
            return False
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as e:
            log.warning("lease check failed room=%s replica=%s error=%s", lease.room, self.replica,
                        f"{type(e).__name__}: {e}")
            return False
        return True

    # each live room starts and stops its persistence itself (registry.LiveRoom,
    # woken through lease_changed); the keeper's pass only needs to say so in debug
    async def _acquired(self, lease: Lease) -> None:
        log.debug("lease taken by the keeper's pass room=%s replica=%s token=%d", lease.room, self.replica, lease.token)

    async def _lost(self, lease: Lease) -> None:
        log.debug("lease lost at renewal room=%s replica=%s token=%d", lease.room, self.replica, lease.token)

    async def run(self, rooms: Callable[[], Iterable[str]], *,
                  task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run the lease keeper over ``rooms()`` (the rooms live here) and
        the bus until cancelled; on the way out, release every lease so the
        other replicas take over at once."""
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(self.bus.run)
                tg.start_soon(self.leases.run, rooms, self._acquired, self._lost)
                log.info("replica link running replica=%s lease_s=%.1f", self.replica, self.leases.ttl)
                task_status.started()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                for lease in list(self.leases.held.values()):
                    try:
                        await self.leases.release(lease)
                    except Exception as e:  # noqa: BLE001 - Redis gone: the lease expires by itself
                        log.warning("lease release failed room=%s error=%s", lease.room, e)
