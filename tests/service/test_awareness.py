"""Awareness: presence flows between everyone in a room, and across the site.

What a user notices: collaborators' cursors and names appear as soon as they
join (and their own state echoes back, which keeps idle tabs connected);
they disappear when a tab closes; nobody can set or remove another
connection's entry; a cursor moving fast reaches others at most 20 times a
second, its last position always; the site-wide ``JupyterLab:globalAwareness``
room shows who is around, never which file they have open, and is not a
document anyone can write.
"""

from __future__ import annotations

import json
import time

from pycrdt import Map

from cs3collab.cs3 import roles
from cs3collab.cs3.shares import user_grantee
from tests.service.rtc import sources, update_frame, var_uint
from tests.support.yclient import connect, connect_room, send_awareness

GLOBAL = "JupyterLab:globalAwareness"


async def send_awareness_as(client, client_id: int, state: dict | None, clock: int = 1) -> None:
    """An awareness entry for ``client_id``, whoever owns it, sent on ``client``'s connection."""
    body = json.dumps(state).encode()
    update = var_uint(1) + var_uint(client_id) + var_uint(clock) + var_uint(len(body)) + body
    await client.connection.send(b"\x01" + var_uint(len(update)) + update)


def user_state(name: str) -> dict:
    """A state telling tabs apart by what they show (the ``user`` field is the
    server's to vouch for: see test_forged_user_is_corrected)."""
    return {"current": f"notebook:{name}.ipynb"}


def has_user(states: dict, name: str) -> bool:
    return any((state or {}).get("current") == f"notebook:{name}.ipynb" for state in states.values())


async def test_awareness_reaches_everyone_the_sender_too(svc, einstein, marie, notebook):
    path = await notebook("x")
    await einstein.shares.create(path, user_grantee(marie.user.id), roles.VIEWER)
    async with connect(svc.url, einstein.token, path) as alice, connect(svc.url, einstein.token, path) as bob:
        await send_awareness(alice, user_state("alice"))
        await bob.channel.wait_awareness(lambda s: has_user(s, "alice"))
        await alice.channel.wait_awareness(lambda s: has_user(s, "alice"))  # the echo
        # a newcomer is shown the states already there at once (no 15 s renewal wait)
        async with connect(svc.url, marie.token, path) as carol:
            await carol.channel.wait_awareness(lambda s: has_user(s, "alice"))


async def test_leaving_removes_the_state(svc, einstein, notebook):
    path = await notebook("x")
    async with connect(svc.url, einstein.token, path) as bob:
        async with connect(svc.url, einstein.token, path) as alice:
            await send_awareness(alice, user_state("alice"))
            await bob.channel.wait_awareness(lambda s: has_user(s, "alice"))
            alice_id = alice.doc.client_id
        removed = await bob.channel.wait_awareness(lambda s: alice_id in s and s[alice_id] is None)
        assert removed[alice_id] is None
        assert sources(bob) == ["x"]


def from_user(states: dict, username: str) -> bool:
    return any(((state or {}).get("user") or {}).get("username") == username for state in states.values())


async def test_global_awareness_relays_presence_and_ignores_documents(svc, einstein, marie):
    alice_name, bob_name = "einstein@cernbox.test", "marie@cernbox.test"
    async with connect_room(svc.url, einstein.token, GLOBAL) as alice, connect_room(svc.url, marie.token, GLOBAL) as bob:
        await send_awareness(alice, {"user": {"username": alice_name}})
        await bob.channel.wait_awareness(lambda s: from_user(s, alice_name))
        await send_awareness(bob, {"user": {"username": bob_name}})
        await alice.channel.wait_awareness(lambda s: from_user(s, bob_name))

        # a document update in the global room goes nowhere
        state = alice.doc.get_state()
        alice.doc["scribble"] = scribble = Map()
        scribble["written"] = True
        await alice.connection.send(update_frame(alice.doc.get_update(state)))  # sent now, before what follows
        # alice's next awareness (a second id of hers) reaching bob proves her update was handled first
        await send_awareness_as(alice, alice.doc.client_id + 1, {"user": {"username": alice_name}})
        await bob.channel.wait_awareness(lambda s: alice.doc.client_id + 1 in s)
        assert bob.doc.get_state() == b"\x00"  # bob's document is still empty
        async with connect_room(svc.url, einstein.token, GLOBAL) as carol:
            assert carol.doc.get_state() == b"\x00"  # still an empty document
            await carol.channel.wait_awareness(lambda s: from_user(s, alice_name) and from_user(s, bob_name))


