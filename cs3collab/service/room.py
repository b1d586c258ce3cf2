"""A room: one live document, its participants, and the order things happen in.

The room owns the Y document of one CS3 file (one room per resource id),
its awareness, and the set of connected participants. It enforces the two
rules that make the service trustworthy:

* **durable before visible**: an update from an editor is tried on the
  room's candidate document (:mod:`cs3collab.service.guard`: refused there,
  before anyone sees it, if it would break the notebook), its effect is
  appended to the journal, and only once the journal says it is durable is
  it applied to the live document and broadcast to the others (and so
  acknowledged). A failed append leaves it in no document;
* **roles are the server's**: updates from viewers are dropped (and
  logged); their awareness still flows, so they are seen following along.

Frames are encoded once and the same bytes go to every participant. A frame
that breaks the protocol raises :class:`~cs3collab.service.protocol.ProtocolError`
for the caller to close *that* connection; the room carries on.

The CS3 side of a room (loading, saving, the lock, outside edits) is in
:mod:`cs3collab.service.storage`; the room's one owner, which handlers use,
is :class:`cs3collab.service.registry.LiveRoom`.
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
from cs3collab.service import metrics, protocol
from cs3collab.service.awareness import AwarenessPolicy, AwarenessSettings
from cs3collab.service.documents import DocumentKind
from cs3collab.service.guard import Candidate, DocumentLimits, UpdateIncomplete, UpdateRefused, check_nesting
from cs3collab.service.identity import EDITOR, Identity
from cs3collab.service.journal import Journal, author_tag
from cs3collab.service.protocol import MessageType, ProtocolError, SyncType
from cs3collab.service.slices import SLICE_BYTES

log = logging.getLogger("cs3collab.service.room")

EMPTY_UPDATE = b"\x00\x00"


class JournalUnavailable(RuntimeError):
    """A change the journal could not store: it was neither shown nor kept."""


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
    synced: bool = False  # its sync reply (step 2) has arrived
    diverged: bool = False  # updates of its were dropped (read-only): its document has what ours has not
    held: list[bytes] = field(default_factory=list)  # its incomplete updates from before that reply

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
        self, key: str, kind: DocumentKind, file_id: str, journal: Journal,
        awareness: AwarenessSettings | None = None, limits: DocumentLimits | None = None,
    ) -> None:
        self.key = key
        self.kind = kind
        self.file_id = file_id
        self.journal = journal
        self.doc = Doc()
        self.document = kind.wrap(self.doc)
        self.candidate = Candidate(kind, limits or DocumentLimits())
        self.awareness = Awareness(self.doc)
        self.awareness_policy = AwarenessPolicy(self, awareness or AwarenessSettings())
        self.participants: set[Participant] = set()
        self.last_seq = 0
        self.read_only: str | None = None
        self.last_change = time.monotonic()
        self._pending: list[bytes] = []  # changes in the candidate, not yet durable (nor in the live doc)
        self._committing = False
        self._in_flight = 0  # commits whose journal appends are under way
        self._settled = asyncio.Event()
        self._settled.set()
        self._change_listeners: list[Callable[[Participant | None], None]] = []
        self._awareness_listeners: list[Callable[[bytes], None]] = []
        self._live_subscription = self.doc.observe(self._on_live_transaction)

    # -- content -------------------------------------------------------------
    #
    # Two documents of the same content: ``candidate`` (guard.Candidate) runs
    # ahead and is where every change is made or tried; ``doc``, the live
    # document that participants see, only ever receives a change once the
    # journal holds it. A refused update or a failed append therefore never
    # reaches the live document; the candidate is rebuilt from it.

    def _on_live_transaction(self, event: TransactionEvent) -> None:
        if self._committing or event.update == EMPTY_UPDATE:
            return
        # someone changed the live document directly (bypassing edit()): keep
        # the candidate in step, and say so, since that change is not journaled
        log.warning("live document changed outside the room's commit path room=%s bytes=%d", self.key, len(event.update))
        self.candidate.doc.apply_update(event.update)

    def _rebuild_candidate(self) -> None:
        self.candidate.rebuild(self.doc, self._pending)

    def restore(self, updates: list[bytes], last_seq: int) -> None:
        """Rebuild the document from journal entries (no broadcast: nobody is connected)."""
        self._committing = True
        try:
            for update in updates:
                self.doc.apply_update(update)
        finally:
            self._committing = False
        self.last_seq = last_seq
        self._rebuild_candidate()

    async def restore_in_slices(self, slices: list[bytes], last_seq: int, slice_bytes: int = SLICE_BYTES) -> None:
        """restore() for an open, without stalling the other rooms: ``slices``
        (slices.split_update of the journal's updates, made in the worker) go
        into the live document and the candidate together, about
        ``slice_bytes`` at a time, with the event loop free in between; the
        candidate is not rebuilt from a multi-MB encoding of the live one.
        Nobody is connected yet; the room is not used until it returns."""
        self.candidate.begin_restore()
        batch = 0
        for update in slices:
            if batch >= slice_bytes:
                await asyncio.sleep(0)  # the other rooms' turn
                batch = 0
            self._committing = True
            try:
                self.doc.apply_update(update)
            finally:
                self._committing = False
            self.candidate.restore_part(update)
            batch += len(update)
        self.last_seq = last_seq
        self.candidate.end_restore()

    async def apply(self, update: bytes, author: Participant | None) -> int:
        """Try an update on the candidate, make its effect durable, then show it.

        An update from a participant is checked (guard.Candidate): a refused
        one raises UpdateRefused and nobody sees any of it. Returns the
        journal sequence of the last change (0 if it changed nothing).
        Raises ProtocolError when the update cannot be applied, and
        JournalUnavailable when its effect could not be made durable (then
        it is in no document).
        """
        try:
            changes = self.candidate.apply(update, check=author is not None)
        except UpdateRefused:
            self._rebuild_candidate()
            raise
        except BaseException as exc:  # pycrdt raises plain exceptions (and pyo3 panics) for bad updates
            if isinstance(exc, (KeyboardInterrupt, SystemExit, asyncio.CancelledError)):
                raise
            self._rebuild_candidate()  # whatever part of it was applied goes too
            raise ProtocolError(f"update does not apply: {exc}") from None
        return await self._commit(changes, author, notify=True)

    async def edit(self, change: Callable[..., None], *, quiet: bool = False, author: Participant | None = None,
                   named: tuple[str, str] | None = None) -> int:
        """Change the document as the server, in one transaction: made
        durable, then shown, exactly like a client's update.

        ``change(document)`` receives the document to change (the room's
        jupyter_ydoc document, as its candidate; never write to
        ``room.document`` directly). ``quiet`` changes (the document's
        ``state`` after a save) are not reported to change listeners: they
        are not content and need no save. ``author``: on whose behalf (a
        shared kernel's run): that participant counts as a contributor, so
        its session can save the change. ``named``: (user id, display name)
        of an author who is not a participant here (journaled with the
        change, see Journal.append). Raises JournalUnavailable when the
        change could not be made durable (it is then undone).
        """
        try:
            changes = self.candidate.edit(change)
        except BaseException:
            self._rebuild_candidate()
            raise
        return await self._commit(changes, author, notify=not quiet, named=named)

    async def _commit(self, changes: list[bytes], author: Participant | None, *, notify: bool,
                      named: tuple[str, str] | None = None) -> int:
        seq = 0
        if not changes:
            return seq
        self._in_flight += 1
        self._settled.clear()
        self._pending.extend(changes)
        if author is not None:
            named = (author.identity.uid, author.identity.display_name)
        tag = author_tag(*named) if named is not None and named[0] else ""
        try:
            for index, change in enumerate(changes):
                started = time.perf_counter()
                try:
                    seq = await self.journal.append(self.key, change, tag)
                except Exception as exc:
                    # not durable: nobody may see it, and no document keeps it
                    for undone in changes[index:]:
                        self._forget_pending(undone)
                    self._rebuild_candidate()
                    log.error("journal append failed, change dropped room=%s error=%r", self.key, exc)
                    raise JournalUnavailable(f"the journal could not store a change: {exc}") from exc
                self._forget_pending(change)
                self._committing = True
                try:
                    self.doc.apply_update(change)
                finally:
                    self._committing = False
                self.last_seq = max(self.last_seq, seq)
                self.broadcast(protocol.update_message(change), exclude=author)
                metrics.update_broadcast(started)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._settled.set()
        if notify:
            self.last_change = time.monotonic()
            if author is not None:
                author.contributed = True
            for listener in self._change_listeners:
                listener(author)
        return seq

    def _forget_pending(self, change: bytes) -> None:
        for i, pending in enumerate(self._pending):
            if pending is change:
                del self._pending[i]
                return

    async def settled(self) -> None:
        """Wait for a moment when everything in the document is durable.

        The live document only receives durable changes, but appends finish
        one by one: a save, which names the content it writes by the journal
        sequence, first waits for this and then reads without yielding, so
        ``last_seq`` and the document agree.
        """
        while self._in_flight:
            await self._settled.wait()

    def receive_remote(self, updates: list[bytes], last_seq: int) -> int:
        """Updates another replica journaled (durable and acknowledged there),
        up to journal sequence ``last_seq``: shown here and broadcast to this
        replica's participants.

        Each goes the way of a local change, minus the append: into the
        candidate (decoded behind the guard's nesting check, so that a
        hostile update cannot crash pycrdt here either), and its *effect*
        into the live document and to the participants. The effect is
        empty for an update this document already has, which is how a
        re-delivered entry (a reload after a gap) is neither applied nor
        broadcast twice. The guard's refusals are not applied: the replica
        that took the update already checked it with the same limits, and
        refusing a durable entry here would split the replicas' documents.
        Returns the number of changes shown.
        """
        shown = 0
        for update in updates:
            try:
                check_nesting(update, self.candidate.limits.max_depth)
                changes = self.candidate.apply(update, check=False)
            except BaseException as exc:
                if isinstance(exc, (KeyboardInterrupt, SystemExit, asyncio.CancelledError)):
                    raise
                self._rebuild_candidate()
                log.error("update from another replica does not apply room=%s seq=%d error=%r",
                          self.key, last_seq, exc)
                continue
            for change in changes:
                self._committing = True
                try:
                    self.doc.apply_update(change)
                finally:
                    self._committing = False
                self.broadcast(protocol.update_message(change))
                shown += 1
        self.last_seq = max(self.last_seq, last_seq)
        if shown:
            self.last_change = time.monotonic()
            for listener in self._change_listeners:
                listener(None)
        return shown

    def receive_remote_awareness(self, payload: bytes) -> None:
        """Awareness another replica accepted from its participants (an
        awareness update's payload): kept here, so that a tab joining this
        replica sees those cursors too, and relayed to this replica's
        participants; never sent back to the bus. Raises ProtocolError when
        it is malformed."""
        entries = protocol.parse_awareness(payload)
        self.awareness_policy.remote(entries)
        self.awareness.apply_awareness_update(payload, "remote")
        self.broadcast(protocol.awareness_message(payload))

    def on_awareness(self, listener: Callable[[bytes], None]) -> None:
        """Call ``listener(payload)`` with each awareness update this room
        relays from its own participants (what other replicas must see)."""
        self._awareness_listeners.append(listener)

    def relay_awareness(self, payload: bytes) -> None:
        """Broadcast an awareness update of this replica's participants and
        hand it to the awareness listeners."""
        self.broadcast(protocol.awareness_message(payload))
        for listener in self._awareness_listeners:
            listener(payload)

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
            self.relay_awareness(self.awareness.encode_awareness_update(gone))
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

    HOLD_UPDATES = 1000
    """Incomplete updates held for one participant until its sync reply (see guard: completeness)."""
    HOLD_BYTES = 4 * 1024 * 1024
    """... and their total size; beyond either bound the update is refused as incomplete."""

    def _hold(self, participant: Participant, update: bytes) -> bool:
        """Keep an incomplete update of a participant whose sync reply has not
        come yet (it reconnected holding edits we never got, and typed before
        its step 2 went out): False when that would pass the bounds."""
        if len(participant.held) >= self.HOLD_UPDATES or \
                sum(map(len, participant.held)) + len(update) > self.HOLD_BYTES:
            return False
        participant.held.append(update)
        if len(participant.held) == 1:
            log.info("update held until the sync reply room=%s user=%s site=%s", self.key,
                     participant.identity.label, participant.identity.idp)
        return True

    def _resync(self, participant: Participant) -> None:
        """A participant whose updates were dropped while it could not edit
        (the room read-only: a foreign lock; or it was a viewer) may edit
        now: its tab still holds what was dropped (JupyterLab writes the
        kernel's metadata on its own, read-only or not), and its next updates
        build on it, which the guard would refuse as incomplete and close the
        tab. Ask it for what we lack (a sync step 1, as at a join): its reply
        brings those changes through the guard like any edit, and what it
        sends meanwhile is held until then, so the room and the tab agree."""
        participant.diverged = False
        participant.synced = False
        participant.connection.send(protocol.step1_message(self.doc.get_state()))
        log.info("asking a tab for what it changed while it could not edit room=%s user=%s site=%s dropped=%d",
                 self.key, participant.identity.label, participant.identity.idp, participant.dropped_updates)

    async def _sync_replied(self, participant: Participant) -> None:
        """The participant's step 2 is in: what it sent before (held) applies now,
        in order, or is refused as incomplete for good."""
        participant.synced = True
        held, participant.held = participant.held, []
        for update in held:
            await self.apply(update, participant)
        if held:
            log.info("held updates applied after the sync reply room=%s user=%s updates=%d", self.key,
                     participant.identity.label, len(held))


    async def receive(self, participant: Participant, data: bytes, on_save: Callable[[Participant, int], None]) -> None:
        """Handle one frame from a participant.

        ``on_save(participant, save_id)`` is called for a save request; it
        must not wait for CS3 (the sender's next frames are handled only
        once this returns): it starts the save and replies when it is done.
        Raises ProtocolError, UpdateRefused or JournalUnavailable for the
        caller to close this connection; the room carries on.
        """
        frame = protocol.parse_frame(data)
        if frame.type == MessageType.SYNC:
            if frame.sync == SyncType.STEP1:
                # the live document holds durable changes only: no need to wait
                try:
                    missing = self.doc.get_update(frame.payload)
                except Exception as exc:
                    raise ProtocolError(f"invalid state vector: {exc}") from None
                participant.connection.send(protocol.step2_message(missing))
                return
            reply = frame.sync == SyncType.STEP2
            if frame.payload != EMPTY_UPDATE:  # a step 2 with nothing in it: nothing to drop or apply
                metrics.update_received()
                if not participant.can_edit or self.read_only:
                    participant.dropped_updates += 1
                    if participant.dropped_updates == 1 or participant.dropped_updates % 100 == 0:
                        log.warning(
                            "dropped document update room=%s user=%s role=%s read_only=%s dropped=%d",
                            self.key, participant.identity.label, participant.role, self.read_only,
                            participant.dropped_updates,
                        )
                    participant.held.clear()
                    participant.diverged = True
                else:
                    if participant.diverged:
                        self._resync(participant)
                    try:
                        await self.apply(frame.payload, participant)
                    except UpdateIncomplete:
                        if reply or participant.synced or not self._hold(participant, frame.payload):
                            raise
            if reply and not participant.synced:
                await self._sync_replied(participant)
        elif frame.type == MessageType.AWARENESS:
            self.awareness_policy.receive(participant, frame.payload)  # own ids only, vouched, coalesced, relayed
        elif frame.type == MessageType.RAW:
            on_save(participant, frame.save_id)
        elif frame.type == MessageType.QUERY_AWARENESS:
            ids = list(self.awareness.states)
            participant.connection.send(protocol.awareness_message(self.awareness.encode_awareness_update(ids)))
