"""Replicas sharing one Redis (``cs3collab serve --redis-url``).

Real processes: the session's devstack and redis-server, and two
``cs3collab serve`` replicas with their own ports and state dirs.

What is checked: a session PUT answered by one replica is valid on the
other (the session id lives in Redis); one live room across replicas (a
client on each sees the other's edits once and the other's cursor, a fresh
joiner on either gets the same document, Ctrl+S on the replica without the
lease is saved by the holder and told to both); a replica started later on
the same Redis rebuilds the room; a holder with no session to save with
leaves the room to the replica where the typing is; the lease holder killed mid-typing loses
nothing (the tab reconnects to the other replica, which takes over and
saves); the lease taken over after a SIGKILL within lease_seconds * 4/3; a
SIGSTOPped holder writes nothing once resumed after a takeover; a foreign
lock lifted and a share removed, seen by the holder, reach the participant
on the other replica over the bus; a revocation reaches the other replica's
participant through its own re-check too; a Redis outage under a typing
client closes it with 1011 (told), keeps what was acknowledged, and
journals the client's edit when it reconnects after Redis is back.
"""

from __future__ import annotations

import json
import signal
import uuid

import anyio

from cs3collab.cs3 import roles
from cs3collab.cs3.shares import user_grantee
from cs3collab.service.journal_redis import RedisJournal
from tests.service.conftest import start_service
from tests.service.rtc import (
    eventually,
    file_sources,
    put_notebook,
    room_key,
    save_frame,
    save_record,
    saved_containing,
    sources,
    type_text,
)
from tests.support.yclient import connect, connect_room, open_session, send_awareness, wait_for


async def test_a_session_from_one_replica_is_valid_on_the_other(site, redis, einstein, workdir, tmp_path):
    prefix = f"t{uuid.uuid4().hex[:12]}"
    options = (f"--redis-url={redis.url}", f"--RedisJournal.key_prefix={prefix}")
    path = await put_notebook(einstein, f"{workdir}/replicas.ipynb", "a = 1")
    async with start_service(site, tmp_path / "one", *options) as one, \
            start_service(site, tmp_path / "two", *options) as two:
        session = await open_session(one.url, einstein.token, path)
        on_two = await open_session(two.url, einstein.token, path)
        assert on_two.sessionId == session.sessionId and on_two.room == session.room
        # the session id from replica 1 opens the room on replica 2 (no reload asked)
        async with connect_room(two.url, einstein.token, session.room, f"sessionId={session.sessionId}") as client:
            type_text(client, 0, "  # via replica two")
            await saved_containing(einstein, path, "# via replica two", timeout=20)
            # the room's history is in Redis, under the replicas' prefix, and the save is
            # recorded there (awaited while the replicas run: the record follows the upload)
            async with RedisJournal(redis.url, key_prefix=prefix) as journal:
                key = await room_key(einstein, path)

                async def recorded():
                    record = await journal.load(key)
                    return record if record is not None and record.last_seq >= 2 and not record.needs_flush else None

                await eventually(recorded, 20, "the save recorded in the Redis journal")


