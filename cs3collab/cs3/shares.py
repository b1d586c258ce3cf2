"""User and group shares (the CS3 collaboration API, through the gateway)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cs3.identity.group.v1beta1 import resources_pb2 as group_res
from cs3.identity.user.v1beta1 import resources_pb2 as identity
from cs3.sharing.collaboration.v1beta1 import collaboration_api_pb2 as collab
from cs3.sharing.collaboration.v1beta1 import resources_pb2 as sharing
from cs3.storage.provider.v1beta1 import resources_pb2 as storage
from google.protobuf import field_mask_pb2

from cs3collab.cs3.refs import RefLike, describe, format_resource_id
from cs3collab.cs3.roles import permissions_for

if TYPE_CHECKING:
    from cs3collab.cs3.client import Session

ACCEPTED = sharing.SHARE_STATE_ACCEPTED
PENDING = sharing.SHARE_STATE_PENDING
REJECTED = sharing.SHARE_STATE_REJECTED


def user_grantee(user_id: identity.UserId) -> storage.Grantee:
    return storage.Grantee(type=storage.GRANTEE_TYPE_USER, user_id=user_id)


def group_grantee(group_id: group_res.GroupId) -> storage.Grantee:
    return storage.Grantee(type=storage.GRANTEE_TYPE_GROUP, group_id=group_id)


def _share_ref(share_id: str) -> sharing.ShareReference:
    return sharing.ShareReference(id=sharing.ShareId(opaque_id=share_id))


class SharesAPI:
    """Shares with users and groups of the same site (``session.shares``)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    async def create(self, ref: RefLike, grantee: storage.Grantee, role: str) -> sharing.Share:
        """Share a resource with a user or group as ``viewer``, ``editor`` or ``file-editor``."""
        info = await self._session.files.stat(ref)
        request = collab.CreateShareRequest(
            resource_info=info,
            grant=sharing.ShareGrant(
                grantee=grantee, permissions=sharing.SharePermissions(permissions=permissions_for(role))
            ),
        )
        reply = await self._session.call("CreateShare", request, target=describe(ref), idempotent=False)
        return reply.share

    async def get(self, share_id: str) -> sharing.Share:
        reply = await self._session.call("GetShare", collab.GetShareRequest(ref=_share_ref(share_id)), target=f"share {share_id}")
        return reply.share

    async def list(self, resource_id: storage.ResourceId | None = None) -> list[sharing.Share]:
        """Shares the caller created, optionally only those of one resource."""
        filters = []
        if resource_id is not None:
            filters.append(sharing.Filter(type=sharing.Filter.TYPE_RESOURCE_ID, resource_id=resource_id))
        target = format_resource_id(resource_id) if resource_id is not None else "shares"
        reply = await self._session.call("ListShares", collab.ListSharesRequest(filters=filters), target=target)
        return list(reply.shares)

    async def update_role(self, share_id: str, role: str) -> sharing.Share:
        """Change the permissions of an existing share to those of ``role``."""
        request = collab.UpdateShareRequest(
            ref=_share_ref(share_id),
            field=collab.UpdateShareRequest.UpdateField(
                permissions=sharing.SharePermissions(permissions=permissions_for(role))
            ),
            share=sharing.Share(permissions=sharing.SharePermissions(permissions=permissions_for(role))),
            update_mask=field_mask_pb2.FieldMask(paths=["permissions"]),
        )
        reply = await self._session.call("UpdateShare", request, target=f"share {share_id}")
        return reply.share

    async def remove(self, share_id: str) -> None:
        request = collab.RemoveShareRequest(ref=_share_ref(share_id))
        await self._session.call("RemoveShare", request, target=f"share {share_id}", idempotent=False)

    async def list_received(self, state: int | None = None) -> list[sharing.ReceivedShare]:
        """Shares others gave the caller, optionally only those in ``state``."""
        filters = []
        if state is not None:
            filters.append(sharing.Filter(type=sharing.Filter.TYPE_STATE, state=state))
        reply = await self._session.call(
            "ListReceivedShares", collab.ListReceivedSharesRequest(filters=filters), target="received shares"
        )
        return list(reply.shares)

    async def get_received(self, share_id: str) -> sharing.ReceivedShare:
        reply = await self._session.call(
            "GetReceivedShare", collab.GetReceivedShareRequest(ref=_share_ref(share_id)), target=f"share {share_id}"
        )
        return reply.share

    async def update_received(
        self, share_id: str, *, state: int | None = None, mount_point: str | None = None
    ) -> sharing.ReceivedShare:
        """Accept or reject a received share, or set where it is mounted."""
        received = sharing.ReceivedShare(share=sharing.Share(id=sharing.ShareId(opaque_id=share_id)))
        paths = []
        if state is not None:
            received.state = state
            paths.append("state")
        if mount_point is not None:
            received.mount_point.CopyFrom(storage.Reference(path=mount_point))
            paths.append("mount_point")
        request = collab.UpdateReceivedShareRequest(
            share=received, update_mask=field_mask_pb2.FieldMask(paths=paths)
        )
        reply = await self._session.call("UpdateReceivedShare", request, target=f"share {share_id}")
        return reply.share
