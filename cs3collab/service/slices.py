"""Cut a large Y update into slices that are applied one after another.

Opening a large notebook applies its multi-MB initial update to the room's
two documents (the live one and the guard's candidate), on the event loop
that every room shares: pycrdt's documents cannot be used from another
thread while the loop runs (each call holds the GIL for its whole length),
so the apply cannot move off the loop. It can be cut up instead:
:func:`split_update` cuts an encoded (v1) update at struct boundaries into
updates of about ``max_bytes`` each (SLICE_BYTES), and the room applies them one at a
time, letting the loop serve other rooms in between.

The slices hold exactly the structs of the update (each keeps its client and
clock, so applying them gives the same document, item for item, as applying
the whole: the journal keeps the one update as before); the delete set goes
with the last slice. Within one client the structs are in clock order, and an
item's origins and parent were created before it, so each slice depends only
on earlier ones; where a struct refers to another client's later structs
(a merged update of several clients), yrs keeps it pending until they arrive,
as it does for any update received out of order.

The format is Yjs' ``UpdateEncoderV1``, read from its public description
(the same reading as :func:`cs3collab.service.guard.check_nesting`). Bytes
that do not read as one (or a struct kind this reader does not know) are
not cut: the update comes back whole.
"""

from __future__ import annotations

from cs3collab.service.guard import _Malformed, _skip_any, _uint

SLICE_BYTES = 64 * 1024
"""About how much of an update one slice holds. Applying 64 KB of a notebook
to both of a room's documents takes about 0.5 ms on this project's 2-core
machine, and the 67 slices of a 1000-cell notebook take less time in all
than the whole update at once (yrs integrates a large update more than
linearly: slices of 256 KB took ~6 ms each, ~150 ms in all)."""

_ANY_DEPTH = 10_000  # slicing reads values the guard has already bounded (or our own builds)


def _write_uint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _u(data: bytes, pos: int) -> tuple[int, int]:
    """A varuint; most are one byte, read here without a call."""
    byte = data[pos]
    if byte < 0x80:
        return byte, pos + 1
    return _uint(data, pos)


def _skip(data: bytes, pos: int) -> int:
    """Skip a length-prefixed string or byte array."""
    length, pos = _u(data, pos)
    pos += length
    if pos > len(data):
        raise _Malformed
    return pos


def _string_length(data: bytes, pos: int) -> tuple[int, int]:
    """A string content's length in UTF-16 code units (Y clocks count those), and the end."""
    size, start = _u(data, pos)
    end = start + size
    if end > len(data):
        raise _Malformed
    text = data[start:end].decode("utf-8", "surrogatepass")
    return len(text.encode("utf-16-le", "surrogatepass")) // 2, end


def _struct(data: bytes, pos: int) -> tuple[int, int]:
    """Read the struct at ``pos``: (its clock length, the position after it)."""
    if pos >= len(data):
        raise _Malformed
    info = data[pos]
    pos += 1
    ref = info & 0x1F
    if ref in (0, 10):  # GC, Skip
        return _u(data, pos)
    if info & 0x80:  # origin
        pos = _u(data, _u(data, pos)[1])[1]
    if info & 0x40:  # right origin
        pos = _u(data, _u(data, pos)[1])[1]
    if not info & 0xC0:
        named, pos = _u(data, pos)
        pos = _skip(data, pos) if named == 1 else _u(data, _u(data, pos)[1])[1]
        if info & 0x20:  # parent sub (a map key)
            pos = _skip(data, pos)
    if ref == 1:  # deleted
        return _u(data, pos)
    if ref == 2:  # JSON strings
        count, pos = _u(data, pos)
        for _ in range(count):
            pos = _skip(data, pos)
        return count, pos
    if ref == 4:  # string
        return _string_length(data, pos)
    if ref in (3, 5):  # binary, embed
        return 1, _skip(data, pos)
    if ref == 6:  # format: key, JSON value
        return 1, _skip(data, _skip(data, pos))
    if ref == 7:  # a type
        type_ref, pos = _u(data, pos)
        if type_ref in (3, 6):  # XmlElement, XmlHook: a name
            pos = _skip(data, pos)
        return 1, pos
    if ref == 8:  # Any values
        count, pos = _u(data, pos)
        for _ in range(count):
            pos = _skip_any(data, pos, _ANY_DEPTH)
        return count, pos
    if ref == 9:  # a subdocument: guid, options
        return 1, _skip_any(data, _skip(data, pos), _ANY_DEPTH)
    raise _Malformed  # a kind this reader does not know (yrs' moves): not cut


def split_update(update: bytes, max_bytes: int = SLICE_BYTES) -> list[bytes]:
    """``update`` as slices of about ``max_bytes`` (whole when it is smaller, or unreadable)."""
    if len(update) <= max_bytes:
        return [update]
    try:
        return _split(update, max_bytes)
    except (_Malformed, IndexError):
        return [update]


def _split(data: bytes, max_bytes: int) -> list[bytes]:
    slices: list[bytes] = []
    segments: list[tuple[int, int, int, int, int]] = []  # (client, clock, structs, start, end) of the slice
    size = 0

    def emit(tail: bytes) -> None:
        nonlocal size
        out = bytearray()
        _write_uint(out, len(segments))
        for client, clock, count, start, end in segments:
            _write_uint(out, count)
            _write_uint(out, client)
            _write_uint(out, clock)
            out += data[start:end]
        out += tail
        slices.append(bytes(out))
        segments.clear()
        size = 0

    clients, pos = _u(data, 0)
    for _ in range(clients):
        structs, pos = _u(data, pos)
        client, pos = _u(data, pos)
        clock, pos = _u(data, pos)
        start, start_clock, count = pos, clock, 0
        for _ in range(structs):
            length, pos = _struct(data, pos)
            clock += length
            count += 1
            if size + pos - start >= max_bytes:
                segments.append((client, start_clock, count, start, pos))
                emit(b"\x00")  # no deletions in this slice
                start, start_clock, count = pos, clock, 0
        if count:
            segments.append((client, start_clock, count, start, pos))
            size += pos - start
    # the delete set, read to check it is whole: it goes with the last slice
    deleted, end = _u(data, pos)
    for _ in range(deleted):
        end = _u(data, end)[1]
        ranges, end = _u(data, end)
        for _ in range(ranges):
            end = _u(data, _u(data, end)[1])[1]
    if end != len(data):
        raise _Malformed
    if segments or end - pos > 1 or not slices:
        emit(data[pos:end])
    return slices
