"""Versions and tags of a file: list, fetch, tag, and restore live.

Every save of a room is a CS3 version (see :mod:`cs3collab.service.storage`),
and next to it, as arbitrary metadata on the file, a record
``cs3collab.save.<etag without quotes>`` = ``{"seq", "time", "authors",
"names"}`` says who contributed. This module joins the two, by etag (a
version keeps the etag the file had while it was current), and adds:

* **tags**: arbitrary metadata ``cs3collab.tag.<name>`` = the etag of the
  tagged content. They live in CS3, so they survive restarts of the service
  and every participant sees them; tagging a name again moves it; a tag
  follows its content when that content stops being current (the version
  keeps the etag);
* **live restore**: when a room is open on the file, the version is applied
  to the room as one Y update (the change from the room's current state to
  the version's content, made by jupyter_ydoc's cell-level ``set``), so
  every participant sees it at once, without reconnecting; the room's own
  save then makes it a new CS3 version. When no room is open, CS3 restores
  it (RestoreFileVersion); the next room to open merges it as an outside
  edit. Either way the new content's save record names the restorer.

Who may do what follows the caller's CS3 permissions: anyone who can read
the file lists and fetches versions; only editors tag, untag and restore.
Errors are domain errors (below); :mod:`cs3collab.service.errors` turns
them into HTTP answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from cs3collab.cs3 import CS3Error, PermissionDenied, Session
from cs3collab.cs3.refs import format_resource_id
from cs3collab.service import documents, ids, save_records, worker
from cs3collab.service.documents import NOTEBOOK, TEXT_FILE, DocumentKind
from cs3collab.service.identity import EDITOR, Access, Identity, resolve_access
from cs3collab.service.room import Participant
from cs3collab.service.save_records import SAVE_KEY_PREFIX

if TYPE_CHECKING:
    from cs3collab.service.registry import LiveRoom, RoomRegistry

log = logging.getLogger("cs3collab.service.versions")

TAG_KEY_PREFIX = "cs3collab.tag."
"""Arbitrary metadata key prefix: ``cs3collab.tag.<name>`` = etag of the tagged content."""

CURRENT = "current"
"""The key of the file's current content in listings, fetches and tags."""

MAX_TAG_LENGTH = 64
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
VERSIONS_CHANGED = {"type": "cs3collab:versions-changed"}
RESTORED = "cs3collab:restored"
"""RAW ``{"type": "cs3collab:restored", "by": <display name>, "from": <version time, s>}``
to a live room's participants when someone restores a version."""
"""RAW JSON message sent to a room's participants when its versions or tags changed."""


# -- errors (mapped to HTTP statuses in cs3collab.service.errors) ---------------


class VersionsError(Exception):
    """A versions request refused by the service itself; the message is for the user."""


class InvalidVersionRequest(VersionsError):
    """Bad input: a tag name, pagination, a restore of the current content."""


class UnknownVersion(VersionsError):
    """No version of the file has that key."""


class UnknownTag(VersionsError):
    """The file has no tag of that name."""


class HistoryNotShared(VersionsError):
    """The site's gateway lets this caller read the file but not list its
    versions: a participant of another site whose OCM token scope has no
    ListFileVersions (Reva's stock ``ocmshare`` scope; docs/federation.md)."""


class EditorRequired(VersionsError):
    """Tagging, untagging and restoring need edit permission on the file."""


class RoomReadOnly(VersionsError):
    """The file's room is read-only (another app holds the lock): no restore."""


# -- values ---------------------------------------------------------------------


def plain_etag(etag: str) -> str:
    """An etag without quotes (and weak prefix): how etags are compared and keyed."""
    etag = etag.strip()
    if etag.startswith("W/"):
        etag = etag[2:]
    return etag.strip('"')


def validate_tag_name(name: Any) -> str:
    """A tag name: a string of 1 to 64 characters, not blank, no control characters."""
    if not isinstance(name, str):
        raise InvalidVersionRequest("a tag name must be a string")
    if not name.strip():
        raise InvalidVersionRequest("a tag name must not be empty")
    if len(name) > MAX_TAG_LENGTH:
        raise InvalidVersionRequest(f"a tag name has at most {MAX_TAG_LENGTH} characters (got {len(name)})")
    for char in name:
        if unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp"):
            raise InvalidVersionRequest(f"a tag name must not contain control characters (found U+{ord(char):04X})")
    return name


