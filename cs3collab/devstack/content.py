"""File content: uploads, downloads and versions.

- Uploads follow decomposedfs (cs3org/reva pkg/storage/utils/decomposedfs/
  upload.go) behind the storage provider's ``InitiateFileUpload``
  (internal/grpc/services/storageprovider/storageprovider.go at the
  decomposedfs era): ``if_not_exist`` on an existing file is AlreadyExists,
  an ``if_match`` that differs from the current etag is PreconditionFailed,
  a missing parent folder is PreconditionFailed, a folder target is
  PreconditionFailed, the lock is checked with ``access.check_lock``. The
  preconditions travel in the transfer token and are checked again when the
  bytes arrive (the data server answers 412).
- Every overwrite keeps the previous content as a version unless versioning
  is disabled for that upload; version keys are
  ``<node id>.REVISION.<RFC 3339 mtime with nanoseconds>`` and versions list
  newest first (decomposedfs revisions.go, storageprovider ``descendingMtime``).
- ``restore_version`` turns the current content into a version, makes the
  chosen version current (dropping it from the list) and gives the file a new
  mtime and etag, as decomposedfs' ``RestoreRevision`` does.
"""

from __future__ import annotations

import time
from typing import BinaryIO

from cs3.storage.provider.v1beta1 import resources_pb2 as sp_res

from . import access as A
from .errors import Aborted, AlreadyExists, InvalidArgument, Locked, NotFound, PreconditionFailed, TooLarge
from .store import FILE, Node, Tree, make_etag
from .tokens import Identity


def version_key(node_id: str, mtime_ns: int) -> str:
    secs, nanos = divmod(mtime_ns, 1_000_000_000)
    return f"{node_id}.REVISION.{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(secs))}.{nanos:09d}Z"


def _check_size(tree: Tree, size: int | None) -> None:
    if size is not None and tree.max_upload_size is not None and size > tree.max_upload_size:
        raise TooLarge(f"upload of {size} bytes exceeds the limit of {tree.max_upload_size} bytes")


def initiate_upload(tree: Tree, caller: Identity, ref: sp_res.Reference, *, lock_id: str = "",
                    if_match: str = "", if_not_exist: bool = False, length: int | None = None) -> dict:
    """Check an upload request; return the transfer target to sign."""
    target = A.locate(tree, caller, ref)
    node = target.node
    if node is not None:
        A.allowed(tree, caller, node, "initiate_file_upload")
        if node.is_dir:
            raise PreconditionFailed("resource is not a file")
        if if_not_exist:
            raise AlreadyExists(f"{node.name} already exists")
        if if_match and if_match != node.etag:
            raise PreconditionFailed("etag mismatch")
        A.check_lock(tree, node, lock_id)
        parent_id = node.parent_id
    else:
        if target.parent is None:
            raise A.missing_parent(tree, caller, target)
        A.allowed(tree, caller, target.parent, "initiate_file_upload")
        A.valid_name(target.name)
        if if_match:
            raise PreconditionFailed("etag mismatch")
        if lock_id:
            raise Aborted(f"{target.name} is not locked")
        parent_id = target.parent.id
    _check_size(tree, length)
    return {"op": "upload", "node": node.id if node else None, "parent": parent_id, "name": target.name,
            "if_match": if_match, "if_not_exist": if_not_exist}


def finish_upload(tree: Tree, caller: Identity, target: dict, tmp, size: int, lock_id: str,
                  disable_versioning: bool) -> sp_res.ResourceInfo:
    """Commit an uploaded temp file as the new content of the target."""
    _check_size(tree, size)
    if target.get("node"):
        node = tree.node(target["node"])
        if node is None:
            raise NotFound("the upload target no longer exists")
    else:
        parent = tree.node(target.get("parent") or "")
        if parent is None or not parent.is_dir:
            raise PreconditionFailed("parent folder not found")
        node = tree.child(parent.id, target.get("name") or "")
    if node is None:
        A.allowed(tree, caller, parent, "initiate_file_upload")
        if target.get("if_match"):
            raise PreconditionFailed("etag mismatch")
        node = tree.create(parent, A.valid_name(target["name"]), FILE, tree.adopt_blob(tmp), size)
    else:
        acc = A.allowed(tree, caller, node, "initiate_file_upload")
        if node.is_dir:
            raise PreconditionFailed("resource is not a file")
        if target.get("if_not_exist"):
            raise PreconditionFailed(f"{node.name} already exists")
        if target.get("if_match") and target["if_match"] != node.etag:
            raise PreconditionFailed("etag mismatch")
        lock = A.current_lock(tree, node.id)
        if lock is not None and lock_id != lock.lock_id:
            raise Locked(f"{node.name} is locked")
        _write(tree, node, tree.adopt_blob(tmp), size, keep_old=not disable_versioning)
        node = tree.node(node.id)
        return A.info(tree, caller, node, acc)
    return A.info(tree, caller, node, A.access(tree, caller, node))


