"""A real Debian ``redis-server`` on a free loopback port, for tests.

Redis cannot be told to pick a free port itself (``--port 0`` disables TCP),
so the fixture binds a socket to port 0, reads the port the kernel chose,
closes it and passes it to redis-server; if another process took the port in
between, redis-server exits and the start is retried on a new port. Ready
means the line "Ready to accept connections" was printed: no sleep, no
polling of the port.

Persistence is the append-only file (``appendonly yes``) with the fsync
policy given (docs/operations.md says what each one guarantees); RDB
snapshots are off, so what survives a restart is what the AOF holds.
"""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import RunningProcess, run_process

REDIS_READY = re.compile(r"Ready to accept connections")
REDIS_SERVER = "/usr/bin/redis-server"


def free_port() -> int:
    """A loopback port free at the time of the call."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RedisServer:
    port: int
    data_dir: Path
    running: RunningProcess

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@contextlib.asynccontextmanager
async def redis_server(
    data_dir: Path, *, port: int | None = None, appendfsync: str = "everysec"
) -> AsyncIterator[RedisServer]:
    """Run redis-server with its AOF in ``data_dir`` on ``port`` (None: a
    free one; the port of an earlier run brings a stopped Redis back where
    its clients look); SIGTERM on exit (Redis then writes nothing more, the
    AOF already holds every acknowledged write)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    attempts = 1 if port is not None else 5
    started = False
    for attempt in range(attempts):
        chosen = port if port is not None else free_port()
        args = [
            REDIS_SERVER,
            "--bind", "127.0.0.1", "--port", str(chosen), "--protected-mode", "yes",
            "--dir", str(data_dir), "--daemonize", "no", "--logfile", "", "--loglevel", "notice",
            "--save", "", "--appendonly", "yes", "--appendfsync", appendfsync,
            "--databases", "4",
        ]
        try:
            async with run_process(args, REDIS_READY) as running:
                started = True
                yield RedisServer(chosen, data_dir, running)
                return
        except RuntimeError as e:
            if not started and "Address already in use" in str(e) and attempt + 1 < attempts:
                continue
            raise
