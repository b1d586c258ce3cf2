"""OCM vocabulary shared by every OCM module: addresses, ids, roles.

- OCM addresses are ``<opaque id>@<fqdn>``, split at the last "@" (Reva
  ``ocmd.FormatOCMUser`` / ``CanonicalizeRemoteUserID``); a user of a peer
  site is ``UserId{idp: fqdn, opaque_id, type: USER_TYPE_FEDERATED}``.
- Roles follow Reva ``pkg/ocm/share/utils.go`` ``GetRole`` over the access
  methods of a share, with the viewer and editor permission sets of
  ``pkg/permissions/role.go`` (see ``permissions.py``).
- The scope of an ``ocmshares`` token is named ``ocmshare:<share id>``, as
  Reva's ``pkg/auth/scope/ocmshare.go``; ``OCM_SCOPE_METHODS`` lists the gRPC
  calls such a token may make.
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Iterable
from urllib.parse import urlsplit

from cs3.auth.provider.v1beta1 import resources_pb2 as auth_res
from cs3.identity.user.v1beta1 import resources_pb2 as user_res
from cs3.sharing.ocm.v1beta1 import resources_pb2 as ocm_res
from cs3.storage.provider.v1beta1 import resources_pb2 as sp_res
from cs3.types.v1beta1 import types_pb2

from . import permissions as P

OCM_API_VERSION = "1.3.0"  # Reva wellknown ocm.go OCMAPIVersion at aa6e45a
OCM_PREFIX = "/ocm"
TOKEN_PATH = "/token"  # ocmd routes.go tokenPath: the code-flow token endpoint
EXCHANGE_TOKEN = "must-exchange-token"  # the requirement in a share's protocol
OCM_API_VERSION_SIGNED = "1.4.0"  # a devstack that signs (OCM 1.4 http-sig; Reva at aa6e45a does not)
CAP_HTTP_SIG = "http-sig"  # OCM 1.4: requests are RFC 9421-signed, keys at discovery's jwksUri
CAP_EXCHANGE_TOKEN = "exchange-token"  # the discovery capability (with tokenEndPoint)
WEBAPP_TARGETS = ("blank", "iframe")  # ocmd specs.go validWebappTargets
WEBDAV_ROOT = "/remote.php/dav/ocm/"
WEBAPP_ROOT = "/app/ocm/"
WEBAPP_SERVICE_PATH = "/api/collaboration/ocm/"
"""Where a cs3collab service answers for one OCM share: the webapp ``uri`` of a
share is ``<service URL>/api/collaboration/ocm/<share id>`` (Reva builds it as
``webapp_endpoint`` joined with the share id)."""
DEFAULT_APP_NAME = "cs3collab"
SECRET_BYTES = 24  # 32 url-safe characters, as Reva's utils.RandString(32)
SCOPE_KIND = "ocmshare"

ROLE_VIEWER = "viewer"
ROLE_EDITOR = "editor"
AUTH_ROLES = {ROLE_VIEWER: auth_res.ROLE_VIEWER, ROLE_EDITOR: auth_res.ROLE_EDITOR}

# gRPC methods an ``ocmshares`` (or code-flow) token may call, as Reva's
# pkg/auth/scope/ocmshare.go ``ocmShareScope`` at aa6e45a (v3.12.2+11); which
# resources it reaches is then decided by the scope's resource and the share's
# current role (access.py). Reva 3.x allows neither WhoAmI nor ListFileVersions
# to such a token (the interceptor answers PERMISSION_DENIED); GetPath comes
# from the interceptor's reference expansion (internal/grpc/interceptors/auth/
# scope.go ``extractRefForReaderRole``). GetUser and GetOCMShareByToken are
# unprotected gateway calls, so the scope is never asked about them.
OCM_SCOPE_METHODS = {
    ROLE_VIEWER: frozenset({
        "Stat", "ListContainer", "InitiateFileDownload", "GetLock", "OpenInApp", "GetStorageProviders",
        "GetPath", "GetOCMShare", "GetUserByClaim", "GetDefaultAppProviderForMimeType",
    }),
}
OCM_SCOPE_METHODS[ROLE_EDITOR] = OCM_SCOPE_METHODS[ROLE_VIEWER] | frozenset({
    "CreateContainer", "TouchFile", "Delete", "Move", "InitiateFileUpload", "SetArbitraryMetadata",
    "UnsetArbitraryMetadata", "SetLock", "RefreshLock", "Unlock",
})
_ROLE_OF_AUTH = {v: k for k, v in AUTH_ROLES.items()}


def ocm_scope_allows(role: str | int, method: str) -> bool:
    """Whether a token of an OCM share with ``role`` (name or auth role) may
    call gRPC ``method`` (the bare name, e.g. "Stat")."""
    name = _ROLE_OF_AUTH.get(role, role) if isinstance(role, int) else role
    return method in OCM_SCOPE_METHODS.get(name, frozenset())


# -- addresses and ids ---------------------------------------------------------


def normalize_domain(domain: str) -> str:
    """``https://Site.Example:8443/x`` → ``site.example:8443`` (Reva's
    authorizer ``normalizeDomain``: no scheme, no path, keep the port)."""
    d = (domain or "").strip()
    if not d:
        return ""
    parts = urlsplit(d if "://" in d else "//" + d)
    host = (parts.hostname or "").lower()
    if not host:
        return ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port else host


def parse_ocm_address(address: str) -> tuple[str, str]:
    """Split ``<id>@<fqdn>`` at the last "@" (fqdn normalised); a doubled
    "@fqdn" suffix is dropped. ValueError when either part is empty."""
    if not isinstance(address, str) or "@" not in address:
        raise ValueError("not in the form <id>@<provider>")
    opaque, _, domain = address.rpartition("@")
    domain = normalize_domain(domain)
    suffix = "@" + domain
    if opaque.endswith(suffix):
        opaque = opaque[: -len(suffix)]
    if not opaque or not domain:
        raise ValueError("not in the form <id>@<provider>")
    return opaque, domain


def format_ocm_address(user_id: user_res.UserId, domain: str | None = None) -> str:
    """``<opaque id>@<domain>``; ``domain`` defaults to the id's idp."""
    return f"{user_id.opaque_id}@{normalize_domain(domain or user_id.idp)}"


