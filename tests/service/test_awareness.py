"""Awareness: presence flows between everyone in a room, and across the site.

What a user notices: collaborators' cursors and names appear as soon as they
join (and their own state echoes back, which keeps idle tabs connected);
they disappear when a tab closes; the site-wide ``JupyterLab:globalAwareness``
room shows who is around but is not a document anyone can write.
"""

from __future__ import annotations

from pycrdt import Map

from cs3collab.cs3 import roles
from cs3collab.cs3.shares import user_grantee
from tests.service.rtc import sources, update_frame
from tests.support.yclient import connect, connect_room, send_awareness

GLOBAL = "JupyterLab:globalAwareness"


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


async def test_global_awareness_relays_presence_and_ignores_documents(svc, einstein, marie):
    async with connect_room(svc.url, einstein.token, GLOBAL) as alice, connect_room(svc.url, marie.token, GLOBAL) as bob:
        await send_awareness(alice, user_state("alice"))
        await bob.channel.wait_awareness(lambda s: has_user(s, "alice"))
        await send_awareness(bob, user_state("bob"))
        await alice.channel.wait_awareness(lambda s: has_user(s, "bob"))

        # a document update in the global room goes nowhere
        state = alice.doc.get_state()
        alice.doc["scribble"] = scribble = Map()
        scribble["written"] = True
        await alice.connection.send(update_frame(alice.doc.get_update(state)))  # sent now, before what follows
        # alice's next awareness reaching bob proves her update was handled first
        await send_awareness(alice, {**user_state("alice"), "barrier": 1}, clock=5)
        await bob.channel.wait_awareness(lambda s: any((v or {}).get("barrier") == 1 for v in s.values()))
        assert bob.doc.get_state() == b"\x00"  # bob's document is still empty
        async with connect_room(svc.url, einstein.token, GLOBAL) as carol:
            assert carol.doc.get_state() == b"\x00"  # still an empty document
            await carol.channel.wait_awareness(lambda s: has_user(s, "alice") and has_user(s, "bob"))


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
