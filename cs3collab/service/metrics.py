"""Prometheus metrics of the collaboration service: every instrument in one place.

The rest of the service calls the one-line hooks below (``metrics.saved(...)``,
``metrics.update_broadcast(...)``, ...) and never touches prometheus_client
itself, so moving code between modules moves one line. ``GET /metrics`` on
``cs3collab serve`` answers the process's default registry in the Prometheus
text format; when the service runs inside a Jupyter server (embedded mode)
the same metrics appear on jupyter_server's own ``/metrics``.

Counters and histograms are module-level (one process, one service); what is
*live* (rooms, connections, federated participants) is not counted up and
down by hooks but read from the room registries when Prometheus scrapes, so
it can never drift from the truth: see :class:`LiveCollector` and
:func:`watching`.

Names (all prefixed ``cs3collab_``; the table in docs/operations.md):

* ``rooms_live``, ``connections{role}``, ``federated_participants{site}`` (gauges)
* ``updates_received_total``, ``updates_broadcast_total``,
  ``update_fanout_seconds`` (from an update's arrival to its frame being queued
  on every other participant's connection, journal commit included)
* ``journal_commit_seconds`` (one group commit of the journal)
* ``saves_total{outcome}``, ``save_seconds``
* ``cs3_calls_total{method,status}``, ``cs3_call_seconds{method}``
* ``access_refusals_total{reason}``, ``access_revocations_total{reason}``
* ``rooms_released`` (gauge: open rooms holding no document now, idle),
  ``room_releases_total``, ``room_rebuilds_total``, ``room_rebuild_seconds``
  (a released room's documents rebuilt, on its next edit or read)
* ``kernels{state}`` (shared kernels by state, read from the kernel host at
  scrape time), ``kernel_executions_total{site}`` (runs of cells in shared
  kernels, by the runner's site)
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter as Tally
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:  # only for types: the hooks take plain values
    from cs3collab.service.registry import RoomRegistry
    from cs3collab.service.room import Room

PREFIX = "cs3collab"

# Latencies of a keystroke reaching the others: sub-millisecond to seconds.
FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Saves and CS3 calls: milliseconds to tens of seconds.
SLOW_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

UPDATES_RECEIVED = Counter(
    f"{PREFIX}_updates_received", "Document updates received from participants (viewers' included, then dropped)."
)
UPDATES_BROADCAST = Counter(
    f"{PREFIX}_updates_broadcast", "Document changes made durable in the journal and broadcast to a room."
)
FANOUT_SECONDS = Histogram(
    f"{PREFIX}_update_fanout_seconds",
    "Seconds from a change entering a room to its frame being queued for every other participant "
    "(journal commit included).",
    buckets=FAST_BUCKETS,
)
JOURNAL_COMMIT_SECONDS = Histogram(
    f"{PREFIX}_journal_commit_seconds", "Seconds one journal commit (a batch of calls) took.", buckets=FAST_BUCKETS
)
SAVES = Counter(f"{PREFIX}_saves", "Saves of rooms to CS3 by outcome (success, failed).", ["outcome"])
SAVE_SECONDS = Histogram(
    f"{PREFIX}_save_seconds", "Seconds a save to CS3 took (serialize, upload, record).", buckets=SLOW_BUCKETS
)
CS3_CALLS = Counter(
    f"{PREFIX}_cs3_calls", "CS3 gateway calls by method and CS3 status (or gRPC status when no reply came).",
    ["method", "status"],
)
CS3_CALL_SECONDS = Histogram(
    f"{PREFIX}_cs3_call_seconds", "Seconds a CS3 gateway call took, by method.", ["method"], buckets=SLOW_BUCKETS
)
POLLS = Counter(
    f"{PREFIX}_polls",
    "Stat polls of rooms' files for outside edits and locks, by cause (timer; woken: a catch-up poll when an "
    "idle room became active again, or after a failed lock refresh).",
    ["cause"],
)
ACCESS_REFUSALS = Counter(
    f"{PREFIX}_access_refusals",
    "Requests and connections refused for lack of access, by reason (unauthenticated, forbidden).",
    ["reason"],
)
ACCESS_REVOCATIONS = Counter(
    f"{PREFIX}_access_revocations",
    "Participants disconnected because CS3 no longer gives them access, by reason "
    "(access_revoked, session_expired).",
    ["reason"],
)

# -- hooks (one line each at the call site) -------------------------------------------


def update_received() -> None:
    UPDATES_RECEIVED.inc()


def update_broadcast(started: float) -> None:
    """A change is durable and queued for everyone; ``started`` is its
    ``time.perf_counter()`` when it entered the room."""
    UPDATES_BROADCAST.inc()
    FANOUT_SECONDS.observe(time.perf_counter() - started)


def journal_committed(seconds: float) -> None:
    JOURNAL_COMMIT_SECONDS.observe(seconds)


def saved(outcome: str, started: float) -> None:
    """A save attempt ended with ``outcome``; ``started`` from ``time.perf_counter()``."""
    SAVES.labels(outcome).inc()
    SAVE_SECONDS.observe(time.perf_counter() - started)


def cs3_call(method: str, status: str, seconds: float) -> None:
    """The :class:`~cs3collab.cs3.CS3Client` observer: one gateway call done."""
    CS3_CALLS.labels(method, status).inc()
    CS3_CALL_SECONDS.labels(method).observe(seconds)


def polled(cause: str) -> None:
    """A room Stat'ed its file for outside edits: ``timer`` or ``woken``."""
    POLLS.labels(cause).inc()


