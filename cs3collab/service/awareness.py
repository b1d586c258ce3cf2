"""Awareness policy of a room: honest, private, and at a bounded rate.

Awareness (y-protocols: client id → clock → JSON state) carries who is in a
room and where their cursors are. Clients send it freely, so the room keeps
it honest before relaying it:

* **one's own entries only.** A client id belongs to the connection that
  first set a state for it (first come). Later entries for that id from any
  other connection, even the same user's, are dropped and logged; so is an
  entry for the room's own client id, a removal of an id the connection does
  not own, and a new id beyond ``ids_per_connection``. When the connection
  leaves, its ids are removed for everyone and become free again.
* **vouched names.** A state's ``user`` field must name the participant
  (``username@idp``); a state naming someone else is rewritten to the real
  identity, keeping only cosmetic fields (color, initials, avatar).
* **private rooms carry no paths.** The site-wide ``JupyterLab:globalAwareness``
  room is shared by every user of the site, whatever they can access, while
  JupyterLab puts the path of the open document in it (``current``, e.g.
  ``notebook:/home/einstein/private.ipynb``). We keep only the vouched
  ``user`` field there: the room says who is around, never which file
  anyone has open (JupyterLab's collaborators panel then lists people
  without their document). Filtering paths per recipient instead would need
  a CS3 Stat per pair of users and document, and a path is only meaningful
  in its owner's namespace.
* **coalesced to a rate.** A connection's entries reach the room at most
  ``rate`` times a second: within one interval the latest state of each
  client id is kept and relayed when the interval ends, on a timer of the
  room's event loop (``loop.call_later``; cancelled when the connection
  leaves). The final state is never dropped, only delayed by at most one
  interval; a state that is superseded within the interval is never sent.

Everything accepted is applied to the room's awareness and relayed to every
participant, the sender too (y-websocket's echo keeps idle tabs connected).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cs3collab.service import protocol

if TYPE_CHECKING:
    from cs3collab.service.room import Participant, Room

log = logging.getLogger("cs3collab.service.awareness")

Entry = tuple[int, int, "dict | None"]

REMOTE_ID_TIMEOUT = 30.0
"""Seconds a client id seen from another replica stays that replica's
without a new state: y-protocols' own outdated timeout (clients renew their
state every 15 s). After it, a connection here may take the id (the tab
reconnected here after its replica was killed)."""


@dataclass(frozen=True)
class AwarenessSettings:
    """How a room treats awareness.

    Args:
        rate: updates per second relayed per connection (0: no limit).
        ids_per_connection: client ids one connection may introduce (0: no limit).
        private: keep only the vouched ``user`` field of each state (the
            site-wide room, where file paths must not travel).
    """

    rate: float = 20.0
    ids_per_connection: int = 4
    private: bool = False


@dataclass(eq=False)
class _Outbox:
    """One connection's coalesced entries, waiting for its next interval."""

    latest: dict[int, Entry] = field(default_factory=dict)
    last_flush: float = float("-inf")
    timer: asyncio.TimerHandle | None = None
    refused: int = 0


def vouched(participant: Participant, entry: Entry, room_key: str) -> Entry:
    """The entry with a ``user`` field that is the participant's real identity."""
    client_id, clock, state = entry
    if state is None or "user" not in state or participant.identity.vouches(state["user"]):
        return entry
    claimed = state["user"]
    log.warning(
        "awareness user corrected room=%s user=%s site=%s claimed=%r",
        room_key, participant.identity.label, participant.identity.idp,
        (claimed.get("username") if isinstance(claimed, dict) else claimed),
    )
    return client_id, clock, {**state, "user": participant.identity.presence(claimed if isinstance(claimed, dict) else None)}


def without_paths(participant: Participant, entry: Entry) -> Entry:
    """The entry as a private room relays it: the vouched ``user`` field only."""
    client_id, clock, state = entry
    if state is None:
        return entry
    claimed = state.get("user")
    user = claimed if participant.identity.vouches(claimed) else participant.identity.presence(
        claimed if isinstance(claimed, dict) else None)
    return client_id, clock, {"user": user}


