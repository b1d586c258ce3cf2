"""The OCM wire format: discovery, the NewShare body, notifications.

Follows the OCM spec 1.3.0 (cs3org/OCM-API spec.yaml, ``NewShare``,
``Discovery``) and Reva's ocmd at aa6e45a (v3.12.2+11;
internal/http/services/opencloudmesh/ocmd/specs.go, shares.go) and wellknown
(internal/http/services/wellknown/ocm.go). Validation raises the devstack's typed errors; a 400
carries the spec's ``validationErrors`` list in ``details``:
``InvalidArgument`` → 400, ``Unimplemented`` → 501 (share types other than
"user", resource types other than file/folder, unknown protocols).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import Any, Iterable
from urllib.parse import urlsplit

from cs3.sharing.ocm.v1beta1 import resources_pb2 as ocm_res
from cs3.storage.provider.v1beta1 import resources_pb2 as sp_res

from .errors import InvalidArgument, Unimplemented
from .ocm_model import (CAP_EXCHANGE_TOKEN, CAP_HTTP_SIG, EXCHANGE_TOKEN, OCM_API_VERSION, OCM_API_VERSION_SIGNED,
                        TOKEN_PATH, WEBAPP_TARGETS, WEBDAV_ROOT, parse_ocm_address)

SHARE_TYPES = ("user", "group", "federation")
RESOURCE_TYPES = {"file": ocm_res.SHARE_RESOURCE_TYPE_FILE, "folder": ocm_res.SHARE_RESOURCE_TYPE_CONTAINER}
STORAGE_TYPES = {"file": sp_res.RESOURCE_TYPE_FILE, "folder": sp_res.RESOURCE_TYPE_CONTAINER}
WEBDAV_WORDS = ("read", "write", "share")
VIEW_MODES = ("view", "read", "write")
WEBAPP_WORDS = ("view", "read", "write", "share")
WEBDAV_REQUIREMENTS = (EXCHANGE_TOKEN,)
WEBAPP_REQUIREMENTS = ("must-use-mfa", EXCHANGE_TOKEN)
MAX_FIELD = 2048


def discovery_document(endpoint: str, provider: str, public_url: str, *, jwks_uri: str = "") -> dict[str, Any]:
    """``GET /.well-known/ocm``, OCM 1.3.0 as Reva's wellknown ``ocm.go``
    (aa6e45a) serves it with webapps and the code flow enabled:
    ``webdav-receive`` / ``webapp-receive`` (target ``blank``),
    ``exchange-token`` with ``tokenEndPoint``. Criteria are empty: a trusted
    peer needs no invitation to share here (see docs/devstack.md). With
    ``jwks_uri`` (a site that signs), OCM 1.4.0: the ``http-sig`` capability
    and ``jwksUri``."""
    protocols = {"webdav": WEBDAV_ROOT, "webdav-receive": {"uri": "absolute"},
                 "webapp": {}, "webapp-receive": {"targets": ["blank"]}}
    return {
        "enabled": True,
        "apiVersion": OCM_API_VERSION,
        "endPoint": endpoint,
        "provider": provider,
        "resourceTypes": [
            {"name": "file", "shareTypes": ["user"], "protocols": dict(protocols)},
            {"name": "folder", "shareTypes": ["user"], "protocols": dict(protocols)},
        ],
        "capabilities": ["invites", "protocol-object", "notifications", CAP_EXCHANGE_TOKEN],
        "criteria": [],
        "inviteAcceptDialog": public_url.rstrip("/") + "/open-cloud-mesh/accept-invite",
        "tokenEndPoint": endpoint.rstrip("/") + TOKEN_PATH,
    } | ({"apiVersion": OCM_API_VERSION_SIGNED, "jwksUri": jwks_uri,
          "capabilities": ["invites", "protocol-object", "notifications", CAP_EXCHANGE_TOKEN, CAP_HTTP_SIG]}
         if jwks_uri else {})


def receives_webapp(discovery: dict[str, Any] | None, resource_type: str) -> bool:
    """Whether a receiver takes the OCM 1.2+ webapp form, as Reva's
    ``CreateOCMShare`` decides it: ``webapp-receive`` with target ``blank``
    for the resource type, and the ``exchange-token`` capability."""
    if not isinstance(discovery, dict):
        return False
    protos = advertised_protocols(discovery, resource_type) or {}
    receive = protos.get("webapp-receive")
    targets = receive.get("targets") if isinstance(receive, dict) else None
    caps = discovery.get("capabilities")
    return (isinstance(targets, list) and "blank" in targets
            and isinstance(caps, list) and CAP_EXCHANGE_TOKEN in caps)


def advertised_protocols(discovery: dict[str, Any] | None, resource_type: str) -> dict[str, Any] | None:
    """The ``protocols`` a discovery document lists for ``resource_type``."""
    if not isinstance(discovery, dict):
        return None
    for rt in discovery.get("resourceTypes") or []:
        if isinstance(rt, dict) and rt.get("name") == resource_type:
            protos = rt.get("protocols")
            return protos if isinstance(protos, dict) else {}
    return {}


# -- sending -----------------------------------------------------------------------


def webdav_permission_words(p: sp_res.ResourcePermissions) -> list[str]:
    """Reva ``getWebdavProtocol``: download → "read", upload → "write"."""
    return (["read"] if p.initiate_file_download else []) + (["write"] if p.initiate_file_upload else [])


def view_mode(p: sp_res.ResourcePermissions) -> str:
    return "write" if p.initiate_file_upload else "read" if p.initiate_file_download else "view"


def webapp_requirements(m: ocm_res.AccessMethod) -> list[str]:
    """The requirements sent with a webapp access method: its own, else Reva's
    ``DefaultWebappRequirements`` (pkg/ocm/share/utils.go): ["must-exchange-token"]."""
    return list(m.webapp_options.requirements) or [EXCHANGE_TOKEN]


def webapp_permission_words(p: sp_res.ResourcePermissions) -> list[str]:
    """Reva ``getWebappProtocol``: download → "read" (else "view"), upload → "write",
    add_grant → "share"."""
    return ((["read"] if p.initiate_file_download else ["view"]) + (["write"] if p.initiate_file_upload else [])
            + (["share"] if p.add_grant else []))


# -- receiving ----------------------------------------------------------------------


@dataclass
class IncomingWebDAV:
    shared_secret: str
    permissions: list[str]
    uri: str
    requirements: list[str] = field(default_factory=list)


@dataclass
class IncomingWebapp:
    uri: str
    permissions: list[str]
    shared_secret: str
    requirements: list[str]
    targets: list[str]
    app_name: str = ""

    @property
    def view_mode(self) -> str:
        return "write" if "write" in self.permissions else "read" if "read" in self.permissions else "view"


@dataclass
class IncomingShare:
    """A validated ``POST /shares`` body."""

    share_with: tuple[str, str]  # (opaque id, domain)
    name: str
    provider_id: str
    owner: tuple[str, str]
    sender: tuple[str, str]
    share_type: str
    resource_type: str
    description: str = ""
    owner_display_name: str = ""
    sender_display_name: str = ""
    expiration: int = 0
    webdav: IncomingWebDAV | None = None
    webapp: IncomingWebapp | None = None
    legacy: bool = False


def invalid(name: str, message: str = "INVALID", text: str = "") -> InvalidArgument:
    """An InvalidArgument carrying the spec's ``validationErrors`` entry."""
    err = InvalidArgument(text or f"invalid parameter {name}")
    err.details = [{"name": name, "message": message}]
    return err


