"""People to share with, and who a grantee is, as CS3 knows them.

Used by :mod:`cs3collab.jupyter.sharing`: the Share dialog's search merges
three sources of the caller's site (FindUsers, FindGroups, and the accepted
users of OCM invitations: contacts at other institutions), and the list of
shares names each grantee. Raises the CS3 client's typed errors; the
sharing module translates them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from cs3.identity.user.v1beta1 import resources_pb2 as identity

from cs3collab.cs3 import CS3Error, NotFound, Session, Unimplemented
from cs3collab.cs3.groups import group_id
from cs3collab.cs3.ocm import federated_user

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
        {"kind": "federated", "id": c.id.opaque_id, "idp": c.id.idp,
         "displayName": c.display_name or c.username or c.id.opaque_id, "mail": c.mail,
         "institution": c.id.idp}
        for c in contacts[:limit]
    ]
    return found


class Names:
    """Who a grantee is, asked of CS3 once per request; a lookup that fails
    leaves the id as the name (a share to a deleted user is still listed)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._contacts: dict[tuple[str, str], Any] | None = None

    async def user(self, user_id: identity.UserId) -> dict:
        try:
            user = await self._session.users.get(user_id)
            username, display = user.username, user.display_name
        except CS3Error:
            username = display = user_id.opaque_id
        return {"id": user_id.opaque_id, "idp": user_id.idp, "username": username,
                "displayName": display or username, "institution": user_id.idp}

    async def group(self, opaque_id: str, idp: str) -> dict:
        try:
            group = await self._session.groups.get(group_id(opaque_id, idp), members=False)
            name, display = group.group_name or opaque_id, group.display_name
            idp = idp or group.id.idp
        except CS3Error:
            name = display = opaque_id
        return {"id": opaque_id, "idp": idp, "username": name, "displayName": display or name, "institution": idp}

    async def contact(self, user_id: identity.UserId) -> dict:
        if self._contacts is None:
            try:
                found = await self._session.invites.find_accepted_users("")
            except CS3Error:
                found = []
            self._contacts = {(c.id.idp, c.id.opaque_id): c for c in found}
        known = self._contacts.get((user_id.idp, user_id.opaque_id))
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
