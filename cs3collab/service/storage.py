"""The CS3 side of a room: load once, save as versions, fold in outside edits.

:class:`RoomStorage` keeps one room and its file in CS3 in step:

* **load**: rebuild the document from the journal when it has the room
  (a continuous Y history, so reconnecting clients never duplicate), else
  download the file once and build it deterministically; a file that is not
  a valid notebook refuses the room and stays untouched;
* **save**: debounced (a quiet period, and a ceiling under continuous
  typing), one at a time, serialized through jupyter_ydoc and validated by
  nbformat, uploaded as an editor who contributed with ``if_match`` on the
  etag we last wrote and the room's lock id. Every upload is a CS3 version;
  its arbitrary metadata says which journal state it holds and who wrote it;
* **outside edits**: an etag we did not write (seen by polling Stat, or by
  a failed ``if_match``) is downloaded and merged as the change from our last
  save to the new content, so what was typed in the room stays.

A failed save keeps everything in the journal and is tried again; nothing
here ever drops an edit.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pycrdt import Doc

from cs3collab.cs3 import CS3Error, FailedPrecondition, NotFound, PermissionDenied, Session, Unauthenticated, Unavailable
from cs3collab.cs3.refs import format_resource_id
from cs3collab.service import metrics, save_records, worker
from cs3collab.service.documents import InvalidDocument
from cs3collab.service.journal import Compressed
from cs3collab.service.locking import LockKeeper
from cs3collab.service.logthrottle import LogThrottle
from cs3collab.service.room import Participant, Room
from cs3collab.service.worker import DocumentWorker
from cs3collab.service import cadence

log = logging.getLogger("cs3collab.service.storage")
throttle = LogThrottle(60.0)
"""Repeated failures of one room (poll, save) are logged at most once a minute."""

LOCK_ID_META = "lock_id"
"""Journal meta key of the room's CS3 lock id."""

SAVING_META = "saving"
"""Journal meta key of the save being uploaded: ``{"seq", "sha256"}`` of its content."""

MERGED_META = "merged_outside"
"""Journal meta: ``{"etag", "seqs"}`` of outside edits merged while the room
had unsaved edits: the stored file (``etag``) is the last saved state plus
the updates at ``seqs``, so a restart does not merge it a second time."""
READ_ONLY_STATE = "cs3collab:readOnly"
"""Key in the document's ``state`` map: why the room is read-only for everyone
("locked by <app> (<user>)"), or "" when it is not."""
SAVED = "cs3collab:saved"
"""RAW notice type: a save wrote the file (``etag``); ends a save-failed run."""
SAVE_FAILED = "cs3collab:save-failed"
"""RAW notice type: saves fail (``reason``, ``message``); retried until one works."""
READ_ONLY = "cs3collab:read-only"
"""RAW notice type: the room's read-only ``reason`` changed (null: editable again)."""


@dataclass(frozen=True)
class StorageSettings:
    """Timings of a room's CS3 side (seconds); the service's traits fill them."""

    save_quiet: float = 1.0
    save_ceiling: float = 10.0
    poll_interval: float = 2.0
    poll_idle_interval: float = 30.0  # polls of a room idle for poll_active_window (cadence.py)
    poll_active_window: float = 60.0
    poll_locked_interval: float = 120.0  # polls of an idle room that holds its CS3 lock (cadence.py)
    save_jitter: float = 0.3  # fraction of save_ceiling spread over rooms (cadence.py)
    retry_delay: float = 2.0
    lock_lifetime: float = 120.0
    app_name: str = "cs3collab"


@dataclass
class _Author:
    name: str
    first: int  # journal sequence of their first unsaved change
    last: int  # and of their last change


class UnsavedAuthors:
    """Who has changes not saved yet, by journal sequence: what a save record names.

    A save writes the changes up to a sequence; its record names everyone
    with an unsaved change up to it, and only them: someone whose typing an
    earlier save already wrote is not named again because others kept
    typing meanwhile (a restore right after saved typing names the restorer).
    """

    def __init__(self) -> None:
        self._authors: dict[str, _Author] = {}  # user id -> their unsaved changes

    def note(self, uid: str, name: str, seq: int) -> None:
        """``uid`` (display name ``name``) made the change at journal sequence ``seq``."""
        known = self._authors.get(uid)
        if known is None:
            self._authors[uid] = _Author(name, seq, seq)
        else:
            known.name, known.last = name, max(known.last, seq)

    def saved_up_to(self, seq: int) -> dict[str, str]:
        """The changes up to ``seq`` are saved: who made them (user id → name).
        Authors whose changes are all in it are forgotten; the others are named
        again by the save that writes their later changes."""
        named = {uid: author.name for uid, author in self._authors.items() if author.first <= seq}
        for uid in list(self._authors):
            author = self._authors[uid]
            if author.last <= seq:
                del self._authors[uid]
            elif author.first <= seq:
                author.first = seq + 1
        return named