def page_bounds(limit: str | None, offset: str | None) -> tuple[int, int]:
    """Parse ``?limit=&offset=``: limit 1..500 (default 50), offset >= 0 (default 0)."""
    try:
        size = DEFAULT_PAGE_SIZE if limit in (None, "") else int(limit)
        start = 0 if offset in (None, "") else int(offset)
    except ValueError:
        raise InvalidVersionRequest("limit and offset must be whole numbers") from None
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise InvalidVersionRequest(f"limit must be between 1 and {MAX_PAGE_SIZE}")
    if start < 0:
        raise InvalidVersionRequest("offset must not be negative")
    return size, start


def lock_json(info) -> dict[str, Any] | None:
    """The file's CS3 lock as the listing reports it (``{"app", "expires"}``, ISO 8601 UTC),
    so that a participant from another site sees who holds it (File info)."""
    lock = info.lock if info.HasField("lock") else None
    if lock is None or not (lock.lock_id or lock.app_name):
        return None
    expires = None
    if lock.HasField("expiration") and lock.expiration.seconds:
        expires = datetime.fromtimestamp(lock.expiration.seconds, tz=timezone.utc).isoformat()
    return {"app": lock.app_name, "expires": expires}


async def lock_with_holder(session: Session, info, where: str, people: Sequence[Identity] = ()) -> dict[str, Any] | None:
    """:func:`lock_json` plus ``holder``: the person the CS3 lock names
    (``{"displayName", "username", "idp"}``): one of ``people`` (the room's
    participants, who include holders from other sites), else asked of the
    gateway as the caller (GetUser needs no more than an OCM share's scope);
    None when the lock names nobody or nobody can say who (never a raw id)."""
    found = lock_json(info)
    if found is None:
        return None
    found["holder"] = None
    user_id = info.lock.user if info.lock.HasField("user") else None
    if user_id is None or not user_id.opaque_id:
        return found
    for person in people:
        if (person.idp, person.opaque_id) == (user_id.idp, user_id.opaque_id):
            found["holder"] = {"displayName": person.display_name, "username": person.username, "idp": person.idp}
            return found
    try:
        user = await session.users.get(user_id)
    except CS3Error as exc:
        log.info("lock holder unknown path=%s app=%s user=%s error=%s", where, info.lock.app_name, session.username, exc)
        return found
    if user_id.idp and user.id.idp and user.id.idp != user_id.idp:  # a namesake at this site, not the holder
        log.info("lock holder unknown path=%s app=%s user=%s holder_idp=%s", where, info.lock.app_name,
                 session.username, user_id.idp)
        return found
    username = user.username or ""
    idp = user.id.idp or user_id.idp
    if username.endswith("@" + idp):
        username = username[: -len(idp) - 1]
    found["holder"] = {"displayName": user.display_name or username, "username": username, "idp": idp}
    return found


def _institution(uid: str) -> str:
    """The institution (idp) of an author's ``opaque_id@idp`` (Identity.uid); "" when it names none."""
    return uid.rsplit("@", 1)[1] if "@" in uid else ""


@dataclass(frozen=True)
class SaveRecord:
    """What ``cs3collab.save.<etag>`` says about one save (absent: not ours)."""

    time: int | None
    authors: list[dict[str, str]]
    restored_from: str | None

    @classmethod
    def parse(cls, text: str | None) -> SaveRecord:
        try:
            raw = json.loads(text) if text else {}
        except json.JSONDecodeError:
            raw = {}
        if not isinstance(raw, dict):
            raw = {}
        names = raw.get("names") if isinstance(raw.get("names"), dict) else {}
        uids = raw.get("authors") if isinstance(raw.get("authors"), list) else list(names)
        authors = [{"uid": str(uid), "name": str(names.get(uid, uid)), "idp": _institution(str(uid))} for uid in uids]
        stamp = raw.get("time")
        restored = raw.get("restored_from")
        return cls(
            stamp if isinstance(stamp, int) else None, authors, restored if isinstance(restored, str) else None
        )


@dataclass(frozen=True)
class Version:
    """One entry of a listing: the current content or a CS3 version."""

    key: str
    etag: str
    time: int
    size: int
    authors: list[dict[str, str]]
    tags: list[str]
    current: bool
    restored_from: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "etag": self.etag,
            "time": self.time,
            "size": self.size,
            "authors": self.authors,
            "tags": self.tags,
            "current": self.current,
            "restored_from": self.restored_from,
        }


