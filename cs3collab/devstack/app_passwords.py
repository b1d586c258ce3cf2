"""Application passwords with a token scope, and the ``appauth`` login.

After Reva (paths in cs3org/reva, at 01b0f20): the gateway's
``GenerateAppPassword`` / ``ListAppPasswords`` / ``InvalidateAppPassword``
(internal/grpc/services/applicationauth, pkg/appauth/manager/json/json.go)
store a random password for the calling user together with a *token scope*;
``Authenticate`` with type ``appauth`` (pkg/auth/manager/appauth/appauth.go:
``client_id`` = username, ``client_secret`` = the app password) returns a
token of that user limited to that scope. Reva's ``reva app-tokens-create
--path P:w`` (cmd/reva/app-tokens-create.go) builds the scope with
``scope.AddResourceInfoScope`` (pkg/auth/scope/resourceinfo.go): a scope
named ``resourceinfo:<id>`` whose value is the JSON of a ResourceInfo with
only ``id`` and ``path``, with ROLE_VIEWER or ROLE_EDITOR. That is how a
shared kernel gets a CS3 authority limited to exactly the shared resource
(cs3collab/kernels/authority.py).

What we add to Reva (both on the safe side; docs/devstack.md):

- ``GenerateAppPassword`` checks the scope it is asked for: only
  ``resourceinfo:`` scopes on resources the caller can stat (viewer) or
  write (editor) right now, or the owner scope from an owner-scoped token;
  anything else is ``INVALID_ARGUMENT`` / ``PERMISSION_DENIED`` (Reva stores
  whatever scope it is given);
- a ``resourceinfo:`` token acts with the *intersection* of its role and the
  user's own permissions at the time of each call (access.py), so a share
  removed from the user also ends the scoped token's reach (Reva: the
  storage provider still checks the user's grants; the scope only filters).

Passwords are kept as SHA-256 digests (Reva: bcrypt; they are 32 random
characters, so a fast digest loses nothing) in ``app_passwords`` of
``devstack.sqlite3``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from typing import TYPE_CHECKING

from cs3.auth.applications.v1beta1 import applications_api_pb2 as app_api
from cs3.auth.applications.v1beta1 import resources_pb2 as app_res
from cs3.auth.provider.v1beta1 import resources_pb2 as auth_res
from cs3.storage.provider.v1beta1 import resources_pb2 as sp_res
from cs3.types.v1beta1 import types_pb2
from google.protobuf import json_format

from . import access as A
from . import permissions as P
from .errors import InvalidArgument, NotFound, Unauthenticated
from .store import user_key
from .tokens import OWNER_SCOPE, Identity

if TYPE_CHECKING:
    from .site import DevstackSite

SCOPE_KIND = "resourceinfo"

# The gRPC methods a ``resourceinfo:`` token may call: Reva's resourceinfoScope
# (pkg/auth/scope/resourceinfo.go), viewer and editor requests alike; what the
# call may do to a resource is then decided by the role and the user's own
# permissions (access.py). Everything else (GenerateAppPassword included) is a
# gRPC PERMISSION_DENIED from the interceptor.
SCOPE_METHODS = frozenset({
    "GetStorageProviders", "Stat", "ListContainer", "InitiateFileDownload",
    "CreateContainer", "Delete", "Move", "InitiateFileUpload",
})

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS app_passwords ("
    " digest TEXT PRIMARY KEY, user_key TEXT NOT NULL, label TEXT NOT NULL,"
    " scope TEXT NOT NULL, expires REAL, ctime REAL NOT NULL, utime REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS app_passwords_user ON app_passwords(user_key)",
)

ROLE_NEEDS = {auth_res.ROLE_VIEWER: ("stat", "initiate_file_download"),
              auth_res.ROLE_EDITOR: ("stat", "initiate_file_download", "initiate_file_upload")}


def resource_info_scope(info: sp_res.ResourceInfo, role: int) -> dict[str, auth_res.Scope]:
    """Reva's ``AddResourceInfoScope``: name ``resourceinfo:<id>``, value the
    JSON of a ResourceInfo with only ``id`` and ``path``."""
    value = json_format.MessageToJson(sp_res.ResourceInfo(id=info.id, path=info.path),
                                      preserving_proto_field_name=True).encode()
    name = f"{SCOPE_KIND}:{info.id.storage_id}${info.id.space_id}!{info.id.opaque_id}"
    return {name: auth_res.Scope(resource=types_pb2.OpaqueEntry(decoder="json", value=value), role=role)}


def _digest(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def _scopes_to_json(scopes) -> str:
    return json.dumps({name: json_format.MessageToDict(s, preserving_proto_field_name=True)
                       for name, s in scopes.items()})


def _scopes_from_json(text: str) -> dict[str, auth_res.Scope]:
    return {name: json_format.ParseDict(s, auth_res.Scope()) for name, s in json.loads(text).items()}


def check_requested_scope(tree, caller: Identity, scopes) -> None:
    """Refuse an app password scope the caller could not use itself (ours)."""
    if not scopes:
        raise InvalidArgument("specify a token scope")
    for name, scope in scopes.items():
        kind = name.partition(":")[0]
        if name == OWNER_SCOPE and scope.role == auth_res.ROLE_OWNER:
            if caller.scoped_roots() is not None:
                raise InvalidArgument("a scoped token cannot create an unscoped app password")
            continue
        if kind != SCOPE_KIND:
            raise InvalidArgument(f"unsupported app password scope {name!r}")
        needs = ROLE_NEEDS.get(scope.role)
        if needs is None:
            raise InvalidArgument(f"scope {name!r}: role must be viewer or editor")
        rid = A.scope_resource_id(scope)
        if rid is None:
            raise InvalidArgument(f"scope {name!r} names no resource")
        node = A.existing(tree, caller, sp_res.Reference(resource_id=rid, path="."))
        perms = A.access(tree, caller, node).perms
        for needed in needs:
            P.require(perms, needed, node.name or "/")


class AppPasswords:
    """The ``app_passwords`` table and the gateway calls over it."""

    def __init__(self, site: DevstackSite) -> None:
        self._site = site

    async def generate(self, caller: Identity, request: app_api.GenerateAppPasswordRequest) -> app_res.AppPassword:
        scopes = dict(request.token_scope)
        password = secrets.token_urlsafe(24)
        now = time.time()
        expires = float(request.expiration.seconds) if request.expiration.seconds else None
        if expires is not None and expires <= now:
            raise InvalidArgument("expiration is in the past")

        def store(tree, caller):
            check_requested_scope(tree, caller, scopes)
            tree.conn.execute(
                "INSERT INTO app_passwords (digest, user_key, label, scope, expires, ctime, utime) VALUES (?,?,?,?,?,?,?)",
                (_digest(password), user_key(caller.user.id), request.label, _scopes_to_json(scopes), expires, now, now))

        await self._site.store.run(store, caller)
        return app_res.AppPassword(
            password=password, token_scope=scopes, label=request.label, user=caller.user.id,
            expiration=request.expiration if expires else None,
            ctime=types_pb2.Timestamp(seconds=int(now)), utime=types_pb2.Timestamp(seconds=int(now)))

    async def list(self, caller: Identity) -> list[app_res.AppPassword]:
        rows = await self._site.store.run(lambda tree: tree.conn.execute(
            "SELECT digest, label, scope, expires, ctime, utime FROM app_passwords WHERE user_key=? ORDER BY ctime",
            (user_key(caller.user.id),)).fetchall())
        return [app_res.AppPassword(
            password=digest, token_scope=_scopes_from_json(scope), label=label, user=caller.user.id,
            expiration=types_pb2.Timestamp(seconds=int(expires)) if expires else None,
            ctime=types_pb2.Timestamp(seconds=int(ctime)), utime=types_pb2.Timestamp(seconds=int(utime)))
            for digest, label, scope, expires, ctime, utime in rows]

    async def invalidate(self, caller: Identity, password: str) -> None:
        """Remove one of the caller's app passwords (given in clear, or as the
        digest ``ListAppPasswords`` shows, as Reva shows the hash)."""
        def drop(tree):
            cur = tree.conn.execute("DELETE FROM app_passwords WHERE user_key=? AND digest IN (?, ?)",
                                    (user_key(caller.user.id), _digest(password), password))
            if cur.rowcount == 0:
                raise NotFound("password not found")
        await self._site.store.run(drop)

    async def authenticate(self, username: str, password: str):
        """The ``appauth`` checker: the user and the password's scopes."""
        try:
            user = self._site.users.get_by_username(username)
        except NotFound:
            raise Unauthenticated(f"unknown user {username!r}") from None

        def find(tree):
            row = tree.conn.execute(
                "SELECT scope, expires FROM app_passwords WHERE digest=? AND user_key=?",
                (_digest(password), user_key(user.id))).fetchone()
            if row is None or (row[1] is not None and row[1] <= time.time()):
                raise Unauthenticated("password not found")
            tree.conn.execute("UPDATE app_passwords SET utime=? WHERE digest=?", (time.time(), _digest(password)))
            return _scopes_from_json(row[0])

        return user, await self._site.store.run(find)


