"""``cs3collab serve``: the collaboration service of one site.

A plain tornado server configured with traitlets (every setting below is a
documented trait, settable on the command line as ``--Name=value``, with the
short aliases listed in ``aliases``, or in a config file given with
``--config``). It talks to the site's CS3 gateway with the callers' tokens
and keeps its journal in ``--state-dir``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import tornado.httpserver
import tornado.netutil
import tornado.web
from traitlets import Bool, CaselessStrEnum, Float, Int, Type, Unicode, default, validate
from traitlets.config import Application, TraitError

from cs3collab.cs3 import CS3Client
from cs3collab.kernels.host import KernelHost
from cs3collab.service.awareness import AwarenessSettings
from cs3collab.service.documents import TEXT_FILE
from cs3collab.service.execution import SharedExecution
from cs3collab.service.kernel_relay import KernelRelay
from cs3collab.service.handlers import GLOBAL_AWARENESS, RoomHandler, ServiceContext, SessionHandler
from cs3collab.service.federation import FederatedLogin
from cs3collab.service import memory, metrics
from cs3collab.service.health import HealthHandler, MetricsHandler, ReadyHandler
from cs3collab.service.federation_handlers import OCMContentHandler, OCMWebappHandler
from cs3collab.service.webapp_live import LiveViewHandler, ViewScriptHandler
from cs3collab.service.identity import Authenticator, RecentAccess
from cs3collab.service.kernel_handlers import kernel_routes
from cs3collab.service.journal import Journal, JournalError
from cs3collab.service.journal_redis import RedisJournal
from cs3collab.service.journal_sqlite import SQLiteJournal
from cs3collab.service.guard import DocumentLimits
from cs3collab.service.limits import ConnectionLimits
from cs3collab.service.logformat import use_log_format
from cs3collab.service.registry import RoomRegistry
from cs3collab.service.replicas import ReplicaLink
from cs3collab.service.room import Room
from cs3collab.service.storage import StorageSettings
from cs3collab.service.worker import DocumentWorker
from cs3collab.service.version_handlers import (
    RestoreHandler,
    TagHandler,
    TagsHandler,
    VersionContentHandler,
    VersionListHandler,
)

log = logging.getLogger("cs3collab.service")


class CollabService(Application):
    """The collaboration service: rooms, journal, persistence to CS3."""

    name = "cs3collab-serve"
    # their settings (SQLiteJournal.*, RedisJournal.*, KernelHost.*) are the service's too
    classes = [SQLiteJournal, RedisJournal, KernelHost]
    description = "Serve live notebook rooms for files stored in CS3."

    aliases = {
        "gateway": "CollabService.gateway",
        "ip": "CollabService.ip",
        "port": "CollabService.port",
        "state-dir": "CollabService.state_dir",
        "redis-url": "CollabService.redis_url",
        "config": "CollabService.config_file",
        "save-quiet": "CollabService.save_quiet",
        "save-ceiling": "CollabService.save_ceiling",
        "poll-interval": "CollabService.poll_interval",
        "close-grace": "CollabService.close_grace",
        "idle-release": "CollabService.idle_release",
        "lock-lifetime": "CollabService.lock_lifetime",
        "access-recheck": "CollabService.access_recheck",
        "max-frame-size": "CollabService.max_frame_size",
        "max-nesting-depth": "CollabService.max_nesting_depth",
        "max-cells": "CollabService.max_cells",
        "log-level": "Application.log_level",
        "log-style": "CollabService.log_style",
    }

    gateway = Unicode(help="host:port of the site's CS3 gateway (gRPC). Required.").tag(config=True)
    ip = Unicode("127.0.0.1", help="Address to listen on. Default: loopback only.").tag(config=True)
    port = Int(0, help="Port to listen on; 0 picks a free port (printed on the ready line).").tag(config=True)
    state_dir = Unicode(
        help="Folder for the journal and the session id; created if missing. Required."
    ).tag(config=True)
    config_file = Unicode("", help="A traitlets config file (.py or .json) to load before the command line.").tag(
        config=True
    )
    save_quiet = Float(
        1.0, help="Seconds without edits after which a room is saved to CS3 (default 1)."
    ).tag(config=True)
    save_ceiling = Float(
        10.0, help="Longest time in seconds an edit waits to be saved under continuous typing (default 10)."
    ).tag(config=True)
    poll_interval = Float(
        2.0, help="Seconds between Stat polls that detect changes made outside the room (default 2)."
    ).tag(config=True)
    poll_idle_interval = Float(
        30.0,
        help="Seconds between Stat polls of a room nobody edited (here or outside CS3) for poll_active_window "
        "seconds and does not hold its CS3 lock (see poll_locked_interval): such a room costs 1/poll_idle_interval "
        "CS3 calls per second, and an outside edit to it is seen within this time, after which the room polls every poll_interval again (default 30; a value not above "
        "poll_interval turns adaptive polling off). Each room's interval is spread by up to 20 %.",
    ).tag(config=True)
    poll_locked_interval = Float(
        120.0,
        help="Seconds between Stat polls of an idle room (see poll_idle_interval) that holds its CS3 lock "
        "(default 120; a value not above poll_idle_interval gives such rooms poll_idle_interval). While the lock "
        "is the room's, CS3 refuses uploads, moves, deletes and version restores that do not present its id, so "
        "only a writer below CS3 or one presenting the room's lock id can change the file; a failed lock "
        "refresh, and the room's first edit or join after idleness, poll at once. A room without its lock "
        "(another app's lock, locks unsupported) polls every poll_idle_interval.",
    ).tag(config=True)
    poll_active_window = Float(
        60.0, help="Seconds after the last edit (here or outside) during which a room polls every poll_interval (default 60)."
    ).tag(config=True)
    save_jitter = Float(
        0.3,
        help="Fraction of save_ceiling by which rooms' forced-save deadlines are spread (each room keeps its own, "
        "from its key), so rooms typed in together do not all save in the same second (default 0.3: a 10 s ceiling "
        "becomes 7-10 s; 0: every room uses save_ceiling).",
    ).tag(config=True)
    close_grace = Float(
        60.0, help="Seconds a room with no participant stays open before it is flushed and freed (default 60)."
    ).tag(config=True)
    idle_release = Float(
        60.0,
        help="Seconds without a change after which a room (nothing unsaved, nothing in flight) drops its live "
        "document and its schema guard's copy and keeps only its encoded Y state: enough to sync joiners and "
        "reconnecting tabs; the next edit or read rebuilds them (a 1000-cell notebook: tens of ms). "
        "0 keeps every open room's documents (default 60).",
    ).tag(config=True)
    malloc_mmap_threshold = Int(
        256 * 1024,
        help="Bytes from which glibc serves an allocation with its own mapping, returned to the system when "
        "freed (mallopt M_MMAP_THRESHOLD). glibc's own threshold grows to 32 MB after the first large block "
        "is freed, so multi-MB Y updates (large notebooks' opens, syncs, saves) then fragment the heap and idle "
        "rooms keep about twice the memory; 0 leaves glibc's default (default 262144).",
    ).tag(config=True)
    gc_freeze = Bool(
        True,
        help="Once `serve` has started, move every object Python's garbage collector then tracks (the "
        "modules, classes and functions of the service and its libraries: about 350 000 objects) out of "
        "its reach (gc.freeze). Every full collection otherwise walks them all again, which took 160-200 ms "
        "on the loop under load, a pause in every room; with them frozen it walks only the rooms' and "
        "connections' objects. Cyclic garbage made before the start is then never collected (it is "
        "collected just before the freeze). Embedded mode (the Jupyter extension) never freezes "
        "(default true).",
    ).tag(config=True)
    gc_full_every = Int(
        100,
        min=1,
        help="With gc_freeze: young-generation collections between two full collections at least (the "
        "third value of gc.set_threshold; Python's default is 10). Frozen, the startup objects no longer "
        "count towards when a full collection is due, so with Python's default they come about five times "
        "as often, each one a pause of 20-50 ms under load; 100 keeps them about as rare as before the "
        "freeze (default 100).",
    ).tag(config=True)
    access_recheck = Float(
        5.0,
        help="Seconds between re-checks of every participant's access with CS3 (and before each save): "
        "a removed share disconnects, a changed role applies (default 5; 0 checks only on join and save). "
        "A room join within min(2, this) seconds of the same user's session request for the file uses that "
        "request's answer instead of asking CS3 again (0: every join asks).",
    ).tag(config=True)
    lock_lifetime = Float(
        120.0, help="Lifetime in seconds of the CS3 lock a room holds; refreshed every third of it (default 120)."
    ).tag(config=True)
    max_frame_size = Int(
        16 * 1024 * 1024, help="Largest WebSocket frame accepted, in bytes; larger ones close the connection (default 16 MiB)."
    ).tag(config=True)
    max_pending_bytes = Int(
        64 * 1024 * 1024,
        help="Bytes queued for one client before it is disconnected as too slow (default 64 MiB).",
    ).tag(config=True)
    max_connections_per_user = Int(
        100,
        help="Room WebSockets (documents and the site-wide awareness room) one CS3 user may hold at once; "
        "more are closed with 1003 too_many_connections (default 100; 0: no limit).",
    ).tag(config=True)
    max_connections_per_site = Int(
        2000,
        help="Room WebSockets the users of one site (their identity provider: this site's own, or a partner "
        "institution's for federated users) may hold together; more are closed with 1003 too_many_connections "
        "(default 2000; 0: no limit).",
    ).tag(config=True)
    awareness_rate = Float(
        20.0,
        help="Awareness updates per second relayed for one connection; faster updates are coalesced (the latest "
        "state of each client id is relayed at the end of each 1/rate s interval, never dropped) "
        "(default 20; 0: no limit).",
    ).tag(config=True)
    awareness_ids_per_connection = Int(
        4,
        help="Awareness client ids one connection may introduce (a tab uses one per document); entries for more "
        "are dropped and logged (default 4; 0: no limit).",
    ).tag(config=True)
    max_nesting_depth = Int(
        32,
        help="Deepest nesting of maps and lists an editor may give a cell or the notebook metadata; "
        "a deeper update is refused and its sender disconnected (close 1003 invalid_update) (default 32).",
    ).tag(config=True)
    max_string_length = Int(
        8 * 1024 * 1024,
        help="Longest string (a cell source, an output, a metadata value) an editor may write, in characters; "
        "beyond it the update is refused (default 8388608).",
    ).tag(config=True)
    max_collection_items = Int(
        100_000,
        help="Most elements of one list (outputs, metadata lists) or keys of one map an editor may write; "
        "beyond it the update is refused (default 100000).",
    ).tag(config=True)
    max_cells = Int(
        10_000, help="Most cells a notebook may have; an update beyond it is refused (default 10000)."
    ).tag(config=True)
    max_document_bytes = Int(
        256 * 1024 * 1024,
        help="Largest live document, in bytes of its Y encoding (counted as the encoded document at the last "
        "save or open plus every update accepted since); an update beyond it is refused (default 268435456, 256 MiB).",
    ).tag(config=True)
    token_cache_seconds = Float(
        10.0, help="Seconds a token's WhoAmI answer is reused; 0 asks the gateway on every connection."
    ).tag(config=True)
    lock_app_name = Unicode("cs3collab", help="App name of the CS3 locks rooms take.").tag(config=True)
    redis_url = Unicode(
        "",
        help="Redis URL (redis://HOST:PORT/DB) shared by several replicas of this service: the journal of every "
        "room lives in Redis (RedisJournal.*), and so do the session id and the persistence leases, so any "
        "replica with the same gateway and the same URL serves any room. Redis should run with appendonly yes "
        "(docs/operations.md). Default '': one process, the SQLite journal in --state-dir, no Redis needed.",
    ).tag(config=True)
    lease_seconds = Float(
        10.0,
        help="With redis_url: lifetime in seconds of a room's persistence lease (only its holder saves, locks "
        "and polls the room) and of a shared kernel's claim (only its holder runs the notebook's kernel; the "
        "other replicas relay to it); renewed every third of it, so a dead holder's rooms are taken over by "
        "another replica, and its kernels' participants told, within lease_seconds * 4/3 (default 10: 13.3 s).",
    ).tag(config=True)
    journal_class = Type(
        default_value="cs3collab.service.journal_sqlite.SQLiteJournal",
        klass=object,
        help="Journal backend class (implements cs3collab.service.journal.Journal), used when redis_url is "
        "empty; with redis_url the journal is RedisJournal.",
    ).tag(config=True)

    log_style = CaselessStrEnum(
        ["text", "json"],
        default_value="text",
        help="Log line format on stderr. text (default): 'time LEVEL logger message key=value ...'. "
        "json: one JSON object per line with time, level, logger, event, the message's key=value fields "
        "(room, user, site, ...) as fields of their own, and the message as it would print.",
    ).tag(config=True)
    readiness_timeout = Float(
        5.0, help="Seconds each /readyz check (CS3 gateway answers, journal writable) may take before it fails (default 5)."
    ).tag(config=True)

    @default("log_level")
    def _default_log_level(self) -> int:
        return logging.INFO

    @validate("save_jitter")
    def _fraction(self, proposal):
        if not 0 <= proposal["value"] < 1:
            raise TraitError(f"save_jitter must be in [0, 1), got {proposal['value']}")
        return proposal["value"]

    @validate("max_connections_per_user", "max_connections_per_site", "awareness_rate", "awareness_ids_per_connection")
    def _not_negative(self, proposal):
        if proposal["value"] < 0:
            raise TraitError(f"{proposal['trait'].name} must be 0 (no limit) or positive, got {proposal['value']}")
        return proposal["value"]


    @validate("max_nesting_depth", "max_string_length", "max_collection_items", "max_cells", "max_document_bytes")
    def _positive_limit(self, proposal):
        if proposal["value"] < 1:
            raise TraitError(f"{proposal['trait'].name} must be at least 1, got {proposal['value']}")
        return proposal["value"]

    def document_limits(self) -> DocumentLimits:
        return DocumentLimits(
            max_depth=self.max_nesting_depth,
            max_string=self.max_string_length,
            max_items=self.max_collection_items,
            max_cells=self.max_cells,
            max_document_bytes=self.max_document_bytes,
        )

    @validate("save_quiet", "save_ceiling", "poll_interval", "poll_idle_interval", "poll_active_window",
              "poll_locked_interval", "lock_lifetime",
              "lease_seconds")
    def _positive(self, proposal):
        if proposal["value"] <= 0:
            raise TraitError(f"{proposal['trait'].name} must be positive, got {proposal['value']}")
        return proposal["value"]

    def initialize(self, argv=None) -> None:
        super().initialize(argv)
        if self.config_file:
            path = Path(self.config_file)
            self.load_config_file(path.name, path=str(path.parent))
            super().initialize(argv)  # the command line wins over the file
        if not self.gateway:
            raise TraitError("--gateway is required (host:port of the CS3 gateway)")
        if not self.state_dir:
            raise TraitError("--state-dir is required")
        use_log_format(self.log_style)

    def storage_settings(self) -> StorageSettings:
        return StorageSettings(
            save_quiet=self.save_quiet,
            save_ceiling=self.save_ceiling,
            poll_interval=self.poll_interval,
            poll_idle_interval=self.poll_idle_interval,
            poll_active_window=self.poll_active_window,
            poll_locked_interval=self.poll_locked_interval,
            save_jitter=self.save_jitter,
            lock_lifetime=self.lock_lifetime,
            app_name=self.lock_app_name,
        )

    def awareness_settings(self, *, private: bool = False) -> AwarenessSettings:
        return AwarenessSettings(
            rate=self.awareness_rate, ids_per_connection=self.awareness_ids_per_connection, private=private
        )

    async def _shared_session_id(self, journal: RedisJournal) -> str:
        """The replicas' one session id, kept in Redis (the first replica
        sets it), so a session PUT answered by any replica is valid on all."""
        assert journal.client is not None
        key = f"{journal.key_prefix}:session-id"
        await journal.client.set(key, uuid.uuid4().hex, nx=True)
        return (await journal.client.get(key)).decode()

    def make_journal(self, state_dir: Path) -> Journal:
        """The journal the settings ask for: Redis with redis_url, else
        ``journal_class`` on a file in the state dir."""
        if self.redis_url:
            return RedisJournal(self.redis_url, parent=self)
        if issubclass(self.journal_class, RedisJournal):  # chosen as a class, URL in RedisJournal.url
            return self.journal_class(parent=self)
        return self.journal_class(state_dir / "journal.sqlite3", parent=self)

    def _session_id(self, state_dir: Path) -> str:
        """Stable across restarts, so reconnecting tabs are not told to reload."""
        path = state_dir / "session-id"
        if not path.exists():
            path.write_text(uuid.uuid4().hex)
        return path.read_text().strip()

    def make_app(self, context: ServiceContext, checks: dict | None = None) -> tornado.web.Application:
        routes = [
            (r"/metrics", MetricsHandler),
            (r"/healthz", HealthHandler),
            (r"/readyz", ReadyHandler, {"checks": checks or {}, "timeout": self.readiness_timeout}),
            (r"/api/collaboration/session/(.+)", SessionHandler, {"context": context}),
            (r"/api/collaboration/room/(.+)", RoomHandler, {"context": context}),
            (r"/api/collaboration/versions/([^/]+)/tags", TagsHandler, {"context": context}),
            (r"/api/collaboration/versions/([^/]+)/tags/([^/]+)", TagHandler, {"context": context}),
            (r"/api/collaboration/versions/([^/]+)/([^/]+)/restore", RestoreHandler, {"context": context}),
            (r"/api/collaboration/versions/([^/]+)/([^/]+)", VersionContentHandler, {"context": context}),
            (r"/api/collaboration/versions/([^/]+)", VersionListHandler, {"context": context}),
            (r"/api/collaboration/ocm/([^/]+)/content", OCMContentHandler, {"context": context}),
            (r"/api/collaboration/ocm/([^/]+)/live", LiveViewHandler, {"context": context}),
            (r"/api/collaboration/ocm-view\.js", ViewScriptHandler),
            (r"/api/collaboration/ocm/([^/]+)/?", OCMWebappHandler, {"context": context}),
            *kernel_routes(context),
        ]
        return tornado.web.Application(routes, websocket_max_message_size=self.max_frame_size)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        """The service, listening, for the duration of the block; yields its base URL.

        On exit it stops accepting connections, flushes and closes every room
        (saving what is unsaved), then closes the journal. ``serve`` wraps
        it with signal handling; the Jupyter extension's embedded mode uses
        it as it is.
        """
        if not self.gateway:
            raise TraitError("the CS3 gateway is not set (--gateway=HOST:PORT)")
        state_dir = Path(self.state_dir)
        state_dir.mkdir(parents=True, exist_ok=True)
        if memory.set_mmap_threshold(self.malloc_mmap_threshold):
            log.info("malloc mmap threshold set bytes=%d", self.malloc_mmap_threshold)
        journal = self.make_journal(state_dir)
        async with CS3Client(self.gateway, observer=metrics.cs3_call) as cs3, journal, \
                DocumentWorker() as documents_worker:
            # replicas (--redis-url): leases and the cross-replica reader, which every live room follows
            link = ReplicaLink(journal, self.lease_seconds) if isinstance(journal, RedisJournal) else None
            registry = RoomRegistry(
                journal,
                self.storage_settings(),
                self.close_grace,
                idle_release=self.idle_release,
                documents_worker=documents_worker,
                access_recheck=self.access_recheck,
                awareness=self.awareness_settings(),
                limits=self.document_limits(),
                link=link,
            )
            # the site-wide room carries no file paths (see awareness.py)
            global_room = Room(GLOBAL_AWARENESS, TEXT_FILE, "globalAwareness", journal, self.awareness_settings(private=True))
            global_room.read_only = "global awareness room"
            execution = SharedExecution(KernelHost(parent=self), registry, cs3, self.access_recheck)
            if link is not None:  # one kernel per notebook across replicas, on the replica that started it
                execution.relay = KernelRelay(journal.client, journal.key_prefix, journal.replica_id,
                                              self.lease_seconds, execution)
            context = ServiceContext(
                authenticator=Authenticator(cs3, self.token_cache_seconds),
                federation=FederatedLogin(cs3, self.token_cache_seconds),
                registry=registry,
                session_id=(await self._shared_session_id(journal) if isinstance(journal, RedisJournal)
                            else self._session_id(state_dir)),
                global_room=global_room,
                max_pending=self.max_pending_bytes,
                limits=ConnectionLimits(self.max_connections_per_user, self.max_connections_per_site),
                execution=execution,
                # a join within 2 s of its session PUT uses the PUT's Stat (the re-checks bound revocation)
                recent_access=RecentAccess(min(2.0, self.access_recheck)),
            )
            checks = {"gateway": cs3.ping, "journal": journal.ready}
            try:
                sockets = tornado.netutil.bind_sockets(self.port, self.ip)
            except OSError as exc:  # a taken port: one clear line (run_service), exit status 1
                raise CannotStart(f"cannot listen on {self.ip}:{self.port}: {exc.strerror}") from None
            server = tornado.httpserver.HTTPServer(self.make_app(context, checks), max_body_size=self.max_frame_size)
            url = f"http://{self.ip}:{sockets[0].getsockname()[1]}"
            try:
                with metrics.watching(registry, global_room, execution.host):
                    async with asyncio.TaskGroup() as tasks:
                        registry_started = asyncio.get_running_loop().create_future()
                        registry_task = tasks.create_task(registry.run(registry_started), name="room registry")
                        await registry_started
                        kernels_started = asyncio.get_running_loop().create_future()
                        kernels = tasks.create_task(execution.run(kernels_started), name="shared kernels")
                        await kernels_started
                        link_task = relay_task = None
                        if link is not None:
                            link_task = tasks.create_task(link.run(lambda: list(registry.rooms)), name="replica link")
                        if execution.relay is not None:
                            relay_started = asyncio.get_running_loop().create_future()
                            relay_task = tasks.create_task(execution.relay.run(relay_started), name="kernel relay")
                            await relay_started
                        # accepting only now: a client that reconnects at once (a restart under
                        # load) must not find the rooms' and kernels' owners not yet running
                        server.add_sockets(sockets)
                        log.info("service listening url=%s gateway=%s state=%s", url, self.gateway, state_dir)
                        try:
                            yield url
                        finally:
                            log.info("service stopping: flushing rooms")
                            server.stop()
                            if execution.relay is not None:
                                execution.relay.stop_hosting()
                            execution.stop()  # kernels first: their last outputs go into the rooms
                            await kernels
                            if relay_task is not None:  # their claims released, the other replicas told
                                relay_task.cancel()
                            registry.stop()  # flushes and closes every room; the task group waits for it
                            if link_task is not None:  # leases released once the rooms are flushed
                                await registry_task
                                link_task.cancel()
            finally:
                server.stop()
                for sock in sockets:  # not yet handed to the server if the start failed
                    sock.close()
                await server.close_all_connections()

    async def serve(self) -> None:
        """Run until SIGINT/SIGTERM; print one ready line once listening."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, log_tasks)  # kill -USR1: what every task awaits
        async with self.running() as url:
            if self.gc_freeze:
                frozen = memory.freeze_startup_objects(self.gc_full_every)
                log.info("startup objects frozen out of the garbage collector's reach objects=%d "
                         "full_collection_every=%d", frozen, self.gc_full_every)
            print(f"cs3collab service ready: url={url} gateway={self.gateway}", flush=True)
            await stop.wait()


