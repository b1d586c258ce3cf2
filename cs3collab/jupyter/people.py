"""People to share with, who a grantee or an owner is, and the shares a
user made, as CS3 knows them.

Used by :mod:`cs3collab.jupyter.sharing` and :mod:`cs3collab.jupyter.browse`:
the Share dialog's search merges three sources of the caller's site
(FindUsers, FindGroups, and the accepted users of OCM invitations: contacts
at other institutions); :class:`Names` names grantees, owners and lock
holders; :func:`grant_entries` is the one JSON shape of a share that the
Share dialog, "Shared by me" and File info list. Raises the CS3 client's
typed errors; the route modules translate them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from cs3.identity.user.v1beta1 import resources_pb2 as identity
from cs3.storage.provider.v1beta1 import resources_pb2 as storage

from cs3collab.cs3 import InvalidArgument, NotFound, PermissionDenied, Session, Unimplemented
from cs3collab.cs3.groups import group_id
from cs3collab.cs3.ocm import federated_user
from cs3collab.cs3.roles import EDITOR, VIEWER, role_of

log = logging.getLogger("cs3collab.jupyter.sharing")

MIN_QUERY = 2
"""Shorter queries find nobody (FindUsers on one letter is the whole site)."""


async def find_people(session: Session, query: str, *, limit: int) -> list[dict]:
    """Local users (never the caller), groups and federated contacts matching
    ``query``, at most ``limit`` of each, as the people route answers them.

    Groups and contacts are extras: a gateway that lacks them
    (Unimplemented) still finds users.
    """
    query = query.strip()
    if len(query) < MIN_QUERY:
        return []
    me = session.user.id

    async def optional(find):
        try:
            return await find
        except (Unimplemented, NotFound) as exc:
            log.debug("people search skipped a source user=%s: %s", session.username, exc)
            return []

    users, groups, contacts = await asyncio.gather(
        session.users.find(query),
        optional(session.groups.find(query)),
        optional(session.invites.find_accepted_users(query)),
    )
    found = [
        {"kind": "user", "id": u.id.opaque_id, "idp": u.id.idp, "username": u.username,
         "displayName": u.display_name or u.username, "mail": u.mail}
        for u in users
        if (u.id.idp, u.id.opaque_id) != (me.idp, me.opaque_id)
    ][:limit]
    found += [
        {"kind": "group", "id": g.id.opaque_id, "idp": g.id.idp,
         "displayName": g.display_name or g.group_name or g.id.opaque_id}
        for g in groups[:limit]
    ]
    found += [
        {"kind": "federated", "id": c.id.opaque_id, "idp": c.id.idp, "username": c.username,
         "displayName": c.display_name or c.username or c.id.opaque_id, "mail": c.mail,
         "institution": c.id.idp}
        for c in contacts[:limit]
    ]
    return found


LOOKUP_MISSES = (NotFound, PermissionDenied, InvalidArgument, Unimplemented)
"""A person or group the gateway cannot describe (a federated user, a deleted
account, a site without a group provider): shown by id. Anything else (CS3
unreachable, the session expired) is raised."""


def iso(ts) -> str | None:
    """ISO 8601 (UTC) of a CS3 timestamp; None when it is unset."""
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, tz=timezone.utc).isoformat()


class Names:
    """Who a grantee, owner or lock holder is, asked of CS3 once per request
    and person (lookups of one request run concurrently and share their
    answer); a lookup the gateway cannot answer leaves the id as the name (a
    share to a deleted user is still listed)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._contacts: asyncio.Task | None = None
        self._users: dict[tuple[str, str], asyncio.Task] = {}

    async def user(self, user_id: identity.UserId, hint: str = "") -> dict:
        """``{"id", "idp", "username", "displayName", "institution"}``; ``hint``
        names a user the gateway does not know (an OCM share's ``ownerDisplayName``)."""
        key = (user_id.idp, user_id.opaque_id)
        if key not in self._users:
            self._users[key] = asyncio.ensure_future(self._lookup(user_id))
        found = dict(await self._users[key])
        if found.pop("unknown") and hint:
            found["displayName"] = hint
        return found

    async def _lookup(self, user_id: identity.UserId) -> dict:
        try:
            user = await self._session.users.get(user_id)
        except LOOKUP_MISSES:
            return {"id": user_id.opaque_id, "idp": user_id.idp, "username": user_id.opaque_id,
                    "displayName": user_id.opaque_id, "institution": user_id.idp, "unknown": True}
        username = user.username or user_id.opaque_id
        idp = user.id.idp or user_id.idp
        return {"id": user_id.opaque_id, "idp": idp, "username": username,
                "displayName": user.display_name or username, "institution": idp, "unknown": False}

    async def group(self, opaque_id: str, idp: str) -> dict:
        try:
            group = await self._session.groups.get(group_id(opaque_id, idp), members=False)
            name, display = group.group_name or opaque_id, group.display_name
            idp = idp or group.id.idp
        except LOOKUP_MISSES:
            name = display = opaque_id
        return {"id": opaque_id, "idp": idp, "username": name, "displayName": display or name, "institution": idp}

    async def _all_contacts(self) -> dict[tuple[str, str], Any]:
        try:
            found = await self._session.invites.find_accepted_users("")
        except LOOKUP_MISSES:  # a site without OCM invitations
            found = []
        return {(c.id.idp, c.id.opaque_id): c for c in found}

    async def contact(self, user_id: identity.UserId) -> dict:
        if self._contacts is None:
            self._contacts = asyncio.ensure_future(self._all_contacts())
        known = (await self._contacts).get((user_id.idp, user_id.opaque_id))
        username = (known.username if known is not None else "") or user_id.opaque_id
        display = (known.display_name if known is not None else "") or f"{username}@{user_id.idp}"
        return {"id": user_id.opaque_id, "idp": user_id.idp, "username": username,
                "displayName": display, "institution": user_id.idp}

    async def display(self, kind: str, opaque_id: str, idp: str) -> str:
        """A grantee's display name for an error message."""
        if kind == "user":
            return (await self.user(identity.UserId(idp=idp, opaque_id=opaque_id)))["displayName"]
        if kind == "group":
            return "Group " + (await self.group(opaque_id, idp))["displayName"]
        return (await self.contact(federated_user(opaque_id, idp)))["displayName"]


