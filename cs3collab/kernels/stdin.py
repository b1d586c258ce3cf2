"""The shared kernel's stdin socket, and whether the kernel can reach it.

The kernel *sends first* on stdin: an ``input_request`` to the identity that
sent the run. Its ROUTER silently drops a message for an identity whose
DEALER has not finished connecting, and the kernel then waits forever for a
reply: the run hangs. That window opens at every kernel start *and* at every
restart (the DEALER keeps its address and reconnects to the new process by
itself, a retry interval later). So :class:`StdinLink` watches the DEALER's
handshakes for the kernel's whole life, and the shared kernel asks
:meth:`StdinLink.ready` before it relays a run.

The socket is made here rather than with jupyter_client's ``connect_stdin``
because the monitor must be attached before ``connect`` (a handshake that
completes at once is not missed), and jupyter_client has no hook for that.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import zmq
import zmq.asyncio
import zmq.utils.monitor

from cs3collab.kernels.model import KernelError

if TYPE_CHECKING:
    from jupyter_client.manager import AsyncKernelManager

WATCHED = zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED


class StdinLink:
    """The stdin DEALER of one kernel, connected, with its state.

    The state is read from the socket's monitor when asked (no task of its
    own): :meth:`ready` reads the events that came since, and waits for the
    next handshake if the last event was a disconnect.
    """

    def __init__(self, manager: AsyncKernelManager, identity: bytes) -> None:
        sock = manager.context.socket(zmq.DEALER)
        sock.linger = 1000
        sock.identity = identity
        if getattr(manager, "curve_publickey", None) is not None:  # the CURVE keys jupyter_client's sockets use
            sock.curve_secretkey = manager.curve_secretkey
            sock.curve_publickey = manager.curve_publickey
            sock.curve_serverkey = manager.curve_publickey
        self.socket: zmq.asyncio.Socket = sock
        self._monitor: zmq.asyncio.Socket | None = sock.get_monitor_socket(WATCHED)
        self._connected = False
        self._reading = asyncio.Lock()  # one reader of the monitor at a time (two would split its events)
        info = manager.get_connection_info()
        if info["transport"] == "tcp":
            sock.connect(f"tcp://{info['ip']}:{info['stdin_port']}")
        else:
            sock.connect(f"{info['transport']}://{info['ip']}-{info['stdin_port']}")

    async def expect_reconnect(self) -> None:
        """The kernel process is about to be replaced (a restart): until the
        new one's handshake, the link is not ready, whatever events the old
        one's exit has not yet produced."""
        async with self._reading:
            await self._read_pending()
            self._connected = False

    async def ready(self, timeout: float) -> None:
        """Return once the kernel can reach this socket; raises KernelError
        (in words) after ``timeout`` seconds."""
        if self._monitor is None:
            raise KernelError("the shared kernel is not running")
        try:
            async with asyncio.timeout(timeout), self._reading:
                await self._read_pending()
                while not self._connected:
                    self._apply(await zmq.utils.monitor.recv_monitor_message(self._monitor))
        except TimeoutError:
            raise KernelError(f"the shared kernel's input channel did not connect within {timeout:g} s") from None
        except (zmq.ZMQError, asyncio.CancelledError):
            task = asyncio.current_task()
            if self._monitor is None and task is not None and not task.cancelling():
                # closed meanwhile (pyzmq cancels a closed socket's pending receive): the kernel stopped
                raise KernelError("the shared kernel is not running") from None
            raise

    def close(self) -> None:
        if self._monitor is not None:
            self.socket.disable_monitor()
            self._monitor.close(linger=0)
            self._monitor = None
        self.socket.close(linger=0)

    async def _read_pending(self) -> None:
        """Apply the events that came since the last look, without waiting."""
        while self._monitor is not None and await self._monitor.poll(0):
            self._apply(await zmq.utils.monitor.recv_monitor_message(self._monitor))

    def _apply(self, event: dict) -> None:
        if event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self._connected = True
        elif event["event"] == zmq.EVENT_DISCONNECTED:
            self._connected = False
