"""Load and failure benchmark (issue 14, point 5): one replica at scale, and two
replicas sharing rooms through Redis with one of them SIGKILLed mid-run.

A benchmark, never a test: it prints a table with each figure, the issue's target
and whether it was met, and returns 0 whatever the figures are.

Scenario "one replica" (for 10, 100 and 300 rooms, each room 10 clients, 2 of them
writing one character at 2 Hz into their own cell): propagation latency p50/p99,
delivered fraction, server CPU (cores), server RSS and, for cs3collab, CS3 calls/s
and saves from its own ``/metrics``; jupyter-server-ydoc gets the same load in the
same run (fresh servers for every size, one server at a time). Saves run: typing
never pauses, so each room is saved at its save ceiling (10 s) during the window.

Scenario "two replicas + Redis": Debian's redis-server on a free loopback port
(AOF, ``appendfsync everysec``), two ``cs3collab serve --redis-url`` replicas, 100
rooms x 10 clients spread over both (client i of room r on replica (r + i) % 2, the
first client opens first, so each replica holds the persistence lease of half the
rooms; the two writers of a room are on different replicas). After the "before"
window, replica 1 is killed with SIGKILL; each of its clients notices its
connection closed and reconnects to replica 2 with its document (session PUT,
WebSocket, sync: what a load balancer and the y-websocket provider do), while its
writers keep typing into their local document. Then the "after" window. Reported:
p99 before and after, delivered in each window, reconnect time, the takeover time
of the killed replica's rooms (lease taken, first save, from replica 2's log lines
stamped as they arrive), and lost edits: a fresh client joins every room on
replica 2 at the end, and every edit a writer made that another client had received
before the kill (acknowledged: the service broadcasts only what Redis holds) must be
in its document; edits not yet received by anyone at the kill are counted too.

The clients are BenchClient from benchmarks/service_bench.py (same latency method:
a recipient counts a writer's update as arrived when its state vector covers it).
All clients run in this process; its own CPU is printed beside each window. Its
cyclic garbage collector is off during the measured windows (collected once before):
its own collections, up to 230 ms with 1000 clients, had been counted as latency.

Beside each end-to-end p99, the service's own share: the p99 of its
``cs3collab_update_fanout_seconds`` (a change entering a room, journal commit
included, until its frame is queued for every other participant) and of
``cs3collab_journal_commit_seconds`` (one batch of journal calls: a SQLite
commit, or a Redis pipeline round trip), read from ``/metrics`` before
and after the window. They are bucket bounds ("<= 10" means between 5 and 10
ms), what the histograms can tell; the rest of the end-to-end figure is the
network, the benchmark's clients and waiting for a core.

Usage (from the repository root)::

    .venv/bin/python benchmarks/replica_bench.py [--quick] [--only one|two] [--json out.json]

``--quick``: 10 rooms, 5 s windows (one replica), 10 rooms (two replicas): a smoke
run of a few minutes. Every process it starts is stopped on exit, Ctrl-C or failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import websockets
from prometheus_client.parser import text_string_to_metric_families

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH_DIR))

from profiling import sampling  # noqa: E402
from service_bench import (  # noqa: E402
    OURS,
    THEIRS,
    BenchClient,
    Ours,
    RoomLatency,
    Target,
    Theirs,
    cpu_seconds,
    fmt,
    gather_limited,
    jupyter_server,
    machine,
    make_notebook,
    percentile,
    rss_bytes,
    state_vector,
)

from cs3collab.cs3 import CS3Client  # noqa: E402
from tests.service.rtc import room_key  # noqa: E402
from tests.support.metrics import CALLS  # noqa: E402
from tests.support.processes import devstack, service  # noqa: E402
from tests.support.redis import redis_server  # noqa: E402

CLIENTS, WRITERS, HZ = 10, 2, 2.0
SERVE_OPTIONS = ("--CollabService.max_connections_per_user=0", "--CollabService.max_connections_per_site=0")
SAVES = re.compile(r'^cs3collab_saves_total\{outcome="success"\} ([0-9.e+]+)$', re.M)


def cpu_waiting() -> float | None:
    """Seconds (since boot) during which at least one task waited for a core
    (Linux pressure stall information, /proc/pressure/cpu "some"); None
    where the kernel does not report it. Over a window, its share of the
    window says how often something was runnable but not running: on this
    2-core machine that, not the service's own work, is what the tails of
    the busiest scenarios track."""
    try:
        with open("/proc/pressure/cpu") as handle:
            for line in handle:
                if line.startswith("some "):
                    return int(line.rsplit("total=", 1)[1]) / 1e6
    except (OSError, ValueError, IndexError):
        return None
    return None


def waiting_share(start: float | None, wall: float) -> float | None:
    end = cpu_waiting()
    return None if start is None or end is None else 100 * (end - start) / wall


def loadavg() -> str:
    with open("/proc/loadavg") as handle:
        return " ".join(handle.read().split()[:3])


async def saves_done(http: httpx.AsyncClient, url: str) -> float:
    match = SAVES.search((await http.get(f"{url}/metrics")).text)
    return float(match.group(1)) if match else 0.0


SERVER_HISTOGRAMS = ("cs3collab_update_fanout_seconds", "cs3collab_journal_commit_seconds")


async def histograms(http: httpx.AsyncClient, urls: list[str]) -> dict[str, list[tuple[float, float]]]:
    """The histograms named in SERVER_HISTOGRAMS, from the /metrics of one or
    several replicas added bucket by bucket: cumulative (upper bound, count)
    pairs per histogram."""
    out: dict[str, list[tuple[float, float]]] = {}
    for url in urls:
        for family in text_string_to_metric_families((await http.get(f"{url}/metrics")).text):
            if family.name not in SERVER_HISTOGRAMS:
                continue
            buckets = [(float(s.labels["le"]), s.value) for s in family.samples if s.name.endswith("_bucket")]
            total = out.get(family.name)
            out[family.name] = buckets if total is None else [(b, n + m) for (b, n), (_, m) in zip(total, buckets)]
    return out


def bucket_quantile(before: list[tuple[float, float]], after: list[tuple[float, float]], q: float) -> float | None:
    """The upper bound (ms) of the bucket holding quantile q of the observations
    made between two readings of one histogram: the server's own share of the
    latency, as coarse as the histogram's buckets."""
    counts = [(bound, a - b) for (bound, a), (_, b) in zip(after, before)]
    total = counts[-1][1] if counts else 0
    if not total:
        return None
    for bound, count in counts:
        if count >= q * total:
            return bound * 1000
    return None


