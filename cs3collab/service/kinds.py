"""One file, one live document: a file is edited as one document type at a time.

Rooms are keyed by the file's resource id, so JupyterLab's "Open With >
Editor" on a live notebook (a ``text:file:`` room) would reach the notebook's
room with another schema: a ``YUnicode`` view of a ``YNotebook`` document
shows nothing, and what is typed into it is lost. We refuse instead: the
second type is closed with 1003 and the reason ``document_type_conflict``,
whose words (shown by JupyterLab's dialog and the labextension) say how to
join the others. Serving both types from one room would need a live
translation between a notebook's cells and its JSON text, whose edits do not
map one to one (a half-typed JSON is not a notebook); refusing loses nothing.

A room of the other type that nobody is in (waiting out its grace period) is
not a conflict: the registry flushes and frees it first, then opens the file
as asked.

The journal keeps a room's Y history after it closes, and that history has
one schema: a room opening as another type than its journal's (recorded in
the journal's ``type`` meta; inferred from the root names of journals older
than that) drops the journal when everything in it is saved and builds from
the file; a journal with unsaved edits of the other type refuses the open
until a room of its own type has saved them.
"""

from __future__ import annotations

import asyncio
import logging

from pycrdt import Doc

from cs3collab.service.documents import KINDS, DocumentKind
from cs3collab.service.journal import Journal

log = logging.getLogger("cs3collab.service.kinds")

TYPE_META = "type"
"""Journal meta key: the document type (``notebook``, ``file``) of the room's history."""

REASON = "type_conflict"
"""The ``reason`` of the 1003 close (the labextension's CLOSE_REASONS has its words)."""

_WORDS = {
    # within the 123 bytes of a close reason, with its JSON around it (see test_document_types)
    "notebook": "This is open as a notebook by others: open it as a notebook",
    "file": "This is open in the Editor by others: open it with the Editor",
}


class DocumentTypeConflict(Exception):
    """The file is live as another document type; joining it as ``wanted`` is refused.

    Args:
        live: the type the file is open as.
        wanted: the type asked for.
        room: the room key (resource id), for the log only.
    """

    def __init__(self, live: DocumentKind, wanted: DocumentKind, room: str) -> None:
        self.live = live
        self.wanted = wanted
        self.room = room
        super().__init__(_WORDS.get(live.doc_type, f"This is open as {live.doc_type} by others"))


def check_kind(live: DocumentKind, wanted: DocumentKind, room: str) -> None:
    """Raise :class:`DocumentTypeConflict` unless ``wanted`` is the live room's type."""
    if live != wanted:
        raise DocumentTypeConflict(live, wanted, room)


def replaceable(live_kind: DocumentKind, participants: int, wanted: DocumentKind) -> bool:
    """True for a room of another type that nobody is in: it may be freed for ``wanted``."""
    return live_kind != wanted and participants == 0


def _journaled_type(updates: list[bytes]) -> str:
    doc = Doc()
    for update in updates:
        doc.apply_update(update)
    return "notebook" if "cells" in doc.keys() else "file"


async def adopt_journal(journal: Journal, key: str, kind: DocumentKind) -> None:
    """Make the journal of room ``key`` one of ``kind`` before the room loads from it.

    Raises DocumentTypeConflict when it holds unsaved edits of another type.
    """
    record = await journal.load(key)
    recorded = journaled = record.meta.get(TYPE_META, "") if record is not None else ""
    if record is not None and record.updates:
        # journals older than the type meta: replay off the event loop (once; the meta is then written)
        journaled = journaled or await asyncio.to_thread(_journaled_type, record.updates)
        if journaled != kind.doc_type:
            if record.needs_flush:
                raise DocumentTypeConflict(KINDS.get(journaled, kind), kind, key)
            log.info("journal of another document type dropped room=%s was=%s now=%s seq=%d",
                     key, journaled, kind.doc_type, record.last_seq)
            await journal.forget(key)
            recorded = ""
    if recorded != kind.doc_type:
        await journal.set_meta(key, TYPE_META, kind.doc_type)