class PersistenceMoved(Exception):
    """Another replica persists the room now (it took the room's lease):
    this one must not write the file. Raised by the fence before an upload."""


class RoomStorage:
    """Keeps one room and its CS3 file in step.

    Args:
        room: the room whose document this stores.
        resource_id: the file's CS3 resource id.
        settings: timings.
    """

    def __init__(self, room: Room, resource_id, settings: StorageSettings, documents_worker: DocumentWorker) -> None:
        self.room = room
        self.resource_id = resource_id
        self.settings = settings
        self.documents_worker = documents_worker
        self.before_save: Callable[[], Awaitable[None]] | None = None  # the room's access re-check
        # replicas (--redis-url): whether this replica persists the room (holds its
        # lease), and the fence checked right before each upload (raises PersistenceMoved)
        self.may_persist: Callable[[], bool] = lambda: True
        self.before_upload: Callable[[], Awaitable[None]] | None = None
        self.on_read_only: Callable[[str | None], None] | None = None  # told to the other replicas
        # RAW notices about saving (saved, save-failed): to every participant, on every replica
        self.notify: Callable[[dict], None] = room.notify
        self.where = format_resource_id(resource_id)
        self.path = ""
        self._persisted_z = zlib.compress(b"")
        self.persisted_etag = ""
        self.persisted_seq = 0
        self.unsaved = False
        self.last_save_status = "success"
        self.versions_written = 0  # CS3 versions this room's saves made (a Ctrl+S compares before and after)
        self.save_failures = 0  # saves failed in a row (told to participants on the first)
        self._failure_reason: str | None = None
        self.save_problem: dict | None = None  # the save-failed notice while saves fail (for joiners)
        self._authors = UnsavedAuthors()
        self._writers: dict[str, Session] = {}
        self._save_lock = asyncio.Lock()
        self._merging = False
        self._merged_seqs: list[int] = []  # outside edits merged since the last save (MERGED_META)
        self._dirty = asyncio.Event()
        self.lock = LockKeeper(resource_id, settings.app_name, settings.lock_lifetime, self.where)
        self.lock.on_lost = self._lock_lost
        # the poll loop's timer is cut short (a catch-up poll) by activity after
        # idleness (wake) and by a failed lock refresh (_lock_lost)
        self._poll_now = asyncio.Event()
        self._waiting_idle = False  # the poll loop sleeps an idle room's interval
        room.on_change(self._changed)

    @property
    def read_only_reason(self) -> str | None:
        """Why nobody may edit (another app's lock), or None: the room's one flag."""
        return self.room.read_only

    @property
    def persisted_state(self) -> bytes:
        """The Y state of what CS3 holds (the base of outside-edit merges).

        Kept compressed: it is needed only on an outside edit or a compaction,
        and a Y update of a notebook compresses several times, so an idle
        room costs little more than its live document.
        """
        return zlib.decompress(self._persisted_z)

    @persisted_state.setter
    def persisted_state(self, state: bytes) -> None:
        self._persisted_z = zlib.compress(state, 1)

    @property
    def persisted_compressed(self) -> bytes | None:
        """:attr:`persisted_state` as kept (zlib), None before the first open or
        save: a released room shares these bytes (Room.release_soon)."""
        return self._persisted_z if self.persisted_seq else None

    # -- loading -----------------------------------------------------------------

    async def load(self, session: Session) -> None:
        """Build the room's document; raises InvalidDocument or a CS3Error when it cannot open."""
        info = await session.files.stat(self.resource_id)
        self.path = info.path
        record = await self.room.journal.load(self.room.key)
        # the work proportional to the document is done in the worker; what must
        # be done here (applying it to the room's documents) goes a slice at a time
        if record is not None and record.updates:
            parts, self._persisted_z = await self.documents_worker.run(
                worker.open_journal, record.updates, record.seqs, record.persisted_seq)
            await self.room.restore_in_slices(parts, record.last_seq)
            self.persisted_seq = record.persisted_seq
            self.persisted_etag = record.persisted_etag
            self.unsaved = record.needs_flush
            log.info(
                "room rebuilt from journal room=%s path=%s seq=%d persisted_seq=%d",
                self.room.key, self.path, record.last_seq, record.persisted_seq,
            )
            # an outside edit is merged by the replica that persists the room (only one may)
            if info.etag != self.persisted_etag and self.may_persist() \
                    and not self._recognise_merged(record, info.etag):
                data = await session.files.download(self.resource_id)
                if not await self._recognise_own_save(record, info.etag, data):
                    await self._merge_outside(session, info.etag, data)
        else:
            data = await session.files.download_chunks(self.resource_id)  # joined in the worker
            # named by its file name: the refusal reaches the client in a close
            # reason of at most 123 bytes, which a full path would fill
            name = self.path.rsplit("/", 1)[-1] if self.path else self.where
            step2, size, parts, persisted_z = await self.documents_worker.run(
                worker.open_file, self.room.kind.doc_type, data, self.room.key, name)
            # the journal may keep the compressed copy made for the persisted state:
            # a quarter of the bytes on its one writer, ahead of every room's keystrokes
            # (a journal that keeps updates raw decompresses it on a thread)
            seq = await self.room.journal.append(self.room.key, Compressed(persisted_z, size))
            await self.room.restore_in_slices(parts, seq, whole_step2=step2)
            await self.room.journal.mark_persisted(self.room.key, seq, info.etag)
            self._persisted_z, self.persisted_seq, self.persisted_etag = persisted_z, seq, info.etag
            log.info("room opened from CS3 room=%s path=%s etag=%s", self.room.key, self.path, info.etag)
        await self._adopt_lock_id(record)
        await self.lock.learn_holder(info, session)
        await self._update_read_only(info)  # a foreign lock makes the room read-only from the start
        if not self.read_only_reason and self.may_persist():
            await self.lock.acquire([session])  # the room opens holding its lock
        if self.unsaved:
            self._dirty.set()

    async def _recognise_own_save(self, record, etag: str, data: bytes) -> bool:
        """Whether the file's content is a save of ours whose success the
        journal never recorded (the process died between the upload and
        ``mark_persisted``); if so, record it now.

        Merging it as an outside edit instead would apply, a second time, the
        text it already holds: the saved intent (seq and content hash, kept in
        the journal before each upload) tells the two apart.
        """
        try:
            intent = json.loads(record.meta.get(SAVING_META, "") or "null")
        except json.JSONDecodeError:
            intent = None
        if not intent or intent.get("sha256") != hashlib.sha256(data).hexdigest():
            return False
        seq = int(intent["seq"])
        if not record.persisted_seq <= seq <= record.last_seq:
            return False
        self.persisted_state = await self.documents_worker.run(worker.state_upto, record.updates, record.seqs, seq)
        self.persisted_seq, self.persisted_etag = seq, etag
        self.unsaved = record.last_seq > seq
        await self.room.journal.mark_persisted(self.room.key, seq, etag)
        log.info("recognised an unrecorded save of ours room=%s path=%s etag=%s seq=%d", self.room.key, self.path, etag, seq)
        return True

    def _recognise_merged(self, record, etag: str) -> bool:
        """Take back the outside edits this room had merged before it went
        down with unsaved edits (MERGED_META): they are in the journal already,
        as the updates at ``seqs``, so the state the stored file was merged
        against is the last save plus those. True if the stored file
        (``etag``) is the last of them: nothing is left to merge. Otherwise a
        merge follows from that state; if it is the one whose note the crash
        cut off, its delta comes out identical (documents.outside_edit_update
        is deterministic), so applying it again changes nothing."""
        try:
            merged = json.loads(record.meta.get(MERGED_META, "") or "null")
        except json.JSONDecodeError:
            merged = None
        if not merged:
            return False
        seqs = [int(seq) for seq in merged.get("seqs", [])]
        if not seqs or not all(record.persisted_seq < seq <= record.last_seq for seq in seqs):
            return False  # a note of an earlier life of the room
        state = Doc()
        state.apply_update(self.persisted_state)
        for update, seq in zip(record.updates, record.seqs):
            if seq in seqs:
                state.apply_update(update)
        self.persisted_state = state.get_update()
        self._merged_seqs = seqs
        if merged.get("etag") != etag:
            return False
        self.persisted_etag = etag
        log.info("outside edit already merged room=%s path=%s etag=%s seqs=%s", self.room.key, self.path, etag, seqs)
        return True

    async def _adopt_lock_id(self, record) -> None:
        """The room's lock id lives in the journal, so that after a crash the
        lock the dead process held is recognised as ours, not as a foreign one."""
        lock_id = record.meta.get(LOCK_ID_META) if record is not None else None
        if not lock_id:
            lock_id = uuid.uuid4().hex
            await self.room.journal.set_meta(self.room.key, LOCK_ID_META, lock_id)
        self.lock.adopt(lock_id, None)

    async def adopt_persisted(self) -> None:
        """Take what the journal says is saved in CS3 (another replica's
        saves, with --redis-url) as this room's own; called when this
        replica starts persisting the room, so that its next save and poll
        compare with the file as it really is: a save of the previous holder
        is not an outside edit to merge again."""
        record = await self.room.journal.load(self.room.key)
        if record is None or record.persisted_seq < self.persisted_seq or not record.persisted_etag:
            return
        if record.persisted_etag != self.persisted_etag:
            self.persisted_state = await self.documents_worker.run(
                worker.state_upto, record.updates, record.seqs, record.persisted_seq)
            self.persisted_seq, self.persisted_etag = record.persisted_seq, record.persisted_etag
            log.info("room adopts the last save room=%s path=%s etag=%s seq=%d",
                     self.room.key, self.path, self.persisted_etag, self.persisted_seq)
        self.unsaved = self.room.last_seq > self.persisted_seq
        self._authors.saved_up_to(self.persisted_seq)  # whose changes are all in that save are named no more
        if self.unsaved:
            self._dirty.set()

    # -- changes -----------------------------------------------------------------

    def note_authors(self, authors: dict[str, str], seq: int) -> None:
        """Authors (user id → display name) of changes up to journal sequence
        ``seq`` made on another replica (or on its behalf): named in the
        record of the save that first includes them, if this replica saves it."""
        for uid, name in authors.items():
            self._authors.note(uid, name, seq)

    def _changed(self, author: Participant | None) -> None:
        if author is None and self._merging:
            return  # an outside edit: that content is in CS3 already
        self.unsaved = True
        if author is not None:
            self._authors.note(author.identity.uid, author.identity.display_name, self.room.last_seq)
            self._writers[author.identity.uid] = author.session
        self._dirty.set()
        self.wake()  # the first edit after idleness: outside edits first

    async def save_loop(self) -> None:
        """Debounced saves, retried while they fail; runs until cancelled
        (the room's owner supervises it)."""
        while True:
            await self._dirty.wait()
            first = time.monotonic()
            while True:
                deadline = cadence.save_deadline(self.room.key, first, self.room.last_change, self.settings.save_quiet,
                                                 self.settings.save_ceiling, self.settings.save_jitter)
                delay = deadline - time.monotonic()
                if delay <= 0:
                    break
                await asyncio.sleep(delay)  # debounce timer
            self._dirty.clear()
            try:
                status = await self.save()
            except Exception:
                self._dirty.set()  # still unsaved: the owner's supervisor retries after a backoff
                raise
            # failed, or dropped by a fence check that could not reach Redis: again after a delay
            if status != "success" and self.unsaved and not self.read_only_reason and self.may_persist():
                await asyncio.sleep(self.settings.retry_delay)
                self._dirty.set()

    def wake(self) -> None:
        """The room is active again (an edit here or on another replica, a
        join): if it was idle, poll now rather than at the end of the idle
        interval, so that what changed outside while it was idle is merged
        before new typing piles on (and before a joiner works on stale
        content). A no-op while the room is active: it polls often then."""
        if self._waiting_idle:
            self._poll_now.set()

    def _lock_lost(self) -> None:
        """The lock refresh failed: the lock is gone or changed, and the slow
        interval of a locked idle room no longer holds: poll now."""
        self._poll_now.set()

    async def poll_loop(self) -> None:
        """Polls Stat for outside edits and locks; runs until cancelled.

        Every ``poll_interval`` while active, ``poll_idle_interval`` when idle,
        ``poll_locked_interval`` when idle while holding the room's lock
        (cadence.py); woken early by :meth:`wake` and a lost lock."""
        while True:
            now = time.monotonic()
            self._waiting_idle = cadence.is_idle(now, self.room.last_change, self.settings.poll_active_window)
            interval = cadence.poll_interval(
                self.room.key, now, self.room.last_change, self.settings.poll_interval,
                self.settings.poll_idle_interval, self.settings.poll_active_window,
                locked=self.lock.holds, locked_slow=self.settings.poll_locked_interval)
            cause = "woken"
            try:  # poll timer: fast while edited here or outside, slow when idle; or a catch-up poll
                await asyncio.wait_for(self._poll_now.wait(), interval)
            except TimeoutError:
                cause = "timer"
            finally:  # also when cancelled (the lease moved away): no wake is kept for later
                self._waiting_idle = False
            self._poll_now.clear()
            session = next(iter(self.sessions()), None)
            if session is None or self._save_lock.locked():
                continue
            # Stat under the save lock: an etag read before a save of ours
            # finished would look like an outside edit of our own content.
            async with self._save_lock:
                try:
                    metrics.polled(cause)
                    info = await session.files.stat(self.resource_id)
                    self.path = info.path or self.path
                    if info.etag != self.persisted_etag:
                        await self._merge_outside(session, info.etag)
                except CS3Error as exc:
                    if isinstance(exc, (NotFound, PermissionDenied, Unauthenticated)):
                        # this session lost the file (a revoked share): stop acting
                        # with it; with nobody left who has access, polling stops
                        self._forget_session(session)
                    throttle.log(log, logging.WARNING, (self.room.key, "poll"),
                                 "poll failed room=%s path=%s error=%s", self.room.key, self.path, exc)
                    continue
            await self.lock.learn_holder(info, session)
            await self._update_read_only(info)

    def _forget_session(self, session: Session) -> None:
        """A departed contributor's session that lost access is not used again."""
        for uid in [uid for uid, s in self._writers.items() if s is session]:
            del self._writers[uid]

    def sessions(self) -> list[Session]:
        """Sessions to act with: connected editors (contributors first), then
        departed contributors, then anyone connected."""
        sessions = [p.session for p in self.room.editors()]
        sessions += [s for s in self._writers.values() if s not in sessions]
        sessions += [p.session for p in self.room.participants if p.session not in sessions]
        return sessions

    async def _update_read_only(self, info) -> None:
        self.lock.observe(info)
        foreign = self.lock.foreign_holder(info)
        reason = f"locked by {foreign}" if foreign else None
        if reason != self.read_only_reason:
            self.room.read_only = reason
            self.room.notify({"type": READ_ONLY, "reason": reason})
            # also in the document's state, so that a tab that joins later (or
            # missed the message while connecting) reads it with the sync
            await self._quiet_state_edit(lambda document: self._set_state(document, READ_ONLY_STATE, reason or ""))
            log.info("room read-only state changed room=%s path=%s reason=%s", self.room.key, self.path, reason)
            if self.on_read_only is not None:
                self.on_read_only(reason)
            if reason is None and self.unsaved:
                self._dirty.set()

    # -- outside edits -----------------------------------------------------------

    async def _merge_outside(self, session: Session, etag: str, data: bytes | None = None) -> None:
        """Fold the file's new content (etag we did not write) into the room."""
        if data is None:
            data = await session.files.download(self.resource_id)
        try:
            delta = await self.documents_worker.run(
                worker.outside_delta, self.room.kind.doc_type, self.persisted_state, data, self.room.key,
                self.path or self.where,
            )
        except InvalidDocument as exc:
            # keep the room; our next save makes a new version over it (the
            # broken content stays as a version, nothing is lost)
            log.error("outside edit is not a valid document room=%s path=%s error=%s", self.room.key, self.path, exc)
            self.persisted_etag = etag
            self.unsaved = True
            self._dirty.set()
            return
        # what the room holds beyond CS3 stays unsaved, and only that: edits
        # arriving while the delta is journaled count, the delta does not
        self._merging = True
        try:
            seq = await self.room.apply(delta, author=None)
        finally:
            self._merging = False
        merged = Doc()
        merged.apply_update(self.persisted_state)
        merged.apply_update(delta)
        self.persisted_state = merged.get_update()
        self.persisted_etag = etag
        if not self.unsaved and seq:
            self.persisted_seq = seq
            await self.room.journal.mark_persisted(self.room.key, seq, etag)
            await self._forget_merged()
        elif seq:
            # the journal's saved state stays the last save of ours, which the
            # stored file no longer is: note what it is instead
            self._merged_seqs.append(seq)
            await self.room.journal.set_meta(
                self.room.key, MERGED_META, json.dumps({"etag": etag, "seqs": self._merged_seqs})
            )
        log.info("merged outside edit room=%s path=%s etag=%s seq=%s", self.room.key, self.path, etag, seq)

    async def _forget_merged(self) -> None:
        if self._merged_seqs:
            self._merged_seqs = []
            await self.room.journal.set_meta(self.room.key, MERGED_META, "")

    # -- saving ------------------------------------------------------------------

    async def save(self) -> str:
        """Save now if anything is unsaved; returns success, skipped (another
        replica persists the room) or failed."""
        if self.read_only_reason:
            return "failed"
        if not self.may_persist():
            return "skipped"
        async with self._save_lock:
            await self.room.settled()  # edits applied before the request count as unsaved
            if not self.unsaved:
                return "success"
            if self.before_save is not None:
                await self.before_save()
            started = time.perf_counter()
            failure = ("storage", "The notebook could not be saved to storage; retrying.")
            try:
                status = await self._save_once()
            except PersistenceMoved as exc:  # another replica persists the room now: not a failure
                log.warning("save dropped: persistence moved to another replica room=%s path=%s reason=%s",
                            self.room.key, self.path, exc)
                return "skipped"
            except CS3Error as exc:  # everything stays in the journal; the save loop retries
                log.warning("save failed room=%s path=%s error=%r", self.room.key, self.path, exc)
                status = "failed"
            except InvalidDocument as exc:  # the live state is kept (and journaled); retried too
                log.error("not saving invalid document room=%s path=%s error=%s", self.room.key, self.path, exc)
                status = "failed"
                failure = ("invalid", "The notebook is not valid nbformat and cannot be saved; retrying.")
            except Exception:  # a bug, or the document worker dying on this state: retried all the same
                log.exception("save failed unexpectedly room=%s path=%s", self.room.key, self.path)
                status = "failed"
                failure = ("error", "The notebook could not be saved (internal error); retrying.")
            if status == "failed":
                self._save_failed(*failure)
            elif status == "success":
                self.save_failures, self._failure_reason, self.save_problem = 0, None, None
            metrics.saved(status, started)
            self.last_save_status = status
            return status

    def _save_failed(self, reason: str, message: str) -> None:
        """Tell the participants once per run of failures (and again when the
        reason changes): RAW ``{"type": "cs3collab:save-failed", "reason",
        "message"}``; the next ``cs3collab:saved`` tells them it is over."""
        self.save_failures += 1
        self.save_problem = {"type": SAVE_FAILED, "reason": reason, "message": message}
        if self.save_failures == 1 or reason != self._failure_reason:
            self.notify(self.save_problem)
            log.warning("participants told the room cannot save room=%s path=%s reason=%s failures=%d",
                        self.room.key, self.path, reason, self.save_failures)
        self._failure_reason = reason

    async def _save_once(self) -> str:
        for _attempt in range(2):
            await self.room.settled()  # then read without yielding: seq names exactly this content
            seq, state = self.room.last_seq, self.room.encoded_state()  # a released room keeps it as is
            self.room.set_size(len(state))  # the size limit counts what the document is now
            # InvalidDocument (for anything serialization raises) goes to save()
            data = await self.documents_worker.run(
                worker.serialize_state, self.room.kind.doc_type, state, self.path or self.where
            )
            # what is about to be uploaded, so that a restart after a crash in
            # the middle of this save knows the new file content as ours
            intent = {"seq": seq, "sha256": hashlib.sha256(data).hexdigest()}
            await self.room.journal.set_meta(self.room.key, SAVING_META, json.dumps(intent))
            outcome = await self._upload(data)
            if outcome == "conflict":
                continue  # the outside change is merged now: serialize again
            if isinstance(outcome, str):
                return outcome
            session, etag = outcome
            await self._saved(session, etag, seq, state)
            return "success"
        return "failed"

    async def _upload(self, data: bytes) -> tuple[Session, str | None] | str:
        """Upload as the first editor who can; "conflict" when the file
        changed under us (and was merged), "failed" when nobody could save."""
        writers = [p.session for p in self.room.editors()]
        writers += [s for s in self._writers.values() if s not in writers]
        for session in writers:
            if self.before_upload is not None:
                await self.before_upload()  # the fence: raises PersistenceMoved
            try:
                etag = await session.files.upload(
                    self.resource_id, data, if_match=self.persisted_etag, lock_id=self.lock.upload_lock_id
                )
                return session, etag
            except (Unauthenticated, PermissionDenied) as exc:
                if not any(p.session is session for p in self.room.participants):
                    self._forget_session(session)  # departed, and no longer allowed
                throttle.log(log, logging.INFO, (self.room.key, "cannot-save", session.username),
                             "editor cannot save room=%s user=%s error=%s", self.room.key, session.username, exc)
            except FailedPrecondition as exc:
                log.info("save precondition failed room=%s path=%s error=%s", self.room.key, self.path, exc)
                info = await session.files.stat(self.resource_id)
                held = self.lock.held
                await self.lock.learn_holder(info, session)
                await self._update_read_only(info)
                if self.read_only_reason:
                    return "failed"
                if info.etag == self.persisted_etag:
                    # not an outside edit: the lock changed under us (ours taken
                    # or expired meanwhile); try again presenting what Stat shows
                    return "conflict" if held != self.lock.held else "failed"
                await self._merge_outside(session, info.etag)
                return "conflict"
            except (Unavailable, NotFound) as exc:
                throttle.log(log, logging.WARNING, (self.room.key, "save"),
                             "save failed room=%s path=%s error=%s", self.room.key, self.path, exc)
                return "failed"
        throttle.log(log, logging.WARNING, (self.room.key, "no-writer"),
                     "no editor can save room=%s path=%s", self.room.key, self.path)
        return "failed"

    async def _saved(self, session: Session, etag: str | None, seq: int, state: bytes) -> None:
        if not etag:
            etag = (await session.files.stat(self.resource_id)).etag
        authors = self._authors.saved_up_to(seq)
        # compressed on a thread (zlib lets go of the GIL): ~100 ms for a 1000-cell
        # notebook on a busy machine, which on the loop would stall every room
        persisted_z = await asyncio.to_thread(zlib.compress, state, 1)
        self.persisted_etag, self.persisted_seq, self._persisted_z = etag, seq, persisted_z
        self.versions_written += 1
        if self.room.last_seq == seq:
            self.unsaved = False
        await self.room.journal.mark_persisted(self.room.key, seq, etag)
        await self._forget_merged()  # the stored file is our save now
        try:
            await save_records.write(
                session, self.resource_id, etag, seq=seq, names=authors, lock_id=self.lock.upload_lock_id
            )
        except CS3Error as exc:  # the save itself succeeded; only its label is missing
            log.warning("could not record save metadata room=%s path=%s error=%s", self.room.key, self.path, exc)
        await self._mark_clean(etag)
        self.notify({"type": SAVED, "etag": etag})
        log.info("saved room=%s path=%s etag=%s seq=%d authors=%s", self.room.key, self.path, etag, seq, ",".join(authors))

    async def _mark_clean(self, etag: str) -> None:
        """Tell every tab the document is saved: ``state.dirty`` false and
        ``state.hash`` the new etag (the hash our contents API reports), so
        JupyterLab clears its unsaved mark and refreshes its file model, and
        a manual save finds no "File Changed" conflict."""

        def clean(document) -> None:
            document.dirty = False
            document.hash = etag

        await self._quiet_state_edit(clean, etag)

    @staticmethod
    def _set_state(document, key: str, value: str) -> None:
        document.ystate[key] = value

    async def _quiet_state_edit(self, change, etag: str | None = None) -> None:
        """A change of the document's ``state`` map only (not file content):
        journaled and sent to every tab, but not a reason to save."""
        seq = await self.room.edit(change, quiet=True)
        etag = etag or self.persisted_etag
        if seq and etag and not self.unsaved and self.persisted_seq < seq:
            # state is not file content: the file still holds everything up to here
            self.persisted_seq = seq
            await self.room.journal.mark_persisted(self.room.key, seq, etag)

    async def close(self) -> None:
        """Flush what is unsaved and release the lock (the room is being freed);
        a failed flush keeps the lock (the lock id stays in the journal)."""
        if self.unsaved:
            await self.save()
        if self.unsaved:
            return  # the room is kept (its owner retries): so is the lock on what is unsaved
        await self.lock.release()
        throttle.forget(self.room.key)
