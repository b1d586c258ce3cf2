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
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pycrdt import Awareness, Doc, TransactionEvent, UndoManager
from pycrdt import get_state as vector_of
from pycrdt import get_update as update_from_state
from pycrdt import merge_updates

from cs3collab.cs3 import Session
from cs3collab.service import deletesets, metrics, protocol
from cs3collab.service.awareness import AwarenessPolicy, AwarenessSettings
from cs3collab.service.documents import DocumentKind
from cs3collab.service.guard import Candidate, DocumentLimits, UpdateIncomplete, UpdateRefused, check_nesting
from cs3collab.service.identity import EDITOR, Identity
from cs3collab.service.journal import Journal, author_tag
from cs3collab.service.protocol import MessageType, ProtocolError, SyncType
from cs3collab.service.slices import SLICE_BYTES

log = logging.getLogger("cs3collab.service.room")

EMPTY_UPDATE = b"\x00\x00"
EMPTY_STATE_VECTOR = b"\x00"  # a fresh Doc's: no client, no clock


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


def _clocks(vector: bytes) -> dict[int, int]:
    """An encoded state vector as {client: clock}."""
    count, pos = protocol.read_var_uint(vector, 0)
    clocks = {}
    for _ in range(count):
        client, pos = protocol.read_var_uint(vector, pos)
        clocks[client], pos = protocol.read_var_uint(vector, pos)
    return clocks


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
        self._doc: Doc | None = None
        self._document: Any = None
        self._live_subscription = None
        self._new_live_doc()
        self._candidate = Candidate(kind, limits or DocumentLimits())
        # awareness only takes the document's client id: it does not keep the document
        self.awareness = Awareness(self._doc)
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
        # while released (idle): the document's encoded state, compressed (zlib), and its
        # state vector, and no document
        self._released: bytes | None = None
        self._released_tail = b""  # what the state has beyond _released (see release_soon), uncompressed
        self._released_bytes = 0  # the encoded state's size, uncompressed
        self._released_vector = b""
        self._released_deleted: deletesets.Ranges | None = None  # read on the first echo
        self.last_activity = time.monotonic()  # the last change, or the last rebuild
        self._warming: asyncio.Task | None = None  # a rebuild started ahead of an edit (see warm)
        # after a released room's first change came with no warning: the live document is
        # built after that change's broadcast, from these parts in order (see _revive_candidate)
        self._live_parts: list[bytes] | None = None
        # a SyncStep2 of the whole live document, the answer to a fresh tab's SyncStep1 (an empty
        # state vector): made once and reused until the document changes (see sync_answer)
        self._whole_step2: bytes | None = None

    # -- the documents' lifetime, and releasing them when idle ---------------------
    #
    # An idle room (see LiveRoom's idle release) drops both documents and keeps
    # one encoded Y update (its state) and that update's state vector: enough
    # to answer a sync (a joiner's SyncStep1, a tab that reconnects), a save's
    # read of the state, and a versions diff, without a document. Anything
    # else that reads ``doc``, ``document`` or ``candidate`` rebuilds them
    # first (:meth:`revive`), so no path can see a released document; the
    # commit paths (apply, edit, receive_remote, restore) revive explicitly.

    def _new_live_doc(self, *base: bytes) -> Doc:
        """A new live document holding ``base`` (durable updates), applied
        before the document is wrapped and observed."""
        doc = Doc()
        for update in base:
            doc.apply_update(update)
        document = self.kind.wrap(doc)
        # jupyter_ydoc gives each document an undo manager over its cells: on
        # the server nobody undoes, and it would keep the whole notebook a
        # second time in its undo stack (10 MB for a 1000-cell notebook)
        document._undo_manager = UndoManager(capture_timeout_millis=0)
        self._doc, self._document = doc, document
        self._whole_step2 = None
        self._live_subscription = doc.observe(self._on_live_transaction)
        return doc

    def _unobserve_live_doc(self) -> None:
        # a document observer refers to its document from inside yrs: a
        # document dropped while observed would never be freed
        if self._doc is not None and self._live_subscription is not None:
            self._doc.unobserve(self._live_subscription)
        self._live_subscription = None

    def dispose(self) -> None:
        """The room is closed for good: end its documents' observers so that
        yrs frees them with the room (a document dropped while observed never
        is). The documents stay readable for whatever still holds the room
        (a released room rebuilds them, unobserved by nothing that matters)."""
        if self._released is not None:
            return  # nothing observed is held
        self._unobserve_live_doc()
        self._candidate.unobserve()

    @property
    def doc(self) -> Doc:
        """The live document (rebuilt first if the room released it)."""
        self._ensure_live("doc")
        return self._doc

    @property
    def document(self) -> Any:
        """The live jupyter_ydoc document (rebuilt first if released); read it, never write it."""
        self._ensure_live("document")
        return self._document

    @property
    def candidate(self) -> Candidate:
        """The schema guard's document (rebuilt first if released)."""
        if self._released is not None:
            self.revive("candidate")
        return self._candidate

    @property
    def released(self) -> bool:
        """Whether the room holds no document now, only its encoded state."""
        return self._released is not None

    def state_vector(self) -> bytes:
        """The live document's state vector (what a SyncStep1 sends), without rebuilding it."""
        if self._released is not None:
            return self._released_vector
        return self.doc.get_state()

    @staticmethod
    def _whole(compressed: bytes, tail: bytes) -> bytes:
        """A released room's state as one update (decompressed: ~5-10 ms for
        a 1000-cell notebook when the machine is quiet; merged with its tail)."""
        state = zlib.decompress(compressed)
        return merge_updates(state, tail) if tail else state

    def encoded_state(self) -> bytes:
        """The live document as one Y update, without rebuilding it."""
        if self._released is not None:
            return self._whole(self._released, self._released_tail)
        return self.doc.get_update()

    def missing(self, state_vector: bytes) -> bytes:
        """What a peer with ``state_vector`` lacks (a SyncStep2), without rebuilding the document."""
        if self._released is not None:
            return update_from_state(self.encoded_state(), state_vector)
        return self.doc.get_update(state_vector)

    async def missing_soon(self, state_vector: bytes) -> list[bytes]:
        """:meth:`missing`, with a released room's state decompressed on a
        thread (zlib lets go of the GIL) rather than on the event loop; as
        updates to send in order: the first is the SyncStep2, the next (a
        released room's tail, see release_soon) an update after it, so that
        the state and its tail need not be merged (a merge decodes the whole
        state into many small allocations). What changes meanwhile reaches
        the peer as a broadcast, as for any sync."""
        compressed, tail = self._released, self._released_tail
        if compressed is None:
            return [self.doc.get_update(state_vector)]
        state = await asyncio.to_thread(zlib.decompress, compressed)
        updates = [update_from_state(state, state_vector)]
        if tail:
            extra = update_from_state(tail, state_vector)
            if extra != EMPTY_UPDATE:
                updates.append(extra)
        return updates

    async def sync_answer(self, state_vector: bytes) -> list[bytes]:
        """The frames that answer a SyncStep1 with ``state_vector``: its
        SyncStep2 and, for a released room, the state's tail as an update.

        A fresh tab (an empty state vector) gets the whole document. Encoding
        a 1000-cell notebook takes ~8 ms of the event loop, and a class of
        thirty opening one notebook would ask thirty times: the encoding is
        made once (or, on a fresh open, taken from the worker's) and reused
        until the document changes; it holds the encoded state once more in
        memory meanwhile, at most until the room is released."""
        if state_vector == EMPTY_STATE_VECTOR and self._released is None and self._live_parts is None:
            if self._whole_step2 is None:
                self._whole_step2 = protocol.step2_message(self._doc.get_update())
            return [self._whole_step2]
        missing, *after = await self.missing_soon(state_vector)
        return [protocol.step2_message(missing), *(protocol.update_message(update) for update in after)]

    def set_size(self, size: int) -> None:
        """What the document limit counts as the document's size now (a save measured it)."""
        self._candidate.size = size

    def may_release(self) -> bool:
        """Whether nothing is under way that needs the documents (no change in
        flight, no participant's update held until its sync reply)."""
        return self._released is None and self._live_parts is None and not self._in_flight and not self._pending \
            and not any(p.held for p in self.participants)

    async def release_soon(self, base: bytes | None = None) -> int | None:
        """:meth:`release`, with the state compressed on a thread (zlib lets
        go of the GIL; ~20-40 ms for a 1000-cell notebook, which on the event
        loop would stall every room). None, and nothing released, if the room
        changed meanwhile or is no longer releasable.

        ``base``: an earlier state of this document, zlib-compressed, that is
        kept anyway (the last saved state, which storage keeps compressed for
        outside-edit merges): the room then keeps that same bytes object and
        only what its state has beyond it (the tail: the edits since the save,
        the ``cs3collab:saved`` state, and the delete set), instead of a
        second compressed copy of nearly the same state."""
        if not self.may_release():
            return None
        vector, state = self._doc.get_state(), self._doc.get_update()
        compressed, tail = await asyncio.to_thread(self._shrink, state, vector, base)
        if not self.may_release() or self._doc.get_state() != vector:
            return None  # an edit came in while compressing: keep the documents
        return self.release(compressed=compressed, tail=tail, size=len(state))

    @staticmethod
    def _shrink(state: bytes, vector: bytes, base: bytes | None) -> tuple[bytes, bytes]:
        """(compressed, tail) for a released room (run on a thread): ``base``
        and the state's difference from it when ``base`` is a part of the
        state (no clock of it beyond the state's) and the difference is
        small; else the whole state compressed."""
        if base is not None:
            try:
                base_vector = vector_of(zlib.decompress(base))
                have, behind = _clocks(vector), _clocks(base_vector)
                if all(have.get(client, 0) >= clock for client, clock in behind.items()):
                    tail = update_from_state(state, base_vector)
                    if tail == EMPTY_UPDATE:
                        return base, b""  # nothing since the save
                    if len(tail) < len(base) // 2:
                        return base, tail
            except Exception as exc:  # not an update of this document: no sharing
                log.warning("the last saved state cannot be shared by a released room error=%r", exc)
        return zlib.compress(state, 1), b""

    def release(self, *, compressed: bytes | None = None, tail: bytes = b"", size: int = 0) -> int:
        """Drop the live document and the candidate, keeping only the encoded
        state, compressed (``compressed``, ``tail``, ``size``: the state, or a
        part of it, compressed with zlib, what the state has beyond that part,
        and the state's size, all of the documents as they are now; else it
        is compressed here); returns the state's size in bytes. Only when
        :meth:`may_release`. A released room holds about a quarter of the
        encoded state (zlib level 1 on a notebook's Y state), or only the tail
        when it shares the last saved state (release_soon)."""
        if not self.may_release():
            raise RuntimeError("a room with changes in flight keeps its documents")
        self._released_vector = self._doc.get_state()
        if compressed is None:
            state = self._doc.get_update()
            compressed, tail, size = zlib.compress(state, 1), b"", len(state)
            del state
        self._released, self._released_tail, self._released_bytes = compressed, tail, size
        self._unobserve_live_doc()
        self._doc = self._document = None
        self._whole_step2 = None
        self._candidate.release()
        metrics.room_released()
        log.info("room released its document room=%s state_bytes=%d compressed_bytes=%d tail_bytes=%d "
                 "participants=%d", self.key, size, len(compressed), len(tail), len(self.participants))
        return size

    def revive(self, why: str) -> None:
        """Rebuild the released documents from the encoded state (synchronous:
        nothing can see the room half rebuilt). ``why``: what needed them."""
        if self._released is not None:
            self._revive_from(zlib.decompress(self._released), self._released_tail, why)

    def _revive_from(self, state: bytes, tail: bytes, why: str, started: float | None = None, *,
                     live_later: bool = False) -> None:
        """Rebuild both documents from the released state, or with
        ``live_later`` only the candidate (see below)."""
        started = time.perf_counter() if started is None else started
        parts = [state, tail] if tail else [state]
        if live_later:
            self._live_parts = parts
        else:
            self._new_live_doc(*parts)
        self._candidate.rebuild(state, [*parts[1:], *self._pending])
        self._released, self._released_vector, self._released_deleted = None, b"", None
        self._released_tail = b""
        self.last_activity = time.monotonic()
        seconds = time.perf_counter() - started
        metrics.room_revived(seconds)
        log.info("room rebuilt its %s room=%s why=%s state_bytes=%d ms=%.1f%s",
                 "candidate document" if live_later else "document", self.key, why, len(state), seconds * 1000,
                 " (the live document follows the change)" if live_later else "")

    # The first change of a released room, with no warning ahead (no cursor
    # move: see warm below), must wait for the candidate, which checks it;
    # not for the live document, which only receives a change once the
    # journal holds it and is read by nobody on the way to the broadcast.
    # So only the candidate is rebuilt before the change; the live document
    # is built from the same parts plus the change right after its frames
    # went out (in _commit), or at once by anything that reads it sooner
    # (the ``doc`` accessor). Until then the room is not released, nor
    # releasable: nothing in it is lost, and the live document still only
    # ever holds durable changes.

    def _revive_candidate(self, why: str) -> None:
        """Rebuild the candidate of a released room now and leave the live
        document to be built after the coming change (see above)."""
        started = time.perf_counter()
        self._revive_from(zlib.decompress(self._released), self._released_tail, why, started, live_later=True)

    def _ensure_live(self, why: str) -> None:
        """The live document exists after this: rebuilt if released, built if pending."""
        if self._released is not None:
            self.revive(why)
        else:
            self._build_live()

    def _build_live(self) -> None:
        """Build the live document from the parts :meth:`_revive_candidate` left."""
        parts, self._live_parts = self._live_parts, None
        if parts is None:
            return
        started = time.perf_counter()
        self._new_live_doc(*parts)
        log.debug("room rebuilt its live document room=%s parts=%d ms=%.1f", self.key, len(parts),
                  (time.perf_counter() - started) * 1000)

    def _adds_nothing(self, update: bytes) -> bool:
        """Whether an update to the released room changes nothing (a tab
        echoing what it was sent, the initial sync included): then the room
        need not rebuild. Raises UpdateRefused for an update nested too deep
        for pycrdt to read; False when unsure (the usual path decides)."""
        check_nesting(update, self._candidate.limits.max_depth)
        def deleted() -> deletesets.Ranges:
            if self._released_deleted is None:
                # the tail carries the whole state's delete set (it is a diff of the state)
                self._released_deleted = deletesets.deleted_in(
                    self._released_tail or zlib.decompress(self._released), self._released_vector)
            return self._released_deleted

        try:
            return deletesets.adds_nothing(update, self._released_vector, deleted)
        except BaseException as exc:  # pycrdt raises plain exceptions (and pyo3 panics) for bad updates
            if isinstance(exc, (KeyboardInterrupt, SystemExit, asyncio.CancelledError)):
                raise
            return False

    # Rebuilding ahead of the first keystroke. A rebuild is two applies of the
    # whole state (the live document and the candidate): tens of ms for a
    # 1000-cell notebook, more on a busy machine, and pycrdt holds the GIL
    # throughout, so a thread would not hide it. The keystroke that finds the
    # room released waits for it; but a tab coming back announces itself
    # first: JupyterLab sends the cursor's new position (an awareness change)
    # when the user clicks into a cell, before the first key. The room starts
    # rebuilding then, so that the keystroke finds the documents built. The
    # 15 s renewal of an unchanged state is no such sign (nor a viewer's cursor).

    def _coming_back(self, participant: Participant, payload: bytes) -> bool:
        """Whether an awareness update from ``participant`` changes its state
        (beyond its ``user`` field, which the room rewrites) from the one the
        room holds: a cursor moved, a selection, a first state with a cursor."""
        try:
            entries = protocol.parse_awareness(payload)
        except ProtocolError:
            return False  # the policy refuses it
        known = self.awareness.states
        for client_id, _clock, state in entries:
            if state is None or self.awareness_policy.owners.get(client_id, participant) is not participant:
                continue
            before = known.get(client_id) or {}
            if {k: v for k, v in state.items() if k != "user"} != {k: v for k, v in before.items() if k != "user"}:
                return True
        return False

    def warm(self, why: str) -> None:
        """Start rebuilding a released room's documents now, in a task of its
        own (the caller, a connection's frame, does not wait for it)."""
        if self._released is None or self._warming is not None:
            return
        self._warming = asyncio.get_running_loop().create_task(self._warm(why), name=f"warm:{self.key}")

    async def _warmed(self) -> None:
        """Wait for a rebuild already under way (started by a cursor move)
        rather than start another: the change then waits only for its rest."""
        warming = self._warming
        if warming is not None and self._released is not None:
            await asyncio.shield(warming)  # a change cancelled while waiting does not cancel the rebuild

    async def _warm(self, why: str) -> None:
        try:
            compressed, tail, started = self._released, self._released_tail, time.perf_counter()
            # decompressed on a thread; the applies must run here (pycrdt holds the GIL)
            state = await asyncio.to_thread(zlib.decompress, compressed)
            if self._released is compressed and self._released_tail is tail:  # not rebuilt meanwhile
                self._revive_from(state, tail, why, started)
        except Exception:
            log.exception("rebuilding ahead of an edit failed room=%s", self.key)  # the edit will try again
        finally:
            self._warming = None

    async def live(self, why: str = "read") -> Any:
        """The live jupyter_ydoc document, rebuilt first if the room released it:
        the one accessor for code outside the room that must read its content."""
        self.revive(why)
        return self.document

    # -- content -------------------------------------------------------------
    #
    # Two documents of the same content: ``candidate`` (guard.Candidate) runs
    # ahead and is where every change is made or tried; ``doc``, the live
    # document that participants see, only ever receives a change once the
    # journal holds it. A refused update or a failed append therefore never
    # reaches the live document; the candidate is rebuilt from it.

    def _on_live_transaction(self, event: TransactionEvent) -> None:
        if self._committing:  # every sanctioned change of the live document
            self._whole_step2 = None
            return
        if event.update == EMPTY_UPDATE:  # a read (pycrdt commits a transaction for each)
            return
        self._whole_step2 = None
        # someone changed the live document directly (bypassing edit()): keep
        # the candidate in step, and say so, since that change is not journaled
        log.warning("live document changed outside the room's commit path room=%s bytes=%d", self.key, len(event.update))
        self._candidate.doc.apply_update(event.update)

    def _rebuild_candidate(self) -> None:
        self.revive("rebuild")
        self._candidate.rebuild(self.doc, self._pending)

    def restore(self, updates: list[bytes], last_seq: int) -> None:
        """Rebuild the document from journal entries (no broadcast: nobody is connected)."""
        self.revive("restore")
        self._committing = True
        try:
            for update in updates:
                self.doc.apply_update(update)
        finally:
            self._committing = False
        self.last_seq = last_seq
        self._rebuild_candidate()

    async def restore_in_slices(self, slices: list[bytes], last_seq: int, slice_bytes: int = SLICE_BYTES, *,
                                whole_step2: bytes | None = None) -> None:
        """restore() for an open, without stalling the other rooms: ``slices``
        (slices.split_update of the journal's updates, made in the worker) go
        into the live document and the candidate together, about
        ``slice_bytes`` at a time, with the event loop free in between; the
        candidate is not rebuilt from a multi-MB encoding of the live one.
        Nobody is connected yet; the room is not used until it returns.
        ``whole_step2``: the one update the slices were cut from, framed as
        a SyncStep2 message, if there is one (a fresh open; the worker frames
        it): the first tabs are sent it rather than an encoding of the
        document made on the event loop (see sync_answer)."""
        self.revive("restore")
        self.candidate.begin_restore()
        batch = 0
        for update in slices:
            if batch >= slice_bytes:
                # the other rooms' turn, their journal commits first (see Journal.settled)
                await self.journal.settled()
                await asyncio.sleep(0)
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
        if whole_step2 is not None:
            self._whole_step2 = whole_step2

    async def apply(self, update: bytes, author: Participant | None) -> int:
        """Try an update on the candidate, make its effect durable, then show it.

        An update from a participant is checked (guard.Candidate): a refused
        one raises UpdateRefused and nobody sees any of it. Returns the
        journal sequence of the last change (0 if it changed nothing).
        Raises ProtocolError when the update cannot be applied, and
        JournalUnavailable when its effect could not be made durable (then
        it is in no document).
        """
        if self._released is not None and self._adds_nothing(update):
            return 0  # an echo: nothing to show, journal or rebuild for
        await self._warmed()
        if self._released is not None:
            self._revive_candidate("update")
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
        await self._warmed()
        self.revive("edit")
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
                if self._live_parts is not None:
                    self._live_parts.append(change)  # the live document is built just below
                else:
                    self._committing = True
                    try:
                        self.doc.apply_update(change)
                    finally:
                        self._committing = False
                self.last_seq = max(self.last_seq, seq)
                self.last_activity = time.monotonic()
                self.broadcast(protocol.update_message(change), exclude=author)
                metrics.update_broadcast(started)
            self._build_live()  # after a released room's first change: now that the others have it
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
        if self._released is not None:
            # entries re-delivered after a gap add nothing: no rebuild for them
            fresh = []
            for update in updates:
                try:
                    nothing = self._adds_nothing(update)
                except UpdateRefused:
                    nothing = False  # the usual path below logs and skips it
                if not nothing:
                    fresh.append(update)
            updates = fresh
        if updates:
            self.revive("remote update")
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
            self.last_change = self.last_activity = time.monotonic()
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
        participant.connection.send(protocol.step1_message(self.state_vector()))
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
        participant.connection.send(protocol.step1_message(self.state_vector()))
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
                # the live document holds durable changes only: no need to wait;
                # a released room answers from its encoded state
                try:
                    answer = await self.sync_answer(frame.payload)
                except Exception as exc:
                    raise ProtocolError(f"invalid state vector: {exc}") from None
                for message in answer:
                    participant.connection.send(message)
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
            if self._released is not None and participant.can_edit and not self.read_only \
                    and self._coming_back(participant, frame.payload):
                self.warm("awareness")  # its first keystroke comes next, most likely
            self.awareness_policy.receive(participant, frame.payload)  # own ids only, vouched, coalesced, relayed
        elif frame.type == MessageType.RAW:
            on_save(participant, frame.save_id)
        elif frame.type == MessageType.QUERY_AWARENESS:
            ids = list(self.awareness.states)
            participant.connection.send(protocol.awareness_message(self.awareness.encode_awareness_update(ids)))
