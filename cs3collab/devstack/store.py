"""The devstack's storage: SQLite tree + content blobs, on one worker thread.

Layout of the data folder (everything the devstack writes lives here):

- ``devstack.sqlite3``: the namespace tree (nodes), arbitrary metadata,
  versions, locks, shares and received-share states.
- ``blobs/<2 hex>/<blob id>``: file contents, named by a random blob id, as
  decomposedfs stores blobs by id (cs3org/reva pkg/storage/utils/decomposedfs).
  A path given by a client never becomes a filesystem path, so nothing can
  be written outside the data folder.
- ``uploads/``: uploads in progress, moved into ``blobs/`` when complete.
- ``jwt-secret``: the token signing secret (see ``tokens.py``).

All store work runs on one dedicated thread (``Store.run``), inside one
SQLite transaction per call, so the event loop never blocks on disk and each
operation is atomic with respect to the others.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

from cs3.identity.user.v1beta1 import resources_pb2 as user_res

from .users import UserDirectory

T = TypeVar("T")

FILE = 1
DIR = 2
ROOT_ID = "root"
HOMES_ID = "home"
HOMES_NAME = "home"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    id TEXT PRIMARY KEY, parent_id TEXT, name TEXT NOT NULL, type INTEGER NOT NULL,
    space_id TEXT NOT NULL, owner_idp TEXT NOT NULL, owner_opaque TEXT NOT NULL, owner_type INTEGER NOT NULL,
    blob_id TEXT, size INTEGER NOT NULL DEFAULT 0, mtime_ns INTEGER NOT NULL, etag TEXT NOT NULL,
    UNIQUE (parent_id, name));
CREATE TABLE IF NOT EXISTS metadata (
    node_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (node_id, key));
CREATE TABLE IF NOT EXISTS versions (
    node_id TEXT NOT NULL, key TEXT NOT NULL, blob_id TEXT NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, PRIMARY KEY (node_id, key));
CREATE TABLE IF NOT EXISTS locks (node_id TEXT PRIMARY KEY, lock BLOB NOT NULL, expires REAL);
CREATE TABLE IF NOT EXISTS shares (
    id TEXT PRIMARY KEY, node_id TEXT NOT NULL, owner BLOB NOT NULL, creator BLOB NOT NULL,
    grantee BLOB NOT NULL, grantee_key TEXT NOT NULL, perms TEXT NOT NULL,
    ctime_ns INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, expires REAL,
    UNIQUE (node_id, grantee_key));
CREATE TABLE IF NOT EXISTS received (
    share_id TEXT NOT NULL, user_key TEXT NOT NULL, state INTEGER NOT NULL, mount_point TEXT NOT NULL,
    hidden INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (share_id, user_key));
"""


@dataclass(frozen=True)
class Node:
    """One row of the namespace tree."""

    id: str
    parent_id: str | None
    name: str
    type: int
    space_id: str
    owner_idp: str
    owner_opaque: str
    owner_type: int
    blob_id: str | None
    size: int
    mtime_ns: int
    etag: str

    @property
    def is_dir(self) -> bool:
        return self.type == DIR

    @property
    def owner(self) -> user_res.UserId:
        return user_res.UserId(idp=self.owner_idp, opaque_id=self.owner_opaque, type=self.owner_type)


def make_etag(node_id: str, mtime_ns: int) -> str:
    """A quoted md5 of node id and mtime, like decomposedfs' CalculateEtag."""
    return '"%s"' % hashlib.md5(f"{node_id}:{mtime_ns}".encode()).hexdigest()


def user_key(user_id: user_res.UserId) -> str:
    return f"{user_id.idp}\n{user_id.opaque_id}"


