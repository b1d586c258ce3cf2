"""The shares this site gives out over OCM, and logins with their secrets.

Follows Reva's ocmshareprovider (internal/grpc/services/ocmshareprovider/
ocmshareprovider.go) and the ``ocmshares`` and ``ocmsharecode`` auth
managers (pkg/auth/manager/) at aa6e45a (v3.12.2+11); see docs/devstack.md
for every rule and where we differ:

- ``create``: stat the resource as the caller, one share per (owner,
  resource, grantee), discovery of the receiver, POST the NewShare payload,
  persist only once the receiver accepted it.
- the share ``token`` *is* the shared secret; the WebDAV URI names the share
  id (``{public_url}/remote.php/dav/ocm/{share id}``), never the secret.
- ``authenticate``: client_id = share id (or empty, or the secret itself),
  client_secret = the shared secret; the user is the share's grantee as a
  federated user; the token scope ``ocmshare:<id>`` names the shared
  resource and the role. ``authenticate_code`` is the same login for the
  code flow (``/ocm/token``), without the ``must-exchange-token`` refusal.

Methods raise the devstack's typed errors; the gateway turns them into CS3
statuses (``gateway.STATUS_CODES``).
"""

from __future__ import annotations

import json
import logging
import posixpath
import secrets
import time
from typing import Any, Callable, Protocol

from cs3.auth.provider.v1beta1 import resources_pb2 as auth_res
from cs3.identity.user.v1beta1 import resources_pb2 as user_res
from cs3.sharing.ocm.v1beta1 import ocm_api_pb2 as ocm_api
from cs3.sharing.ocm.v1beta1 import resources_pb2 as ocm_res
from cs3.storage.provider.v1beta1 import resources_pb2 as sp_res
from cs3.types.v1beta1 import types_pb2
from google.protobuf import json_format

from .errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied, Unimplemented
from .ocm_model import (AUTH_ROLES, DEFAULT_APP_NAME, EXCHANGE_TOKEN, OCM_PREFIX, ROLE_EDITOR, ROLE_VIEWER,
                        SCOPE_KIND, WEBAPP_ROOT, WEBAPP_SERVICE_PATH, WEBDAV_ROOT, access_methods_for_role,
                        federated_user_id, format_ocm_address, new_secret, new_share_id, normalize_domain, now_ts,
                        resource_key, role_of_access_methods, user_key)
from .ocm_payload import receives_webapp, webapp_permission_words, webapp_requirements, webdav_permission_words
from .ocm_peers import OCMSender, TrustedPeers
from .ocm_store import OCMStore, SentShare
from .store import Store

log = logging.getLogger("cs3collab.devstack.ocm")


class ResourceLookup(Protocol):
    """Stat a resource by id as a local user (``DevstackSite.stat_by_id``);
    raises NotFound / PermissionDenied."""

    async def stat_by_id(self, resource_id: sp_res.ResourceId, caller: user_res.User) -> sp_res.ResourceInfo: ...


