"""Idle rooms' memory and the first keystroke after a release (issue 14, point 3).

Runs a devstack site and ``cs3collab serve --idle-release=S`` (S = 2 by
default) and measures, for rooms of 100 and 1000 cells with one idle client
each: the service's RSS per room while the room is live (just opened) and
once it released its documents (its "room released" log lines), against
the room's encoded Y state (each size twice: the second batch shows what one
more room costs once the process has made its one-off allocations); then,
in a 1000-cell room with two clients, the latency of a keystroke from one
client to the other half a second after a
release (the room rebuilds its documents first; the mean rebuild time is
read from the service's /metrics) next to the same keystroke in the
live room, over ``--tries`` keystrokes each; and the same keystroke after a
release when the typing tab first moved its cursor (an awareness change,
which JupyterLab sends when the user clicks into a cell) ``--cursor-lead``
ms before it, which is when the service starts rebuilding.

    .venv/bin/python benchmarks/idle_memory.py [--tries 20] [--idle-release 2] [--runs 3] [--cursor-lead 200]

Figures are medians over ``--runs`` runs (each a fresh service), printed
with the load average: the machine may be shared.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from pycrdt import Encoder, write_message  # noqa: E402
import service_bench as sb  # noqa: E402
from cs3collab.cs3 import CS3Client  # noqa: E402
from tests.support.processes import devstack, service  # noqa: E402

RELEASED = "room released its document"


async def released(svc, count: int, timeout: float = 60.0) -> None:
    try:
        await svc.running.wait_for_output(RELEASED, count=count, timeout=timeout)
    except TimeoutError:
        print("\n".join(line for line in svc.running.output[-30:]), file=sys.stderr)
        raise


async def arrival(client: sb.BenchClient, before: float) -> float:
    """Seconds from ``before`` to the next change of ``client``'s document."""
    changed = asyncio.get_running_loop().create_future()

    def on_change(_event) -> None:
        if not changed.done():
            changed.set_result(time.perf_counter())

    subscription = client.doc.observe(on_change)
    try:
        return await asyncio.wait_for(changed, 30) - before
    finally:
        client.doc.unobserve(subscription)


async def move_cursor(client: sb.BenchClient, clock: int, position: int) -> None:
    """Send the client's awareness state with its cursor at ``position`` (JupyterLab's
    y-codemirror puts cursors in the awareness state; the clock grows with each change)."""
    awareness = Encoder()
    awareness.write_var_uint(1)
    awareness.write_var_uint(client.cid)
    awareness.write_var_uint(clock)
    awareness.write_var_string(json.dumps({"user": {"username": f"bench-{client.cid}", "name": "bench"},
                                           "autosave": True, "cursors": [{"anchor": position, "head": position}]}))
    await client.ws.send(b"\x01" + write_message(awareness.to_bytes()))


