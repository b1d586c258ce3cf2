"""The devstack's CS3 gateway: a ``GatewayAPIServicer`` over the store.

Like Reva's gateway (cs3org/reva internal/grpc/services/gateway), every
implemented call answers gRPC OK and carries the outcome in
``status.code``; domain errors become CS3 codes in one table,
``STATUS_CODES``. Calls not implemented here fall through to the generated
base class, which answers gRPC UNIMPLEMENTED (OCM calls included: the OCM
part subclasses ``Gateway`` or adds handlers, see ``site.DevstackSite``).
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from cs3.gateway.v1beta1 import gateway_api_pb2 as gw
from cs3.gateway.v1beta1 import gateway_api_pb2_grpc as gw_grpc
from cs3.gateway.v1beta1 import resources_pb2 as gw_res
from cs3.identity.group.v1beta1 import group_api_pb2 as group_api
from cs3.identity.user.v1beta1 import resources_pb2 as user_res
from cs3.identity.user.v1beta1 import user_api_pb2 as user_api
from cs3.rpc.v1beta1 import code_pb2, status_pb2
from cs3.storage.provider.v1beta1 import provider_api_pb2 as sp_api

from . import content, errors, locks, namespace
from .app_passwords import AppPasswordHandlers
from .auth import AuthProviders, current_identity
from .groups import GroupDirectory
from .sharing import SharingHandlers
from .store import Store
from .tokens import Identity, TokenManager
from .users import UserDirectory

log = logging.getLogger("cs3collab.devstack.gateway")

STATUS_CODES: dict[type, int] = {
    errors.NotFound: code_pb2.CODE_NOT_FOUND,
    errors.PermissionDenied: code_pb2.CODE_PERMISSION_DENIED,
    errors.AlreadyExists: code_pb2.CODE_ALREADY_EXISTS,
    errors.InvalidArgument: code_pb2.CODE_INVALID_ARGUMENT,
    errors.PreconditionFailed: code_pb2.CODE_FAILED_PRECONDITION,
    errors.Locked: code_pb2.CODE_LOCKED,
    errors.Aborted: code_pb2.CODE_ABORTED,
    errors.Unauthenticated: code_pb2.CODE_UNAUTHENTICATED,
    errors.TooLarge: code_pb2.CODE_INSUFFICIENT_STORAGE,
    errors.Unimplemented: code_pb2.CODE_UNIMPLEMENTED,
}


def status_for(exc: BaseException) -> status_pb2.Status:
    """The one translation from a domain error to a CS3 status."""
    if isinstance(exc, errors.DevstackError):
        return status_pb2.Status(code=STATUS_CODES.get(type(exc), code_pb2.CODE_INTERNAL), message=exc.message)
    return status_pb2.Status(code=code_pb2.CODE_INTERNAL, message=f"internal error: {type(exc).__name__}")


def describe(ref) -> str:
    if ref is None:
        return "-"
    if ref.resource_id.opaque_id:
        rid = ref.resource_id
        return f"{rid.storage_id}${rid.space_id}!{rid.opaque_id}:{ref.path or '.'}"
    return ref.path or "-"


def home_path(user: user_res.User) -> str:
    """Home layout ``/home/{username}`` (Reva's gateway ``home_layout``)."""
    return f"/home/{user.username}"


def _opaque_str(opaque, key: str) -> str:
    entry = opaque.map.get(key) if opaque is not None else None
    return entry.value.decode("utf-8", "replace") if entry is not None else ""


class Gateway(AppPasswordHandlers, SharingHandlers, gw_grpc.GatewayAPIServicer):
    """The site's gateway. Subclass it to add calls (e.g. OCM).

    Args:
        store: the site's store.
        users: the site's users.
        tokens: the site's token manager.
        auth_providers: the ``Authenticate`` type registry.
    """

    #: method names (not full paths) that need no access token. WhoAmI is not
    #: one (Reva internal/grpc/services/gateway/gateway.go ``UnprotectedEndpoints``
    #: at aa6e45a): the caller sends its token as ``x-access-token`` too.
    UNPROTECTED = frozenset({"Authenticate", "GetUser"})

    def __init__(self, store: Store, users: UserDirectory, tokens: TokenManager,
                 auth_providers: AuthProviders) -> None:
        self.store = store
        self.users = users
        self.groups = GroupDirectory(users)
        self.tokens = tokens
        self.auth_providers = auth_providers
        self.data_url = ""  # set by the site once the HTTP server is bound

    # -- plumbing --------------------------------------------------------------

    async def respond(self, op: str, response_cls, what: str,
                      work: Callable[[Identity | None], Awaitable[dict[str, Any]]]):
        """Run ``work(caller)``; build ``response_cls`` from the fields it
        returns with status OK, or from the error's status; log one line."""
        caller = current_identity()
        who = caller.user.username if caller else "-"
        try:
            fields = await work(caller)
            status = status_pb2.Status(code=code_pb2.CODE_OK)
        except Exception as exc:  # noqa: BLE001 - every failure becomes a status
            fields, status = {}, status_for(exc)
            if not isinstance(exc, errors.DevstackError):
                log.exception("op=%s user=%s ref=%s internal error", op, who, what)
        log.info("op=%s user=%s ref=%s status=%s msg=%r", op, who, what,
                 code_pb2.Code.Name(status.code), status.message)
        return response_cls(status=status, **fields)

    def run(self, fn, *args, field: str | None = None):
        """A ``work`` callable running ``fn(tree, caller, *args)`` on the store."""
        async def work(caller):
            result = await self.store.run(fn, caller, *args)
            return {field: result} if field else {}
        return work

    # -- auth and users ----------------------------------------------------------

    async def Authenticate(self, request, context):
        async def work(_):
            checker = self.auth_providers.get(request.type)
            if checker is None:
                raise errors.DevstackError(f"error getting auth provider client for type {request.type!r}")
            try:
                user, scopes = await checker(request.client_id, request.client_secret)
            except errors.AuthenticationFailed as e:
                # Reva's auth provider: any other failure is UNAUTHENTICATED "error authenticating user"
                raise errors.Unauthenticated(f"error authenticating user: {e.message}") from None
            except errors.Unauthenticated as e:
                raise errors.PermissionDenied(f"wrong credentials: {e.message}") from None
            return {"token": self.tokens.mint(user, scopes), "user": user}
        return await self.respond("Authenticate", gw.AuthenticateResponse, f"type={request.type}", work)

    async def WhoAmI(self, request, context):
        async def work(_):
            return {"user": self.tokens.verify(request.token).user}
        return await self.respond("WhoAmI", gw.WhoAmIResponse, "-", work)

    async def GetUser(self, request, context):
        async def work(_):
            user = self.users.get(request.user_id)
            if request.skip_fetching_user_groups:
                del user.groups[:]
            return {"user": user}
        return await self.respond("GetUser", user_api.GetUserResponse, request.user_id.opaque_id, work)

    async def FindUsers(self, request, context):
        async def work(_):
            queries = [f.query for f in request.filters if f.type == user_api.Filter.TYPE_QUERY]
            if not queries:
                raise errors.InvalidArgument("FindUsers needs a filter of type TYPE_QUERY")
            types = [f.usertype for f in request.filters if f.type == user_api.Filter.TYPE_USERTYPE]
            found = self.users.find(queries[0], types[0] if types else None, request.skip_fetching_user_groups)
            return {"users": found}
        return await self.respond("FindUsers", user_api.FindUsersResponse, "-", work)

    # -- groups (Reva's gateway groupprovider.go + pkg/group/manager/json) ---------

    async def FindGroups(self, request, context):
        async def work(_):
            F = group_api.Filter
            queries = [f.query for f in request.filters if f.type == F.TYPE_QUERY]
            if not queries:
                raise errors.InvalidArgument("FindGroups needs a filter of type TYPE_QUERY")
            types = [f.grouptype for f in request.filters if f.type == F.TYPE_GROUPTYPE]
            found = self.groups.find(queries[0], types[0] if types else None, request.skip_fetching_members)
            return {"groups": found}
        return await self.respond("FindGroups", group_api.FindGroupsResponse, "-", work)

    async def GetGroup(self, request, context):
        async def work(_):
            return {"group": self.groups.get(request.group_id, request.skip_fetching_members)}
        return await self.respond("GetGroup", group_api.GetGroupResponse,
                                  f"group={request.group_id.opaque_id}", work)

    async def GetGroupByClaim(self, request, context):
        async def work(_):
            return {"group": self.groups.get_by_claim(request.claim, request.value, request.skip_fetching_members)}
        return await self.respond("GetGroupByClaim", group_api.GetGroupByClaimResponse,
                                  f"{request.claim}={request.value}", work)

    async def GetMembers(self, request, context):
        async def work(_):
            return {"members": self.groups.members(request.group_id)}
        return await self.respond("GetMembers", group_api.GetMembersResponse,
                                  f"group={request.group_id.opaque_id}", work)

    async def GetHome(self, request, context):
        async def work(caller):
            return {"path": home_path(caller.user)}
        return await self.respond("GetHome", sp_api.GetHomeResponse, "-", work)

    # -- namespace -----------------------------------------------------------

    async def Stat(self, request, context):
        return await self.respond("Stat", sp_api.StatResponse, describe(request.ref), self.run(
            namespace.stat, request.ref, list(request.arbitrary_metadata_keys), field="info"))

    async def ListContainer(self, request, context):
        return await self.respond("ListContainer", sp_api.ListContainerResponse, describe(request.ref), self.run(
            namespace.list_container, request.ref, list(request.arbitrary_metadata_keys), field="infos"))

    async def CreateContainer(self, request, context):
        return await self.respond("CreateContainer", sp_api.CreateContainerResponse, describe(request.ref),
                                  self.run(namespace.create_container, request.ref))

    async def TouchFile(self, request, context):
        return await self.respond("TouchFile", sp_api.TouchFileResponse, describe(request.ref),
                                  self.run(namespace.touch_file, request.ref))

    async def Delete(self, request, context):
        return await self.respond("Delete", sp_api.DeleteResponse, describe(request.ref),
                                  self.run(namespace.delete, request.ref, request.lock_id))

    async def Move(self, request, context):
        what = f"{describe(request.source)}->{describe(request.destination)}"
        return await self.respond("Move", sp_api.MoveResponse, what, self.run(
            namespace.move, request.source, request.destination, request.lock_id))

    async def SetArbitraryMetadata(self, request, context):
        entries = dict(request.arbitrary_metadata.metadata)
        return await self.respond("SetArbitraryMetadata", sp_api.SetArbitraryMetadataResponse,
                                  describe(request.ref),
                                  self.run(namespace.set_metadata, request.ref, entries, request.lock_id))

    async def UnsetArbitraryMetadata(self, request, context):
        keys = list(request.arbitrary_metadata_keys)
        return await self.respond("UnsetArbitraryMetadata", sp_api.UnsetArbitraryMetadataResponse,
                                  describe(request.ref),
                                  self.run(namespace.unset_metadata, request.ref, keys, request.lock_id))

    # -- locks ---------------------------------------------------------------

    async def SetLock(self, request, context):
        return await self.respond("SetLock", sp_api.SetLockResponse, describe(request.ref),
                                  self.run(locks.set_lock, request.ref, request.lock))

    async def GetLock(self, request, context):
        return await self.respond("GetLock", sp_api.GetLockResponse, describe(request.ref),
                                  self.run(locks.get_lock, request.ref, field="lock"))

    async def RefreshLock(self, request, context):
        return await self.respond("RefreshLock", sp_api.RefreshLockResponse, describe(request.ref), self.run(
            locks.refresh_lock, request.ref, request.lock, request.existing_lock_id))

    async def Unlock(self, request, context):
        return await self.respond("Unlock", sp_api.UnlockResponse, describe(request.ref),
                                  self.run(locks.unlock, request.ref, request.lock))

    # -- content -------------------------------------------------------------

    def _endpoint(self) -> str:
        return f"{self.data_url}/datagateway"

    async def InitiateFileUpload(self, request, context):
        length = _opaque_str(request.opaque, "Upload-Length")

        async def work(caller):
            if length and not length.isdigit():
                raise errors.InvalidArgument("Upload-Length must be a number of bytes")
            target = await self.store.run(
                content.initiate_upload, caller, request.ref, lock_id=request.lock_id,
                if_match=request.if_match, if_not_exist=request.if_not_exist,
                length=int(length) if length else None)
            token = self.tokens.mint_transfer(target)
            protocols = [gw_res.FileUploadProtocol(protocol=p, upload_endpoint=self._endpoint(), token=token)
                         for p in ("simple", "spaces")]
            return {"protocols": protocols}
        return await self.respond("InitiateFileUpload", gw.InitiateFileUploadResponse, describe(request.ref), work)

    async def InitiateFileDownload(self, request, context):
        version = _opaque_str(request.opaque, "version_key")

        async def work(caller):
            target = await self.store.run(content.initiate_download, caller, request.ref, version)
            token = self.tokens.mint_transfer(target)
            protocols = [gw_res.FileDownloadProtocol(protocol=p, download_endpoint=self._endpoint(), token=token)
                         for p in ("simple", "spaces")]
            return {"protocols": protocols}
        what = describe(request.ref) + (f" version={version}" if version else "")
        return await self.respond("InitiateFileDownload", gw.InitiateFileDownloadResponse, what, work)

    async def ListFileVersions(self, request, context):
        return await self.respond("ListFileVersions", sp_api.ListFileVersionsResponse, describe(request.ref),
                                  self.run(content.list_versions, request.ref, field="versions"))

    async def RestoreFileVersion(self, request, context):
        return await self.respond("RestoreFileVersion", sp_api.RestoreFileVersionResponse,
                                  f"{describe(request.ref)} key={request.key}",
                                  self.run(content.restore_version, request.ref, request.key, request.lock_id))
