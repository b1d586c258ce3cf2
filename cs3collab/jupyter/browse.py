"""REST routes of the labextension's CS3 file browser and File info dialog.

Thin authenticated handlers over the server's CS3 session (the contents
manager's: one user per server). Every route is authorized on the
``contents`` resource; the writing verb checks XSRF (APIHandler does).
CS3 errors are logged and translated once, by :func:`cs3collab.jupyter.errors.http_error`.

* ``GET /api/cs3collab/received`` → ``{"shares": [entry, ...]}``: the user
  and federated (OCM) shares received, pending first. An entry is
  ``{"id", "kind": "user"|"federated", "state": "pending"|"accepted"|"declined",
  "name", "type": "notebook"|"file"|"directory", "path", "owner": {"username",
  "idp", "displayName", "institution"}, "role": "viewer"|"editor", "size",
  "mtime", "shared"}``; ``path`` is the contents path under the shared folder
  once accepted, else null; times are ISO 8601 (UTC).
* ``POST /api/cs3collab/received/<kind>/<id>`` with ``{"state": "accepted"|"declined"}``
  → the updated entry. The contents manager forgets its cached shared
  entries, so "Shared with me" shows the change at once.
* ``GET /api/cs3collab/shared-by-me`` → ``{"shares": [{"id", "kind":
  "user"|"group"|"federated", "path", "name", "grantee": {"id", "idp",
  "username", "displayName", "institution"}, "role", "created"}]}``;
  ``path`` is the contents path of the shared resource when it lies in the
  home, else null.
* ``GET /api/cs3collab/info?path=<contents path>`` → ``{"path", "name",
  "type", "owner", "size", "mtime", "permissions": {"role", "can"}, "lock",
  "shares", "versions", "resourceId"}`` (see :func:`file_info`), the CS3
  calls made concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timezone

from cs3.sharing.collaboration.v1beta1 import resources_pb2 as sharing
from cs3.sharing.ocm.v1beta1 import resources_pb2 as ocm
from cs3.storage.provider.v1beta1 import resources_pb2 as storage
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

from cs3collab.cs3 import CS3Error, NotFound, PermissionDenied, Session, Unimplemented
from cs3collab.cs3.refs import format_resource_id
from cs3collab.cs3.roles import EDITOR, OWNER, VIEWER
from cs3collab.jupyter import ocm_versions
from cs3collab.jupyter.contents import CS3ContentsManager
from cs3collab.jupyter.errors import http_error
from cs3collab.jupyter.ocm_remote import fetch_content, ocm_target, share_writable, with_token_endpoint
from cs3collab.jupyter.people import Names, grant_entries, iso, share_role

log = logging.getLogger("cs3collab.jupyter.browse")

STATES = {
    sharing.SHARE_STATE_PENDING: "pending",
    sharing.SHARE_STATE_ACCEPTED: "accepted",
    sharing.SHARE_STATE_REJECTED: "declined",
}
"""CS3 share state → the word the REST answers use (OCM states have the same numbers)."""
WANTED = {"accepted": sharing.SHARE_STATE_ACCEPTED, "declined": sharing.SHARE_STATE_REJECTED}
KINDS = ("user", "federated")

CAN = (
    ("read", "initiate_file_download"),
    ("write", "initiate_file_upload"),
    ("create", "create_container"),
    ("rename", "move"),
    ("delete", "delete"),
    ("share", "add_grant"),
    ("list versions", "list_file_versions"),
    ("restore versions", "restore_file_version"),
)
"""What the File info dialog says a user can do, and the CS3 permission behind each word."""

def kind_of(name: str, is_dir: bool) -> str:
    if is_dir:
        return "directory"
    return "notebook" if name.endswith(".ipynb") else "file"


def _opaque(message, key: str) -> str:
    entry = message.opaque.map.get(key) if message.HasField("opaque") else None
    return entry.value.decode("utf-8", "replace") if entry is not None else ""


# -- received shares ------------------------------------------------------------------


async def _stat_or_none(session: Session, rid: storage.ResourceId) -> storage.ResourceInfo | None:
    try:
        return await session.files.stat(rid)
    except (NotFound, PermissionDenied):  # a dangling share: listed by its id, without details
        return None


async def _received_ocm(session: Session) -> list[ocm.ReceivedShare]:
    try:
        return await session.ocm.list_received()
    except (Unimplemented, PermissionDenied, NotFound) as exc:  # a site without OCM
        log.debug("no received OCM shares user=%s: %s", session.user.username, exc)
        return []


async def received_shares(cm: CS3ContentsManager) -> list[dict]:
    """Every received share as a REST entry, pending first, then newest first."""
    session, _ = await cm.locate("")
    user_shares, remote, entries = await asyncio.gather(
        session.shares.list_received(), _received_ocm(session), cm.shared_entries(session)
    )
    infos = await asyncio.gather(*(_stat_or_none(session, r.share.resource_id) for r in user_shares))
    names = Names(session)
    owners = await asyncio.gather(*(names.user(r.share.owner) for r in user_shares),
                                  *(names.user(s.owner, _opaque(s, "ownerDisplayName")) for s in remote))
    user_owners, remote_owners = owners[:len(user_shares)], owners[len(user_shares):]
    by_resource = {format_resource_id(e.info.id): n for n, e in entries.items() if e.info is not None}
    by_ocm_id = {e.ocm.id.opaque_id: n for n, e in entries.items() if e.ocm is not None}
    folder = cm.shared_folder_name
    found: list[dict] = []
    for received, info, owner in zip(user_shares, infos, user_owners):
        share = received.share
        state = STATES.get(received.state, "pending")
        name = (info.name or info.path.rstrip("/").rsplit("/", 1)[-1]) if info is not None else share.id.opaque_id
        mounted = by_resource.get(format_resource_id(share.resource_id)) if state == "accepted" else None
        found.append({
            "id": share.id.opaque_id,
            "kind": "user",
            "state": state,
            "name": name,
            "type": kind_of(name, info is not None and info.type == storage.RESOURCE_TYPE_CONTAINER),
            "path": f"{folder}/{mounted}" if mounted else None,
            "owner": owner,
            "role": share_role(share.permissions.permissions),
            "size": info.size if info is not None and info.type != storage.RESOURCE_TYPE_CONTAINER else None,
            "mtime": iso(info.mtime) if info is not None else None,
            "shared": iso(share.ctime),
        })
    for share, owner in zip(remote, remote_owners):
        state = STATES.get(share.state, "pending")
        name = share.name or share.id.opaque_id
        mounted = by_ocm_id.get(share.id.opaque_id) if state == "accepted" else None
        found.append({
            "id": share.id.opaque_id,
            "kind": "federated",
            "state": state,
            "name": name,
            "type": kind_of(name, share.shared_resource_type == ocm.SHARE_RESOURCE_TYPE_CONTAINER),
            "path": f"{folder}/{mounted}" if mounted else None,
            "owner": owner,
            "role": EDITOR if share_writable(share) else VIEWER,
            "size": None,
            "mtime": iso(share.mtime) or iso(share.ctime),
            "shared": iso(share.ctime),
        })
    order = {"pending": 0, "accepted": 1, "declined": 2}
    found.sort(key=lambda e: e["shared"] or "", reverse=True)
    found.sort(key=lambda e: order[e["state"]])
    return found


async def set_received_state(cm: CS3ContentsManager, kind: str, share_id: str, state: str) -> dict:
    """Accept or decline a received share; the updated entry."""
    session, _ = await cm.locate("")
    if kind == "user":
        await session.shares.update_received(share_id, state=WANTED[state])
    else:
        if not any(s.id.opaque_id == share_id for s in await _received_ocm(session)):
            raise NotFound(f"no received federated share {share_id!r}", operation="UpdateReceivedOCMShare",
                           target=f"OCM share {share_id}")
        await session.ocm.update_received(share_id, state=WANTED[state])
    cm.forget_shared()
    log.info("received share %s share=%s kind=%s user=%s", state, share_id, kind, session.user.username)
    for entry in await received_shares(cm):
        if entry["kind"] == kind and entry["id"] == share_id:
            return entry
    raise NotFound(f"received share {share_id!r} is gone", operation="ListReceivedShares", target=f"share {share_id}")


# -- shares I made ------------------------------------------------------------------------


async def _sent_ocm(session: Session) -> list[ocm.Share]:
    try:
        return await session.ocm.list_shares()
    except (Unimplemented, PermissionDenied, NotFound) as exc:  # a site without OCM
        log.debug("no OCM shares user=%s: %s", session.user.username, exc)
        return []


def _contents_path(cs3_path: str, home: str) -> str | None:
    if cs3_path == home:
        return ""
    if cs3_path.startswith(home + "/"):
        return cs3_path[len(home) + 1:]
    return None


async def _grants(session: Session, resource_id: storage.ResourceId | None = None) -> tuple[list, list]:
    """The user and group shares, and the OCM shares, the caller made (of one resource)."""
    local, remote = await asyncio.gather(session.shares.list(resource_id), _sent_ocm(session))
    if resource_id is not None:
        remote = [s for s in remote if s.resource_id == resource_id]
    return local, remote


async def shared_by_me(cm: CS3ContentsManager) -> list[dict]:
    """The shares the user made, newest first, each with the shared file's contents path."""
    session, _ = await cm.locate("")
    (local, remote), home = await asyncio.gather(_grants(session), cm.home_path(session))
    shares = [*local, *remote]
    resources = {format_resource_id(s.resource_id): s.resource_id for s in shares}
    infos = dict(zip(resources, await asyncio.gather(*(_stat_or_none(session, r) for r in resources.values()))))
    entries = await grant_entries(Names(session), local, remote)  # in the order of `shares`
    for entry, share in zip(entries, shares):
        info = infos[format_resource_id(share.resource_id)]
        name = getattr(share, "name", "") or share.id.opaque_id
        path = None
        if info is not None:
            name = info.name or info.path.rstrip("/").rsplit("/", 1)[-1] or name
            path = _contents_path(info.path, home)
        entry.update(path=path, name=name)
    entries.sort(key=lambda e: e["created"] or "", reverse=True)
    return entries


