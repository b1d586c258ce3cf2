"""Access tokens and transfer tokens of one devstack site (JWT, HS256).

Access tokens follow Reva's JWT token manager (cs3org/reva
pkg/token/manager/jwt/jwt.go): registered claims (``iss``, ``aud`` "reva",
``iat``, ``exp``) plus ``user`` (the CS3 User) and ``scope`` (a map of scope
name to ``cs3.auth.provider.v1beta1.Scope``). A token whose scopes contain
the owner scope ("user", ROLE_OWNER) acts with all of the user's rights; any
other token is *restricted* to the resources its scopes name, with each
scope's role (see ``Identity.restricted_roots``).

Transfer tokens follow the gateway's ``transferClaims`` (cs3org/reva
internal/grpc/services/gateway/storageprovider.go ``sign``): a short-lived
JWT naming the target of one download or upload, checked by the data
gateway (internal/http/services/datagateway/datagateway.go).

The signing secret is generated once and kept in ``<data>/jwt-secret`` so
that tokens survive a devstack restart.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import jwt
from cs3.auth.provider.v1beta1 import resources_pb2 as auth_res
from cs3.identity.user.v1beta1 import resources_pb2 as user_res
from cs3.storage.provider.v1beta1 import resources_pb2 as sp_res
from cs3.types.v1beta1 import types_pb2
from google.protobuf import json_format

from .errors import Unauthenticated

AUDIENCE = "reva"
OWNER_SCOPE = "user"
SECRET_FILE = "jwt-secret"


def format_resource_id(rid: sp_res.ResourceId) -> str:
    """``storage$space!opaque``, Reva's storagespace.FormatResourceID."""
    return f"{rid.storage_id}${rid.space_id}!{rid.opaque_id}"


def owner_scope() -> dict[str, auth_res.Scope]:
    """The scope Reva's json auth manager gives a password login
    (pkg/auth/scope/user.go AddOwnerScope): the whole namespace, as owner."""
    ref = json.dumps({"path": "/"}).encode()
    return {OWNER_SCOPE: auth_res.Scope(
        resource=types_pb2.OpaqueEntry(decoder="json", value=ref),
        role=auth_res.ROLE_OWNER,
    )}


def resource_scope(rid: sp_res.ResourceId, role: int) -> dict[str, auth_res.Scope]:
    """A scope limiting a token to one resource (and its children)."""
    value = json_format.MessageToJson(rid, preserving_proto_field_name=True).encode()
    return {f"resource:{format_resource_id(rid)}": auth_res.Scope(
        resource=types_pb2.OpaqueEntry(decoder="json", value=value),
        role=role,
    )}


def _scope_resource_id(scope: auth_res.Scope) -> sp_res.ResourceId | None:
    if scope.resource.decoder != "json":
        return None
    try:
        doc = json.loads(scope.resource.value or b"null")
    except ValueError:
        return None
    if isinstance(doc, dict) and isinstance(doc.get("resource_id"), dict):
        doc = doc["resource_id"]
    elif isinstance(doc, dict) and isinstance(doc.get("id"), dict):  # a ResourceInfo (resourceinfo: scopes)
        doc = doc["id"]
    if not isinstance(doc, dict) or not doc.get("opaque_id"):
        return None
    return sp_res.ResourceId(
        storage_id=str(doc.get("storage_id", "")),
        space_id=str(doc.get("space_id", "")),
        opaque_id=str(doc["opaque_id"]),
    )


@dataclass(frozen=True)
class Identity:
    """Who is calling: the user from the token, its scopes and the token."""

    user: user_res.User
    scopes: dict[str, auth_res.Scope] = field(default_factory=dict)
    token: str = ""

    @property
    def user_key(self) -> tuple[str, str]:
        return (self.user.id.idp, self.user.id.opaque_id)

    def restricted_roots(self) -> list[tuple[str, int]] | None:
        """None for an owner-scoped token; otherwise the (node id, role) pairs
        the token may reach. A scope whose resource names no resource id
        grants nothing."""
        named = self.scoped_roots()
        return None if named is None else [(node_id, role) for _, node_id, role in named]

    def scoped_roots(self) -> list[tuple[str, str, int]] | None:
        """As ``restricted_roots``, with the scope name first: (scope name,
        node id, role as minted)."""
        if any(s.role == auth_res.ROLE_OWNER for s in self.scopes.values()):
            return None
        roots = []
        for name, scope in self.scopes.items():
            rid = _scope_resource_id(scope)
            if rid is not None:
                roots.append((name, rid.opaque_id, scope.role))
        return roots


