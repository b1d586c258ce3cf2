"""Permission sets: Reva's roles and the checks every store call makes.

Roles follow cs3org/reva pkg/permissions/role.go (``NewViewerRole``,
``NewEditorRole``); the owner of a personal space has every permission, as
decomposedfs grants the space manager. A permission set is a frozenset of
``ResourcePermissions`` field names.

``require`` follows decomposedfs (pkg/storage/utils/decomposedfs, e.g.
``Delete`` in decomposedfs.go): lacking the needed permission gives
PermissionDenied if the caller may at least stat the resource, otherwise
NotFound, so that a stranger learns nothing about its existence.
"""

from __future__ import annotations

from cs3.auth.provider.v1beta1 import resources_pb2 as auth_res
from cs3.storage.provider.v1beta1 import resources_pb2 as sp_res

from .errors import NotFound, PermissionDenied

Perms = frozenset

ALL_FIELDS = tuple(f.name for f in sp_res.ResourcePermissions.DESCRIPTOR.fields)
NONE: Perms = frozenset()
OWNER: Perms = frozenset(ALL_FIELDS)
VIEWER: Perms = frozenset({
    "get_path", "initiate_file_download", "list_container", "list_file_versions", "list_recycle", "stat",
})
EDITOR: Perms = VIEWER | frozenset({
    "initiate_file_upload", "restore_file_version", "restore_recycle_item", "create_container", "delete",
    "move", "purge_recycle",
})

ROLE_PERMS = {
    auth_res.ROLE_VIEWER: VIEWER,
    auth_res.ROLE_EDITOR: EDITOR,
    auth_res.ROLE_FILE_EDITOR: VIEWER | frozenset({"initiate_file_upload", "restore_file_version",
                                                   "restore_recycle_item"}),
    auth_res.ROLE_OWNER: OWNER,
}


def from_proto(p: sp_res.ResourcePermissions) -> Perms:
    return frozenset(name for name in ALL_FIELDS if getattr(p, name))


def to_proto(perms: Perms) -> sp_res.ResourcePermissions:
    return sp_res.ResourcePermissions(**{name: True for name in perms})


def role_perms(role: int) -> Perms:
    return ROLE_PERMS.get(role, NONE)


def require(perms: Perms, needed: str, what: str) -> None:
    """Raise unless ``needed`` is in ``perms`` (see module docstring)."""
    if needed in perms:
        return
    if "stat" in perms:
        raise PermissionDenied(f"{needed} not allowed on {what}")
    raise NotFound(f"{what} not found")
