"""OCM invitations: how users of two sites become each other's contacts.

Follows Reva's invite manager (internal/grpc/services/ocminvitemanager/
ocminvitemanager.go, token.go), the ``/invite-accepted`` handler of ocmd
(internal/http/services/opencloudmesh/ocmd/invites.go) and the OCM spec
(``POST /invite-accepted``); an invitation may come as the OCM 1.4
invite string (base64url of ``token@provider``, :func:`cs3collab.cs3.invites.parse_invite`)
at ForwardInvite and at ``/invite-accepted``:

1. einstein at A generates a token (``generate``): a UUID, valid for the
   site's token lifetime (Reva's ``token_expiration``, 24 h by default).
2. He gives it to marie at B out of band; B's gateway ``forward``s it: a
   ``POST {A's endPoint}/invite-accepted`` with marie's id, mail and name.
3. A (``accept``) checks that B is a trusted provider, that the token exists
   and is unexpired, stores marie as einstein's accepted user and answers
   with einstein's id, mail and name; B stores einstein as marie's.

Accepted users are federated users: ``UserId{idp: their site's domain,
opaque_id: their id there, type: USER_TYPE_FEDERATED}``. Tokens stay valid
until they expire (several people may accept one), as in Reva.

Tables live in the site's SQLite database (``devstack.sqlite3``); every
query runs on the store thread (``Store.run``). Methods raise the devstack's
typed errors; the gateway and the HTTP handler translate them.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import Any

from cs3.identity.user.v1beta1 import resources_pb2 as user_res
from cs3.ocm.invite.v1beta1 import resources_pb2 as invite_res
from cs3.types.v1beta1 import types_pb2

from cs3collab.cs3.errors import CS3Error
from cs3collab.cs3.invites import parse_invite

from .errors import AlreadyExists, DevstackError, InvalidArgument, NotFound, PermissionDenied
from .ocm_model import federated_user_id, normalize_domain, user_key
from .ocm_peers import OCMSender, TrustedPeers
from .store import Store
from .users import UserDirectory

log = logging.getLogger("cs3collab.devstack.ocm")

DEFAULT_TOKEN_LIFETIME = 24 * 3600  # Reva's ocminvitemanager token_expiration default "24h"

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS ocm_invite_tokens (
        token TEXT PRIMARY KEY, user_key TEXT NOT NULL, expiration INTEGER NOT NULL,
        ctime REAL NOT NULL, invite BLOB NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS ocm_invite_tokens_user ON ocm_invite_tokens(user_key)",
    """CREATE TABLE IF NOT EXISTS ocm_accepted_users (
        user_key TEXT NOT NULL, remote_key TEXT NOT NULL, ctime REAL NOT NULL, remote BLOB NOT NULL,
        PRIMARY KEY (user_key, remote_key))""",
)


def create_invite_tables(conn: sqlite3.Connection) -> None:
    for statement in SCHEMA:
        conn.execute(statement)


class InviteStore:
    """Synchronous queries; use only on the store thread."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._db = conn

    def add_token(self, token: invite_res.InviteToken) -> None:
        self._db.execute("INSERT INTO ocm_invite_tokens (token, user_key, expiration, ctime, invite)"
                         " VALUES (?,?,?,?,?)", (token.token, user_key(token.user_id), token.expiration.seconds,
                                                 time.time(), token.SerializeToString()))

    def get_token(self, token: str) -> invite_res.InviteToken | None:
        row = self._db.execute("SELECT invite FROM ocm_invite_tokens WHERE token = ?", (token,)).fetchone()
        return invite_res.InviteToken.FromString(row[0]) if row else None

    def list_tokens(self, user_id: user_res.UserId) -> list[invite_res.InviteToken]:
        rows = self._db.execute("SELECT invite FROM ocm_invite_tokens WHERE user_key = ? ORDER BY ctime, token",
                                (user_key(user_id),)).fetchall()
        return [invite_res.InviteToken.FromString(r[0]) for r in rows]

    def add_accepted(self, owner: user_res.UserId, remote: user_res.User) -> bool:
        """False when ``remote`` was already ``owner``'s accepted user."""
        try:
            self._db.execute("INSERT INTO ocm_accepted_users (user_key, remote_key, ctime, remote) VALUES (?,?,?,?)",
                             (user_key(owner), user_key(remote.id), time.time(), remote.SerializeToString()))
        except sqlite3.IntegrityError:
            return False
        return True

    def list_accepted(self, owner: user_res.UserId) -> list[user_res.User]:
        rows = self._db.execute("SELECT remote FROM ocm_accepted_users WHERE user_key = ? ORDER BY ctime",
                                (user_key(owner),)).fetchall()
        return [user_res.User.FromString(r[0]) for r in rows]

    def get_accepted(self, owner: user_res.UserId, remote: user_res.UserId) -> user_res.User | None:
        row = self._db.execute("SELECT remote FROM ocm_accepted_users WHERE user_key = ? AND remote_key = ?",
                               (user_key(owner), user_key(remote))).fetchone()
        return user_res.User.FromString(row[0]) if row else None

    def delete_accepted(self, owner: user_res.UserId, remote: user_res.UserId) -> bool:
        return self._db.execute("DELETE FROM ocm_accepted_users WHERE user_key = ? AND remote_key = ?",
                                (user_key(owner), user_key(remote))).rowcount == 1


