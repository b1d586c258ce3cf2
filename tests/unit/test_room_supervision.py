"""A live room's background work is supervised (cs3collab.service.registry.LiveRoom).

An unexpected exception in saving, polling, locking or access re-checks is
logged with the room, the file and the traceback, counted, and the work is
started again after a backoff, while the room's other work carries on.
Unit test of one module: the work functions are stand-ins that fail on
purpose (the service's own paths are tested over real processes in
tests/service/test_unsavable_state.py).
"""

from __future__ import annotations

import asyncio
import logging

from cs3.storage.provider.v1beta1 import resources_pb2

from cs3collab.service import documents
from cs3collab.service.registry import LiveRoom
from cs3collab.service.room import Room
from cs3collab.service.storage import StorageSettings
from cs3collab.service.worker import DocumentWorker


class NoJournal:
    async def append(self, room: str, update: bytes, author: str = "") -> int:
        return 1


async def test_failing_work_is_logged_counted_and_restarted_while_other_work_goes_on(caplog):
    resource_id = resources_pb2.ResourceId(storage_id="s", space_id="sp", opaque_id="o")
    room = Room("room-7", documents.NOTEBOOK, "file-7", NoJournal())
    live = LiveRoom(room, resource_id, StorageSettings(retry_delay=0.01), DocumentWorker(inline=True), 0)
    attempts = 0
    others = 0
    done = asyncio.Event()

    async def flaky() -> None:
        nonlocal attempts
        attempts += 1
        if attempts <= 3:
            raise ValueError(f"boom {attempts}")
        done.set()

    async def steady() -> None:
        nonlocal others
        while True:
            others += 1
            await asyncio.sleep(0)

    with caplog.at_level(logging.ERROR, logger="cs3collab.service.registry"):
        async with asyncio.TaskGroup() as tasks:
            other = tasks.create_task(live._supervised("polling", steady))
            tasks.create_task(live._supervised("saving", flaky))
            await asyncio.wait_for(done.wait(), 30)
            other.cancel()

    assert attempts == 4 and live.failures == {"saving": 3}
    assert others > 10  # the other work ran on while this one failed and waited
    failures = [r for r in caplog.records if "room background work failed" in r.getMessage()]
    assert len(failures) == 3
    assert "room=room-7" in failures[0].getMessage() and "work=saving" in failures[0].getMessage()
    assert failures[0].exc_info is not None and "boom 1" in str(failures[0].exc_info[1])