def _string(body: dict, name: str, *, required: bool) -> str:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise invalid(name, "REQUIRED")
        return ""
    if not isinstance(value, str) or len(value) > MAX_FIELD:
        raise invalid(name)
    return value


def _address(body: dict, name: str) -> tuple[str, str]:
    value = _string(body, name, required=True)
    try:
        return parse_ocm_address(value)
    except ValueError:
        raise invalid(name, "NOT_AN_OCM_ADDRESS") from None


def _words(value: Any, allowed: tuple[str, ...], name: str, *, required: bool,
           message: str = "INVALID") -> list[str]:
    """A list of known words (Reva ocmd ``validateVocabulary``); ["none"], the
    spec's example for "no requirement", counts as empty."""
    if value is None or value == []:
        if required:
            raise invalid(name, "REQUIRED")
        return []
    if not isinstance(value, list) or not all(isinstance(w, str) for w in value):
        raise invalid(name)
    words = [w for w in dict.fromkeys(value) if w != "none"]
    unknown = [w for w in words if w not in allowed]
    if unknown:
        raise invalid(name, message, f"unsupported {name.rsplit('.', 1)[-1]} {unknown[0]!r}")
    return words


def _check_uri(uri: str, name: str) -> None:
    parts = urlsplit(uri)
    if (parts.scheme or parts.netloc) and (parts.scheme not in ("http", "https") or not parts.hostname):
        raise invalid(name, "INVALID_URI")