# -- File info ----------------------------------------------------------------------------------


async def _lock_of(session: Session, info: storage.ResourceInfo) -> dict | None:
    lock = await session.locks.get(info.id)
    if lock is None:
        return None
    holder = None
    if lock.HasField("user") and lock.user.opaque_id:
        person = await Names(session).user(lock.user)
        holder = {"displayName": person["displayName"], "username": person["username"], "idp": person["idp"]}
    expires = iso(lock.expiration) if lock.HasField("expiration") else None
    return {"app": lock.app_name, "holder": holder, "expires": expires}


async def _versions_of(session: Session, info: storage.ResourceInfo) -> int:
    return len(await session.versions.list(info.id))


async def _shares_of(session: Session, info: storage.ResourceInfo) -> list[dict]:
    entries = await grant_entries(Names(session), *await _grants(session, info.id))
    return [{"id": e["id"], "kind": e["kind"], "grantee": e["grantee"], "role": e["role"]} for e in entries]


async def _remote_facts(session: Session, share: ocm.ReceivedShare, is_dir: bool) -> dict:
    """Size, modification time, lock and number of versions of a file shared from
    another site, asked of that site's collaboration service with the share's
    credentials (ocm_versions.py); nothing when it cannot answer (the received
    share's facts stay)."""
    target = None if is_dir else ocm_target(share)
    if target is None:
        return {}
    try:
        target = await with_token_endpoint(target, session)
        answer = await ocm_versions.listing(target, limit=1)
    except CS3Error as exc:
        log.info("no facts from the sharing site share=%s error=%s", share.id.opaque_id, exc)
        return {}
    versions = answer.get("versions") or []
    current = versions[0] if versions and versions[0].get("current") else None
    facts: dict = {"versions": max(0, int(answer.get("total") or 0) - (1 if current else 0)), "lock": None}
    lock = answer.get("lock")
    if isinstance(lock, dict):
        facts["lock"] = {"app": str(lock.get("app") or ""), "holder": _holder(lock.get("holder")),
                         "expires": lock.get("expires")}
    if current is not None:
        facts["size"] = current.get("size")
        if current.get("time"):
            facts["mtime"] = datetime.fromtimestamp(int(current["time"]), tz=timezone.utc).isoformat()
    return facts


