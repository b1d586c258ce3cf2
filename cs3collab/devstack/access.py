"""Reference resolution, permission resolution and ResourceInfo building.

- References: ``Reference{path: "/abs/path"}`` (cleaned lexically like Go's
  ``path.Clean``, so ``..`` can never climb above ``/``) or
  ``Reference{resource_id, path: "." | "./rel"}``. In a relative path each
  segment is looked up as a child name, so ``..`` never leaves the node the
  reference starts from (decomposedfs' lookup walks names the same way).
- Namespace: ``/home/<username>`` is each user's personal space; an accepted
  received share with mount point ``M`` is reachable at ``/Shares/M`` by its
  recipient.
- Permissions: the owner of a space has all of them; a user share (to the
  user or to one of the user's groups) on the node or any ancestor adds the
  share's permissions; a restricted token (see ``tokens.Identity``) only
  has its scopes' roles below its scoped resources; a scope that must still
  be backed by something stored here (an ``ocmshare:<id>`` scope: the share
  must be active and unexpired) is checked in the same transaction each
  time it is used (``SCOPE_CHECKS``), so revoking works at once; that check
  also gives the role the scope has now (an OCM share's current role), so a
  changed role applies to tokens minted before.
- Locks expire lazily: an expired lock is removed when next read, as
  decomposedfs' ``ReadLock`` does (pkg/storage/utils/decomposedfs/node/locks.go).
"""

from __future__ import annotations

import json
import mimetypes
import posixpath
import time
from dataclasses import dataclass

from cs3.sharing.collaboration.v1beta1 import resources_pb2 as share_res
from cs3.storage.provider.v1beta1 import resources_pb2 as sp_res
from cs3.types.v1beta1 import types_pb2

from . import permissions as P
from .errors import Aborted, InvalidArgument, Locked, NotFound, PreconditionFailed
from .ocm_model import AUTH_ROLES
from .ocm_store import check_share_scope
from .store import HOMES_ID, ROOT_ID, Node, Tree, user_key
from .tokens import Identity, _scope_resource_id

# scope kinds whose token keeps the user's own permissions as a ceiling: the
# scope only narrows them (Reva's resourceinfo scope, app passwords)
NARROWING_SCOPES = frozenset({"resourceinfo"})


def scope_resource_id(scope) -> sp_res.ResourceId | None:
    """The resource a token scope names (share, OCM share or ResourceInfo JSON)."""
    return _scope_resource_id(scope)

SHARES_ROOT = "Shares"
DIR_MIME = "httpd/unix-directory"
mimetypes.add_type("application/x-ipynb+json", ".ipynb")


@dataclass(frozen=True)
class Target:
    """What a reference points at: ``node`` if it exists, else the would-be
    ``parent`` and ``name`` (``parent`` None if that is missing too)."""

    node: Node | None
    parent: Node | None
    name: str
    deepest: Node | None = None  # deepest existing node on the way


@dataclass(frozen=True)
class Access:
    """The caller's permissions on a node and how they were obtained:
    ``via`` is the node id of the share or scope root (None for the owner)."""

    perms: P.Perms
    via: str | None = None
    share_id: str | None = None


# scope kind (name before ":") → check(tree, rest of the name), raising
# Unauthenticated when what granted the scope is gone, and returning the role
# (auth ROLE_*) the scope grants now, or None to keep the role it was minted with.
SCOPE_CHECKS = {
    "ocmshare": lambda tree, share_id: AUTH_ROLES[check_share_scope(tree.conn, share_id)],
}


def check_scopes(tree: Tree, caller: Identity) -> dict[str, int]:
    """Run the checks of the caller's scopes; scope name → current role for
    the scopes whose check names one."""
    current = {}
    for name in caller.scopes:
        kind, _, ref = name.partition(":")
        check = SCOPE_CHECKS.get(kind)
        if check is not None:
            role = check(tree, ref)
            if role is not None:
                current[name] = role
    return current


def grantee_keys(caller: Identity) -> list[str]:
    return ["user:" + user_key(caller.user.id)] + ["group:" + g for g in caller.user.groups]


def valid_name(name: str) -> str:
    """Refuse names that are not a single path segment."""
    if name in ("", ".", "..") or "/" in name or "\x00" in name or len(name.encode()) > 255:
        raise InvalidArgument(f"invalid name {name!r}")
    return name


