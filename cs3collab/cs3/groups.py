"""Looking up groups of a site (FindGroups, GetGroup, GetMembers)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cs3.identity.group.v1beta1 import group_api_pb2 as group_api
from cs3.identity.group.v1beta1 import resources_pb2 as group_res
from cs3.identity.user.v1beta1 import resources_pb2 as identity

if TYPE_CHECKING:
    from cs3collab.cs3.client import Session


def group_id(name: str, idp: str = "") -> group_res.GroupId:
    """A group id from its opaque id (in the devstack and Reva's json group
    manager the group name works as one too)."""
    return group_res.GroupId(idp=idp, opaque_id=name)


class GroupsAPI:
    """Groups of the gateway's site (``session.groups``)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    async def find(self, query: str, *, members: bool = False) -> list[group_res.Group]:
        """Groups whose name, display name, mail or id contain ``query``
        (case-insensitive, sorted by group name); members only if asked,
        since a big site's groups are large."""
        request = group_api.FindGroupsRequest(
            filters=[group_api.Filter(type=group_api.Filter.TYPE_QUERY, query=query)],
            skip_fetching_members=not members,
        )
        reply = await self._session.call("FindGroups", request, target=f"groups matching {query!r}")
        return list(reply.groups)

    async def get(self, gid: group_res.GroupId | str, *, members: bool = True) -> group_res.Group:
        """One group by id (a string is taken as the opaque id); NotFound if none."""
        gid = group_id(gid) if isinstance(gid, str) else gid
        request = group_api.GetGroupRequest(group_id=gid, skip_fetching_members=not members)
        reply = await self._session.call("GetGroup", request, target=f"group {gid.opaque_id}")
        return reply.group

    async def members(self, gid: group_res.GroupId | str) -> list[identity.UserId]:
        """The ids of the group's members."""
        gid = group_id(gid) if isinstance(gid, str) else gid
        reply = await self._session.call("GetMembers", group_api.GetMembersRequest(group_id=gid),
                                         target=f"group {gid.opaque_id}")
        return list(reply.members)
