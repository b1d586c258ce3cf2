"""Shared kernel across replicas: what the relay through Redis costs a participant.

Real processes on loopback: one devstack site, Debian's redis-server, and two
``cs3collab serve --redis-url`` replicas with shared kernels (the service's
default provisioner, ``cs3collab-sandbox``). Einstein starts the notebook's
kernel on replica one (its host). Then, alternately, an execute of
``print(<marker>)`` naming a cell is sent on a kernel channel connected to

- **replica one** (the kernel's replica: no relay), and
- **replica two** (relayed: its replica forwards the message to replica one
  over Redis pub/sub and the replies back),

and two times are taken for each: execute → ``execute_reply`` on the channel
(the relay both ways), and execute → the output in the room as a participant
connected to replica two sees it (outputs are room edits made on replica one,
fanned out through Redis). Figures: per round, the median of ``--runs``
executes; printed: the median of the rounds' medians and each round's, with
the load average before and after (the machine is shared: say so with the
figures).

No assertion: a benchmark, never a test.

    .venv/bin/python benchmarks/kernel_replica_bench.py [--rounds 3] [--runs 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from cs3collab.cs3 import CS3Client  # noqa: E402
from cs3collab.service import ids  # noqa: E402
from tests.conftest import DEMO_PASSWORDS  # noqa: E402
from tests.kernels.kernelclient import kernel_channel, outputs_text  # noqa: E402
from tests.service.rtc import notebook_bytes  # noqa: E402
from tests.support.processes import devstack, service  # noqa: E402
from tests.support.redis import redis_server  # noqa: E402
from tests.support.yclient import connect, wait_for  # noqa: E402


async def runs_on(channel, watcher, cell: str, runs: int) -> tuple[list[float], list[float]]:
    replies, outputs = [], []
    for i in range(runs):
        marker = f"run-{i}-{uuid.uuid4().hex[:6]}"
        sent = time.perf_counter()
        msg_id = await channel.execute(f"print({marker!r})", cell)
        await channel.reply(msg_id, timeout=60)
        replies.append(time.perf_counter() - sent)
        await wait_for(watcher.doc, lambda: marker in outputs_text(watcher, 0), timeout=60)
        outputs.append(time.perf_counter() - sent)
        await channel.idle(msg_id)
    return replies, outputs


def ms(value: float) -> str:
    return f"{value * 1000:6.1f}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    load_before = os.getloadavg()
    rounds: dict[str, list[float]] = {"local_reply": [], "relayed_reply": [], "local_output": [],
                                      "relayed_output": []}
    with tempfile.TemporaryDirectory(prefix="krbench-") as tmp:
        root = Path(tmp)
        async with devstack(root / "site", domain="cernbox.test") as site, redis_server(root / "redis") as redis:
            options = (f"--redis-url={redis.url}",)
            async with service(site.gateway, root / "one", extra=options) as one, \
                    service(site.gateway, root / "two", extra=options) as two, \
                    CS3Client(site.gateway) as cs3:
                einstein = await cs3.login("einstein", DEMO_PASSWORDS["einstein"])
                path = f"{await einstein.get_home()}/bench-{uuid.uuid4().hex[:8]}.ipynb"
                await einstein.files.upload(path, notebook_bytes(""))
                file_id = ids.file_id_for((await einstein.files.stat(path)).id)
                bearer = f"Bearer {einstein.token}"
                async with connect(two.url, einstein.token, path) as watcher:
                    async with httpx.AsyncClient(timeout=120) as http:
                        answer = await http.post(f"{one.url}/api/collaboration/kernel/{file_id}",
                                                 headers={"Authorization": bearer})
                    answer.raise_for_status()
                    cell = str(watcher.document.ycells[0]["id"])
                    async with kernel_channel(one.url, bearer, file_id) as local, \
                            kernel_channel(two.url, bearer, file_id) as relayed:
                        await runs_on(relayed, watcher, cell, 2)  # warm-up: the relay joined, the room live
                        for _ in range(args.rounds):
                            replies, outputs = await runs_on(local, watcher, cell, args.runs)
                            rounds["local_reply"].append(statistics.median(replies))
                            rounds["local_output"].append(statistics.median(outputs))
                            replies, outputs = await runs_on(relayed, watcher, cell, args.runs)
                            rounds["relayed_reply"].append(statistics.median(replies))
                            rounds["relayed_output"].append(statistics.median(outputs))
    load_after = os.getloadavg()
    print(f"\nshared kernel across two replicas on one Redis; {args.rounds} rounds x {args.runs} executes; "
          f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} ({os.cpu_count()} cores)\n")
    labels = {
        "local_reply": "channel on the kernel's replica: execute → reply",
        "relayed_reply": "channel on the other replica:  execute → reply",
        "local_output": "channel on the kernel's replica: execute → output in room",
        "relayed_output": "channel on the other replica:  execute → output in room",
    }
    for key, label in labels.items():
        values = rounds[key]
        print(f"{label:58s} median {ms(statistics.median(values))} ms   rounds "
              + " ".join(ms(v) for v in values))
    ratio = statistics.median(rounds["relayed_reply"]) / statistics.median(rounds["local_reply"])
    print(f"{'relayed / local, execute → reply':58s} {ratio:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"load": [load_before, load_after], **rounds}, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