def locate(tree: Tree, caller: Identity, ref: sp_res.Reference) -> Target:
    """Resolve a reference to a Target (see module docstring)."""
    if ref is None:
        raise InvalidArgument("missing reference")
    rid, path = ref.resource_id, ref.path
    if rid.opaque_id:
        if rid.storage_id and rid.storage_id != tree.storage_id:
            raise NotFound("resource id of another storage")
        base = tree.node(rid.opaque_id)
        if base is None or (rid.space_id and rid.space_id != base.space_id):
            raise NotFound("resource id not found")
        if path in ("", "."):
            segments = []
        elif path.startswith("./"):
            segments = [s for s in path[2:].split("/") if s not in ("", ".")]
        else:
            raise InvalidArgument("a path relative to a resource id must start with '.'")
    elif path.startswith("/"):
        segments = [s for s in posixpath.normpath(path).split("/") if s]
        base = tree.node(ROOT_ID)
        if segments and segments[0] == SHARES_ROOT:
            if len(segments) < 2:
                raise NotFound("/Shares is not a container")
            base = _mounted_share_node(tree, caller, segments[1])
            segments = segments[2:]
    else:
        raise InvalidArgument("reference needs a resource id or an absolute path")
    if not segments:
        parent = tree.node(base.parent_id) if base.parent_id else None
        return Target(base, parent, base.name)
    node = deepest = base
    for seg in segments[:-1]:
        node = tree.child(node.id, seg) if node and node.is_dir else None
        deepest = node or deepest
    if node is None or not node.is_dir:
        return Target(None, None, segments[-1], deepest)
    return Target(tree.child(node.id, segments[-1]), node, segments[-1], node)


def missing_parent(tree: Tree, caller: Identity, target: Target) -> Exception:
    """The error for a target whose parent folder does not exist: NotFound
    outside any personal space (Reva's gateway finds no storage provider
    for the path) or where the caller cannot see the deepest existing
    folder; else PreconditionFailed (decomposedfs' upload.go)."""
    deepest = target.deepest
    if deepest is None or deepest.id in (ROOT_ID, HOMES_ID) or "stat" not in access(tree, caller, deepest).perms:
        return NotFound("parent folder not found")
    return PreconditionFailed("parent folder not found")


def existing(tree: Tree, caller: Identity, ref: sp_res.Reference) -> Node:
    target = locate(tree, caller, ref)
    if target.node is None:
        raise NotFound(f"{ref.path or 'resource'} not found")
    return target.node


def _mounted_share_node(tree: Tree, caller: Identity, mount: str) -> Node:
    row = tree.conn.execute(
        "SELECT s.node_id FROM received r JOIN shares s ON s.id = r.share_id "
        "WHERE r.user_key=? AND r.state=? AND r.mount_point=?",
        (user_key(caller.user.id), share_res.SHARE_STATE_ACCEPTED, mount)).fetchone()
    node = tree.node(row[0]) if row else None
    if node is None:
        raise NotFound(f"no share mounted at /Shares/{mount}")
    return node


def access(tree: Tree, caller: Identity, node: Node) -> Access:
    """The caller's permissions on ``node`` (see module docstring)."""
    chain = tree.ancestors(node)
    ids = [n.id for n in chain]
    roots = caller.scoped_roots()
    if roots is not None:
        current = check_scopes(tree, caller)
        perms, via, own = P.NONE, None, None
        for name, root_id, minted in roots:
            role = current.get(name, minted)
            if root_id in ids:
                granted = P.role_perms(role)
                if name.partition(":")[0] in NARROWING_SCOPES:
                    if own is None:
                        own = _own_access(tree, caller, node, ids).perms
                    granted &= own
                perms |= granted
                if via is None or ids.index(root_id) < ids.index(via):
                    via = root_id
        return Access(perms, via)
    return _own_access(tree, caller, node, ids)


def _own_access(tree: Tree, caller: Identity, node: Node, ids: list[str]) -> Access:
    """The user's own permissions on ``node`` (owner, or user/group shares on
    it or an ancestor), whatever the token's scopes."""
    if node.owner_opaque and (node.owner_idp, node.owner_opaque) == caller.user_key:
        return Access(P.OWNER)
    keys = grantee_keys(caller)
    rows = tree.conn.execute(
        f"SELECT id, node_id, perms FROM shares WHERE node_id IN ({','.join('?' * len(ids))}) "
        f"AND grantee_key IN ({','.join('?' * len(keys))}) AND (expires IS NULL OR expires > ?)",
        (*ids, *keys, time.time())).fetchall()
    perms, via, share_id = P.NONE, None, None
    for sid, node_id, names in rows:
        perms |= frozenset(n for n in names.split(",") if n)
        if via is None or ids.index(node_id) < ids.index(via):
            via, share_id = node_id, sid
    return Access(perms, via, share_id)


