"""The receiving side of OCM: shares peer sites send to our users.

- ``receive_share`` is ``POST /ocm/shares`` (Reva internal/http/services/
  opencloudmesh/ocmd/shares.go ``CreateShare`` + ocmincoming
  ``CreateOCMIncomingShare``): a trusted sender, a known local user, the
  protocols resolved; stored PENDING.
- ``receive_notification`` is ``POST /ocm/notifications``: SHARE_UNSHARED
  from the sender (providerId + the share's secret) deletes the share.
- ``list_received`` / ``get_received`` / ``update_received`` are the gRPC
  calls (ocmshareprovider; json repository: only the grantee sees a share,
  only the "state" mask path is supported).

Methods raise the devstack's typed errors (``InvalidArgument`` may carry the
spec's ``validationErrors`` in ``details``).
"""

from __future__ import annotations

import logging
import secrets
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

from cs3.identity.user.v1beta1 import resources_pb2 as user_res
from cs3.sharing.ocm.v1beta1 import ocm_api_pb2 as ocm_api
from cs3.sharing.ocm.v1beta1 import resources_pb2 as ocm_res
from cs3.storage.provider.v1beta1 import resources_pb2 as sp_res
from cs3.types.v1beta1 import types_pb2

from .errors import DevstackError, InvalidArgument, NotFound, PermissionDenied, Unauthenticated, Unimplemented
from .ocm_model import federated_user_id, format_ocm_address, now_ts, user_key
from .ocm_payload import (RESOURCE_TYPES, STORAGE_TYPES, IncomingShare, advertised_protocols, invalid,
                          validate_new_share, validate_notification, webapp_protocol_from,
                          webdav_protocol_from_words)
from .ocm_peers import OCMSender, PeerSite, TrustedPeers
from .ocm_service import OCMConfig, in_store
from .ocm_store import OCMStore
from .store import Store

log = logging.getLogger("cs3collab.devstack.ocm")

RECEIVED_STATES = (ocm_res.SHARE_STATE_PENDING, ocm_res.SHARE_STATE_ACCEPTED, ocm_res.SHARE_STATE_REJECTED)


class LocalUsers(Protocol):
    """The site's users (``users.UserDirectory``); both raise NotFound."""

    def get_by_username(self, username: str) -> user_res.User: ...

    def get(self, user_id: user_res.UserId) -> user_res.User: ...