@dataclass(frozen=True)
class RestoreResult:
    """What a restore did.

    ``live``: applied in the open room (else restored by CS3); ``saved``:
    the restored content is in CS3 as the current content with ``etag``
    (False only when a live restore could not be saved yet: the room keeps
    it and keeps trying); ``changed``: False when the version already was
    the room's content.
    """

    key: str
    etag: str | None
    live: bool
    saved: bool
    changed: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "restored": self.key, "etag": self.etag, "live": self.live, "saved": self.saved, "changed": self.changed,
        }


class _NoConnection:
    """The transport of a participant acting over REST: there is nothing to send to."""

    def send(self, message: bytes) -> None:
        pass

    def close(self, code: int, reason: str) -> None:
        pass


@dataclass
class _File:
    """A file as one caller sees it, and its room if one is open."""

    resource_id: Any
    access: Access
    room_key: str
    live: LiveRoom | None

    @property
    def where(self) -> str:
        return self.access.info.path or self.room_key

    @property
    def metadata(self) -> dict[str, str]:
        return dict(self.access.info.arbitrary_metadata.metadata)

    @property
    def lock_id(self) -> str:
        """The lock id metadata writes must present: the room's, when the file
        carries it (by our Stat, or as the room's lock keeper last saw), else
        none (CS3 refuses a lock id on a file that is not locked with it)."""
        if self.live is None:
            return ""
        if self.live.lock_id and self.access.info.lock.lock_id == self.live.lock_id:
            return self.live.lock_id
        return self.live.held_lock_id

    def tags(self) -> dict[str, str]:
        """Tag name -> etag of the tagged content (as CS3 gave it; compare with :func:`plain_etag`)."""
        return {
            key[len(TAG_KEY_PREFIX):]: value
            for key, value in self.metadata.items()
            if key.startswith(TAG_KEY_PREFIX)
        }

    def notify(self) -> None:
        if self.live is not None:
            self.live.notify(VERSIONS_CHANGED)


