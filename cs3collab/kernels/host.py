"""The kernel host: the shared kernels of one site, one per live notebook.

A notebook's shared kernel lives at the site that stores the notebook, owned
by that site's collaboration service. :class:`KernelHost` keeps one
:class:`SharedKernel` per room key (the notebook's CS3 resource id). A shared
kernel is one Jupyter kernel process, started through jupyter_client's
``AsyncKernelManager`` with the kernel provisioner named by
:attr:`KernelHost.provisioner` (``cs3collab-sandbox`` in production), on the
``ipc`` ZMQ transport, in a per-kernel runtime folder; its working directory
is the notebook's workspace (the shared folder, copied from CS3 and written
back after each run).

Many participants attach to one kernel (:class:`KernelChannel`, one per
participant's WebSocket). The host

* **fans out**: iopub goes to every attached channel; a shell, control or
  stdin reply goes back to the channel whose request it answers;
* **authorizes** every message by the channel's role: editors run code,
  interrupt and answer input; viewers watch (only ``kernel_info_request`` and
  ``comm_info_request`` pass); a refused request is answered with an error
  reply the frontend shows, never silently dropped; ``shutdown_request`` is
  refused to everyone (one participant must not end the kernel for all);
* **captures outputs**: an ``execute_request`` naming a notebook cell
  (``metadata.cellId``, which JupyterLab sends) is handed to an
  :class:`ExecutionObserver` (the service writes the outputs into the room);
  the output-bearing iopub messages of such a run are *not* forwarded to the
  channels, so no frontend writes them a second time; outputs past
  :attr:`KernelHost.max_output_chars` are cut with a visible note;
* **supervises**: each kernel's readers and monitor run in the host's task
  group; a kernel that dies is reported (``kernel_died``) in words, its
  attached frontends see status ``dead``, and the next run starts a fresh
  one; the other kernels and the service carry on;
* **culls**: a kernel nobody is attached to and that ran nothing for
  :attr:`KernelHost.idle_timeout` seconds is shut down (workspace written
  back first).

One kernel's life and messages are :mod:`cs3collab.kernels.shared`; the
types the parts exchange are :mod:`cs3collab.kernels.model`. This package
imports only :mod:`cs3collab.cs3` and third-party code; the service
(:mod:`cs3collab.service.execution`) wires it to rooms.
"""

from __future__ import annotations

import asyncio
import logging
import time

from traitlets import Float, Int, Unicode, validate
from traitlets.config import LoggingConfigurable, TraitError

from cs3collab.kernels.model import (  # noqa: F401 - the package's names, importable from here
    Execution,
    ExecutionObserver,
    KernelChannel,
    KernelError,
    KernelRefused,
    Runner,
    Workspace,
    WorkspaceFactory,
)
from cs3collab.kernels.shared import SharedKernel, describe_exit, kernel_spec  # noqa: F401

log = logging.getLogger("cs3collab.kernels.host")