def ocm_permissions(share) -> storage.ResourcePermissions:
    """What an OCM share grants: its WebDAV access method's permissions, else its webapp's."""
    found = storage.ResourcePermissions()
    for method in share.access_methods:
        which = method.WhichOneof("term")
        if which == "webdav_options":
            return method.webdav_options.permissions
        if which == "webapp_options":
            found = method.webapp_options.permissions
    return found


def share_role(permissions: storage.ResourcePermissions) -> str:
    """editor or viewer: what a share's permission set lets the grantee do."""
    return EDITOR if role_of(permissions) == EDITOR else VIEWER


async def grant_entries(names: Names, local: Iterable, remote: Iterable = ()) -> list[dict]:
    """Shares the caller made (user and group shares, and OCM shares), each as
    ``{"id", "kind": "user"|"group"|"federated", "grantee", "role", "created"}``,
    in the order given; grantees are looked up concurrently."""

    async def one_local(share) -> dict:
        grantee = share.grantee
        if grantee.type == storage.GRANTEE_TYPE_GROUP:
            kind, person = "group", await names.group(grantee.group_id.opaque_id, grantee.group_id.idp)
        else:
            kind, person = "user", await names.user(grantee.user_id)
        return {"id": share.id.opaque_id, "kind": kind, "grantee": person,
                "role": share_role(share.permissions.permissions), "created": iso(share.ctime)}

    async def one_remote(share) -> dict:
        return {"id": share.id.opaque_id, "kind": "federated",
                "grantee": await names.contact(share.grantee.user_id),
                "role": share_role(ocm_permissions(share)), "created": iso(share.ctime)}

    return list(await asyncio.gather(*(one_local(s) for s in local), *(one_remote(s) for s in remote)))
