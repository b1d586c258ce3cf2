"""The room shows only what is durable (cs3collab.service.room, with a fake journal).

A journal append that fails must not let the change be broadcast or
acknowledged, nor stay in the document (a fresh joiner would see what a
crash loses, and the clients would disagree with the server); the next
change goes through as usual. A real journal cannot be made to fail on
demand, hence this unit test of one module with a journal that refuses.
"""

from __future__ import annotations

import pytest
from jupyter_ydoc import YNotebook
from pycrdt import Doc

from cs3collab.service import documents
from cs3collab.service.guard import UpdateRefused
from cs3collab.service.identity import EDITOR
from cs3collab.service.room import JournalUnavailable, Participant, Room


class FlakyJournal:
    """Appends in memory; fails the appends it is told to."""

    def __init__(self) -> None:
        self.entries: list[bytes] = []
        self.fail_next = False

    async def append(self, room: str, update: bytes) -> int:
        if self.fail_next:
            self.fail_next = False
            raise OSError("disk full")
        self.entries.append(update)
        return len(self.entries)


class Socket:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, message: bytes) -> None:
        self.sent.append(message)

    def close(self, code: int, reason: str) -> None:
        pass


class Someone:
    label = "someone@test"
    uid = "someone"
    display_name = "Someone"
    idp = "test"


def participant() -> Participant:
    return Participant(Socket(), Someone(), EDITOR, session=None)


async def room_with(*sources: str) -> tuple[Room, FlakyJournal, Doc]:
    journal = FlakyJournal()
    room = Room("room-1", documents.NOTEBOOK, "file-1", journal)
    content = {"cells": [{"cell_type": "code", "source": s, "metadata": {}, "outputs": [],
                          "execution_count": None, "id": f"c{i}"} for i, s in enumerate(sources)],
               "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    initial = await documents.initial_update(documents.NOTEBOOK, content)
    room.restore([initial], 0)
    editor_doc = Doc()
    editor_doc.apply_update(initial)
    return room, journal, editor_doc


def typed(doc: Doc, text: str) -> bytes:
    notebook = YNotebook(doc)
    before = doc.get_state()
    source = notebook.ycells[0]["source"]
    source.insert(len(source), text)
    return doc.get_update(before)


async def test_failed_append_is_neither_shown_nor_kept():
    room, journal, editor_doc = await room_with("a")
    author, other = participant(), participant()
    room.participants.update({author, other})

    journal.fail_next = True
    with pytest.raises(JournalUnavailable):
        await room.apply(typed(editor_doc, "X"), author)
    assert other.connection.sent == []  # not broadcast
    assert [c["source"] for c in room.document.get()["cells"]] == ["a"]  # not kept
    assert journal.entries == []

    # the next change (from a client that never had X) goes through as usual
    fresh = Doc()
    fresh.apply_update(room.doc.get_update())
    await room.apply(typed(fresh, "b"), author)
    assert [c["source"] for c in room.document.get()["cells"]] == ["ab"]
    assert len(other.connection.sent) == 1 and len(journal.entries) == 1


async def test_refused_update_leaves_no_trace():
    room, journal, editor_doc = await room_with("a")
    author, other = participant(), participant()
    room.participants.update({author, other})
    notebook = YNotebook(editor_doc)
    before = editor_doc.get_state()
    with editor_doc.transaction():
        notebook.ycells[0]["source"].insert(1, "!")
        notebook.ycells.append(7)  # breaks the schema, in the same update as a keystroke
    with pytest.raises(UpdateRefused):
        await room.apply(editor_doc.get_update(before), author)
    assert other.connection.sent == [] and journal.entries == []
    assert room.candidate.document.get() == room.document.get()  # the candidate forgot it too
    assert [c["source"] for c in room.document.get()["cells"]] == ["a"]


async def test_gapped_update_is_refused_before_anyone_sees_it():
    """An update that builds on a change the server never got: it would
    become visible on the server without entering its state vector."""
    room, journal, editor_doc = await room_with("a")
    author, other = participant(), participant()
    room.participants.update({author, other})
    typed(editor_doc, "held back")  # never sent
    with pytest.raises(UpdateRefused, match="depends on changes the server does not have"):
        await room.apply(typed(editor_doc, "Z"), author)
    assert other.connection.sent == [] and journal.entries == []
    assert [c["source"] for c in room.document.get()["cells"]] == ["a"]
