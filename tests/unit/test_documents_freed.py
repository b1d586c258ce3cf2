"""Documents a room lets go of are freed (cs3collab.service.room and guard, with a fake journal).

pycrdt keeps a document observer inside yrs, where it refers to its
document: a document dropped while observed was never freed. The guard's
candidate is rebuilt after every refused update, and a closed room drops
both its documents; each such drop leaked a whole notebook. And the live
document keeps no undo history (jupyter_ydoc's undo manager held the
notebook a second time).
"""

from __future__ import annotations

import gc
import weakref

import pytest
from pycrdt import Doc, Map

from cs3collab.service.guard import UpdateRefused
from tests.unit.test_room_durable import participant, room_with, typed


def refused_update(editor: Doc) -> bytes:
    bad = Doc()
    bad.apply_update(editor.get_update())
    with bad.transaction():
        bad.get("meta", type=Map)["nbformat"] = 3
    return bad.get_update(editor.get_state())


async def test_candidates_dropped_after_refusals_are_freed():
    room, _journal, editor = await room_with("z" * 1000)
    dropped = []
    for _ in range(3):
        dropped.append(weakref.ref(room.candidate.doc))
        with pytest.raises(UpdateRefused):
            await room.apply(refused_update(editor), participant())
    gc.collect()
    assert all(ref() is None for ref in dropped), "a candidate dropped after a refusal is still alive"
    # and the room works as before
    assert await room.apply(typed(editor, "!"), participant()) == 1


async def test_a_disposed_room_frees_its_documents():
    room, _journal, editor = await room_with("z" * 1000)
    await room.apply(typed(editor, "!"), participant())
    refs = [weakref.ref(room.doc), weakref.ref(room.candidate.doc)]
    room.dispose()
    del room
    gc.collect()
    assert all(ref() is None for ref in refs), "a closed room's documents are still alive"


async def test_the_live_document_keeps_no_undo_history():
    room, _journal, editor = await room_with("a")
    await room.apply(typed(editor, "b"), participant())
    assert not room.document.undo_manager.can_undo()