class OCMConfig:
    """Settings of this site's OCM.

    Args:
        domain: this site's OCM fqdn (the part after "@" in its users' OCM
            addresses; the users' idp in the devstack).
        public_url: base URL of this site's HTTP server as peers reach it
            (discovery, ``/ocm`` and the WebDAV/webapp URIs live under it);
            a callable is asked each time (the site's URL is known only once
            its port is bound).
        provider_name: the ``provider`` field of discovery.
        app_name: ``appName`` sent with webapp protocols whose access method
            names none.
        webapp_url: asked for the URL of this site's collaboration service
            each time a share is sent; a non-empty answer is the webapp
            ``uri`` of every share (the service takes the share id and secret
            itself), else ``{public_url}/app/ocm/{share id}``.
        require_accepted_user: as Reva's ``ocmshares`` / ``ocmsharecode`` auth
            managers, log a grantee in only when they are an accepted user
            (an invitation contact) of the share's creator; False (the
            default) keeps trusted peers auto-accepted.
    """

    def __init__(self, domain: str, public_url: str | Callable[[], str], *,
                 provider_name: str = "cs3collab devstack", app_name: str = DEFAULT_APP_NAME,
                 webapp_url: Callable[[], str] | None = None, require_accepted_user: bool = False) -> None:
        self.domain = normalize_domain(domain)
        self.require_accepted_user = require_accepted_user
        self._public_url = public_url
        self._webapp_url = webapp_url
        self.provider_name = provider_name
        self.app_name = app_name

    @property
    def public_url(self) -> str:
        url = self._public_url() if callable(self._public_url) else self._public_url
        return url.rstrip("/")

    @property
    def endpoint(self) -> str:
        return self.public_url + OCM_PREFIX

    def webdav_uri(self, share_id: str) -> str:
        return self.public_url + WEBDAV_ROOT + share_id

    def webapp_uri(self, share_id: str) -> str:
        """Reva ``webappURL``: the webapp endpoint joined with the share id. With a
        collaboration service configured, its per-share route
        ``<service>/api/collaboration/ocm/<share id>``."""
        service = self._webapp_url() if self._webapp_url is not None else ""
        if service:
            return service.rstrip("/") + WEBAPP_SERVICE_PATH + share_id
        return self.public_url + WEBAPP_ROOT + share_id


def in_store(store: Store, fn: Callable[..., Any], *args: Any):
    """Run ``fn(OCMStore, *args)`` on the site's store thread, in one transaction."""
    return store.run(lambda tree: fn(OCMStore(tree.conn), *args))


def share_scope(rec: SentShare) -> dict[str, auth_res.Scope]:
    """The token scope of an ``ocmshares`` login (Reva ``AddOCMShareScope``):
    ``ocmshare:<id>`` → {resource_id, id} with the share's role. The secret
    itself is not put in the token."""
    value = json.dumps({"resource_id": json_format.MessageToDict(rec.share.resource_id,
                                                                 preserving_proto_field_name=True),
                        "id": rec.id}).encode()
    return {f"{SCOPE_KIND}:{rec.id}": auth_res.Scope(
        resource=types_pb2.OpaqueEntry(decoder="json", value=value), role=AUTH_ROLES[rec.role])}


def _visible(rec: SentShare, caller: user_res.User) -> bool:
    s = rec.share
    return user_key(caller.id) in (user_key(s.owner), user_key(s.creator), user_key(s.grantee.user_id))


def _manages(rec: SentShare | None, caller: user_res.User) -> bool:
    return rec is not None and user_key(caller.id) in (user_key(rec.share.owner), user_key(rec.share.creator))


def _copy_method(m: ocm_res.AccessMethod) -> ocm_res.AccessMethod:
    out = ocm_res.AccessMethod()
    out.CopyFrom(m)
    return out


