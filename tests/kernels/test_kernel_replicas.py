"""One shared kernel per notebook across replicas (``cs3collab serve --redis-url``).

Real processes: the session's devstack and redis-server, and two ``cs3collab
serve`` replicas on one Redis, each running real sandboxed kernels. Einstein
is connected to replica one, Marie (and Richard, a viewer) to replica two,
as a load balancer may spread them.

What is checked: the notebook has ONE kernel, on the replica that started
it: Marie's run on replica two sees Einstein's variable, its output lands in
the room once (on both replicas), attributed to her; a viewer on replica two
is refused by role; status, interrupt and restart asked on replica two act
on that kernel. When the kernel's replica is killed with SIGKILL, Marie is
told in words on replica two (the kernel ``died`` notice and status
``dead``), the cell that was running shows as ended with the reason, a
request she sent in the meantime is answered with the reason, not left
hanging, and her next run starts a fresh kernel on replica two.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import anyio

from cs3collab.cs3 import roles
from cs3collab.cs3.shares import user_grantee
from tests.kernels.conftest import KERNEL_OPTIONS
from tests.kernels.kernelclient import file_id_of, kernel_channel, kernel_rest, outputs_text
from tests.service.conftest import start_service
from tests.service.rtc import eventually, save_record
from tests.support.yclient import connect, wait_for

LEASE = 3.0


def cell_id(client, index: int) -> str:
    return str(client.document.ycells[index]["id"])


def replica_options(redis) -> tuple[str, ...]:
    return (f"--redis-url={redis.url}", f"--RedisJournal.key_prefix=k{uuid.uuid4().hex[:12]}",
            f"--CollabService.lease_seconds={LEASE}", *KERNEL_OPTIONS)


@contextlib.asynccontextmanager
async def logs_on_failure(services: dict | None = None, **named):
    """A failing test prints the end of each replica's log (its replicas are
    started in the test, so the fixtures' log hook does not see them);
    ``services`` may gain replicas after the block began."""
    try:
        yield
    except BaseException:
        for name, svc in {**(services or {}), **named}.items():
            print(f"--- replica {name} log (last 80 lines)")
            print("\n".join(svc.running.output[-80:]))
        raise


@contextlib.asynccontextmanager
async def seen_on_failure(**sockets):
    """A failing test prints what each kernel channel received (type, channel, parent)."""
    try:
        yield
    except BaseException:
        for name, socket in sockets.items():
            print(f"--- kernel channel {name}: {len(socket.seen)} messages, closed={socket.closed}")
            for m in socket.seen[-40:]:
                print(m.get("channel"), m.get("msg_type"), (m.get("parent_header") or {}).get("msg_id"),
                      (m.get("content") or {}).get("execution_state", ""))
        raise


@contextlib.asynccontextmanager
async def two_replicas(site, redis, tmp_path):
    """Two replicas of the service on one Redis, their logs printed if the test fails."""
    options = replica_options(redis)
    async with start_service(site, tmp_path / "one", *options) as one, \
            start_service(site, tmp_path / "two", *options) as two, logs_on_failure(one=one, two=two):
        yield one, two


def outputs(client, cell: int) -> list:
    return list(client.document.ycells[cell]["outputs"])


async def test_participants_on_two_replicas_share_one_kernel(site, redis, einstein, marie, richard, notebook,
                                                            tmp_path):
    path = await notebook("x = 41", "print(x + 1)", "import time\ntime.sleep(60)")
    await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    await einstein.shares.create(path, user_grantee(richard.user.id), roles.VIEWER)
    async with two_replicas(site, redis, tmp_path) as (one, two):
        file_id = await file_id_of(one.url, einstein.token, path)
        async with connect(one.url, einstein.token, path) as a, connect(two.url, marie.token, path) as b, \
                kernel_channel(one.url, f"Bearer {einstein.token}", file_id) as ka, \
                kernel_channel(two.url, f"Bearer {marie.token}", file_id) as kb, \
                kernel_channel(two.url, f"Bearer {richard.token}", file_id) as kr:
            first = await ka.execute("x = 41", cell_id(a, 0))
            assert (await ka.reply(first))["content"]["status"] == "ok"
            # Marie's channel on replica two hears the kernel of replica one (the same busy/idle)
            await kb.idle(first)
            second = await kb.execute("print(x + 1)", cell_id(b, 1))
            assert (await kb.reply(second))["content"]["status"] == "ok"  # x is Einstein's: one kernel
            await wait_for(b.doc, lambda: outputs_text(b, 1) == "42\n", timeout=20)
            await wait_for(a.doc, lambda: outputs_text(a, 1) == "42\n"
                           and a.document.ycells[1].get("execution_count") == 2, timeout=20)
            assert len(outputs(a, 1)) == 1 and len(outputs(b, 1)) == 1  # written once, by the kernel's replica
            assert b.document.ycells[1]["metadata"]["cs3collab"]["execution"]["by"] == "Marie Curie"
            # ... and not forwarded to any frontend (it would write it a second time)
            assert not [m for m in ka.seen + kb.seen
                        if m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == second]
            assert one.running.count("kernel started room=") == 1 and two.running.count("kernel started room=") == 0

            # a viewer connected to replica two: refused by the kernel's replica, by his role
            refused = await kr.execute("x = 'changed'", cell_id(b, 0))
            reply = await kr.reply(refused, timeout=20)
            assert reply["content"]["status"] == "error" and "only editors run code" in reply["content"]["evalue"]

            # status, interrupt and restart asked on replica two act on replica one's kernel
            status = (await kernel_rest(two.url, f"Bearer {marie.token}", file_id, method="GET")).json()
            assert status["state"] == "idle" and status["connections"] == 3, status
            assert status["startedBy"] == "Albert Einstein"
            sleeping = await ka.execute("import time\ntime.sleep(60)", cell_id(a, 2))
            await kb.wait(lambda m: m["msg_type"] == "execute_input" and m["parent_header"].get("msg_id") == sleeping,
                          timeout=20)
            busy = (await kernel_rest(two.url, f"Bearer {marie.token}", file_id, method="GET")).json()
            assert busy["running"] and busy["running"][0]["by"] == "Albert Einstein", busy
            answer = await kernel_rest(two.url, f"Bearer {marie.token}", file_id, "interrupt")
            assert answer.status_code == 200, answer.text
            await ka.idle(sleeping, timeout=20)
            await wait_for(a.doc, lambda: "KeyboardInterrupt" in outputs_text(a, 2), timeout=20)
            assert (await kernel_rest(two.url, f"Bearer {richard.token}", file_id, "restart")).status_code == 403
            answer = await kernel_rest(two.url, f"Bearer {marie.token}", file_id, "restart")
            assert answer.status_code == 200, answer.text
            await b.channel.wait_raw(lambda m: m.get("type") == "cs3collab:kernel" and m["event"] == "restarted",
                                     timeout=20)
            gone = await kb.execute("print(x)", cell_id(b, 1))
            await kb.idle(gone, timeout=30)
            await wait_for(b.doc, lambda: "NameError" in outputs_text(b, 1), timeout=20)
            assert one.running.count("kernel restarted room=") == 1

            # the version saved after Marie's run names her among its authors, although
            # the run's outputs were written by replica one, where she is not connected
            async def names_marie():
                _etag, record = await save_record(einstein, path)
                return record if marie.user.display_name in (record.get("names") or {}).values() else None

            await eventually(names_marie, 30, "Marie named in the save record")


async def test_the_kernels_replica_killed_is_told_and_a_new_kernel_starts_on_a_live_one(
        site, redis, einstein, marie, notebook, tmp_path):
    path = await notebook("state = 'on one'", "print('again')", "print(1)", "import time; time.sleep(600)")
    await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    async with two_replicas(site, redis, tmp_path) as (one, two):
        file_id = await file_id_of(one.url, einstein.token, path)
        async with connect(one.url, einstein.token, path) as a, \
                kernel_channel(one.url, f"Bearer {einstein.token}", file_id) as ka:
            await ka.idle(await ka.execute("state = 'on one'", cell_id(a, 0)))
        async with connect(two.url, marie.token, path) as b, \
                kernel_channel(two.url, f"Bearer {marie.token}", file_id) as kb:
            await two.running.wait_for_output("kernel channels relayed room=", timeout=20)
            # a run still going when the kernel's replica dies
            await kb.execute("import time; time.sleep(600)", cell_id(b, 3))
            await wait_for(b.doc, lambda: b.document.ycells[3].get("execution_state") == "busy", timeout=20)
            one.running.process.kill()
            await one.running.process.wait()
            killed = anyio.current_time()
            # sent after the kill, before replica two knows: answered with the reason, not left hanging
            lost = await kb.execute("print(1)", cell_id(b, 2))
            notice = await b.channel.wait_raw(lambda m: m.get("type") == "cs3collab:kernel" and m["event"] == "died",
                                              timeout=LEASE * 4 / 3 + 10)
            told = anyio.current_time() - killed
            assert "stopped responding" in notice["message"] and "run a cell to start a new one" in notice["message"]
            await kb.wait(lambda m: m["msg_type"] == "status" and m["content"]["execution_state"] == "dead")
            reply = await kb.reply(lost, timeout=5)
            assert reply["content"]["status"] == "error" and "stopped responding" in reply["content"]["evalue"]
            assert told <= LEASE * 4 / 3 + 5, told  # + scheduling slack on a loaded machine
            # the cell that was running no longer shows as running, and says why (before any new kernel)
            await wait_for(b.doc, lambda: b.document.ycells[3].get("execution_state") == "idle"
                           and "stopped responding" in outputs_text(b, 3), timeout=10)
            assert two.running.count("kernel started room=") == 0
            # Marie's next run starts a fresh kernel, on her replica (the variables are gone)
            again = await kb.execute("print('again'); print(state)", cell_id(b, 1))
            await kb.idle(again, timeout=60)
            await wait_for(b.doc, lambda: "again" in outputs_text(b, 1) and "NameError" in outputs_text(b, 1),
                           timeout=20)
            assert two.running.count("kernel started room=") == 1
            assert two.running.count("kernel hosted here room=") == 1


async def test_a_revocation_on_the_participants_replica_and_a_stopped_kernel_replica(
        site, redis, einstein, marie, richard, notebook, tmp_path):
    """Marie's and Richard's channels on replica two are open before any kernel
    runs; Einstein starts it on replica one and both hear it. Marie's share is
    removed: replica two (where she is connected) cuts her channel and the
    kernel's replica forgets her. Replica one is then stopped (SIGTERM):
    Richard, on replica two, is told in words that the kernel is gone."""
    path = await notebook("y = 1")
    share = await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    await einstein.shares.create(path, user_grantee(richard.user.id), roles.VIEWER)
    options = replica_options(redis)
    replicas: dict = {}
    async with start_service(site, tmp_path / "two", *options) as two, logs_on_failure(replicas, two=two):
        file_id = await file_id_of(two.url, einstein.token, path)
        async with connect(two.url, richard.token, path) as r, \
                kernel_channel(two.url, f"Bearer {richard.token}", file_id) as kr, \
                kernel_channel(two.url, f"Bearer {marie.token}", file_id) as kb:
            async with start_service(site, tmp_path / "one", *options) as one:
                replicas["one"] = one
                async with connect(one.url, einstein.token, path) as a, \
                        kernel_channel(one.url, f"Bearer {einstein.token}", file_id) as ka:
                    run = await ka.execute("y = 1", cell_id(a, 0))
                    await kr.idle(run, timeout=30)  # the claim was announced: replica two joined the kernel
                    await kb.idle(run, timeout=30)
                    await einstein.shares.remove(share.id.opaque_id)
                    code, _reason = await kb.wait_closed(timeout=10)  # replica two re-checks every 0.5 s
                    assert code == 1003
                    assert two.running.count("kernel access lost, disconnecting") == 1

                    async def forgotten():
                        status = (await kernel_rest(one.url, f"Bearer {einstein.token}", file_id, method="GET")).json()
                        return status if status["connections"] == 2 else None

                    await eventually(forgotten, 10, "marie's relayed channel gone from the kernel's replica")
            # replica one stopped (SIGTERM): its kernel with it; Richard is told on replica two
            notice = await r.channel.wait_raw(lambda m: m.get("type") == "cs3collab:kernel" and m["event"] == "died",
                                              timeout=20)
            assert "was shut down" in notice["message"]
            await kr.wait(lambda m: m["msg_type"] == "status" and m["content"]["execution_state"] == "dead")


async def test_two_editors_starting_at_once_on_two_replicas_get_one_kernel(site, redis, einstein, marie, notebook,
                                                                          tmp_path):
    """No kernel runs; Einstein (replica one) and Marie (replica two) run a
    cell at the same moment. One replica wins the claim and starts the
    kernel, the other relays to it: both variables are in one kernel."""
    path = await notebook("a = 1", "b = 2", "print(a + b)")
    await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    async with two_replicas(site, redis, tmp_path) as (one, two):
        file_id = await file_id_of(one.url, einstein.token, path)
        async with connect(one.url, einstein.token, path) as a, connect(two.url, marie.token, path) as b, \
                kernel_channel(one.url, f"Bearer {einstein.token}", file_id) as ka, \
                kernel_channel(two.url, f"Bearer {marie.token}", file_id) as kb, seen_on_failure(ka=ka, kb=kb):
            first, second = await asyncio.gather(ka.execute("a = 1", cell_id(a, 0)), kb.execute("b = 2", cell_id(b, 1)))
            print("sent", first, second)
            replies = await asyncio.gather(ka.reply(first, timeout=30), kb.reply(second, timeout=30))
            assert [r["content"]["status"] for r in replies] == ["ok", "ok"]
            total = await kb.execute("print(a + b)", cell_id(b, 2))
            await kb.idle(total, timeout=30)
            await wait_for(a.doc, lambda: outputs_text(a, 2) == "3\n", timeout=20)
            assert one.running.count("kernel started room=") + two.running.count("kernel started room=") == 1
