"""Sent and received OCM shares: tables in the site's SQLite database.

The tables live in ``devstack.sqlite3`` next to the tree, and every call
runs on the store thread inside the store's transaction (``Store.run``), so
the access check of a federated token can ask "is this share still active?"
with one primary-key lookup in the same transaction (``check_share_scope``).

As Reva's repositories (pkg/ocm/share/repository/json, sql): one active
share per (owner, resource, grantee) (Reva's ShareKey); removal is a soft
delete (state "removed", as the sql repository), so a secret is never valid
again; a received share is unique per (sender domain, providerId, grantee).
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from cs3.identity.user.v1beta1 import resources_pb2 as user_res
from cs3.sharing.ocm.v1beta1 import resources_pb2 as ocm_res
from cs3.storage.provider.v1beta1 import resources_pb2 as sp_res
from cs3.types.v1beta1 import types_pb2

from .errors import AlreadyExists, Unauthenticated
from .ocm_model import new_share_id, normalize_domain, now_ts, resource_key, user_key

SHARE_ACTIVE = "active"
SHARE_REMOVED = "removed"

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS ocm_sent_shares (
        id TEXT PRIMARY KEY, token TEXT NOT NULL UNIQUE, resource_key TEXT NOT NULL,
        owner_key TEXT NOT NULL, creator_key TEXT NOT NULL, grantee_key TEXT NOT NULL,
        role TEXT NOT NULL, remote_domain TEXT NOT NULL, state TEXT NOT NULL, expiration INTEGER,
        ctime REAL NOT NULL, mtime REAL NOT NULL, removed_at REAL,
        recipient_display_name TEXT NOT NULL DEFAULT '', share BLOB NOT NULL)""",
    """CREATE UNIQUE INDEX IF NOT EXISTS ocm_sent_active_key
        ON ocm_sent_shares(owner_key, resource_key, grantee_key) WHERE state = 'active'""",
    "CREATE INDEX IF NOT EXISTS ocm_sent_resource ON ocm_sent_shares(resource_key)",
    """CREATE TABLE IF NOT EXISTS ocm_received_shares (
        id TEXT PRIMARY KEY, grantee_key TEXT NOT NULL, sender_domain TEXT NOT NULL,
        remote_share_id TEXT NOT NULL, state INTEGER NOT NULL, ctime REAL NOT NULL, mtime REAL NOT NULL,
        share BLOB NOT NULL, UNIQUE (sender_domain, remote_share_id, grantee_key))""",
    "CREATE INDEX IF NOT EXISTS ocm_received_grantee ON ocm_received_shares(grantee_key)",
)
_UNEXPIRED = "(expiration IS NULL OR expiration = 0 OR expiration > ?)"


def create_tables(conn: sqlite3.Connection) -> None:
    """Create the OCM tables (idempotent; one statement at a time so that it
    may run inside the store's transaction)."""
    for statement in SCHEMA:
        conn.execute(statement)


def check_share_scope(conn: sqlite3.Connection, share_id: str) -> str:
    """The per-call check of an ``ocmshare:<id>`` token scope: the share must
    still be active and unexpired, else Unauthenticated. Returns the share's
    role *now* (viewer or editor): the one place that decides what an OCM
    token may do, so ``UpdateOCMShare`` changes live sessions at once."""
    row = conn.execute(f"SELECT role FROM ocm_sent_shares WHERE id = ? AND state = 'active' AND {_UNEXPIRED}",
                       (share_id, int(time.time()))).fetchone()
    if row is None:
        raise Unauthenticated("the OCM share of this token was removed or has expired")
    return row[0]


@dataclass
class SentShare:
    """A share created here for a user of a peer site."""

    share: ocm_res.Share
    role: str
    remote_domain: str
    state: str = SHARE_ACTIVE
    recipient_display_name: str = ""
    removed_at: float | None = None

    @property
    def id(self) -> str:
        return self.share.id.opaque_id

    @property
    def secret(self) -> str:
        return self.share.token

    @property
    def active(self) -> bool:
        return self.state == SHARE_ACTIVE

    def expired(self, now: float | None = None) -> bool:
        exp = self.share.expiration.seconds if self.share.HasField("expiration") else 0
        return bool(exp) and exp <= (time.time() if now is None else now)