class VersionService:
    """Versions and tags of files, for the REST handlers.

    Args:
        registry: the service's rooms, to restore live and to notify
            participants when versions or tags change.
    """

    def __init__(self, registry: RoomRegistry) -> None:
        self.registry = registry

    # -- reading -------------------------------------------------------------------

    async def list(self, session: Session, file_id: str, limit: int, offset: int) -> dict[str, Any]:
        """The file's versions, newest first, the current content first.

        Returns ``{"versions": [...], "tags": {name: {"etag", "key"}},
        "total", "offset", "limit"}``; ``key`` of a tag is None when its
        content is no longer among the versions.
        """
        file = await self._file(session, file_id)
        versions = await self._versions(session, file)
        tags = {name: {"etag": etag, "key": None} for name, etag in sorted(file.tags().items())}
        by_etag: dict[str, list[str]] = {}
        for name, etag in file.tags().items():
            by_etag.setdefault(plain_etag(etag), []).append(name)
        for version in versions:
            for name in by_etag.get(plain_etag(version.etag), ()):
                if tags[name]["key"] is None:
                    tags[name]["key"] = version.key
        page = versions[offset:offset + limit]
        return {
            "versions": [
                replace(v, tags=sorted(by_etag.get(plain_etag(v.etag), []))).to_json() for v in page
            ],
            "tags": tags,
            "total": len(versions),
            "offset": offset,
            "limit": limit,
            "lock": await lock_with_holder(session, file.access.info, file.where,
                                           file.live.people() if file.live is not None else []),
        }

    async def _versions(self, session: Session, file: _File) -> list[Version]:
        metadata = file.metadata
        info = file.access.info

        def record(etag: str) -> SaveRecord:
            return SaveRecord.parse(metadata.get(SAVE_KEY_PREFIX + plain_etag(etag)))

        current = record(info.etag)
        entries = [
            Version(
                CURRENT, info.etag, current.time or info.mtime.seconds, info.size, current.authors, [], True,
                current.restored_from,
            )
        ]
        try:
            listed = await session.versions.list(file.resource_id)
        except PermissionDenied:
            # the file is readable (Stat passed), its history is not: the scope of an OCM token
            log.info("versions not listable room=%s user=%s", format_resource_id(file.resource_id), session.user.username)
            raise HistoryNotShared(
                "The version history of this notebook is not available to people of other institutions "
                "at the site that stores it (ask its owner for a copy of an older version)."
            ) from None
        for item in listed:
            saved = record(item.etag)
            entries.append(
                Version(item.key, item.etag, saved.time or int(item.mtime), item.size, saved.authors, [], False,
                        saved.restored_from)
            )
        return entries

    async def fetch(self, session: Session, file_id: str, key: str, doc_type: str = "") -> tuple[DocumentKind, Any]:
        """One version's content: an nbformat dict for notebooks, text for files.

        The document type is the open room's, else ``doc_type`` ("notebook"
        or "file"), else guessed from the file name (``.ipynb``: notebook).
        Raises UnknownVersion, and InvalidDocument (stored content that is
        not a valid notebook).
        """
        file = await self._file(session, file_id)
        kind = self._kind(file, doc_type)
        version = await self._version(session, file, key)
        data = await self._download(session, file, version.key)
        content = await self.registry.documents_worker.run(
            worker.parse_content, kind.doc_type, data, file.room_key, self._describe(file, version.key)
        )
        return kind, content

    # -- tags ----------------------------------------------------------------------

    async def tag(self, session: Session, file_id: str, name: Any, key: Any) -> dict[str, Any]:
        """Tag a version (or ``current``) with ``name``; an existing tag of that name moves.

        Tagging ``current`` while a room is open first saves what the room
        holds, so the tag names what the participants see.
        """
        name = validate_tag_name(name)
        if not isinstance(key, str) or not key:
            raise InvalidVersionRequest('"key" must be a version key or "current"')
        file = await self._file(session, file_id, edit=True)
        if key == CURRENT and file.live is not None and file.live.unsaved:
            await file.live.save()
            file = await self._file(session, file_id, edit=True)
        version = await self._version(session, file, key)
        await session.metadata.set(file.resource_id, {TAG_KEY_PREFIX + name: version.etag}, lock_id=file.lock_id)
        log.info("tagged file=%s tag=%r key=%s etag=%s user=%s", file.where, name, version.key, version.etag,
                 session.username)
        file.notify()
        return {"name": name, "key": version.key, "etag": version.etag}

    async def untag(self, session: Session, file_id: str, name: str) -> None:
        """Remove a tag; UnknownTag if the file has none of that name."""
        file = await self._file(session, file_id, edit=True)
        if name not in file.tags():
            raise UnknownTag(f"{file.where} has no tag {name!r}")
        await session.metadata.unset(file.resource_id, [TAG_KEY_PREFIX + name], lock_id=file.lock_id)
        log.info("untagged file=%s tag=%r user=%s", file.where, name, session.username)
        file.notify()

    # -- restore -------------------------------------------------------------------

    async def restore(self, session: Session, file_id: str, key: str) -> RestoreResult:
        """Make a version the file's content again, live when a room is open.

        Live: the change from the room's state to the version is applied as
        one update by the restorer (an author of the next save), broadcast
        to every participant, and saved at once; the answer carries the new
        etag. No room: CS3's RestoreFileVersion, then the new content's save
        record names the restorer and tags of the restored version follow it.
        """
        if key == CURRENT:
            raise InvalidVersionRequest("the current content cannot be restored: name a version key")
        file = await self._file(session, file_id, edit=True)
        version = await self._version(session, file, key)
        identity = Identity.from_session(session)
        if file.live is not None:
            result = await self._restore_live(session, identity, file, version)
        else:
            result = await self._restore_in_cs3(session, identity, file, version)
        file.notify()
        return result

    async def _restore_live(self, session: Session, identity: Identity, file: _File, version: Version) -> RestoreResult:
        live = file.live
        assert live is not None
        data = await self._download(session, file, version.key)
        content = await self.registry.documents_worker.run(
            worker.parse_content, live.kind.doc_type, data, live.key, self._describe(file, version.key)
        )
        if live.read_only:
            raise RoomReadOnly(f"{file.where} is read-only ({live.read_only}): it cannot be restored now")
        restorer = Participant(_NoConnection(), identity, EDITOR, session)
        seq, status = await live.restore(content, restorer)
        log.info("restored live room=%s key=%s user=%s seq=%d status=%s", live.key, version.key, identity.label, seq, status)
        # everyone in the room learns who went back to which version (a notice in each tab)
        live.notify({"type": RESTORED, "by": identity.display_name, "from": version.time})
        saved = status == "success" and (seq == 0 or live.persisted_seq >= seq)
        if not saved:
            log.warning("restored live but not saved yet room=%s key=%s status=%s", live.key, version.key, status)
            return RestoreResult(version.key, None, live=True, saved=False, changed=bool(seq))
        etag = live.persisted_etag
        if seq:
            await self._note_restore(session, file, etag, identity, version.key, merge=True)
        return RestoreResult(version.key, etag, live=True, saved=True, changed=bool(seq))

    async def _restore_in_cs3(
        self, session: Session, identity: Identity, file: _File, version: Version
    ) -> RestoreResult:
        try:
            await session.versions.restore(file.resource_id, version.key)
        except PermissionDenied:
            # an OCM guest's token is scoped to the shared file's reads and
            # writes, not RestoreFileVersion: an editor gets the same result
            # by writing the version's content as a new version
            data = await self._download(session, file, version.key)
            await session.files.upload(file.resource_id, data, if_match=file.access.info.etag or None,
                                       lock_id=file.lock_id or "")
        info = await session.files.stat(file.resource_id)
        log.info("restored in CS3 file=%s key=%s etag=%s user=%s", file.where, version.key, info.etag, identity.label)
        moved = {
            TAG_KEY_PREFIX + name: info.etag
            for name, etag in file.tags().items()
            if plain_etag(etag) == plain_etag(version.etag)
        }
        await self._note_restore(session, file, info.etag, identity, version.key, merge=False, extra=moved)
        return RestoreResult(version.key, info.etag, live=False, saved=True, changed=True)

    async def _note_restore(
        self, session: Session, file: _File, etag: str, identity: Identity, key: str, *, merge: bool,
        extra: dict[str, str] | None = None,
    ) -> None:
        """Write (or, after a room's save, complete) the save record of the restored content."""
        try:
            await save_records.write(
                session, file.resource_id, etag, seq=0, names={identity.uid: identity.display_name},
                lock_id=file.lock_id, restored_from=key, merge=merge, extra=extra,
            )
        except CS3Error as exc:  # the restore itself is done; only its label is missing
            log.warning("could not record restore file=%s etag=%s error=%s", file.where, etag, exc)

    # -- helpers -------------------------------------------------------------------

    async def _file(self, session: Session, file_id: str, *, edit: bool = False) -> _File:
        try:
            resource_id = ids.resource_id_for(file_id)
        except ValueError as exc:
            raise InvalidVersionRequest(str(exc)) from None
        access = await resolve_access(session, resource_id, metadata_keys=("*",))
        if edit and not access.can_edit:
            raise EditorRequired(
                f"{session.username} may only view {access.info.path or file_id}:"
                " tagging and restoring need edit permission"
            )
        room_key = format_resource_id(access.info.id)
        return _File(access.info.id, access, room_key, await self._live(room_key))

    async def _live(self, room_key: str) -> LiveRoom | None:
        """The file's open room, once it has loaded (None if none is open)."""
        live = self.registry.rooms.get(room_key)
        if live is None:
            return None
        try:
            await asyncio.shield(live.ready)
        except Exception:  # noqa: BLE001 - the room did not open: act on CS3 alone
            return None
        return self.registry.rooms.get(room_key)

    async def _version(self, session: Session, file: _File, key: str) -> Version:
        versions = await self._versions(session, file)
        for version in versions:
            if version.key == key:
                return version
        raise UnknownVersion(f"{file.where} has no version {key!r}")

    async def _download(self, session: Session, file: _File, key: str) -> bytes:
        if key == CURRENT:
            return await session.files.download(file.resource_id)
        return await session.versions.download(file.resource_id, key)

    def _kind(self, file: _File, doc_type: str) -> DocumentKind:
        if file.live is not None:
            return file.live.kind
        if doc_type:
            kind = documents.KINDS.get(doc_type)
            if kind is None:
                raise InvalidVersionRequest(f"unknown document type {doc_type!r} (notebook or file)")
            return kind
        name = file.access.info.name or file.access.info.path
        return NOTEBOOK if name.endswith(".ipynb") else TEXT_FILE

    @staticmethod
    def _describe(file: _File, key: str) -> str:
        return f"{file.where} ({'current content' if key == CURRENT else 'version ' + key})"
