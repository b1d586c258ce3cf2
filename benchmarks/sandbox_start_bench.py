"""Kernel start time: a sandboxed kernel (cs3collab-sandbox) next to a plain local one.

For each kind, starts an ipykernel with jupyter_client's AsyncKernelManager
``--runs`` times (one after another, each shut down before the next) and
measures from ``start_kernel()`` to the first ``kernel_info`` reply
(``wait_for_ready``): what a participant waits for before the first run of a
new room's kernel. Prints the median, min and max of each kind and the load
average before and after (the machine is shared: read figures against it).

- ``local``: jupyter_client's ``local-provisioner``, tcp on 127.0.0.1;
- ``sandbox``: the ``cs3collab-sandbox`` provisioner (bubblewrap, cgroups,
  rlimits), ipc transport, an empty workspace.

Usage: python benchmarks/sandbox_start_bench.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpec

from cs3collab.kernels.sandbox import SANDBOX_KERNEL_NAME, SandboxKernelSpecManager


def local_manager(root: Path) -> AsyncKernelManager:
    km = AsyncKernelManager(connection_file=str(root / "kernel.json"))
    km._kernel_spec = KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                                 display_name="Python 3", language="python")
    return km


def sandbox_manager(root: Path) -> AsyncKernelManager:
    return AsyncKernelManager(kernel_name=SANDBOX_KERNEL_NAME, kernel_spec_manager=SandboxKernelSpecManager(),
                              transport="ipc", ip=str(root / "kernel"), connection_file=str(root / "kernel.json"))


async def start_once(kind: str) -> float:
    root = Path(tempfile.mkdtemp(prefix="kbench-"))
    workspace = root / "workspace"
    workspace.mkdir()
    km = (sandbox_manager if kind == "sandbox" else local_manager)(root)
    try:
        started = time.perf_counter()
        await km.start_kernel(cwd=str(workspace), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=120)
            return time.perf_counter() - started
        finally:
            kc.stop_channels()
    finally:
        await km.shutdown_kernel(now=True)
        shutil.rmtree(root, ignore_errors=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="starts per kind (at least 3)")
    args = parser.parse_args()
    runs = max(3, args.runs)
    print(f"{os.cpu_count()} CPUs, load average before: {os.getloadavg()[0]:.2f}")
    print(f"{'kernel':8} {'median':>8} {'min':>8} {'max':>8}  (start_kernel -> kernel_info reply, {runs} runs)")
    for kind in ("local", "sandbox"):
        await start_once(kind)  # warm the file cache: the first start reads ipykernel from disk
        times = [await start_once(kind) for _ in range(runs)]
        print(f"{kind:8} {statistics.median(times):7.3f}s {min(times):7.3f}s {max(times):7.3f}s")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
