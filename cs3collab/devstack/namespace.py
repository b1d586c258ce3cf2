"""Namespace operations: stat, list, create, delete, move, metadata.

Each function runs on the store thread (``Store.run(fn, ...)``) and follows
the permission checks of decomposedfs (cs3org/reva
pkg/storage/utils/decomposedfs/decomposedfs.go ``GetMD``, ``ListFolder``,
``CreateDir``, ``TouchFile``, ``Delete``, ``Move``; metadata.go for
arbitrary metadata, which needs the upload permission). Deletes are final:
there is no recycle bin.
"""

from __future__ import annotations

from cs3.storage.provider.v1beta1 import resources_pb2 as sp_res

from . import access as A
from .errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied, Unimplemented
from .store import DIR, FILE, HOMES_ID, ROOT_ID, Tree
from .tokens import Identity


def stat(tree: Tree, caller: Identity, ref: sp_res.Reference, md_keys=()) -> sp_res.ResourceInfo:
    node = A.existing(tree, caller, ref)
    acc = A.allowed(tree, caller, node, "stat")
    return A.info(tree, caller, node, acc, md_keys)


def list_container(tree: Tree, caller: Identity, ref: sp_res.Reference, md_keys=()) -> list[sp_res.ResourceInfo]:
    node = A.existing(tree, caller, ref)
    A.allowed(tree, caller, node, "list_container")
    if not node.is_dir:
        raise InvalidArgument(f"{node.name} is not a container")
    return [A.info(tree, caller, child, A.access(tree, caller, child), md_keys) for child in tree.children(node.id)]


def _creatable(tree: Tree, caller: Identity, ref: sp_res.Reference, needed: str) -> A.Target:
    target = A.locate(tree, caller, ref)
    if target.node is not None:
        A.allowed(tree, caller, target.node, "stat")
        raise AlreadyExists(f"{target.name} already exists")
    if target.parent is None:
        raise NotFound("parent folder not found")
    A.allowed(tree, caller, target.parent, needed)
    A.valid_name(target.name)
    return target


def create_container(tree: Tree, caller: Identity, ref: sp_res.Reference) -> None:
    target = _creatable(tree, caller, ref, "create_container")
    tree.create(target.parent, target.name, DIR)


def touch_file(tree: Tree, caller: Identity, ref: sp_res.Reference) -> None:
    target = _creatable(tree, caller, ref, "initiate_file_upload")
    empty = tree.uploads / f"touch-{target.parent.id}"
    empty.write_bytes(b"")
    tree.create(target.parent, target.name, FILE, tree.adopt_blob(empty), 0)


def _not_a_space_root(node) -> None:
    if node.parent_id in (None, ROOT_ID, HOMES_ID):
        raise PermissionDenied("a personal space root cannot be deleted or moved")


def delete(tree: Tree, caller: Identity, ref: sp_res.Reference, lock_id: str = "") -> None:
    node = A.existing(tree, caller, ref)
    A.allowed(tree, caller, node, "delete")
    _not_a_space_root(node)
    A.check_lock(tree, node, lock_id)
    doomed = tree.subtree(node)
    parent = tree.node(node.parent_id)
    for n in doomed:
        tree.drop_blob_later(n.blob_id)
        for (blob_id,) in tree.conn.execute("SELECT blob_id FROM versions WHERE node_id=?", (n.id,)):
            tree.drop_blob_later(blob_id)
        for table in ("metadata", "versions", "locks"):
            tree.conn.execute(f"DELETE FROM {table} WHERE node_id=?", (n.id,))
        tree.conn.execute("DELETE FROM received WHERE share_id IN (SELECT id FROM shares WHERE node_id=?)", (n.id,))
        tree.conn.execute("DELETE FROM shares WHERE node_id=?", (n.id,))
    for n in reversed(doomed):
        tree.conn.execute("DELETE FROM nodes WHERE id=?", (n.id,))
    tree.propagate(parent, -node.size)


def move(tree: Tree, caller: Identity, source: sp_res.Reference, destination: sp_res.Reference,
         lock_id: str = "") -> None:
    node = A.existing(tree, caller, source)
    A.allowed(tree, caller, node, "move")
    _not_a_space_root(node)
    target = A.locate(tree, caller, destination)
    if target.node is not None:
        raise AlreadyExists(f"{target.name} already exists")
    if target.parent is None:
        raise NotFound("destination folder not found")
    A.allowed(tree, caller, target.parent, "create_container" if node.is_dir else "initiate_file_upload")
    A.valid_name(target.name)
    if target.parent.space_id != node.space_id:
        raise Unimplemented("cross storage move not supported")
    if node.id in {n.id for n in tree.ancestors(target.parent)}:
        raise InvalidArgument("cannot move a folder into itself")
    A.check_lock(tree, node, lock_id)
    old_parent = tree.node(node.parent_id)
    tree.conn.execute("UPDATE nodes SET parent_id=?, name=? WHERE id=?", (target.parent.id, target.name, node.id))
    tree.propagate(old_parent, -node.size)
    tree.propagate(tree.node(target.parent.id), node.size)


def set_metadata(tree: Tree, caller: Identity, ref: sp_res.Reference, entries: dict[str, str],
                 lock_id: str = "") -> None:
    node = A.existing(tree, caller, ref)
    A.allowed(tree, caller, node, "initiate_file_upload")
    A.check_lock(tree, node, lock_id)
    for key, value in entries.items():
        if not key:
            raise InvalidArgument("empty metadata key")
        tree.conn.execute("INSERT OR REPLACE INTO metadata (node_id, key, value) VALUES (?,?,?)",
                          (node.id, key, value))


def unset_metadata(tree: Tree, caller: Identity, ref: sp_res.Reference, keys: list[str],
                   lock_id: str = "") -> None:
    node = A.existing(tree, caller, ref)
    A.allowed(tree, caller, node, "initiate_file_upload")
    A.check_lock(tree, node, lock_id)
    for key in keys:
        tree.conn.execute("DELETE FROM metadata WHERE node_id=? AND key=?", (node.id, key))
