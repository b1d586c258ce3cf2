"""Persistence leases: one replica at a time saves, locks and polls a room.

When several service replicas share rooms through Redis (``--redis-url``),
every replica serves the room's participants, but only the holder of the
room's *persistence lease* saves it to CS3, keeps its CS3 lock and polls
the file for outside edits: two replicas must never write one file.

A lease is the Redis key ``P:room:R:lease`` holding ``<replica>:<token>``,
set with ``SET NX PX <ttl>`` semantics (inside a Lua script, so taking it and
numbering it are one step). The token is a *fencing token*: ``INCR`` of
``P:room:R:fence`` at every acquisition, so a later holder always has a
larger token. The holder renews the lease every third of its lifetime; a
holder that dies (or pauses: a stopped process, a long GC, a partitioned
host) stops renewing, the key expires, and the next pass of another
replica's :class:`LeaseKeeper` takes it with a new token.

Takeover time: at most ``ttl`` (the key expiring) plus one renewal
interval ``ttl / 3`` (the other replica's next pass), so 13.3 s with the
default 10 s, within the 15 s the design promises.

Fencing. A paused old holder must not write once another replica took
over. Before each upload and before recording a save, the holder calls
:meth:`LeaseKeeper.check`, which compares its token with the current lease
*atomically in Redis*: after any pause the check is the first thing that
runs, and it fails, so the stale holder drops its save. What a check cannot
close is a pause between a passed check and the upload RPC reaching CS3;
that window is closed by CS3 itself: saves are conditional on the etag the
room last saw, and the new holder's first save changes it, so the stale
upload fails its precondition (docs/architecture.md, "Replicas").

Modelled on the lease-with-fencing-token pattern (Kleppmann, "How to do
distributed locking", 2016; Redis's own ``SET NX PX`` lock recipe); our own
code.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import anyio
import redis.asyncio as aioredis
import redis.exceptions

log = logging.getLogger("cs3collab.service.lease")

#: Default lease lifetime in seconds; renewed every third of it.
DEFAULT_TTL = 10.0

# KEYS: lease, fence. ARGV: replica, ttl_ms. Returns {token, holder}: token > 0
# when this replica holds the lease (new or already its own), 0 otherwise.
_ACQUIRE = """
local current = redis.call('GET', KEYS[1])
if current then
  local holder, token = string.match(current, '^(.*):(%d+)$')
  if holder == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {tonumber(token), holder}
  end
  return {0, holder or current}
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
return {token, ARGV[1]}
"""

# KEYS: lease. ARGV: replica, token, ttl_ms. 1 when renewed, 0 when lost.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] .. ':' .. ARGV[2] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0
"""

# KEYS: lease. ARGV: replica, token. 1 when the lease is still ours.
_CHECK = """
if redis.call('GET', KEYS[1]) == ARGV[1] .. ':' .. ARGV[2] then return 1 end
return 0
"""

# KEYS: lease. ARGV: replica, token. 1 when released.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] .. ':' .. ARGV[2] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""


class LeaseLostError(Exception):
    """This replica no longer holds the room's lease: another one took over
    (after this one paused or lost Redis). Its saves must stop.

    Arguments:
        room: the room key.
        token: the fencing token this replica held.
    """

    def __init__(self, room: str, token: int) -> None:
        self.room = room
        self.token = token
        super().__init__(f"persistence lease of room {room} lost (token {token})")


@dataclass
class Lease:
    """A lease this replica holds: the room and its fencing token."""

    room: str
    token: int


