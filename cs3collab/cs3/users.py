"""Looking up users of a site (GetUser, FindUsers)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cs3.identity.user.v1beta1 import resources_pb2 as identity
from cs3.identity.user.v1beta1 import user_api_pb2 as user_api

if TYPE_CHECKING:
    from cs3collab.cs3.client import Session


class UsersAPI:
    """Users of the gateway's site (``session.users``)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    async def find(self, query: str) -> list[identity.User]:
        """Users whose username, display name or mail match ``query``."""
        request = user_api.FindUsersRequest(
            filters=[user_api.Filter(type=user_api.Filter.TYPE_QUERY, query=query)],
            skip_fetching_user_groups=True,
        )
        reply = await self._session.call("FindUsers", request, target=f"users matching {query!r}")
        return list(reply.users)

    async def get(self, user_id: identity.UserId) -> identity.User:
        reply = await self._session.call(
            "GetUser", user_api.GetUserRequest(user_id=user_id), target=f"user {user_id.opaque_id}@{user_id.idp}"
        )
        return reply.user

    async def by_username(self, username: str) -> identity.User:
        """The user with exactly this username (NotFound if none)."""
        from cs3collab.cs3.errors import NotFound

        for user in await self.find(username):
            if user.username == username:
                return user
        raise NotFound(f"no user named {username!r}", operation="FindUsers", target=username)
