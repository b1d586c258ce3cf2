"""The schema guard: whatever an editor sends, the live document stays a valid notebook.

A room keeps two Y documents of the same content. The *live* document is
what participants have seen: it only ever holds durable changes. The
*candidate* (this module's :class:`Candidate`) runs ahead of it: an
editor's update is applied to the candidate first, and only when its effect
passes the checks below and has been appended to the journal is that effect
applied to the live document and broadcast. An update that fails a check is
refused before anyone sees it: the candidate is rebuilt from the live
document (plus the changes still in flight) and the sender is told why.

Checks, on what the update touched only (a keystroke checks one string's
length, not the notebook):

* **completeness**: every struct of the update integrates. An update that
  depends on changes the server does not have (a gap in a client's clocks,
  a missing origin) would stay pending, or, with a forged clock, become
  visible on the server without entering its state vector: the server and
  the clients would then disagree for good. An honest client sends one in
  one case only: it reconnects holding edits the server never got (typed
  offline, or sent to a replica that died) and types again before its sync
  reply (step 2, which carries those edits) is out; the stock y-websocket
  provider sends updates as soon as the socket is open. The room holds such
  an update until that reply (bounded: Room.HOLD_*), then tries it again;
  anything still incomplete then is refused.
* **notebook schema** (notebooks only): ``meta.nbformat`` is 4 and
  ``meta.nbformat_minor`` an integer; ``meta.metadata`` validates;
  every element of ``cells`` is a map whose content validates as an nbformat
  4.5 cell of its ``cell_type``.
* **the service's state**: keys ``cs3collab:*`` of the document's
  ``state`` map (the read-only reason) are written by the service only;
* **limits** (:class:`DocumentLimits`): nesting depth, string length,
  array and map sizes, cells per notebook, total document size.

Deep values are walked with an explicit depth bound, never with Python
recursion over untrusted depth (``to_py`` of a 1,000-deep map raises
RecursionError).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import nbformat
from pycrdt import Array, Doc, Map, Text, UndoManager, get_update

from cs3collab.service.documents import NOTEBOOK, DocumentKind, complete_cells
from cs3collab.service.protocol import read_var_uint

__all__ = ["Candidate", "DocumentLimits", "UpdateIncomplete", "UpdateRefused", "check_nesting"]

CELL_TYPES = ("code", "markdown", "raw")

SERVER_STATE_PREFIX = "cs3collab:"
"""Keys of the document's ``state`` map that only the service writes (the
read-only reason): an editor writing one could show everyone a false lock."""


class UpdateRefused(ValueError):
    """An editor's update that would break the document; nobody saw it."""


class UpdateIncomplete(UpdateRefused):
    """An editor's update that builds on changes the server does not have
    (yet): refused like any other, unless the room holds it until the
    sender's sync reply (Room.receive)."""


@dataclass(frozen=True)
class DocumentLimits:
    """Bounds on what an editor's update may make of a document (the service's traits fill them).

    Attributes:
        max_depth: deepest nesting of maps and lists in a cell or the notebook metadata.
        max_string: longest string (a cell source, a metadata value), in characters.
        max_items: most elements of one list or keys of one map.
        max_cells: most cells in a notebook.
        max_document_bytes: largest encoded document, in bytes (approximate:
            its size at the last save or open, plus the updates accepted since).
    """

    max_depth: int = 32
    max_string: int = 8 * 1024 * 1024
    max_items: int = 100_000
    max_cells: int = 10_000
    max_document_bytes: int = 256 * 1024 * 1024


class _Malformed(Exception):
    """The bytes do not read as a v1 update (pycrdt will say why)."""


def _uint(data: bytes, pos: int) -> tuple[int, int]:
    try:
        return read_var_uint(data, pos)
    except ValueError:
        raise _Malformed from None


def _skip_bytes(data: bytes, pos: int) -> int:
    length, pos = _uint(data, pos)
    if pos + length > len(data):
        raise _Malformed
    return pos + length


