"""Whether an update adds anything to a released room, read from bytes without a document.

A released room (see Room.release) keeps its state as one encoded update.
Tabs of some clients (pycrdt's provider, for one) send every update they
apply back to the server, the initial sync included: a released room would
rebuild its documents for such an echo, which changes nothing. An update
adds nothing when (1) diffed against the room's state vector it carries no
struct, and (2) every range its delete set deletes is already deleted in
the room's state. Both are read from the v1 encoding: an update is
``structs, delete set``; with no structs it is ``0x00`` then the delete set
(``clients: varUint``, then per client ``client, ranges: varUint`` and per
range ``clock, length: varUint``), as in Yjs's ``writeDeleteSet``.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable

from pycrdt import get_update

from cs3collab.service.protocol import read_var_uint

Ranges = dict[int, tuple[list[int], list[int]]]  # client -> (starts, ends), merged and sorted


def _delete_set(update: bytes, pos: int) -> Ranges:
    clients, pos = read_var_uint(update, pos)
    found: dict[int, list[tuple[int, int]]] = {}
    for _ in range(clients):
        client, pos = read_var_uint(update, pos)
        count, pos = read_var_uint(update, pos)
        spans = found.setdefault(client, [])
        for _ in range(count):
            clock, pos = read_var_uint(update, pos)
            length, pos = read_var_uint(update, pos)
            spans.append((clock, clock + length))
    merged: Ranges = {}
    for client, spans in found.items():
        starts: list[int] = []
        ends: list[int] = []
        for start, end in sorted(spans):
            if ends and start <= ends[-1]:
                ends[-1] = max(ends[-1], end)
            else:
                starts.append(start)
                ends.append(end)
        merged[client] = (starts, ends)
    return merged


def deleted_in(state: bytes, state_vector: bytes) -> Ranges | None:
    """The ranges a room's encoded state deletes (None if it cannot be read)."""
    return _deletions(get_update(state, state_vector))


def _deletions(diff: bytes) -> Ranges | None:
    """The delete set of a diff that carries no struct; None if it carries some."""
    structs, pos = read_var_uint(diff, 0)
    if structs:
        return None
    return _delete_set(diff, pos)


def adds_nothing(update: bytes, state_vector: bytes, deleted: Callable[[], Ranges]) -> bool:
    """Whether ``update`` changes nothing in a state with ``state_vector``
    whose deletions ``deleted()`` gives (called only for an update that
    inserts nothing: reading them decodes the whole state). Raises what
    pycrdt raises for bytes that are not an update (the caller lets the
    usual path refuse them)."""
    incoming = _deletions(get_update(update, state_vector))
    if incoming is None:
        return False  # it inserts something: a keystroke, most likely
    have = deleted() if incoming else {}
    for client, (starts, ends) in incoming.items():
        have_starts, have_ends = have.get(client, ([], []))
        for start, end in zip(starts, ends):
            i = bisect_right(have_starts, start) - 1
            if i < 0 or have_ends[i] < end:
                return False
    return True