def federated_user_id(opaque_id: str, domain: str) -> user_res.UserId:
    return user_res.UserId(idp=normalize_domain(domain), opaque_id=opaque_id, type=user_res.USER_TYPE_FEDERATED)


def user_key(user_id: user_res.UserId) -> str:
    """Equality key of a user id: idp and opaque id (Reva utils.UserEqual)."""
    return f"{normalize_domain(user_id.idp) or user_id.idp}\x1f{user_id.opaque_id}"


def resource_key(rid: sp_res.ResourceId) -> str:
    return f"{rid.storage_id}\x1f{rid.space_id}\x1f{rid.opaque_id}"


def new_share_id() -> str:
    return str(uuid.uuid4())


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


def now_ts(now: float | None = None) -> types_pb2.Timestamp:
    t = time.time() if now is None else now
    return types_pb2.Timestamp(seconds=int(t), nanos=int((t % 1) * 1e9))


# -- roles and access methods ----------------------------------------------------


def permissions_for_role(role: str) -> sp_res.ResourcePermissions:
    return P.to_proto(P.EDITOR if role == ROLE_EDITOR else P.VIEWER)


def access_methods_for_role(role: str, *, webapp: bool = True,
                            app_name: str = DEFAULT_APP_NAME) -> list[ocm_res.AccessMethod]:
    """What a front-end sends for a role (Reva OCS remote.go): one webdav and
    one webapp method, both with the role's permission set."""
    if role not in AUTH_ROLES:
        raise ValueError(f"unknown role {role!r}")
    perms = permissions_for_role(role)
    methods = [ocm_res.AccessMethod(webdav_options=ocm_res.WebDAVAccessMethod(
        permissions=perms, access_types=[ocm_res.ACCESS_TYPE_REMOTE]))]
    if webapp:
        methods.append(ocm_res.AccessMethod(webapp_options=ocm_res.WebappAccessMethod(
            permissions=perms, app_name=app_name)))
    return methods


def role_of_access_methods(methods: Iterable[ocm_res.AccessMethod]) -> str | None:
    """Reva ``GetRole``: the first access method that grants something
    decides; upload → editor, download (webdav) or stat (webapp) → viewer."""
    for m in methods:
        which = m.WhichOneof("term")
        if which == "webdav_options":
            p = m.webdav_options.permissions
            if p.initiate_file_upload:
                return ROLE_EDITOR
            if p.initiate_file_download:
                return ROLE_VIEWER
        elif which == "webapp_options":
            p = m.webapp_options.permissions
            if p.initiate_file_upload:
                return ROLE_EDITOR
            if p.stat:
                return ROLE_VIEWER
    return None