async def one_run(workdir: Path, tries: int, idle_release: float, cursor_lead: float) -> dict[str, float]:
    results: dict[str, float] = {}
    async with contextlib.AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=60))
        site = await stack.enter_async_context(devstack(workdir / "site"))
        svc = await stack.enter_async_context(service(
            site.gateway, workdir / "svc",
            extra=("--CollabService.max_connections_per_user=0", f"--idle-release={idle_release}")))
        cs3 = await stack.enter_async_context(CS3Client(site.gateway))
        einstein = await cs3.login("einstein", "relativity")
        folder = f"{await einstein.get_home()}/idle-{uuid.uuid4().hex[:6]}"
        await einstein.files.mkdir(folder)
        ours = sb.Ours(svc, einstein, folder)
        pid = svc.running.pid
        total = 0
        clients: list[sb.BenchClient] = []
        # each size twice: the first batch of a size also pays what the process allocates once
        # (caches, the allocator's high-water mark for multi-MB buffers); the second is what one
        # more room of that size costs
        for batch, (cells, rooms) in enumerate(((100, 10), (100, 10), (1000, 2), (1000, 2))):
            label = f"{cells} cells" if batch % 2 == 0 else f"{cells} cells, second batch"
            data = sb.make_notebook(cells, seed=cells)
            paths = [await ours.add_file(f"n{cells}-{batch}-{i}.ipynb", data) for i in range(rooms)]
            await asyncio.sleep(0.5)
            before = sb.rss_bytes(pid)
            opened = [sb.BenchClient() for _ in paths]
            for client, path in zip(opened, paths):
                await client.open(ours, http, path)
            live = sb.rss_bytes(pid)
            total += rooms
            if idle_release > 0:
                await released(svc, total)
            else:
                await asyncio.sleep(3.0)  # idle, as service_bench's scenario d
            await asyncio.sleep(1.0)  # the heap trim runs in a thread after the releases
            idle = sb.rss_bytes(pid)
            state = statistics.median(len(c.doc.get_update()) for c in opened)
            results[f"{label}: Y state (MB)"] = state / 1e6
            results[f"{label}: RSS per live room (MB)"] = (live - before) / rooms / 1e6
            results[f"{label}: RSS per released room (MB)"] = (idle - before) / rooms / 1e6
            results[f"{label}: live RSS / state"] = (live - before) / rooms / state
            results[f"{label}: released RSS / state"] = (idle - before) / rooms / state
            clients += opened
        if idle_release <= 0:  # --idle-release 0: rooms keep their documents; no release to type after
            for client in clients:
                await client.close()
            return results
        # the first keystroke after a release, in the last 1000-cell room
        writer = clients[-1]
        reader = sb.BenchClient()
        await reader.open(ours, http, paths[-1])
        after_release, live_keys, after_cursor = [], [], []
        clock = 1
        for attempt in range(tries):
            await released(svc, total)  # the room holds no document now
            await asyncio.sleep(0.5)  # past the heap trim that follows a release (it holds glibc's arena lock)
            started = time.perf_counter()
            waiting = asyncio.ensure_future(arrival(reader, started))
            await writer.type(1, False)
            after_release.append(await waiting)
            await asyncio.sleep(0.05)
            started = time.perf_counter()
            waiting = asyncio.ensure_future(arrival(reader, started))
            await writer.type(1, False)
            live_keys.append(await waiting)
            total += 1  # it releases again once idle
            # the same after a release, the cursor moved first (as a user clicking into the cell)
            await released(svc, total)
            await asyncio.sleep(0.5)
            clock += 1
            await move_cursor(writer, clock, attempt)
            await asyncio.sleep(cursor_lead / 1000)
            started = time.perf_counter()
            waiting = asyncio.ensure_future(arrival(reader, started))
            await writer.type(1, False)
            after_cursor.append(await waiting)
            total += 1
        metrics = (await http.get(f"{svc.url}/metrics")).text
        rebuilds = {line.split()[0]: float(line.split()[1]) for line in metrics.splitlines()
                    if line.startswith("cs3collab_room_rebuild_seconds_")}
        if rebuilds.get("cs3collab_room_rebuild_seconds_count"):
            results["rebuild of a 1000-cell room, mean (ms)"] = (
                1000 * rebuilds["cs3collab_room_rebuild_seconds_sum"] / rebuilds["cs3collab_room_rebuild_seconds_count"])
        for name, samples in (("after a release", after_release), ("live room", live_keys),
                              (f"after a release, cursor moved {cursor_lead:.0f} ms before", after_cursor)):
            results[f"first keystroke {name} p50 (ms)"] = sb.percentile(samples, 0.5) * 1000
            results[f"first keystroke {name} p99 (ms)"] = sb.percentile(samples, 0.99) * 1000
        for client in (*clients, reader):
            await client.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tries", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--idle-release", type=float, default=2.0,
                        help="the service's idle_release; 0: rooms keep their documents (memory figures only, "
                        "'released' then means idle 3 s)")
    parser.add_argument("--cursor-lead", type=float, default=200.0,
                        help="ms between the cursor move (awareness) and the keystroke in the third measurement")
    args = parser.parse_args()
    runs = []
    for run in range(args.runs):
        load = os.getloadavg()[0]
        with tempfile.TemporaryDirectory(prefix="cs3collab-idle-") as workdir:
            result = asyncio.run(one_run(Path(workdir), args.tries, args.idle_release, args.cursor_lead))
        print(f"run {run + 1}: load average {load:.2f} -> {os.getloadavg()[0]:.2f}", flush=True)
        for name, value in result.items():
            print(f"  {name}: {value:.2f}", flush=True)
        runs.append(result)
    print(f"\nmedians of {len(runs)} runs ({os.cpu_count()} CPUs, load average now {os.getloadavg()[0]:.2f}):")
    for name in runs[0]:
        print(f"  {name}: {statistics.median(r[name] for r in runs):.2f}")


if __name__ == "__main__":
    main()