def p99_between(before: dict[str, list[tuple[float, float]]], after: dict[str, list[tuple[float, float]]]) -> dict[str, float | None]:
    """bucket_quantile(0.99) of every histogram of two readings."""
    return {name: bucket_quantile(before.get(name, []), after.get(name, []), 0.99) for name in SERVER_HISTOGRAMS}


async def cs3_calls(http: httpx.AsyncClient, url: str) -> dict[str, float]:
    """The service's CS3 calls so far by method, from its /metrics (through the
    benchmark's client: its 60 s timeout, since a loaded service answers late)."""
    counts: dict[str, float] = {}
    for method, _, value in CALLS.findall((await http.get(f"{url}/metrics")).text):
        counts[method] = counts.get(method, 0) + float(value)
    return counts


# -- clients that survive a dead server -----------------------------------------------


class ReplicaClient(BenchClient):
    """A BenchClient that keeps typing into its document while disconnected and
    can reconnect to another server with that document, as the y-websocket
    provider does."""

    def __init__(self, room: RoomLatency, path: str) -> None:
        super().__init__(room, check_frames=True)
        self.path = path
        self.target: Target | None = None

    async def connect(self, target: Target, http: httpx.AsyncClient, timeout: float = 60.0) -> float:
        self.target = target
        self.room.places[self.cid] = target
        self.synced = asyncio.Event()
        return await self.open(target, http, self.path, timeout)

    @property
    def connected(self) -> bool:
        return self._reader is not None and not self._reader.done()

    async def disconnected(self) -> None:
        if self._reader is not None:
            await asyncio.shield(self._reader)

    async def edit(self, cell: int, recorded: bool) -> bool:
        """One keystroke; False when it could not be sent (it stays in the document)."""
        try:
            await self.type(cell, recorded)
            return True
        except (websockets.ConnectionClosed, OSError):
            return False


@dataclass
class Room:
    path: str
    stats: RoomLatency = field(default_factory=RoomLatency)
    members: list[ReplicaClient] = field(default_factory=list)
    sent: dict[str, int] = field(default_factory=dict)  # window -> recorded updates sent

    @property
    def writers(self) -> list[ReplicaClient]:
        return self.members[:WRITERS]


@dataclass
class Window:
    name: str
    start: float
    end: float


class Load:
    """Rooms of CLIENTS clients, WRITERS of them typing at HZ into their own cell."""

    def __init__(self, rooms: list[Room]) -> None:
        self.rooms = rooms
        self.windows: list[Window] = []
        self.stop_at = float("inf")
        self.failed_sends = 0
        self.crossing: list[bool] = []  # of the samples close_window last took: crossed replicas?

    def window_at(self, t: float) -> Window | None:
        for window in self.windows:
            if window.start <= t < window.end:
                return window
        return None

    async def run(self, started: float) -> None:
        period = 1.0 / HZ

        async def write(room: Room, client: ReplicaClient, cell: int) -> None:
            due = started + random.uniform(0, period)
            while due < self.stop_at:
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                window = self.window_at(due)
                if not await client.edit(cell, window is not None):
                    self.failed_sends += 1
                elif window is not None:
                    room.sent[window.name] = room.sent.get(window.name, 0) + 1
                due += period

        await asyncio.gather(*(write(room, c, 1 + i) for room in self.rooms for i, c in enumerate(room.writers)))

    def expected(self, name: str) -> int:
        return sum(room.sent.get(name, 0) for room in self.rooms) * (CLIENTS - 1)

    async def settle(self, name: str, timeout: float = 5.0) -> list[float]:
        """Wait (bounded) for the window's updates to arrive; its samples."""
        deadline = time.perf_counter() + timeout
        while sum(len(r.stats.samples) for r in self.rooms) < self.expected(name) and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        return [x for r in self.rooms for x in r.stats.samples]

    def close_window(self) -> list[float]:
        """Take the samples so far and stop counting the sends logged so far: a
        late arrival of one of them is not counted in the next window."""
        samples = []
        self.crossing = []
        for room in self.rooms:
            samples += room.stats.samples
            self.crossing += room.stats.crossing
            room.stats.samples, room.stats.crossing = [], []
            for log in room.stats.sends.values():
                log[:] = [(clock, t, False) for clock, t, _ in log]
        return samples

    def distinct_frames(self) -> int:
        return sum(1 for r in self.rooms for v in r.stats.frames.values() if len(v) > 1)