def _skip_varint(data: bytes, pos: int) -> int:
    while True:
        if pos >= len(data):
            raise _Malformed
        byte = data[pos]
        pos += 1
        if byte < 0x80:
            return pos


_ANY_FIXED = {127: 0, 126: 0, 121: 0, 120: 0, 124: 4, 123: 8, 122: 8}


def _skip_any(data: bytes, pos: int, max_depth: int) -> int:
    """Skip one lib0 ``Any`` value, iteratively; UpdateRefused when its
    objects and arrays nest deeper than ``max_depth``."""
    levels = [[1, False]]  # [values left, is an object (each value has a key first)]
    while levels:
        level = levels[-1]
        if not level[0]:
            levels.pop()
            continue
        level[0] -= 1
        if level[1]:
            pos = _skip_bytes(data, pos)  # the key
        if pos >= len(data):
            raise _Malformed
        tag = data[pos]
        pos += 1
        if tag in _ANY_FIXED:
            pos += _ANY_FIXED[tag]
        elif tag == 125:
            pos = _skip_varint(data, pos)
        elif tag in (119, 116):
            pos = _skip_bytes(data, pos)
        elif tag in (118, 117):
            count, pos = _uint(data, pos)
            levels.append([count, tag == 118])
            if len(levels) - 1 > max_depth:
                raise UpdateRefused(f"the update nests deeper than {max_depth} levels")
        else:
            raise _Malformed
    return pos


def check_nesting(update: bytes, max_depth: int) -> None:
    """Refuse an update whose JSON values (lib0 ``Any`` content) nest deeper than ``max_depth``.

    Done on the bytes, before pycrdt reads them: yrs decodes those values
    recursively, and an update of a few hundred kB nested 100,000 deep
    overflows its stack and kills the process. Bytes that do not read as a
    v1 update are left for pycrdt to refuse. Modelled on the v1 encoding of
    Yjs (``UpdateDecoderV1``, lib0 ``readAny``), read from their public spec.
    """
    try:
        _check_nesting(update, max_depth)
    except _Malformed:
        return


def _check_nesting(data: bytes, max_depth: int) -> None:
    clients, pos = _uint(data, 0)
    for _ in range(clients):
        structs, pos = _uint(data, pos)
        _client, pos = _uint(data, pos)
        _clock, pos = _uint(data, pos)
        for _ in range(structs):
            if pos >= len(data):
                raise _Malformed
            info = data[pos]
            pos += 1
            ref = info & 0x1F
            if ref in (0, 10):  # GC, Skip
                _length, pos = _uint(data, pos)
                continue
            if info & 0x80:  # origin
                pos = _uint(data, _uint(data, pos)[1])[1]
            if info & 0x40:  # right origin
                pos = _uint(data, _uint(data, pos)[1])[1]
            if not info & 0xC0:
                named, pos = _uint(data, pos)
                pos = _skip_bytes(data, pos) if named == 1 else _uint(data, _uint(data, pos)[1])[1]
                if info & 0x20:  # parent sub (a map key)
                    pos = _skip_bytes(data, pos)
            if ref == 1:  # deleted
                _length, pos = _uint(data, pos)
            elif ref == 2:  # JSON strings
                count, pos = _uint(data, pos)
                for _ in range(count):
                    pos = _skip_bytes(data, pos)
            elif ref in (3, 4, 5):  # binary, string, embed
                pos = _skip_bytes(data, pos)
            elif ref == 6:  # format: key, JSON value
                pos = _skip_bytes(data, _skip_bytes(data, pos))
            elif ref == 7:  # a type
                type_ref, pos = _uint(data, pos)
                if type_ref in (3, 6):  # XmlElement, XmlHook: a name
                    pos = _skip_bytes(data, pos)
            elif ref == 8:  # Any values
                count, pos = _uint(data, pos)
                for _ in range(count):
                    pos = _skip_any(data, pos, max_depth)
            elif ref == 9:  # a subdocument: guid, options
                pos = _skip_any(data, _skip_bytes(data, pos), max_depth)
            else:
                raise _Malformed