class OCMShares:
    """The sending side of one site's OCM.

    Args:
        config: see OCMConfig.
        store: the site's store (OCM tables live in it).
        peers: the trusted peers.
        resources: ResourceLookup (stat by id as a local user).
        sender: OCMSender; default one over ``peers``.
    """

    def __init__(self, config: OCMConfig, store: Store, peers: TrustedPeers, resources: ResourceLookup,
                 sender: OCMSender | None = None) -> None:
        self.config = config
        self.store = store
        self.peers = peers
        self.resources = resources
        self.sender = sender or OCMSender(peers)
        #: ``async (creator id, remote user id) -> bool``: whether the remote user
        #: is an accepted user (contact) of the creator; set by ``install_ocm``
        self.accepted_user: Callable[[user_res.UserId, user_res.UserId], Any] | None = None

    async def create(self, req: ocm_api.CreateOCMShareRequest, caller: user_res.User) -> tuple[ocm_res.Share, str]:
        """CreateOCMShare; returns the share and the recipient's display name."""
        if caller.id.type == user_res.USER_TYPE_FEDERATED:
            raise PermissionDenied("federated users cannot create OCM shares")
        if not req.HasField("resource_id") or not req.resource_id.opaque_id:
            raise InvalidArgument("resource_id is required")
        g = req.grantee
        if g.type != sp_res.GRANTEE_TYPE_USER or g.WhichOneof("id") != "user_id" or not g.user_id.opaque_id:
            raise InvalidArgument("grantee must be a user")
        # Reva 3.x ocmshareprovider: the caller passes the provider as
        # GetInfoByDomain describes it, with its OCM service endpoint
        # (ocminvitemanager.GetOCMEndpoint); a bare domain is refused
        if not any(s.endpoint.type.name == "OCM" and s.endpoint.path for s in req.recipient_mesh_provider.services):
            raise InvalidArgument("the selected provider does not have an OCM endpoint")
        domain = normalize_domain(req.recipient_mesh_provider.domain or g.user_id.idp)
        if not domain:
            raise InvalidArgument("grantee has no provider domain (idp)")
        if domain == self.config.domain:
            raise InvalidArgument("the grantee is a local user: create a user share")
        if not self.peers.is_trusted(domain):
            raise InvalidArgument(f"provider not trusted: {domain}")
        if g.user_id.idp and normalize_domain(g.user_id.idp) != domain:
            raise InvalidArgument("grantee idp and recipient provider differ")
        methods = list(req.access_methods) or access_methods_for_role(ROLE_VIEWER, app_name=self.config.app_name)
        role = role_of_access_methods(methods)
        if role is None:
            raise InvalidArgument("access methods grant neither read nor write")
        now = time.time()
        expiration = req.expiration.seconds if req.HasField("expiration") else 0
        if expiration and expiration <= now:
            raise InvalidArgument("expiration is in the past")

        info = await self.resources.stat_by_id(req.resource_id, caller)
        perms, is_owner = info.permission_set, user_key(info.owner) == user_key(caller.id)
        if not is_owner and not perms.add_grant:
            raise PermissionDenied("no permission to share this resource")
        if role == ROLE_EDITOR and not is_owner and not perms.initiate_file_upload:
            raise PermissionDenied("cannot grant more than one has")
        grantee = federated_user_id(g.user_id.opaque_id, domain)
        owner = info.owner if info.owner.opaque_id else caller.id
        if await in_store(self.store, OCMStore.get_sent_by_key, owner, req.resource_id, grantee) is not None:
            raise AlreadyExists("share already exists")

        share_id = new_share_id()
        ts = now_ts(now)
        share = ocm_res.Share(
            id=ocm_res.ShareId(opaque_id=share_id), resource_id=req.resource_id, token=new_secret(),
            name=info.name or posixpath.basename((info.path or "").rstrip("/")) or share_id,
            grantee=sp_res.Grantee(type=sp_res.GRANTEE_TYPE_USER, user_id=grantee),
            owner=owner, creator=caller.id, ctime=ts, mtime=ts, share_type=ocm_res.SHARE_TYPE_USER,
            access_methods=methods, recipient_type=ocm_res.RECIPIENT_TYPE_USER,
        )
        if expiration:
            share.expiration.CopyFrom(types_pb2.Timestamp(seconds=expiration))
        resource_type = "folder" if info.type == sp_res.RESOURCE_TYPE_CONTAINER else "file"
        body = self.share_payload(share, caller, resource_type=resource_type,
                                  discovery=await self.sender.discover(domain))
        answer = await self.sender.send_share(domain, body)
        display = answer.get("recipientDisplayName")
        display = display if isinstance(display, str) else ""
        await in_store(self.store, OCMStore.insert_sent, SentShare(share, role, domain, recipient_display_name=display))
        log.info("ocm share=%s name=%s to=%s role=%s", share_id, share.name, format_ocm_address(grantee), role)
        return share, display

    def share_payload(self, share: ocm_res.Share, sender: user_res.User, *, resource_type: str,
                      discovery: dict[str, Any] | None = None) -> dict[str, Any]:
        """The spec's NewShare body for ``share``, as Reva 3.x ``CreateOCMShare``
        builds it: the webdav protocol always; the webapp protocol only in the
        OCM 1.2+ form (``uri`` = webapp endpoint/<share id>, ``permissions``,
        ``targets`` ["blank"], ``requirements`` (default
        ["must-exchange-token"]), ``appName``) and only to a receiver that
        advertises ``webapp-receive`` with target "blank" and the
        ``exchange-token`` capability."""
        d = self.config.domain
        protocol: dict[str, Any] = {"name": "multi", "options": {}}
        webapp_ok = receives_webapp(discovery, resource_type)
        for m in share.access_methods:
            which = m.WhichOneof("term")
            if which == "webdav_options" and "webdav" not in protocol:
                words = webdav_permission_words(m.webdav_options.permissions)
                if words:
                    protocol["webdav"] = {"sharedSecret": share.token, "permissions": words,
                                          "uri": self.config.webdav_uri(share.id.opaque_id)}
                    if m.webdav_options.requirements:
                        protocol["webdav"]["requirements"] = list(m.webdav_options.requirements)
            elif which == "webapp_options" and "webapp" not in protocol and webapp_ok:
                protocol["webapp"] = {
                    "uri": self.config.webapp_uri(share.id.opaque_id),
                    "sharedSecret": share.token,
                    "permissions": webapp_permission_words(m.webapp_options.permissions),
                    "requirements": webapp_requirements(m),
                    "targets": ["blank"],
                    "appName": m.webapp_options.app_name or self.config.app_name,
                }
        if "webdav" not in protocol and "webapp" not in protocol:
            raise InvalidArgument("no access method can be offered to the receiver")
        body: dict[str, Any] = {
            "shareWith": format_ocm_address(share.grantee.user_id),
            "name": share.name,
            "providerId": share.id.opaque_id,
            "owner": f"{share.owner.opaque_id}@{d}",
            "sender": f"{sender.id.opaque_id}@{d}",
            "ownerDisplayName": sender.display_name if user_key(share.owner) == user_key(sender.id)
            else share.owner.opaque_id,
            "senderDisplayName": sender.display_name or sender.username,
            "shareType": "user",
            "resourceType": resource_type,
            "protocol": protocol,
        }
        if share.HasField("expiration") and share.expiration.seconds:
            body["expiration"] = int(share.expiration.seconds)
        return body

    async def _lookup(self, ref: ocm_res.ShareReference) -> SentShare | None:
        which = ref.WhichOneof("spec")
        if which == "id":
            return await in_store(self.store, OCMStore.get_sent, ref.id.opaque_id)
        if which == "token":
            return await in_store(self.store, OCMStore.get_sent_by_token, ref.token)
        if which == "key":
            k = ref.key
            return await in_store(self.store, OCMStore.get_sent_by_key, k.owner, k.resource_id, k.grantee.user_id)
        raise InvalidArgument("ref is required")

    async def get(self, ref: ocm_res.ShareReference, caller: user_res.User) -> ocm_res.Share:
        """GetOCMShare: owner, creator or grantee; by token the token is the credential."""
        rec = await self._lookup(ref)
        if rec is None or (ref.WhichOneof("spec") != "token" and not _visible(rec, caller)):
            raise NotFound("share does not exist")
        return rec.share

    async def get_by_token(self, token: str) -> ocm_res.Share:
        """GetOCMShareByToken (no login needed): unknown or removed →
        NotFound; expired → PermissionDenied (Reva does not check expiry)."""
        rec = await in_store(self.store, OCMStore.get_sent_by_token, token)
        if rec is None:
            raise NotFound("share does not exist")
        if rec.expired():
            raise PermissionDenied("share expired")
        return rec.share

    async def list_shares(self, filters, caller: user_res.User) -> list[ocm_res.Share]:
        """ListOCMShares: shares the caller owns or created; filters of one
        type OR-ed, different types AND-ed (Reva's sql repository)."""
        F = ocm_api.ListOCMSharesRequest.Filter
        keys = {F.TYPE_RESOURCE_ID: lambda f, s: resource_key(f.resource_id) == resource_key(s.resource_id),
                F.TYPE_OWNER: lambda f, s: user_key(f.owner) == user_key(s.owner),
                F.TYPE_CREATOR: lambda f, s: user_key(f.creator) == user_key(s.creator)}
        groups: dict[int, list] = {}
        for f in filters:
            groups.setdefault(f.type, []).append(f)
        records = await in_store(self.store, OCMStore.list_sent_for_user, caller.id)
        return [r.share for r in records
                if all(any(keys[t](f, r.share) for f in fs) for t, fs in groups.items() if t in keys)]

    async def remove(self, ref: ocm_res.ShareReference, caller: user_res.User) -> None:
        """RemoveOCMShare: owner or creator (others: NotFound). The secret
        stops working at once; the peer is told with a SHARE_UNSHARED
        notification (best effort; Reva has a TODO here)."""
        rec = await self._lookup(ref)
        if not _manages(rec, caller) or not await in_store(self.store, OCMStore.remove_sent, rec.id):
            raise NotFound("share does not exist")
        log.info("ocm share=%s removed", rec.id)
        await self.sender.notify(rec.remote_domain, {
            "notificationType": "SHARE_UNSHARED",
            "resourceType": "file",
            "providerId": rec.id,
            "notification": {"sharedSecret": rec.secret, "message": "the share was removed"},
        })

    async def update(self, ref: ocm_res.ShareReference, fields, caller: user_res.User) -> ocm_res.Share:
        """UpdateOCMShare: owner or creator (others: NotFound); no fields is a
        no-op (Reva). ``expiration``: set (0 = none). ``access_methods``: each
        replaces the permissions of the share's method of the same kind
        (webdav, webapp), as Reva's sql repository updates them in place; a
        kind the share does not have → InvalidArgument (Reva ignores it).
        The share's role follows the new methods and applies to live
        ``ocmshares`` tokens at their next call (``check_share_scope``); the
        peer gets the share again (the spec's repeated NewShare, which updates
        the received share) so that its user sees the new permissions."""
        rec = await self._lookup(ref)
        if not _manages(rec, caller):
            raise NotFound("share does not exist")
        methods = [_copy_method(m) for m in rec.share.access_methods]
        changed_access = False
        for f in fields:
            which = f.WhichOneof("field")
            if which == "expiration":
                exp = int(f.expiration.seconds)
                await in_store(self.store, OCMStore.update_sent_expiration, rec.id, exp or None)
            elif which == "access_methods":
                new = f.access_methods
                kind = new.WhichOneof("term")
                slot = next((i for i, m in enumerate(methods) if m.WhichOneof("term") == kind), None)
                if kind not in ("webdav_options", "webapp_options") or slot is None:
                    raise InvalidArgument(f"the share has no {kind or 'such'} access method to update")
                if kind == "webdav_options":
                    methods[slot].webdav_options.permissions.CopyFrom(new.webdav_options.permissions)
                else:
                    methods[slot].webapp_options.permissions.CopyFrom(new.webapp_options.permissions)
                changed_access = True
            else:
                raise InvalidArgument("UpdateOCMShare field must be expiration or access_methods")
        if changed_access:
            role = role_of_access_methods(methods)
            if role is None:
                raise InvalidArgument("access methods grant neither read nor write")
            info = await self.resources.stat_by_id(rec.share.resource_id, caller)
            if role == ROLE_EDITOR and user_key(info.owner) != user_key(caller.id) \
                    and not info.permission_set.initiate_file_upload:
                raise PermissionDenied("cannot grant more than one has")
            rec = await in_store(self.store, OCMStore.update_sent_access, rec.id, methods, role)
            if rec is None:
                raise NotFound("share does not exist")
            log.info("ocm share=%s role=%s updated by=%s", rec.id, role, caller.username)
            await self._resend(rec, caller, info)
        current = await in_store(self.store, OCMStore.get_sent, rec.id)
        if current is None:
            raise NotFound("share does not exist")
        return current.share

    async def _resend(self, rec: SentShare, caller: user_res.User, info: sp_res.ResourceInfo) -> None:
        """Best effort: POST the share to the peer again with its new
        permissions (the receiver updates its copy); a failure is logged and
        does not undo the update, as the role is enforced here anyway."""
        try:
            resource_type = "folder" if info.type == sp_res.RESOURCE_TYPE_CONTAINER else "file"
            body = self.share_payload(rec.share, caller, resource_type=resource_type,
                                      discovery=await self.sender.discover(rec.remote_domain))
            await self.sender.send_share(rec.remote_domain, body)
        except Exception as e:  # noqa: BLE001 - the peer's copy is advisory
            log.warning("ocm share=%s update not delivered to=%s: %s", rec.id, rec.remote_domain,
                        getattr(e, "message", "") or type(e).__name__)

    async def authenticate(self, client_id: str, client_secret: str) -> tuple[user_res.User, dict[str, auth_res.Scope]]:
        """The ``ocmshares`` auth provider (Reva pkg/auth/manager/ocmshares at
        aa6e45a). Refusals as Reva's authprovider maps them: unknown secret →
        NotFound; missing secret, another share id, expired share, a share
        whose webdav method requires ``must-exchange-token``, granting nothing
        → PermissionDenied. The user is the grantee as a federated user with
        opaque ``ocm-share-role`` and ``ocm-share-id``."""
        if not client_secret:
            raise PermissionDenied("missing shared secret")
        rec = await in_store(self.store, OCMStore.get_sent_by_token, client_secret)
        if rec is None:
            raise NotFound("unknown shared secret")
        if client_id and not secrets.compare_digest(client_id, rec.id) \
                and not secrets.compare_digest(client_id, rec.secret):
            raise PermissionDenied("invalid shared secret")
        for m in rec.share.access_methods:
            if m.WhichOneof("term") == "webdav_options" and EXCHANGE_TOKEN in m.webdav_options.requirements:
                raise PermissionDenied("share requires token exchange")
        return await self._grantee(rec)

    async def authenticate_code(self, client_id: str, code: str) -> tuple[user_res.User, dict[str, auth_res.Scope]]:
        """The ``ocmsharecode`` auth provider (Reva pkg/auth/manager/ocmsharecode,
        #5552): the code of the OCM code flow is the share's secret;
        ``client_id`` names the receiving server, not a share, and is only
        logged. Unknown code → NotFound; expired or granting nothing →
        PermissionDenied. Same user and scope as ``ocmshares``."""
        if not code:
            raise PermissionDenied("missing code")
        rec = await in_store(self.store, OCMStore.get_sent_by_token, code)
        if rec is None:
            raise NotFound("unknown code")
        log.info("ocm code exchanged share=%s client=%s", rec.id, client_id or "-")
        return await self._grantee(rec)

    async def _grantee(self, rec: SentShare) -> tuple[user_res.User, dict[str, auth_res.Scope]]:
        if rec.expired():
            raise PermissionDenied("share expired")
        if role_of_access_methods(rec.share.access_methods) is None:
            raise PermissionDenied("share grants no access")
        gid = rec.share.grantee.user_id
        if self.config.require_accepted_user and self.accepted_user is not None \
                and not await self.accepted_user(rec.share.creator, gid):
            # Reva: GetAcceptedUser(grantee, user-filter = the share's creator) → NOT_FOUND
            raise NotFound(f"{format_ocm_address(gid)} is not an accepted user of the share's creator")
        user = user_res.User(
            id=federated_user_id(gid.opaque_id, gid.idp),
            username=format_ocm_address(gid),
            display_name=rec.recipient_display_name or format_ocm_address(gid),
            opaque=types_pb2.Opaque(map={
                "ocm-share-role": types_pb2.OpaqueEntry(decoder="plain", value=rec.role.encode()),
                "ocm-share-id": types_pb2.OpaqueEntry(decoder="plain", value=rec.id.encode()),
            }),
        )
        return user, share_scope(rec)
