"""One notebook's shared kernel and everyone attached to it (see host.py for the whole picture).

A :class:`SharedKernel` starts its kernel process (jupyter_client's
``AsyncKernelManager`` through the host's provisioner, ZMQ over ``ipc``),
relays messages between the kernel and the attached channels (fan-out of
iopub; replies to whoever asked), authorizes each participant's message by
role, hands runs naming a cell to the observer (outputs into the room), caps
long outputs, watches the process and reports its death in words.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import zmq
import zmq.asyncio
from jupyter_client.jsonutil import json_default
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.session import Session as KernelSession

from cs3collab.kernels.stdin import StdinLink
from cs3collab.kernels.model import (
    Execution,
    KernelChannel,
    KernelError,
    Runner,
    Workspace,
    WorkspaceFactory,
)

if TYPE_CHECKING:
    from cs3collab.kernels.host import KernelHost

log = logging.getLogger("cs3collab.kernels.host")

SPEC_NAME = "cs3collab-python"
OUTPUT_TYPES = frozenset({"stream", "display_data", "execute_result", "error", "clear_output", "update_display_data"})
"""iopub messages that carry outputs: written into the room by the service, not forwarded."""
VIEWER_REQUESTS = frozenset({"kernel_info_request", "comm_info_request"})
"""What a viewer may send: questions about the kernel, nothing that runs code."""
REFUSED_FOR_ALL = frozenset({"shutdown_request"})
CHANNELS = ("shell", "control", "stdin")
DEAD_POLL = 0.5
"""Seconds between two looks at a kernel process (a process exit has no event to await)."""


class _OneSpec(KernelSpecManager):
    """A spec manager that knows exactly one kernel spec: the host's, never the installed ones."""

    def __init__(self, spec: KernelSpec, **kwargs) -> None:
        super().__init__(**kwargs)
        self._spec = spec

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return self._spec

    def find_kernel_specs(self) -> dict[str, str]:
        return {SPEC_NAME: ""}