# -- the benchmark's own garbage collector ---------------------------------------------


def pause_collector() -> None:
    """Turn this process's cyclic garbage collector off while it measures.

    This process stamps every arrival. With 1000 clients its own collections
    stalled its event loop (measured 2026-12-06 with gc.callbacks, two-replica
    scenario: young collections of 5-30 ms every ~0.5 s, full ones of
    150-230 ms), and each arrival during one was counted late, as if the
    server were slow. Collected once before, off during the windows (reference
    counting still frees nearly everything), on again after them."""
    gc.collect()
    gc.freeze()
    gc.disable()


def resume_collector() -> None:
    gc.enable()
    gc.unfreeze()


@contextlib.contextmanager
def collector_paused():
    pause_collector()
    try:
        yield
    finally:
        resume_collector()


# -- results ---------------------------------------------------------------------------


class Results:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, float | None, float | None, str, bool | None]] = []
        self.notes: list[str] = []

    def add(self, scenario: str, metric: str, ours: float | None, theirs: float | None = None,
            target: str = "", ok: bool | None = None) -> None:
        self.rows.append((scenario, metric, ours, theirs, target, ok))

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"  {text}", flush=True)

    def table(self) -> str:
        rows = [("scenario", "metric", OURS, THEIRS, "ratio", "target (ours)", "met?")]
        for scenario, metric, ours, theirs, target, ok in self.rows:
            ratio = ours / theirs if ours is not None and theirs not in (None, 0) else None
            mark = "" if ok is None else ("met" if ok else "NOT MET")
            rows.append((scenario, metric, fmt(ours), fmt(theirs), fmt(ratio), target, mark))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths)) + " |" for row in rows]
        lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
        return "\n".join(lines)


@dataclass
class Settings:
    sizes: tuple[int, ...]
    window: float  # seconds measured per one-replica run
    warmup: float
    two_rooms: int
    before: float  # two replicas: seconds measured before the kill
    after: float  # ... and after the reconnects
    takeover_wait: float  # longest wait for the killed replica's rooms to be saved again
    run_limit: float = 100  # longest wait for one server's clients to open (one replica)
    profile: Path | None = None  # py-spy the service processes during each window into this folder


FULL = Settings(sizes=(10, 100, 300), window=20, warmup=3, two_rooms=100, before=20, after=30, takeover_wait=45)
QUICK = Settings(sizes=(10,), window=5, warmup=1, two_rooms=10, before=5, after=10, takeover_wait=45)


# -- scenario: one replica -----------------------------------------------------------------


async def open_all(load: Load, http: httpx.AsyncClient, place) -> float:
    """Open every client (``place(room_index, client_index)`` -> target); the
    first client of each room first, so its server opens the room. Seconds taken."""
    started = time.perf_counter()
    await gather_limited([room.members[0].connect(place(r, 0), http) for r, room in enumerate(load.rooms)], limit=10)
    await gather_limited([c.connect(place(r, i), http) for r, room in enumerate(load.rooms)
                          for i, c in enumerate(room.members) if i > 0], limit=20)
    return time.perf_counter() - started


async def close_all(load: Load) -> None:
    """Close every client, waiting at most 30 s (an overloaded server answers
    closes late; it is stopped next anyway)."""
    closing = asyncio.ensure_future(asyncio.gather(*(c.close() for room in load.rooms for c in room.members),
                                                   return_exceptions=True))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(closing), 30)
    closing.cancel()


async def one_replica_run(target: Target, http: httpx.AsyncClient, rooms: int, settings: Settings,
                          data: bytes) -> dict[str, float]:
    tag = uuid.uuid4().hex[:6]
    paths = await gather_limited([target.add_file(f"load-{tag}-{r}.ipynb", data) for r in range(rooms)], limit=10)
    load = Load([Room(p) for p in paths])
    for room in load.rooms:
        room.members = [ReplicaClient(room.stats, room.path) for _ in range(CLIENTS)]
    try:
        return await measure_load(target, http, settings, load)
    finally:
        await close_all(load)


