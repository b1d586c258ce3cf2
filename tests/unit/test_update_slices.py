"""A large update cut into slices gives the same document (cs3collab.service.slices).

What a user would notice if it did not: a large notebook that opens with
cells missing, doubled or garbled, or a room that refuses the first
keystroke after the open. Pure byte work, hence a unit test of one module
(the open over real processes is tests/service/test_large_open.py).
"""

from __future__ import annotations

import asyncio

from jupyter_ydoc import YNotebook
from pycrdt import Array, Doc, Map, Text

from cs3collab.service import documents, protocol, slices, worker
from cs3collab.service.identity import EDITOR
from cs3collab.service.room import Participant, Room
from tests.service.test_large_open import large_notebook
from tests.unit.test_room_durable import FlakyJournal, Someone, Socket, typed


def apply_all(parts: list[bytes]) -> Doc:
    doc = Doc()
    for part in parts:
        doc.apply_update(part)
    return doc


def test_a_large_notebook_in_slices_is_the_same_notebook():
    update = worker.build_initial("notebook", large_notebook(), "room-1", "large.ipynb")
    parts = slices.split_update(update, 128 * 1024)
    assert len(parts) > 20
    # a slice is about the size asked: never more than one struct (a cell's output) beyond it
    assert max(len(part) for part in parts) < 128 * 1024 + 64 * 1024
    whole = Doc()
    whole.apply_update(update)
    sliced = apply_all(parts)
    assert sliced.get_state() == whole.get_state()
    assert YNotebook(sliced).get() == YNotebook(whole).get()


def test_slices_of_several_clients_with_deletions():
    """A journal's compacted state: several clients, text beyond the BMP
    (Y clocks count UTF-16 units), deletions (they come with the last slice)."""
    first = Doc(client_id=5)
    first["text"] = Text("plain text " * 3000 + "héllo 😀 wörld " * 3000)
    first["list"] = Array([1, "two", {"three": [3, 3.5]}, None, True] * 2000)
    first["map"] = Map({"key": "value " * 1000})
    second = Doc(client_id=9)
    second.apply_update(first.get_update())
    text = second.get("text", type=Text)
    del text[200:9000]  # in the plain part: pycrdt would cut a surrogate pair
    text.insert(10, "ÄÖ😀𝔘" * 700)
    items = second.get("list", type=Array)
    del items[10:400]
    items.append("z" * 50_000)
    third = Doc(client_id=2)
    third.apply_update(second.get_update())
    third.get("text", type=Text).insert(0, "🙂" * 5000)
    update = third.get_update()

    parts = slices.split_update(update, 8 * 1024)
    assert len(parts) > 3  # its strings are few, long structs: a slice is never cut inside one
    sliced = apply_all(parts)
    assert sliced.get_state() == third.get_state()
    assert str(sliced.get("text", type=Text)) == str(third.get("text", type=Text))
    assert sliced.get("list", type=Array).to_py() == third.get("list", type=Array).to_py()
    assert sliced.get("map", type=Map).to_py() == third.get("map", type=Map).to_py()


def test_small_or_unreadable_updates_stay_whole():
    doc = Doc()
    doc["text"] = Text("short")
    small = doc.get_update()
    assert slices.split_update(small, 1024) == [small]
    garbage = b"\x05" + b"\xff" * 5000
    assert slices.split_update(garbage, 1024) == [garbage]


async def test_a_room_restored_in_slices_takes_edits():
    """The candidate, built from the same slices without its observers, still
    checks and accepts the next edit, and the live document shows it."""
    update = worker.build_initial("notebook", large_notebook(200), "room-1", "large.ipynb")
    room = Room("room-1", documents.NOTEBOOK, "file-1", FlakyJournal())
    await room.restore_in_slices(slices.split_update(update, 32 * 1024), 1, slice_bytes=32 * 1024)
    assert room.last_seq == 1
    assert room.candidate.doc.get_state() == room.doc.get_state()
    expected = Doc()
    expected.apply_update(update)
    assert YNotebook(room.doc).get() == YNotebook(expected).get()

    editor = Participant(Socket(), Someone(), EDITOR, session=None)
    seq = await room.apply(typed(expected, " # typed after the open"), editor)
    assert seq == 1  # the first append of this journal
    assert str(room.document.ycells[0]["source"]).endswith(" # typed after the open")


async def test_restoring_in_slices_lets_the_loop_run():
    update = worker.build_initial("notebook", large_notebook(200), "room-1", "large.ipynb")
    room = Room("room-1", documents.NOTEBOOK, "file-1", FlakyJournal())
    ticks = 0

    async def other_room() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    other = asyncio.ensure_future(other_room())
    await asyncio.sleep(0)
    parts = slices.split_update(update, 32 * 1024)
    await room.restore_in_slices(parts, 1, slice_bytes=32 * 1024)
    other.cancel()
    assert ticks >= len(parts) - 1


def synced(messages: list[bytes]) -> Doc:
    """What a fresh tab holds after applying a room's answer to its SyncStep1."""
    from pycrdt import read_message

    tab = Doc()
    for message in messages:  # a SyncStep2, then maybe updates: both carry one Y update after two bytes
        assert message[:2] in (b"\x00\x01", b"\x00\x02")
        tab.apply_update(read_message(message[2:]))
    return tab


async def test_a_fresh_tab_gets_the_opened_notebook_and_then_every_edit():
    """A fresh open hands the worker's update to the first tabs, without an
    encoding on the event loop; a tab that opens after an edit (or several)
    must see that edit, never the state of the open."""
    update = worker.build_initial("notebook", large_notebook(200), "room-1", "large.ipynb")
    room = Room("room-1", documents.NOTEBOOK, "file-1", FlakyJournal())
    step2 = protocol.step2_message(update)  # as worker.open_file frames it
    await room.restore_in_slices(slices.split_update(update, 32 * 1024), 1, slice_bytes=32 * 1024, whole_step2=step2)
    first = await room.sync_answer(b"\x00")
    assert first[0] is step2  # the worker's message, not one made here
    assert (await room.sync_answer(b"\x00"))[0] is first[0]  # one message for every fresh tab
    assert YNotebook(synced(first)).get() == YNotebook(room.doc).get()

    editor = Participant(Socket(), Someone(), EDITOR, session=None)
    expected = Doc()
    expected.apply_update(update)
    for n in range(3):
        await room.apply(typed(expected, f" # edit {n}"), editor)
        tab = synced(await room.sync_answer(b"\x00"))
        assert str(YNotebook(tab).ycells[0]["source"]).endswith(f" # edit {n}")
        assert tab.get_state() == room.doc.get_state()

    # a tab with some state gets only what it lacks
    behind = synced(first)
    missing = await room.sync_answer(behind.get_state())
    for message in missing:
        assert message is not first[0]
    behind_after = synced([*first, *missing])
    assert YNotebook(behind_after).get() == YNotebook(room.doc).get()