def kernel_spec(provisioner: str, python: str) -> KernelSpec:
    """The python3 (ipykernel) spec the host starts, launched through ``provisioner``."""
    if provisioner == "cs3collab-sandbox":
        try:
            from cs3collab.kernels.sandbox import sandbox_kernel_spec
        except ImportError as exc:
            raise KernelError(f"the cs3collab-sandbox provisioner is not installed: {exc}") from None
        return sandbox_kernel_spec(python)
    return KernelSpec(
        argv=[python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        display_name="Python 3 (shared)",
        language="python",
        interrupt_mode="signal",
        metadata={"kernel_provisioner": {"provisioner_name": provisioner, "config": {}}},
    )


def describe_exit(code: int | None) -> str:
    """Words for how a kernel process ended."""
    if code is None:
        return "it stopped responding"
    if code < 0:
        sig = -code
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else f"signal {sig}"
        if sig in (signal.SIGKILL, signal.SIGXCPU):
            return f"it was stopped by {name}: it probably reached a limit (memory, CPU time or processes)"
        return f"it was stopped by {name}"
    return f"it exited with code {code}"


class SharedKernel:
    """One notebook's kernel and everyone attached to it.

    Lives while a kernel runs or channels are attached; the kernel process
    inside may be absent (not started yet, or dead): the next run by an
    editor starts one.
    """

    def __init__(self, host: KernelHost, key: str) -> None:
        self.host = host
        self.key = key
        self.channels: set[KernelChannel] = set()
        self.manager: AsyncKernelManager | None = None
        self.session: KernelSession | None = None
        self.sockets: dict[str, zmq.asyncio.Socket] = {}
        self.stdin: StdinLink | None = None  # the stdin socket, and whether the kernel can reach it
        self.runtime: Path | None = None
        self.workspace: Workspace | None = None
        self.state = "none"  # none, starting, idle, busy, restarting, dead
        self.last_activity = time.monotonic()
        self.started_by: Runner | None = None
        self.started_at: str | None = None
        self._pending: dict[str, KernelChannel] = {}  # request msg_id -> who asked
        self._deferred: list[tuple[KernelChannel, dict]] = []  # viewers' questions before a kernel ran
        self._executions: dict[str, Execution] = {}
        self._starting: asyncio.Future | None = None
        self._task: asyncio.Task | None = None
        self._restarting = False
        self._nudges: set[str] = set()  # our kernel_info requests after a restart (their iopub is ours)
        self._iopub_reached = asyncio.Event()
        self._stopping = False
        self._push_lock = asyncio.Lock()

    # -- state ---------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.manager is not None and self.state not in ("none", "dead")

    def running(self) -> list[Execution]:
        return [e for e in self._executions.values() if e.started]

    def model(self) -> dict:
        """What the REST status says (no internal ids, no paths)."""
        return {
            "state": self.state,
            "connections": len(self.channels),
            "startedBy": self.started_by.name if self.started_by else None,
            "startedAt": self.started_at,
            "running": [
                {"cellId": e.cell_id, "by": e.runner.name, "site": e.runner.site, "at": e.at} for e in self.running()
            ],
        }

    # -- channels ------------------------------------------------------------------

    def attach(self, channel: KernelChannel) -> None:
        self.channels.add(channel)
        self.last_activity = time.monotonic()
        log.info("kernel channel attached room=%s user=%s site=%s role=%s channels=%d",
                 self.key, channel.runner.user, channel.runner.site, channel.role, len(self.channels))

    def detach(self, channel: KernelChannel) -> None:
        if channel not in self.channels:
            return
        self.channels.discard(channel)
        for msg_id in [m for m, c in self._pending.items() if c is channel]:
            del self._pending[msg_id]  # its runs carry on; their outputs still reach the room
        self.last_activity = time.monotonic()
        log.info("kernel channel detached room=%s user=%s channels=%d", self.key, channel.runner.user, len(self.channels))

    def take_deferred(self) -> list[tuple[KernelChannel, dict]]:
        """The viewers' questions waiting for a kernel to start, handed over (to
        the replica that runs it, cs3collab.service.kernel_relay)."""
        deferred, self._deferred = self._deferred, []
        return [(channel, message) for channel, message in deferred if channel in self.channels]

    def _broadcast(self, message: dict) -> None:
        for channel in tuple(self.channels):
            channel.deliver(message)

    # -- lifecycle -------------------------------------------------------------------

    async def ensure_started(self, starter: Runner, workspace_factory: WorkspaceFactory) -> None:
        """Start the kernel unless it runs; concurrent callers share one start."""
        if self.alive and self._starting is None:
            return
        if self._starting is not None:
            await asyncio.shield(self._starting)
            return
        self._starting = asyncio.get_running_loop().create_future()
        try:
            await self._start(starter, workspace_factory)
        except BaseException as exc:
            self._starting.set_exception(exc)
            self._starting.exception()
            raise
        else:
            self._starting.set_result(None)
        finally:
            self._starting = None

    async def _start(self, starter: Runner, workspace_factory: WorkspaceFactory) -> None:
        host = self.host
        host.check_capacity(self)
        self._stopping = False
        self.state = "starting"
        self._broadcast_status("starting", None)
        began = time.monotonic()
        runtime = Path(tempfile.mkdtemp(prefix="k-", dir=host.runtime_root or None))
        work = runtime / "work"
        work.mkdir()
        try:
            workspace = await workspace_factory(work)
            await workspace.pull()
            spec = kernel_spec(host.provisioner, host.python or sys.executable)
            manager = AsyncKernelManager(
                parent=host,
                kernel_name=SPEC_NAME,
                kernel_spec_manager=_OneSpec(spec, parent=host),
                transport="ipc",
                ip=str(runtime / "ipc"),
                connection_file=str(runtime / "connection.json"),
            )
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "LANG": os.environ.get("LANG", "C.UTF-8"),
                "HOME": str(work),
                "MPLBACKEND": "module://matplotlib_inline.backend_inline",
                "PYTHONNOUSERSITE": "1",
                "PYDEVD_DISABLE_FILE_VALIDATION": "1",  # no debugger warning in everyone's first cell
            }
            await asyncio.wait_for(manager.start_kernel(cwd=str(work), env=env), host.start_timeout)
        except BaseException as exc:
            self.state = "none"
            shutil.rmtree(runtime, ignore_errors=True)
            self._broadcast_status("dead", None)
            if isinstance(exc, asyncio.TimeoutError):
                raise KernelError(f"the shared kernel did not start within {host.start_timeout:g} s") from None
            if isinstance(exc, KernelError):
                raise
            if isinstance(exc, Exception):
                log.error("kernel start failed room=%s error=%r", self.key, exc)
                raise KernelError(f"the shared kernel could not start: {exc}") from exc
            raise
        self.manager, self.runtime, self.workspace = manager, runtime, workspace
        self.session = KernelSession(key=manager.session.key, signature_scheme=manager.session.signature_scheme,
                                     username="cs3collab", parent=host)
        identity = self.session.bsession  # the kernel sends input_request to the shell request's identity
        self.stdin = StdinLink(manager, identity)
        self.sockets = {
            "shell": manager.connect_shell(identity=identity),
            "control": manager.connect_control(identity=identity),
            "stdin": self.stdin.socket,
            "iopub": manager.connect_iopub(),
        }
        try:  # one deadline: the kernel answers on stdin and iopub within start_timeout
            deadline = time.monotonic() + host.start_timeout
            await self.stdin.ready(host.start_timeout)
            await self._await_iopub(deadline)
        except BaseException:
            await self._stop_process(now=True)
            self.state = "none"
            raise
        self.state = "idle"
        self.started_by = starter
        self.started_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        self.last_activity = time.monotonic()
        self._task = host.spawn(self._serve(), name=f"kernel:{self.key}")
        deferred, self._deferred = self._deferred, []
        for waiting, message in deferred:  # viewers' questions asked before the kernel ran
            if waiting in self.channels:
                self._pending[message["header"]["msg_id"]] = waiting
                self.session.send(self.sockets["shell"], {k: message.get(k) or {} for k in
                                                          ("header", "parent_header", "metadata", "content")})
        log.info("kernel started room=%s by=%s site=%s provisioner=%s seconds=%.2f",
                 self.key, starter.user, starter.site, host.provisioner, time.monotonic() - began)
        await host.observer.kernel_event(self.key, "started", f"{starter.name} started the shared kernel.")

    async def _await_iopub(self, deadline: float) -> None:
        """Until the kernel's iopub reaches us: nudged with kernel_info requests
        (a SUB socket misses what was published before it connected)."""
        assert self.session is not None
        iopub = self.sockets["iopub"]
        while True:
            self.session.send(self.sockets["shell"], "kernel_info_request", {})
            if await iopub.poll(500):
                await iopub.recv_multipart()  # any iopub message: the subscription works
                break
            if time.monotonic() > deadline:
                raise KernelError(f"the shared kernel did not answer within {self.host.start_timeout:g} s")
        while await self.sockets["shell"].poll(0):
            await self.sockets["shell"].recv_multipart()  # replies to the nudges: nobody asked
        while await iopub.poll(50):
            await iopub.recv_multipart()  # their status messages

    async def _serve(self) -> None:
        """The kernel's readers and its monitor; ends when the kernel stops."""
        why: str | None = None
        try:
            async with asyncio.TaskGroup() as tasks:
                readers = [tasks.create_task(self._read_replies(name)) for name in CHANNELS]
                readers.append(tasks.create_task(self._read_iopub()))
                why = await self._watch()
                for reader in readers:
                    reader.cancel()
        except* Exception as group:
            for exc in group.exceptions:
                log.error("kernel relay failed room=%s error=%r", self.key, exc)
            why = "its message relay failed"
        if why is not None and not self._stopping:
            await self._died(why)

    async def _watch(self) -> str:
        """Until the kernel process is gone; returns how it ended (a process
        exit has no event to await here: polled)."""
        while True:
            await asyncio.sleep(DEAD_POLL)
            if self._restarting or self.manager is None:
                continue
            if not await self.manager.is_alive():
                provisioner = self.manager.provisioner
                # the sandbox knows why (a limit, a signal) and says it in words
                last_exit = getattr(provisioner, "last_exit", None)
                if last_exit is not None and getattr(last_exit, "message", None):
                    return last_exit.message
                process = getattr(provisioner, "process", None) if provisioner is not None else None
                return describe_exit(process.returncode if process is not None else None)

    async def _begin_run(self, execution: Execution) -> None:
        """A run begins: the room shows it (outputs cleared, who runs it)."""
        execution.started = True
        try:
            execution.written = await self.host.observer.started(execution)
        except Exception as exc:  # noqa: BLE001 - the run goes on; its outputs are forwarded instead
            log.error("run not written to the room room=%s cell=%s error=%r", self.key, execution.cell_id, exc)
            execution.written = False

    async def _died(self, why: str) -> None:
        log.error("kernel died room=%s reason=%s running=%d", self.key, why, len(self.running()))
        self.state = "dead"
        self._broadcast_status("dead", None)
        running = list(self._executions.values())
        if running and not any(execution.started for execution in running):
            # It died before its "busy" reached us (a kernel killed at once does not
            # flush its iopub): the kernel runs requests in order, so the first one
            # sent is the run it died in, and its cell says so like any other.
            await self._begin_run(running[0])
        self._executions.clear()
        words = f"The shared kernel of this notebook stopped: {why}. Its variables are gone; run a cell to start a new one."
        for execution in running:
            if execution.written:
                await self.host.observer.finished(execution, words)
        await self.host.observer.kernel_event(self.key, "died", words)
        await self._release(now=True)
        self._task = None  # this is that task's last act

    def _broadcast_status(self, state: str, parent: dict | None) -> None:
        self._broadcast(status_message(state, parent, self.session))

    async def restart(self, by: Runner) -> None:
        if self.manager is None or self.state == "dead":
            raise KernelError("the shared kernel is not running")
        self._restarting = True
        self.state = "restarting"
        try:
            await self.push()
            deadline = time.monotonic() + self.host.start_timeout
            assert self.stdin is not None
            await self.stdin.expect_reconnect()  # the new process must reach our stdin before anyone's input()
            await asyncio.wait_for(self.manager.restart_kernel(now=False), self.host.start_timeout)
            await self.stdin.ready(max(0.0, deadline - time.monotonic()))
            await self._reach_iopub(deadline)
            for execution in list(self._executions.values()):
                if execution.written:
                    await self.host.observer.finished(execution, f"{by.name} restarted the kernel.")
            self._executions.clear()
            self.state = "idle"
        except Exception as exc:
            self._restarting = False
            if self._stopping or self.state == "dead":
                raise  # shut down or dead meanwhile: that path tells the room
            log.error("kernel restart failed room=%s by=%s error=%r", self.key, by.user, exc)
            await self._restart_failed()
            if isinstance(exc, KernelError):
                raise
            raise KernelError(f"the shared kernel did not restart within {self.host.start_timeout:g} s"
                              if isinstance(exc, TimeoutError) else "the shared kernel could not restart") from None
        finally:
            self._restarting = False
        log.info("kernel restarted room=%s by=%s site=%s", self.key, by.user, by.site)
        await self.host.observer.kernel_event(self.key, "restarted", f"{by.name} restarted the shared kernel.")

    async def _restart_failed(self) -> None:
        """A restart that did not reach the service in time ends the kernel as a
        death does (else it would show "restarting" for as long as its new
        process lives, unreachable): its runs and the room are told, and the
        next run starts a fresh kernel."""
        await self._stop_serving()
        await self._died(f"it did not answer within {self.host.start_timeout:g} s of a restart")

    async def _stop_serving(self) -> None:
        """Cancel the kernel's readers and monitor (unless called from them) and wait for them."""
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _reach_iopub(self, deadline: float) -> None:
        """After a restart: until the new process's iopub reaches the running
        reader. A SUB socket misses what is published before it has
        reconnected and subscribed, so a run sent at once would lose its
        outputs and its end; nudged with kernel_info requests, as at start."""
        assert self.session is not None
        self._nudges.clear()
        self._iopub_reached.clear()
        while True:
            nudge = self.session.send(self.sockets["shell"], "kernel_info_request", {})
            self._nudges.add(nudge["header"]["msg_id"])
            try:
                async with asyncio.timeout(max(0.0, min(0.5, deadline - time.monotonic()))):
                    await self._iopub_reached.wait()
                return
            except TimeoutError:
                if time.monotonic() >= deadline:
                    raise KernelError(f"the shared kernel did not answer within {self.host.start_timeout:g} s") from None

    async def interrupt(self, by: Runner) -> None:
        if self.manager is None or self.state == "dead":
            raise KernelError("the shared kernel is not running")
        log.info("kernel interrupt room=%s by=%s site=%s", self.key, by.user, by.site)
        await self.manager.interrupt_kernel()

    async def shutdown(self, why: str) -> None:
        """Stop the kernel (workspace written back first), telling the room why."""
        self._stopping = True
        await self._stop_serving()
        if self.manager is not None:
            await self.push()
            self._broadcast_status("dead", None)
            await self._release(now=False)
            log.info("kernel shut down room=%s reason=%s", self.key, why)
        running = [execution for execution in self._executions.values() if execution.written]
        self._executions.clear()
        words = f"The shared kernel of this notebook stopped: {why}. Its variables are gone; run a cell to start a new one."
        for execution in running:  # their cells would otherwise show them running for good
            try:
                await self.host.observer.finished(execution, words)
            except Exception as exc:  # noqa: BLE001 - the kernel is down either way
                log.error("run end not written room=%s cell=%s error=%r", self.key, execution.cell_id, exc)

    async def _release(self, *, now: bool) -> None:
        await self._stop_process(now=now)
        if self.workspace is not None:
            with contextlib.suppress(Exception):
                await self.push()
            try:
                await self.workspace.close()
            except Exception as exc:  # noqa: BLE001 - logged; the kernel is gone either way
                log.warning("workspace close failed room=%s error=%r", self.key, exc)
            self.workspace = None
        if self.runtime is not None:
            shutil.rmtree(self.runtime, ignore_errors=True)
            self.runtime = None
        if self.state != "dead":
            self.state = "none"

    async def _stop_process(self, *, now: bool) -> None:
        if self.stdin is not None:
            self.stdin.close()
            self.stdin = None
        for socket in self.sockets.values():
            socket.close(linger=0)
        self.sockets = {}
        manager, self.manager = self.manager, None
        if manager is None:
            return
        try:
            await asyncio.wait_for(manager.shutdown_kernel(now=now), 15)
        except Exception as exc:  # noqa: BLE001 - a dead or stuck kernel: make sure it is gone
            log.warning("kernel shutdown incomplete room=%s error=%r", self.key, exc)
            with contextlib.suppress(Exception):
                await manager.shutdown_kernel(now=True)

    async def push(self) -> list[str]:
        """Write the workspace back to CS3 (one push at a time); failures are logged, not raised."""
        if self.workspace is None:
            return []
        async with self._push_lock:
            try:
                written = await self.workspace.push()
            except Exception as exc:  # noqa: BLE001 - the kernel carries on; the room is told
                log.warning("workspace push failed room=%s error=%r", self.key, exc)
                await self.host.observer.kernel_event(
                    self.key, "workspace", f"Files the kernel wrote could not be saved to storage: {exc}")
                return []
        if written:
            log.info("workspace pushed room=%s files=%s", self.key, ",".join(written[:20]))
        return written

    # -- messages from participants ------------------------------------------------

    async def send(self, channel: KernelChannel, message: dict, starter: WorkspaceFactory) -> None:
        """Authorize one message of a participant and pass it to the kernel.

        Starts the kernel when an editor's request finds none running.
        """
        name = message.get("channel")
        header = message["header"]
        msg_type = header["msg_type"]
        if msg_type in REFUSED_FOR_ALL:
            self._refuse(channel, message, "Shared kernels are shut down by the service, not by one participant.")
            return
        if not channel.can_run and not (name == "shell" and msg_type in VIEWER_REQUESTS):
            log.warning("kernel request refused room=%s user=%s site=%s role=%s msg_type=%s",
                        self.key, channel.runner.user, channel.runner.site, channel.role, msg_type)
            self._refuse(channel, message, "You can view this notebook but not run it: only editors run code.")
            return
        if not self.alive or self._starting is not None:
            # starting: its sockets exist, but until the start ends it drains
            # what the shell socket receives (replies to its nudges), a reply
            # to this request included; so wait for the start, like its starter
            if not channel.can_run:
                # a viewer's question waits for the kernel an editor starts (then it is asked)
                self._deferred = [(c, m) for c, m in self._deferred if c in self.channels][-20:] + [(channel, message)]
                return
            try:
                await self.ensure_started(channel.runner, starter)
            except KernelError as exc:
                self._refuse(channel, message, str(exc))
                return
        assert self.session is not None
        if msg_type == "execute_request" and (message.get("content") or {}).get("allow_stdin"):
            try:  # its input() goes to our stdin socket: the kernel must be able to reach it (after a restart too)
                if self.stdin is None:  # it stopped while this message waited for its start
                    raise KernelError("the shared kernel is not running")
                await self.stdin.ready(self.host.start_timeout)
            except KernelError as exc:
                self._refuse(channel, message, str(exc))
                return
        if name not in self.sockets:  # it stopped meanwhile
            self._refuse(channel, message, "the shared kernel is not running")
            return
        if name != "stdin" and msg_type.endswith("_request"):
            self._pending[header["msg_id"]] = channel
        if msg_type == "execute_request":
            content = message.get("content") or {}
            metadata = message.get("metadata") or {}
            cell_id = metadata.get("cellId") if isinstance(metadata.get("cellId"), str) else None
            execution = Execution(self.key, header["msg_id"], cell_id, channel.runner, str(content.get("code", "")),
                                  origin=channel)
            self._executions[execution.msg_id] = execution
            log.info("kernel execute room=%s user=%s site=%s cell=%s chars=%d",
                     self.key, channel.runner.user, channel.runner.site, cell_id or "-", len(execution.code))
        self.last_activity = time.monotonic()
        wire = {k: message.get(k) or {} for k in ("header", "parent_header", "metadata", "content")}
        self.session.send(self.sockets[name], wire)

    def _refuse(self, channel: KernelChannel, message: dict, words: str) -> None:
        """Answer a request that will not reach the kernel, as the kernel would fail it."""
        for msg in refusal(message, words, self.session):
            channel.deliver(msg)

    # -- messages from the kernel --------------------------------------------------

    def _decode(self, raw: list[bytes]) -> dict | None:
        assert self.session is not None
        try:
            _idents, parts = self.session.feed_identities(raw)
            return self.session.deserialize(parts, content=True)
        except Exception as exc:  # noqa: BLE001 - a bad frame is logged and skipped
            log.warning("undecodable kernel message room=%s error=%r", self.key, exc)
            return None

    async def _read_replies(self, name: str) -> None:
        socket = self.sockets[name]
        while True:
            msg = self._decode(await socket.recv_multipart())
            if msg is None:
                continue
            parent_id = (msg.get("parent_header") or {}).get("msg_id")
            wire = _jsonable(msg)
            wire["channel"] = name
            if name == "stdin":
                execution = self._executions.get(parent_id)
                target = self._pending.get(parent_id)
                if target is not None:
                    target.deliver(wire)
                elif execution is not None:
                    log.info("input requested but its asker left room=%s user=%s", self.key, execution.runner.user)
                continue
            target = self._pending.pop(parent_id, None)
            if target is not None:
                target.deliver(wire)
            elif parent_id not in self._nudges:
                # its asker left, or a request this kernel was never sent: kept in the log,
                # since a reply nobody receives leaves a cell waiting
                log.info("kernel reply with nobody waiting room=%s channel=%s msg_type=%s",
                         self.key, name, msg.get("msg_type", "?"))

    async def _read_iopub(self) -> None:
        socket = self.sockets["iopub"]
        while True:
            msg = self._decode(await socket.recv_multipart())
            if msg is None:
                continue
            await self._on_iopub(msg)

    async def _on_iopub(self, msg: dict) -> None:
        msg_type = msg["header"].get("msg_type", "")
        content = msg.get("content") or {}
        parent_id = (msg.get("parent_header") or {}).get("msg_id")
        if parent_id in self._nudges:  # the answer to our own nudge after a restart: nobody else's business
            self._iopub_reached.set()
            return
        execution = self._executions.get(parent_id)
        observer = self.host.observer
        if msg_type == "status":
            state = content.get("execution_state")
            if state in ("busy", "idle") and not self._restarting:
                self.state = state
            self.last_activity = time.monotonic()
        if execution is not None and not execution.started and msg_type in ("execute_input", "status", *OUTPUT_TYPES):
            await self._begin_run(execution)
        if execution is not None and msg_type == "execute_input":
            execution.execution_count = content.get("execution_count")
        if execution is not None and msg_type in OUTPUT_TYPES:
            kept = self._capped(execution, msg_type, content)
            if execution.written:
                for kind, body in kept:
                    await observer.output(execution, kind, body)
                return
            if not kept:
                return
            if kept[0][1] is not content:  # the truncation note, as a stream message
                kind, note = kept[0]
                msg = {**msg, "header": {**msg["header"], "msg_type": kind}, "msg_type": kind, "content": note}
        wire = _jsonable(msg)
        wire["channel"] = "iopub"
        self._broadcast(wire)
        if execution is not None and msg_type == "status" and content.get("execution_state") == "idle":
            del self._executions[execution.msg_id]
            if execution.written:
                try:
                    await observer.finished(execution, None)
                except Exception as exc:  # noqa: BLE001
                    log.error("run end not written room=%s cell=%s error=%r", self.key, execution.cell_id, exc)
            self.host.spawn(self.push(), name=f"push:{self.key}")

    def _capped(self, execution: Execution, msg_type: str, content: dict) -> list[tuple[str, dict]]:
        """The output as it may be shown: past the run's limit, a note once, then nothing."""
        if execution.truncated:
            return []
        size = len(json.dumps(content.get("data") or content.get("text") or content.get("traceback") or "",
                              default=str))
        limit = self.host.max_output_chars
        if limit <= 0 or execution.output_chars + size <= limit or msg_type == "clear_output":
            execution.output_chars += size
            return [(msg_type, content)]
        execution.truncated = True
        note = (f"[output truncated: this run printed more than {limit:,} characters; "
                f"the rest was not kept (KernelHost.max_output_chars)]\n")
        return [("stream", {"name": "stderr", "text": note})]