class KernelHost(LoggingConfigurable):
    """All shared kernels of one collaboration service, one per live notebook.

    Args (besides the traits):
        observer: told about runs and kernel events (the service writes them into rooms).
    """

    provisioner = Unicode(
        "cs3collab-sandbox",
        help="Name of the jupyter_client kernel provisioner that launches shared kernels (entry point "
        "group jupyter_client.kernel_provisioners). Default cs3collab-sandbox (bubblewrap with limits); "
        "local-provisioner runs kernels unsandboxed as the service's user (tests and trusted sites only).",
    ).tag(config=True)
    python = Unicode(
        "", help="Python interpreter of the kernels (must have ipykernel). Default: empty, the service's own."
    ).tag(config=True)
    idle_timeout = Float(
        1800.0,
        help="Seconds a shared kernel with nobody attached and nothing running is kept before it is culled "
        "(default 1800; 0 never culls).",
    ).tag(config=True)
    cull_interval = Float(30.0, help="Seconds between two looks for idle kernels to cull (default 30).").tag(config=True)
    start_timeout = Float(
        60.0, help="Seconds a shared kernel may take to start or restart and answer (default 60)."
    ).tag(config=True)
    max_kernels = Int(
        20, help="Most shared kernels running at once on this service; more are refused with a clear error (default 20)."
    ).tag(config=True)
    max_output_chars = Int(
        1_000_000,
        help="Characters of output one run may put into the notebook; the rest is dropped and a note says so "
        "(default 1000000; 0 means no limit).",
    ).tag(config=True)
    runtime_root = Unicode(
        "",
        help="Folder where each kernel gets its runtime folder (ZMQ ipc sockets, connection file, working "
        "directory). Keep it short: unix socket paths are limited to ~100 bytes. Default: the system temp folder.",
    ).tag(config=True)

    @validate("cull_interval", "start_timeout")
    def _positive(self, proposal):
        if proposal["value"] <= 0:
            raise TraitError(f"KernelHost.{proposal['trait'].name} must be positive")
        return proposal["value"]

    def __init__(self, *, observer: ExecutionObserver | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.observer: ExecutionObserver = observer or _Silent()
        self.kernels: dict[str, SharedKernel] = {}
        self._tasks: asyncio.TaskGroup | None = None
        self._stopped = asyncio.Event()

    # -- the host's one task group ------------------------------------------------------

    async def run(self, started: asyncio.Future | None = None) -> None:
        """Own every kernel's tasks until :meth:`stop`; then shut every kernel down."""
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                if started is not None:
                    started.set_result(None)
                culler = tasks.create_task(self._cull_loop(), name="kernel culler")
                await self._stopped.wait()
                culler.cancel()
                for kernel in list(self.kernels.values()):
                    await kernel.shutdown("the service is stopping")
                self.kernels.clear()
        finally:
            self._tasks = None

    def stop(self) -> None:
        self._stopped.set()

    def spawn(self, coro, *, name: str) -> asyncio.Task:
        """Run ``coro`` in the host's task group; its failure is logged, never silent, never fatal to others."""
        if self._tasks is None:
            coro.close()
            raise KernelError("the kernel host is not running")

        async def supervised():
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("kernel task failed task=%s", name)

        return self._tasks.create_task(supervised(), name=name)

    def check_capacity(self, kernel: SharedKernel) -> None:
        alive = sum(1 for k in self.kernels.values() if k.alive and k is not kernel)
        if alive >= self.max_kernels:
            raise KernelError(f"this site runs its maximum of {self.max_kernels} shared kernels; try again later")

    # -- kernels ---------------------------------------------------------------------------

    def kernel(self, key: str) -> SharedKernel:
        """The shared kernel slot of a notebook (created, not started, when new)."""
        kernel = self.kernels.get(key)
        if kernel is None:
            kernel = self.kernels[key] = SharedKernel(self, key)
        return kernel

    def get(self, key: str) -> SharedKernel | None:
        return self.kernels.get(key)

    def released(self, key: str) -> None:
        """A channel left: forget a slot with no kernel and nobody attached."""
        kernel = self.kernels.get(key)
        if kernel is not None and not kernel.channels and not kernel.alive and kernel._starting is None:
            del self.kernels[key]

    async def _cull_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cull_interval)  # cull timer
            if self.idle_timeout <= 0:
                continue
            now = time.monotonic()
            for key, kernel in list(self.kernels.items()):
                idle = now - kernel.last_activity
                if kernel.alive and not kernel.channels and not kernel.running() and idle > self.idle_timeout:
                    log.info("kernel culled room=%s idle_seconds=%.0f", key, idle)
                    await kernel.shutdown("idle")
                    await self.observer.kernel_event(
                        key, "culled", "The shared kernel was stopped after a long idle time; run a cell to start a new one.")
                    self.released(key)


class _Silent:
    """An observer that writes nothing (a host used without rooms)."""

    async def started(self, execution: Execution) -> bool:
        return False

    async def output(self, execution: Execution, msg_type: str, content: dict) -> None:
        return None

    async def finished(self, execution: Execution, error: str | None) -> None:
        return None

    async def kernel_event(self, key: str, event: str, words: str) -> None:
        return None