@dataclass
class ReceivedRecord:
    """A share a peer site sent to a local user."""

    share: ocm_res.ReceivedShare
    sender_domain: str

    @property
    def id(self) -> str:
        return self.share.id.opaque_id

    def secrets(self) -> list[str]:
        out = []
        for p in self.share.protocols:
            which = p.WhichOneof("term")
            if which == "webdav_options":
                out.append(p.webdav_options.shared_secret)
            elif which == "webapp_options":
                out.append(p.webapp_options.shared_secret)
        return [s for s in out if s]


class OCMStore:
    """Synchronous queries over the site's connection; use only on the store
    thread (``Store.run``), where each call is one transaction."""

    _SENT_COLS = "role, remote_domain, state, removed_at, recipient_display_name, share"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._db = conn

    # -- sent shares ----------------------------------------------------------------

    def insert_sent(self, record: SentShare) -> SentShare:
        s = record.share
        if not s.id.opaque_id or not s.token:
            raise ValueError("share needs an id and a token")
        now = time.time()
        exp = s.expiration.seconds if s.HasField("expiration") else None
        try:
            self._db.execute(
                "INSERT INTO ocm_sent_shares (id, token, resource_key, owner_key, creator_key, grantee_key,"
                " role, remote_domain, state, expiration, ctime, mtime, removed_at, recipient_display_name,"
                " share) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (s.id.opaque_id, s.token, resource_key(s.resource_id), user_key(s.owner), user_key(s.creator),
                 user_key(s.grantee.user_id), record.role, normalize_domain(record.remote_domain), record.state,
                 exp, now, now, record.removed_at, record.recipient_display_name, s.SerializeToString()))
        except sqlite3.IntegrityError:
            raise AlreadyExists("share already exists") from None
        return record

    def _sent(self, where: str, args: tuple) -> list[SentShare]:
        rows = self._db.execute(
            f"SELECT {self._SENT_COLS} FROM ocm_sent_shares WHERE {where} ORDER BY ctime, id", args).fetchall()
        return [SentShare(ocm_res.Share.FromString(blob), role, domain, state, display, removed_at)
                for role, domain, state, removed_at, display, blob in rows]

    def get_sent(self, share_id: str, *, include_removed: bool = False) -> SentShare | None:
        rows = self._sent("id = ?", (share_id,))
        return rows[0] if rows and (include_removed or rows[0].active) else None

    def get_sent_by_token(self, token: str) -> SentShare | None:
        """The active share whose secret is ``token``."""
        rows = self._sent("token = ? AND state = 'active'", (token,)) if token else []
        return rows[0] if rows else None

    def get_sent_by_key(self, owner: user_res.UserId, resource_id: sp_res.ResourceId,
                        grantee: user_res.UserId) -> SentShare | None:
        """The active share for (owner or creator, resource, grantee): Reva's ShareKey."""
        k = user_key(owner)
        rows = self._sent("state = 'active' AND resource_key = ? AND grantee_key = ? AND (owner_key = ? OR "
                          "creator_key = ?)", (resource_key(resource_id), user_key(grantee), k, k))
        return rows[0] if rows else None

    def list_sent_for_user(self, user_id: user_res.UserId) -> list[SentShare]:
        """Active shares the user owns or created."""
        k = user_key(user_id)
        return self._sent("state = 'active' AND (owner_key = ? OR creator_key = ?)", (k, k))

    def remove_sent(self, share_id: str) -> bool:
        now = time.time()
        cur = self._db.execute("UPDATE ocm_sent_shares SET state = 'removed', removed_at = ?, mtime = ?"
                               " WHERE id = ? AND state = 'active'", (now, now, share_id))
        return cur.rowcount == 1

    def update_sent_expiration(self, share_id: str, expiration: int | None) -> bool:
        rec = self.get_sent(share_id)
        if rec is None:
            return False
        if expiration:
            rec.share.expiration.CopyFrom(types_pb2.Timestamp(seconds=expiration))
        else:
            rec.share.ClearField("expiration")
        rec.share.mtime.CopyFrom(now_ts())
        self._db.execute("UPDATE ocm_sent_shares SET expiration = ?, mtime = ?, share = ? WHERE id = ?",
                         (expiration or None, time.time(), rec.share.SerializeToString(), share_id))
        return True

    def update_sent_access(self, share_id: str, methods: list[ocm_res.AccessMethod], role: str) -> SentShare | None:
        """Replace the access methods (and so the role) of an active share."""
        rec = self.get_sent(share_id)
        if rec is None:
            return None
        del rec.share.access_methods[:]
        rec.share.access_methods.extend(methods)
        rec.share.mtime.CopyFrom(now_ts())
        rec.role = role
        self._db.execute("UPDATE ocm_sent_shares SET role = ?, mtime = ?, share = ? WHERE id = ?",
                         (role, time.time(), rec.share.SerializeToString(), share_id))
        return rec

    # -- received shares -------------------------------------------------------------

    def upsert_received(self, share: ocm_res.ReceivedShare, sender_domain: str) -> ReceivedRecord:
        """Store a received share; a repeated notification for the same
        (sender domain, providerId, grantee) updates the stored one
        (protocols, name, expiration) and keeps its id, ctime and state."""
        domain = normalize_domain(sender_domain)
        gkey = user_key(share.grantee.user_id)
        now = time.time()
        row = self._db.execute("SELECT share FROM ocm_received_shares WHERE sender_domain = ? AND "
                               "remote_share_id = ? AND grantee_key = ?",
                               (domain, share.remote_share_id, gkey)).fetchone()
        if row is not None:
            old = ocm_res.ReceivedShare.FromString(row[0])
            share.id.CopyFrom(old.id)
            share.ctime.CopyFrom(old.ctime)
            share.state = old.state
            share.mtime.CopyFrom(now_ts(now))
            self._db.execute("UPDATE ocm_received_shares SET mtime = ?, share = ? WHERE id = ?",
                             (now, share.SerializeToString(), share.id.opaque_id))
        else:
            if not share.id.opaque_id:
                share.id.opaque_id = new_share_id()
            share.ctime.CopyFrom(now_ts(now))
            share.mtime.CopyFrom(now_ts(now))
            self._db.execute(
                "INSERT INTO ocm_received_shares (id, grantee_key, sender_domain, remote_share_id, state,"
                " ctime, mtime, share) VALUES (?,?,?,?,?,?,?,?)",
                (share.id.opaque_id, gkey, domain, share.remote_share_id, int(share.state), now, now,
                 share.SerializeToString()))
        return ReceivedRecord(share, domain)

    def _received(self, where: str, args: tuple) -> list[ReceivedRecord]:
        rows = self._db.execute(f"SELECT sender_domain, share FROM ocm_received_shares WHERE {where} "
                                "ORDER BY ctime, id", args).fetchall()
        return [ReceivedRecord(ocm_res.ReceivedShare.FromString(blob), domain) for domain, blob in rows]

    def list_received(self, grantee: user_res.UserId) -> list[ReceivedRecord]:
        return self._received("grantee_key = ?", (user_key(grantee),))

    def get_received(self, share_id: str, grantee: user_res.UserId) -> ReceivedRecord | None:
        rows = self._received("id = ? AND grantee_key = ?", (share_id, user_key(grantee)))
        return rows[0] if rows else None

    def find_received(self, sender_domain: str, remote_share_id: str) -> list[ReceivedRecord]:
        return self._received("sender_domain = ? AND remote_share_id = ?",
                              (normalize_domain(sender_domain), remote_share_id))

    def set_received_state(self, rec: ReceivedRecord, state: int) -> ReceivedRecord:
        rec.share.state = state
        rec.share.mtime.CopyFrom(now_ts())
        self._db.execute("UPDATE ocm_received_shares SET state = ?, mtime = ?, share = ? WHERE id = ?",
                         (int(state), time.time(), rec.share.SerializeToString(), rec.id))
        return rec

    def delete_received(self, share_id: str) -> bool:
        return self._db.execute("DELETE FROM ocm_received_shares WHERE id = ?", (share_id,)).rowcount == 1
