"""Sandboxed kernels for the tests: real ipykernel processes started by
jupyter_client's AsyncKernelManager through the ``cs3collab-sandbox``
provisioner (real bubblewrap), on the ``ipc`` transport.

The ``start_kernel`` fixture is imported by the test modules that use it
(not a conftest: tests/kernels/conftest.py belongs to the kernel host's tests)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from jupyter_client import AsyncKernelManager
from traitlets.config import Config

from cs3collab.kernels.sandbox import SANDBOX_KERNEL_NAME, SandboxKernelSpecManager

@dataclass
class Ran:
    """What one execution showed: stdout text, and the error name if it failed."""

    stdout: str
    error: str | None
    evalue: str


@dataclass
class Kernel:
    km: AsyncKernelManager
    kc: object
    workspace: Path

    @property
    def provisioner(self):
        return self.km.provisioner

    async def run(self, code: str, timeout: float = 60) -> Ran:
        out: list[str] = []
        err: list[tuple[str, str]] = []

        def hook(msg):
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind == "error":
                err.append((content["ename"], content["evalue"]))

        await self.kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        return Ran("".join(out), err[0][0] if err else None, err[0][1] if err else "")

    async def ended(self, timeout: float = 90) -> None:
        """Wait until the kernel's process has exited (the event: its exit status)."""
        await asyncio.wait_for(self.km.provisioner.wait(), timeout)


async def wait_until(predicate, timeout: float = 30, what: str = "condition") -> None:
    """Poll a condition that has no event to await (a cgroup counter)."""
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"not reached within {timeout} s: {what}") from None


@pytest.fixture
async def start_kernel():
    """``await start_kernel(**KernelSandbox settings)`` → a ready Kernel in a
    fresh workspace; all are shut down at the end of the test."""
    started: list[Kernel] = []
    roots: list[Path] = []

    async def _start(workspace: Path | None = None, **limits) -> Kernel:
        root = Path(tempfile.mkdtemp(prefix="cs3collab-kernel-"))
        roots.append(root)
        runtime = root / "runtime"
        runtime.mkdir(mode=0o700)
        if workspace is None:  # inside the runtime folder, as the kernel host lays them out
            workspace = runtime / "work"
            workspace.mkdir()
        km = AsyncKernelManager(
            kernel_name=SANDBOX_KERNEL_NAME,
            kernel_spec_manager=SandboxKernelSpecManager(),
            transport="ipc",
            ip=str(runtime / "kernel"),
            connection_file=str(runtime / "kernel.json"),
            config=Config({"KernelSandbox": limits}),
        )
        await km.start_kernel(cwd=str(workspace))
        kc = km.client()
        kc.start_channels()
        kernel = Kernel(km, kc, workspace)
        started.append(kernel)
        await kc.wait_for_ready(timeout=90)
        return kernel

    yield _start
    for kernel in started:
        kernel.kc.stop_channels()
        with contextlib.suppress(Exception):
            await kernel.km.shutdown_kernel(now=True)
    for root in roots:
        shutil.rmtree(root, ignore_errors=True)