def _has_structs(update: bytes) -> bool:
    """Whether an encoded (v1) update carries structs (not only deletions)."""
    count, _ = read_var_uint(update, 0)
    return count > 0


class Candidate:
    """The document ahead of the live one: where editors' updates are tried.

    Args:
        kind: notebook or text file.
        limits: what an update may make of the document.
    """

    def __init__(self, kind: DocumentKind, limits: DocumentLimits) -> None:
        self.kind = kind
        self.limits = limits
        self.size = 0
        self._touched_cells: set[int] = set()
        self._inserted: list[Any] = []
        self._sources: set[int] = set()
        self._meta_touched = False
        self._check_all = False
        self._server_state_touched = False
        self._capture: list[bytes] | None = None
        self.doc = self._new_doc()

    # -- the document ---------------------------------------------------------

    def _new_doc(self, *, observed: bool = True) -> Doc:
        doc = Doc()
        self.document = self.kind.wrap(doc)
        # no undo history here (nobody undoes on the server), and its
        # transaction hooks would turn an observer's error into a Rust panic
        self.document._undo_manager = UndoManager(capture_timeout_millis=0)
        self._subscriptions = []
        if observed:
            self._observe(doc)
        return doc

    def _observe(self, doc: Doc) -> None:
        # subscriptions are kept (pycrdt drops an observer with its
        # subscription), each with what it observes, to end it in drop_doc
        self._subscriptions = [(doc, doc.observe(self._on_transaction))]
        self._subscriptions.append((self.document.ystate, self.document.ystate.observe(self._on_state)))
        if self.kind is NOTEBOOK:
            cells, meta = doc.get("cells", type=Array), doc.get("meta", type=Map)
            self._subscriptions.append((cells, cells.observe_deep(self._on_cells)))
            self._subscriptions.append((meta, meta.observe_deep(self._on_meta)))

    def unobserve(self) -> None:
        """End the document's subscriptions. A document observer refers to its
        document from inside yrs (a cycle Python's collector cannot see): a
        document dropped while observed is never freed."""
        for observed, subscription in self._subscriptions:
            observed.unobserve(subscription)
        self._subscriptions = []

    def drop_doc(self) -> None:
        """Let the document go (unobserved first, so that it is freed)."""
        self.unobserve()
        self.document = None
        self.doc = None

    def rebuild(self, live: Doc | bytes, in_flight: list[bytes]) -> None:
        """Start again from the live document (or its encoded state) and the changes not yet in it."""
        state = live if isinstance(live, bytes) else live.get_update()
        self.begin_restore()
        for update in (state, *in_flight):
            self.restore_part(update)
        self.end_restore()

    def release(self) -> None:
        """Drop the document (an idle room; :meth:`rebuild` brings it back).
        ``size`` is kept: the size limit still counts the document."""
        self._reset()
        self.drop_doc()

    # Building the candidate from the updates the live document is built from
    # (an open, slices.py), part by part: unobserved, since nothing of it is
    # checked or captured (the deep observers would turn every inserted cell
    # into Python objects), and observed again at the end.

    def begin_restore(self) -> None:
        """Start again from an empty document (then restore_part, end_restore)."""
        self._reset()
        self.drop_doc()  # else every rebuild (a refused update) would keep the old document for good
        self.doc = self._new_doc(observed=False)
        self.size = 0

    def restore_part(self, update: bytes) -> None:
        self.doc.apply_update(update)
        self.size += len(update)

    def end_restore(self) -> None:
        self._observe(self.doc)
        self._reset()

    def _run(self, action) -> list[bytes]:
        """Run ``action`` (one transaction on the candidate) and return its effect.

        When our observers cannot read the change (pycrdt converts event
        values eagerly and reports an observer's error as a group: of
        RecursionError, or of the SystemError a recursion leaves behind; only
        nesting far beyond any limit, 1,000 levels of maps, does that), the
        transaction has happened all the same: its effect is then read from
        the state vector before it, and everything is checked.
        """
        before = self.doc.get_state()
        self._capture = []
        try:
            action()
            changes = self._capture
        except Exception as exc:
            if not isinstance(exc, (RecursionError, BaseExceptionGroup)):
                raise
            changes = [self.doc.get_update(before)]
            self._check_all = True
        finally:
            self._capture = None
        return changes

    def _on_transaction(self, event) -> None:
        if self._capture is not None and event.update != b"\x00\x00":
            self._capture.append(event.update)

    def _on_cells(self, events) -> None:
        for event in events:
            path = event.path
            if not path:
                for op in event.delta:
                    self._inserted.extend(op.get("insert", ()))
            elif len(path) == 2 and path[1] == "source" and isinstance(event.target, Text):
                self._sources.add(path[0])
            else:
                self._touched_cells.add(path[0])

    def _on_meta(self, events) -> None:
        self._meta_touched = True

    def _on_state(self, event) -> None:
        self._server_state_touched |= any(key.startswith(SERVER_STATE_PREFIX) for key in event.keys)

    # -- changes ----------------------------------------------------------------

    def apply(self, update: bytes, *, check: bool) -> list[bytes]:
        """Apply an update and return its effect (the transaction updates, possibly none).

        ``check``: an editor's update; raise :class:`UpdateRefused` when it
        breaks the rules above (the caller then rebuilds the candidate).
        Raises ValueError when the update does not decode.
        """
        self._reset()
        if check:
            check_nesting(update, self.limits.max_depth)
        changes = self._run(lambda: self.doc.apply_update(update))
        added = sum(len(change) for change in changes)
        if check:
            # the reads below in one transaction: each read of its own would
            # commit one, and every commit runs the document's observers
            with self.doc.transaction():
                if _has_structs(get_update(update, self.doc.get_state())):
                    raise UpdateIncomplete("the update depends on changes the server does not have")
                self._check(added)
        self.size += added
        return changes

    def edit(self, change) -> list[bytes]:
        """Run ``change(document)`` in one transaction; return its effect."""
        def run() -> None:
            with self.doc.transaction():
                change(self.document)

        changes = self._run(run)
        self.size += sum(len(change) for change in changes)
        return changes

    def _reset(self) -> None:
        self._touched_cells.clear()
        self._inserted.clear()
        self._sources.clear()
        self._meta_touched = False
        self._check_all = False
        self._server_state_touched = False

    # -- checks -----------------------------------------------------------------

    def _check(self, added: int) -> None:
        limits = self.limits
        if self._server_state_touched:
            raise UpdateRefused(f"the document state's {SERVER_STATE_PREFIX}* keys are the service's")
        if self.size + added > limits.max_document_bytes:
            raise UpdateRefused(f"the document would exceed {limits.max_document_bytes} bytes")
        if self.kind is not NOTEBOOK:
            text = self.doc.get("source", type=Text)
            if len(text) > limits.max_string:
                raise UpdateRefused(f"the text would exceed {limits.max_string} characters")
            return
        cells = self.doc.get("cells", type=Array)
        if len(cells) > limits.max_cells:
            raise UpdateRefused(f"the notebook would exceed {limits.max_cells} cells")
        if self._check_all:
            self._touched_cells.update(range(len(cells)))
            self._meta_touched = True
        for value in self._inserted:
            check_cell(value, limits)
        for index in self._touched_cells:
            if index < len(cells):
                check_cell(cells[index], limits)
        for index in self._sources - self._touched_cells:
            if index < len(cells):
                source = cells[index].get("source") if isinstance(cells[index], Map) else None
                if source is not None and len(source) > limits.max_string:
                    raise UpdateRefused(f"cell {index}'s source would exceed {limits.max_string} characters")
        if self._meta_touched:
            check_meta(self.doc.get("meta", type=Map), limits)