def _webdav(dav: Any) -> IncomingWebDAV:
    if not isinstance(dav, dict):
        raise invalid("protocol.webdav")
    secret = dav.get("sharedSecret")
    if not isinstance(secret, str) or not secret:
        raise invalid("protocol.webdav.sharedSecret", "REQUIRED")
    perms = dav.get("permissions")
    if not isinstance(perms, list) or not perms or not all(isinstance(p, str) and p in WEBDAV_WORDS for p in perms):
        raise invalid("protocol.webdav.permissions")
    requirements = _words(dav.get("requirements"), WEBDAV_REQUIREMENTS, "protocol.webdav.requirements",
                          required=False, message="UNSUPPORTED_REQUIREMENT")
    uri = dav.get("uri", "")
    if not isinstance(uri, str) or len(uri) > MAX_FIELD:
        raise invalid("protocol.webdav.uri")
    _check_uri(uri, "protocol.webdav.uri")
    return IncomingWebDAV(secret, list(dict.fromkeys(perms)), uri, requirements)


def _webapp(app: Any) -> IncomingWebapp:
    """The OCM 1.2+ webapp form, the only one Reva 3.12 takes (ocmd specs.go
    ``Webapp`` and ``Protocols.Validate``, Reva #5664): ``uri`` (absolute),
    ``sharedSecret``, ``permissions``, ``targets`` and ``requirements``, which
    must include ``must-exchange-token``. The OCM 1.1 form (``uriTemplate``,
    ``viewMode``) is refused."""
    if not isinstance(app, dict):
        raise invalid("protocol.webapp")
    if "uri" not in app and ("uriTemplate" in app or "viewMode" in app):
        raise invalid("protocol.webapp.uri", "LEGACY_FORM",
                      "the OCM 1.1 webapp form (uriTemplate, viewMode) is not accepted: send uri, permissions, "
                      "targets and requirements")
    uri = app.get("uri")
    if not isinstance(uri, str) or not uri or len(uri) > MAX_FIELD:
        raise invalid("protocol.webapp.uri", "REQUIRED")
    _check_uri(uri, "protocol.webapp.uri")
    if not urlsplit(uri).netloc:
        raise invalid("protocol.webapp.uri", "MUST_BE_ABSOLUTE")
    secret, app_name = app.get("sharedSecret"), app.get("appName", "")
    if not isinstance(secret, str) or not secret:
        raise invalid("protocol.webapp.sharedSecret", "REQUIRED")
    if not isinstance(app_name, str):
        raise invalid("protocol.webapp.appName")
    perms = _words(app.get("permissions"), WEBAPP_WORDS, "protocol.webapp.permissions", required=True)
    targets = _words(app.get("targets"), WEBAPP_TARGETS, "protocol.webapp.targets", required=True)
    requirements = _words(app.get("requirements"), WEBAPP_REQUIREMENTS, "protocol.webapp.requirements",
                          required=True, message="UNSUPPORTED_REQUIREMENT")
    if EXCHANGE_TOKEN not in requirements:
        raise invalid("protocol.webapp.requirements", "MUST_EXCHANGE_TOKEN",
                      "protocol webapp requirements must include must-exchange-token")
    return IncomingWebapp(uri, perms, secret, requirements, targets, app_name[:256])


