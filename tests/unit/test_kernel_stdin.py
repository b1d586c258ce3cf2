"""The kernel sends first on stdin (an ``input_request`` to the identity that
sent the run) and its ROUTER drops what it cannot route. A run that asks for
input right after the kernel started once hung forever (CI, under load): the
stdin socket had not finished connecting. The same window opens after every
restart, when the socket reconnects to the new process by itself. The shared
kernel asks :class:`StdinLink` before it relays a run that may ask for input."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
import zmq
import zmq.asyncio
import zmq.utils.monitor

from cs3collab.kernels.model import KernelError
from cs3collab.kernels.stdin import StdinLink


def a_manager(context: zmq.asyncio.Context, where: Path) -> SimpleNamespace:
    """What the shared kernel reads of jupyter_client's manager: its context and connection info."""
    info = {"transport": "ipc", "ip": str(where / "ipc"), "stdin_port": 3}
    return SimpleNamespace(context=context, curve_publickey=None, get_connection_info=lambda: info)


class Kernel:
    """The kernel's side: a stdin ROUTER bound at the manager's address.

    It asks only once its own end of the connection is up, as a real kernel
    does: ipykernel sends an input request only while it runs a request it
    received from that client on another socket. The DEALER's handshake (what
    :meth:`StdinLink.ready` waits for) can complete a moment before the
    ROUTER's I/O thread has registered the peer; a send in that moment is
    unroutable (seen once, on a busy machine)."""

    def __init__(self, context: zmq.asyncio.Context, where: Path) -> None:
        self.router = context.socket(zmq.ROUTER)
        self.router.router_mandatory = True  # an unroutable send raises instead of vanishing
        self.monitor = self.router.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        self.router.bind(f"ipc://{where}/ipc-3")

    async def ask(self, identity: bytes, words: bytes) -> None:
        event = await asyncio.wait_for(zmq.utils.monitor.recv_monitor_message(self.monitor), 30)
        assert event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED
        await self.router.send_multipart([identity, words])

    def exit(self) -> None:
        self.router.disable_monitor()
        self.monitor.close(0)
        self.router.close(0)


@pytest.fixture
async def context():
    context = zmq.asyncio.Context()
    yield context
    context.term()


async def test_a_kernel_that_binds_late_is_waited_for_and_reaches_the_asker(context, tmp_path):
    link = StdinLink(a_manager(context, tmp_path), b"asker")
    waiting = asyncio.create_task(link.ready(30))  # connected before the kernel listens, as at start-up
    kernel = Kernel(context, tmp_path)
    try:
        await waiting
        await kernel.ask(b"asker", b"who?")
        assert await asyncio.wait_for(link.socket.recv_multipart(), 30) == [b"who?"]
    finally:
        link.close()
        kernel.exit()


async def test_a_kernel_that_never_listens_is_an_error_in_words(context, tmp_path):
    link = StdinLink(a_manager(context, tmp_path), b"asker")
    try:
        with pytest.raises(KernelError, match="input channel did not connect within 0.2 s"):
            await link.ready(0.2)
    finally:
        link.close()


async def test_after_a_restart_the_new_process_is_waited_for(context, tmp_path):
    link = StdinLink(a_manager(context, tmp_path), b"asker")
    old = Kernel(context, tmp_path)
    try:
        await link.ready(30)
        await link.expect_reconnect()  # as SharedKernel.restart does before the process is replaced
        old.exit()
        # no process listens: the link does not claim to be ready (it would, from the old handshake)
        with pytest.raises(KernelError, match="did not connect"):
            await link.ready(0.3)
        new = Kernel(context, tmp_path)
        try:
            await link.ready(30)
            await new.ask(b"asker", b"who, again?")  # router_mandatory: raises if the asker is not connected
            assert await asyncio.wait_for(link.socket.recv_multipart(), 30) == [b"who, again?"]
        finally:
            new.exit()
    finally:
        link.close()


async def test_concurrent_waiters_are_all_answered(context, tmp_path):
    link = StdinLink(a_manager(context, tmp_path), b"asker")
    waiting = [asyncio.create_task(link.ready(30)) for _ in range(3)]  # one handshake, three runs waiting
    kernel = Kernel(context, tmp_path)
    try:
        await asyncio.gather(*waiting)
    finally:
        link.close()
        kernel.exit()


async def test_a_closed_link_says_the_kernel_is_not_running(context, tmp_path):
    link = StdinLink(a_manager(context, tmp_path), b"asker")
    waiting = asyncio.create_task(link.ready(30))
    await asyncio.sleep(0)  # one turn of the loop: it is now waiting on the monitor (no kernel listens)
    link.close()
    with pytest.raises(KernelError, match="not running"):
        await waiting
    with pytest.raises(KernelError, match="not running"):
        await link.ready(30)