class Tree:
    """Synchronous primitives over the SQLite connection; only ever used on
    the store thread (see ``Store.run``)."""

    def __init__(self, conn: sqlite3.Connection, data_dir: Path, users: UserDirectory,
                 max_upload_size: int | None) -> None:
        self.conn = conn
        self.data_dir = data_dir
        self.blobs = data_dir / "blobs"
        self.uploads = data_dir / "uploads"
        self.users = users
        self.max_upload_size = max_upload_size
        self._unlink_after_commit: list[Path] = []
        self.storage_id = self._meta("storage_id", lambda: str(uuid.uuid4()))

    # -- setup ---------------------------------------------------------------

    def _meta(self, key: str, default: Callable[[], str]) -> str:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        if row:
            return row[0]
        value = default()
        self.conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
        return value

    def ensure_homes(self) -> None:
        """Create the root, ``/home`` and a home per known user (idempotent)."""
        system = user_res.UserId(idp=self.users.domain, opaque_id="", type=user_res.USER_TYPE_SERVICE)
        if self.node(ROOT_ID) is None:
            self._insert(ROOT_ID, None, "", DIR, ROOT_ID, system)
        if self.node(HOMES_ID) is None:
            self._insert(HOMES_ID, ROOT_ID, HOMES_NAME, DIR, ROOT_ID, system)
        for account in self.users.accounts:
            uid = account.user.id
            if self.node(uid.opaque_id) is None:
                self._insert(uid.opaque_id, HOMES_ID, account.user.username, DIR, uid.opaque_id, uid)

    # -- reads ---------------------------------------------------------------

    def node(self, node_id: str) -> Node | None:
        row = self.conn.execute("SELECT * FROM nodes WHERE id=?", (node_id,)).fetchone()
        return Node(*row) if row else None

    def child(self, parent_id: str, name: str) -> Node | None:
        row = self.conn.execute("SELECT * FROM nodes WHERE parent_id=? AND name=?", (parent_id, name)).fetchone()
        return Node(*row) if row else None

    def children(self, node_id: str) -> list[Node]:
        rows = self.conn.execute("SELECT * FROM nodes WHERE parent_id=? ORDER BY name", (node_id,)).fetchall()
        return [Node(*r) for r in rows]

    def ancestors(self, node: Node) -> list[Node]:
        """``node`` then its parents up to the root."""
        chain = [node]
        while chain[-1].parent_id is not None:
            parent = self.node(chain[-1].parent_id)
            if parent is None:
                break
            chain.append(parent)
        return chain

    def abs_path(self, node: Node) -> str:
        names = [n.name for n in reversed(self.ancestors(node)) if n.id != ROOT_ID]
        return "/" + "/".join(names)

    def rel_path(self, node: Node, root_id: str) -> str:
        """Path of ``node`` below ``root_id``: "" for the root itself."""
        names = []
        for n in self.ancestors(node):
            if n.id == root_id:
                break
            names.append(n.name)
        return "/".join(reversed(names))

    def subtree(self, node: Node) -> list[Node]:
        out, todo = [], [node]
        while todo:
            n = todo.pop()
            out.append(n)
            todo.extend(self.children(n.id))
        return out

    # -- writes --------------------------------------------------------------

    def _insert(self, node_id: str, parent_id: str | None, name: str, type_: int, space_id: str,
                owner: user_res.UserId, blob_id: str | None = None, size: int = 0) -> Node:
        mtime = time.time_ns()
        self.conn.execute(
            "INSERT INTO nodes VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (node_id, parent_id, name, type_, space_id, owner.idp, owner.opaque_id, owner.type,
             blob_id, size, mtime, make_etag(node_id, mtime)))
        return self.node(node_id)

    def create(self, parent: Node, name: str, type_: int, blob_id: str | None = None, size: int = 0) -> Node:
        owner = parent.owner
        node = self._insert(str(uuid.uuid4()), parent.id, name, type_, parent.space_id, owner, blob_id, size)
        self.propagate(parent, size)
        return node

    def bump(self, node: Node, **changes) -> Node:
        """Give ``node`` a new, strictly later mtime and a new etag, applying
        column ``changes`` at the same time."""
        mtime = max(time.time_ns(), node.mtime_ns + 1)
        changes.update(mtime_ns=mtime, etag=make_etag(node.id, mtime))
        cols = ", ".join(f"{k}=?" for k in changes)
        self.conn.execute(f"UPDATE nodes SET {cols} WHERE id=?", (*changes.values(), node.id))
        return self.node(node.id)

    def propagate(self, node: Node | None, size_diff: int) -> None:
        """Change mtime/etag (and size) of ``node`` and every ancestor, as
        decomposedfs' tree propagation does for tree mtime and tree size."""
        while node is not None:
            node = self.bump(node, size=node.size + size_diff) if node.is_dir else self.bump(node)
            node = self.node(node.parent_id) if node.parent_id else None

    # -- blobs ---------------------------------------------------------------

    def blob_path(self, blob_id: str) -> Path:
        return self.blobs / blob_id[:2] / blob_id

    def adopt_blob(self, tmp: Path) -> str:
        """Move a finished upload into the blob store; return its blob id."""
        blob_id = uuid.uuid4().hex
        dest = self.blob_path(blob_id)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)
        return blob_id

    def drop_blob_later(self, blob_id: str | None) -> None:
        if blob_id:
            self._unlink_after_commit.append(self.blob_path(blob_id))

    def after_commit(self) -> None:
        for path in self._unlink_after_commit:
            path.unlink(missing_ok=True)
        self._unlink_after_commit.clear()

    def after_rollback(self) -> None:
        self._unlink_after_commit.clear()


class Store:
    """Owns the data folder and the single store thread.

    Args:
        data_dir: the data folder (created if missing).
        users: the site's users; each gets a home at start.
        max_upload_size: largest accepted upload in bytes; None = no limit.
    """

    def __init__(self, data_dir: Path, users: UserDirectory, max_upload_size: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.users = users
        self.max_upload_size = max_upload_size
        self._executor: ThreadPoolExecutor | None = None
        self._tree: Tree | None = None

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    async def open(self) -> None:
        for sub in ("", "blobs", "uploads"):
            (self.data_dir / sub).mkdir(parents=True, exist_ok=True)
        for stale in self.uploads_dir.iterdir():
            stale.unlink(missing_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="devstack-store")
        await self.run(lambda tree: tree.ensure_homes())

    async def close(self) -> None:
        if self._executor is None:
            return
        executor, self._executor = self._executor, None
        await asyncio.get_running_loop().run_in_executor(executor, self._close_conn)
        executor.shutdown(wait=True)

    async def run(self, fn: Callable[..., T], *args, **kwargs) -> T:
        """Run ``fn(tree, *args, **kwargs)`` on the store thread in one
        transaction (rolled back if ``fn`` raises)."""
        if self._executor is None:
            raise RuntimeError("store is not open")
        call = functools.partial(self._call, lambda tree: fn(tree, *args, **kwargs))
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def _call(self, fn: Callable[[Tree], T]) -> T:
        tree = self._get_tree()
        tree.conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(tree)
        except BaseException:
            tree.conn.rollback()
            tree.after_rollback()
            raise
        tree.conn.commit()
        tree.after_commit()
        return result

    def _get_tree(self) -> Tree:
        if self._tree is None:
            conn = sqlite3.connect(self.data_dir / "devstack.sqlite3", isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
            self._tree = Tree(conn, self.data_dir, self.users, self.max_upload_size)
        return self._tree

    def _close_conn(self) -> None:
        if self._tree is not None:
            self._tree.conn.close()
            self._tree = None