def plain(value: Any, limits: DocumentLimits, where: str, depth: int = 0) -> Any:
    """A Y value (or a plain one) as JSON data, within ``limits``; UpdateRefused beyond them.

    Integral floats become ints (Yjs numbers are floats, nbformat wants
    integers where it says so, as jupyter_ydoc's ``cast_all`` does).
    """
    if depth > limits.max_depth:
        raise UpdateRefused(f"{where} nests deeper than {limits.max_depth} levels")
    if isinstance(value, (Text, str)):
        text = str(value)
        if len(text) > limits.max_string:
            raise UpdateRefused(f"{where} holds a string above {limits.max_string} characters")
        return text
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UpdateRefused(f"{where} holds a number JSON cannot write")
        return int(value) if value.is_integer() else value
    if isinstance(value, int):
        return value
    if isinstance(value, (Map, dict)):
        items = list(value.items())
        if len(items) > limits.max_items:
            raise UpdateRefused(f"{where} holds a map above {limits.max_items} keys")
        return {str(key): plain(item, limits, where, depth + 1) for key, item in items}
    if isinstance(value, (Array, list)):
        elements = list(value)
        if len(elements) > limits.max_items:
            raise UpdateRefused(f"{where} holds a list above {limits.max_items} elements")
        return [plain(item, limits, where, depth + 1) for item in elements]
    raise UpdateRefused(f"{where} holds a value of type {type(value).__name__}, not JSON")


