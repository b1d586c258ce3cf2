"""Open Cloud Mesh shares: sharing with users of other sites, and receiving theirs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cs3.identity.user.v1beta1 import resources_pb2 as identity
from cs3.ocm.provider.v1beta1 import provider_api_pb2 as provider_api
from cs3.ocm.provider.v1beta1 import resources_pb2 as ocm_provider
from cs3.sharing.ocm.v1beta1 import ocm_api_pb2 as ocm_api
from cs3.sharing.ocm.v1beta1 import resources_pb2 as ocm
from cs3.storage.provider.v1beta1 import resources_pb2 as storage
from google.protobuf import field_mask_pb2

from cs3collab.cs3.refs import format_resource_id
from cs3collab.cs3.roles import permissions_for

if TYPE_CHECKING:
    from cs3collab.cs3.client import Session

WEBAPP_NAME = "cs3collab"
"""The app name our collaboration service is offered under as an OCM webapp."""


def federated_user(opaque_id: str, domain: str) -> identity.UserId:
    """The id of a user at another site, as a share grantee names them.

    ``opaque_id`` is the user's id *at their own site* (Reva looks the
    recipient up by it; on a real Reva it is usually a UUID, not the username).
    """
    return identity.UserId(idp=domain, opaque_id=opaque_id, type=identity.USER_TYPE_FEDERATED)


def access_methods(role: str, *, webapp: bool = True) -> list[ocm.AccessMethod]:
    """WebDAV access with the role's permissions, and (by default) our webapp."""
    permissions = permissions_for(role)
    methods = [ocm.AccessMethod(webdav_options=ocm.WebDAVAccessMethod(permissions=permissions))]
    if webapp:
        methods.append(
            ocm.AccessMethod(webapp_options=ocm.WebappAccessMethod(permissions=permissions, app_name=WEBAPP_NAME))
        )
    return methods


class OCMAPI:
    """Federated (OCM) shares (``session.ocm``)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    async def create_share(
        self,
        resource_id: storage.ResourceId,
        grantee: identity.UserId,
        role: str,
        *,
        webapp: bool = True,
    ) -> ocm.Share:
        """Share a resource with a user of another site (``grantee.idp`` is that site's domain).

        As Reva's own OCS handler does, the receiving provider is looked up
        first (GetInfoByDomain: NotFound when this site does not know it):
        Reva 3.x's CreateOCMShare needs the provider's OCM service entry and
        refuses a bare domain ("the selected provider does not have an OCM
        endpoint").
        """
        provider = await self.provider_info(grantee.idp)
        request = ocm_api.CreateOCMShareRequest(
            resource_id=resource_id,
            grantee=storage.Grantee(type=storage.GRANTEE_TYPE_USER, user_id=grantee),
            recipient_mesh_provider=provider,
            access_methods=access_methods(role, webapp=webapp),
        )
        reply = await self._session.call(
            "CreateOCMShare", request, target=format_resource_id(resource_id), idempotent=False
        )
        return reply.share

    async def provider_info(self, domain: str) -> ocm_provider.ProviderInfo:
        """The mesh provider ``domain`` as this site knows it (GetInfoByDomain)."""
        reply = await self._session.call("GetInfoByDomain", provider_api.GetInfoByDomainRequest(domain=domain),
                                         target=f"OCM provider {domain}")
        return reply.provider_info

    async def update_share(self, share_id: str, role: str) -> ocm.Share:
        """Change the role of an OCM share; returns the updated share.

        UpdateOCMShare changes access methods in place, one per kind, as
        Reva's share repository does: so the share is read first and each of
        its WebDAV and webapp methods is sent back with the role's
        permissions. The grantee's sessions get the new role at their next call.
        """
        share = await self.get_share(share_id)
        permissions = permissions_for(role)
        fields = []
        for method in share.access_methods:
            kind = method.WhichOneof("term")
            if kind == "webdav_options":
                new = ocm.AccessMethod(webdav_options=ocm.WebDAVAccessMethod(permissions=permissions))
            elif kind == "webapp_options":
                new = ocm.AccessMethod(webapp_options=ocm.WebappAccessMethod(
                    permissions=permissions, app_name=method.webapp_options.app_name))
            else:
                continue
            fields.append(ocm_api.UpdateOCMShareRequest.UpdateField(access_methods=new))
        request = ocm_api.UpdateOCMShareRequest(
            ref=ocm.ShareReference(id=ocm.ShareId(opaque_id=share_id)), field=fields)
        await self._session.call("UpdateOCMShare", request, target=f"OCM share {share_id}")
        return await self.get_share(share_id)

    async def get_share(self, share_id: str) -> ocm.Share:
        request = ocm_api.GetOCMShareRequest(ref=ocm.ShareReference(id=ocm.ShareId(opaque_id=share_id)))
        reply = await self._session.call("GetOCMShare", request, target=f"OCM share {share_id}")
        return reply.share

    async def list_shares(self) -> list[ocm.Share]:
        reply = await self._session.call("ListOCMShares", ocm_api.ListOCMSharesRequest(), target="OCM shares")
        return list(reply.shares)

    async def remove_share(self, share_id: str) -> None:
        request = ocm_api.RemoveOCMShareRequest(ref=ocm.ShareReference(id=ocm.ShareId(opaque_id=share_id)))
        await self._session.call("RemoveOCMShare", request, target=f"OCM share {share_id}", idempotent=False)

    async def get_share_by_token(self, token: str) -> ocm.Share:
        """The share a token belongs to (at the sharing site)."""
        reply = await self._session.call(
            "GetOCMShareByToken", ocm_api.GetOCMShareByTokenRequest(token=token), target="OCM share token"
        )
        return reply.share

    async def list_received(self) -> list[ocm.ReceivedShare]:
        reply = await self._session.call(
            "ListReceivedOCMShares", ocm_api.ListReceivedOCMSharesRequest(), target="received OCM shares"
        )
        return list(reply.shares)

    async def update_received(self, share_id: str, *, state: int) -> None:
        """Accept or reject a received OCM share."""
        request = ocm_api.UpdateReceivedOCMShareRequest(
            share=ocm.ReceivedShare(id=ocm.ShareId(opaque_id=share_id), state=state),
            update_mask=field_mask_pb2.FieldMask(paths=["state"]),
        )
        await self._session.call("UpdateReceivedOCMShare", request, target=f"OCM share {share_id}")


EXCHANGE_TOKEN = "must-exchange-token"
"""The OCM requirement asking the receiver to exchange the secret (code flow) first."""


def requires_exchange(share: ocm.Share) -> bool:
    """Whether the receiver of ``share`` must exchange its secret for a token
    (OCM code flow) before using it: a WebDAV method requiring
    ``must-exchange-token`` (Reva's ``ocmshares`` auth then refuses the
    secret), or a webapp method, which Reva 3.x always sends with
    ``must-exchange-token`` (its default requirements when none are stored)."""
    for method in share.access_methods:
        kind = method.WhichOneof("term")
        if kind == "webdav_options" and EXCHANGE_TOKEN in method.webdav_options.requirements:
            return True
        if kind == "webapp_options" and (not method.webapp_options.requirements
                                         or EXCHANGE_TOKEN in method.webapp_options.requirements):
            return True
    return False


def webdav_secret(received: ocm.ReceivedShare) -> tuple[str, str]:
    """The (uri, shared secret) of a received share's WebDAV protocol."""
    for protocol in received.protocols:
        if protocol.HasField("webdav_options"):
            return protocol.webdav_options.uri, protocol.webdav_options.shared_secret
    raise ValueError(f"received OCM share {received.id.opaque_id} has no webdav protocol")
