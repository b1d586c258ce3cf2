"""Gateway handlers for user shares (a mixin of ``gateway.Gateway``).

Each handler parses the request and calls one function of ``shares.py`` on
the store thread; ``Gateway.respond`` turns errors into CS3 statuses.
"""

from __future__ import annotations

from cs3.sharing.collaboration.v1beta1 import collaboration_api_pb2 as collab

from . import shares
from .errors import InvalidArgument


def _share_ref(ref) -> str:
    return ref.id.opaque_id if ref.HasField("id") else f"key:{ref.key.resource_id.opaque_id}"


class SharingHandlers:
    """CreateShare, RemoveShare, GetShare, ListShares, UpdateShare,
    ListReceivedShares, GetReceivedShare, UpdateReceivedShare."""

    async def CreateShare(self, request, context):
        rid = request.resource_info.id
        return await self.respond("CreateShare", collab.CreateShareResponse, rid.opaque_id or "-", self.run(
            shares.create_share, rid, request.grant, field="share"))

    async def RemoveShare(self, request, context):
        return await self.respond("RemoveShare", collab.RemoveShareResponse, _share_ref(request.ref),
                                  self.run(shares.remove_share, request.ref))

    async def GetShare(self, request, context):
        return await self.respond("GetShare", collab.GetShareResponse, _share_ref(request.ref),
                                  self.run(shares.get_share, request.ref, field="share"))

    async def ListShares(self, request, context):
        return await self.respond("ListShares", collab.ListSharesResponse, "-",
                                  self.run(shares.list_shares, list(request.filters), field="shares"))

    async def UpdateShare(self, request, context):
        paths = list(request.update_mask.paths)
        if request.field.WhichOneof("field") == "permissions":
            perms, expiration = request.field.permissions.permissions, None
        elif paths:
            perms = request.share.permissions.permissions if "permissions" in paths else None
            expiration = request.share.expiration if "expiration" in paths else None
        else:
            perms = expiration = None

        async def work(caller):
            if perms is None and expiration is None:
                raise InvalidArgument("UpdateShare needs field.permissions or update_mask")
            share = await self.store.run(shares.update_share, caller, request.ref, perms, expiration)
            return {"share": share}
        return await self.respond("UpdateShare", collab.UpdateShareResponse, _share_ref(request.ref), work)

    async def ListReceivedShares(self, request, context):
        return await self.respond("ListReceivedShares", collab.ListReceivedSharesResponse, "-",
                                  self.run(shares.list_received, list(request.filters), field="shares"))

    async def GetReceivedShare(self, request, context):
        return await self.respond("GetReceivedShare", collab.GetReceivedShareResponse, _share_ref(request.ref),
                                  self.run(shares.get_received, request.ref, field="share"))

    async def UpdateReceivedShare(self, request, context):
        return await self.respond("UpdateReceivedShare", collab.UpdateReceivedShareResponse,
                                  request.share.share.id.opaque_id or "-",
                                  self.run(shares.update_received, request.share, list(request.update_mask.paths),
                                           field="share"))
