"""References to CS3 resources: paths, resource ids, and ids plus relative paths.

A CS3 ``Reference`` is either an absolute path, or a resource id with a path
relative to it (``"."`` for the resource itself). The rest of cs3collab names
a resource with whichever it has; :func:`to_reference` turns any of them into
the protobuf, and :func:`describe` into the words an error message uses.

Resource ids have a canonical string form, Reva's ``storage$space!opaque``
(``storagespace.FormatResourceID`` in Reva); it is what rooms and URLs carry.
"""

from __future__ import annotations

from typing import Union

from cs3.storage.provider.v1beta1 import resources_pb2 as storage

ResourceId = storage.ResourceId
Reference = storage.Reference

RefLike = Union[str, storage.Reference, storage.ResourceId, tuple]
"""A path (``"/users/einstein/a.ipynb"``), a ``ResourceId``, a ``Reference``,
or a tuple ``(ResourceId, "./relative/path")``."""


def to_reference(ref: RefLike) -> storage.Reference:
    """Build the CS3 Reference for any accepted way of naming a resource."""
    if isinstance(ref, storage.Reference):
        return ref
    if isinstance(ref, storage.ResourceId):
        return storage.Reference(resource_id=ref, path=".")
    if isinstance(ref, str):
        if not ref.startswith("/"):
            raise ValueError(f"CS3 paths are absolute, got {ref!r}")
        return storage.Reference(path=ref)
    if isinstance(ref, tuple) and len(ref) == 2 and isinstance(ref[0], storage.ResourceId):
        rel = ref[1] or "."
        if not (rel == "." or rel.startswith("./")):
            rel = "./" + rel.lstrip("/")
        return storage.Reference(resource_id=ref[0], path=rel)
    raise TypeError(f"not a CS3 reference: {ref!r}")


def format_resource_id(rid: storage.ResourceId) -> str:
    """Reva's string form ``storage$space!opaque`` of a resource id."""
    head = rid.storage_id
    if rid.space_id:
        head = f"{head}${rid.space_id}"
    return f"{head}!{rid.opaque_id}" if rid.opaque_id else head


def parse_resource_id(text: str) -> storage.ResourceId:
    """Inverse of :func:`format_resource_id`; raises ValueError on junk."""
    if "!" not in text:
        raise ValueError(f"not a CS3 resource id (expected storage$space!opaque): {text!r}")
    head, opaque = text.rsplit("!", 1)
    storage_id, _, space = head.partition("$")
    if not storage_id or not opaque:
        raise ValueError(f"not a CS3 resource id (expected storage$space!opaque): {text!r}")
    return storage.ResourceId(storage_id=storage_id, space_id=space, opaque_id=opaque)


def describe(ref: RefLike) -> str:
    """How an error message names the resource: its path or its id."""
    try:
        reference = to_reference(ref)
    except (TypeError, ValueError):
        return repr(ref)
    if reference.HasField("resource_id"):
        rid = format_resource_id(reference.resource_id)
        return rid if reference.path in ("", ".") else f"{rid}:{reference.path}"
    return reference.path