def install_app_passwords(site: DevstackSite) -> AppPasswords:
    """Turn app passwords on for ``site`` (runs before its servers start)."""
    passwords = AppPasswords(site)
    site.auth_providers.register("appauth", passwords.authenticate)
    site.add_scope_rule(SCOPE_KIND, lambda scope, method: method in SCOPE_METHODS)
    return passwords


async def create_tables(site: DevstackSite) -> None:
    def create(tree):
        for statement in SCHEMA:
            tree.conn.execute(statement)
    await site.store.run(create)


class AppPasswordHandlers:
    """The gateway's app password calls (mixed into ``Gateway``)."""

    app_passwords: AppPasswords | None = None

    def _passwords(self) -> AppPasswords:
        if self.app_passwords is None:
            raise NotFound("app passwords are not enabled")
        return self.app_passwords

    async def GenerateAppPassword(self, request, context):
        async def work(caller):
            return {"app_password": await self._passwords().generate(caller, request)}
        return await self.respond("GenerateAppPassword", app_api.GenerateAppPasswordResponse,
                                  request.label or "-", work)

    async def ListAppPasswords(self, request, context):
        async def work(caller):
            return {"app_passwords": await self._passwords().list(caller)}
        return await self.respond("ListAppPasswords", app_api.ListAppPasswordsResponse, "-", work)

    async def InvalidateAppPassword(self, request, context):
        async def work(caller):
            await self._passwords().invalidate(caller, request.password)
            return {}
        return await self.respond("InvalidateAppPassword", app_api.InvalidateAppPasswordResponse, "-", work)
