"""Shared kernels: start time and execute → first output, next to a plain local kernel.

Real processes on loopback: two devstack sites trusting each other for OCM
(A: cernbox.test, B: cesnet.test) and the collaboration service of site A
with shared kernels (``--KernelHost.provisioner``: by default the service's
own default, ``cs3collab-sandbox``: bubblewrap with limits; ``--provisioner
local-provisioner`` measures unsandboxed kernels). Figures, medians (and max)
over ``--runs``:

1. **plain kernel**: jupyter_client directly (``AsyncKernelManager`` +
   ``AsyncKernelClient``, tcp): start → first ``kernel_info_reply``, and
   ``execute_request`` of ``print(1)`` → its ``stream`` on iopub;
2. **shared kernel, local participant**: ``POST /api/collaboration/kernel/{fileId}``
   (start) as einstein; ``execute_request`` on the kernel channel (Bearer) →
   the output in the notebook's room, as another participant's synced
   document shows it (what a user sees: the service writes outputs into the room);
3. **shared kernel, federated participant**: the same execute sent by marie
   from site B with the OCM share's credentials, as her Jupyter server's relay
   sends them: the share's secret exchanged at A's ``tokenEndPoint`` (the OCM
   code flow Reva 3.x requires) and ``Authorization: Bearer <token>``; output
   seen in the room.

No assertion: it prints figures and the load average.

    .venv/bin/python benchmarks/kernel_bench.py [--runs 7] [--provisioner cs3collab-sandbox] [--json out.json]
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
from jupyter_client.manager import AsyncKernelManager  # noqa: E402

from cs3collab.cs3 import CS3Client, roles  # noqa: E402
from cs3collab.cs3.ocm import federated_user  # noqa: E402
from cs3collab.demo import exchange_invite  # noqa: E402
from cs3collab.jupyter.ocm_remote import OCMTarget, exchange_code, set_signing_key, with_token_endpoint  # noqa: E402
from cs3collab.service import ids  # noqa: E402
from tests.conftest import DEMO_PASSWORDS  # noqa: E402
from tests.kernels.kernelclient import kernel_channel, outputs_text  # noqa: E402
from tests.service.rtc import notebook_bytes  # noqa: E402
from tests.support.processes import service, trusting_sites  # noqa: E402
from tests.support.yclient import connect, wait_for  # noqa: E402


async def plain_kernel(runs: int) -> tuple[list[float], list[float]]:
    starts, firsts = [], []
    for _ in range(runs):
        began = time.perf_counter()
        manager = AsyncKernelManager(kernel_name="python3")
        await manager.start_kernel()
        client = manager.client()
        client.start_channels()
        await client.wait_for_ready(timeout=60)
        starts.append(time.perf_counter() - began)
        for _ in range(runs):
            sent = time.perf_counter()
            msg_id = client.execute("print(1)")
            while True:
                msg = await client.get_iopub_msg(timeout=30)
                if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
                    firsts.append(time.perf_counter() - sent)
                    break
        client.stop_channels()
        await manager.shutdown_kernel(now=True)
    return starts, firsts


async def shared_runs(service_url: str, authorization: str, file_id: str, watcher, runs: int) -> list[float]:
    """execute → output in the room, ``runs`` times (the kernel already started)."""
    cell = str(watcher.document.ycells[0]["id"])
    latencies = []
    async with kernel_channel(service_url, authorization, file_id) as channel:
        for i in range(runs):
            marker = f"run-{i}-{uuid.uuid4().hex[:6]}"
            sent = time.perf_counter()
            msg_id = await channel.execute(f"print({marker!r})", cell)
            await wait_for(watcher.doc, lambda: marker in outputs_text(watcher, 0), timeout=60)
            latencies.append(time.perf_counter() - sent)
            await channel.idle(msg_id)
    return latencies


def describe(values: list[float]) -> str:
    return f"median {statistics.median(values) * 1000:7.1f} ms   max {max(values) * 1000:7.1f} ms   (n={len(values)})"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--provisioner", default="cs3collab-sandbox")  # the service's default
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    load_before = os.getloadavg()
    results["plain_start"], results["plain_first_output"] = await plain_kernel(max(3, args.runs // 2))
    with tempfile.TemporaryDirectory(prefix="kbench-") as tmp:
        root = Path(tmp)
        async with trusting_sites(root) as (a, b), \
                service(a.gateway, root / "svc-a", extra=(f"--KernelHost.provisioner={args.provisioner}",)) as svc, \
                CS3Client(a.gateway) as cs3_a, CS3Client(b.gateway) as cs3_b:
            einstein = await cs3_a.login("einstein", DEMO_PASSWORDS["einstein"])
            marie_b = await cs3_b.login("marie", DEMO_PASSWORDS["marie"])
            await exchange_invite(einstein, marie_b, a.domain)
            home = await einstein.get_home()
            starts, local, federated = [], [], []
            for _ in range(max(3, args.runs // 2)):
                path = f"{home}/bench-{uuid.uuid4().hex[:8]}.ipynb"
                await einstein.files.upload(path, notebook_bytes(""))
                info = await einstein.files.stat(path)
                share = await einstein.ocm.create_share(info.id, federated_user("marie", "cesnet.test"), roles.EDITOR)
                file_id = ids.file_id_for(info.id)
                async with connect(svc.url, einstein.token, path) as watcher:
                    began = time.perf_counter()
                    async with httpx.AsyncClient(timeout=120) as http:
                        answer = await http.post(f"{svc.url}/api/collaboration/kernel/{file_id}",
                                                 headers={"Authorization": f"Bearer {einstein.token}"})
                    answer.raise_for_status()
                    starts.append(time.perf_counter() - began)
                    local += await shared_runs(svc.url, f"Bearer {einstein.token}", file_id, watcher, args.runs)
                    target = await with_token_endpoint(OCMTarget(svc.url, share.id.opaque_id, share.token,
                                                                 must_exchange=True, sender_domain=a.domain), marie_b)
                    set_signing_key(b.data_dir / "ocm-signing-key.pem")  # as site B's servers sign (OCM 1.4)
                    token, _ = await exchange_code(target)
                    federated += await shared_runs(svc.url, f"Bearer {token}", file_id, watcher, args.runs)
            results["shared_start"], results["shared_local_first_output"] = starts, local
            results["shared_federated_first_output"] = federated
    load_after = os.getloadavg()
    print(f"\nshared kernels, provisioner {args.provisioner}; load average before {load_before[0]:.2f}, "
          f"after {load_after[0]:.2f} ({os.cpu_count()} cores)\n")
    labels = {
        "plain_start": "plain kernel: start → ready",
        "shared_start": "shared kernel: POST start → ready",
        "plain_first_output": "plain kernel: execute → first output",
        "shared_local_first_output": "shared, local participant: execute → output in room",
        "shared_federated_first_output": "shared, federated participant: execute → output in room",
    }
    for key, label in labels.items():
        print(f"{label:58s} {describe(results[key])}")
    if args.json:
        Path(args.json).write_text(json.dumps({"load": [load_before, load_after], **results}, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
