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

    async def append(self, room: str, update: bytes, author: str = "") -> int:
        if self.fail_next:
            self.fail_next = False
            raise OSError("disk full")
        self.entries.append(update)
        return len(self.entries)

    async def settled(self) -> None:
        """Appends complete at once: nothing is ever left in flight."""


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


async def test_another_replicas_update_is_shown_once_and_not_journaled_again():
    """An entry another replica journaled: shown here and broadcast once; a
    re-delivery (a catch-up after a gap) changes nothing and sends nothing;
    the room's sequence follows the stream's."""
    room, journal, editor_doc = await room_with("a")
    watcher = participant()
    room.participants.add(watcher)
    remote = typed(editor_doc, "R")
    assert room.receive_remote([remote], 7) == 1
    assert [c["source"] for c in room.document.get()["cells"]] == ["aR"]
    assert len(watcher.connection.sent) == 1 and journal.entries == [] and room.last_seq == 7
    assert room.receive_remote([remote], 7) == 0  # already here: neither applied nor sent again
    assert len(watcher.connection.sent) == 1
    assert [c["source"] for c in room.document.get()["cells"]] == ["aR"]
    # a local edit after it goes the usual way, over the remote one
    await room.apply(typed(editor_doc, "L"), watcher)
    assert [c["source"] for c in room.document.get()["cells"]] == ["aRL"] and len(journal.entries) == 1