def allowed(tree: Tree, caller: Identity, node: Node, needed: str) -> Access:
    acc = access(tree, caller, node)
    P.require(acc.perms, needed, node.name or "/")
    return acc


def display_path(tree: Tree, caller: Identity, node: Node, acc: Access) -> str:
    """The path as the caller sees it: absolute in the owner's namespace,
    ``/Shares/<mount>/...`` through an accepted share, else ``./...``
    relative to the shared or scoped resource."""
    if acc.via is None:
        return tree.abs_path(node)
    rel = tree.rel_path(node, acc.via)
    if acc.share_id:
        row = tree.conn.execute(
            "SELECT mount_point FROM received WHERE share_id=? AND user_key=? AND state=?",
            (acc.share_id, user_key(caller.user.id), share_res.SHARE_STATE_ACCEPTED)).fetchone()
        if row and row[0]:
            return f"/{SHARES_ROOT}/{row[0]}" + (f"/{rel}" if rel else "")
    return "./" + rel if rel else "."


def resource_id(tree: Tree, node: Node) -> sp_res.ResourceId:
    return sp_res.ResourceId(storage_id=tree.storage_id, space_id=node.space_id, opaque_id=node.id)


def timestamp(ns: int) -> types_pb2.Timestamp:
    return types_pb2.Timestamp(seconds=ns // 1_000_000_000, nanos=ns % 1_000_000_000)


def current_lock(tree: Tree, node_id: str) -> sp_res.Lock | None:
    row = tree.conn.execute("SELECT lock, expires FROM locks WHERE node_id=?", (node_id,)).fetchone()
    if row is None:
        return None
    if row[1] is not None and row[1] <= time.time():
        tree.conn.execute("DELETE FROM locks WHERE node_id=?", (node_id,))
        return None
    return sp_res.Lock.FromString(row[0])


def check_lock(tree: Tree, node: Node, lock_id: str) -> None:
    """decomposedfs' ``CheckLock``: a locked node needs the matching lock
    id (none: Locked; another: Aborted); a lock id on an unlocked node is
    Aborted too."""
    lock = current_lock(tree, node.id)
    if lock is not None:
        if not lock_id:
            raise Locked(f"{node.name} is locked")
        if lock_id != lock.lock_id:
            raise Aborted("mismatching lock id")
    elif lock_id:
        raise Aborted(f"{node.name} is not locked")


def info(tree: Tree, caller: Identity, node: Node, acc: Access, md_keys=()) -> sp_res.ResourceInfo:
    """Build the ResourceInfo the caller sees for ``node``."""
    ri = sp_res.ResourceInfo(
        type=sp_res.RESOURCE_TYPE_CONTAINER if node.is_dir else sp_res.RESOURCE_TYPE_FILE,
        id=resource_id(tree, node),
        etag=node.etag,
        mime_type=DIR_MIME if node.is_dir else (mimetypes.guess_type(node.name)[0] or "application/octet-stream"),
        mtime=timestamp(node.mtime_ns),
        path=display_path(tree, caller, node, acc),
        permission_set=P.to_proto(acc.perms),
        size=node.size,
        owner=node.owner,
        name=node.name,
    )
    if node.parent_id and node.parent_id not in (ROOT_ID, HOMES_ID):
        parent = tree.node(node.parent_id)
        ri.parent_id.CopyFrom(resource_id(tree, parent))
    lock = current_lock(tree, node.id)
    if lock is not None:
        ri.lock.CopyFrom(lock)
        ri.opaque.map["lock"].CopyFrom(types_pb2.OpaqueEntry(
            decoder="json", value=json.dumps({"lock_id": lock.lock_id, "app_name": lock.app_name}).encode()))
    keys = set(md_keys)
    every = not keys or "*" in keys  # decomposedfs: no keys or "*" = all
    rows = tree.conn.execute("SELECT key, value FROM metadata WHERE node_id=?", (node.id,)).fetchall()
    for key, value in rows:
        if every or key in keys:
            ri.arbitrary_metadata.metadata[key] = value
    return ri
