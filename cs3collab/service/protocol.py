"""The Jupyter RTC wire protocol: y-sync, awareness and RAW frames, and close codes.

Frames are what the stock ``@jupyter/docprovider`` frontend (y-websocket
1.5) and jupyter-collaboration's server exchange:

==========================================  ==================================
bytes                                       meaning
==========================================  ==================================
``0 0 varBytes(stateVector)``               sync step 1
``0 1 varBytes(update)``                    sync step 2
``0 2 varBytes(update)``                    document update
``1 varBytes(awarenessUpdate)``             awareness
``2 varString("save") varUint(id)``         save request (RAW); reply is
                                            ``2 varString(json)``
``3``                                       query awareness (y-websocket)
==========================================  ==================================

Parsing is strict: a truncated frame, an unknown type or a length that runs
past the end is a :class:`ProtocolError`, which closes only the connection
that sent it. Encoding uses pycrdt's helpers where they are exact; varStrings
are written with their UTF-8 byte length (lib0's rule).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum

from pycrdt import create_awareness_message, create_update_message, write_message

__all__ = [
    "CloseCode",
    "Frame",
    "MessageType",
    "ProtocolError",
    "SyncType",
    "awareness_message",
    "parse_frame",
    "raw_json_message",
    "read_var_uint",
    "save_reply",
    "session_close_reason",
    "step1_message",
    "step2_message",
    "update_message",
]


class MessageType(IntEnum):
    SYNC = 0
    AWARENESS = 1
    RAW = 2
    QUERY_AWARENESS = 3


class SyncType(IntEnum):
    STEP1 = 0
    STEP2 = 1
    UPDATE = 2


class CloseCode(IntEnum):
    """WebSocket close codes the stock frontend understands.

    1003 carries a JSON reason ``{"reason", "reloadable", "errorReason"}``
    and ends the document for that tab with a dialog showing ``errorReason``;
    4400/4404/4500 before the first sync reject the document load; any other
    code makes y-websocket reconnect.
    """

    GOING_AWAY = 1001
    SESSION = 1003           # fatal for this tab: unknown session, access revoked, bad document
    POLICY = 1008            # a frame broke the protocol; the client may reconnect
    TOO_BIG = 1009           # a frame above the size limit
    RETRY = 1011             # the service could not keep the sender's change; it reconnects and resends it
    BAD_REQUEST = 4400
    FORBIDDEN = 4403
    NOT_FOUND = 4404
    SERVER_ERROR = 4500


class ProtocolError(ValueError):
    """A frame that does not follow the protocol."""


@dataclass(frozen=True)
class Frame:
    """One parsed incoming frame.

    ``payload`` is the state vector (step 1), the update (step 2, update) or
    the awareness update; ``save_id`` is set for save requests.
    """

    type: MessageType
    sync: SyncType | None = None
    payload: bytes = b""
    save_id: int | None = None


def read_var_uint(data: bytes, pos: int) -> tuple[int, int]:
    """lib0's varUint at ``pos``: (value, position after it); ProtocolError if malformed."""
    value = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise ProtocolError("truncated frame: varUint runs past the end")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ProtocolError("varUint longer than 64 bits")


def _read_var_bytes(data: bytes, pos: int) -> tuple[bytes, int]:
    length, pos = read_var_uint(data, pos)
    end = pos + length
    if end > len(data):
        raise ProtocolError(f"truncated frame: {length} bytes announced, {len(data) - pos} present")
    return data[pos:end], end