def _holder(found: object) -> dict | None:
    """The lock holder the sharing site named (``{"displayName", "username", "idp"}``), as text only."""
    if not isinstance(found, dict) or not found.get("displayName"):
        return None
    return {key: str(found.get(key) or "") for key in ("displayName", "username", "idp")}


async def _none() -> None:
    return None


async def file_info(cm: CS3ContentsManager, api_path: str) -> dict:
    """What the File info dialog shows of a contents path.

    ``permissions.role`` is ``owner`` for the caller's own files, else the
    share's ``editor`` or ``viewer``; ``can`` names what the permission set
    allows (:data:`CAN`). ``lock`` is null or ``{"app", "holder", "expires"}``;
    ``shares`` is null unless the caller may list the resource's grants;
    ``versions`` counts CS3 versions (null for folders and federated shares).
    """
    session, place = await cm.locate(api_path)
    name = place.api_path.rsplit("/", 1)[-1] if place.api_path else ""
    bare = {"path": place.api_path, "name": name, "size": None, "lock": None, "shares": None, "versions": None,
            "resourceId": None}
    if place.kind == "virtual":  # the "Shared with me" folder: the caller's own listing of shares
        me = session.user
        owner = {"username": me.username, "idp": me.id.idp, "displayName": me.display_name or me.username}
        return {**bare, "type": "directory", "owner": owner, "mtime": None,
                "permissions": {"role": VIEWER, "can": ["read"]}}
    if place.kind == "ocm":  # a federated share: what the received share says (inside a folder: what A says)
        share = place.entry.ocm
        owner = await Names(session).user(share.owner, _opaque(share, "ownerDisplayName"))
        writable, is_dir, mtime = share_writable(share), place.entry.is_dir, iso(share.mtime) or iso(share.ctime)
        if place.below_entry:  # inside a folder shared through OCM: what the sharing site answers
            remote = await fetch_content(await cm._ocm_target(session, place), content=False)
            writable, is_dir = bool(remote.get("writable")), remote.get("type") == "directory"
            mtime = datetime.fromtimestamp(float(remote.get("mtime") or 0), tz=timezone.utc).isoformat()
            bare["size"] = remote.get("size")
        answer = {**bare, "type": kind_of(name, is_dir),
                  "owner": {k: owner[k] for k in ("username", "idp", "displayName")},
                  "mtime": mtime,
                  "permissions": {"role": EDITOR if writable else VIEWER,
                                  "can": ["read", "write"] if writable else ["read"]}}
        if place.below_entry:
            return answer
        return {**answer, **await _remote_facts(session, share, place.entry.is_dir)}
    info = await session.files.stat(place.ref)
    is_dir = info.type == storage.RESOURCE_TYPE_CONTAINER
    perms = info.permission_set
    owner_id = info.owner if info.HasField("owner") and info.owner.opaque_id else session.user.id
    mine = (owner_id.idp, owner_id.opaque_id) == (session.user.id.idp, session.user.id.opaque_id)
    owner, lock, versions, shares = await asyncio.gather(
        Names(session).user(owner_id),
        _none() if is_dir else _lock_of(session, info),
        _none() if is_dir or not perms.list_file_versions else _versions_of(session, info),
        _shares_of(session, info) if perms.list_grants else _none(),
    )
    return {
        "path": place.api_path,
        "name": name,
        "type": kind_of(name, is_dir),
        "owner": {k: owner[k] for k in ("username", "idp", "displayName")},
        "size": None if is_dir else info.size,
        "mtime": iso(info.mtime),
        "permissions": {"role": OWNER if mine else share_role(perms),
                        "can": [word for word, field in CAN if getattr(perms, field)]},
        "lock": lock,
        "shares": shares,
        "versions": versions,
        "resourceId": format_resource_id(info.id),
    }


