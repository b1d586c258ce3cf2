"""OCM in the devstack gateway, and how a site turns it on.

``OCMGateway`` adds the OCM calls of Reva's gateway (internal/grpc/services/
gateway/ocmshareprovider.go) to ``gateway.Gateway``: CreateOCMShare,
RemoveOCMShare, GetOCMShare, GetOCMShareByToken (no token needed, as Reva's
``UnprotectedEndpoints``), ListOCMShares, UpdateOCMShare,
ListReceivedOCMShares, GetReceivedOCMShare, UpdateReceivedOCMShare; the
invitation calls (GenerateInviteToken, ListInviteTokens, ForwardInvite,
AcceptInvite, GetAcceptedUser, FindAcceptedUsers, DeleteAcceptedUser) and
GetInfoByDomain. Each parses the request and calls one method of
``OCMShares``, ``OCMInbox`` or ``InviteManager``; ``Gateway.respond`` turns
errors into statuses.

``install_ocm(site, settings)`` is the extension every ``DevstackSite``
runs: OCM tables in the site's database, the ``ocmshares``,
``ocmsharecode`` and ``ocmexchangedtoken`` auth types, the method rule of
``ocmshare:`` token scopes, and the OCM HTTP routes (``/invite-accepted`` and
the code flow's ``/token`` included).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterable
from urllib.parse import urlsplit

from cs3.ocm.invite.v1beta1 import invite_api_pb2 as invite_api
from cs3.ocm.provider.v1beta1 import provider_api_pb2 as provider_api
from cs3.ocm.provider.v1beta1 import resources_pb2 as provider_res
from cs3.sharing.ocm.v1beta1 import ocm_api_pb2 as ocm_api

from .errors import NotFound, Unauthenticated, Unimplemented
from .errors import InvalidArgument
from .gateway import Gateway, _opaque_str
from .ocm_http import ocm_http_rules
from .ocm_inbox import OCMInbox
from .ocm_invites import DEFAULT_TOKEN_LIFETIME, InviteManager, InviteStore, create_invite_tables
from .ocm_model import OCM_API_VERSION, ROLE_EDITOR, SCOPE_KIND, normalize_domain, ocm_scope_allows
from .ocm_peers import OCMSender, PeerSite, TrustedPeers
from .ocm_service import OCMConfig, OCMShares
from .ocm_signing import PeerSignatures, SiteKeys
from .ocm_store import create_tables

if TYPE_CHECKING:
    from .site import DevstackSite

GATEWAY_SERVICE = "cs3.gateway.v1beta1.GatewayAPI"


def _ref(ref) -> str:
    which = ref.WhichOneof("spec")
    return ref.id.opaque_id if which == "id" else which or "-"


class OCMGateway(Gateway):
    """The site's gateway with OCM calls; ``install_ocm`` sets ``ocm_shares``
    and ``ocm_inbox`` (without them the calls are UNIMPLEMENTED)."""

    ocm_shares: OCMShares | None = None
    ocm_inbox: OCMInbox | None = None
    ocm_invites: InviteManager | None = None
    ocm_peers: TrustedPeers | None = None
    ocm_sender: OCMSender | None = None

    def _shares(self) -> OCMShares:
        if self.ocm_shares is None:
            raise Unimplemented("OCM is not set up on this site")
        return self.ocm_shares

    def _inbox(self) -> OCMInbox:
        if self.ocm_inbox is None:
            raise Unimplemented("OCM is not set up on this site")
        return self.ocm_inbox

    def _invites(self) -> InviteManager:
        if self.ocm_invites is None:
            raise Unimplemented("OCM is not set up on this site")
        return self.ocm_invites

    async def CreateOCMShare(self, request, context):
        async def work(caller):
            share, display = await self._shares().create(request, caller.user)
            return {"share": share, "recipient_display_name": display}
        return await self.respond("CreateOCMShare", ocm_api.CreateOCMShareResponse,
                                  request.resource_id.opaque_id or "-", work)

    async def RemoveOCMShare(self, request, context):
        async def work(caller):
            await self._shares().remove(request.ref, caller.user)
            return {}
        return await self.respond("RemoveOCMShare", ocm_api.RemoveOCMShareResponse, _ref(request.ref), work)

    async def GetOCMShare(self, request, context):
        async def work(caller):
            return {"share": await self._shares().get(request.ref, caller.user)}
        return await self.respond("GetOCMShare", ocm_api.GetOCMShareResponse, _ref(request.ref), work)

    async def GetOCMShareByToken(self, request, context):
        async def work(_):
            return {"share": await self._shares().get_by_token(request.token)}
        return await self.respond("GetOCMShareByToken", ocm_api.GetOCMShareByTokenResponse, "token", work)

    async def ListOCMShares(self, request, context):
        async def work(caller):
            return {"shares": await self._shares().list_shares(list(request.filters), caller.user)}
        return await self.respond("ListOCMShares", ocm_api.ListOCMSharesResponse, "-", work)

    async def UpdateOCMShare(self, request, context):
        async def work(caller):
            await self._shares().update(request.ref, list(request.field), caller.user)
            return {}  # UpdateOCMShareResponse carries no share
        return await self.respond("UpdateOCMShare", ocm_api.UpdateOCMShareResponse, _ref(request.ref), work)

    async def ListReceivedOCMShares(self, request, context):
        async def work(caller):
            return {"shares": await self._inbox().list_received(list(request.filters), caller.user)}
        return await self.respond("ListReceivedOCMShares", ocm_api.ListReceivedOCMSharesResponse, "-", work)

    async def GetReceivedOCMShare(self, request, context):
        async def work(caller):
            return {"share": await self._inbox().get_received(request.ref, caller.user)}
        return await self.respond("GetReceivedOCMShare", ocm_api.GetReceivedOCMShareResponse,
                                  _ref(request.ref), work)

    async def UpdateReceivedOCMShare(self, request, context):
        async def work(caller):
            await self._inbox().update_received(request.share, list(request.update_mask.paths), caller.user)
            return {}
        return await self.respond("UpdateReceivedOCMShare", ocm_api.UpdateReceivedOCMShareResponse,
                                  request.share.id.opaque_id or "-", work)


    # -- invitations (Reva's gateway ocminvitemanager.go + ocminvitemanager) ------

    async def GenerateInviteToken(self, request, context):
        expires_in = _opaque_str(request.opaque, "expires_in")

        async def work(caller):
            try:
                seconds = float(expires_in) if expires_in else None
            except ValueError:
                raise InvalidArgument("opaque expires_in must be a number of seconds") from None
            token = await self._invites().generate(caller.user, request.description, seconds)
            return {"invite_token": token}
        return await self.respond("GenerateInviteToken", invite_api.GenerateInviteTokenResponse, "-", work)

    async def ListInviteTokens(self, request, context):
        async def work(caller):
            return {"invite_tokens": await self._invites().list_tokens(caller.user)}
        return await self.respond("ListInviteTokens", invite_api.ListInviteTokensResponse, "-", work)

    async def ForwardInvite(self, request, context):
        domain = request.origin_system_provider.domain

        async def work(caller):
            contact = await self._invites().forward(caller.user, request.invite_token.token, domain)
            return {"user_id": contact.id, "email": contact.mail, "display_name": contact.display_name}
        return await self.respond("ForwardInvite", invite_api.ForwardInviteResponse, f"origin={domain or '-'}", work)

    async def AcceptInvite(self, request, context):
        async def work(_):
            initiator = await self._invites().accept(request.invite_token.token, request.remote_user)
            return {"user_id": initiator.id, "email": initiator.mail, "display_name": initiator.display_name}
        return await self.respond("AcceptInvite", invite_api.AcceptInviteResponse,
                                  f"remote={request.remote_user.id.opaque_id}@{request.remote_user.id.idp}", work)

    async def GetAcceptedUser(self, request, context):
        async def work(caller):
            return {"remote_user": await self._invites().get_accepted(caller.user, request.remote_user_id)}
        return await self.respond("GetAcceptedUser", invite_api.GetAcceptedUserResponse,
                                  f"{request.remote_user_id.opaque_id}@{request.remote_user_id.idp}", work)

    async def FindAcceptedUsers(self, request, context):
        async def work(caller):
            return {"accepted_users": await self._invites().find_accepted(caller.user, request.filter)}
        return await self.respond("FindAcceptedUsers", invite_api.FindAcceptedUsersResponse, "-", work)

    async def DeleteAcceptedUser(self, request, context):
        async def work(caller):
            await self._invites().delete_accepted(caller.user, request.remote_user_id)
            return {}
        return await self.respond("DeleteAcceptedUser", invite_api.DeleteAcceptedUserResponse,
                                  f"{request.remote_user_id.opaque_id}@{request.remote_user_id.idp}", work)

    async def GetInfoByDomain(self, request, context):
        """The trusted provider ``domain`` with its OCM endpoint (Reva's
        ocmproviderauthorizer over the json authorizer); unknown → NOT_FOUND."""
        async def work(_):
            peers, sender = self.ocm_peers, self.ocm_sender
            if peers is None or sender is None:
                raise Unimplemented("OCM is not set up on this site")
            peer = peers.get(request.domain)
            if peer is None:
                raise NotFound(f"provider not trusted: {normalize_domain(request.domain) or '-'}")
            endpoint = await sender.endpoint(peer.domain)
            service = provider_res.Service(
                endpoint=provider_res.ServiceEndpoint(type=provider_res.ServiceType(name="OCM"), path=endpoint + "/"),
                host=urlsplit(endpoint).netloc, api_version=OCM_API_VERSION)
            return {"provider_info": provider_res.ProviderInfo(
                domain=peer.domain, name=peer.name, full_name=peer.name, services=[service])}
        return await self.respond("GetInfoByDomain", provider_api.GetInfoByDomainResponse, request.domain or "-", work)


@dataclass
class OCMSettings:
    """OCM settings of a site (all optional: a site is always OCM-capable).

    Args:
        peers: trusted peer sites (``--peer DOMAIN=URL``).
        providers_file: a Reva ``ocm-providers.json`` of more trusted peers,
            re-read when it changes; None = none.
        public_url: the base URL peers reach this site's HTTP server at;
            None = the site's own ``http_url``.
        provider_name: the ``provider`` field of discovery.
        webapp_url: base URL of this site's collaboration service; the
            webapp protocol (app ``cs3collab``) of a share is sent with ``uri``
            ``<webapp_url>/api/collaboration/ocm/<share id>``; None = the one
            the providers file lists for this site (a service of type
            "cs3collab"), else the ``/app/ocm/<id>`` URI.
        invite_token_lifetime: seconds an invite token is valid by default.
        require_accepted_user: refuse an ``ocmshares``/``ocmsharecode`` login
            unless the grantee is an accepted user of the share's creator, as
            Reva 3.x does (False: trusted peers stay auto-accepted).
        extra_scope_methods: gateway methods (bare names) an ``ocmshare:``
            token may call besides Reva's ``ocmShareScope`` list, modelling a
            site whose scope was patched (e.g. ("ListFileVersions",)).
        http_sig: OCM 1.4 signatures: sign outgoing OCM requests, publish
            ``/.well-known/jwks.json``, advertise ``http-sig`` (discovery
            1.4.0) and refuse unsigned requests from peers that advertise it.
            False models Reva 3.x (1.3.0, nothing signed or checked).
        signing_key: PEM file of this site's Ed25519 signing key, created
            when missing and re-read when it changes (rotation); None =
            ``<data>/ocm-signing-key.pem``.
        require_signatures: refuse unsigned OCM requests from every peer
            (off by default, as Reva today accepts them all).
    """

    peers: Iterable[PeerSite] = field(default_factory=list)
    providers_file: Path | str | None = None
    public_url: str | None = None
    provider_name: str = "cs3collab devstack"
    webapp_url: str | None = None
    invite_token_lifetime: float = DEFAULT_TOKEN_LIFETIME
    require_accepted_user: bool = False
    extra_scope_methods: tuple[str, ...] = ()
    http_sig: bool = True
    signing_key: Path | str | None = None
    require_signatures: bool = False


async def install_ocm(site: "DevstackSite", settings: OCMSettings) -> None:
    """Turn on OCM for ``site`` (runs before its servers start)."""
    if not isinstance(site.gateway, OCMGateway):
        raise TypeError("a devstack site needs a gateway_class derived from ocm_gateway.OCMGateway")
    await site.store.run(lambda tree: (create_tables(tree.conn), create_invite_tables(tree.conn)))
    peers = TrustedPeers(settings.peers, settings.providers_file)
    config = OCMConfig(site.domain, settings.public_url or (lambda: site.http_url),
                       provider_name=settings.provider_name,
                       webapp_url=lambda: settings.webapp_url or peers.webapp_url(site.domain),
                       require_accepted_user=settings.require_accepted_user)
    keys = SiteKeys(settings.signing_key or site.data_dir / "ocm-signing-key.pem") if settings.http_sig else None
    sender = OCMSender(peers, signing_key=(lambda: keys.current) if keys is not None else None)
    signatures = PeerSignatures(sender, require_all=settings.require_signatures) \
        if keys is not None or settings.require_signatures else None
    site.gateway.ocm_shares = OCMShares(config, site.store, peers, site, sender)
    site.gateway.ocm_inbox = OCMInbox(config, site.store, peers, site.users, sender)
    site.gateway.ocm_invites = InviteManager(site.domain, site.store, site.users, peers, sender,
                                             settings.invite_token_lifetime)
    site.gateway.ocm_peers, site.gateway.ocm_sender = peers, sender
    # as Reva's invite service and provider authorizer: no login needed
    site.add_unprotected(f"/{GATEWAY_SERVICE}/AcceptInvite", f"/{GATEWAY_SERVICE}/GetInfoByDomain")
    site.add_unprotected(f"/{GATEWAY_SERVICE}/GetOCMShareByToken")
    shares, invites = site.gateway.ocm_shares, site.gateway.ocm_invites

    async def accepted(creator, remote) -> bool:
        return await site.store.run(lambda tree: InviteStore(tree.conn).get_accepted(creator, remote)) is not None

    shares.accepted_user = accepted
    site.auth_providers.register("ocmshares", shares.authenticate)
    site.auth_providers.register("ocmsharecode", shares.authenticate_code)
    site.auth_providers.register("ocmexchangedtoken", lambda client_id, token: exchanged_login(site, client_id, token))

    async def exchange(client_id: str, code: str) -> tuple[str, int]:
        user, scopes = await shares.authenticate_code(client_id, code)
        return site.tokens.mint(user, scopes), int(site.tokens.lifetime)
    # The role a token was minted with may be out of date (UpdateOCMShare): the
    # method gate lets through what the widest OCM role may call, and what the
    # caller may do to a resource is decided by the share's current role
    # (access.SCOPE_CHECKS, on the store thread).
    extra = frozenset(settings.extra_scope_methods)
    site.add_scope_rule(SCOPE_KIND, lambda scope, method: ocm_scope_allows(ROLE_EDITOR, method) or method in extra)
    site.add_http_routes(*ocm_http_rules(config, site.gateway.ocm_inbox, invites, exchange, keys, signatures))
    site.add_cleanup(sender.aclose)


async def exchanged_login(site: "DevstackSite", client_id: str, token: str):
    """The ``ocmexchangedtoken`` auth provider (Reva pkg/auth/manager/
    ocmexchangedtoken at aa6e45a): ``token`` is an access token from
    ``/ocm/token``; it must carry an ``ocmshare:`` scope, the one of share
    ``client_id`` when given, else exactly one. Returns its user and scopes."""
    try:
        ident = site.tokens.verify(token)
    except Unauthenticated:
        raise Unauthenticated("invalid exchanged token") from None
    shares = [name for name in ident.scopes if name.partition(":")[0] == SCOPE_KIND]
    if not shares:
        raise Unauthenticated("no OCM share scope in exchanged token")
    if client_id and f"{SCOPE_KIND}:{client_id}" not in shares:
        raise Unauthenticated(f"scope mismatch for share {client_id}")
    if not client_id and len(shares) != 1:
        raise Unauthenticated("empty shareID requires exactly one OCM share scope")
    return ident.user, dict(ident.scopes)
