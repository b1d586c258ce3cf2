"""The nesting check on update bytes (guard.check_nesting) reads every
update pycrdt writes, and refuses deep JSON values before pycrdt decodes
them (yrs decodes them recursively: 100,000 levels, a few hundred kB,
overflow its stack and kill the service)."""

from __future__ import annotations

import random

import pytest
from jupyter_ydoc import YNotebook
from pycrdt import Array, Doc, Map, Text

from cs3collab.service.guard import UpdateRefused, _check_nesting, check_nesting


def _nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth):
        value = {"k": value}
    return value


def test_reads_every_kind_of_content_pycrdt_writes():
    rng = random.Random(5)
    doc = Doc()
    notebook = YNotebook(doc)
    values = [None, True, False, 0, -7, 2**40, 1.5, -0.25, "text", "ü€", b"\x00\xff", [1, [2, {"a": [None]}]],
              {"x": {"y": {"z": 1.0}}}, [], {}]
    for step in range(200):
        before = doc.get_state()
        with doc.transaction():
            if step % 7 == 0:
                notebook.append_cell({"cell_type": rng.choice(["code", "markdown"]), "source": "s" * rng.randrange(9)})
            cell = notebook.ycells[rng.randrange(len(notebook.ycells))]
            cell["metadata"][f"k{rng.randrange(9)}"] = rng.choice(values)
            source = cell["source"]
            source.insert(rng.randint(0, len(source)), rng.choice(["a", "bc", "ü"]))
            if len(source) > 3 and rng.random() < 0.3:
                del source[0:2]
            if rng.random() < 0.2:
                cell["metadata"]["nested"] = Map({"inner": Array([1, Text("t")])})
        update = doc.get_update(before)
        _check_nesting(update, 32)  # reads through: no malformed part
    _check_nesting(doc.get_update(), 32)


def test_deep_values_are_refused_before_pycrdt_reads_them():
    doc = Doc()
    root = doc.get("m", type=Map)
    root["ok"] = _nested(31)  # 32 objects, one in another
    check_nesting(doc.get_update(), 32)
    before = doc.get_state()
    root["deep"] = _nested(32)
    with pytest.raises(UpdateRefused, match="nests deeper than 32"):
        check_nesting(doc.get_update(before), 32)


def test_far_too_deep_bytes_are_refused_without_recursion():
    """100,000 levels, built as bytes (pycrdt cannot even write them): the v1
    encoding of one map entry whose value is that many nested objects."""
    update = (bytes.fromhex("010105002801016d01780176") + bytes.fromhex("01016b76") * 100_000
              + bytes.fromhex("00") + bytes.fromhex("0000"))
    with pytest.raises(UpdateRefused):
        check_nesting(update, 32)


def test_bytes_that_are_no_update_are_left_to_pycrdt():
    check_nesting(b"\xff\xff\xff\xff\x0fgarbage", 32)  # no refusal: pycrdt's own error says why
