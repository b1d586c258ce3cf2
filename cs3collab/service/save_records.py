"""Save records: who wrote each CS3 version of a room's file, in its arbitrary metadata.

Every save of a room is a CS3 version; the file's arbitrary metadata key
``cs3collab.save.<etag>`` describes the save that produced that etag, as
compact JSON ``{"seq", "time", "authors", "names"[, "restored_from"]}``:
the journal sequence it holds (0 for a restore outside a room), when, the
authors' CS3 user ids and their display names, and the version key it was
restored from. This module is the one writer of that format (the room's
saves and the versions service's restores); :class:`versions.SaveRecord`
reads it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from cs3collab.cs3 import Session

SAVE_KEY_PREFIX = "cs3collab.save."
"""Arbitrary metadata key prefix: ``cs3collab.save.<etag>`` describes the save that produced that etag."""


def record_key(etag: str) -> str:
    """The metadata key of the save record of ``etag`` (quotes stripped)."""
    return SAVE_KEY_PREFIX + etag.strip('"')


async def write(
    session: Session, resource_id, etag: str, *, seq: int, names: dict[str, str], lock_id: str,
    restored_from: str | None = None, merge: bool = False, extra: dict[str, str] | None = None,
) -> None:
    """Write the record of the save that produced ``etag``.

    Args:
        seq: the journal sequence the content holds (0: not from a room).
        names: user id → display name of its authors.
        lock_id: the lock id CS3 wants for metadata writes ("" for none).
        restored_from: the version key the content was restored from.
        merge: complete the record already there (a room's save of a restore)
            instead of replacing it: authors are added, the rest kept.
        extra: more metadata to set in the same call (tags moved along).

    Raises the CS3 error of the metadata call (the save itself is done then:
    callers log it and carry on).
    """
    key = record_key(etag)
    record: dict[str, Any] = {"seq": seq, "time": int(time.time()), "authors": [], "names": {}}
    if merge:
        existing = await session.metadata.get(resource_id, [key])
        try:
            loaded = json.loads(existing.get(key) or "{}")
        except json.JSONDecodeError:
            loaded = {}
        if isinstance(loaded, dict):
            record.update(loaded)
    all_names = {**dict(record.get("names") or {}), **names}
    record["names"] = all_names
    record["authors"] = sorted(set(record.get("authors") or []) | set(names))
    if restored_from is not None:
        record["restored_from"] = restored_from
    await session.metadata.set(
        resource_id, {key: json.dumps(record, separators=(",", ":")), **(extra or {})}, lock_id=lock_id
    )