class OCMInbox:
    """Received OCM shares of one site.

    Args:
        config: see OCMConfig (only ``domain`` is used).
        store: the site's store.
        peers: the trusted peers: the only senders accepted.
        users: the site's users.
        sender: the OCMSender, for discovery of a sender.
    """

    def __init__(self, config: OCMConfig, store: Store, peers: TrustedPeers, users: LocalUsers,
                 sender: OCMSender) -> None:
        self.config = config
        self.store = store
        self.peers = peers
        self.users = users
        self.sender = sender

    # -- gRPC -------------------------------------------------------------------------

    async def list_received(self, filters, caller: user_res.User) -> list[ocm_res.ReceivedShare]:
        F = ocm_api.ListReceivedOCMSharesRequest.Filter
        keys = {F.TYPE_OWNER: lambda f, s: user_key(f.owner) == user_key(s.owner),
                F.TYPE_CREATOR: lambda f, s: user_key(f.creator) == user_key(s.creator),
                F.TYPE_SHARE_TYPE: lambda f, s: f.shared_resource_type == s.shared_resource_type}
        groups: dict[int, list] = {}
        for f in filters:
            groups.setdefault(f.type, []).append(f)
        records = await in_store(self.store, OCMStore.list_received, caller.id)
        return [r.share for r in records
                if all(any(keys[t](f, r.share) for f in fs) for t, fs in groups.items() if t in keys)]

    async def get_received(self, ref: ocm_res.ShareReference, caller: user_res.User) -> ocm_res.ReceivedShare:
        if ref.WhichOneof("spec") != "id":
            raise InvalidArgument("received shares are referenced by id")
        rec = await in_store(self.store, OCMStore.get_received, ref.id.opaque_id, caller.id)
        if rec is None:
            raise NotFound("share does not exist")
        return rec.share

    async def update_received(self, share: ocm_res.ReceivedShare, paths: list[str],
                              caller: user_res.User) -> ocm_res.ReceivedShare:
        """Only update_mask path "state" (PENDING, ACCEPTED, REJECTED)."""
        if not paths:
            raise InvalidArgument("update_mask is required")
        unsupported = [p for p in paths if p != "state"]
        if unsupported:
            raise Unimplemented(f"updating {unsupported[0]} is not supported")
        if share.state not in RECEIVED_STATES:
            raise InvalidArgument("invalid state")

        def update(ocm: OCMStore):
            rec = ocm.get_received(share.id.opaque_id, caller.id)
            if rec is None:
                raise NotFound("share does not exist")
            return ocm.set_received_state(rec, share.state).share
        return await in_store(self.store, update)

    # -- HTTP -------------------------------------------------------------------------

    def _local_user(self, opaque: str) -> user_res.User | None:
        """By opaque id (Reva's GetUser) or, failing that, by username."""
        for lookup in (lambda: self.users.get(user_res.UserId(opaque_id=opaque)),
                       lambda: self.users.get_by_username(opaque)):
            try:
                return lookup()
            except NotFound:
                continue
        return None

    async def receive_share(self, body: Any) -> dict[str, Any]:
        """``POST /ocm/shares``; returns the 201 body. Untrusted sender →
        Unauthenticated (401); owner at an untrusted site → PermissionDenied
        (403); unknown recipient → InvalidArgument (400, shareWith)."""
        incoming = validate_new_share(body)
        sender_domain = incoming.sender[1]
        peer = self.peers.get(sender_domain)
        if peer is None:
            raise Unauthenticated(f"provider not trusted: {sender_domain}")
        if incoming.owner[1] != sender_domain and not self.peers.is_trusted(incoming.owner[1]):
            raise PermissionDenied("the owner's provider is not trusted")
        opaque, domain = incoming.share_with
        user = self._local_user(opaque) if domain == self.config.domain else None
        if user is None:
            raise invalid("shareWith", "NOT_FOUND", f"shareWith not found: no user {opaque!r} at {domain}")

        protocols = []
        if incoming.webdav is not None:
            uri = await self._resolve_webdav_uri(peer, incoming)
            protocols.append(webdav_protocol_from_words(uri, incoming.webdav.shared_secret,
                                                        incoming.webdav.permissions, incoming.webdav.requirements))
        if incoming.webapp is not None:
            protocols.append(webapp_protocol_from(incoming.webapp))
        now = now_ts()
        extra = (("ownerDisplayName", incoming.owner_display_name),
                 ("senderDisplayName", incoming.sender_display_name),
                 ("description", incoming.description), ("senderDomain", sender_domain))
        rs = ocm_res.ReceivedShare(
            name=incoming.name, remote_share_id=incoming.provider_id,
            grantee=sp_res.Grantee(type=sp_res.GRANTEE_TYPE_USER, user_id=user.id),
            owner=federated_user_id(*incoming.owner), creator=federated_user_id(*incoming.sender),
            ctime=now, mtime=now, share_type=ocm_res.SHARE_TYPE_USER, protocols=protocols,
            state=ocm_res.SHARE_STATE_PENDING, resource_type=STORAGE_TYPES[incoming.resource_type],
            recipient_type=ocm_res.RECIPIENT_TYPE_USER, shared_resource_type=RESOURCE_TYPES[incoming.resource_type],
            opaque=types_pb2.Opaque(map={k: types_pb2.OpaqueEntry(decoder="plain", value=v.encode())
                                         for k, v in extra if v}),
        )
        if incoming.expiration:
            rs.expiration.CopyFrom(types_pb2.Timestamp(seconds=incoming.expiration))
        rec = await in_store(self.store, OCMStore.upsert_received, rs, sender_domain)
        log.info("ocm share=%s received from=%s for=%s", rec.id, format_ocm_address(rs.creator), user.username)
        return {"recipientDisplayName": user.display_name or user.username}

    async def _resolve_webdav_uri(self, peer: PeerSite, incoming: IncomingShare) -> str:
        """Absolute URIs are kept; relative or empty ones are joined to the
        webdav root the sender advertises in its discovery (Reva shares.go)."""
        uri = incoming.webdav.uri if incoming.webdav else ""
        if urlsplit(uri).netloc:
            return uri
        try:
            disco = await self.sender.discover(peer.domain)
        except DevstackError as e:
            raise InvalidArgument(f"cannot resolve the relative webdav uri: {e.message}") from None
        root = (advertised_protocols(disco, incoming.resource_type) or {}).get("webdav")
        if not isinstance(root, str) or not root:
            raise InvalidArgument("the sender does not advertise a webdav root")
        endpoint = urlsplit(disco.get("endPoint") or peer.base_url)
        base = f"{endpoint.scheme}://{endpoint.netloc}"
        if uri.startswith("/"):
            return base + uri
        root_url = urljoin(base + "/", root.lstrip("/"))
        return urljoin(root_url.rstrip("/") + "/", uri) if uri else root_url

    async def notification_sender(self, body: Any) -> str:
        """The provider that sent us the share a notification names (its
        ``providerId`` and secret), whose keys its signature is checked
        with; "" when no received share matches (the notification is then
        refused as unknown anyway)."""
        try:
            _, provider_id, secret = validate_notification(body)
        except DevstackError:
            return ""
        domains = self.peers.domains

        def find(ocm: OCMStore) -> str:
            for domain in domains:
                for rec in ocm.find_received(domain, provider_id):
                    if secret and any(secrets.compare_digest(s, secret) for s in rec.secrets()):
                        return domain
            return ""
        return await in_store(self.store, find)

    async def receive_notification(self, body: Any) -> dict[str, Any]:
        """``POST /ocm/notifications``. SHARE_UNSHARED from a trusted sender,
        naming providerId and the share's secret, deletes the received
        share (no such share → NotFound); other types are accepted and ignored."""
        ntype, provider_id, secret = validate_notification(body)
        if ntype != "SHARE_UNSHARED":
            return {}
        if not secret:
            raise PermissionDenied("the notification lacks the share's secret")

        domains = self.peers.domains

        def unshare(ocm: OCMStore) -> int:
            removed = 0
            for domain in domains:
                for rec in ocm.find_received(domain, provider_id):
                    if any(secrets.compare_digest(s, secret) for s in rec.secrets()):
                        removed += ocm.delete_received(rec.id)
            return removed
        if not await in_store(self.store, unshare):
            raise NotFound("no such share")
        return {}
