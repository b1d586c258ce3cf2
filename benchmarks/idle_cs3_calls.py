"""CS3 calls per second caused by idle rooms (issue 14, point 2).

Starts a devstack site and one ``cs3collab serve`` (real processes on free
loopback ports), opens ROOMS notebooks with CLIENTS idle y-websocket
connections each (as einstein, who owns them: the benchmark's clients are
all one user, as in service_bench.py), waits until every room is open and
SETTLE seconds more (past the active window of adaptive polling), then
counts the service's CS3 calls from its own /metrics over WINDOW seconds of
idleness, by method.

The window must span whole poll periods: an idle room that holds its lock
polls every 96-120 s (poll_locked_interval 120, spread by the room's
phase) and refreshes its lock every 40 s, and rooms opened together poll
in step, so a window shorter than the poll period counts their polls
wrongly (none, or all at once). The default, 240 s, is two full periods.

Usage: python benchmarks/idle_cs3_calls.py [--rooms 100] [--clients 10] [--window 240]
       [-- extra serve options, e.g. --poll-interval=2 --access-recheck=5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cs3collab.cs3 import CS3Client  # noqa: E402
from tests.service.rtc import put_notebook  # noqa: E402
from tests.support.metrics import cs3_calls  # noqa: E402
from tests.support.processes import devstack, service  # noqa: E402
from tests.support.yclient import connect  # noqa: E402


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", type=int, default=100)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--window", type=float, default=240.0,
                        help="seconds of idleness measured (default 240: two periods of the locked idle poll)")
    parser.add_argument("--settle", type=float, default=65.0,
                        help="seconds between the last open and the window: longer than poll_active_window "
                             "(default 65), so the rooms are idle, not just opened")
    args, extra = parser.parse_known_args()
    with tempfile.TemporaryDirectory(prefix="idle-bench-") as folder:
        async with devstack(Path(folder) / "site", domain="cernbox.test") as site, \
                service(site.gateway, Path(folder) / "svc", extra=tuple(extra) + ("--CollabService.max_connections_per_user=0", "--CollabService.max_connections_per_site=0")) as svc, \
                CS3Client(site.gateway) as cs3:
            einstein = await cs3.login("einstein", "relativity")
            home = await einstein.get_home()
            paths = [await put_notebook(einstein, f"{home}/idle-{i:03d}.ipynb", f"x = {i}") for i in range(args.rooms)]
            opened = time.perf_counter()
            async with AsyncExitStack() as stack:
                for path in paths:
                    for _ in range(args.clients):
                        await stack.enter_async_context(connect(svc.url, einstein.token, path))
                print(f"opened {args.rooms} rooms x {args.clients} clients in {time.perf_counter() - opened:.1f} s; "
                      f"serve options: {' '.join(extra) or '(defaults)'}")
                await asyncio.sleep(args.settle)  # the rooms become idle: the opens' own calls are not measured
                before = await cs3_calls(svc.url)
                load = os.getloadavg()[0]
                await asyncio.sleep(args.window)  # the measured idle window itself
                after = await cs3_calls(svc.url)
            total = 0.0
            for method in sorted(set(before) | set(after)):
                rate = (after.get(method, 0) - before.get(method, 0)) / args.window
                total += rate
                if rate:
                    print(f"  {method:<24} {rate:7.2f} calls/s")
            print(f"total {total:.2f} CS3 calls/s over {args.window:g} s idle "
                  f"(load average {load:.2f} at start, {os.getloadavg()[0]:.2f} at end)")


if __name__ == "__main__":
    asyncio.run(main())