async def test_clients_on_two_replicas_share_one_live_room(site, redis, einstein, workdir, tmp_path):
    """einstein types on replica one and again on replica two into one
    notebook: each sees the other's edit, applied once (no echo doubling
    it), and the other's cursor; a fresh tab on either replica gets the
    same document. Saves are held off so that only the live path carries
    the edits; a save asked on replica two (which does not hold the room's
    lease) is made by replica one and told to both tabs."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    options = (f"--redis-url={redis.url}", f"--RedisJournal.key_prefix={prefix}", "--save-quiet=60",
               "--save-ceiling=120")
    path = await put_notebook(einstein, f"{workdir}/shared-live.ipynb", "x = 1")
    async with start_service(site, tmp_path / "one", *options) as one, \
            start_service(site, tmp_path / "two", *options) as two:
        async with connect(one.url, einstein.token, path) as left, connect(two.url, einstein.token, path) as right:
            type_text(left, 0, "  # left")
            await wait_for(right.doc, lambda: "# left" in sources(right)[0], timeout=20)
            type_text(right, 0, "  # right")
            await wait_for(left.doc, lambda: "# right" in sources(left)[0], timeout=20)
            await wait_for(right.doc, lambda: sources(right) == sources(left), timeout=20)
            assert sources(left)[0].count("# left") == 1 and sources(left)[0].count("# right") == 1
            # cursors both ways, through the other replica
            await send_awareness(left, {"cursor": "left-1"})
            await right.channel.wait_awareness(lambda states: {"cursor": "left-1"} in states.values(), timeout=20)
            await send_awareness(right, {"cursor": "right-1"})
            await left.channel.wait_awareness(lambda states: {"cursor": "right-1"} in states.values(), timeout=20)
            for url in (one.url, two.url):  # a fresh tab on either replica: the same document, the cursors
                async with connect(url, einstein.token, path) as fresh:
                    await wait_for(fresh.doc, lambda: sources(fresh) == sources(left), timeout=20)
                    cursors = [state for update in fresh.channel.awareness for state in update.values()]
                    assert {"cursor": "left-1"} in cursors and {"cursor": "right-1"} in cursors
            assert sources(left)[0].count("# left") == 1
            # Ctrl+S on the replica without the lease: the holder saves, both tabs are told
            await right.connection.send(save_frame(1))
            reply = await right.channel.wait_raw(lambda m: m.get("type") == "save", timeout=30)
            assert reply["status"] == "success"
            assert any(m.get("type") == "cs3collab:saved" for m in right.channel.raw)  # before the reply
            await left.channel.wait_raw(lambda m: m.get("type") == "cs3collab:saved", timeout=20)
            assert sources(left) == await file_sources(einstein, path)
            assert one.running.count("saved room=") == 1 and two.running.count("saved room=") == 0


async def test_a_save_by_one_replica_names_who_typed_on_the_other(site, redis, einstein, marie, workdir, tmp_path):
    """Einstein watches on replica one, which holds the room and saves it;
    Marie types on replica two. The version's record (what the history panel
    shows as its authors) names Marie, as it would with one replica."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    options = (f"--redis-url={redis.url}", f"--RedisJournal.key_prefix={prefix}", "--save-quiet=0.5",
               "--save-ceiling=2")
    path = await put_notebook(einstein, f"{workdir}/authors.ipynb", "z = 0")
    await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    key = await room_key(einstein, path)
    async with start_service(site, tmp_path / "one", *options) as one, \
            start_service(site, tmp_path / "two", *options) as two:
        async with connect(one.url, einstein.token, path) as watcher:
            await one.running.wait_for_output(f"room persistence here room={key} ", timeout=20)
            async with connect(two.url, marie.token, key) as writer:
                type_text(writer, 0, "  # typed on two")
                await wait_for(watcher.doc, lambda: "# typed on two" in sources(watcher)[0], timeout=20)
                await saved_containing(einstein, path, "# typed on two", timeout=20)
                await watcher.channel.wait_raw(lambda m: m.get("type") == "cs3collab:saved", timeout=20)
    assert two.running.count("saved room=") == 0  # replica one saved it
    _etag, record = await save_record(einstein, path)
    assert record["names"] == {f"{marie.user.id.opaque_id}@{marie.user.id.idp}": marie.user.display_name}