async def measure_load(target: Target, http: httpx.AsyncClient, settings: Settings, load: Load) -> dict[str, float]:
    try:
        opened = await asyncio.wait_for(open_all(load, http, lambda r, i: target), settings.run_limit)
    except TimeoutError:
        raise RuntimeError(f"{len(load.rooms) * CLIENTS} clients not all open after {settings.run_limit:.0f} s") from None
    with collector_paused():
        return await measure_open_load(target, http, settings, load, opened)


async def measure_open_load(target: Target, http: httpx.AsyncClient, settings: Settings, load: Load,
                            opened: float) -> dict[str, float]:
    await asyncio.sleep(1.0)  # joins and awareness settle
    started = time.perf_counter()
    window = Window("w", started + settings.warmup, started + settings.warmup + settings.window)
    load.windows = [window]
    load.stop_at = window.end
    is_ours = isinstance(target, Ours)

    async def measure() -> dict[str, float]:
        await asyncio.sleep(max(0.0, window.start - time.perf_counter()))
        calls0 = await cs3_calls(http, target.url) if is_ours else {}
        saves0 = await saves_done(http, target.url) if is_ours else 0.0
        hist0 = await histograms(http, [target.url]) if is_ours else {}
        cpu0, own0, t0, load0 = cpu_seconds(target.pid), time.process_time(), time.perf_counter(), loadavg()
        waiting0 = cpu_waiting()
        spied = {f"one-{len(load.rooms)}": target.pid} if is_ours else {}
        async with sampling(spied, window.end - time.perf_counter(), settings.profile):
            await asyncio.sleep(max(0.0, window.end - time.perf_counter()))
        cpu, own, wall = cpu_seconds(target.pid) - cpu0, time.process_time() - own0, time.perf_counter() - t0
        out = {"cpu": cpu / wall, "client_cpu": own / wall, "rss": rss_bytes(target.pid) / 1e6, "load0": load0,
               "load1": loadavg(), "waiting": waiting_share(waiting0, wall)}
        if is_ours:
            calls1 = await cs3_calls(http, target.url)
            out["cs3"] = sum(calls1.values()) - sum(calls0.values())
            out["cs3_by_method"] = {m: (calls1.get(m, 0) - calls0.get(m, 0)) / wall for m in calls1
                                    if calls1.get(m, 0) != calls0.get(m, 0)}
            out["cs3"] /= wall
            out["saves"] = await saves_done(http, target.url) - saves0
            out["server_p99_le"] = p99_between(hist0, await histograms(http, [target.url]))
        return out

    _, figures = await asyncio.gather(load.run(started), measure())
    samples = await load.settle("w")
    expected = load.expected("w")
    figures.update(p50=percentile(samples, 0.5) * 1000, p99=percentile(samples, 0.99) * 1000,
                   delivered=100 * len(samples) / expected if expected else float("nan"), opened=opened,
                   distinct=load.distinct_frames(), samples=len(samples), failed=load.failed_sends)
    return figures


async def one_replica(results: Results, settings: Settings, workdir: Path, site, einstein, folder: str,
                      http: httpx.AsyncClient, data: bytes) -> None:
    token = uuid.uuid4().hex
    for rooms in settings.sizes:
        scenario = f"1 replica, {rooms} rooms x {CLIENTS}"
        print(f"{scenario}: load average {loadavg()}", flush=True)
        figures: dict[str, dict] = {}

        async def measured(name: str, target: Target) -> None:
            try:
                figures[name] = await one_replica_run(target, http, rooms, settings, data)
            except Exception as e:  # a server that cannot take the load: said, and the run goes on
                results.note(f"{name} {scenario}: not measured ({type(e).__name__}: {e}); load average {loadavg()}")

        async with service(site.gateway, workdir / f"svc-{rooms}", extra=SERVE_OPTIONS) as svc:
            await measured(OURS, Ours(svc, einstein, folder))
        root = workdir / f"jupyter-root-{rooms}"
        root.mkdir()
        async with jupyter_server(root, workdir / f"jupyter-home-{rooms}", token) as running:
            await measured(THEIRS, Theirs(running, root, token))
        ours, theirs = figures.get(OURS, {}), figures.get(THEIRS, {})
        check = rooms == 100
        p99 = ours.get("p99")
        results.add(scenario, "latency p50 (ms)", ours.get("p50"), theirs.get("p50"))
        results.add(scenario, "latency p99 (ms)", p99, theirs.get("p99"), "<= 15" if check else "",
                    (p99 is not None and p99 <= 15) if check else None)
        results.add(scenario, "delivered (%)", ours.get("delivered"), theirs.get("delivered"))
        results.add(scenario, "server CPU (cores)", ours.get("cpu"), theirs.get("cpu"))
        results.add(scenario, "server RSS (MB)", ours.get("rss"), theirs.get("rss"))
        results.add(scenario, "a task waiting for a core (% of the window)", ours.get("waiting"), theirs.get("waiting"))
        results.add(scenario, "CS3 calls/s", ours.get("cs3"), None)
        saves = ours.get("saves")
        results.add(scenario, "saves in window", saves, None, "> 0 (saves running)" if check else "",
                    (saves is not None and saves > 0) if check else None)
        server = ours.get("server_p99_le", {})
        results.add(scenario, "in the service: fanout p99 <= (ms)", server.get("cs3collab_update_fanout_seconds"), None)
        results.add(scenario, "in the service: journal commit p99 <= (ms)",
                    server.get("cs3collab_journal_commit_seconds"), None)
        for name, f in figures.items():
            results.note(f"{name} {scenario}: {f['samples']} samples, opened in {f['opened']:.1f} s, bench client "
                         f"CPU {f['client_cpu']:.2f} cores, load average {f['load0']} -> {f['load1']}"
                         + (f", CS3 calls/s by method {', '.join(f'{m} {v:.1f}' for m, v in sorted(f['cs3_by_method'].items()))}"
                            if name == OURS else "")
                         + (f", {f['distinct']} updates with differing frames" if f["distinct"] else "")
                         + (f", {f['failed']} sends failed" if f["failed"] else ""))