def log_tasks() -> None:
    """Log every asyncio task of the service with the line it waits at (a
    service that hangs says where, without a debugger)."""
    tasks = sorted(asyncio.all_tasks(), key=lambda t: t.get_name())
    log.warning("asyncio tasks (SIGUSR1) count=%d", len(tasks))
    for task in tasks:
        # the await chain, outermost first (a task's own stack shows only its outermost coroutine)
        chain, awaited = [], task.get_coro()
        while awaited is not None and len(chain) < 20:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is None:
                break
            chain.append(f"{frame.f_code.co_name} ({Path(frame.f_code.co_filename).name}:{frame.f_lineno})")
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
        log.warning("task name=%s awaits=%s", task.get_name(), " > ".join(chain) or "-")


class CannotStart(Exception):
    """The service cannot start for a reason its operator must fix (said in words)."""


def _start_failure(exc: BaseException) -> Exception | None:
    """The reason in words for a start that failed, if it is one (a task
    group on the way out may have wrapped it in an exception group)."""
    if isinstance(exc, (JournalError, CannotStart)):
        return exc
    if isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        return _start_failure(exc.exceptions[0])
    return None


async def run_service(argv: list[str]) -> None:
    app = CollabService()
    app.initialize(argv)
    try:
        await app.serve()
    except BaseException as exc:  # noqa: BLE001 - only a start failure in words is turned into one line
        reason = _start_failure(exc)
        if reason is None:
            raise
        # an unusable or unreachable journal, a port in use: one clear line, exit status 1
        log.error("service cannot start: %s", reason)
        raise SystemExit(f"cs3collab serve: {reason}") from None
