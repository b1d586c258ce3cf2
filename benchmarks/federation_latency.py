"""Federation latency: what a remote participant adds to propagation.

einstein types into a notebook at site A, directly on A's collaboration
service. Two recipients measure when each of his updates arrives:

- **local**: a second client directly on A's service (as einstein's
  colleague at A, whose Jupyter bridge is not in the path here either);
- **remote**: marie at site B, through her own Jupyter server at B (the
  cs3collab bridge), which reaches A's service with the OCM share's secret.

Everything runs as real processes on loopback: two devstack sites trusting
each other (providers file), service A, service B, marie's ``jupyter
server`` at B. The client code is ``BenchClient`` of service_bench.py: an
update counts as arrived when the recipient's state vector covers it.

    .venv/bin/python benchmarks/federation_latency.py [--updates 400] [--hz 20] [--json out.json]

Prints p50/p99/max per recipient and the difference remote − local.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import httpx  # noqa: E402
import nbformat  # noqa: E402
from nbformat import v4  # noqa: E402

from cs3collab.cs3 import CS3Client, roles  # noqa: E402
from cs3collab.cs3.ocm import federated_user  # noqa: E402
from cs3collab.devstack.ocm_peers import PeerSite, write_providers  # noqa: E402
from service_bench import BenchClient, RoomLatency, Target, percentile  # noqa: E402
from tests.jupyter.conftest_bridge import jupyter_with_cs3collab  # noqa: E402
from tests.support.processes import devstack, service  # noqa: E402

SHARED = "Shared with me"


class Direct(Target):
    """A's collaboration service, as a local participant reaches it (CS3 token)."""

    name = "local (on A's service)"

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token


class ThroughB(Target):
    """marie's Jupyter server at B: its bridge forwards to A with the OCM secret."""

    name = "remote (B's bridge → A)"

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url.rstrip("/"), token


def summary(samples: list[float], expected: int) -> dict[str, float]:
    return {
        "n": len(samples),
        "delivered": len(samples) / expected if expected else float("nan"),
        "p50_ms": percentile(samples, 0.50) * 1000,
        "p99_ms": percentile(samples, 0.99) * 1000,
        "max_ms": max(samples) * 1000 if samples else float("nan"),
    }


async def run(updates: int, hz: float, warmup: int, workdir: Path) -> dict[str, dict[str, float]]:
    providers = workdir / "ocm-providers.json"
    extra = ("--ocm-providers", str(providers))
    async with contextlib.AsyncExitStack() as stack:
        print("starting two devstack sites, two services, marie's Jupyter server at B ...", flush=True)
        a = await stack.enter_async_context(devstack(workdir / "a", domain="cernbox.test", extra=extra))
        b = await stack.enter_async_context(devstack(workdir / "b", domain="cesnet.test", extra=extra))
        svc_a = await stack.enter_async_context(service(a.gateway, workdir / "svc-a"))
        svc_b = await stack.enter_async_context(service(b.gateway, workdir / "svc-b"))
        write_providers(providers, [PeerSite(a.domain, a.http_url, webapp_url=svc_a.url), PeerSite(b.domain, b.http_url)])
        lab = await stack.enter_async_context(jupyter_with_cs3collab(
            workdir / "lab-marie", gateway=b.gateway, service_url=svc_b.url, username="marie"))
        cs3 = await stack.enter_async_context(CS3Client(a.gateway))
        einstein = await cs3.login("einstein", "relativity")

        name = f"latency-{uuid.uuid4().hex[:6]}.ipynb"
        path = f"{await einstein.get_home()}/{name}"
        await einstein.files.upload(path, nbformat.writes(v4.new_notebook(cells=[v4.new_code_cell("")])).encode())
        info = await einstein.files.stat(path)
        await einstein.ocm.create_share(info.id, federated_user("marie", b.domain), roles.EDITOR)

        sends: dict = {}
        local_room, remote_room = RoomLatency(sends=sends), RoomLatency(sends=sends)
        writer, local, remote = BenchClient(local_room), BenchClient(local_room), BenchClient(remote_room)
        direct, through_b = Direct(svc_a.url, einstein.token), ThroughB(lab.url, lab.token)
        async with httpx.AsyncClient(timeout=60) as http:
            await writer.open(direct, http, path)
            await local.open(direct, http, path)
            await remote.open(through_b, http, f"{SHARED}/{name}")
            print(f"typing {warmup} warm-up + {updates} measured updates at {hz:g} Hz ...", flush=True)
            period = 1 / hz
            start = time.perf_counter()
            for i in range(warmup + updates):
                await writer.type(0, recorded=i >= warmup)
                await asyncio.sleep(max(0.0, start + (i + 1) * period - time.perf_counter()))
            await asyncio.sleep(2)  # stragglers
            for client in (writer, local, remote):
                await client.close()
    return {
        Direct.name: summary(local_room.samples, updates),
        ThroughB.name: summary(remote_room.samples, updates),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=400, help="measured updates (default 400)")
    parser.add_argument("--hz", type=float, default=20.0, help="typing rate (default 20 updates/s)")
    parser.add_argument("--warmup", type=int, default=40, help="unmeasured updates first (default 40)")
    parser.add_argument("--json", help="also write the figures as JSON to this file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cs3collab-fed-bench-") as tmp:
        results = asyncio.run(run(args.updates, args.hz, args.warmup, Path(tmp)))
    print(f"\n{args.updates} updates at {args.hz:g} Hz, einstein at A typing; {os.cpu_count()} CPUs")
    print(f"{'recipient':26} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for label, r in results.items():
        print(f"{label:26} {r['n']:5d} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['max_ms']:8.2f}")
    local, remote = results[Direct.name], results[ThroughB.name]
    print(f"{'added by federation':26} {'':5} {remote['p50_ms'] - local['p50_ms']:8.2f} "
          f"{remote['p99_ms'] - local['p99_ms']:8.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