# -- scenario: two replicas, one killed --------------------------------------------------------


class LogWatch:
    """First time (perf_counter) each of some rooms' log lines appears in a
    process's output, stamped as it is read (every 50 ms)."""

    def __init__(self, running, keys: list[str], since: int) -> None:
        self.running = running
        self.keys = set(keys)
        self.index = since
        self.lease: dict[str, float] = {}
        self.saved: dict[str, float] = {}

    async def follow(self) -> None:
        lease = re.compile(r"room persistence here room=(\S+) ")
        saved = re.compile(r"saved room=(\S+) ")
        while True:
            lines = self.running.output[self.index:]
            self.index += len(lines)
            now = time.perf_counter()
            for line in lines:
                for pattern, seen in ((lease, self.lease), (saved, self.saved)):
                    match = pattern.search(line)
                    if match and match.group(1) in self.keys and match.group(1) not in seen:
                        seen[match.group(1)] = now
            await asyncio.sleep(0.05)


async def two_replicas(results: Results, settings: Settings, workdir: Path, site, einstein, folder: str,
                       http: httpx.AsyncClient, data: bytes) -> None:
    rooms = settings.two_rooms
    scenario = f"2 replicas + Redis, {rooms} rooms x {CLIENTS}"
    print(f"{scenario}: load average {loadavg()}", flush=True)
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    async with contextlib.AsyncExitStack() as stack:
        redis = await stack.enter_async_context(redis_server(workdir / "redis", appendfsync="everysec"))
        options = (*SERVE_OPTIONS, f"--redis-url={redis.url}", f"--RedisJournal.key_prefix={prefix}")
        one = await stack.enter_async_context(service(site.gateway, workdir / "replica-1", extra=options))
        two = await stack.enter_async_context(service(site.gateway, workdir / "replica-2", extra=options))
        replicas = (Ours(one, einstein, folder), Ours(two, einstein, folder))
        tag = uuid.uuid4().hex[:6]
        paths = await gather_limited([replicas[0].add_file(f"replicas-{tag}-{r}.ipynb", data)
                                      for r in range(rooms)], limit=10)
        keys = await gather_limited([room_key(einstein, p) for p in paths], limit=10)
        load = Load([Room(p) for p in paths])
        for room in load.rooms:
            room.members = [ReplicaClient(room.stats, room.path) for _ in range(CLIENTS)]
        opened = await open_all(load, http, lambda r, i: replicas[(r + i) % 2])
        await asyncio.sleep(1.0)
        held_by_one = [k for k in keys if one.running.count(f"room persistence here room={k} ")]
        killed_rooms = [keys[r] for r in range(rooms) if r % 2 == 0]
        results.note(f"{scenario}: opened {rooms * CLIENTS} clients in {opened:.1f} s; replica 1 holds the lease of "
                     f"{len(held_by_one)} rooms (expected {len(killed_rooms)})")
        on_one = [c for r, room in enumerate(load.rooms) for i, c in enumerate(room.members) if (r + i) % 2 == 0]

        pause_collector()
        started = time.perf_counter()
        before = Window("before", started + settings.warmup, started + settings.warmup + settings.before)
        load.windows = [before]
        writing = asyncio.ensure_future(load.run(started))
        watch = LogWatch(two.running, held_by_one, 0)
        watcher = asyncio.ensure_future(watch.follow())
        try:
            await asyncio.sleep(max(0.0, before.start - time.perf_counter()))
            cpu0 = {p: cpu_seconds(p) for p in (one.running.pid, two.running.pid, redis.running.pid)}
            own0, t0, load_before = time.process_time(), time.perf_counter(), loadavg()
            waiting0 = cpu_waiting()
            saves0 = await saves_done(http, one.url) + await saves_done(http, two.url)
            server0 = await histograms(http, [one.url, two.url])
            spied = {"two-before-1": one.running.pid, "two-before-2": two.running.pid}
            async with sampling(spied, before.end - time.perf_counter(), settings.profile):
                await asyncio.sleep(max(0.0, before.end - time.perf_counter()))
            server_before = p99_between(server0, await histograms(http, [one.url, two.url]))
            wall = time.perf_counter() - t0
            cpu_before = {p: (cpu_seconds(p) - c) / wall for p, c in cpu0.items()}
            own_before = (time.process_time() - own0) / wall
            waiting_before = waiting_share(waiting0, wall)
            saves_before = await saves_done(http, one.url) + await saves_done(http, two.url) - saves0
            await asyncio.sleep(1.0)  # the window's last updates arrive
            samples_before = load.close_window()
            crossing_before = load.crossing
            expected_before = load.expected("before")
            # acknowledged at the kill: the highest clock of each writer that another client has
            acknowledged = {}
            for room in load.rooms:
                for writer in room.writers:
                    acknowledged[writer.cid] = max(state_vector(c.doc).get(writer.cid, 0)
                                                   for c in room.members if c is not writer)
            watch.index = len(two.running.output)
            moved_early = sorted(watch.lease)  # leases replica 2 took while replica 1 lived (it renewed too late)
            watch.lease.clear()
            watch.saved.clear()
            watch.keys -= set(moved_early)
            killed_at = time.perf_counter()
            one.running.process.send_signal(signal.SIGKILL)
            await one.running.process.wait()
            print(f"  replica 1 killed (SIGKILL); {len(on_one)} clients reconnect to replica 2", flush=True)

            noticed: list[float] = []

            refused: list[str] = []

            async def reconnect(client: ReplicaClient) -> float:
                await client.disconnected()
                noticed.append(time.perf_counter() - killed_at)
                for attempt in range(5):
                    try:
                        await client.connect(replicas[1], http, timeout=20)
                        break
                    except (websockets.ConnectionClosed, TimeoutError) as e:
                        # the writer typed while resyncing: its keystroke, sent before its offline
                        # edits reached the server, can be refused (1003 invalid_update); counted,
                        # and the client reconnects again with its document
                        rcvd = getattr(e, "rcvd", None)
                        refused.append(f"{rcvd.code} {rcvd.reason[:80]}" if rcvd else f"{type(e).__name__} {e}")
                        await client.close()  # a sync that timed out leaves the connection open
                return time.perf_counter() - killed_at

            reconnecting = asyncio.ensure_future(gather_limited([reconnect(c) for c in on_one], limit=10))
            try:
                reconnect_times = await asyncio.wait_for(asyncio.shield(reconnecting), 120)
            except TimeoutError:  # measured on, with the clients that made it; the rest are counted
                reconnecting.cancel()
                reconnect_times = [float("nan")]
                refused.append(f"TimeoutError: {sum(not c.connected for c in on_one)} clients not reconnected "
                               f"within 120 s")
            reconnected = time.perf_counter()
            print(f"  reconnects done after {reconnected - killed_at:.1f} s ({len(refused)} refused or timed out)",
                  flush=True)
            after = Window("after", reconnected + 2.0, reconnected + 2.0 + settings.after)
            load.windows.append(after)
            load.stop_at = after.end
            await asyncio.sleep(max(0.0, after.start - time.perf_counter()))
            cpu0 = {p: cpu_seconds(p) for p in (two.running.pid, redis.running.pid)}
            own0, t0, load_after = time.process_time(), time.perf_counter(), loadavg()
            waiting0 = cpu_waiting()
            server0 = await histograms(http, [two.url])
            await writing
            server_after = p99_between(server0, await histograms(http, [two.url]))
            wall = time.perf_counter() - t0
            cpu_after = {p: (cpu_seconds(p) - c) / wall for p, c in cpu0.items()}
            own_after = (time.process_time() - own0) / wall
            waiting_after = waiting_share(waiting0, wall)
            samples_after = await load.settle("after")
            not_reconnected = sum(not c.connected for c in on_one)
            expected_after = load.expected("after")
            # takeover: the killed replica's rooms saved again by replica 2 (bounded wait)
            deadline = killed_at + settings.takeover_wait
            while len(watch.saved) < len(watch.keys) and time.perf_counter() < deadline:
                await asyncio.sleep(0.2)
        finally:
            resume_collector()
            watcher.cancel()
            if not writing.done():
                load.stop_at = 0.0
                with contextlib.suppress(Exception):
                    await writing
        lease_times = sorted(t - killed_at for t in watch.lease.values())
        save_times = sorted(t - killed_at for t in watch.saved.values())
        print(f"  after window done; a fresh client joins each room on replica 2", flush=True)
        # lost edits: a fresh client on replica 2 per room
        await asyncio.sleep(1.0)
        lost_acknowledged = missing = differing = 0
        converge_by = time.perf_counter() + 20  # one bound for all rooms: a writer left disconnected never converges
        for room in load.rooms:
            fresh = BenchClient()
            await fresh.open(replicas[1], http, room.path)
            for cell, writer in enumerate(room.writers, start=1):
                final = state_vector(writer.doc)[writer.cid]
                deadline = converge_by
                while state_vector(fresh.doc).get(writer.cid, 0) < final and time.perf_counter() < deadline:
                    await asyncio.sleep(0.05)
                has = state_vector(fresh.doc).get(writer.cid, 0)
                log = room.stats.sends.get(writer.cid, [])
                missing += sum(1 for clock, _, _ in log if clock > has)
                lost_acknowledged += sum(1 for clock, _, _ in log if has < clock <= acknowledged[writer.cid])
                mine = str(writer.notebook.ycells[cell]["source"])
                theirs = str(fresh.notebook.ycells[cell]["source"])
                differing += mine != theirs
            await fresh.close()
        saves_total = await saves_done(http, two.url)
        await close_all(load)

    p99_before = percentile(samples_before, 0.99) * 1000
    p99_after = percentile(samples_after, 0.99) * 1000
    results.add(scenario, "latency p50 before kill (ms)", percentile(samples_before, 0.5) * 1000)
    results.add(scenario, "latency p99 before kill (ms)", p99_before, None, "<= 25", p99_before <= 25)
    for crossed, label in ((False, "on the writer's replica"), (True, "on the other replica")):
        part = [x for x, c in zip(samples_before, crossing_before) if c is crossed]
        if part:
            results.add(scenario, f"latency p99 before kill, recipients {label} (ms)", percentile(part, 0.99) * 1000)
    results.add(scenario, "in the replicas: fanout p99 before kill <= (ms)", server_before["cs3collab_update_fanout_seconds"])
    results.add(scenario, "in the replicas: journal commit p99 before kill <= (ms)",
                server_before["cs3collab_journal_commit_seconds"])
    results.add(scenario, "delivered before kill (%)", 100 * len(samples_before) / expected_before)
    results.add(scenario, "saves before kill (both replicas)", saves_before, None, "> 0 (saves running)",
                saves_before > 0)
    results.add(scenario, "reconnect + resync, all clients (s)", max(reconnect_times))
    results.add(scenario, "clients not reconnected at the end", not_reconnected, None, "0", not_reconnected == 0)
    results.add(scenario, "latency p50 after reconnect (ms)", percentile(samples_after, 0.5) * 1000)
    results.add(scenario, "latency p99 after reconnect (ms)", p99_after, None, "<= 25", p99_after <= 25)
    results.add(scenario, "in replica 2: fanout p99 after reconnect <= (ms)", server_after["cs3collab_update_fanout_seconds"])
    results.add(scenario, "in replica 2: journal commit p99 after reconnect <= (ms)",
                server_after["cs3collab_journal_commit_seconds"])
    results.add(scenario, "delivered after reconnect (%)", 100 * len(samples_after) / expected_after)
    results.add(scenario, "resyncs refused by replica 2 (reconnected again)", len(refused), None, "0", not refused)
    results.add(scenario, "lost acknowledged edits", lost_acknowledged, None, "0", lost_acknowledged == 0)
    results.add(scenario, "edits missing in a fresh joiner (any)", missing, None, "0", missing == 0)
    results.add(scenario, "writer cells differing from a fresh joiner", differing, None, "0", differing == 0)
    results.add(scenario, "lease takeover, median (s)",
                statistics.median(lease_times) if lease_times else None)
    results.add(scenario, "lease takeover, max (s)", lease_times[-1] if lease_times else None, None, "<= 15",
                bool(lease_times) and len(lease_times) == len(watch.keys) and lease_times[-1] <= 15)
    results.add(scenario, "leases moved to replica 2 before the kill", len(moved_early), None, "0", not moved_early)
    results.add(scenario, "saves resumed, median (s)", statistics.median(save_times) if save_times else None)
    results.add(scenario, "saves resumed, max (s)", save_times[-1] if save_times else None)
    pid_one, pid_two, pid_redis = one.running.pid, two.running.pid, redis.running.pid
    results.add(scenario, "CPU before: replica 1 + 2 + Redis (cores)",
                cpu_before[pid_one] + cpu_before[pid_two] + cpu_before[pid_redis])
    results.add(scenario, "CPU after: replica 2 + Redis (cores)", cpu_after[pid_two] + cpu_after[pid_redis])
    results.add(scenario, "a task waiting for a core, before kill (% of the window)", waiting_before)
    results.add(scenario, "a task waiting for a core, after reconnect (% of the window)", waiting_after)
    results.note(f"{scenario}: before the kill {len(samples_before)} samples, CPU replica 1 {cpu_before[pid_one]:.3f}, "
                 f"replica 2 {cpu_before[pid_two]:.3f}, Redis {cpu_before[pid_redis]:.3f} cores, bench client "
                 f"{own_before:.2f} cores, load average {load_before}; after: {len(samples_after)} samples, replica 2 "
                 f"{cpu_after[pid_two]:.3f}, Redis {cpu_after[pid_redis]:.3f} cores, bench client {own_after:.2f}, "
                 f"load average {load_after}")
    results.note(f"{scenario}: closed connection noticed after median {statistics.median(noticed):.2f} s, max "
                 f"{max(noticed):.2f} s; reconnected + resynced after median {statistics.median(reconnect_times):.2f} s, "
                 f"max {max(reconnect_times):.2f} s; lease taken over for {len(lease_times)}/{len(watch.keys)} rooms, "
                 f"saved again {len(save_times)}/{len(watch.keys)} within {settings.takeover_wait:.0f} s of the kill; "
                 f"replica 2 saves in total {saves_total:.0f}; sends failed while disconnected {load.failed_sends}; "
                 f"{load.distinct_frames()} updates with differing frames"
                 + (f"; refused resyncs: {refused[0]!r} (x{len(refused)})" if refused else ""))


