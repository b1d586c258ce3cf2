"""Sharing for the labextension's Share dialog: who has access to a file,
share it, change a role, revoke; and the people one can share with.

The browser names a file by its contents path; the contents manager turns
that into the CS3 resource (``cs3_reference``), which is statted as the
server's CS3 user. All work is done by CS3 as that user (CS3 checks every
permission again; we check ``add_grant`` first only to say why in words):

* local users and groups: user shares (``session.shares``, CS3
  collaboration API; Reva's viewer/editor permission sets,
  :mod:`cs3collab.cs3.roles`);
* people at other institutions (federated contacts from accepted OCM
  invitations): OCM shares (``session.ocm``) offering WebDAV and our webapp,
  as the federation code makes them (docs/federation.md).

Routes (docs/architecture.md, "Sharing"); errors are Jupyter's JSON error
replies whose ``message`` the dialog shows as it is:

* ``GET /api/cs3collab/shares?path=`` → ``{"path", "resourceId", "canShare",
  "reason", "owner": grantee | null, "shares": [share]}``
* ``POST /api/cs3collab/shares`` ``{"path", "grantee": {"kind", "id", "idp"},
  "role"}`` → 201 ``share``
* ``PATCH /api/cs3collab/shares/{kind}/{id}`` ``{"role"}`` → ``share``
* ``DELETE /api/cs3collab/shares/{kind}/{id}`` → 204
* ``GET /api/cs3collab/people?q=`` → ``{"people": [person]}``

where ``share`` is ``{"id", "kind", "grantee": {"id", "idp", "username",
"displayName", "institution"}, "role", "created"}``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from cs3.identity.user.v1beta1 import resources_pb2 as identity
from cs3.storage.provider.v1beta1 import resources_pb2 as storage
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import ensure_async
from tornado import web

from cs3collab.cs3 import (
    AlreadyExists,
    CS3Error,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Session,
    Unauthenticated,
    Unavailable,
    Unimplemented,
    format_resource_id,
)
from cs3collab.cs3.groups import group_id
from cs3collab.cs3.ocm import federated_user
from cs3collab.cs3.roles import EDITOR, OWNER, VIEWER, role_of
from cs3collab.cs3.shares import group_grantee, user_grantee
from cs3collab.jupyter.connection import CS3CollabConnection
from cs3collab.jupyter.errors import http_error
from cs3collab.jupyter.ocm_remote import OCMTarget
from cs3collab.jupyter.people import MIN_QUERY, Names, find_people, grant_entries

log = logging.getLogger("cs3collab.jupyter.sharing")

SHARES_ROUTE = r"/api/cs3collab/shares"
SHARE_ROUTE = r"/api/cs3collab/shares/([^/]+)/([^/]+)"
PEOPLE_ROUTE = r"/api/cs3collab/people"

ROLES = (VIEWER, EDITOR)
KINDS = ("user", "group", "federated")
__all__ = ["MIN_QUERY", "Sharing", "Target", "sharing_handlers"]


def _name_of(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1] or path


@dataclass
class Target:
    """The file or folder a contents path names, as the caller sees it.

    ``info`` is None for a file received from another site through OCM
    (it lives there); ``reason`` says why the caller cannot share it.
    """

    path: str
    info: storage.ResourceInfo | None
    reason: str | None

    @property
    def name(self) -> str:
        return _name_of(self.path)

    @property
    def resource(self) -> str:
        return format_resource_id(self.info.id) if self.info is not None else ""


def refused(status: int, message: str) -> web.HTTPError:
    """A refusal in words: APIHandler answers it as ``{"message": message}``,
    which the dialog shows as it is."""
    return web.HTTPError(status, message)



def held_role(role: str) -> str:
    """What the caller is to a file, as a person says it: "you are an editor of
    it", "you are a viewer of it", "you are the owner of it"."""
    if role == OWNER:
        return "you are the owner of it"
    if role in ROLES:
        article = "an" if role[:1] in "aeiou" else "a"
        return f"you are {article} {role} of it"
    return "your access does not allow it"