def validate_new_share(body: Any) -> IncomingShare:
    """Validate a Share Creation Notification (spec ``NewShare``)."""
    if not isinstance(body, dict):
        raise InvalidArgument("the request body must be a JSON object")
    share_with = _address(body, "shareWith")
    name = _string(body, "name", required=True)
    provider_id = _string(body, "providerId", required=True)
    owner = _address(body, "owner")
    sender = _address(body, "sender")
    share_type = _string(body, "shareType", required=True)
    if share_type not in SHARE_TYPES:
        raise invalid("shareType")
    resource_type = _string(body, "resourceType", required=True)
    expiration = body.get("expiration")
    if expiration in (None, ""):
        expiration = 0
    if isinstance(expiration, bool) or not isinstance(expiration, int) or expiration < 0:
        raise invalid("expiration")
    protocol = body.get("protocol")
    if not isinstance(protocol, dict):
        raise invalid("protocol", "REQUIRED")
    if "/" in name or name in (".", ".."):
        name = posixpath.basename(name.rstrip("/")) or "shared"
    if share_type != "user":
        raise Unimplemented(f"share type {share_type} is not supported")
    if resource_type not in RESOURCE_TYPES:
        raise Unimplemented(f"resource type {resource_type} is not supported")

    out = IncomingShare(
        share_with=share_with, name=name, provider_id=provider_id, owner=owner, sender=sender,
        share_type=share_type, resource_type=resource_type,
        description=_string(body, "description", required=False),
        owner_display_name=_string(body, "ownerDisplayName", required=False),
        sender_display_name=_string(body, "senderDisplayName", required=False),
        expiration=expiration,
    )
    pname = protocol.get("name", "multi")
    if pname == "multi" or "webdav" in protocol or "webapp" in protocol:
        if protocol.get("webdav") is not None:
            out.webdav = _webdav(protocol["webdav"])
        if protocol.get("webapp") is not None:
            out.webapp = _webapp(protocol["webapp"])
    elif pname == "webdav":
        # OCM 1.0 legacy form: options.sharedSecret; the URI comes from the sender's discovery
        options = protocol.get("options")
        secret = options.get("sharedSecret") if isinstance(options, dict) else None
        if not isinstance(secret, str) or not secret:
            raise invalid("protocol.options.sharedSecret", "REQUIRED")
        out.webdav = IncomingWebDAV(secret, ["read", "write", "share"], "")
        out.legacy = True
    else:
        raise Unimplemented(f"protocol {pname} is not supported")
    if out.webdav is None and out.webapp is None:
        raise invalid("protocol", "NO_SUPPORTED_PROTOCOL")
    return out


def webdav_protocol_from_words(uri: str, secret: str, words: Iterable[str],
                               requirements: Iterable[str] = ()) -> ocm_res.Protocol:
    """Reva ocmd ``WebDAV.ToOCMProtocol``: read → get_path, initiate_file_download,
    list_container, stat; write → initiate_file_upload; share → reshare."""
    words = set(words)
    p = sp_res.ResourcePermissions()
    if "read" in words:
        p.get_path = p.initiate_file_download = p.list_container = p.stat = True
    if "write" in words:
        p.initiate_file_upload = True
    return ocm_res.Protocol(webdav_options=ocm_res.WebDAVProtocol(
        uri=uri, shared_secret=secret,
        permissions=ocm_res.SharePermissions(permissions=p, reshare="share" in words),
        access_types=[ocm_res.ACCESS_TYPE_REMOTE], requirements=list(requirements)))


def webapp_protocol_from(w: IncomingWebapp) -> ocm_res.Protocol:
    """Reva ocmd ``Webapp.ToOCMProtocol``: view → get_path, list_container,
    stat; read → also initiate_file_download; write → initiate_file_upload;
    share → add_grant. Requirements and targets are kept."""
    words = set(w.permissions)
    p = sp_res.ResourcePermissions()
    if words & {"view", "read"}:
        p.get_path = p.list_container = p.stat = True
    if "read" in words:
        p.initiate_file_download = True
    if "write" in words:
        p.initiate_file_upload = True
    if "share" in words:
        p.add_grant = True
    return ocm_res.Protocol(webapp_options=ocm_res.WebappProtocol(
        uri=w.uri, shared_secret=w.shared_secret, share_permissions=p, app_name=w.app_name,
        requirements=w.requirements, targets=w.targets))


def validate_notification(body: Any) -> tuple[str, str, str]:
    """``POST /notifications`` (spec ``NewNotification``): returns
    (notificationType, providerId, sharedSecret or "")."""
    if not isinstance(body, dict):
        raise InvalidArgument("the request body must be a JSON object")
    ntype, provider_id = body.get("notificationType"), body.get("providerId")
    if not isinstance(ntype, str) or not ntype:
        raise invalid("notificationType", "REQUIRED")
    if not isinstance(body.get("resourceType"), str):
        raise invalid("resourceType", "REQUIRED")
    if not isinstance(provider_id, str) or not provider_id:
        raise invalid("providerId", "REQUIRED")
    note = body.get("notification") if isinstance(body.get("notification"), dict) else {}
    secret = note.get("sharedSecret")
    return ntype, provider_id, secret if isinstance(secret, str) else ""