async def test_global_awareness_carries_no_file_paths(svc, einstein, marie, notebook):
    """marie must not learn the path of einstein's private notebook from the site-wide room."""
    path = await notebook("secret", name="private-plans.ipynb")
    leaky = {
        "user": {"username": "einstein@cernbox.test", "color": "#aa0000"},
        "current": f"notebook:{path}",
        "documents": [f"json:notebook:{path}"],
    }
    async with connect_room(svc.url, marie.token, GLOBAL) as marie_tab:
        async with connect_room(svc.url, einstein.token, GLOBAL) as einstein_tab:
            await send_awareness(einstein_tab, leaky)
            states = await marie_tab.channel.wait_awareness(lambda s: einstein_tab.doc.client_id in s)
            shown = states[einstein_tab.doc.client_id]
            assert shown["user"]["username"] == "einstein@cernbox.test"
            assert set(shown) == {"user"}  # who is around, not what they have open
            async with connect_room(svc.url, marie.token, GLOBAL) as late:  # and not to a newcomer either
                await late.channel.wait_awareness(lambda s: einstein_tab.doc.client_id in s)
                seen = json.dumps(late.channel.awareness)
            assert "private-plans" not in seen
        assert "private-plans" not in json.dumps(marie_tab.channel.awareness)


async def test_nobody_sets_or_removes_another_connections_entry(svc, einstein, marie, notebook):
    path = await notebook("x")
    await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    async with connect(svc.url, einstein.token, path) as alice, connect(svc.url, marie.token, path) as mallory, \
            connect(svc.url, einstein.token, path) as alices_other_tab:
        alice_id = alice.doc.client_id
        await send_awareness(alice, user_state("alice"))
        await mallory.channel.wait_awareness(lambda s: has_user(s, "alice"))
        # mallory replaces, then removes alice's entry; alice's own second tab tries too
        await send_awareness_as(mallory, alice_id, user_state("mallory"), clock=10)
        await send_awareness_as(mallory, alice_id, None, clock=11)
        await send_awareness_as(alices_other_tab, alice_id, None, clock=12)
        # then each sends its own state: once those arrive, the forged frames were handled
        await send_awareness(mallory, user_state("mallory-own"))
        await send_awareness(alices_other_tab, user_state("other-tab"))
        await alice.channel.wait_awareness(lambda s: has_user(s, "mallory-own"))
        await alice.channel.wait_awareness(lambda s: has_user(s, "other-tab"))
        for update in alice.channel.awareness:
            if alice_id in update:
                assert update[alice_id] == user_state("alice")  # never replaced, never removed
        async with connect(svc.url, marie.token, path) as newcomer:
            await newcomer.channel.wait_awareness(lambda s: has_user(s, "alice") and has_user(s, "mallory-own"))
        assert svc.running.count("reason=owned_by_another_connection") >= 2
    # once alice's connection is gone, her entry is removed for everyone (by the room, not by a client)


async def test_awareness_is_coalesced_and_the_last_state_arrives(svc, einstein, notebook):
    path = await notebook("x")
    sent = 200
    async with connect(svc.url, einstein.token, path) as watcher, connect(svc.url, einstein.token, path) as busy:
        busy_id = busy.doc.client_id
        started = time.monotonic()
        for n in range(1, sent + 1):  # a cursor moving much faster than 20 updates a second
            await send_awareness(busy, {"n": n}, clock=n)
        await watcher.channel.wait_awareness(lambda s: (s.get(busy_id) or {}).get("n") == sent)  # the last one
        elapsed = time.monotonic() - started
        relayed = sum(1 for update in watcher.channel.awareness if busy_id in update)
        # at most one per 1/20 s interval, plus the first: however slow this machine was
        assert relayed <= 2 + elapsed * 20, (relayed, elapsed)
        assert relayed < sent


async def test_forged_user_is_corrected(svc, einstein, marie, notebook):
    path = await notebook("x")
    await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    async with connect(svc.url, einstein.token, path) as watcher, connect(svc.url, marie.token, path) as forger:
        await send_awareness(forger, {"user": {"username": "einstein@cernbox.test", "color": "#123456"}, "current": "x"})
        states = await watcher.channel.wait_awareness(lambda s: any((v or {}).get("current") == "x" for v in s.values()))
        [user] = [v["user"] for v in states.values() if (v or {}).get("current") == "x"]
        assert user["username"] == "marie@cernbox.test" and user["idp"] == "cernbox.test"
        assert user["color"] == "#123456"  # cosmetic fields stay
        await send_awareness(forger, {"user": {"username": "marie@cernbox.test"}, "current": "y"}, clock=2)
        states = await watcher.channel.wait_awareness(lambda s: any((v or {}).get("current") == "y" for v in s.values()))
        [user] = [v["user"] for v in states.values() if (v or {}).get("current") == "y"]
        assert user == {"username": "marie@cernbox.test"}  # a true claim is relayed as it came
