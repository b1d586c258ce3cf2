"""The OCM wire format: discovery, the NewShare body, notifications.

Follows the OCM spec (cs3org/OCM-API spec.yaml, ``NewShare``,
``Discovery``) and Reva's ocmd (internal/http/services/opencloudmesh/ocmd/
specs.go, shares.go). Validation raises the devstack's typed errors; a 400
carries the spec's ``validationErrors`` list in ``details``:
``InvalidArgument`` → 400, ``Unimplemented`` → 501 (share types other than
"user", resource types other than file/folder, unknown protocols).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any, Iterable
from urllib.parse import urlsplit

from cs3.sharing.ocm.v1beta1 import resources_pb2 as ocm_res
from cs3.storage.provider.v1beta1 import resources_pb2 as sp_res

from .errors import InvalidArgument, Unimplemented
from .ocm_model import OCM_API_VERSION, WEBAPP_ROOT, WEBDAV_ROOT, parse_ocm_address

SHARE_TYPES = ("user", "group", "federation")
RESOURCE_TYPES = {"file": ocm_res.SHARE_RESOURCE_TYPE_FILE, "folder": ocm_res.SHARE_RESOURCE_TYPE_CONTAINER}
STORAGE_TYPES = {"file": sp_res.RESOURCE_TYPE_FILE, "folder": sp_res.RESOURCE_TYPE_CONTAINER}
WEBDAV_WORDS = ("read", "write", "share")
VIEW_MODES = ("view", "read", "write")
MAX_FIELD = 2048


def discovery_document(endpoint: str, provider: str) -> dict[str, Any]:
    """``GET /.well-known/ocm`` (spec ``Discovery``; Reva wellknown/ocm.go)."""
    protocols = {"webdav": WEBDAV_ROOT, "webapp": WEBAPP_ROOT}
    return {
        "enabled": True,
        "apiVersion": OCM_API_VERSION,
        "endPoint": endpoint,
        "provider": provider,
        "resourceTypes": [
            {"name": "file", "shareTypes": ["user"], "protocols": dict(protocols)},
            {"name": "folder", "shareTypes": ["user"], "protocols": dict(protocols)},
        ],
        "capabilities": ["/notifications", "/invite-accepted"],
    }


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


# -- receiving ----------------------------------------------------------------------


@dataclass
class IncomingWebDAV:
    shared_secret: str
    permissions: list[str]
    uri: str


@dataclass
class IncomingWebapp:
    uri_template: str
    view_mode: str
    shared_secret: str
    app_name: str = ""


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


def _requirements_ok(value: Any) -> bool:
    # We understand no requirement, and the spec says to refuse a share whose
    # requirements one does not understand; ["none"] (spec example) is fine.
    return value is None or (isinstance(value, list) and all(r == "none" for r in value))


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
    if not _requirements_ok(dav.get("requirements")):
        raise invalid("protocol.webdav.requirements", "UNSUPPORTED_REQUIREMENT")
    uri = dav.get("uri", "")
    if not isinstance(uri, str) or len(uri) > MAX_FIELD:
        raise invalid("protocol.webdav.uri")
    _check_uri(uri, "protocol.webdav.uri")
    return IncomingWebDAV(secret, list(dict.fromkeys(perms)), uri)


def _webapp(app: Any) -> IncomingWebapp:
    if not isinstance(app, dict):
        raise invalid("protocol.webapp")
    uri = app.get("uriTemplate") or app.get("uri")
    if not isinstance(uri, str) or not uri or len(uri) > MAX_FIELD:
        raise invalid("protocol.webapp.uriTemplate", "REQUIRED")
    _check_uri(uri, "protocol.webapp.uriTemplate")
    if not urlsplit(uri).netloc:
        raise invalid("protocol.webapp.uriTemplate", "MUST_BE_ABSOLUTE")
    mode = app.get("viewMode")
    if mode is None and isinstance(app.get("permissions"), list):  # the OCM 1.2+ form
        words = app["permissions"]
        mode = "write" if "write" in words else "read" if "read" in words else "view"
    if mode not in VIEW_MODES:
        raise invalid("protocol.webapp.viewMode")
    if not _requirements_ok(app.get("requirements")):
        raise invalid("protocol.webapp.requirements", "UNSUPPORTED_REQUIREMENT")
    secret, app_name = app.get("sharedSecret", ""), app.get("appName", "")
    if not isinstance(secret, str) or not isinstance(app_name, str):
        raise invalid("protocol.webapp")
    return IncomingWebapp(uri, mode, secret, app_name[:256])


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


def webdav_protocol_from_words(uri: str, secret: str, words: Iterable[str]) -> ocm_res.Protocol:
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
        access_types=[ocm_res.ACCESS_TYPE_REMOTE]))


def webapp_protocol_from_mode(uri: str, secret: str, mode: str, app_name: str = "") -> ocm_res.Protocol:
    p = sp_res.ResourcePermissions(get_path=True, list_container=True, stat=True)
    if mode in ("read", "write"):
        p.initiate_file_download = True
    if mode == "write":
        p.initiate_file_upload = True
    return ocm_res.Protocol(webapp_options=ocm_res.WebappProtocol(
        uri=uri, shared_secret=secret, share_permissions=p, app_name=app_name))


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
