"""The Y update that merges an outside edit (documents.outside_edit_update)
is deterministic: computed again from the same saved state, rebuilt from the
journal (whose bytes may differ), it is the same update, so a service that
merges it again after a crash changes nothing; from another state it is
another update under another client id."""

from __future__ import annotations

import anyio
import nbformat
from nbformat.v4 import new_code_cell, new_notebook
from pycrdt import Doc

from cs3collab.service import documents

KIND = documents.NOTEBOOK


def content(*sources: str) -> dict:
    nb = new_notebook(cells=[new_code_cell(s, id=f"cell-{n}") for n, s in enumerate(sources)])
    return documents.parse(KIND, nbformat.writes(nb).encode(), seed="room", where="test.ipynb")


def rebuilt(state: bytes) -> bytes:
    """The same state, re-encoded (as the journal's replay gives it back)."""
    doc = Doc()
    doc.apply_update(state)
    return doc.get_update()


def apply(*updates: bytes) -> list[str]:
    doc = Doc()
    for update in updates:
        doc.apply_update(update)
    return [cell["source"] for cell in KIND.wrap(doc).get()["cells"]]


def test_the_same_merge_computed_twice_applies_once():
    saved = anyio.run(documents.initial_update, KIND, content("one", "two"))
    outside = content("one", "two, changed outside")
    first = documents.outside_edit_update(KIND, saved, outside)
    again = documents.outside_edit_update(KIND, rebuilt(saved), outside)
    assert apply(saved, first) == ["one", "two, changed outside"]
    assert apply(saved, first, again) == ["one", "two, changed outside"]  # not twice


def test_a_merge_from_another_state_is_another_change():
    saved = anyio.run(documents.initial_update, KIND, content("one", "two"))
    outside = content("one", "two, changed outside")
    first = documents.outside_edit_update(KIND, saved, outside)
    later = Doc()
    later.apply_update(saved)
    later.apply_update(first)
    back = documents.outside_edit_update(KIND, later.get_update(), content("one", "two"))
    assert apply(saved, first, back) == ["one", "two"]
    assert back != first
