"""Start cs3collab parts as real processes on loopback, for tests.

Every server a test talks to is a real process on 127.0.0.1 with ports it
chose itself (port 0); the fixture learns them from the one "ready" line the
process prints, so no test ever guesses a port or sleeps waiting for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

# an upper bound on waiting for a process's ready line, not a delay: a start on a
# loaded 2-core machine (imports of grpc, pycrdt, jupyter_server) took over 30 s
READY_TIMEOUT = 120.0
DEVSTACK_READY = re.compile(
    r"cs3collab devstack ready: gateway=(?P<gateway>\S+) http=(?P<http>\S+) domain=(?P<domain>\S+)"
    r"(?: oidc=(?P<oidc>\S+))?"
)


@dataclass
class RunningProcess:
    """A started process, what its ready line said, and what it printed."""

    process: asyncio.subprocess.Process
    ready: dict[str, str]
    output: list[str] = field(default_factory=list)
    printed: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def pid(self) -> int:
        return self.process.pid

    def count(self, text: str) -> int:
        """How many lines printed so far contain ``text``."""
        return sum(text in line for line in self.output)

    async def wait_for_output(self, text: str, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until ``count`` printed lines contain ``text`` (woken by each new line)."""
        async with asyncio.timeout(timeout):
            async with self.printed:
                await self.printed.wait_for(lambda: self.count(text) >= count)


async def _pump(
    stream: asyncio.StreamReader, sink: list[str], ready: re.Pattern[str], found: asyncio.Future,
    printed: asyncio.Condition,
) -> None:
    while True:
        try:
            line = await stream.readline()
        except ValueError:  # a line beyond the reader's limit: keep what fits, go on
            line = await stream.read(READ_LIMIT)
        if not line:
            break
        text = line.decode(errors="replace").rstrip()
        sink.append(text)
        async with printed:
            printed.notify_all()
        match = ready.search(text)
        if match and not found.done():
            found.set_result(match.groupdict())
    if not found.done():
        found.set_exception(RuntimeError("process exited before it was ready:\n" + "\n".join(sink[-40:])))


READ_LIMIT = 4 * 1024 * 1024
"""Bytes of one printed line the pump reads at once (asyncio's default, 64 KiB,
would end the pump at a longer line, and with it the wait for the ready line)."""


@contextlib.asynccontextmanager
async def run_process(args: list[str], ready: re.Pattern[str], env: dict[str, str] | None = None) -> AsyncIterator[RunningProcess]:
    """Run ``args``, wait for a line matching ``ready``, stop it (SIGTERM) on exit."""
    process = await asyncio.create_subprocess_exec(
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        limit=READ_LIMIT,
    )
    output: list[str] = []
    printed = asyncio.Condition()
    found: asyncio.Future = asyncio.get_running_loop().create_future()
    pump = asyncio.ensure_future(_pump(process.stdout, output, ready, found, printed))
    try:
        try:
            groups = await asyncio.wait_for(asyncio.shield(found), READY_TIMEOUT)
        except asyncio.TimeoutError:
            shown = 40
            if args[2:4] == ["cs3collab", "serve"] and process.returncode is None:
                # a service that hangs says where: every task's awaits (kill -USR1, see operations.md)
                process.send_signal(signal.SIGUSR1)
                with contextlib.suppress(asyncio.TimeoutError):
                    async with asyncio.timeout(15):
                        async with printed:
                            await printed.wait_for(lambda: any("asyncio tasks (SIGUSR1)" in line for line in output))
                shown = 100
            raise RuntimeError(f"{args[2:4]} not ready after {READY_TIMEOUT}s:\n" + "\n".join(output[-shown:])) from None
        yield RunningProcess(process, groups, output, printed)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 15)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):  # it ended just now: nothing to kill
                    process.kill()
                await process.wait()
        await pump


def cs3collab_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "cs3collab", *args]


@dataclass
class Devstack:
    gateway: str
    http_url: str
    domain: str
    data_dir: Path
    running: RunningProcess
    oidc_url: str = ""  # the embedded OIDC issuer (``--oidc``), else empty


@contextlib.asynccontextmanager
async def devstack(
    data_dir: Path, *, domain: str | None = "localhost", extra: tuple[str, ...] = ()
) -> AsyncIterator[Devstack]:
    """A devstack site as a real process on free loopback ports (``domain``
    None: the devstack's default, or whatever ``extra`` says)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    args = cs3collab_command("devstack", "--data", str(data_dir), "--port", "0", "--http-port", "0")
    if domain is not None:
        args += ["--domain", domain]
    args += list(extra)
    async with run_process(args, DEVSTACK_READY) as running:
        yield Devstack(running.ready["gateway"], running.ready["http"], running.ready["domain"], data_dir, running,
                       running.ready.get("oidc") or "")


def stable_port() -> int:
    """A loopback port for a process that a test kills and starts again on the
    same port: free now, and below the kernel's ephemeral range (32768 and up
    on Linux), so no outgoing connection of another process is given it while
    the first process is down (an ephemeral port of "port 0" could be, and
    the restart would fail with "address already in use")."""
    import random
    import socket

    for _ in range(200):
        port = random.randint(20000, 32000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port between 20000 and 32000")


SERVICE_READY = re.compile(r"cs3collab service ready: url=(?P<url>\S+) gateway=(?P<gateway>\S+)")


@dataclass
class Service:
    url: str
    state_dir: Path
    running: RunningProcess


@contextlib.asynccontextmanager
async def service(
    gateway: str, state_dir: Path, *, extra: tuple[str, ...] = (), port: int = 0
) -> AsyncIterator[Service]:
    """The collaboration service as a real process on a loopback port (0: a free one;
    a port of an earlier run's brings a killed service back where its clients look)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    args = cs3collab_command("serve", f"--gateway={gateway}", f"--state-dir={state_dir}", f"--port={port}", *extra)
    async with run_process(args, SERVICE_READY) as running:
        yield Service(running.ready["url"], state_dir, running)


@contextlib.asynccontextmanager
async def trusting_sites(root: Path) -> AsyncIterator[tuple[Devstack, Devstack]]:
    """Sites A (cernbox.test) and B (cesnet.test) as real processes, trusting
    each other for OCM through one Reva-format providers file under ``root``."""
    from cs3collab.devstack.ocm_peers import PeerSite, write_providers

    providers = root / "ocm-providers.json"
    extra = ("--ocm-providers", str(providers))
    async with devstack(root / "a", domain="cernbox.test", extra=extra) as a, \
            devstack(root / "b", domain="cesnet.test", extra=extra) as b:
        write_providers(providers, [PeerSite(a.domain, a.http_url), PeerSite(b.domain, b.http_url)])
        yield a, b