def _load_secret(data_dir: Path) -> bytes:
    path = data_dir / SECRET_FILE
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


class TokenManager:
    """Mints and checks access and transfer tokens.

    Args:
        data_dir: folder holding the secret file (created if missing).
        issuer: the ``iss`` claim, the site's domain.
        lifetime: access token lifetime in seconds.
        transfer_lifetime: transfer token lifetime in seconds (Reva's
            gateway ``transfer_expires`` default is 6000).
    """

    def __init__(self, data_dir: Path, issuer: str, lifetime: float, transfer_lifetime: float = 6000) -> None:
        secret = _load_secret(data_dir)
        self._access_key = secret
        self._transfer_key = hashlib.sha256(secret + b":transfer").digest()
        self.issuer = issuer
        self.lifetime = lifetime
        self.transfer_lifetime = transfer_lifetime

    def mint(self, user: user_res.User, scopes: dict[str, auth_res.Scope] | None = None,
             lifetime: float | None = None) -> str:
        """Mint an access token; no ``scopes`` means the owner scope."""
        now = time.time()
        claims = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "iat": int(now),
            "exp": now + (self.lifetime if lifetime is None else lifetime),
            "user": json_format.MessageToDict(user, preserving_proto_field_name=True),
            "scope": {name: json_format.MessageToDict(s, preserving_proto_field_name=True)
                      for name, s in (scopes or owner_scope()).items()},
        }
        return jwt.encode(claims, self._access_key, algorithm="HS256")

    def mint_scoped(self, user: user_res.User, resource_id: sp_res.ResourceId, role: int,
                    lifetime: float | None = None) -> str:
        """Mint a token restricted to ``resource_id`` and its children with
        ``role`` (auth ROLE_VIEWER or ROLE_EDITOR). This is how a federated
        (OCM) caller, whose user id has another idp and USER_TYPE_FEDERATED,
        gets access to one shared resource."""
        return self.mint(user, resource_scope(resource_id, role), lifetime)

    def verify(self, token: str) -> Identity:
        """Decode an access token; raise Unauthenticated if it is missing,
        forged or expired."""
        if not token:
            raise Unauthenticated("access token missing")
        try:
            claims = jwt.decode(token, self._access_key, algorithms=["HS256"], audience=AUDIENCE)
            user = json_format.ParseDict(claims["user"], user_res.User())
            scopes = {name: json_format.ParseDict(s, auth_res.Scope())
                      for name, s in (claims.get("scope") or {}).items()}
        except (jwt.PyJWTError, KeyError, TypeError, json_format.ParseError) as e:
            raise Unauthenticated(f"invalid access token: {e}") from None
        return Identity(user=user, scopes=scopes, token=token)

    def mint_transfer(self, target: dict) -> str:
        """Sign a transfer target (operation, node, preconditions)."""
        now = time.time()
        claims = {"aud": AUDIENCE, "iat": int(now), "exp": now + self.transfer_lifetime, "target": target}
        return jwt.encode(claims, self._transfer_key, algorithm="HS256")

    def verify_transfer(self, token: str) -> dict:
        if not token:
            raise Unauthenticated("transfer token missing")
        try:
            claims = jwt.decode(token, self._transfer_key, algorithms=["HS256"], audience=AUDIENCE)
            target = claims["target"]
        except (jwt.PyJWTError, KeyError) as e:
            raise Unauthenticated(f"invalid transfer token: {e}") from None
        if not isinstance(target, dict):
            raise Unauthenticated("invalid transfer token target")
        return target
