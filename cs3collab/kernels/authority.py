"""The CS3 authority of a shared kernel: a session scoped to exactly the shared resource.

Many people run code in one kernel, so the kernel's workspace must never act
with a participant's own token (einstein's token reaches all of his home).
``scoped_session`` turns the session of the editor who starts the kernel into
a session that reaches only the *shared resource* of the notebook:

- the **scope root** is the notebook's parent folder when the starter can
  see it and it is not a personal space root (a home); otherwise only the
  notebook itself. So a notebook in a shared folder ``higgs-analysis/`` gets
  that folder (its data beside it), and a notebook shared alone, or lying at
  the top of a home, gets nothing but itself;
- the **role** is editor when the starter may write the scope root, else
  viewer;
- a **local** starter (a CS3 token of this site) mints an *app password*
  with a ``resourceinfo:`` token scope of that root and role, as Reva's
  ``reva app-tokens-create --path <root>:w`` does (cmd/reva/app-tokens-create.go,
  ``scope.AddResourceInfoScope`` in pkg/auth/scope/resourceinfo.go,
  applicationauth ``GenerateAppPassword``), then logs in with it
  (``appauth``, pkg/auth/manager/appauth/appauth.go). The session renews
  itself with that password until it expires (``lifetime``);
- a **federated** starter (an ``ocmshares`` session from another site) has no
  account here and cannot mint app passwords (Reva's ``ocmshare`` scope does
  not allow it): the kernel's authority is then the OCM share itself, a
  fresh ``ocmshares`` login with the share's id and secret, whose token scope
  ``ocmshare:<id>`` is exactly the shared resource with the share's current
  role (pkg/auth/scope/ocmshare.go). It ends when that share is revoked.

Either way the resulting token cannot list or read anything outside the
scope root (tests/kernels/test_authority.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from cs3.auth.provider.v1beta1 import resources_pb2 as auth_res
from cs3.storage.provider.v1beta1 import resources_pb2 as storage
from cs3.types.v1beta1 import types_pb2 as types
from google.protobuf import json_format

from cs3collab.cs3 import CS3Client, NotFound, PermissionDenied, Session
from cs3collab.cs3.refs import RefLike, format_resource_id

log = logging.getLogger("cs3collab.kernels.authority")

APP_PASSWORD_LABEL = "cs3collab shared kernel"
DEFAULT_LIFETIME = 7 * 24 * 3600.0


@dataclass(frozen=True)
class ScopeRoot:
    """What a kernel's authority reaches: ``info`` (the folder or the notebook)
    and the role there."""

    info: storage.ResourceInfo
    editor: bool

    @property
    def is_folder(self) -> bool:
        return self.info.type == storage.RESOURCE_TYPE_CONTAINER


def is_space_root(rid: storage.ResourceId) -> bool:
    """A personal space's root (a home) has the space id as its opaque id."""
    return bool(rid.space_id) and rid.opaque_id == rid.space_id


async def scope_root(session: Session, resource_id: RefLike) -> ScopeRoot:
    """The shared resource of a notebook, as ``session`` sees it (see module docstring)."""
    notebook = await session.files.stat(resource_id)
    root = notebook
    parent = notebook.parent_id
    if parent.opaque_id and not is_space_root(parent):
        try:
            root = await session.files.stat(parent)
        except (NotFound, PermissionDenied):
            root = notebook
    return ScopeRoot(root, bool(root.permission_set.initiate_file_upload))


def resource_info_scope(info: storage.ResourceInfo, role: int) -> dict[str, auth_res.Scope]:
    """A ``resourceinfo:`` token scope of one resource (Reva's ``AddResourceInfoScope``:
    the JSON of a ResourceInfo holding only ``id`` and ``path``)."""
    value = json_format.MessageToJson(storage.ResourceInfo(id=info.id, path=info.path),
                                      preserving_proto_field_name=True).encode()
    return {f"resourceinfo:{format_resource_id(info.id)}":
            auth_res.Scope(resource=types.OpaqueEntry(decoder="json", value=value), role=role)}


async def scoped_session(client: CS3Client, starter: Session, resource_id: RefLike, *,
                         lifetime: float = DEFAULT_LIFETIME) -> Session:
    """A session that reaches exactly the shared resource of the notebook
    ``resource_id``, derived from the session of the editor who starts its
    kernel (a local user's, or a federated ``ocmshares`` one).

    Args:
        client: the service's CS3 client (the site's gateway).
        starter: the starting editor's session.
        resource_id: the notebook (the room key).
        lifetime: seconds the app password of a local starter stays valid
            (the session renews its token with it until then).

    Raises the CS3 errors of the calls (``PermissionDenied`` when the starter
    may not read the notebook).
    """
    root = await scope_root(starter, resource_id)
    role = auth_res.ROLE_EDITOR if root.editor else auth_res.ROLE_VIEWER
    what = format_resource_id(root.info.id)
    credentials = starter.credentials
    if credentials is not None and credentials.auth_type in ("ocmshares", "ocmexchangedtoken"):
        # a fresh login of the same kind (the share's secret, or the token of the
        # OCM code flow): its scope is the share, whatever the starter does next
        session = await client.authenticate(credentials.auth_type, credentials.client_id, credentials.client_secret)
        log.info("kernel authority from OCM share share=%s root=%s user=%s idp=%s",
                 credentials.client_id, what, starter.user.username, starter.user.id.idp)
        return session
    password = await starter.app_passwords.generate(
        resource_info_scope(root.info, role), label=f"{APP_PASSWORD_LABEL} {format_resource_id(root.info.id)}",
        lifetime=lifetime)
    session = await client.authenticate("appauth", starter.user.username, password.password)
    log.info("kernel authority from app password root=%s role=%s user=%s folder=%s",
             what, "editor" if root.editor else "viewer", starter.user.username, root.is_folder)
    return session