def _in_store(store: Store, fn, *args):
    return store.run(lambda tree: fn(InviteStore(tree.conn), *args))


def _matches(user: user_res.User, query: str) -> bool:
    q = query.lower()
    return not q or any(q in f.lower() for f in (user.display_name, user.mail, user.id.opaque_id, user.id.idp,
                                                 f"{user.id.opaque_id}@{user.id.idp}"))


@dataclass
class InviteManager:
    """Invite tokens and accepted users of one site.

    Args:
        domain: this site's OCM domain (``recipientProvider`` when we forward).
        store: the site's store.
        users: the site's users (the initiator's details in an answer).
        peers: trusted peers: only they may accept our tokens, and we
            forward only to them.
        sender: the HTTP client towards peers.
        token_lifetime: seconds a token is valid when the caller names none.
    """

    domain: str
    store: Store
    users: UserDirectory
    peers: TrustedPeers
    sender: OCMSender
    token_lifetime: float = DEFAULT_TOKEN_LIFETIME

    # -- the inviting side ----------------------------------------------------------

    async def generate(self, caller: user_res.User, description: str = "",
                       expires_in: float | None = None) -> invite_res.InviteToken:
        """GenerateInviteToken: a UUID valid ``expires_in`` seconds (default:
        the site's lifetime); federated callers cannot invite."""
        if caller.id.type == user_res.USER_TYPE_FEDERATED:
            raise PermissionDenied("federated users cannot generate invite tokens")
        lifetime = self.token_lifetime if expires_in is None else expires_in
        if lifetime <= 0:
            raise InvalidArgument("an invite token must be valid for a positive number of seconds")
        token = invite_res.InviteToken(
            token=str(uuid.uuid4()), user_id=caller.id, description=description,
            expiration=types_pb2.Timestamp(seconds=int(time.time() + lifetime)))
        await _in_store(self.store, InviteStore.add_token, token)
        log.info("ocm invite generated user=%s expires=%d", caller.username, token.expiration.seconds)
        return token

    async def list_tokens(self, caller: user_res.User) -> list[invite_res.InviteToken]:
        """ListInviteTokens: the caller's tokens, expired ones included (Reva's repositories)."""
        return await _in_store(self.store, InviteStore.list_tokens, caller.id)

    async def accept(self, token: str, remote: user_res.User) -> user_res.User:
        """AcceptInvite (and ``POST /invite-accepted``): ``remote`` accepted
        ``token``. Refusals: provider not trusted → PermissionDenied; unknown
        or expired token → InvalidArgument; accepted before → AlreadyExists.
        Name and mail may be empty (Reva requires only token, userID and
        recipientProvider). Returns the initiator (this site's user)."""
        domain = normalize_domain(remote.id.idp)
        if not token or not remote.id.opaque_id or not domain:
            raise InvalidArgument("token, userID and recipientProvider must not be empty")
        if domain == normalize_domain(self.domain) or not self.peers.is_trusted(domain):
            raise PermissionDenied(f"provider not trusted: {domain}")
        # Reva 3.x ocminvitemanager AcceptInvite (aa6e45a): an unknown and an
        # expired token are the same INVALID_ARGUMENT (ocmd answers 400)
        invite = await _in_store(self.store, InviteStore.get_token, self._own_token(token))
        if invite is None or time.time() >= invite.expiration.seconds:  # isTokenValid: now < expiration
            raise InvalidArgument("token invalid or not found")
        initiator = self.users.get(invite.user_id)
        contact = user_res.User(id=federated_user_id(remote.id.opaque_id, domain), mail=remote.mail,
                                display_name=remote.display_name, username=remote.username)
        if not await _in_store(self.store, InviteStore.add_accepted, initiator.id, contact):
            raise AlreadyExists("user already known")
        log.info("ocm invite accepted user=%s contact=%s@%s", initiator.username, contact.id.opaque_id, domain)
        return initiator

    def _own_token(self, token: str) -> str:
        """The token inside an OCM 1.4 invite string that names this site
        (a receiver may forward the string as it was pasted); else ``token``."""
        try:
            inner, provider = parse_invite(token)
        except CS3Error:
            return token
        return inner if normalize_domain(provider) == normalize_domain(self.domain) else token

    # -- the invited side -----------------------------------------------------------

    async def forward(self, caller: user_res.User, token: str, origin_domain: str) -> user_res.User:
        """ForwardInvite: tell the origin site that ``caller`` accepts its
        ``token``; store and return the inviting user as the caller's contact.
        Refusals as Reva maps the origin's answer: 400 → InvalidArgument
        ("token not valid"), 404 → NotFound, 409 → AlreadyExists, 401/403 →
        PermissionDenied; an untrusted origin → PermissionDenied."""
        if caller.id.type == user_res.USER_TYPE_FEDERATED:
            raise PermissionDenied("federated users cannot accept invitations")
        if not token:
            raise InvalidArgument("invite token is required")
        try:  # OCM 1.4: the invite string names the origin itself
            token, origin_domain = parse_invite(token, normalize_domain(origin_domain))
        except CS3Error as e:
            raise InvalidArgument(e.message) from None
        domain = normalize_domain(origin_domain)
        if not domain:
            raise InvalidArgument("the origin provider's domain is required")
        if not self.peers.is_trusted(domain):
            raise PermissionDenied(f"provider not trusted: {domain}")
        body = {"recipientProvider": normalize_domain(self.domain), "token": token,
                "userID": caller.id.opaque_id, "email": caller.mail,
                "name": caller.display_name or caller.username}
        answer = await self._post_invite_accepted(domain, body)
        user_id = answer.get("userID")
        if not isinstance(user_id, str) or not user_id:
            raise DevstackError(f"{domain} answered /invite-accepted without a userID")
        contact = user_res.User(id=federated_user_id(user_id, domain),
                                mail=answer.get("email") if isinstance(answer.get("email"), str) else "",
                                display_name=answer.get("name") if isinstance(answer.get("name"), str) else "")
        # a contact known already is fine here (Reva skips ErrUserAlreadyAccepted)
        await _in_store(self.store, InviteStore.add_accepted, caller.id, contact)
        log.info("ocm invite forwarded user=%s contact=%s@%s", caller.username, user_id, domain)
        return contact

    async def _post_invite_accepted(self, domain: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = await self.sender.post(domain, "/invite-accepted", body)
        if resp.status_code == 200:
            try:
                doc = resp.json()
            except ValueError:
                doc = None
            if not isinstance(doc, dict):
                raise DevstackError(f"{domain} answered /invite-accepted with no JSON object")
            return doc
        refusals = {400: (InvalidArgument, "token not valid"), 404: (NotFound, "token not found"),
                    409: (AlreadyExists, "user already accepted"), 401: (PermissionDenied, "service not trusted"),
                    403: (PermissionDenied, "service not trusted")}
        if resp.status_code in refusals:
            cls, what = refusals[resp.status_code]
            raise cls(f"{domain}: {what}")
        raise DevstackError(f"{domain} answered /invite-accepted with HTTP {resp.status_code}")

    # -- contacts -------------------------------------------------------------------

    async def find_accepted(self, caller: user_res.User, query: str = "") -> list[user_res.User]:
        """FindAcceptedUsers: the caller's contacts whose name, mail, id,
        domain or ``id@domain`` contain ``query`` (case-insensitive; empty = all)."""
        return [u for u in await _in_store(self.store, InviteStore.list_accepted, caller.id) if _matches(u, query)]

    async def get_accepted(self, caller: user_res.User, remote: user_res.UserId) -> user_res.User:
        found = await _in_store(self.store, InviteStore.get_accepted, caller.id, remote)
        if found is None:
            raise NotFound(f"no accepted user {remote.opaque_id}@{remote.idp}")
        return found

    async def delete_accepted(self, caller: user_res.User, remote: user_res.UserId) -> None:
        """DeleteAcceptedUser: idempotent, as Reva's repositories."""
        if await _in_store(self.store, InviteStore.delete_accepted, caller.id, remote):
            log.info("ocm contact removed user=%s contact=%s@%s", caller.username, remote.opaque_id, remote.idp)