def _write(tree: Tree, node: Node, blob_id: str, size: int, keep_old: bool) -> None:
    if keep_old and node.blob_id:
        tree.conn.execute("INSERT INTO versions (node_id, key, blob_id, size, mtime_ns) VALUES (?,?,?,?,?)",
                          (node.id, version_key(node.id, node.mtime_ns), node.blob_id, node.size, node.mtime_ns))
    else:
        tree.drop_blob_later(node.blob_id)
    tree.bump(node, blob_id=blob_id, size=size)
    tree.propagate(tree.node(node.parent_id), size - node.size)


def list_versions(tree: Tree, caller: Identity, ref: sp_res.Reference) -> list[sp_res.FileVersion]:
    node = A.existing(tree, caller, ref)
    A.allowed(tree, caller, node, "list_file_versions")
    rows = tree.conn.execute("SELECT key, size, mtime_ns FROM versions WHERE node_id=? ORDER BY mtime_ns DESC",
                             (node.id,)).fetchall()
    return [sp_res.FileVersion(key=key, size=size, mtime=mtime // 1_000_000_000, etag=make_etag(node.id, mtime))
            for key, size, mtime in rows]


def restore_version(tree: Tree, caller: Identity, ref: sp_res.Reference, key: str, lock_id: str = "") -> None:
    node = A.existing(tree, caller, ref)
    A.allowed(tree, caller, node, "restore_file_version")
    A.check_lock(tree, node, lock_id)
    row = tree.conn.execute("SELECT blob_id, size FROM versions WHERE node_id=? AND key=?", (node.id, key)).fetchone()
    if row is None:
        raise NotFound(f"version {key} not found")
    tree.conn.execute("DELETE FROM versions WHERE node_id=? AND key=?", (node.id, key))
    _write(tree, node, row[0], row[1], keep_old=True)


def initiate_download(tree: Tree, caller: Identity, ref: sp_res.Reference, version: str = "") -> dict:
    """Check a download request; return the transfer target to sign."""
    node = A.existing(tree, caller, ref)
    A.allowed(tree, caller, node, "initiate_file_download")
    if node.is_dir:
        raise InvalidArgument(f"{node.name} is a folder; only files can be downloaded")
    if version:
        A.allowed(tree, caller, node, "list_file_versions")
        if tree.conn.execute("SELECT 1 FROM versions WHERE node_id=? AND key=?", (node.id, version)).fetchone() is None:
            raise NotFound(f"version {version} not found")
    return {"op": "download", "node": node.id, "version_key": version}


def open_download(tree: Tree, caller: Identity, target: dict) -> tuple[BinaryIO, dict]:
    """Open the bytes of a download target (current content or a version),
    re-checking the caller's permission. Returns the open file (the caller
    closes it) and the headers' values."""
    node = tree.node(target.get("node") or "")
    if node is None:
        raise NotFound("file not found")
    A.allowed(tree, caller, node, "initiate_file_download")
    blob_id, size, etag, mtime = node.blob_id, node.size, node.etag, node.mtime_ns
    if target.get("version_key"):
        A.allowed(tree, caller, node, "list_file_versions")
        row = tree.conn.execute("SELECT blob_id, size, mtime_ns FROM versions WHERE node_id=? AND key=?",
                                (node.id, target["version_key"])).fetchone()
        if row is None:
            raise NotFound("version not found")
        blob_id, size, mtime = row
        etag = make_etag(node.id, mtime)
    if blob_id is None:
        raise NotFound("file has no content")
    meta = {"size": size, "etag": etag, "mtime_ns": mtime,
            "file_id": f"{tree.storage_id}${node.space_id}!{node.id}", "name": node.name}
    return open(tree.blob_path(blob_id), "rb"), meta
