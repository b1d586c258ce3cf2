"""kinds.adopt_journal on a real SQLite journal: one history, one schema."""

from __future__ import annotations

import pytest
from jupyter_ydoc import YNotebook
from pycrdt import Doc

from cs3collab.service.documents import NOTEBOOK, TEXT_FILE
from cs3collab.service.journal_sqlite import SQLiteJournal
from cs3collab.service.kinds import TYPE_META, DocumentTypeConflict, adopt_journal


def notebook_update() -> bytes:
    doc = Doc()
    YNotebook(doc).set({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    return doc.get_update()


async def test_a_saved_journal_of_another_type_is_dropped_an_unsaved_one_refuses(tmp_path):
    async with SQLiteJournal(tmp_path / "journal.sqlite3") as journal:
        # a journal from before the type meta, all saved: opened as text, it is dropped
        seq = await journal.append("saved", notebook_update())
        await journal.mark_persisted("saved", seq, '"e1"')
        await adopt_journal(journal, "saved", TEXT_FILE)
        record = await journal.load("saved")
        assert record is not None and record.updates == [] and record.meta == {TYPE_META: "file"}

        # unsaved notebook edits: opening as text is refused, nothing dropped
        await journal.append("unsaved", notebook_update())
        with pytest.raises(DocumentTypeConflict) as refused:
            await adopt_journal(journal, "unsaved", TEXT_FILE)
        assert refused.value.live == NOTEBOOK and "as a notebook" in str(refused.value)
        assert len((await journal.load("unsaved")).updates) == 1

        # the same type keeps its history and records its type
        await adopt_journal(journal, "unsaved", NOTEBOOK)
        record = await journal.load("unsaved")
        assert len(record.updates) == 1 and record.meta[TYPE_META] == "notebook"
