"""One shared kernel per notebook across replicas (``--redis-url``).

With several ``cs3collab serve`` replicas sharing rooms through Redis, a
notebook's shared kernel (:mod:`cs3collab.kernels.host`) still runs in ONE
process: the replica that started it, its **host**. Participants whose
kernel WebSocket lands on another replica are relayed to it:

- **The claim.** The host is recorded in Redis as a lease of its own
  (:class:`~cs3collab.service.lease.LeaseKeeper` under the prefix
  ``P:kernel``: key ``P:kernel:room:K:lease`` = ``<replica>:<token>``, with
  ``lease_seconds`` expiry), taken by the replica whose editor starts the
  kernel, renewed every third of its lifetime while the kernel runs or
  starts, released (and announced) when the kernel dies, is culled or the
  replica stops. It is NOT the room's persistence lease: that lease may move
  between replicas (a holder with nobody to save as hands it over), a
  kernel's variables cannot. Outputs are room edits, journaled in Redis, so
  the host writes them whichever replica saves.
- **The relay.** Each replica has one pub/sub inbox, ``P:kernels:to:<replica>``,
  and all replicas hear ``P:kernels:all`` (a kernel claimed or released). A
  participant's replica forwards each Jupyter message of its channels to the
  host's inbox with the participant's descriptor (channel id, name, user,
  site, role, may run); the host keeps a :class:`RemoteChannel` per remote
  participant in the kernel's channels, so authorization, attribution,
  stdin and the fan-out of iopub are exactly the local ones, and its
  deliveries go back to the participant's replica. A replica re-sends the
  list of its channels of a kernel every ``lease_seconds / 3`` (the host
  forgets channels not re-sent for ``2 × lease_seconds``: their replica
  died). REST status, start, interrupt and restart are asked of the host and
  answered the same way. All publishes of a replica go through one sender,
  in order.
- **Access** stays where the participant is connected: its replica re-checks
  it as for rooms, cuts the channel there (the host is told ``detach``) and
  sends a changed role with the next channel list at once.
- **Failures.** When the host dies (``kill -9``), its claim expires; each
  replica with channels relayed to it notices at its next pass (within
  ``lease_seconds × 4/3``), tells its channels the kernel is ``dead``,
  answers their requests still waiting with an error saying why, and tells
  its participants of the room in words (the ``cs3collab:kernel`` ``died``
  notice). The next run of an editor anywhere claims the kernel afresh, on a
  live replica. A host that finds its claim lost while its kernel runs (it
  paused past the claim's lifetime) takes it back if nobody else did, else
  shuts its kernel down, so there are never two kernels for one notebook for
  longer than that lifetime.

Pub/sub is not stored: a message lost while Redis is unreachable is lost as
on a broken WebSocket (the request is answered when the host is found gone,
or the frontend retries); the claim decides who hosts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis.exceptions

from cs3collab.kernels.model import KernelError, KernelRefused, Runner
from cs3collab.kernels.shared import refusal, status_message
from cs3collab.service.lease import LeaseKeeper
from cs3collab.service.logthrottle import LogThrottle

if TYPE_CHECKING:
    from cs3collab.service.execution import KernelParticipant, SharedExecution

log = logging.getLogger("cs3collab.service.kernel_relay")
throttle = LogThrottle(60.0)

REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
OUTBOX_MAX = 10_000
"""Most messages waiting to be published (Redis unreachable); beyond it the oldest are dropped."""
PENDING_MAX = 1_000
"""Most relayed requests of one notebook remembered for an answer if the host goes away."""
ASK_TIMEOUT = 15.0
"""Seconds a REST call relayed to the host waits (start and restart: plus KernelHost.start_timeout)."""

HOST_LOST = ("The shared kernel of this notebook stopped: the service replica that ran it stopped responding. "
             "Its variables are gone; run a cell to start a new one.")
MOVED = "The shared kernel of this notebook stopped; run the cell again to start a new one."
STOPPED = ("The shared kernel of this notebook stopped: its service replica was shut down. "
           "Its variables are gone; run a cell to start a new one.")
CLAIM_LOST = ("The shared kernel of this notebook stopped: its service replica lost contact with the others. "
              "Its variables are gone; run a cell to start a new one.")


def describe(channel: KernelParticipant) -> dict:
    """What the host needs to know of a participant connected here."""
    return {"ch": channel.channel_id, "name": channel.runner.name, "user": channel.runner.user,
            "uid": channel.participant.identity.uid, "site": channel.runner.site, "role": channel.role,
            "run": channel.can_run}


class RemoteChannel:
    """On the kernel's replica: one participant connected to another replica
    (a :class:`~cs3collab.kernels.model.KernelChannel`)."""

    def __init__(self, relay: KernelRelay, replica: str, key: str, desc: dict) -> None:
        self.relay = relay
        self.replica = replica
        self.key = key
        self.ch = str(desc["ch"])
        self.update(desc)

    def update(self, desc: dict) -> None:
        self.role = str(desc.get("role", "viewer"))
        self._can_run = desc.get("run") is True
        self.runner = Runner(name=str(desc.get("name", "")), user=str(desc.get("user", "")),
                             site=str(desc.get("site", "")))
        self.uid = str(desc.get("uid", ""))  # as a save record names its authors
        self.seen = time.monotonic()

    @property
    def can_run(self) -> bool:
        return self._can_run

    def deliver(self, message: dict) -> None:
        self.relay.send_to(self.replica, {"op": "deliver", "key": self.key, "ch": self.ch, "m": message})

    def close(self, code: int, reason: str) -> None:
        self.relay.send_to(self.replica, {"op": "close", "key": self.key, "ch": self.ch, "code": code,
                                          "reason": reason})


@dataclass(eq=False)
class _Route:
    """On a participant's replica: where one notebook's kernel runs (None: nowhere yet)."""

    key: str
    host: str | None = None
    token: int = 0
    resolved: asyncio.Event = field(default_factory=asyncio.Event)
    pending: dict[str, tuple[Any, dict]] = field(default_factory=dict)  # relayed request msg_id -> (channel, msg)
    lost: str | None = None  # the host last relayed to, once it said its kernel is gone


class KernelRelay:
    """The kernels of one replica's notebooks, wherever they run (see the module's docstring).

    Args:
        client: the replica's redis-py asyncio client (the journal's).
        prefix: the journal's key prefix.
        replica: this replica's id (the journal's).
        ttl: lifetime of a kernel's claim, seconds (CollabService.lease_seconds).
        execution: this replica's shared execution (its kernel host and rooms).
    """

    def __init__(self, client, prefix: str, replica: str, ttl: float, execution: SharedExecution) -> None:
        self.client = client
        self.prefix = prefix
        self.replica = replica
        self.ttl = ttl
        self.execution = execution
        self.claims = LeaseKeeper(client, f"{prefix}:kernel", replica, ttl, name="kernel claim")
        self.routes: dict[str, _Route] = {}
        self.locals: dict[str, tuple[str, Any]] = {}  # channel id -> (key, KernelParticipant) connected here
        self.remote: dict[str, dict[tuple[str, str], RemoteChannel]] = {}  # key -> (replica, ch) -> channel
        self.announce_channel = f"{prefix}:kernels:all"
        self._asks: dict[str, tuple[str, asyncio.Future]] = {}
        self._outbox: list[tuple[str, bytes]] = []
        self._wake = asyncio.Event()
        self._tails: dict[str, asyncio.Task] = {}
        self._tasks: asyncio.TaskGroup | None = None
        self._listening = asyncio.Event()
        self.stopping = False

    def inbox(self, replica: str) -> str:
        return f"{self.prefix}:kernels:to:{replica}"

    def hosts(self, key: str) -> bool:
        return key in self.claims.held

    # -- the replica's tasks -------------------------------------------------------------

    async def run(self, started: asyncio.Future | None = None) -> None:
        """Listen, publish and keep claims until cancelled; then release the claims held."""
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                tasks.create_task(self._listener(), name="kernel relay listener")
                tasks.create_task(self._sender(), name="kernel relay sender")
                tasks.create_task(self._keeper(), name="kernel relay keeper")
                await self._listening.wait()
                log.info("kernel relay running replica=%s claim_s=%.1f", self.replica, self.ttl)
                if started is not None:
                    started.set_result(None)
        finally:
            self._tasks = None
            try:
                async with asyncio.timeout(5):
                    await asyncio.shield(self._stop())
            except (TimeoutError, *REDIS_ERRORS) as e:  # Redis gone: the claims expire by themselves
                log.warning("kernel claims not released replica=%s error=%s", self.replica, type(e).__name__)

    def stop_hosting(self) -> None:
        """The service is stopping: its kernels are about to be shut down. Relayed
        channels are no longer taken on; once the kernels are down, their claims
        are released and the other replicas told in words (on cancel)."""
        self.stopping = True

    async def _stop(self) -> None:
        for key, lease in list(self.claims.held.items()):
            await self._say_why(key, lease.token, "stopped")
            await self.claims.release(lease)
            self._queue(self.announce_channel, {"op": "released", "key": key, "host": self.replica,
                                                "token": lease.token, "words": STOPPED})
        await self._flush()

    def _why_key(self, key: str, host: str, token: int) -> str:
        return f"{self.prefix}:kernel:room:{key}:why:{host}:{token}"

    async def _say_why(self, key: str, token: int, why: str) -> None:
        """Before a claim is released: why its kernel ended, for a replica whose
        keeper finds the claim gone before the announcement arrives (pub/sub
        keeps nothing): ``stopped`` (this replica is shutting down) or ``told``
        (the kernel ended here and its room was told)."""
        await self.client.set(self._why_key(key, self.replica, token), why, ex=max(60, int(self.ttl * 10)))

    async def _why_gone(self, key: str, host: str, token: int) -> str | None:
        """What a host said before its claim on ``key`` went (see _say_why):
        words for the participants here, None when its room was told, and
        HOST_LOST when it said nothing (it died)."""
        try:
            said = await self.client.get(self._why_key(key, host, token))
        except REDIS_ERRORS:
            said = None
        return {b"stopped": STOPPED, b"told": None}.get(said, HOST_LOST)

    def _spawn(self, name: str, coro) -> bool:
        """Run ``coro`` in the relay's task group, supervised; False when the relay is not running."""
        if self._tasks is None:
            coro.close()
            return False

        async def supervised() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("kernel relay task failed task=%s replica=%s", name, self.replica)

        self._tasks.create_task(supervised(), name=name)
        return True

    def _chain(self, key: str, coro) -> None:
        """Run ``coro`` after the previous one of the same notebook: one notebook's
        relayed messages reach its kernel in order, and a kernel that is starting
        holds up only its own notebook's messages."""
        if self._tasks is None:
            coro.close()
            return
        before = self._tails.get(key)

        async def step() -> None:
            if before is not None and not before.done():
                await asyncio.wait([before])
            try:
                await coro
            except Exception:
                log.exception("relayed kernel message failed room=%s replica=%s", key, self.replica)

        task = self._tasks.create_task(step(), name=f"kernel relay:{key}")
        self._tails[key] = task
        task.add_done_callback(lambda t: self._tails.pop(key, None) if self._tails.get(key) is t else None)

    # -- publishing ----------------------------------------------------------------------

    def send_to(self, replica: str, payload: dict) -> None:
        self._queue(self.inbox(replica), payload)

    def _queue(self, channel: str, payload: dict) -> None:
        if len(self._outbox) >= OUTBOX_MAX:
            del self._outbox[0]
            throttle.log(log, logging.WARNING, ("outbox-full",), "kernel relay outbox full, oldest dropped replica=%s",
                         self.replica)
        self._outbox.append((channel, json.dumps(payload, default=str).encode()))
        self._wake.set()

    async def _sender(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        """Publish what waits, in order, in pipelines of up to 200 (one connection each: order kept)."""
        while self._outbox:
            batch = self._outbox[:200]
            del self._outbox[:200]
            try:
                async with self.client.pipeline(transaction=False) as pipe:
                    for channel, data in batch:
                        pipe.publish(channel, data)
                    await pipe.execute()
            except Exception as e:  # noqa: BLE001 - lost, as on a broken WebSocket; the claims decide the rest
                throttle.log(log, logging.WARNING, ("publish",), "kernel messages not relayed replica=%s count=%d "
                             "error=%s", self.replica, len(batch), f"{type(e).__name__}: {e}")

    # -- listening -----------------------------------------------------------------------

    async def _listener(self) -> None:
        backoff = 0.1
        while True:
            pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(self.inbox(self.replica), self.announce_channel)
                self._listening.set()
                backoff = 0.1
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message["type"] == "message":
                        self._received(message["data"])
            except Exception as e:  # noqa: BLE001 - Redis gone (or a bad reply): listen again, never stop
                log.warning("kernel relay redis unavailable replica=%s retry_s=%.1f error=%s", self.replica, backoff,
                            f"{type(e).__name__}: {e}")
                self._listening.set()  # the service runs on; rooms say what Redis's absence means
                await asyncio.sleep(backoff)  # back-off before reconnecting, not a wait for an event
                backoff = min(backoff * 2, 5.0)
            finally:
                await pubsub.aclose()

    def _received(self, data: bytes) -> None:
        try:
            msg = json.loads(data)
            op, key = msg.get("op"), str(msg.get("key"))
            if op == "deliver":
                self._deliver_here(key, msg)
            elif op == "send":
                self._chain(key, self._send_from_replica(msg))
            elif op == "attach":
                self._sync_remote(key, str(msg["from"]), msg.get("channels") or [])
            elif op == "detach":
                self._drop_remote(key, str(msg["from"]), str(msg.get("ch")))
            elif op == "ask":
                self._spawn(f"kernel ask:{key}", self._answer(msg))
            elif op == "answer":
                waiting = self._asks.get(str(msg.get("id")))
                if waiting is not None and not waiting[1].done():
                    waiting[1].set_result(msg)
            elif op == "close":
                local = self.locals.get(str(msg.get("ch")))
                if local is not None:
                    local[1].close(int(msg.get("code", 1011)), str(msg.get("reason", "")))
            elif op == "gone":
                route = self.routes.get(key)
                if route is not None and route.host == msg.get("from"):
                    # its claim is released within a pass; the keeper's next pass looks again
                    # (not at once: that would ping-pong with a host whose kernel is ending)
                    log.info("kernel no longer on its replica room=%s host=%s replica=%s", key, route.host,
                             self.replica)
                    self._host_lost(route, None)
            elif op in ("claimed", "released"):
                words = msg.get("words")
                self._announced(op, key, str(msg.get("host")), int(msg.get("token", 0)),
                                words if isinstance(words, str) else None)
            else:
                log.warning("unknown kernel relay message op=%r replica=%s", op, self.replica)
        except Exception:  # noqa: BLE001 - one bad message must not stop the listener
            log.exception("kernel relay message failed replica=%s", self.replica)

    # -- the participant's replica -----------------------------------------------------

    def attached(self, key: str, channel: KernelParticipant) -> None:
        """A channel connected here: find where its kernel runs and join it there."""
        self.locals[channel.channel_id] = (key, channel)
        route = self.routes.get(key)
        if route is None:
            route = self.routes[key] = _Route(key)
            if not self._spawn(f"kernel route:{key}", self._resolve(route)):
                route.resolved.set()  # the relay stopped: nothing runs anywhere for this replica
        elif route.host not in (None, self.replica):
            self._attach_list(route)

    def detached(self, key: str, channel: KernelParticipant) -> None:
        if self.locals.pop(channel.channel_id, None) is None:
            return
        route = self.routes.get(key)
        if route is None:
            return
        for msg_id in [m for m, (c, _) in route.pending.items() if c is channel]:
            del route.pending[msg_id]
        if route.host not in (None, self.replica):
            self.send_to(route.host, {"op": "detach", "key": key, "from": self.replica, "ch": channel.channel_id})
        if not self._here(key):
            del self.routes[key]

    def changed(self, key: str) -> None:
        """A participant's role changed here: the host learns it now."""
        route = self.routes.get(key)
        if route is not None and route.host not in (None, self.replica):
            self._attach_list(route)

    def _here(self, key: str) -> list:
        return [channel for k, channel in self.locals.values() if k == key]

    def _attach_list(self, route: _Route) -> None:
        assert route.host is not None
        self.send_to(route.host, {"op": "attach", "key": route.key, "from": self.replica,
                                  "channels": [describe(c) for c in self._here(route.key)]})

    async def _resolve(self, route: _Route) -> None:
        try:
            current = await self.claims.current(route.key)
            if current is not None and current[0] != self.replica and self.routes.get(route.key) is route:
                self._set_host(route, *current)
        except REDIS_ERRORS as e:
            log.warning("kernel host not found room=%s replica=%s error=%s", route.key, self.replica,
                        f"{type(e).__name__}: {e}")
        finally:
            route.resolved.set()  # whatever happened: a send never waits on it

    async def remote_host(self, key: str, *, starting: bool) -> str | None:
        """The replica running ``key``'s kernel when it is another one; None when
        it runs here, or runs nowhere and ``starting`` is false. With
        ``starting`` (an editor's request), a kernel running nowhere is claimed
        for this replica, which then starts it."""
        if self.hosts(key):
            return None
        try:
            route = self.routes.get(key)
            if route is not None:
                try:  # the claim's first look, asked when the channel attached
                    await asyncio.wait_for(route.resolved.wait(), ASK_TIMEOUT)
                except TimeoutError:
                    log.warning("kernel host still unknown room=%s replica=%s", key, self.replica)
                if route.host not in (None, self.replica):
                    return route.host
            else:
                current = await self.claims.current(key)
                if current is not None and current[0] != self.replica:
                    return current[0]
            if not starting:
                return None
            for _attempt in range(3):
                lease = await self.claims.try_acquire(key)
                if lease is not None:
                    self._claimed(key, lease.token)
                    return None
                current = await self.claims.current(key)
                if current is not None:
                    route = self.routes.get(key)
                    if route is not None:
                        self._set_host(route, *current)
                    return current[0]
        except REDIS_ERRORS as e:
            log.warning("kernel host unknown room=%s replica=%s error=%s", key, self.replica,
                        f"{type(e).__name__}: {e}")
            raise KernelError("the shared kernel cannot be reached now (the service lost its Redis); "
                              "try again in a moment") from None
        raise KernelError("the replica of the shared kernel could not be decided; try again")

    def _claimed(self, key: str, token: int) -> None:
        route = self.routes.get(key)
        if route is not None:
            if route.host not in (None, self.replica):
                self._host_lost(route, HOST_LOST)
            route.host, route.token = self.replica, token
        log.info("kernel hosted here room=%s replica=%s token=%d", key, self.replica, token)
        self._queue(self.announce_channel, {"op": "claimed", "key": key, "host": self.replica, "token": token})

    def _set_host(self, route: _Route, host: str, token: int) -> None:
        if route.host == host:
            route.token = token
            return
        if route.host not in (None, self.replica):
            self._host_lost(route, HOST_LOST)  # another kernel now: the one relayed to is gone
        route.host, route.token = host, token
        log.info("kernel channels relayed room=%s host=%s replica=%s channels=%d", route.key, host, self.replica,
                 len(self._here(route.key)))
        self._attach_list(route)
        slot = self.execution.host.get(route.key)
        if slot is not None:  # viewers' questions waiting here for a kernel: to the kernel's replica
            for channel, message in slot.take_deferred():
                if getattr(channel, "channel_id", None) in self.locals:
                    self.forward(host, route.key, channel, message)

    def _host_lost(self, route: _Route, words: str | None) -> None:
        """The kernel relayed to is gone. ``words``: the host could not say it
        (it died): tell this replica's channels and participants here."""
        host, token = route.host, route.token
        route.host, route.token = None, 0
        route.lost = host if words is None else None
        pending, route.pending = route.pending, {}
        for channel, message in pending.values():
            for reply in refusal(message, words or MOVED):
                channel.deliver(reply)
        for request, (asked, future) in list(self._asks.items()):
            if asked == host and not future.done():
                future.set_exception(KernelError(words or MOVED))
        if words is None:
            return
        self._spawn(f"kernel settle:{route.key}", self._settle(route.key, host, token, words))
        log.warning("kernel gone with its replica room=%s host=%s replica=%s channels=%d", route.key, host,
                    self.replica, len(self._here(route.key)))
        dead = status_message("dead")
        for channel in self._here(route.key):
            channel.deliver(dead)
        live = self.execution.registry.rooms.get(route.key)
        if live is not None:
            from cs3collab.service.execution import RAW_KERNEL

            # this replica's participants only: each replica tells its own
            live.room.notify({"type": RAW_KERNEL, "event": "died", "message": words})

    async def _settle(self, key: str, host: str | None, token: int, words: str) -> None:
        """The cells the gone kernel was running are marked ended with ``words``,
        by one replica only (the first to claim the job in Redis), and only
        while no new kernel runs: a new kernel's start settles them itself."""
        current = await self.claims.current(key)
        if current is not None and current[0] != host:
            return
        job = f"{self.prefix}:kernel:room:{key}:settled:{host}:{token}"
        if not await self.client.set(job, self.replica, nx=True, ex=max(60, int(self.ttl * 10))):
            return
        await self.execution.settle_cells(key, words)

    def _announced(self, op: str, key: str, host: str, token: int, words: str | None) -> None:
        if host == self.replica:
            return
        route = self.routes.get(key)
        if route is None:
            return
        log.info("kernel %s elsewhere room=%s host=%s replica=%s relayed_to=%s", op, key, host, self.replica,
                 route.host)
        if op == "claimed":
            self._set_host(route, host, token)
            route.resolved.set()
        elif route.host == host:  # released: its kernel is gone (the room was told, unless words say it here)
            self._host_lost(route, words)
        elif route.host is None and route.lost == host and words:  # it said "gone" first, now why
            route.host = host
            self._host_lost(route, words)

    def forward(self, host: str, key: str, channel: KernelParticipant, message: dict) -> None:
        """One participant's message to the kernel on ``host``."""
        route = self.routes.get(key)
        header = message["header"]
        if route is not None and message.get("channel") != "stdin" and header["msg_type"].endswith("_request"):
            if len(route.pending) >= PENDING_MAX:
                del route.pending[next(iter(route.pending))]
            route.pending[header["msg_id"]] = (channel, message)
        self.send_to(host, {"op": "send", "key": key, "from": self.replica, "ch": describe(channel), "m": message})

    def _deliver_here(self, key: str, msg: dict) -> None:
        local = self.locals.get(str(msg.get("ch")))
        if local is None:
            return
        message = msg["m"]
        route = self.routes.get(key)
        if route is not None and message.get("channel") in ("shell", "control"):
            route.pending.pop((message.get("parent_header") or {}).get("msg_id"), None)
        local[1].deliver(message)

    async def ask(self, host: str, key: str, action: str, who: dict) -> dict:
        """A REST action (status, start, interrupt, restart) done by the host; its status answer."""
        request = uuid.uuid4().hex
        future = asyncio.get_running_loop().create_future()
        self._asks[request] = (host, future)
        self.send_to(host, {"op": "ask", "id": request, "key": key, "from": self.replica, "action": action,
                            "who": who})
        timeout = ASK_TIMEOUT + (self.execution.host.start_timeout if action in ("start", "restart") else 0)
        try:
            async with asyncio.timeout(timeout):
                answer = await future
        except TimeoutError:
            raise KernelError("the service replica running this notebook's kernel did not answer") from None
        finally:
            self._asks.pop(request, None)
        if answer.get("ok"):
            return answer["status"]
        if answer.get("kind") == "refused":
            raise KernelRefused(str(answer.get("words", "")))
        raise KernelError(str(answer.get("words", "")))

    # -- the kernel's replica ------------------------------------------------------------

    def _slot(self, key: str):
        """The kernel of ``key`` if it runs (or starts) here under this replica's claim."""
        slot = self.execution.host.get(key)
        if not self.hosts(key) or slot is None or not (slot.alive or slot._starting is not None):
            return None
        return slot

    def _sync_remote(self, key: str, replica: str, descs: list) -> None:
        if self.stopping:
            return  # its claims are released (and announced) once its kernels are down
        slot = self._slot(key)
        if slot is None:
            self.send_to(replica, {"op": "gone", "key": key, "from": self.replica})
            return
        mine = self.remote.setdefault(key, {})
        wanted = {str(d["ch"]): d for d in descs if isinstance(d, dict) and d.get("ch")}
        for (where, ch), channel in list(mine.items()):
            if where == replica and ch not in wanted:
                del mine[(where, ch)]
                slot.detach(channel)
        for ch, desc in wanted.items():
            channel = mine.get((replica, ch))
            if channel is None:
                channel = mine[(replica, ch)] = RemoteChannel(self, replica, key, desc)
                slot.attach(channel)
            else:
                channel.update(desc)

    def _drop_remote(self, key: str, replica: str, ch: str) -> None:
        channel = self.remote.get(key, {}).pop((replica, ch), None)
        slot = self.execution.host.get(key)
        if channel is not None and slot is not None:
            slot.detach(channel)
            self.execution.host.released(key)

    async def _send_from_replica(self, msg: dict) -> None:
        key, replica, desc, message = str(msg["key"]), str(msg["from"]), msg["ch"], msg["m"]
        slot = self._slot(key)
        if self.stopping:
            for reply in refusal(message, STOPPED):
                self.send_to(replica, {"op": "deliver", "key": key, "ch": desc.get("ch"), "m": reply})
            return
        if slot is None:
            for reply in refusal(message, MOVED):
                self.send_to(replica, {"op": "deliver", "key": key, "ch": desc.get("ch"), "m": reply})
            self.send_to(replica, {"op": "gone", "key": key, "from": self.replica})
            return
        channel = self.remote.setdefault(key, {}).get((replica, str(desc["ch"])))
        if channel is None:
            channel = self.remote[key][(replica, str(desc["ch"]))] = RemoteChannel(self, replica, key, desc)
            slot.attach(channel)
        else:
            channel.update(desc)
        await slot.send(channel, message, self._cannot_start)

    async def _cannot_start(self, root):
        raise KernelError(MOVED)

    async def _answer(self, msg: dict) -> None:
        key, who, action = str(msg["key"]), msg.get("who") or {}, msg.get("action")
        runner = Runner(name=str(who.get("name", "")), user=str(who.get("user", "")), site=str(who.get("site", "")))
        slot = self._slot(key)
        try:
            if slot is None:
                raise KernelError(MOVED)
            if action != "status" and who.get("run") is not True:
                raise KernelRefused(f"only editors {action} the shared kernel")
            notebook = self.execution.notebooks.get(key)
            factory = (self.execution._workspace_factory(key, notebook.session) if notebook is not None
                       else self._cannot_start)
            if action == "start":
                await slot.ensure_started(runner, factory)
            elif action == "interrupt":
                await slot.interrupt(runner)
            elif action == "restart":
                if slot.alive:
                    await slot.restart(runner)
                else:
                    await slot.ensure_started(runner, factory)
            elif action != "status":
                raise KernelError(f"no kernel action {str(action)[:40]!r}")
            answer = {"ok": True, "status": slot.model()}
        except KernelRefused as exc:
            answer = {"ok": False, "kind": "refused", "words": str(exc)}
        except KernelError as exc:
            answer = {"ok": False, "kind": "error", "words": str(exc)}
        except Exception as exc:  # noqa: BLE001 - answered, never left waiting
            log.exception("relayed kernel action failed room=%s action=%s user=%s", key, action, runner.user)
            answer = {"ok": False, "kind": "error", "words": f"the shared kernel failed: {exc}"}
        self.send_to(str(msg["from"]), {"op": "answer", "id": msg.get("id"), **answer})

    async def vacate(self, key: str) -> None:
        """The kernel of ``key`` ended here (died, culled, never started): release
        its claim and say so; the next start may be on any replica."""
        slot = self.execution.host.get(key)
        for channel in self.remote.pop(key, {}).values():
            if slot is not None:
                slot.detach(channel)
        if slot is not None:
            self.execution.host.released(key)
        lease = self.claims.held.get(key)
        if lease is None:
            return
        route = self.routes.get(key)
        if route is not None and route.host == self.replica:
            route.host, route.token = None, 0
        try:
            await self._say_why(key, lease.token, "stopped" if self.stopping else "told")
            await self.claims.release(lease)
        except REDIS_ERRORS as e:  # it expires by itself
            log.warning("kernel claim not released room=%s replica=%s error=%s", key, self.replica, e)
        log.info("kernel no longer hosted here room=%s replica=%s token=%d", key, self.replica, lease.token)
        announcement = {"op": "released", "key": key, "host": self.replica, "token": lease.token}
        if self.stopping:  # its kernels are being shut down: nobody else tells the other replicas' rooms
            announcement["words"] = STOPPED
        self._queue(self.announce_channel, announcement)

    # -- the keeper: claims renewed, hosts watched --------------------------------------

    async def _keeper(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)  # the renewal period itself, not a wait for an event
            try:
                await self._pass()
            except REDIS_ERRORS as e:
                throttle.log(log, logging.WARNING, ("pass",), "kernel claim pass failed replica=%s error=%s",
                             self.replica, f"{type(e).__name__}: {e}")
            except Exception:  # noqa: BLE001 - logged; the next pass tries again
                log.exception("kernel claim pass failed replica=%s", self.replica)

    async def _pass(self) -> None:
        now = time.monotonic()
        for key, lease in list(self.claims.held.items()):
            slot = self.execution.host.get(key)
            if slot is None or not (slot.alive or slot._starting is not None):
                await self.vacate(key)
                continue
            if not await self.claims.renew(lease):
                await self._claim_lost(key, slot)
                continue
            for (where, ch), channel in list(self.remote.get(key, {}).items()):
                if now - channel.seen > 2 * self.ttl:  # its replica stopped re-sending it: gone
                    log.info("relayed kernel channel expired room=%s user=%s replica=%s", key, channel.runner.user,
                             where)
                    self._drop_remote(key, where, ch)
        for key, route in list(self.routes.items()):
            if self.hosts(key):
                continue
            current = await self.claims.current(key)
            if self.routes.get(key) is not route:
                continue
            if route.host not in (None, self.replica):
                if current is None:
                    # the claim is gone: its host stopped or ended the kernel (and said why first), or died
                    host = route.host
                    words = await self._why_gone(key, host, route.token)
                    if self.routes.get(key) is not route or route.host != host:
                        continue  # its announcement came meanwhile
                    self._host_lost(route, words)  # as its announcement would have
                elif current[0] != route.host:
                    self._host_lost(route, HOST_LOST)  # another kernel now: the one relayed to is gone
            if current is not None and current[0] != self.replica:
                if route.host == current[0]:
                    route.token = current[1]
                    self._attach_list(route)  # also the host's sign that these channels live
                else:
                    self._set_host(route, *current)

    async def _claim_lost(self, key: str, slot) -> None:
        """This replica's claim on a running kernel expired (it paused, or lost
        Redis): take it back if nobody else did, else stop this kernel."""
        lease = await self.claims.try_acquire(key)
        if lease is not None:
            log.warning("kernel claim taken back room=%s replica=%s token=%d", key, self.replica, lease.token)
            return
        log.error("kernel claim lost to another replica, stopping this kernel room=%s replica=%s", key, self.replica)
        await slot.shutdown("its service replica lost contact with the others")  # words for its runs
        await self.execution.kernel_event(key, "died", CLAIM_LOST)