def refused(reason: str) -> None:
    """A request or connection was refused; only access refusals are counted."""
    if reason in ("unauthenticated", "forbidden"):
        ACCESS_REFUSALS.labels(reason).inc()


def revoked(reason: str) -> None:
    ACCESS_REVOCATIONS.labels(reason).inc()


KERNEL_EXECUTIONS = Counter(
    f"{PREFIX}_kernel_executions", "Cells run in shared kernels, by the runner's site (idp).", ["site"])


ROOM_RELEASES = Counter(f"{PREFIX}_room_releases", "Idle rooms that dropped their documents, keeping their encoded state.")
ROOM_REBUILDS = Counter(f"{PREFIX}_room_rebuilds", "Released rooms whose documents were rebuilt (an edit or a read).")
ROOM_REBUILD_SECONDS = Histogram(
    f"{PREFIX}_room_rebuild_seconds", "Time to rebuild a released room from its encoded state before anything can use it "
    "(both documents, or the checking one alone for a change that came unannounced).",
    buckets=FAST_BUCKETS,
)


def room_released() -> None:
    ROOM_RELEASES.inc()


def room_revived(seconds: float) -> None:
    ROOM_REBUILDS.inc()
    ROOM_REBUILD_SECONDS.observe(seconds)


def kernel_execution(site: str) -> None:
    KERNEL_EXECUTIONS.labels(site or "unknown").inc()


# -- what is live, read at scrape time ---------------------------------------------------


class LiveCollector(Collector):
    """Rooms, connections and federated participants of the watched services."""

    def __init__(self) -> None:
        self.watched: list[tuple[RoomRegistry, Room | None]] = []
        self.kernel_hosts: list[Any] = []  # cs3collab.kernels.host.KernelHost

    def collect(self) -> Iterator[GaugeMetricFamily]:
        rooms = GaugeMetricFamily(f"{PREFIX}_rooms_live", "Rooms open (a document loaded, with or without participants).")
        connections = GaugeMetricFamily(
            f"{PREFIX}_connections",
            "WebSocket connections by role (editor, viewer; awareness: the JupyterLab global awareness room).",
            labels=["role"],
        )
        federated = GaugeMetricFamily(
            f"{PREFIX}_federated_participants",
            "Participants from other institutions (OCM) connected now, by their site (idp).",
            labels=["site"],
        )
        by_role: Tally[str] = Tally({"editor": 0, "viewer": 0, "awareness": 0})
        by_site: Tally[str] = Tally()
        released = GaugeMetricFamily(
            f"{PREFIX}_rooms_released", "Open rooms holding no document now (idle: only their encoded state).")
        live = idle = 0
        for registry, global_room in list(self.watched):
            live += len(registry.rooms)
            for room_live in list(registry.rooms.values()):
                idle += room_live.room.released
                for participant in list(room_live.room.participants):
                    by_role[participant.role] += 1
                    if participant.identity.federated:
                        by_site[participant.identity.idp] += 1
            if global_room is not None:
                by_role["awareness"] += len(global_room.participants)
        rooms.add_metric([], live)
        released.add_metric([], idle)
        for role, count in sorted(by_role.items()):
            connections.add_metric([role], count)
        for site, count in sorted(by_site.items()):
            federated.add_metric([site], count)
        kernels = GaugeMetricFamily(
            f"{PREFIX}_kernels", "Shared kernels by state (starting, idle, busy, restarting, dead).", labels=["state"])
        by_state: Tally[str] = Tally()
        for host in list(self.kernel_hosts):
            for kernel in list(host.kernels.values()):
                if kernel.state != "none":
                    by_state[kernel.state] += 1
        for state, count in sorted(by_state.items()):
            kernels.add_metric([state], count)
        yield rooms
        yield released
        yield connections
        yield federated
        yield kernels

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return self.collect()  # cheap, and names the families for the registry


_LIVE = LiveCollector()
_LIVE_REGISTERED = False


@contextlib.contextmanager
def watching(registry: RoomRegistry, global_room: Room | None = None, kernel_host: Any = None) -> Iterator[None]:
    """Report ``registry``'s rooms and participants (and ``kernel_host``'s
    shared kernels) for the duration of the block."""
    global _LIVE_REGISTERED
    if not _LIVE_REGISTERED:
        REGISTRY.register(_LIVE)
        _LIVE_REGISTERED = True
    entry = (registry, global_room)
    _LIVE.watched.append(entry)
    if kernel_host is not None:
        _LIVE.kernel_hosts.append(kernel_host)
    try:
        yield
    finally:
        _LIVE.watched.remove(entry)
        if kernel_host is not None:
            _LIVE.kernel_hosts.remove(kernel_host)


def exposition(accept: str | None = None) -> tuple[bytes, str]:
    """The body and content type of a ``/metrics`` answer."""
    from prometheus_client.exposition import choose_encoder

    encoder, content_type = choose_encoder(accept or "")
    return encoder(REGISTRY), content_type


def sample(name: str, labels: dict[str, Any] | None = None) -> float | None:
    """One sample's current value in this process (for tests and benchmarks)."""
    return REGISTRY.get_sample_value(name, labels or {})
