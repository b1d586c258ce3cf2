"""AwarenessPolicy on its own (a stand-in room): ownership, coalescing, privacy."""

from __future__ import annotations

import asyncio
import json

from pycrdt import Awareness, Doc

from cs3collab.service import protocol
from cs3collab.service.awareness import AwarenessPolicy, AwarenessSettings
from cs3collab.service.identity import Identity
from cs3collab.service.room import Participant


class StandInRoom:
    """What the policy uses of a Room: key, awareness, participants, relay_awareness."""

    def __init__(self) -> None:
        self.key = "room"
        self.awareness = Awareness(Doc())
        self.participants: set[Participant] = set()
        self.sent: list[dict] = []
        self.arrived = asyncio.Event()

    def broadcast(self, message: bytes) -> None:
        self.arrived.set()
        _kind, pos = protocol.read_var_uint(message, 0)
        _size, pos = protocol.read_var_uint(message, pos)
        self.sent.append({cid: state for cid, _clock, state in protocol.parse_awareness(message[pos:])})

    def relay_awareness(self, payload: bytes) -> None:
        self.broadcast(protocol.awareness_message(payload))


def participant(room: StandInRoom, name: str) -> Participant:
    identity = Identity(username=name, display_name=name, idp="cern.test", opaque_id=name, federated=False)
    joined = Participant(connection=None, identity=identity, role="editor", session=None)
    room.participants.add(joined)
    return joined


def frame(client_id: int, clock: int, state: dict | None) -> bytes:
    return protocol.encode_awareness([(client_id, clock, state)])


async def test_coalesced_to_the_rate_with_the_last_state_relayed():
    room = StandInRoom()
    policy = AwarenessPolicy(room, AwarenessSettings(rate=10))  # 0.1 s intervals
    alice = participant(room, "alice")
    for n in range(1, 11):
        policy.receive(alice, frame(7, n, {"n": n}))
    assert room.sent == [{7: {"n": 1}}]  # the first at once, the rest wait for the interval
    room.arrived.clear()
    async with asyncio.timeout(5):
        await room.arrived.wait()  # the policy's timer fired on the loop
    assert room.sent[1] == {7: {"n": 10}}  # only the latest, never dropped
    assert room.awareness.states[7] == {"n": 10}


async def test_entries_of_other_connections_are_dropped_and_leaving_frees_ids():
    room = StandInRoom()
    policy = AwarenessPolicy(room, AwarenessSettings(rate=0, ids_per_connection=2))
    alice, mallory = participant(room, "alice"), participant(room, "mallory")
    policy.receive(alice, frame(7, 1, {"who": "alice"}))
    policy.receive(mallory, frame(7, 2, {"who": "mallory"}))
    policy.receive(mallory, frame(7, 3, None))
    policy.receive(mallory, frame(room.awareness.client_id, 1, {"who": "server?"}))
    policy.receive(mallory, frame(8, 1, {}))
    policy.receive(mallory, frame(9, 1, {}))
    policy.receive(mallory, frame(10, 1, {}))  # a third id: over the limit
    assert room.sent == [{7: {"who": "alice"}}, {8: {}}, {9: {}}]
    policy.leave(alice)
    room.participants.discard(alice)
    policy.receive(mallory, frame(7, 4, {"who": "mallory"}))  # free again, but mallory has two already
    assert 7 not in policy.owners
    assert json.dumps(room.sent).count("mallory") == 0


async def test_private_rooms_keep_only_the_vouched_user():
    room = StandInRoom()
    policy = AwarenessPolicy(room, AwarenessSettings(rate=0, private=True))
    alice = participant(room, "alice")
    policy.receive(alice, frame(7, 1, {"user": {"username": "alice@cern.test"}, "current": "notebook:/home/a/x.ipynb"}))
    policy.receive(alice, frame(8, 1, {"user": {"username": "bob@cern.test"}, "documents": ["/home/a/x.ipynb"]}))
    assert room.sent[0] == {7: {"user": {"username": "alice@cern.test"}}}
    assert set(room.sent[1][8]) == {"user"} and room.sent[1][8]["user"]["username"] == "alice@cern.test"


async def test_an_id_of_another_replica_is_its_own_until_it_is_not_renewed(monkeypatch):
    """First come across replicas: a client id whose state came from another
    replica is refused here, until that state was not renewed for the
    y-protocols timeout (its replica died; the tab reconnected here)."""
    from cs3collab.service import awareness

    room = StandInRoom()
    policy = AwarenessPolicy(room, AwarenessSettings(rate=0))
    alice = participant(room, "alice")
    policy.remote([(7, 1, {"who": "bob on replica one"})])
    policy.receive(alice, frame(7, 2, {"who": "alice"}))
    assert room.sent == [] and 7 not in policy.owners
    monkeypatch.setattr(awareness, "REMOTE_ID_TIMEOUT", 0.0)  # as if 30 s had passed without a renewal
    policy.receive(alice, frame(7, 3, {"who": "alice"}))
    assert room.sent == [{7: {"who": "alice"}}] and policy.owners[7] is alice
    policy.remote([(7, 4, {"who": "bob again"})])  # an id owned here is not taken by a remote state
    assert 7 not in policy.remote_ids
