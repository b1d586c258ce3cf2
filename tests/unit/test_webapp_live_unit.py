"""The live view's two pure parts: what the page is shown, and how a cell's new source enters the room."""

from __future__ import annotations

from jupyter_ydoc import YNotebook
from pycrdt import Doc

from cs3collab.service.webapp_live import replace_source, view_of


def notebook(*sources: str) -> YNotebook:
    nb = YNotebook(Doc())
    nb.set({"cells": [{"id": f"c{i}", "cell_type": "code", "source": s, "metadata": {}, "outputs": [],
                       "execution_count": None} for i, s in enumerate(sources)],
            "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    return nb


def test_a_new_source_is_the_smallest_edit_so_others_typing_survives():
    ours, theirs = notebook("x = 1\ny = 2"), Doc()
    theirs.apply_update(ours.ydoc.get_update())
    other = YNotebook(theirs)
    before = ours.ydoc.get_state()
    # someone else types at the start of the cell while this page replaces its end
    other.ycells[0]["source"].insert(0, "# note\n")
    assert replace_source(ours, "c0", "x = 1\ny = 3")
    ours.ydoc.apply_update(theirs.get_update(before))
    assert str(ours.ycells[0]["source"]) == "# note\nx = 1\ny = 3"
    assert not replace_source(ours, "missing", "z")
    for new in ("", "x", "x = 1\ny = 3\nz = 4", "completely different"):
        assert replace_source(ours, "c0", new) and str(ours.ycells[0]["source"]) == new


def test_the_page_gets_sources_and_output_text_only():
    cells = view_of({"cells": [
        {"id": "a", "cell_type": "code", "source": ["print(1)\n", "x"], "outputs": [
            {"output_type": "stream", "text": ["1\n"]},
            {"output_type": "display_data", "data": {"text/html": "<b>no</b>", "text/plain": "plain"}},
            {"output_type": "error", "traceback": ["Trace", "Error"]},
            {"output_type": "display_data", "data": {"image/png": "AAAA"}}]},
        {"cell_type": "markdown", "source": "# T"}]})
    assert cells == [{"id": "a", "cell_type": "code", "source": "print(1)\nx", "outputs": ["1\n", "plain", "Trace\nError"]},
                     {"id": "", "cell_type": "markdown", "source": "# T", "outputs": []}]
