"""A restart whose new process never reaches the service ends the kernel as a
death does: before, the kernel said "restarting" for as long as that process
lived, and every run waited on it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from cs3collab.kernels.model import Execution, KernelError, Runner
from cs3collab.kernels.shared import SharedKernel
from tests.unit.test_kernel_death import Observer

EINSTEIN = Runner("Albert Einstein", "einstein@cernbox.test", "cernbox.test")


class NeverBack:
    """A kernel manager whose restart never returns (a new process that hangs)."""

    async def restart_kernel(self, now: bool = False) -> None:
        await asyncio.Event().wait()


class Stdin:
    async def expect_reconnect(self) -> None:
        pass

    async def ready(self, timeout: float) -> None:
        pass


def restarting_kernel(manager) -> tuple[SharedKernel, Observer]:
    observer = Observer()
    kernel = SharedKernel(SimpleNamespace(observer=observer, start_timeout=0.2), "room")
    kernel.manager, kernel.stdin, kernel.state = manager, Stdin(), "busy"
    released: list[bool] = []

    async def release(now: bool = False) -> None:
        released.append(now)
        kernel.manager = None

    kernel._release = release
    kernel.released = released
    return kernel, observer


async def test_a_restart_that_never_comes_back_ends_the_kernel_in_words():
    kernel, observer = restarting_kernel(NeverBack())
    running = Execution("room", "m1", "cell-1", EINSTEIN, "x")
    running.started = running.written = True
    kernel._executions["m1"] = running
    with pytest.raises(KernelError, match="did not restart within 0.2 s"):
        await kernel.restart(EINSTEIN)
    assert kernel.state == "dead" and not kernel.alive  # not "restarting" for ever
    assert kernel.released == [True]  # its process stopped
    finished = [call for call in observer.calls if call[0] == "finished"]
    assert finished and "did not answer within 0.2 s of a restart" in finished[0][2]
    assert observer.calls[-1] == ("kernel", "died")  # the room is told; the next run starts a new kernel


async def test_a_restart_whose_input_channel_never_connects_ends_the_kernel_too():
    class Back:
        async def restart_kernel(self, now: bool = False) -> None:
            pass

    class Silent(Stdin):
        async def ready(self, timeout: float) -> None:
            raise KernelError(f"the shared kernel's input channel did not connect within {timeout:g} s")

    kernel, observer = restarting_kernel(Back())
    kernel.stdin = Silent()
    with pytest.raises(KernelError, match="input channel did not connect"):
        await kernel.restart(EINSTEIN)
    assert kernel.state == "dead" and observer.calls[-1] == ("kernel", "died")


async def test_a_kernel_shut_down_mid_run_ends_the_run_in_words():
    """The service stopping (or a replica that lost its claim) shuts a kernel
    down while a cell runs: the cell shows the run ended, saying why."""
    kernel, observer = restarting_kernel(NeverBack())
    running = Execution("room", "m1", "cell-1", EINSTEIN, "x")
    running.started = running.written = True
    kernel._executions["m1"] = running
    await kernel.shutdown("the service is stopping")
    finished = [call for call in observer.calls if call[0] == "finished"]
    assert finished == [("finished", "cell-1", "The shared kernel of this notebook stopped: the service is stopping. "
                                               "Its variables are gone; run a cell to start a new one.")]
    assert not kernel._executions