class LeaseKeeper:
    """Takes, renews, checks and releases one replica's room leases.

    Arguments:
        client: the replica's redis-py asyncio client.
        prefix: the journal's key prefix (leases live next to the room's stream).
        replica: this replica's id (the journal's ``replica_id``).
        ttl: lease lifetime in seconds; renewed every ``ttl / 3``.
        on_change: called with the room key whenever this replica takes or
            loses a room's lease (however it learnt it: a pass, a renewal, a
            fence check), so the room starts or stops persisting at once.
        name: what its log lines call a lease (default ``lease``).
    """

    def __init__(self, client: aioredis.Redis, prefix: str, replica: str, ttl: float = DEFAULT_TTL,
                 on_change: Callable[[str], None] | None = None, name: str = "lease") -> None:
        if ttl <= 0:
            raise ValueError(f"lease ttl must be positive, not {ttl}")
        self.client = client
        self.prefix = prefix
        self.replica = replica
        self.ttl = ttl
        self.held: dict[str, Lease] = {}
        self.name = name  # what the logs call it ("lease"; "kernel claim" for kernel_relay's)
        self._on_change = on_change
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._check = client.register_script(_CHECK)
        self._release = client.register_script(_RELEASE)

    @property
    def _ttl_ms(self) -> int:
        return max(1, int(self.ttl * 1000))

    def _keys(self, room: str) -> tuple[str, str]:
        return f"{self.prefix}:room:{room}:lease", f"{self.prefix}:room:{room}:fence"

    async def try_acquire(self, room: str) -> Lease | None:
        """Take ``room``'s lease if nobody holds it (or renew it if this
        replica does); None while another replica holds it."""
        lease_key, fence_key = self._keys(room)
        token, holder = await self._acquire(keys=[lease_key, fence_key], args=[self.replica, self._ttl_ms])
        token = int(token)
        if token == 0:
            return None
        lease = self.held.get(room)
        if lease is None or lease.token != token:
            lease = self.held[room] = Lease(room, token)
            log.info("%s acquired room=%s replica=%s token=%d ttl=%.1f", self.name, room, self.replica, token, self.ttl)
            self._changed(room)
        return lease

    async def renew(self, lease: Lease) -> bool:
        """Extend ``lease``; False (and forgotten) when it was lost."""
        lease_key, _ = self._keys(lease.room)
        if int(await self._renew(keys=[lease_key], args=[self.replica, lease.token, self._ttl_ms])):
            return True
        self._lost(lease)
        return False

    async def check(self, lease: Lease) -> None:
        """Raise :class:`LeaseLostError` unless ``lease`` is still this
        replica's, as Redis sees it now: call before each CS3 write."""
        lease_key, _ = self._keys(lease.room)
        if not int(await self._check(keys=[lease_key], args=[self.replica, lease.token])):
            self._lost(lease)
            raise LeaseLostError(lease.room, lease.token)

    async def release(self, lease: Lease) -> None:
        """Give ``lease`` up (the room closed here), so another replica need
        not wait for it to expire."""
        lease_key, _ = self._keys(lease.room)
        if self.held.pop(lease.room, None) is not None:
            self._changed(lease.room)
        if int(await self._release(keys=[lease_key], args=[self.replica, lease.token])):
            log.info("%s released room=%s replica=%s token=%d", self.name, lease.room, self.replica, lease.token)

    async def holder(self, room: str) -> str | None:
        """The replica holding ``room``'s lease, or None."""
        value = await self.client.get(self._keys(room)[0])
        return None if value is None else value.decode().rpartition(":")[0]

    async def current(self, room: str) -> tuple[str, int] | None:
        """``room``'s lease as Redis holds it now: (replica, token), or None."""
        value = await self.client.get(self._keys(room)[0])
        if value is None:
            return None
        holder, _, token = value.decode().rpartition(":")
        return holder, int(token)

    def _lost(self, lease: Lease) -> None:
        if self.held.get(lease.room) is lease:
            del self.held[lease.room]
        log.warning("%s lost room=%s replica=%s token=%d", self.name, lease.room, self.replica, lease.token)
        self._changed(lease.room)

    def _changed(self, room: str) -> None:
        if self._on_change is not None:
            self._on_change(room)

    async def run(
        self,
        rooms: Callable[[], Iterable[str]],
        on_acquired: Callable[[Lease], Awaitable[None]],
        on_lost: Callable[[Lease], Awaitable[None]],
    ) -> None:
        """Every ``ttl / 3`` s: renew the leases held, and try to take the
        lease of every room in ``rooms()`` (the rooms live on this replica)
        that has none, so a dead holder's rooms are taken over. Calls
        ``on_acquired`` / ``on_lost`` as leases come and go. A Redis error
        skips one pass (leases then run out and are lost, as they must);
        the loop itself only ends when cancelled."""
        while True:
            try:
                await self._pass(set(rooms()), on_acquired, on_lost)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as e:
                log.warning("lease pass failed replica=%s error=%s", self.replica, f"{type(e).__name__}: {e}")
            await anyio.sleep(self.ttl / 3)  # the renewal period itself, not a wait for an event

    async def _pass(self, wanted: set[str], on_acquired, on_lost) -> None:
        for room, lease in list(self.held.items()):
            if room not in wanted:
                await self.release(lease)
            elif not await self.renew(lease):
                await on_lost(lease)
        for room in sorted(wanted - set(self.held)):
            lease = await self.try_acquire(room)
            if lease is not None:
                await on_acquired(lease)
