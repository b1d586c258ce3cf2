"""Persistence leases with fencing (cs3collab.service.lease) on a real Redis.

Two LeaseKeepers stand for two replicas. What is checked: one holder at a
time; a holder that stops renewing (paused or dead) is taken over by the
other replica's keeper within ttl + ttl/3, with a larger fencing token; the
paused old holder's check before writing fails, and so does its renewal;
release hands over without waiting for expiry.
"""

from __future__ import annotations

import re
import uuid

import anyio
import pytest
import redis.asyncio as aioredis

from cs3collab.service.lease import LeaseKeeper, LeaseLostError

ROOM = "storage-1$space-1!0c9b8a7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d"


@pytest.fixture
async def redis_client(redis):
    client = aioredis.Redis.from_url(redis.url)
    yield client
    await client.aclose()


@pytest.fixture
def prefix():
    return f"t{uuid.uuid4().hex[:12]}"


async def test_one_holder_at_a_time(redis_client, prefix):
    one = LeaseKeeper(redis_client, prefix, "replica-1", ttl=30)
    two = LeaseKeeper(redis_client, prefix, "replica-2", ttl=30)
    lease = await one.try_acquire(ROOM)
    assert lease is not None and lease.token >= 1
    assert await two.try_acquire(ROOM) is None
    assert await one.holder(ROOM) == "replica-1"
    again = await one.try_acquire(ROOM)  # its own lease: renewed, same token
    assert again is lease
    assert await one.renew(lease)
    await one.check(lease)  # still ours: no error
    await one.release(lease)
    taken = await two.try_acquire(ROOM)  # released: no wait for expiry
    assert taken is not None and taken.token > lease.token
    with pytest.raises(LeaseLostError, match=re.escape(ROOM)):
        await one.check(lease)


async def test_paused_holder_is_taken_over_and_fenced(redis_client, prefix):
    """Replica 1 takes the lease then pauses (its keeper loop never runs);
    replica 2's keeper loop takes over within ttl + ttl/3 with a larger
    token; replica 1, resuming, fails its check before writing and its
    renewal, so it can never write after the takeover."""
    ttl = 1.5
    one = LeaseKeeper(redis_client, prefix, "replica-1", ttl=ttl)
    two = LeaseKeeper(redis_client, prefix, "replica-2", ttl=ttl)
    old = await one.try_acquire(ROOM)
    assert old is not None
    acquired = anyio.Event()
    got: list = []

    async def on_acquired(lease):
        got.append(lease)
        acquired.set()

    async def on_lost(lease):
        raise AssertionError(f"replica 2 lost {lease}")

    started = anyio.current_time()
    async with anyio.create_task_group() as tg:
        tg.start_soon(two.run, lambda: [ROOM], on_acquired, on_lost)
        with anyio.fail_after(30):
            await acquired.wait()
        tg.cancel_scope.cancel()
    took = anyio.current_time() - started
    assert got[0].token > old.token
    assert took >= ttl * 0.9  # not before the old lease ran out
    assert await two.holder(ROOM) == "replica-2"
    with pytest.raises(LeaseLostError):
        await one.check(old)  # the paused holder, resuming, may not write
    assert not await one.renew(old)
    assert await one.try_acquire(ROOM) is None


async def test_keeper_releases_rooms_no_longer_live(redis_client, prefix):
    one = LeaseKeeper(redis_client, prefix, "replica-1", ttl=30)
    live = {ROOM, ROOM + "-b"}
    acquired: list = []
    both = anyio.Event()

    async def on_acquired(lease):
        acquired.append(lease.room)
        if len(acquired) == 2:
            both.set()

    async def on_lost(lease):
        raise AssertionError(lease)

    async with anyio.create_task_group() as tg:
        tg.start_soon(one.run, lambda: set(live), on_acquired, on_lost)
        with anyio.fail_after(30):
            await both.wait()
        tg.cancel_scope.cancel()
    assert sorted(acquired) == sorted(live)
    live.discard(ROOM)
    await one._pass(live, on_acquired, on_lost)
    assert await one.holder(ROOM) is None and await one.holder(ROOM + "-b") == "replica-1"
