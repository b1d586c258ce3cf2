"""A shared kernel's working folder: the shared resource copied from CS3, and written back.

Code in a notebook reads and writes files beside it by relative path
(``open("events.csv")``). The kernel runs in a sandbox with no network and
no CS3 credentials, so it sees a plain local folder, its *workspace*:

- ``pull()`` copies the notebook's shared folder (``authority.scope_root``:
  the parent folder the scoped session can see; nothing when the share is
  the notebook alone) into ``root``, streamed file by file, the notebook
  itself left out (the room owns it);
- ``push()`` writes back what changed or is new, each file as a new CS3
  version, with ``if_match`` on the etag it was pulled at (so a file changed
  in CS3 meanwhile is never overwritten) or ``if_not_exist`` for a new file
  (so a file someone else created meanwhile is not either), and never over a
  lock held by someone else. What was not written is in ``skipped`` with the
  reason in words. Deletions are not propagated: a file removed in the
  kernel stays in CS3 (nothing is lost by a stray ``rm``).

All CS3 access goes through the scoped session (exactly the shared resource,
never a participant's own token). Sizes are capped (``max_bytes`` for the
whole workspace, ``max_files``).
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import anyio
from cs3.storage.provider.v1beta1 import resources_pb2 as storage

from cs3collab.cs3 import AlreadyExists, CS3Error, FailedPrecondition, Locked, NotFound, PermissionDenied, Session
from cs3collab.cs3.refs import RefLike, format_resource_id

from .authority import is_space_root

log = logging.getLogger("cs3collab.kernels.workspace")

IGNORED = frozenset({".ipynb_checkpoints", "__pycache__", ".matplotlib", ".cache", ".local", ".ipython"})


@dataclass
class _Known:
    etag: str
    mtime_ns: int
    size: int


class Workspace:
    """The kernel's working folder for one notebook.

    Args:
        session: the scoped session (authority = exactly the shared resource).
        resource_id: the notebook (the room key).
        root: the local folder (created; the kernel's ``cwd``).
        lock_id: the lock id the room holds (files locked with it may be written).
        max_bytes: most bytes pulled or pushed in all (0 = no cap).
        max_files: most files pulled or pushed (0 = no cap).
    """

    def __init__(self, session: Session, resource_id: RefLike, root: Path, *, lock_id: str | None = None,
                 max_bytes: int = 1024**3, max_files: int = 10_000) -> None:
        self.session = session
        self.resource_id = resource_id
        self.root = Path(root)
        self.lock_id = lock_id
        self.max_bytes = max_bytes
        self.max_files = max_files
        self.skipped = {}
        self._folder = None
        self._notebook = None
        self._known = {}

    @property
    def folder(self) -> storage.ResourceInfo | None:
        """The shared folder the workspace mirrors (None: the notebook alone is shared)."""
        return self._folder

    def _where(self) -> str:
        return format_resource_id(self._folder.id) if self._folder is not None else "-"

    # -- pull --------------------------------------------------------------

    async def pull(self) -> None:
        """Copy the shared folder into ``root`` (see module docstring)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._notebook = await self.session.files.stat(self.resource_id)
        parent = self._notebook.parent_id
        self._folder = None
        if parent.opaque_id and not is_space_root(parent):
            try:
                self._folder = await self.session.files.stat(parent)
            except (NotFound, PermissionDenied):
                self._folder = None
        self._known.clear()
        if self._folder is None:
            log.info("workspace pulled nothing root=- reason=notebook-shared-alone workspace=%s", self.root)
            return
        total = files = 0
        pending = [PurePosixPath(".")]
        while pending:
            rel_dir = pending.pop()
            for info in await self.session.files.list((self._folder.id, f"./{rel_dir}")):
                rel = rel_dir / info.name
                if info.name in IGNORED:
                    continue
                local = self.root / rel
                if info.type == storage.RESOURCE_TYPE_CONTAINER:
                    local.mkdir(exist_ok=True)
                    pending.append(rel)
                    continue
                if info.id.opaque_id == self._notebook.id.opaque_id:
                    continue
                if (self.max_bytes and total + info.size > self.max_bytes) or (self.max_files and files >= self.max_files):
                    self.skipped[str(rel)] = "not copied: the workspace size limit was reached"
                    log.warning("workspace file not pulled root=%s path=%s reason=size-limit", self._where(), rel)
                    continue
                await self.session.files.download_to((self._folder.id, f"./{rel}"), local)
                st = local.stat()
                self._known[str(rel)] = _Known(info.etag, st.st_mtime_ns, st.st_size)
                total += st.st_size
                files += 1
        log.info("workspace pulled root=%s files=%d bytes=%d workspace=%s", self._where(), files, total, self.root)

    # -- push --------------------------------------------------------------

    async def push(self) -> list[str]:
        """Write back new and changed files; returns the relative paths written.
        ``skipped`` then holds, for this push, each file not written and why."""
        self.skipped = {}
        changed = await anyio.to_thread.run_sync(self._scan)
        if self._folder is None:
            for rel, _ in changed:
                self.skipped[rel] = "not saved: only the notebook is shared, there is no folder to write to"
            return []
        written: list[str] = []
        total = 0
        for rel, st in changed:
            if self.max_bytes and total + st.st_size > self.max_bytes:
                self.skipped[rel] = "not saved: the workspace size limit was reached"
                continue
            if self.max_files and len(written) >= self.max_files:
                self.skipped[rel] = "not saved: too many files"
                continue
            reason = await self._write(rel, st)
            if reason is None:
                written.append(rel)
                total += st.st_size
            else:
                self.skipped[rel] = reason
                log.warning("workspace file not pushed root=%s path=%s reason=%r", self._where(), rel, reason)
        if written:
            log.info("workspace pushed root=%s files=%d bytes=%d", self._where(), len(written), total)
        return written

    def _scan(self) -> list[tuple[str, os.stat_result]]:
        """New or changed regular files under root (symlinks never followed)."""
        found = []
        notebook = self._notebook.name if self._notebook is not None else None
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if d not in IGNORED and not os.path.islink(os.path.join(dirpath, d)))
            for name in sorted(filenames):
                path = Path(dirpath) / name
                rel = path.relative_to(self.root).as_posix()
                if rel == notebook or name in IGNORED:
                    continue
                st = path.lstat()
                if not path.is_file() or path.is_symlink():
                    continue
                known = self._known.get(rel)
                if known is not None and (known.mtime_ns, known.size) == (st.st_mtime_ns, st.st_size):
                    continue
                found.append((rel, st))
        return found

    async def _write(self, rel: str, st: os.stat_result) -> str | None:
        """Upload one file; None when written, else why not."""
        assert self._folder is not None
        ref = (self._folder.id, f"./{rel}")
        try:
            await self._ensure_parents(rel)
            known = self._known.get(rel)
            lock_id = ""
            try:
                remote = await self.session.files.stat(ref)
            except NotFound:
                remote = None
            if remote is not None:
                if remote.lock.lock_id and remote.lock.lock_id != self.lock_id:
                    holder = remote.lock.app_name or "another application"
                    return f"not saved: the file is locked by {holder}"
                lock_id = remote.lock.lock_id or ""
                if known is None:
                    return "not saved: someone else created this file in the meantime"
                if remote.etag != known.etag:
                    return "not saved: the file was changed in storage in the meantime"
            options = {"if_match": known.etag} if remote is not None else {"if_not_exist": True}
            await self.session.files.upload_file(ref, self.root / rel, lock_id=lock_id, **options)
            info = await self.session.files.stat(ref)
        except Locked:
            return "not saved: the file is locked by someone else"
        except (FailedPrecondition, AlreadyExists):
            return "not saved: the file was changed in storage in the meantime"
        except PermissionDenied:
            return "not saved: the share does not allow writing"
        except CS3Error as e:
            return f"not saved: storage refused it ({e.__class__.__name__})"
        after = (self.root / rel).stat()
        self._known[rel] = _Known(info.etag, after.st_mtime_ns, after.st_size)
        return None

    async def _ensure_parents(self, rel: str) -> None:
        assert self._folder is not None
        parts = PurePosixPath(rel).parts[:-1]
        for i in range(1, len(parts) + 1):
            sub = "/".join(parts[:i])
            try:
                await self.session.files.mkdir((self._folder.id, f"./{sub}"))
            except AlreadyExists:
                pass

    async def close(self) -> None:
        """Remove the local copy (push first to keep changes)."""
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(self.root, ignore_errors=True))