async def test_a_holder_that_cannot_save_leaves_the_room_to_a_replica_that_can(
        site, redis, einstein, workdir, tmp_path):
    """The tab that opened the room on replica one (the lease holder) only
    looked and left; the typing happens on replica two. Replica one has no
    session to save with: it frees the room and its lease, and replica two
    takes over and saves the edits."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    options = (f"--redis-url={redis.url}", f"--RedisJournal.key_prefix={prefix}", "--CollabService.lease_seconds=3",
               "--close-grace=5")
    path = await put_notebook(einstein, f"{workdir}/handed-over.ipynb", "i = 9")
    key = await room_key(einstein, path)
    held = f"room persistence here room={key} "
    async with start_service(site, tmp_path / "one", *options) as one, \
            start_service(site, tmp_path / "two", *options) as two:
        async with connect(one.url, einstein.token, path):  # looked and left
            await one.running.wait_for_output(held, timeout=20)
        async with connect(two.url, einstein.token, path) as typist:  # within replica one's grace period
            type_text(typist, 0, "  # typed on two")
            await two.running.wait_for_output(held, timeout=30)
            await saved_containing(einstein, path, "# typed on two", timeout=30)
            assert one.running.count("saved room=") == 0


async def test_a_later_replica_rebuilds_the_room_from_redis(site, redis, einstein, workdir, tmp_path):
    """Edits acknowledged by a replica that is then killed (SIGKILL, no
    flush) are in the room a fresh replica opens: the journal was Redis."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    options = (f"--redis-url={redis.url}", f"--RedisJournal.key_prefix={prefix}", "--save-quiet=30",
               "--save-ceiling=60")
    path = await put_notebook(einstein, f"{workdir}/killed.ipynb", "b = 2")
    async with start_service(site, tmp_path / "one", *options) as one:
        async with connect(one.url, einstein.token, path) as client, \
                connect(one.url, einstein.token, path) as watcher:
            type_text(client, 0, "  # acknowledged")
            # acknowledged = broadcast, which the room does only once the stream has it
            await wait_for(watcher.doc, lambda: "# acknowledged" in sources(watcher)[0], timeout=20)
            one.running.process.kill()
            await one.running.process.wait()
    async with start_service(site, tmp_path / "two", *options) as two:
        async with connect(two.url, einstein.token, path) as client:
            assert "# acknowledged" in sources(client)[0]


async def test_one_replica_holds_the_lease_and_another_takes_over_after_a_kill(
        site, redis, einstein, workdir, tmp_path):
    """A client on each replica for one file: exactly one replica holds the
    room's persistence lease; SIGKILL it, and the other takes the lease over
    within lease_seconds * 4/3 with a larger fencing token."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    lease = 3.0
    options = (f"--redis-url={redis.url}", f"--RedisJournal.key_prefix={prefix}",
               f"--CollabService.lease_seconds={lease}")
    path = await put_notebook(einstein, f"{workdir}/lease.ipynb", "c = 3")
    key = await room_key(einstein, path)
    held = f"room persistence here room={key} "
    async with start_service(site, tmp_path / "one", *options) as one, \
            start_service(site, tmp_path / "two", *options) as two:
        async with connect(one.url, einstein.token, path):
            await one.running.wait_for_output(held, timeout=20)  # the first replica with the room live
            async with connect(two.url, einstein.token, path):
                await two.running.wait_for_output("replica link running", timeout=20)
                assert two.running.count(held) == 0
                token = int(next(line for line in one.running.output if held in line).rsplit("token=", 1)[1])
                one.running.process.kill()
                await one.running.process.wait()
                killed = anyio.current_time()
                await two.running.wait_for_output(held, timeout=30)
                took = anyio.current_time() - killed
                line = next(line for line in two.running.output if held in line)
                assert int(line.rsplit("token=", 1)[1]) > token
                assert took <= lease * 4 / 3 + 5, took  # + scheduling slack on a loaded machine


async def test_a_replica_killed_mid_typing_loses_nothing(site, redis, einstein, workdir, tmp_path):
    """einstein types on replica one (the lease holder) while his second tab
    follows on replica two; replica one is killed with SIGKILL mid-typing. His tab reconnects to replica two with its
    document (as the frontend does through a load balancer) and resyncs:
    every keystroke, acknowledged or not yet, is in the room on replica two,
    which takes the lease over and saves them all."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    options = (f"--redis-url={redis.url}", f"--RedisJournal.key_prefix={prefix}", "--CollabService.lease_seconds=3")
    path = await put_notebook(einstein, f"{workdir}/killed-live.ipynb", "h = 8")
    key = await room_key(einstein, path)
    marks = [f" #{i:02d}" for i in range(30)]
    async with start_service(site, tmp_path / "one", *options) as one, \
            start_service(site, tmp_path / "two", *options) as two:
        async with connect(one.url, einstein.token, path):  # a first tab: replica one holds the lease
            await one.running.wait_for_output(f"room persistence here room={key} ", timeout=20)
            async with connect(two.url, einstein.token, path) as follower:
                async with connect(one.url, einstein.token, path) as typist:
                    for mark in marks:
                        type_text(typist, 0, mark)
                        if mark == marks[10]:  # some keystrokes are through, the rest in flight
                            await wait_for(follower.doc, lambda: marks[5] in sources(follower)[0], timeout=20)
                            one.running.process.kill()
                    doc = typist.doc
                await one.running.process.wait()
                async with connect(two.url, einstein.token, path, doc=doc):  # the reconnect, with its state
                    await wait_for(follower.doc, lambda: all(m in sources(follower)[0] for m in marks), timeout=30)
                    assert all(sources(follower)[0].count(m) == 1 for m in marks)
                    await two.running.wait_for_output(f"room persistence here room={key} ", timeout=30)
                    saved = await saved_containing(einstein, path, marks[-1], timeout=30)
                    assert all(saved[0].count(m) == 1 for m in marks)