def refusal(message: dict, words: str, session: KernelSession | None = None) -> list[dict]:
    """The messages that answer a request which will not reach a kernel, as
    the kernel would fail it (busy, the error, the reply, idle); nothing for
    a message that is not a request. Also used by a replica relaying to the
    kernel of another replica that stopped (cs3collab.service.kernel_relay)."""
    header = message["header"]
    msg_type = header["msg_type"]
    if not msg_type.endswith("_request"):
        return []
    session = session or KernelSession(username="cs3collab")
    error = {"status": "error", "ename": "PermissionError" if "editors" in words else "KernelError",
             "evalue": words, "traceback": [words]}
    out: list[tuple[str, dict]] = [("iopub", session.msg("status", {"execution_state": "busy"}, parent=header))]
    if msg_type == "execute_request":
        out.append(("iopub", session.msg("error", {k: error[k] for k in ("ename", "evalue", "traceback")}, parent=header)))
        error["execution_count"] = None
    out.append((message.get("channel", "shell"), session.msg(msg_type[: -len("_request")] + "_reply", error, parent=header)))
    out.append(("iopub", session.msg("status", {"execution_state": "idle"}, parent=header)))
    messages = []
    for name, msg in out:
        msg["channel"] = name
        messages.append(_jsonable(msg))
    return messages


def status_message(state: str, parent: dict | None = None, session: KernelSession | None = None) -> dict:
    """An iopub ``status`` message (of no request without ``parent``: ``dead`` when a kernel is gone)."""
    message = (session or KernelSession(username="cs3collab")).msg("status", {"execution_state": state},
                                                                   parent=parent or {})
    message["channel"] = "iopub"
    return _jsonable(message)


def _jsonable(msg: dict) -> dict:
    """A kernel message as JSON-safe dict (dates as ISO text, no binary buffers)."""
    keep = {k: msg.get(k) for k in ("header", "parent_header", "metadata", "content")}
    keep["msg_id"] = msg.get("header", {}).get("msg_id", "")
    keep["msg_type"] = msg.get("header", {}).get("msg_type", "")
    keep["buffers"] = []
    if "channel" in msg:
        keep["channel"] = msg["channel"]
    return json.loads(json.dumps(keep, default=json_default))