def cannot_share_reason(name: str, role: str) -> str:
    """Why the Share dialog offers no form for ``name`` to someone with ``role``."""
    return f"You cannot share {name}: {held_role(role)}, and only its owner or people allowed to share can."

class Sharing:
    """Shares and people, as the server's CS3 user.

    Args:
        connection: the server's CS3 identity.
        search_limit: most people returned per kind (users, groups, contacts).
    """

    def __init__(self, connection: CS3CollabConnection, *, search_limit: int = 20) -> None:
        self.connection = connection
        self.search_limit = search_limit

    async def session(self) -> Session:
        return await self.connection.session()

    # -- errors ---------------------------------------------------------------------

    def refusal(self, exc: CS3Error, *, session: Session | None, action: str, what: str, who: str = "") -> web.HTTPError:
        """One CS3 error as the HTTP error the dialog shows: the status from the
        contents table (:func:`~cs3collab.jupyter.errors.http_error`), the
        message in words for what people run into."""
        status = http_error(exc, action, what).status_code
        user = session.username if session is not None else "-"
        log.warning(
            "sharing refused user=%s action=%s target=%s cs3_op=%s cs3_target=%s status=%s message=%s",
            user, action, what, exc.operation, exc.target, exc.code, exc.message,
        )
        if isinstance(exc, AlreadyExists):
            return refused(status, f"{who or 'This person'} already has access to {what}")
        if isinstance(exc, Unauthenticated):
            return refused(status, f"This server is not logged in to CS3 ({exc.message or exc.code}); log in again")
        if isinstance(exc, PermissionDenied):
            return refused(status, f"You cannot {action} {what}: CS3 refused ({exc.message or exc.code})")
        if isinstance(exc, Unavailable):
            return refused(status, f"CS3 cannot be reached at {self.connection.gateway}; try again later")
        if isinstance(exc, NotFound):
            return refused(status, f"Cannot {action} {what}: not found ({exc.message or exc.code})")
        if isinstance(exc, InvalidArgument):
            return refused(status, f"Cannot {action} {what}: {exc.message or exc.code}")
        return refused(status, f"Cannot {action} {what}: CS3 answered {exc.code}: {exc.message}")

    # -- the file -------------------------------------------------------------------

    async def target(self, contents_manager, path: str) -> Target:
        """Resolve and stat a contents path (404 when it is not there)."""
        path = path.strip("/")
        if not path:
            raise refused(400, "Choose a file or folder to share (path is required)")
        cs3_reference = getattr(contents_manager, "cs3_reference", None)
        if cs3_reference is None:
            raise web.HTTPError(500, f"{type(contents_manager).__name__} cannot name CS3 files")
        try:
            reference = await ensure_async(cs3_reference(path))
        except web.HTTPError as exc:
            if exc.status_code == 404:
                raise refused(404, f"{path} does not exist, or you cannot see it") from None
            if exc.status_code == 503:
                raise refused(503, f"CS3 cannot be reached at {self.connection.gateway}; try again later") from None
            raise
        name = _name_of(path)
        if isinstance(reference, OCMTarget):
            return Target(path, None, f"{name} is shared with you from another institution; only there can it be shared.")
        session = await self.session()
        try:
            info = await session.files.stat(reference)
        except NotFound:
            raise refused(404, f"{path} does not exist, or you cannot see it") from None
        except CS3Error as exc:
            raise self.refusal(exc, session=session, action="share", what=name) from None
        reason = None
        if not info.permission_set.add_grant:
            mine = info.owner.opaque_id and (info.owner.idp, info.owner.opaque_id) == (
                session.user.id.idp, session.user.id.opaque_id)
            reason = cannot_share_reason(name, OWNER if mine else role_of(info.permission_set))
        return Target(path, info, reason)

    # -- shares -----------------------------------------------------------------------

    async def owner(self, target: Target) -> dict | None:
        """Who owns the file (a recipient sees no one else's shares, but sees this)."""
        if target.info is None or not target.info.owner.opaque_id:
            return None
        return await Names(await self.session()).user(target.info.owner)

    async def list(self, target: Target) -> list[dict]:
        """The shares of the file the caller can see: its user, group and OCM shares."""
        if target.info is None:
            return []
        session = await self.session()
        rid = target.info.id
        try:
            local = await session.shares.list(rid)
            try:
                remote = [s for s in await session.ocm.list_shares() if _same_resource(s.resource_id, rid)]
            except Unimplemented:  # a site without OCM
                remote = []
        except CS3Error as exc:
            raise self.refusal(exc, session=session, action="list the shares of", what=target.name) from None
        shares = await grant_entries(Names(session), local, remote)
        return sorted(shares, key=lambda s: s["created"] or "")

    async def create(self, target: Target, grantee: dict, role: str) -> dict:
        """Share the file with a user, a group or a federated contact."""
        if target.info is None or target.reason:
            raise refused(403, target.reason or f"You cannot share {target.name}")
        kind, gid, idp = grantee["kind"], grantee["id"], grantee.get("idp", "")
        session = await self.session()
        names = Names(session)
        try:
            if kind == "federated":
                share = await session.ocm.create_share(target.info.id, federated_user(gid, idp), role)
                (made,) = await grant_entries(names, (), [share])
            else:
                cs3_grantee = (
                    user_grantee(identity.UserId(idp=idp, opaque_id=gid))
                    if kind == "user"
                    else group_grantee(group_id(gid, idp))
                )
                share = await session.shares.create(target.info.id, cs3_grantee, role)
                (made,) = await grant_entries(names, [share])
        except CS3Error as exc:
            who = await names.display(kind, gid, idp) if isinstance(exc, AlreadyExists) else ""
            raise self.refusal(exc, session=session, action="share", what=target.name, who=who) from None
        log.info(
            "shared user=%s path=%s resource=%s grantee=%s:%s@%s role=%s share=%s",
            session.username, target.path, target.resource, kind, gid, idp, role, made["id"],
        )
        return made

    async def update(self, kind: str, share_id: str, role: str) -> dict:
        """Give an existing share another role."""
        session = await self.session()
        names = Names(session)
        try:
            if kind == "federated":
                share = await session.ocm.update_share(share_id, role)
                (made,) = await grant_entries(names, (), [share])
            else:
                share = await session.shares.update_role(share_id, role)
                (made,) = await grant_entries(names, [share])
        except CS3Error as exc:
            raise self.refusal(exc, session=session, action="change", what="this share") from None
        log.info("share role changed user=%s share=%s kind=%s role=%s", session.username, share_id, kind, role)
        return made

    async def remove(self, kind: str, share_id: str) -> None:
        """Revoke a share."""
        session = await self.session()
        try:
            if kind == "federated":
                await session.ocm.remove_share(share_id)
            else:
                await session.shares.remove(share_id)
        except CS3Error as exc:
            raise self.refusal(exc, session=session, action="revoke", what="this share") from None
        log.info("share revoked user=%s share=%s kind=%s", session.username, share_id, kind)

    # -- people --------------------------------------------------------------------------

    async def people(self, query: str) -> list[dict]:
        """Local users (not the caller), groups and federated contacts matching ``query``."""
        session = await self.session()
        try:
            return await find_people(session, query, limit=self.search_limit)
        except CS3Error as exc:
            raise self.refusal(exc, session=session, action="search", what=f"people matching {query!r}") from None


