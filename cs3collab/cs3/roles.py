"""Share roles as CS3 permission sets, and back.

The sets are those of Reva's roles (cs3org/reva ``pkg/permissions/role.go``,
``NewViewerRole``, ``NewEditorRole``, ``NewFileEditorRole``): a share carries
a ``ResourcePermissions`` message, not a role name, so a role is recognised
from the permissions a Stat returns by :func:`role_of`.
"""

from __future__ import annotations

from cs3.storage.provider.v1beta1 import resources_pb2 as storage

VIEWER = "viewer"
EDITOR = "editor"
FILE_EDITOR = "file-editor"
OWNER = "owner"
NONE = "none"

_VIEWER_FIELDS = (
    "get_path",
    "initiate_file_download",
    "list_container",
    "list_file_versions",
    "list_recycle",
    "stat",
)
_FILE_EDITOR_FIELDS = _VIEWER_FIELDS + (
    "initiate_file_upload",
    "restore_file_version",
    "restore_recycle_item",
)
_EDITOR_FIELDS = _FILE_EDITOR_FIELDS + (
    "create_container",
    "delete",
    "move",
    "purge_recycle",
)


def _permissions(fields: tuple[str, ...]) -> storage.ResourcePermissions:
    return storage.ResourcePermissions(**{name: True for name in fields})


def permissions_for(role: str) -> storage.ResourcePermissions:
    """The CS3 permission set of a share role (``viewer``, ``editor``, ``file-editor``, ``owner``)."""
    if role == VIEWER:
        return _permissions(_VIEWER_FIELDS)
    if role == EDITOR:
        return _permissions(_EDITOR_FIELDS)
    if role == FILE_EDITOR:
        return _permissions(_FILE_EDITOR_FIELDS)
    if role == OWNER:
        return owner_permissions()
    raise ValueError(f"unknown share role {role!r} (expected viewer, editor or file-editor)")


def owner_permissions() -> storage.ResourcePermissions:
    """Every permission: what an owner sees on her own files."""
    return storage.ResourcePermissions(**{f.name: True for f in storage.ResourcePermissions.DESCRIPTOR.fields})


def can_write(permissions: storage.ResourcePermissions) -> bool:
    """Whether these permissions allow changing a file's content."""
    return permissions.initiate_file_upload


def can_read(permissions: storage.ResourcePermissions) -> bool:
    return permissions.initiate_file_download and permissions.stat


def role_of(permissions: storage.ResourcePermissions) -> str:
    """Name the collaboration role a permission set gives: editor, viewer or none."""
    if can_write(permissions) and can_read(permissions):
        return EDITOR
    if can_read(permissions):
        return VIEWER
    return NONE