class AwarenessPolicy:
    """The awareness rules of one room (see the module's docstring).

    Args:
        room: the room whose awareness this guards and relays.
        settings: rate, id limit and privacy.
    """

    def __init__(self, room: Room, settings: AwarenessSettings) -> None:
        self.room = room
        self.settings = settings
        self.owners: dict[int, Participant] = {}
        # client ids whose states come from another replica -> when last seen (loop time)
        self.remote_ids: dict[int, float] = {}
        self._outboxes: dict[Participant, _Outbox] = {}

    def receive(self, participant: Participant, payload: bytes) -> None:
        """Take one awareness frame's payload from ``participant``.

        Raises ProtocolError when it is malformed (the caller closes that
        connection); entries the participant may not send are dropped.
        """
        entries = protocol.parse_awareness(payload)
        outbox = self._outboxes.setdefault(participant, _Outbox())
        for entry in entries:
            reason = self._refusal(participant, entry)
            if reason is not None:
                outbox.refused += 1
                if outbox.refused == 1 or outbox.refused % 100 == 0:
                    owner = self.owners.get(entry[0])
                    log.warning(
                        "awareness entry dropped room=%s user=%s site=%s client_id=%d reason=%s owner=%s dropped=%d",
                        self.room.key, participant.identity.label, participant.identity.idp, entry[0], reason,
                        owner.identity.label if owner is not None else "-", outbox.refused,
                    )
                continue
            if entry[2] is not None and entry[0] not in self.owners:
                self.owners[entry[0]] = participant
                participant.awareness_ids.add(entry[0])
            entry = without_paths(participant, entry) if self.settings.private else vouched(participant, entry, self.room.key)
            outbox.latest[entry[0]] = entry
        if outbox.latest and outbox.timer is None:
            loop = asyncio.get_running_loop()
            wait = outbox.last_flush + self._interval() - loop.time()
            if wait <= 0:
                self._flush(participant)
            else:
                outbox.timer = loop.call_later(wait, self._flush, participant)

    def leave(self, participant: Participant) -> None:
        """Forget a departing connection: its pending entries (its states are
        removed for everyone by the room) and its ids, which become free."""
        outbox = self._outboxes.pop(participant, None)
        if outbox is not None and outbox.timer is not None:
            outbox.timer.cancel()
        for client_id in participant.awareness_ids:
            if self.owners.get(client_id) is participant:
                del self.owners[client_id]

    def remote(self, entries: list[Entry]) -> None:
        """Note the client ids another replica relays: they belong to its
        connections (first come across replicas too), until removed or not
        renewed for :data:`REMOTE_ID_TIMEOUT` (its replica died with it)."""
        now = asyncio.get_running_loop().time()
        for client_id, _clock, state in entries:
            if state is None:
                self.remote_ids.pop(client_id, None)
            elif client_id not in self.owners:
                self.remote_ids[client_id] = now

    def _interval(self) -> float:
        return 1.0 / self.settings.rate if self.settings.rate > 0 else 0.0

    def _refusal(self, participant: Participant, entry: Entry) -> str | None:
        """Why ``participant`` may not send ``entry`` (None: it may)."""
        client_id, _clock, state = entry
        if client_id == self.room.awareness.client_id:
            return "server_id"
        owner = self.owners.get(client_id)
        if owner is participant:
            return None
        if owner is not None:
            return "owned_by_another_connection"
        seen = self.remote_ids.get(client_id)
        if seen is not None:
            if asyncio.get_running_loop().time() - seen < REMOTE_ID_TIMEOUT:
                return "owned_by_another_replica"
            del self.remote_ids[client_id]  # not renewed: its tab is gone (a reconnect here, after a kill)
        if state is None:
            return "not_owned"  # removing an id one never set
        limit = self.settings.ids_per_connection
        if limit and sum(1 for owned in participant.awareness_ids if self.owners.get(owned) is participant) >= limit:
            return "too_many_ids"
        return None

    def _flush(self, participant: Participant) -> None:
        outbox = self._outboxes.get(participant)
        if outbox is None or participant not in self.room.participants:
            return
        outbox.timer = None
        outbox.last_flush = asyncio.get_running_loop().time()
        entries = list(outbox.latest.values())
        outbox.latest.clear()
        if not entries:
            return
        payload = protocol.encode_awareness(entries)
        self.room.awareness.apply_awareness_update(payload, participant)
        for client_id, _clock, state in entries:
            if state is None and self.owners.get(client_id) is participant:
                del self.owners[client_id]  # removed by its owner: free again
                participant.awareness_ids.discard(client_id)
        self.room.relay_awareness(payload)  # to every participant here, and to the other replicas