async def test_a_paused_lease_holder_cannot_write_after_a_takeover(site, redis, einstein, workdir, tmp_path):
    """Only the lease holder saves. The holder (replica one) is paused with
    SIGSTOP right after its participant typed; replica two takes the lease
    over, saves that edit and its own participant's; when replica one
    resumes, its fence check fails and it writes nothing, while its
    participant's next edit still reaches the file through replica two."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    options = (f"--redis-url={redis.url}", f"--RedisJournal.key_prefix={prefix}", "--CollabService.lease_seconds=3",
               "--save-quiet=2", "--save-ceiling=4")
    path = await put_notebook(einstein, f"{workdir}/fenced.ipynb", "f = 6")
    key = await room_key(einstein, path)
    held = f"room persistence here room={key} "
    async with start_service(site, tmp_path / "one", *options) as one, \
            start_service(site, tmp_path / "two", *options) as two:
        async with connect(one.url, einstein.token, path) as left:
            await one.running.wait_for_output(held, timeout=20)  # the first to open persists
            async with connect(two.url, einstein.token, path) as right:
                type_text(left, 0, "  # saved by one")
                await saved_containing(einstein, path, "# saved by one", timeout=20)
                assert two.running.count(held) == 0 and two.running.count("saved room=") == 0
                type_text(left, 0, "  # typed before the pause")
                await wait_for(right.doc, lambda: "# typed before the pause" in sources(right)[0], timeout=20)
                one.running.process.send_signal(signal.SIGSTOP)
                try:
                    await two.running.wait_for_output(held, timeout=30)
                    type_text(right, 0, "  # after the takeover")
                    await saved_containing(einstein, path, "# after the takeover", timeout=30)
                    assert "# typed before the pause" in (await file_sources(einstein, path))[0]
                    saves_by_one = one.running.count("saved room=")
                finally:
                    one.running.process.send_signal(signal.SIGCONT)
                await one.running.wait_for_output(f"room persistence moved away room={key} ", timeout=30)
                type_text(left, 0, "  # after the resume")  # replica one still serves its participant
                await saved_containing(einstein, path, "# after the resume", timeout=30)
                assert one.running.count("saved room=") == saves_by_one
                assert one.running.count(held) == 1
                text = (await file_sources(einstein, path))[0]
                assert all(text.count(mark) == 1 for mark in
                           ("# saved by one", "# typed before the pause", "# after the takeover", "# after the resume"))


async def test_a_revocation_reaches_the_other_replicas_participant(site, redis, einstein, marie, workdir, tmp_path):
    """einstein on replica one removes marie's share while marie edits on
    replica two: replica two closes marie's connection with access_revoked
    within the re-check interval (each replica re-checks its own participants)."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    options = (f"--redis-url={redis.url}", f"--RedisJournal.key_prefix={prefix}", "--access-recheck=1")
    path = await put_notebook(einstein, f"{workdir}/revoked.ipynb", "d = 4")
    share = await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    async with start_service(site, tmp_path / "one", *options) as one, \
            start_service(site, tmp_path / "two", *options) as two:
        async with connect(one.url, einstein.token, path), connect(two.url, marie.token, path) as guest:
            await einstein.shares.remove(share.id.opaque_id)
            with anyio.fail_after(10):  # the 5 s target with a 1 s re-check, and slack for a loaded machine
                await guest.connection.wait_closed()
            assert guest.connection.close_code == 1003
            assert json.loads(guest.connection.close_reason)["reason"] == "access_revoked"


