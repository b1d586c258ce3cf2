"""The CS3 lock a live room holds on its file.

While a room lives it holds a WRITE lock as app ``cs3collab``, so that other
CS3 apps (WOPI office apps, the web editor, a sync client that honours
locks) know the file is being edited, and uploads without our lock id are
refused. Reva binds a lock to the user *and* the app that took it: only that
user may refresh or release it, while anyone presenting the lock id may
upload. So the keeper remembers which session took the lock, refreshes with
it, and when that session can no longer act (the user left and the token
expired) lets the lock run out and takes a new one with another editor.

A lock held by anything else makes the room read-only (see
:meth:`LockKeeper.foreign_holder`); the service never writes over it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

from cs3collab.cs3 import CS3Error, FailedPrecondition, Session

log = logging.getLogger("cs3collab.service.locking")


class LockKeeper:
    """Takes, refreshes and releases a room's lock.

    Args:
        resource_id: the file.
        app_name: the app name the lock is taken under.
        lifetime: seconds a lock lives unless refreshed; it is refreshed
            every third of that.
        where: how logs name the file.
    """

    def __init__(self, resource_id, app_name: str, lifetime: float, where: str) -> None:
        self.resource_id = resource_id
        self.app_name = app_name
        self.lifetime = lifetime
        self.where = where
        self.lock_id: str | None = None
        self.holder: Session | None = None
        self.held = False  # the file carries our lock id, as far as we last saw
        self._stopped = False
        self.on_lost: Callable[[], None] | None = None  # told when a refresh fails (the lock is gone)
        self._names: dict[tuple[str, str], str] = {}  # lock holders' display names, by user id

    def adopt(self, lock_id: str, holder: Session | None) -> None:
        """Use ``lock_id`` as our lock's id: the room's id kept in the journal,
        so a lock left by a previous run (even one killed) is known as ours:
        uploads present it, and it is taken back rather than waited out."""
        self.lock_id = lock_id
        self.holder = holder

    @property
    def holds(self) -> bool:
        """Whether the file carries our lock and our last take or refresh of it
        worked: nobody can upload, delete or move the file through CS3 without
        presenting our lock id, so an idle room may poll it rarely."""
        return self.held and self.holder is not None

    @property
    def upload_lock_id(self) -> str:
        """The lock id an upload must present: ours while the file carries it,
        else none (CS3 refuses a lock id on an unlocked file, as Reva does)."""
        return self.lock_id if self.held and self.lock_id else ""

    def observe(self, info) -> None:
        """Note from a Stat whether the file carries our lock."""
        self.held = bool(self.lock_id) and info.lock.lock_id == self.lock_id

    def _foreign_lock(self, info):
        lock = info.lock
        return lock if lock.lock_id and lock.lock_id != self.lock_id else None

    async def learn_holder(self, info, session: Session) -> None:
        """Look up the display name of a foreign lock's user once (GetUser),
        so that :meth:`foreign_holder` names a person rather than an id."""
        lock = self._foreign_lock(info)
        if lock is None or not lock.HasField("user"):
            return
        key = (lock.user.idp, lock.user.opaque_id)
        if key in self._names:
            return
        try:
            user = await session.users.get(lock.user)
            self._names[key] = user.display_name or user.username or lock.user.opaque_id
        except CS3Error as exc:
            log.info("lock holder unknown path=%s user=%s error=%s", self.where, lock.user.opaque_id, exc)
            self._names[key] = lock.user.opaque_id

    def foreign_holder(self, info) -> str | None:
        """Who holds the file's lock when it is not us: "app (user's name)", else None."""
        lock = self._foreign_lock(info)
        if lock is None:
            return None
        if lock.HasField("user"):
            user = self._names.get((lock.user.idp, lock.user.opaque_id), lock.user.opaque_id)
        else:
            user = "unknown user"
        return f"{lock.app_name or 'another app'} ({user})"

    async def run(self, sessions: Callable[[], list[Session]]) -> None:
        """Hold the lock until cancelled: take it, refresh it, retake it."""
        interval = max(self.lifetime / 3, 0.5)
        while not self._stopped:
            if self.lock_id is None or self.holder is None:
                await self.acquire(sessions())
            else:
                await self._refresh()
            await asyncio.sleep(interval)  # refresh timer

    async def acquire(self, candidates: list[Session]) -> None:
        """Take the lock as the first of ``candidates`` who can (or take ours back)."""
        for session in candidates:
            lock_id = self.lock_id or uuid.uuid4().hex
            try:
                await session.locks.set(
                    self.resource_id, lock_id=lock_id, app_name=self.app_name, lifetime=self.lifetime
                )
            except FailedPrecondition:
                # Locked. If it is our lock (same id, left by a previous run or
                # by a refresh that failed), its user may take it back by
                # refreshing it; anyone else's makes the room read-only (poll).
                if not self.lock_id or not await self._take_back(session):
                    continue
                return
            except CS3Error as exc:
                log.info("cannot lock file=%s user=%s error=%s", self.where, session.username, exc)
                continue
            self.lock_id, self.holder, self.held = lock_id, session, True
            log.info("locked file=%s lock_id=%s user=%s app=%s", self.where, lock_id, session.username, self.app_name)
            return

    async def _take_back(self, session: Session) -> bool:
        """Refresh our lock id as ``session``: works when that user took it."""
        assert self.lock_id is not None
        try:
            await session.locks.refresh(
                self.resource_id, lock_id=self.lock_id, app_name=self.app_name, lifetime=self.lifetime
            )
        except CS3Error:
            return False
        self.holder, self.held = session, True
        log.info("lock taken back file=%s lock_id=%s user=%s", self.where, self.lock_id, session.username)
        return True

    async def _refresh(self) -> None:
        assert self.holder is not None and self.lock_id is not None
        try:
            await self.holder.locks.refresh(
                self.resource_id, lock_id=self.lock_id, app_name=self.app_name, lifetime=self.lifetime
            )
        except CS3Error as exc:
            # keep the id: uploads may still present it until the lock expires;
            # a later acquire retakes the lock (under the same id) with another editor
            log.warning("lock refresh failed file=%s lock_id=%s error=%s", self.where, self.lock_id, exc)
            self.holder = None
            if self.on_lost is not None:
                self.on_lost()

    async def release(self) -> None:
        """Release the lock if we hold it (best effort: it expires anyway)."""
        self._stopped = True
        if self.lock_id and self.holder is not None:
            try:
                await self.holder.locks.unlock(self.resource_id, lock_id=self.lock_id, app_name=self.app_name)
                log.info("unlocked file=%s lock_id=%s", self.where, self.lock_id)
            except CS3Error as exc:
                log.warning("unlock failed file=%s lock_id=%s error=%s", self.where, self.lock_id, exc)
        self.lock_id = None
        self.holder = None
        self.held = False