def _same_resource(a: storage.ResourceId, b: storage.ResourceId) -> bool:
    return a.opaque_id == b.opaque_id and (not a.storage_id or not b.storage_id or a.storage_id == b.storage_id)


# -- handlers -----------------------------------------------------------------------------


def _body(handler: APIHandler) -> dict:
    try:
        body = json.loads(handler.request.body or b"")
    except ValueError:
        raise refused(400, "The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise refused(400, "The request body must be a JSON object")
    return body


def _role(body: dict) -> str:
    role = body.get("role")
    if role not in ROLES:
        raise refused(400, f"role must be viewer or editor, not {role!r}")
    return role


def _kind(kind: Any) -> str:
    if kind not in KINDS:
        raise refused(400, f"kind must be user, group or federated, not {kind!r}")
    return kind


def _grantee(body: dict) -> dict:
    grantee = body.get("grantee")
    if not isinstance(grantee, dict):
        raise refused(400, "grantee is required: {kind, id, idp}")
    kind = _kind(grantee.get("kind"))
    gid, idp = grantee.get("id"), grantee.get("idp", "")
    if not isinstance(gid, str) or not gid.strip():
        raise refused(400, "grantee.id is required")
    if not isinstance(idp, str):
        raise refused(400, "grantee.idp must be a string")
    if kind == "federated" and not idp:
        raise refused(400, "a federated grantee needs the idp (institution) they belong to")
    return {"kind": kind, "id": gid.strip(), "idp": idp.strip()}


class _SharingHandler(APIHandler):
    auth_resource = "contents"

    def initialize(self, sharing: Sharing) -> None:
        super().initialize()
        self.sharing = sharing

    async def _guarded(self, work):
        """Run ``work``; CS3 session errors outside the translated calls become 403/503 in words."""
        try:
            return await work
        except web.HTTPError:
            raise
        except CS3Error as exc:
            raise self.sharing.refusal(exc, session=None, action="reach", what="CS3") from None


class SharesHandler(_SharingHandler):
    """``GET /api/cs3collab/shares?path=``; ``POST /api/cs3collab/shares``."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        path = self.get_query_argument("path", "")

        async def work():
            target = await self.sharing.target(self.contents_manager, path)
            return {
                "path": target.path,
                "resourceId": target.resource,
                "canShare": target.reason is None,
                "reason": target.reason,
                "owner": await self.sharing.owner(target),
                "shares": await self.sharing.list(target),
            }

        self.finish(await self._guarded(work()))

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = _body(self)
        path = body.get("path")
        if not isinstance(path, str):
            raise refused(400, "path is required")
        grantee, role = _grantee(body), _role(body)

        async def work():
            target = await self.sharing.target(self.contents_manager, path)
            return await self.sharing.create(target, grantee, role)

        share = await self._guarded(work())
        self.set_status(201)
        self.finish(share)


class ShareHandler(_SharingHandler):
    """``PATCH|DELETE /api/cs3collab/shares/{kind}/{id}``."""

    @web.authenticated
    @authorized
    async def patch(self, kind: str, share_id: str) -> None:
        kind, role = _kind(kind), _role(_body(self))
        self.finish(await self._guarded(self.sharing.update(kind, share_id, role)))

    @web.authenticated
    @authorized
    async def delete(self, kind: str, share_id: str) -> None:
        await self._guarded(self.sharing.remove(_kind(kind), share_id))
        self.set_status(204)
        self.finish()


class PeopleHandler(_SharingHandler):
    """``GET /api/cs3collab/people?q=``."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        query = self.get_query_argument("q", "")
        self.finish({"people": await self._guarded(self.sharing.people(query))})


def sharing_handlers(sharing: Sharing) -> list[tuple[str, type, dict]]:
    """The routes the extension installs (base_url is prepended by ExtensionApp)."""
    return [
        (SHARES_ROUTE, SharesHandler, {"sharing": sharing}),
        (SHARE_ROUTE, ShareHandler, {"sharing": sharing}),
        (PEOPLE_ROUTE, PeopleHandler, {"sharing": sharing}),
    ]
