"""What the shared kernels' parts say to each other: who runs, one run, a
participant's channel, the service's observer, the workspace, and the two
errors. No behaviour here (see host.py and shared.py)."""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class KernelError(Exception):
    """A shared kernel could not do what was asked (start, restart...); the message is for users."""


class KernelRefused(Exception):
    """A participant may not do this (a viewer asking to run, interrupt or restart)."""


@dataclass(frozen=True)
class Runner:
    """Who runs code: shown in the cell, in presence and in logs.

    Args:
        name: display name.
        user: ``username@idp``, as the service's logs name users.
        site: the user's institution (idp).
    """

    name: str
    user: str
    site: str


@dataclass(eq=False)
class Execution:
    """One ``execute_request`` of a participant, followed until its kernel is idle again."""

    key: str
    msg_id: str
    cell_id: str | None
    runner: Runner
    code: str
    at: str = field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    origin: Any = None  # the channel that asked (the service knows its participant)
    written: bool = False  # the observer writes its outputs (then they are not forwarded)
    started: bool = False
    execution_count: int | None = None
    output_chars: int = 0
    truncated: bool = False
    clear_on_next: bool = False  # a clear_output(wait=True) waits for the next output


class KernelChannel(Protocol):
    """One participant's connection to a shared kernel (a WebSocket).

    ``deliver`` queues one kernel message (a JSON-able dict with its
    ``channel``) and never blocks; ``close`` ends the connection.
    """

    role: str
    runner: Runner

    @property
    def can_run(self) -> bool: ...

    def deliver(self, message: dict) -> None: ...

    def close(self, code: int, reason: str) -> None: ...


class ExecutionObserver(Protocol):
    """What the host tells the service about runs (the service writes them into the room)."""

    async def started(self, execution: Execution) -> bool:
        """A run began (its ``execute_input``); True when the observer writes its outputs."""

    async def output(self, execution: Execution, msg_type: str, content: dict) -> None:
        """One output-bearing iopub message of a run the observer writes."""

    async def finished(self, execution: Execution, error: str | None) -> None:
        """The run ended (kernel idle again), or ``error`` says why it never will."""

    async def kernel_event(self, key: str, event: str, words: str) -> None:
        """Something everyone in the room should read: ``started``, ``restarted``, ``died``, ``culled``."""


class Workspace(Protocol):
    """The kernel's working directory and its CS3 side (see cs3collab.kernels.workspace)."""

    async def pull(self) -> None: ...

    async def push(self) -> list[str]: ...

    async def close(self) -> None: ...


WorkspaceFactory = Callable[[Path], Awaitable[Workspace]]
"""Given the kernel's working directory, the workspace to fill it (called once per kernel start)."""