# -- handlers --------------------------------------------------------------------------------


class _BrowseHandler(APIHandler):
    auth_resource = "contents"

    @property
    def cm(self) -> CS3ContentsManager:
        cm = self.contents_manager
        if not isinstance(cm, CS3ContentsManager):
            raise web.HTTPError(501, f"{type(cm).__name__} is not on CS3: no shares to browse")
        return cm

    @contextlib.contextmanager
    def translated(self, action: str, target: str) -> Iterator[None]:
        """Log a CS3 error (user, CS3 target, status) and answer it through the
        contents manager's one table (:func:`~cs3collab.jupyter.errors.http_error`)."""
        try:
            yield
        except CS3Error as exc:
            user = self.current_user.username if self.current_user else "-"
            log.warning("%s failed user=%s target=%s cs3_status=%s operation=%s: %s", action, user,
                        exc.target or target, exc.code, exc.operation, exc.message)
            raise http_error(exc, action, target) from None


class ReceivedHandler(_BrowseHandler):
    """``GET /api/cs3collab/received``."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        with self.translated("Cannot list", "received shares"):
            shares = await received_shares(self.cm)
        self.finish({"shares": shares})


class ReceivedShareHandler(_BrowseHandler):
    """``POST /api/cs3collab/received/<kind>/<id>`` ``{"state": "accepted"|"declined"}``."""

    @web.authenticated
    @authorized
    async def post(self, kind: str, share_id: str) -> None:
        if kind not in KINDS:
            raise web.HTTPError(404, f"no share kind {kind!r} (expected user or federated)")
        try:
            body = json.loads(self.request.body or b"")
        except ValueError:
            raise web.HTTPError(400, 'the body must be JSON: {"state": "accepted" or "declined"}') from None
        state = body.get("state") if isinstance(body, dict) else None
        if state not in WANTED:
            raise web.HTTPError(400, f'state must be "accepted" or "declined", got {state!r}')
        with self.translated(f"Cannot set to {state} the {kind} share", share_id):
            entry = await set_received_state(self.cm, kind, share_id, state)
        self.finish(entry)


class SharedByMeHandler(_BrowseHandler):
    """``GET /api/cs3collab/shared-by-me``."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        with self.translated("Cannot list", "shares made by you"):
            shares = await shared_by_me(self.cm)
        self.finish({"shares": shares})


class InfoHandler(_BrowseHandler):
    """``GET /api/cs3collab/info?path=<contents path>``."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        path = self.get_query_argument("path", None)
        if path is None:
            raise web.HTTPError(400, "path is required")
        path = path.strip("/")
        with self.translated("Cannot describe", path):
            info = await file_info(self.cm, path)
        self.finish(info)


def browse_handlers() -> list[tuple[str, type, dict]]:
    """The routes the extension installs (base_url is prepended by ExtensionApp)."""
    return [
        (r"/api/cs3collab/received", ReceivedHandler, {}),
        (r"/api/cs3collab/received/([^/]+)/([^/]+)", ReceivedShareHandler, {}),
        (r"/api/cs3collab/shared-by-me", SharedByMeHandler, {}),
        (r"/api/cs3collab/info", InfoHandler, {}),
    ]