# -- main ---------------------------------------------------------------------------------


async def run(settings: Settings, only: str | None, workdir: Path, results: Results) -> None:
    data = make_notebook(10, seed=1)
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=60))
        print("starting devstack ...", flush=True)
        site = await stack.enter_async_context(devstack(workdir / "site"))
        cs3 = await stack.enter_async_context(CS3Client(site.gateway))
        einstein = await cs3.login("einstein", "relativity")
        folder = f"{await einstein.get_home()}/replica-bench-{uuid.uuid4().hex[:6]}"
        await einstein.files.mkdir(folder)
        for name, scenario in (("one", one_replica), ("two", two_replicas)):
            if only in (None, name):
                try:
                    await scenario(results, settings, workdir, site, einstein, folder, http, data)
                except Exception as e:  # said, and the other scenario still runs; the table still prints
                    traceback.print_exc()
                    results.notes.append(f"scenario {name!r} FAILED: {type(e).__name__}: {e}")
        results.notes.append(f"load average at the end: {loadavg()} (2 CPUs shared with other work: above ~2 the "
                             f"machine was oversubscribed)")


def median_table(files: list[str]) -> str:
    """One table of the medians of several runs' figures, with the targets
    judged again on the medians."""
    runs = [json.loads(Path(f).read_text()) for f in files]
    merged: dict[tuple[str, str], dict] = {}
    for run in runs:
        for row in run["results"]:
            entry = merged.setdefault((row["scenario"], row["metric"]),
                                      {"target": row["target"], OURS: [], THEIRS: []})
            for name in (OURS, THEIRS):
                if row[name] is not None and row[name] == row[name]:
                    entry[name].append(row[name])
    results = Results()
    for (scenario, metric), entry in merged.items():
        ours = statistics.median(entry[OURS]) if entry[OURS] else None
        theirs = statistics.median(entry[THEIRS]) if entry[THEIRS] else None
        target, ok = entry["target"], None
        if target and ours is not None:
            op, _, bound = target.partition(" (")[0].partition(" ")
            if op == "<=":
                ok = ours <= float(bound)
            elif op == ">":
                ok = ours > float(bound)
            else:
                ok = ours == float(op)
        counts = f" [{len(entry[OURS])}/{len(runs)} runs" + (f", theirs {len(entry[THEIRS])}]" if entry[THEIRS] else "]")
        results.add(scenario, metric + counts, ours, theirs, target, ok)
    return results.table()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 10 rooms, short windows")
    parser.add_argument("--only", choices=("one", "two"), help="only the one-replica or the two-replica scenario")
    parser.add_argument("--sizes", help="one replica: comma-separated room counts (default 10,100,300)")
    parser.add_argument("--two-rooms", type=int, help="two replicas: rooms (default 100)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="py-spy each of our service processes during the measured windows (before the kill, "
                             "for two replicas) into DIR; summarise with benchmarks/profiling.py. Sampling costs "
                             "CPU on this machine too: figures of a profiled run are not comparable")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (site, state, logs)")
    parser.add_argument("--median", nargs="+", metavar="JSON",
                        help="run nothing: print the medians of earlier runs' --json files (per figure, over the "
                             "runs that measured it)")
    args = parser.parse_args()
    if args.median:
        print(median_table(args.median))
        return
    settings = QUICK if args.quick else FULL
    if args.sizes:
        settings.sizes = tuple(int(s) for s in args.sizes.split(","))
    if args.two_rooms:
        settings.two_rooms = args.two_rooms
    settings.profile = args.profile
    print(machine(), f"(/proc/loadavg: {loadavg()})", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="cs3collab-replica-bench-"))
    started = time.perf_counter()
    results = Results()
    try:
        asyncio.run(asyncio.wait_for(run(settings, args.only, workdir, results), 900))
    except TimeoutError:
        results.notes.append("STOPPED after 900 s (the whole run's limit): the figures above are what was measured")
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(results.table())
    print()
    print("ratio = cs3collab / jupyter-server-ydoc (below 1: ours is lower).")
    for note in results.notes:
        print(f"- {note}")
    print(f"total time {time.perf_counter() - started:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"machine": machine(), "quick": args.quick,
             "results": [{"scenario": s, "metric": m, OURS: o, THEIRS: t, "target": g, "met": ok}
                         for s, m, o, t, g, ok in results.rows],
             "notes": results.notes}, indent=1))


if __name__ == "__main__":
    main()
