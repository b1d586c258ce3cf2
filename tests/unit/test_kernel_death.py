"""A kernel that dies inside a run: the run's cell says so, even when the
kernel died before its "busy" reached the service (a kernel killed at once
does not flush its iopub; seen under load in test_kernel_faults)."""

from __future__ import annotations

from types import SimpleNamespace

from cs3collab.kernels.model import Execution, Runner
from cs3collab.kernels.shared import SharedKernel


class Observer:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    async def started(self, execution: Execution) -> bool:
        self.calls.append(("started", execution.cell_id))
        return True

    async def output(self, execution, msg_type, content) -> None:
        self.calls.append(("output", execution.cell_id, msg_type))

    async def finished(self, execution: Execution, error: str | None) -> None:
        self.calls.append(("finished", execution.cell_id, error))

    async def kernel_event(self, key: str, event: str, words: str) -> None:
        self.calls.append(("kernel", event))


def kernel_with(*executions: Execution) -> tuple[SharedKernel, Observer]:
    observer = Observer()
    kernel = SharedKernel(SimpleNamespace(observer=observer), "room")

    async def release(now: bool = False) -> None:
        pass

    kernel._release = release
    for execution in executions:
        kernel._executions[execution.msg_id] = execution
    return kernel, observer


def run(msg_id: str, cell: str) -> Execution:
    return Execution("room", msg_id, cell, Runner("Albert Einstein", "einstein@cernbox.test", "cernbox.test"), "x")


async def test_a_death_before_the_busy_message_ends_the_first_run_sent():
    kernel, observer = kernel_with(run("m1", "cell-1"), run("m2", "cell-2"))
    await kernel._died("the kernel was stopped by SIGKILL")
    ended = [call for call in observer.calls if call[0] == "finished"]
    assert [call[1] for call in ended] == ["cell-1"], "the cell that was running shows the death; the queued one is untouched"
    assert "SIGKILL" in ended[0][2]
    assert observer.calls[0] == ("started", "cell-1") and observer.calls[-1] == ("kernel", "died")
    assert kernel.state == "dead"


async def test_a_death_during_a_started_run_ends_that_run_only():
    first, second = run("m1", "cell-1"), run("m2", "cell-2")
    first.started = first.written = True
    kernel, observer = kernel_with(first, second)
    await kernel._died("out of memory")
    assert [call[:2] for call in observer.calls] == [("finished", "cell-1"), ("kernel", "died")]
