"""Documents: the file in CS3 and its Y form, in both directions.

Everything that turns bytes from storage into a Y document, or a Y document
into bytes for storage, lives here and goes through jupyter_ydoc's schema
(``YNotebook`` for notebooks, ``YUnicode`` for text files) and nbformat:

* :func:`initial_update` builds the Y state of a file *deterministically*
  (fixed client id 0, cell ids derived from the room when the file has
  none), so that rebuilding a room from the same file yields the same Y
  items and a reconnecting client never duplicates cells;
* :func:`serialize` validates and writes the document (nbformat for
  notebooks) and refuses to produce an invalid notebook;
* :func:`outside_edit_update` turns a file changed outside the room into a
  Y update made *from the last persisted state*: applied to the live
  document it merges like an edit by one more collaborator, so what was
  typed in the room since that save stays.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import nbformat
from jupyter_ydoc import YNotebook, YUnicode
from pycrdt import Doc

from cs3collab.service.protocol import read_var_uint

INITIAL_CLIENT_ID = 0
"""Client id of the Y items built from a file (as jupyter-collaboration does)."""

_CELL_ID_NAMESPACE = uuid.UUID("6f1c0c55-2f5e-4d6b-9a43-9c1b5d0a3c17")


class InvalidDocument(ValueError):
    """A file in storage that cannot be opened as the requested document type."""


@dataclass(frozen=True)
class DocumentKind:
    """One document type of the RTC protocol.

    ``doc_type`` and ``fmt`` are the ``type`` and ``format`` of the session
    request; ``ydoc_class`` is the jupyter_ydoc class of its schema.
    """

    doc_type: str
    fmt: str
    ydoc_class: type

    def wrap(self, doc: Doc) -> Any:
        return self.ydoc_class(doc)


NOTEBOOK = DocumentKind("notebook", "json", YNotebook)
TEXT_FILE = DocumentKind("file", "text", YUnicode)
KINDS = {kind.doc_type: kind for kind in (NOTEBOOK, TEXT_FILE)}


def kind_for(doc_type: str, fmt: str) -> DocumentKind:
    """The document kind of a session request; ValueError if unsupported."""
    kind = KINDS.get(doc_type)
    if kind is None or kind.fmt != fmt:
        supported = ", ".join(f"{k.doc_type}/{k.fmt}" for k in KINDS.values())
        raise ValueError(f"unsupported document type {doc_type}/{fmt} (supported: {supported})")
    return kind


def parse(kind: DocumentKind, data: bytes, *, seed: str, where: str) -> Any:
    """Parse file content into what ``kind``'s ``set()`` takes.

    Args:
        seed: a stable string (the room key) from which missing cell ids are
            derived, so that the same file always gives the same ids.
        where: the CS3 path or id, for error messages.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidDocument(f"{where} is not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    if kind is TEXT_FILE:
        return text.replace("\r\n", "\n")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidDocument(f"{where} is not JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(raw, dict) or "cells" not in raw and "worksheets" not in raw:
        raise InvalidDocument(f"{where} is JSON but not a notebook (no cells)")
    try:
        if raw.get("nbformat", 4) < 4:
            raw = dict(nbformat.reads(text, as_version=4))  # upgrade v3 and older, as Jupyter does
        minor = raw.get("nbformat_minor", 0)
        if minor >= 5:  # ids belong to the schema from 4.5 on: give missing ones before validating
            raw = _with_stable_ids(raw, seed)
        error = _validation_error(raw)
    except Exception as exc:  # nbformat raises many types for broken files
        raise InvalidDocument(f"{where} is not a valid notebook: {exc}") from None
    if error:
        raise InvalidDocument(f"{where} is not a valid notebook: {error}")
    # before 4.5 ids are not stored in the file, but the Y schema matches cells by id
    notebook = _with_stable_ids(raw, seed)
    _join_lines(notebook)
    return notebook


def _join_lines(notebook: dict) -> None:
    """Multi-line strings are stored as lists of lines; the Y schema holds
    strings. Joined in place, for the fields nbformat splits when writing
    (sources, stream text, non-JSON mime data, attachments), as nbformat's
    ``rejoin_lines`` does."""
    for cell in notebook["cells"]:
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
        for bundle in (cell.get("attachments") or {}).values():
            _join_bundle(bundle)
        for output in cell.get("outputs", ()):
            if isinstance(output.get("text"), list):
                output["text"] = "".join(output["text"])
            if isinstance(output.get("data"), dict):
                _join_bundle(output["data"])


def _join_bundle(bundle: dict) -> None:
    for mime, value in bundle.items():
        json_mime = mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json"))
        if not json_mime and isinstance(value, list) and all(isinstance(line, str) for line in value):
            bundle[mime] = "".join(value)


def _validation_error(notebook: Any) -> str | None:
    try:
        nbformat.validate(notebook)
    except nbformat.ValidationError as exc:
        return exc.message.splitlines()[0][:300]
    return None


def _with_stable_ids(notebook: dict, seed: str) -> dict:
    """A copy whose cells (copied too) all have ids: a missing one is derived
    from ``seed`` and the cell's index; an empty notebook gets the single
    empty code cell JupyterLab shows."""
    cells = [dict(cell) for cell in notebook.get("cells", [])]
    if not cells:
        cells = [{"cell_type": "code", "execution_count": None, "metadata": {"trusted": True}, "outputs": [], "source": ""}]
    for index, cell in enumerate(cells):
        if not cell.get("id"):
            cell["id"] = str(uuid.uuid5(_CELL_ID_NAMESPACE, f"{seed}:{index}"))[:32]
    notebook = dict(notebook)
    notebook["cells"] = cells
    return notebook


async def initial_update(kind: DocumentKind, content: Any) -> bytes:
    """The Y update that builds ``content`` from nothing, deterministically."""
    doc = Doc(client_id=INITIAL_CLIENT_ID)
    await kind.wrap(doc).aset(content)
    return doc.get_update()


def serialize(kind: DocumentKind, document: Any, *, where: str) -> bytes:
    """The file content of a live document; InvalidDocument if a notebook
    would not validate (then nothing is written)."""
    try:
        content = document.get()
        if kind is TEXT_FILE:
            return content.encode("utf-8")
        complete_cells(content["cells"])
        captured: dict = {}  # nbformat validates while writing: once is enough
        text = nbformat.writes(nbformat.from_dict(content), capture_validation_error=captured)
    except Exception as exc:  # noqa: BLE001 - a live state the schema cannot read (a string
        # nbformat, a non-map cell, metadata nested past the recursion limit) is invalid, not a crash
        raise InvalidDocument(
            f"the document of {where} cannot be written as a {kind.doc_type}: {type(exc).__name__}: {str(exc)[:200]}"
        ) from None
    if "ValidationError" in captured:
        error = captured["ValidationError"].message.splitlines()[0][:300]
        raise InvalidDocument(f"the document of {where} does not validate as a notebook: {error}")
    return text.encode("utf-8")


def complete_cells(cells: list) -> None:
    """Give cells the keys nbformat requires and a Y cell may lack (a client
    that made a code cell without ``execution_count``): their empty values."""
    for cell in cells:
        if isinstance(cell, dict):
            cell.setdefault("metadata", {})
            if cell.get("cell_type") == "code":
                cell.setdefault("outputs", [])
                cell.setdefault("execution_count", None)


def outside_edit_update(kind: DocumentKind, persisted_state: bytes, new_content: Any) -> bytes:
    """The Y update that changes the last persisted state into ``new_content``.

    The change is computed on a copy of the persisted state (cells matched
    by id, sources diffed, by jupyter_ydoc's ``set``) under a client id of
    its own, so applying it to the live document merges it with everything
    typed since that save instead of overwriting it.

    It is deterministic: the client id comes from the persisted state and
    the new content, so computing the same merge again (a service restarted
    before it noted the merge) gives the same update, which Yjs applies as a
    no-op rather than as a second copy of the change.
    """
    doc = Doc(client_id=_merge_client_id(kind, persisted_state, new_content))
    doc.apply_update(persisted_state)
    before = doc.get_state()
    document = kind.wrap(doc)
    with doc.transaction():
        if kind is NOTEBOOK:
            _update_outputs_in_place(document, new_content)
        document.set(new_content)
    return doc.get_update(before)


def _merge_client_id(kind: DocumentKind, persisted_state: bytes, new_content: Any) -> int:
    """A Yjs client id (uint32, never 0 nor INITIAL_CLIENT_ID) for one merge:
    a digest of the base (its state vector, client by client, and its content)
    and the new content. Not of the base's bytes: the same state rebuilt from
    the journal may encode differently."""
    base = Doc()
    base.apply_update(persisted_state)
    digest = hashlib.sha256()
    for client, clock in sorted(_state_vector(base.get_state())):
        digest.update(f"{client}:{clock};".encode())
    for content in (kind.wrap(base).get(), new_content):
        digest.update(json.dumps(content, sort_keys=True, default=str).encode("utf-8"))
        digest.update(b"\0")
    client_id = int.from_bytes(digest.digest()[:4], "big")
    return client_id if client_id not in (0, INITIAL_CLIENT_ID) else client_id ^ 0x5A5A5A5A


def _state_vector(encoded: bytes) -> list[tuple[int, int]]:
    """(client, clock) pairs of an encoded Yjs state vector."""
    count, pos = read_var_uint(encoded, 0)
    pairs = []
    for _ in range(count):
        client, pos = read_var_uint(encoded, pos)
        clock, pos = read_var_uint(encoded, pos)
        pairs.append((client, clock))
    return pairs


def _update_outputs_in_place(document: YNotebook, notebook: dict) -> None:
    """Replace changed outputs inside the existing cells.

    jupyter_ydoc's ``set`` recreates a whole cell when its stream outputs
    change, which would delete what a collaborator is typing in that cell's
    source; updating the outputs array in place first leaves ``set`` only
    the granular source and metadata changes.
    """
    by_id = {ycell.get("id"): ycell for ycell in document.ycells}
    for cell in notebook["cells"]:
        ycell = by_id.get(cell.get("id"))
        if ycell is None or cell.get("cell_type") != "code" or ycell.get("cell_type") != "code":
            continue
        youtputs = ycell.get("outputs")
        if youtputs is None or youtputs.to_py() == cell.get("outputs", []):
            continue
        youtputs.clear()
        youtputs.extend(document._create_youtputs(cell.get("outputs", [])))  # jupyter_ydoc 4.x schema
