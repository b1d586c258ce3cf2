"""A room: one live document, its participants, and the order things happen in.

The room owns the Y document of one CS3 file (one room per resource id),
its awareness, and the set of connected participants. It enforces the two
rules that make the service trustworthy:

* **durable before visible**: an update from an editor is applied to the
  document, appended to the journal, and only once the journal says it is
  durable is it broadcast to the others (and so acknowledged);
* **roles are the server's**: updates from viewers are dropped (and
  logged); their awareness still flows, so they are seen following along.

Frames are encoded once and the same bytes go to every participant. A frame
that breaks the protocol raises :class:`~cs3collab.service.protocol.ProtocolError`
for the caller to close *that* connection; the room carries on.

The CS3 side of a room (loading, saving, the lock, outside edits) is in
:mod:`cs3collab.service.storage`; the room only exposes what it needs.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pycrdt import Awareness, Doc, TransactionEvent

from cs3collab.cs3 import Session
from cs3collab.service import protocol
from cs3collab.service.awareness import AwarenessPolicy, AwarenessSettings
from cs3collab.service import metrics, protocol
from cs3collab.service.documents import DocumentKind
from cs3collab.service.identity import EDITOR, Identity
from cs3collab.service.journal import Journal
from cs3collab.service.protocol import MessageType, ProtocolError, SyncType

log = logging.getLogger("cs3collab.service.room")

EMPTY_UPDATE = b"\x00\x00"


class Connection(Protocol):
    """One participant's transport (a WebSocket).

    ``send`` queues a frame and never blocks; ``close`` ends the connection
    with a WebSocket close code and reason.
    """

    def send(self, message: bytes) -> None: ...

    def close(self, code: int, reason: str) -> None: ...


@dataclass(eq=False)
class Participant:
    """One connection to a room, as one CS3 user with one role."""

    connection: Connection
    identity: Identity
    role: str
    session: Session
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    contributed: bool = False
    awareness_ids: set[int] = field(default_factory=set)
    dropped_updates: int = 0

    @property
    def can_edit(self) -> bool:
        return self.role == EDITOR

    def __str__(self) -> str:
        return f"{self.identity.label}/{self.id}"


class Room:
    """The live document of one CS3 file.

    Args:
        key: the room key, the file's resource id in Reva form.
        kind: notebook or text file.
        file_id: the fileId clients use in the room name.
        journal: where updates are made durable before they are broadcast.
        awareness: how awareness is guarded and relayed (see awareness.py).
    """

    def __init__(
        self, key: str, kind: DocumentKind, file_id: str, journal: Journal, awareness: AwarenessSettings | None = None
    ) -> None:
        self.key = key
        self.kind = kind
        self.file_id = file_id
        self.journal = journal
        self.doc = Doc()
        self.document = kind.wrap(self.doc)
        self.awareness = Awareness(self.doc)
        self.awareness_policy = AwarenessPolicy(self, awareness or AwarenessSettings())
        self.participants: set[Participant] = set()
        self.last_seq = 0
        self.read_only: str | None = None
        self.last_change = time.monotonic()
        self._capture: list[bytes] | None = None
        self._in_flight = 0  # changes applied to the document, not yet durable
        self._settled = asyncio.Event()
        self._settled.set()
        self._change_listeners: list[Callable[[Participant | None], None]] = []
        self.doc.observe(self._on_transaction)

    # -- content -------------------------------------------------------------

    def _on_transaction(self, event: TransactionEvent) -> None:
        if self._capture is not None and event.update != EMPTY_UPDATE:
            self._capture.append(event.update)

    def _apply_capturing(self, update: bytes) -> list[bytes]:
        """Apply an update and return what it changed (possibly nothing)."""
        self._capture = []
        try:
            self.doc.apply_update(update)
            return self._capture
        finally:
            self._capture = None

    def restore(self, updates: list[bytes], last_seq: int) -> None:
        """Rebuild the document from journal entries (no broadcast: nobody is connected)."""
        for update in updates:
            self.doc.apply_update(update)
        self.last_seq = last_seq

    async def apply(self, update: bytes, author: Participant | None) -> int:
        """Apply an update, make it durable, then broadcast it.

        Returns the journal sequence of the last change (0 if it changed
        nothing). Raises ProtocolError when the update cannot be applied.
        """
        try:
            changes = self._apply_capturing(update)
        except Exception as exc:  # pycrdt raises plain exceptions for undecodable updates
            raise ProtocolError(f"update does not apply: {exc}") from None
        return await self._commit(changes, author, notify=True)

    async def edit(self, change: Callable[[], None], *, quiet: bool = False, author: Participant | None = None) -> int:
        """Change the document as the server, in one transaction: applied,
        made durable, then broadcast, exactly like a client's update.

        ``quiet`` changes (the document's ``state`` after a save) are not
        reported to change listeners: they are not content and need no save.
        ``author``: on whose behalf (a shared kernel's run): that participant
        counts as a contributor, so its session can save the change.
        """
        self._capture = []
        try:
            with self.doc.transaction():
                change()
            changes = self._capture
        finally:
            self._capture = None
        return await self._commit(changes, author, notify=not quiet)

    async def _commit(self, changes: list[bytes], author: Participant | None, *, notify: bool) -> int:
        seq = 0
        if changes:
            self._in_flight += 1
            self._settled.clear()
        try:
            for change in changes:
                started = time.perf_counter()
                seq = await self.journal.append(self.key, change)
                self.last_seq = max(self.last_seq, seq)
                self.broadcast(protocol.update_message(change), exclude=author)
                metrics.update_broadcast(started)
        finally:
            if changes:
                self._in_flight -= 1
                if not self._in_flight:
                    self._settled.set()
        if changes and notify:
            self.last_change = time.monotonic()
            if author is not None:
                author.contributed = True
            for listener in self._change_listeners:
                listener(author)
        return seq

    async def settled(self) -> None:
        """Wait for a moment when everything in the document is durable.

        The document holds a change from the moment it is applied, while its
        journal append is still in flight; whatever reads the document for
        someone else (a step 2 for a joining client, a save) first waits for
        this and then reads without yielding, so it never shows or saves a
        change that a crash could still lose.
        """
        while self._in_flight:
            await self._settled.wait()

    def on_change(self, listener: Callable[[Participant | None], None]) -> None:
        """Call ``listener(author)`` after each durable change (author None: the server)."""
        self._change_listeners.append(listener)

    # -- participants ----------------------------------------------------------

    def join(self, participant: Participant) -> None:
        """Add a participant and start the sync handshake with it."""
        self.participants.add(participant)
        participant.connection.send(protocol.step1_message(self.doc.get_state()))
        others = [cid for cid in self.awareness.states if cid != self.awareness.client_id]
        if others:
            # the stock server waits for the next renewal (up to 15 s); we show everyone at once
            participant.connection.send(protocol.awareness_message(self.awareness.encode_awareness_update(others)))
        log.info(
            "participant joined room=%s user=%s role=%s participants=%d",
            self.key, participant.identity.label, participant.role, len(self.participants),
        )

    def leave(self, participant: Participant) -> None:
        """Remove a participant and tell the others its cursors are gone."""
        self.participants.discard(participant)
        self.awareness_policy.leave(participant)
        gone = [cid for cid in participant.awareness_ids if cid in self.awareness.states]
        if gone:
            self.awareness.remove_awareness_states(gone, participant)
            self.broadcast(protocol.awareness_message(self.awareness.encode_awareness_update(gone)))
        log.info(
            "participant left room=%s user=%s participants=%d", self.key, participant.identity.label, len(self.participants)
        )

    def broadcast(self, message: bytes, exclude: Participant | None = None) -> None:
        """Send the same bytes to every participant (but ``exclude``)."""
        for participant in tuple(self.participants):
            if participant is not exclude:
                participant.connection.send(message)

    def notify(self, payload: dict[str, Any]) -> None:
        """Send a RAW JSON message to every participant."""
        self.broadcast(protocol.raw_json_message(payload))

    def role_message(self, participant: Participant) -> bytes:
        """RAW ``{"type": "cs3collab:role", "role", "readOnly"}`` for one participant:
        its role, and why it cannot edit (a viewer, or the reason the room is read-only)."""
        read_only = self.read_only or (None if participant.can_edit else "viewer")
        return protocol.raw_json_message({"type": "cs3collab:role", "role": participant.role, "readOnly": read_only})

    def editors(self) -> list[Participant]:
        """Connected editors, those who contributed first."""
        return sorted((p for p in self.participants if p.can_edit), key=lambda p: not p.contributed)

    # -- frames ----------------------------------------------------------------

    async def receive(self, participant: Participant, data: bytes, on_save: Callable[[Participant], Any]) -> None:
        """Handle one frame from a participant.

        ``on_save(participant)`` is awaited for a save request and returns
        the status to reply (``success``, ``skipped`` or ``failed``).
        """
        frame = protocol.parse_frame(data)
        if frame.type == MessageType.SYNC:
            if frame.sync == SyncType.STEP1:
                await self.settled()  # durable before visible, for joining clients too
                try:
                    missing = self.doc.get_update(frame.payload)
                except Exception as exc:
                    raise ProtocolError(f"invalid state vector: {exc}") from None
                participant.connection.send(protocol.step2_message(missing))
                return
            if frame.payload == EMPTY_UPDATE:
                return  # a step 2 with nothing in it (every client sends one): nothing to drop or apply
            metrics.update_received()
            if not participant.can_edit or self.read_only:
                participant.dropped_updates += 1
                if participant.dropped_updates == 1 or participant.dropped_updates % 100 == 0:
                    log.warning(
                        "dropped document update room=%s user=%s role=%s read_only=%s dropped=%d",
                        self.key, participant.identity.label, participant.role, self.read_only,
                        participant.dropped_updates,
                    )
                return
            await self.apply(frame.payload, participant)
        elif frame.type == MessageType.AWARENESS:
            self.awareness_policy.receive(participant, frame.payload)  # own ids only, vouched, coalesced, relayed
        elif frame.type == MessageType.RAW:
            status = await on_save(participant)
            participant.connection.send(protocol.save_reply(frame.save_id, status))
        elif frame.type == MessageType.QUERY_AWARENESS:
            ids = list(self.awareness.states)
            participant.connection.send(protocol.awareness_message(self.awareness.encode_awareness_update(ids)))