def parse_frame(data: bytes) -> Frame:
    """Parse one incoming frame; raise :class:`ProtocolError` if it is malformed."""
    if not data:
        raise ProtocolError("empty frame")
    kind, pos = read_var_uint(data, 0)
    if kind == MessageType.SYNC:
        sub, pos = read_var_uint(data, pos)
        if sub not in (SyncType.STEP1, SyncType.STEP2, SyncType.UPDATE):
            raise ProtocolError(f"unknown sync message type {sub}")
        payload, _ = _read_var_bytes(data, pos)
        return Frame(MessageType.SYNC, SyncType(sub), payload)
    if kind == MessageType.AWARENESS:
        payload, _ = _read_var_bytes(data, pos)
        return Frame(MessageType.AWARENESS, payload=payload)
    if kind == MessageType.RAW:
        raw, pos = _read_var_bytes(data, pos)
        try:
            command = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("RAW message name is not UTF-8") from None
        if command != "save":
            raise ProtocolError(f"unknown RAW message {command[:40]!r}")
        save_id, _ = read_var_uint(data, pos)
        return Frame(MessageType.RAW, save_id=save_id)
    if kind == MessageType.QUERY_AWARENESS:
        return Frame(MessageType.QUERY_AWARENESS)
    raise ProtocolError(f"unknown message type {kind}")


def _var_uint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def raw_json_message(payload: dict) -> bytes:
    """A RAW (type 2) frame carrying JSON, as jupyter-collaboration sends it."""
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return _var_uint(MessageType.RAW) + _var_uint(len(body)) + body


def save_reply(save_id: int, status: str, new_version: bool = False) -> bytes:
    """Reply to a save request: status is ``success``, ``skipped`` or ``failed``
    (what jupyter-collaboration's frontend reads); ``newVersion`` (ours, ignored
    by the stock frontend) says whether a CS3 version was written while the
    request was handled, so that the tab tells "saved as a new version" from
    "nothing changed" without guessing from the notices it saw."""
    return raw_json_message({"type": "save", "responseTo": save_id, "status": status, "newVersion": new_version})


def session_close_reason(reason: str, message: str, *, reloadable: bool = False) -> str:
    """The JSON close reason of code 1003, kept within the 123 bytes RFC 6455 allows."""
    payload = {"reason": reason, "reloadable": reloadable, "errorReason": message}
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    while len(text.encode("utf-8")) > 123 and payload["errorReason"]:
        payload["errorReason"] = payload["errorReason"][: max(0, len(payload["errorReason"]) - 8)].rstrip() + "…"
        if len(payload["errorReason"]) <= 1:
            payload["errorReason"] = ""
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return text


def step1_message(state_vector: bytes) -> bytes:
    """Sync step 1: our state vector, asking the peer for what we miss."""
    return bytes((MessageType.SYNC, SyncType.STEP1)) + write_message(state_vector)


def step2_message(update: bytes) -> bytes:
    """Sync step 2: the update a peer misses, in reply to its step 1."""
    return bytes((MessageType.SYNC, SyncType.STEP2)) + write_message(update)


update_message = create_update_message
awareness_message = create_awareness_message


def parse_awareness(payload: bytes) -> list[tuple[int, int, dict | None]]:
    """Check an awareness update strictly and return its (client id, clock, state) entries."""
    count, pos = read_var_uint(payload, 0)
    if count > 10_000:
        raise ProtocolError(f"awareness update announces {count} clients")
    entries = []
    for _ in range(count):
        client_id, pos = read_var_uint(payload, pos)
        clock, pos = read_var_uint(payload, pos)
        raw, pos = _read_var_bytes(payload, pos)
        try:
            state = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):  # nested past what JSON reading allows
            raise ProtocolError("awareness state is not JSON") from None
        if state is not None and not isinstance(state, dict):
            raise ProtocolError("awareness state is not a JSON object")
        entries.append((client_id, clock, state))
    return entries


def encode_awareness(entries: list[tuple[int, int, dict | None]]) -> bytes:
    """An awareness update (the payload of a type 1 frame) from (client id, clock, state) entries."""
    out = bytearray(_var_uint(len(entries)))
    for client_id, clock, state in entries:
        body = json.dumps(state, separators=(",", ":")).encode("utf-8")
        out += _var_uint(client_id) + _var_uint(clock) + _var_uint(len(body)) + body
    return bytes(out)