async def test_read_only_and_revocation_decided_on_one_replica_reach_the_other(
        site, redis, einstein, marie, workdir, tmp_path):
    """What the lease holder (replica one) decides reaches marie on replica
    two over the bus, not through a check of replica two's own: the file's
    foreign lock going away (only the holder polls) makes her tab editable
    again, and her access, removed and found so by replica one's check
    before a save, closes her connection on replica two with access_revoked
    long before replica two's own re-check (two minutes here) would."""
    prefix = f"t{uuid.uuid4().hex[:12]}"
    options = (f"--redis-url={redis.url}", f"--RedisJournal.key_prefix={prefix}", "--access-recheck=120")
    path = await put_notebook(einstein, f"{workdir}/decided.ipynb", "g = 7")
    key = await room_key(einstein, path)
    share = await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    await einstein.locks.set(path, lock_id="wopi-lock-2", app_name="wopi", lifetime=60)
    async with start_service(site, tmp_path / "one", *options) as one, \
            start_service(site, tmp_path / "two", *options) as two:
        async with connect(one.url, einstein.token, path) as owner:
            await one.running.wait_for_output(f"room persistence here room={key} ", timeout=20)
            async with connect(one.url, marie.token, path), connect(two.url, marie.token, path) as guest:
                role = await guest.channel.wait_raw(lambda m: m.get("type") == "cs3collab:role")
                assert role["readOnly"] == "locked by wopi (Albert Einstein)"
                await einstein.locks.unlock(path, lock_id="wopi-lock-2", app_name="wopi")
                await guest.channel.wait_raw(lambda m: m == {"type": "cs3collab:read-only", "reason": None}, timeout=20)
                type_text(guest, 0, "  # marie on two")  # taken again on replica two
                await wait_for(owner.doc, lambda: "# marie on two" in sources(owner)[0], timeout=20)
                await saved_containing(einstein, path, "# marie on two", timeout=20)

                await einstein.shares.remove(share.id.opaque_id)
                type_text(owner, 0, "  # einstein")  # replica one's next save checks access first
                with anyio.fail_after(30):
                    await guest.connection.wait_closed()
                assert guest.connection.close_code == 1003
                assert json.loads(guest.connection.close_reason)["reason"] == "access_revoked"
                assert two.running.count(f"access re-check asked by another replica room={key} ") == 1


async def test_redis_outage_tells_clients_and_loses_nothing_acknowledged(site, einstein, workdir, tmp_path):
    """Redis stops under a typing client: the typed change is refused (the
    client is told: its connection closes with 1011), what was acknowledged
    before is kept; Redis back on its port with its AOF, the client
    reconnects with its document and its unacknowledged edit is journaled."""
    from tests.support.redis import redis_server

    path = await put_notebook(einstein, f"{workdir}/outage.ipynb", "e = 5")
    async with redis_server(tmp_path / "redis") as server:
        port, url = server.port, server.url
        options = (f"--redis-url={url}", "--RedisJournal.timeout=2", "--save-quiet=30", "--save-ceiling=60")
        async with start_service(site, tmp_path / "svc", *options) as svc:
            async with connect(svc.url, einstein.token, path) as client:
                type_text(client, 0, "  # acknowledged")
                # acknowledged: another tab has it, and the room broadcasts a change only
                # once Redis holds it (the stream is never empty here: it starts with the
                # file's initial state, so its length would prove nothing)
                async with connect(svc.url, einstein.token, path) as witness:
                    await wait_for(witness.doc, lambda: "# acknowledged" in sources(witness)[0], timeout=20)
                server.running.process.terminate()
                await server.running.process.wait()
                type_text(client, 0, "  # during the outage")
                with anyio.fail_after(30):
                    await client.connection.wait_closed()
                assert client.connection.close_code == 1011
                doc = client.doc
            async with redis_server(tmp_path / "redis", port=port):
                async with connect(svc.url, einstein.token, path, doc=doc), \
                        connect(svc.url, einstein.token, path) as fresh:  # a new client sees both
                    await wait_for(fresh.doc, lambda: "# during the outage" in sources(fresh)[0], timeout=20)
                    assert "# acknowledged" in sources(fresh)[0]
