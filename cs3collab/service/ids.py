"""File ids: how a CS3 resource id travels in room names and URLs.

A room is named ``{format}:{type}:{fileId}`` and y-websocket puts that name
into the WebSocket URL without encoding it, so a fileId must be URL-path
safe. Reva's resource id string ``storage$space!opaque`` usually is; when it
is not, the fileId is ``b64.`` followed by its base64url form. Either way the
fileId is derived from the resource id alone, so every path that leads to a
file (the owner's home, a recipient's share) names the same room, and a
rename does not split it.
"""

from __future__ import annotations

import base64
import re

from cs3.storage.provider.v1beta1 import resources_pb2 as storage

from cs3collab.cs3.refs import format_resource_id, parse_resource_id

_SAFE = re.compile(r"^[A-Za-z0-9$!._~-]{1,512}$")
_PREFIX = "b64."
MAX_FILE_ID = 1024


def file_id_for(resource_id: storage.ResourceId) -> str:
    """The fileId of a resource: its Reva id string, or base64url of it."""
    text = format_resource_id(resource_id)
    if _SAFE.match(text) and not text.startswith(_PREFIX):
        return text
    return _PREFIX + base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def resource_id_for(file_id: str) -> storage.ResourceId:
    """Inverse of :func:`file_id_for`; raises ValueError for anything else."""
    if not file_id or len(file_id) > MAX_FILE_ID:
        raise ValueError("fileId missing or too long")
    if file_id.startswith(_PREFIX):
        encoded = file_id[len(_PREFIX):]
        try:
            text = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (ValueError, UnicodeDecodeError):
            raise ValueError(f"fileId {file_id[:60]!r} is not valid base64url") from None
        return parse_resource_id(text)
    if not _SAFE.match(file_id):
        raise ValueError(f"fileId {file_id[:60]!r} has characters a fileId never has")
    return parse_resource_id(file_id)


def room_name(fmt: str, doc_type: str, file_id: str) -> str:
    return f"{fmt}:{doc_type}:{file_id}"


def parse_room_name(name: str) -> tuple[str, str, str]:
    """Split ``format:type:fileId``; raise ValueError if it is not one."""
    parts = name.split(":", 2)
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"room name {name[:80]!r} is not format:type:fileId")
    return parts[0], parts[1], parts[2]
