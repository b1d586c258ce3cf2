"""Micro-benchmark of the journal's append (SQLite, and Redis with ``--redis``):
appends/s and append latency.

Each appender awaits its append, then makes the next one (as a room does:
journal, then apply and broadcast). Runs 1 and 50 concurrent appenders (each
on its own room, or all on one room with ``--one-room``), for each
synchronous level, and prints appends/s, p50/p99 latency (from the call to
the durable return) and the mean number of appends per commit.

Usage: python benchmarks/journal_append.py [--dir DIR] [--seconds 3] [--size 200] [--redis]
DIR should be on the disk the service will use (default: a temporary folder).
``--redis`` also runs the Redis journal against a Debian redis-server it
starts on a free loopback port with its AOF in DIR, once per ``appendfsync``
policy (always, everysec): the replicas' journal (docs/operations.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cs3collab.service.journal_redis import RedisJournal  # noqa: E402
from cs3collab.service.journal_sqlite import SQLiteJournal  # noqa: E402
from tests.support.redis import redis_server  # noqa: E402


async def run(journal, appenders: int, seconds: float, size: int, one_room: bool) -> dict[str, float]:
    latencies: list[float] = []
    update = os.urandom(size)
    async with journal:
        deadline = time.perf_counter() + seconds

        async def appender(i: int) -> None:
            room = "bench-room" if one_room else f"bench-room-{i}"
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                await journal.append(room, update)
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        commits_before = journal.stats.commits
        await asyncio.gather(*(appender(i) for i in range(appenders)))
        elapsed = time.perf_counter() - started
        commits = journal.stats.commits - commits_before
    latencies.sort()
    return {
        "appends_per_s": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "per_commit": len(latencies) / max(commits, 1),
        "count": len(latencies),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", help="folder for the journal files (default: a temporary folder)")
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each run (default 3)")
    parser.add_argument("--size", type=int, default=200, help="update size in bytes (default 200)")
    parser.add_argument("--one-room", action="store_true", help="all appenders write to the same room")
    parser.add_argument("--redis", action="store_true", help="also run the Redis journal (starts redis-server)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="journal-bench-") as folder:
        print(f"journal in {folder}, {args.size}-byte updates, {args.seconds:g} s per run, "
              f"{'one room' if args.one_room else 'one room per appender'}")
        print(f"load average at start: {os.getloadavg()[0]:.2f}")
        print(f"{'journal':>22} {'appenders':>9} {'appends/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'appends/commit':>14}")

        def show(name: str, appenders: int, r: dict[str, float]) -> None:
            print(f"{name:>22} {appenders:>9} {r['appends_per_s']:>10.0f} {r['p50_ms']:>8.3f} "
                  f"{r['p99_ms']:>8.3f} {r['per_commit']:>14.1f}")

        for synchronous in ("FULL", "NORMAL"):
            for appenders in (1, 50):
                path = Path(folder) / f"{synchronous}-{appenders}.sqlite3"
                journal = SQLiteJournal(path, synchronous=synchronous)
                show(f"sqlite {synchronous}", appenders,
                     await run(journal, appenders, args.seconds, args.size, args.one_room))
        if args.redis:
            for policy in ("always", "everysec"):
                async with redis_server(Path(folder) / f"redis-{policy}", appendfsync=policy) as redis:
                    for appenders in (1, 50):
                        journal = RedisJournal(redis.url, key_prefix=f"bench{uuid.uuid4().hex[:8]}")
                        show(f"redis aof {policy}", appenders,
                             await run(journal, appenders, args.seconds, args.size, args.one_room))
        print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