def _schema_error(data: dict, ref: str | None) -> str | None:
    try:
        nbformat.validate(data, ref=ref, version=4, version_minor=5)
    except nbformat.ValidationError as exc:
        return exc.message.splitlines()[0][:200]
    except Exception as exc:  # noqa: BLE001 - a validator failing on odd data is a refusal too
        return f"{type(exc).__name__}: {str(exc)[:150]}"
    return None


def check_cell(value: Any, limits: DocumentLimits) -> None:
    """An element of ``cells`` that validates as an nbformat cell (UpdateRefused otherwise)."""
    if not isinstance(value, Map):
        raise UpdateRefused(f"a cell must be a map, not {type(value).__name__}")
    cell = plain(value, limits, "a cell")
    cell.pop("execution_state", None)  # jupyter_ydoc's own key, dropped when writing
    cell_type = cell.get("cell_type")
    if cell_type not in CELL_TYPES:
        raise UpdateRefused(f"a cell's cell_type must be one of {', '.join(CELL_TYPES)}")
    if not isinstance(cell.get("source"), str):
        raise UpdateRefused("a cell's source must be text")
    complete_cells([cell])  # as serialize() completes them
    cell.setdefault("id", "x")  # before nbformat 4.5 cells carry none
    if cell.get("attachments") is None:
        cell.pop("attachments", None)  # jupyter_ydoc drops an empty one
    error = _schema_error(cell, f"{cell_type}_cell")
    if error:
        raise UpdateRefused(f"a {cell_type} cell does not validate: {error}")


def check_meta(meta: Map, limits: DocumentLimits) -> None:
    """The notebook's ``meta`` map: version numbers and metadata that validate."""
    major, minor = meta.get("nbformat"), meta.get("nbformat_minor")
    if not isinstance(major, (int, float)) or isinstance(major, bool) or major != 4:
        raise UpdateRefused("meta.nbformat must be the number 4")
    if not isinstance(minor, (int, float)) or isinstance(minor, bool) or not float(minor).is_integer() or not 0 <= minor < 100:
        raise UpdateRefused("meta.nbformat_minor must be a small integer")
    metadata = plain(meta.get("metadata", {}), limits, "the notebook metadata")
    if not isinstance(metadata, dict):
        raise UpdateRefused("the notebook metadata must be a map")
    error = _schema_error({"cells": [], "metadata": metadata, "nbformat": 4, "nbformat_minor": int(minor)}, None)
    if error:
        raise UpdateRefused(f"the notebook metadata does not validate: {error}")
