"""The shared kernel's message authorization, one module alone (no kernel is
started: every case here is refused before one would be): viewers run
nothing, nobody shuts the shared kernel down, and a refusal is answered the
way a frontend can show it (reply with status error, error output, idle)."""

from __future__ import annotations

import asyncio
import signal
import uuid

from cs3collab.kernels.host import KernelHost, Runner, describe_exit


class Channel:
    """A participant's channel that keeps what it is sent."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.runner = Runner("Richard Feynman", "richard@cernbox.test", "cernbox.test")
        self.sent: list[dict] = []

    @property
    def can_run(self) -> bool:
        return self.role == "editor"

    def deliver(self, message: dict) -> None:
        self.sent.append(message)

    def close(self, code: int, reason: str) -> None:
        raise AssertionError("a refusal never closes the channel")


def request(msg_type: str, channel: str = "shell") -> dict:
    header = {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "session": "s", "username": "u", "version": "5.3"}
    return {"channel": channel, "header": header, "parent_header": {}, "metadata": {}, "content": {"code": "1"}}


async def never_started(root):
    raise AssertionError("no kernel may start for a refused request")


async def test_a_viewer_cannot_run_interrupt_or_answer_input():
    kernel = KernelHost().kernel("room")
    viewer = Channel("viewer")
    for msg_type, name in (("execute_request", "shell"), ("interrupt_request", "control"),
                           ("complete_request", "shell"), ("input_reply", "stdin")):
        message = request(msg_type, name)
        await kernel.send(viewer, message, never_started)
    replies = [m for m in viewer.sent if m["msg_type"].endswith("_reply")]
    assert [m["msg_type"] for m in replies] == ["execute_reply", "interrupt_reply", "complete_reply"]
    assert all(m["content"]["status"] == "error" and "only editors run code" in m["content"]["evalue"] for m in replies)
    errors = [m for m in viewer.sent if m["msg_type"] == "error"]
    assert len(errors) == 1 and errors[0]["channel"] == "iopub"  # the refused run shows in its cell
    states = [m["content"]["execution_state"] for m in viewer.sent if m["msg_type"] == "status"]
    assert states == ["busy", "idle"] * 3  # each refused request completes in the frontend


async def test_nobody_shuts_the_shared_kernel_down():
    kernel = KernelHost().kernel("room")
    editor = Channel("editor")
    await kernel.send(editor, request("shutdown_request", "control"), never_started)
    [reply] = [m for m in editor.sent if m["msg_type"] == "shutdown_reply"]
    assert reply["channel"] == "control" and reply["content"]["status"] == "error"


def test_a_kernel_death_is_told_in_words():
    assert "limit" in describe_exit(-signal.SIGKILL)
    assert describe_exit(1) == "it exited with code 1"
    assert describe_exit(None) == "it stopped responding"


async def test_a_request_that_comes_while_the_kernel_starts_waits_for_the_start():
    """Einstein's run starts the kernel; Marie's (relayed from another
    replica) comes while the start is still draining the replies to its
    kernel_info nudges from the shell socket. Sent then, the reply to her
    request would be drained too and her cell would wait for ever: it is
    sent once the start is over, as is the reply a viewer waits for."""
    kernel = KernelHost().kernel("room")
    drained = asyncio.Event()
    sent: list[tuple[str, str]] = []

    class Session:
        def send(self, socket, wire):
            sent.append((wire["header"]["msg_id"], kernel.state))

    async def start(starter, factory):  # as SharedKernel._start: sockets before the kernel is heard from
        kernel.state = "starting"
        kernel.manager, kernel.session, kernel.sockets = object(), Session(), {"shell": object()}
        await drained.wait()
        kernel.state = "idle"
        for waiting, message in kernel.take_deferred():
            kernel._pending[message["header"]["msg_id"]] = waiting
            kernel.session.send(kernel.sockets["shell"], message)

    kernel._start = start
    einstein, marie, viewer = Channel("editor"), Channel("editor"), Channel("viewer")
    for channel in (einstein, marie, viewer):
        kernel.attach(channel)
    first, second, asked = request("execute_request"), request("execute_request"), request("kernel_info_request")
    starting = asyncio.create_task(kernel.send(einstein, first, never_started))
    while kernel.manager is None:
        await asyncio.sleep(0)  # until the start has its sockets
    relayed = asyncio.create_task(kernel.send(marie, second, never_started))
    await kernel.send(viewer, asked, never_started)
    for _ in range(5):
        await asyncio.sleep(0)  # let the relayed request run as far as it goes
    assert sent == [] and not relayed.done()
    drained.set()
    await asyncio.gather(starting, relayed)
    assert sorted(sent) == sorted((m["header"]["msg_id"], "idle") for m in (first, second, asked))
    assert not marie.sent and not einstein.sent and not viewer.sent  # nothing refused
