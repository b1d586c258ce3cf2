"""Who a participant is, as the CS3 gateway says, and what they may do.

The service never trusts what a client claims: each connection presents a
CS3 access token (or, across sites, an OCM share secret exchanged for one),
the gateway says whose it is (WhoAmI), and a Stat *as that user* says what
the user may do with the file. The role follows from the permission set the
gateway returns: upload permission makes an editor, download only a viewer.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from cs3.identity.user.v1beta1 import resources_pb2 as identity_pb2
from cs3.storage.provider.v1beta1 import resources_pb2 as storage

from cs3collab.cs3 import CS3Client, PermissionDenied, Session
from cs3collab.cs3 import roles as cs3_roles
from cs3collab.cs3.refs import RefLike, describe

log = logging.getLogger("cs3collab.service.identity")

EDITOR = cs3_roles.EDITOR
VIEWER = cs3_roles.VIEWER


@dataclass(frozen=True)
class Identity:
    """A CS3 user as the collaboration service shows them to others."""

    username: str
    display_name: str
    idp: str
    opaque_id: str
    federated: bool

    @property
    def uid(self) -> str:
        """Unique across institutions: ``opaque_id@idp``."""
        return f"{self.opaque_id}@{self.idp}"

    @property
    def label(self) -> str:
        """How logs name the user: ``username@idp``."""
        return f"{self.username}@{self.idp}"

    def presence(self, claimed: dict | None = None) -> dict:
        """The awareness ``user`` field this participant may show: who they are
        (``username`` as the Jupyter identity writes it, ``<username>@<idp>``,
        names, institution), keeping only cosmetic fields of ``claimed``."""
        kept = {k: v for k, v in (claimed or {}).items() if k in ("color", "initials", "avatar_url")}
        return {**kept, "username": self.label, "name": self.display_name, "display_name": self.display_name,
                "idp": self.idp}

    def vouches(self, claimed: object) -> bool:
        """Whether an awareness ``user`` field names this participant."""
        return isinstance(claimed, dict) and claimed.get("username") == self.label

    @classmethod
    def from_session(cls, session: Session) -> Identity:
        user = session.user
        username = user.username or user.id.opaque_id
        if user.id.idp and username.endswith("@" + user.id.idp):
            username = username[: -len(user.id.idp) - 1]  # an OCM guest's username is her OCM address
        return cls(
            username=username,
            display_name=user.display_name or user.username or user.id.opaque_id,
            idp=user.id.idp,
            opaque_id=user.id.opaque_id,
            federated=user.id.type == identity_pb2.USER_TYPE_FEDERATED,
        )


@dataclass(frozen=True)
class Access:
    """A user's role on one file, and the file as they see it."""

    role: str
    info: storage.ResourceInfo

    @property
    def can_edit(self) -> bool:
        return self.role == EDITOR


class RecentAccess:
    """A session PUT's access answer, lent to the WebSocket join that follows it.

    The stock frontend asks for a session (PUT) and connects the room's
    WebSocket a few milliseconds later; both checked the user's access with
    a CS3 Stat. The join now takes the PUT's answer if it is at most ``ttl``
    seconds old (once: a reconnect Stats again). A revocation is still
    applied within the re-check interval: a room's participants are re-checked
    on its own timer, whenever they joined; what changes is only that a join
    within ``ttl`` of a PUT made before the revocation is let in, then removed
    at that re-check, as a participant already connected would be. ``ttl`` 0
    (the service's re-checks off) lends nothing.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._lent: dict[tuple[str, str], tuple[float, Access]] = {}  # in the order lent: oldest first

    def lend(self, token: str, file_id: str, access: Access) -> None:
        if self.ttl <= 0:
            return
        now = time.monotonic()
        while self._lent:  # expired ones first (they are the oldest)
            key, (until, _) = next(iter(self._lent.items()))
            if until > now:
                break
            del self._lent[key]
        self._lent.pop((token, file_id), None)
        self._lent[(token, file_id)] = (now + self.ttl, access)

    def take(self, token: str, file_id: str) -> Access | None:
        until, access = self._lent.pop((token, file_id), (0.0, None))
        return access if until > time.monotonic() else None


class Authenticator:
    """Turns bearer tokens into CS3 sessions, asking the gateway (WhoAmI).

    Args:
        client: the service's open CS3 client.
        cache_seconds: how long a token's answer is reused before the gateway
            is asked again (0 = ask every time). Expiry and revocation are
            still caught by every CS3 call made with the token.
    """

    def __init__(self, client: CS3Client, cache_seconds: float = 10.0) -> None:
        self._client = client
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Session]] = {}

    async def authenticate(self, token: str) -> Session:
        """The session of ``token``; raises ``Unauthenticated`` when the gateway refuses it."""
        now = time.monotonic()
        cached = self._cache.get(token)
        if cached is not None and cached[0] > now:
            return cached[1]
        session = await self._client.session_for_token(token)
        if self._cache_seconds > 0:
            if len(self._cache) > 10_000:
                self._cache = {t: e for t, e in self._cache.items() if e[0] > now}
            self._cache[token] = (now + self._cache_seconds, session)
        return session


async def resolve_access(session: Session, ref: RefLike, metadata_keys: tuple[str, ...] = ()) -> Access:
    """Stat ``ref`` as the session's user and name their role.

    Raises ``NotFound`` (no such file, or invisible to the user) or
    ``PermissionDenied`` (visible but neither readable nor writable).
    """
    info = await session.files.stat(ref, metadata_keys=metadata_keys)
    role = cs3_roles.role_of(info.permission_set)
    if role == cs3_roles.NONE:
        raise PermissionDenied(
            "no read access", operation="Stat", target=describe(ref), code="PERMISSION_DENIED"
        )
    return Access(role, info)
