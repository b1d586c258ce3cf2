"""The document worker's start is bounded: a worker process that never
answers is killed and another started, and after the last attempt the
service gets an error in words instead of waiting forever (a restarted
service once printed nothing after "journal opened" for 120 s)."""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.connection import wait

import pytest

from cs3collab.service import worker
from cs3collab.service.worker import DocumentWorker


def _stuck_pool() -> ProcessPoolExecutor:
    """A pool whose worker never gets past its initializer."""
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                               initializer=time.sleep, initargs=(3600,))


async def test_a_worker_that_never_answers_is_replaced_then_reported(monkeypatch, caplog):
    monkeypatch.setattr(worker, "START_TIMEOUT", 3.0)
    monkeypatch.setattr(worker, "START_ATTEMPTS", 2)
    pools: list[ProcessPoolExecutor] = []

    def new_pool() -> ProcessPoolExecutor:
        pools.append(_stuck_pool())
        return pools[-1]

    monkeypatch.setattr(DocumentWorker, "_new_pool", staticmethod(new_pool))
    started: list[multiprocessing.Process] = []
    stop = DocumentWorker.stop

    def noting_stop(self: DocumentWorker, kill: bool = False) -> None:
        if self._pool is not None:
            started.extend(self._pool._processes.values())
        stop(self, kill)

    monkeypatch.setattr(DocumentWorker, "stop", noting_stop)
    with pytest.raises(RuntimeError, match="did not start in 2 attempts of 3 s"):
        await DocumentWorker().start()
    assert len(pools) == 2
    assert caplog.text.count("document worker did not start") == 2
    assert len(started) == 2
    # killed, not left behind sleeping. The pool's own thread reaps these
    # processes too, so Process.is_alive() can race with it (CI saw it say
    # True of a process already killed); the sentinel closes when the
    # process ends, whoever reaps it.
    for process in started:
        assert wait([process.sentinel], timeout=10) == [process.sentinel]


async def test_a_worker_that_answers_is_ready():
    async with DocumentWorker() as started:
        assert await started.run(worker._ready) is True
