"""A hundred clients opening a new file at the same instant make one room.

What a user notices: everyone who opens the notebook together sees the same
document, and the file is read once (one room, one lock, one history), not
once per tab.
"""

from __future__ import annotations

import anyio

from tests.service.rtc import room_key, sources, type_text
from tests.support.yclient import connect, wait_for

CLIENTS = 100


async def test_hundred_clients_at_once_make_one_room(svc, einstein, notebook):
    path = await notebook("first cell", "second cell")
    key = await room_key(einstein, path)
    synced = [None] * CLIENTS
    clients = [None] * CLIENTS
    all_synced = anyio.Event()
    done = anyio.Event()

    async def one_client(index: int) -> None:
        async with connect(svc.url, einstein.token, path) as client:
            synced[index] = sources(client)
            clients[index] = client
            if all(s is not None for s in synced):
                all_synced.set()
            await done.wait()

    async with anyio.create_task_group() as tasks:
        for index in range(CLIENTS):
            tasks.start_soon(one_client, index)
        with anyio.fail_after(30):
            await all_synced.wait()
        assert all(s == ["first cell", "second cell"] for s in synced)
        assert svc.running.count(f"room opened from CS3 room={key} ") == 1
        assert svc.running.count(f"room rebuilt from journal room={key} ") == 0

        # and it is one live room: an edit by the first reaches the last
        type_text(clients[0], 1, " edited")
        await wait_for(clients[-1].doc, lambda: sources(clients[-1])[1] == "second cell edited")
        done.set()
