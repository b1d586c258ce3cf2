"""The kernel sends first on stdin (an ``input_request`` to the identity that
sent the run) and its ROUTER drops what it cannot route. A run that asks for
input right after the kernel started once hung forever (CI, under load): the
stdin socket had not finished connecting. The shared kernel now waits for the
stdin handshake before it relays anything."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
import zmq
import zmq.asyncio
import zmq.utils.monitor

from cs3collab.kernels.model import KernelError
from cs3collab.kernels.shared import _await_handshake, _stdin_socket


def a_manager(context: zmq.asyncio.Context, where: Path) -> SimpleNamespace:
    """What the shared kernel reads of jupyter_client's manager: its context and connection info."""
    info = {"transport": "ipc", "ip": str(where / "ipc"), "stdin_port": 3}
    return SimpleNamespace(context=context, curve_publickey=None, get_connection_info=lambda: info)


async def test_a_kernel_that_binds_late_is_waited_for_and_reaches_the_asker(tmp_path):
    context = zmq.asyncio.Context()
    sock, monitor = _stdin_socket(a_manager(context, tmp_path), b"asker")
    waiting = asyncio.create_task(_await_handshake(sock, monitor, 30))
    kernel = context.socket(zmq.ROUTER)  # the kernel's stdin, bound after we connected (as at start-up)
    kernel_monitor = kernel.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
    kernel.bind(f"ipc://{tmp_path}/ipc-3")
    try:
        await waiting
        assert (await zmq.utils.monitor.recv_monitor_message(kernel_monitor))["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED
        await kernel.send_multipart([b"asker", b"who?"])
        assert await asyncio.wait_for(sock.recv_multipart(), 30) == [b"who?"]
    finally:
        kernel_monitor.close(0)
        for s in (sock, kernel):
            s.close(0)
        context.term()


async def test_a_kernel_that_never_listens_is_an_error_in_words(tmp_path):
    context = zmq.asyncio.Context()
    sock, monitor = _stdin_socket(a_manager(context, tmp_path), b"asker")
    try:
        with pytest.raises(KernelError, match="input channel did not connect within 0.2 s"):
            await _await_handshake(sock, monitor, 0.2)
    finally:
        sock.close(0)
        context.term()
