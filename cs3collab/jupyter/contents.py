"""An async Jupyter contents manager on CS3 storage.

``CS3ContentsManager`` serves the Jupyter contents API (``/api/contents``)
from a CS3 site through the server's one CS3 session
(:class:`~cs3collab.jupyter.connection.CS3CollabConnection`):

* The Jupyter root ``""`` is the user's CS3 home (``GetHome``); the API path
  ``a/b.ipynb`` is the CS3 path ``<home>/a/b.ipynb``.
* A virtual top-level folder (``shared_folder_name``, default
  ``"Shared with me"``) lists the user shares the user accepted and the OCM
  shares received from other sites. Each entry is named by the shared
  resource's name; when two shares have the same name the later ones (by
  share creation time) become ``name (2).ext``, ``name (3).ext``… Below an
  entry, API paths map to resource-id references ``(resource_id, "./rel")``,
  so nothing depends on where the share is mounted. A folder of the home
  with the same name is hidden by the virtual one (rename the trait).
* OCM shares live at another site: they are listed (type from the shared
  resource, ``mimetype`` :data:`OCM_MIMETYPE`, ``writable`` from the share's
  role). A file shared with our collaboration service as OCM webapp
  (:mod:`cs3collab.jupyter.ocm_remote`) opens live: its content comes from
  the sharing site's service, ``cs3_reference`` names it by an
  :class:`~cs3collab.jupyter.ocm_remote.OCMTarget` so that the bridge joins
  the room there, and opening a pending share accepts it. A folder received
  through OCM is listed, read and saved through that site's content route
  (``?path=`` inside the share; the share's role decides writes), and the
  notebooks in it open live the same way (``ocm:<share id>/<path>``);
  :meth:`CS3ContentsManager.owning_site` says where such a path lives.
  Creating folders, renames, deletes and chunked uploads inside an OCM share
  are refused (done at that site); an OCM share without our webapp answers
  501 saying where it lives.
* ``writable`` comes from the CS3 permission set (``initiate_file_upload``):
  a viewer share gives ``writable: false``, which the stock JupyterLab shows
  as read-only.
* ``hash``: with ``require_hash`` the model carries the CS3 etag, verbatim
  (quotes included), with ``hash_algorithm`` :data:`HASH_ALGORITHM`
  (``"cs3-etag"``). The stock frontend compares this value with the
  document's ``state.hash``; the collaboration service sets ``state.hash``
  to the etag CS3 reports after each of its saves, so the two agree without
  ever reading a file just to hash it.
* Large files stream both ways: uploads in the frontend's chunked protocol
  (``chunk`` 1, 2, …, -1) are appended to a local temporary file and
  streamed to CS3 at the last chunk; ``/files/`` downloads are streamed
  from CS3 by :class:`~cs3collab.jupyter.fileshandler.CS3FilesHandler`. Only the contents API's own JSON
  models (notebooks, text and base64 files) are held in memory.
* Errors: storage code raises the CS3 client's typed errors only; the public
  methods translate them once, with the table of
  :mod:`cs3collab.jupyter.errors`, into a tornado ``HTTPError`` naming the API path and
  carrying the CS3 message.

How the CS3 session is found (``connection``): the trait if it is set (the
extension app sets ``serverapp.contents_manager.connection``); else the
object in the tornado settings under :data:`CONNECTION_SETTING` of the
parent server; else a ``CS3CollabConnection`` of its own, configured from
the same config (``c.CS3CollabConnection.gateway`` etc.), so that
``jupyter server --ServerApp.contents_manager_class=cs3collab.jupyter.contents.CS3ContentsManager``
works on its own.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fnmatch
import json
import mimetypes
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import nbformat
from cs3.sharing.ocm.v1beta1 import resources_pb2 as ocm
from cs3.storage.provider.v1beta1 import resources_pb2 as storage
from jupyter_server.services.contents.manager import AsyncContentsManager
from tornado.web import HTTPError
from traitlets import Float, Instance, Unicode, default

from cs3collab.cs3 import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Session,
    Unimplemented,
)
from cs3collab.cs3.refs import RefLike, describe
from cs3collab.cs3.roles import can_write
from cs3collab.jupyter.connection import CS3CollabConnection
from cs3collab.jupyter.errors import cs3_errors
from cs3collab.jupyter.shared import SharedEntry, SharedWithMe
from cs3collab.jupyter.ocm_remote import (OCMTarget, fetch_content, ocm_target, save_content, share_writable,
                                          with_token_endpoint)

__all__ = [
    "CONNECTION_SETTING",
    "CS3ContentsManager",
    "HASH_ALGORITHM",
    "OCM_MIMETYPE",
]

CONNECTION_SETTING = "cs3collab_connection"
"""Key of the ``CS3CollabConnection`` in the tornado settings, if the extension puts it there."""

HASH_ALGORITHM = "cs3-etag"
"""``hash_algorithm`` of the models: ``hash`` is the CS3 etag, not a digest of the bytes."""

OCM_MIMETYPE = "application/vnd.cs3collab.ocm-share"
"""``mimetype`` of a received OCM share: listed here, opened at the site that shares it."""

DIR_MIME = "httpd/unix-directory"

# -- paths ----------------------------------------------------------------------


@dataclass
class Place:
    """Where an API path leads: the home or below it (``home``), the virtual
    folder (``virtual``), a user share or below it (``shared``), an OCM share
    or below it (``ocm``)."""

    api_path: str
    kind: str
    ref: RefLike | None = None
    entry: SharedEntry | None = None
    below_entry: bool = False
    rel: str = ""  # below an OCM folder share: the path inside it


def _parts(api_path: str) -> list[str]:
    path = api_path.strip("/")
    if not path:
        return []
    parts = path.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise InvalidArgument(f"invalid path {api_path!r}", operation="resolve", target=api_path)
    return parts


async def _one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _datetime(ts) -> datetime:
    return datetime.fromtimestamp(ts.seconds + ts.nanos / 1e9, tz=timezone.utc)


# -- the manager --------------------------------------------------------------------


class CS3ContentsManager(AsyncContentsManager):
    """Jupyter contents on CS3: the user's home plus a "Shared with me" folder."""

    connection = Instance(
        CS3CollabConnection,
        allow_none=True,
        help="The CS3 connection to use. None (default): the one in the server's tornado settings "
        f"under {CONNECTION_SETTING!r}, else one of our own configured from CS3CollabConnection config.",
    )
    shared_folder_name = Unicode(
        "Shared with me",
        help="Name of the virtual top-level folder listing accepted user shares and received OCM shares. "
        "A folder of the home with this name is hidden by it.",
    ).tag(config=True)
    shared_cache_seconds = Float(
        5.0,
        help="Seconds a resolved list of shares is reused to map paths below the shared folder "
        "(listing the folder itself always asks CS3 again; CS3 checks access on every call anyway). 0: never reuse.",
    ).tag(config=True)
    upload_dir = Unicode(
        "",
        help="Local folder for the temporary files of chunked uploads (empty: the system temp folder).",
    ).tag(config=True)
    chunked_upload_timeout = Float(
        3600.0,
        help="Seconds after which an unfinished chunked upload's temporary file is dropped (default 3600).",
    ).tag(config=True)

    @default("checkpoints_class")
    def _default_checkpoints_class(self):
        from cs3collab.jupyter.checkpoints import CS3Checkpoints

        return CS3Checkpoints

    @default("files_handler_class")
    def _default_files_handler_class(self):
        from cs3collab.jupyter.fileshandler import CS3FilesHandler

        return CS3FilesHandler

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._home: tuple[str, str] | None = None  # (user id, home path)
        self._shared = SharedWithMe(self)  # the entries of the virtual folder, briefly cached
        self._chunks: dict[str, tuple[Path, float]] = {}  # api path -> (temp file, last write)
        self._hide_pattern: tuple[tuple[str, ...], re.Pattern | None] | None = None  # (hide_globs, compiled)

    # -- connection and session ------------------------------------------------

    def _connection(self) -> CS3CollabConnection:
        if self.connection is None:
            settings = getattr(getattr(self.parent, "web_app", None), "settings", None) or {}
            found = settings.get(CONNECTION_SETTING)
            self.connection = found if found is not None else CS3CollabConnection(parent=self)
        return self.connection

    async def _session(self) -> Session:
        return await self._connection().session()

    async def _home_path(self, session: Session) -> str:
        user = session.user.id.opaque_id
        if self._home is None or self._home[0] != user:
            self._home = (user, (await session.get_home()).rstrip("/"))
        return self._home[1]

    # -- "Shared with me" ------------------------------------------------------------

    async def _shared_entries(self, session: Session, fresh: bool = False) -> dict[str, SharedEntry]:
        return await self._shared.entries(session, fresh=fresh)

    async def _shared_entry(self, session: Session, name: str, api_path: str) -> SharedEntry:
        return await self._shared.entry(session, name, api_path)

    # -- for the REST handlers of cs3collab.jupyter.browse -------------------------------

    async def locate(self, api_path: str) -> tuple[Session, Place]:
        """The session and where ``api_path`` leads (raises CS3 errors; callers translate)."""
        session = await self._session()
        return session, await self._locate(session, api_path)

    async def home_path(self, session: Session) -> str:
        """The CS3 path of the user's home (the contents root)."""
        return await self._home_path(session)

    async def shared_entries(self, session: Session) -> dict[str, SharedEntry]:
        """The entries of the shared folder by name, freshly listed."""
        return await self._shared_entries(session, fresh=True)

    def forget_shared(self) -> None:
        """Drop the cached shared entries (after a share was accepted or declined),
        so that the next path below the shared folder is resolved afresh."""
        self._shared.forget()

    # -- path resolution --------------------------------------------------------------

    async def _locate(self, session: Session, api_path: str) -> Place:
        parts = _parts(api_path)
        path = "/".join(parts)
        if parts and parts[0] == self.shared_folder_name:
            if len(parts) == 1:
                return Place(path, "virtual")
            entry = await self._shared_entry(session, parts[1], path)
            below = len(parts) > 2
            if entry.ocm is not None:
                return Place(path, "ocm", entry=entry, below_entry=below, rel="/".join(parts[2:]))
            rid = entry.info.id
            ref: RefLike = (rid, "./" + "/".join(parts[2:])) if below else rid
            return Place(path, "shared", ref, entry, below)
        home = await self._home_path(session)
        return Place(path, "home", f"{home}/{path}" if path else home)

    async def cs3_reference(self, api_path: str) -> str | storage.ResourceId | OCMTarget:
        """The CS3 resource an API path names, for the collaboration bridge.

        An absolute CS3 path for what lies in the home; the resource's own
        ResourceId for anything reached through "Shared with me" (a Stat
        through the share finds it for items inside shared folders), so a
        recipient and the owner land in the same room. A received OCM share
        offering our webapp is an :class:`OCMTarget` (its room is at the
        sharing site, also for paths inside a shared folder); the virtual
        folder and OCM shares without our webapp have no reference: 400 and 501.
        """
        with cs3_errors("Cannot resolve", api_path):
            session = await self._session()
            place = await self._locate(session, api_path)
            if place.kind == "virtual":
                raise InvalidArgument(f"{self.shared_folder_name!r} is a virtual folder", target=api_path)
            if place.kind == "ocm":
                return await self._ocm_target(session, place)
            if place.kind == "home":
                return place.ref
            if not place.below_entry:
                return place.entry.info.id
            return (await session.files.stat(place.ref)).id

    async def owning_site(self, api_path: str) -> OCMTarget | None:
        """Where an API path lives when another site owns it (an OCM share or a
        path inside one): see :func:`cs3collab.jupyter.ocm_remote.owning_site`.
        None for what this site serves."""
        with cs3_errors("Cannot resolve", api_path):
            session = await self._session()
            place = await self._locate(session, api_path)
            if place.kind != "ocm":
                return None
            return await self._ocm_target(session, place)

    async def _ocm_target(self, session: Session, place: Place) -> OCMTarget:
        """The remote target of an OCM entry (or of a path inside an OCM folder
        share), accepting the share if it is still pending."""
        share = place.entry.ocm
        target = ocm_target(share)
        if target is None or (place.below_entry and not place.entry.is_dir):
            raise place.entry.unreachable(place.api_path)
        if share.state == ocm.SHARE_STATE_PENDING:
            await session.ocm.update_received(share.id.opaque_id, state=ocm.SHARE_STATE_ACCEPTED)
            share.state = ocm.SHARE_STATE_ACCEPTED
            self.log.info("accepted OCM share %s (%s) on opening it", share.id.opaque_id, place.api_path)
        target = await with_token_endpoint(target, session)
        return replace(target, path=place.rel) if place.rel else target

    # -- models ----------------------------------------------------------------------------

    def _base_model(self, api_path: str, *, mtime: datetime, writable: bool) -> dict[str, Any]:
        return {
            "name": api_path.rsplit("/", 1)[-1],
            "path": api_path,
            "last_modified": mtime,
            # CS3 keeps no creation time: the modification time stands in for it
            "created": mtime,
            "content": None,
            "format": None,
            "mimetype": None,
            "size": None,
            "writable": writable,
            "hash": None,
            "hash_algorithm": None,
        }

    @staticmethod
    def _kind(api_path: str, info: storage.ResourceInfo, type: str | None) -> str:
        if info.type == storage.RESOURCE_TYPE_CONTAINER:
            return "directory"
        if type == "notebook" or (type is None and api_path.endswith(".ipynb")):
            return "notebook"
        return "file"

    def _info_model(self, api_path: str, info: storage.ResourceInfo, kind: str, require_hash: bool = False) -> dict:
        model = self._base_model(api_path, mtime=_datetime(info.mtime), writable=can_write(info.permission_set))
        model["type"] = kind
        if kind != "directory":
            model["size"] = info.size
        if kind == "file":
            guessed = mimetypes.guess_type(model["name"])[0]
            cs3_mime = info.mime_type if info.mime_type not in ("", DIR_MIME, "application/octet-stream") else None
            model["mimetype"] = guessed or cs3_mime
        if require_hash:
            model["hash"], model["hash_algorithm"] = info.etag, HASH_ALGORITHM
        return model

    def _ocm_model(self, api_path: str, entry: SharedEntry, require_hash: bool = False) -> dict:
        share = entry.ocm
        stamp = share.mtime if share.HasField("mtime") else share.ctime
        model = self._base_model(api_path, mtime=_datetime(stamp),
                                 writable=ocm_target(share) is not None and share_writable(share))
        if entry.is_dir:
            model["type"] = "directory"
        else:
            model["type"] = "notebook" if api_path.endswith(".ipynb") else "file"
        model["mimetype"] = OCM_MIMETYPE
        if require_hash:
            model["hash"] = f"ocm:{share.id.opaque_id}:{stamp.seconds}.{stamp.nanos}"
            model["hash_algorithm"] = HASH_ALGORITHM
        return model

    def _listed(self, name: str) -> bool:
        """``should_list`` (no ``hide_globs`` match) and not hidden, with the
        globs compiled once into one pattern: a folder of 1000 entries was
        spending a third of its listing time in ``fnmatch``."""
        if not self.allow_hidden and name.startswith("."):
            return False
        globs = tuple(self.hide_globs)
        if self._hide_pattern is None or self._hide_pattern[0] != globs:
            joined = "|".join(f"(?:{fnmatch.translate(glob)})" for glob in globs)
            self._hide_pattern = (globs, re.compile(joined) if joined else None)
        pattern = self._hide_pattern[1]
        return pattern is None or pattern.match(name) is None

    async def _virtual_model(self, session: Session, content: bool, require_hash: bool) -> dict:
        entries = await self._shared_entries(session, fresh=True)
        children = []
        for name, entry in entries.items():
            if not self._listed(name):
                continue
            path = f"{self.shared_folder_name}/{name}"
            if entry.ocm is not None:
                children.append(self._ocm_model(path, entry))
            else:
                children.append(self._info_model(path, entry.info, self._kind(path, entry.info, None)))
        # the newest share's time; with no share yet, now (not 1970: "56 years ago")
        newest = max((c["last_modified"] for c in children), default=datetime.now(timezone.utc))
        model = self._base_model(self.shared_folder_name, mtime=newest, writable=False)
        model["type"] = "directory"
        if content:
            model["content"], model["format"] = children, "json"
        if require_hash:
            model["hash"] = "shared:" + ",".join(
                (e.info.etag if e.info is not None else e.ocm.id.opaque_id) for e in entries.values()
            )
            model["hash_algorithm"] = HASH_ALGORITHM
        return model

    async def _dir_content(self, session: Session, place: Place) -> list[dict]:
        infos = await session.files.list(place.ref)
        children = []
        prefix = f"{place.api_path}/" if place.api_path else ""
        for info in infos:
            name = info.name or info.path.rstrip("/").rsplit("/", 1)[-1]
            if not name or not self._listed(name):
                continue
            if not place.api_path and name == self.shared_folder_name:
                self.log.warning("the home folder %r is hidden by the virtual shared folder", name)
                continue
            path = prefix + name
            children.append(self._info_model(path, info, self._kind(path, info, None)))
        if not place.api_path and self._listed(self.shared_folder_name):
            children.append(await self._virtual_model(session, content=False, require_hash=False))
        return children

    async def _read_bytes(self, session: Session, ref: RefLike) -> bytes:
        return await session.files.download(ref)

    async def _build(self, session: Session, place: Place, content: bool, type: str | None, format: str | None,
                     require_hash: bool) -> dict:
        """The model of a located path (storage level: raises CS3 errors and the
        HTTPErrors of request validation only)."""
        if place.kind == "virtual":
            if type not in (None, "directory"):
                raise HTTPError(400, f"{place.api_path} is a directory, not a {type}", reason="bad type")
            return await self._virtual_model(session, content, require_hash)
        if place.kind == "ocm":
            return await self._build_ocm(session, place, content, type, format, require_hash)
        info = await session.files.stat(place.ref)
        kind = self._kind(place.api_path, info, type)
        if kind == "directory" and type not in (None, "directory"):
            raise HTTPError(400, f"{place.api_path} is a directory, not a {type}", reason="bad type")
        if kind != "directory" and type == "directory":
            raise HTTPError(400, f"{place.api_path} is not a directory", reason="bad type")
        model = self._info_model(place.api_path, info, kind, require_hash)
        if not content:
            return model
        if kind == "directory":
            model["content"], model["format"] = await self._dir_content(session, place), "json"
        elif kind == "notebook":
            data = await self._read_bytes(session, place.ref)
            validation_error: dict[str, Any] = {}
            try:
                nb = nbformat.reads(data.decode("utf-8"), as_version=4, capture_validation_error=validation_error)
            except Exception as e:
                raise HTTPError(400, f"Unreadable Notebook: {place.api_path} {e!r}") from e
            self.mark_trusted_cells(nb, place.api_path)
            model["content"], model["format"] = nb, "json"
            self.validate_notebook_model(model, validation_error)
        else:
            data = await self._read_bytes(session, place.ref)
            if format in (None, "text"):
                try:
                    model["content"], model["format"] = data.decode("utf-8"), "text"
                except UnicodeError:
                    if format == "text":
                        raise HTTPError(400, f"{place.api_path} is not UTF-8 encoded", reason="bad format") from None
            if model["format"] is None:
                model["content"], model["format"] = base64.b64encode(data).decode("ascii"), "base64"
            if model["mimetype"] is None:
                model["mimetype"] = {"text": "text/plain", "base64": "application/octet-stream"}[model["format"]]
        return model

    async def _build_ocm(self, session: Session, place: Place, content: bool, type: str | None,
                         format: str | None, require_hash: bool) -> dict:
        """The model of an OCM share, or of a path inside a shared folder, from
        the sharing site's content route (the share's entry itself without
        content needs no call there)."""
        if not place.below_entry and not content:
            model = self._ocm_model(place.api_path, place.entry, require_hash)
        else:
            remote = await fetch_content(await self._ocm_target(session, place), content=content)
            model = self._remote_model(place, remote, require_hash)
        if model["type"] == "directory" and type not in (None, "directory"):
            raise HTTPError(400, f"{place.api_path} is a directory, not a {type}", reason="bad type")
        if model["type"] != "directory" and type == "directory":
            raise HTTPError(400, f"{place.api_path} is not a directory", reason="bad type")
        if not content:
            return model
        if model["type"] == "notebook":
            nb = nbformat.reads(json.dumps(remote["content"]), as_version=4)
            self.mark_trusted_cells(nb, place.api_path)
            model["content"], model["format"] = nb, "json"
        elif model["type"] == "directory":
            model["content"], model["format"] = [
                self._remote_child(f"{place.api_path}/{child['name']}", child)
                for child in remote.get("content") or [] if self._listed(str(child.get("name", "")))
            ], "json"
        else:
            fmt = remote.get("format") or "text"
            if format == "text" and fmt != "text":
                raise HTTPError(400, f"{place.api_path} is not UTF-8 encoded", reason="bad format")
            if format == "base64" and fmt == "text":
                model["content"] = base64.b64encode(str(remote["content"]).encode("utf-8")).decode("ascii")
                fmt = "base64"
            else:
                model["content"] = remote["content"]
            model["format"] = fmt
            if model["mimetype"] is None:
                model["mimetype"] = {"text": "text/plain", "base64": "application/octet-stream"}[fmt]
        return model

    def _remote_model(self, place: Place, remote: dict, require_hash: bool) -> dict:
        """A model from the sharing site's answer (the entry's own name and path here)."""
        model = self._remote_child(place.api_path, remote)
        if not place.below_entry:
            model["mimetype"] = OCM_MIMETYPE
        if require_hash:
            model["hash"], model["hash_algorithm"] = remote.get("etag"), HASH_ALGORITHM
        return model

    def _remote_child(self, api_path: str, remote: dict) -> dict:
        mtime = datetime.fromtimestamp(float(remote.get("mtime") or 0), tz=timezone.utc)
        model = self._base_model(api_path, mtime=mtime, writable=bool(remote.get("writable")))
        kind = remote.get("type")
        model["type"] = kind if kind in ("directory", "notebook", "file") else "file"
        if model["type"] != "directory":
            model["size"] = remote.get("size")
        if model["type"] == "file":
            model["mimetype"] = mimetypes.guess_type(model["name"])[0]
        return model

    async def _save_ocm(self, place: Place, model: dict) -> dict:
        """Save a file or notebook of an OCM share (or inside a shared folder)
        through the sharing site, which applies the share's role."""
        session = await self._session()
        if (place.entry.is_dir and not place.below_entry) or model["type"] == "directory":
            raise Unimplemented("folders of an OCM share are created at the site that shares it",
                                operation="save", target=place.api_path)
        target = await self._ocm_target(session, place)
        if model["type"] == "notebook":
            nb = nbformat.from_dict(model["content"])
            self.check_and_sign(nb, place.api_path)
            await save_content(target, "json", json.loads(nbformat.writes(nb, version=nbformat.NO_CONVERT)))
        elif model["type"] == "file":
            fmt = model.get("format")
            if fmt not in ("text", "base64"):
                raise HTTPError(400, "Must specify format of file contents as 'text' or 'base64'")
            await save_content(target, fmt, model["content"])
        else:
            raise HTTPError(400, f"Unhandled contents type: {model['type']}")
        return await self._build_ocm(session, place, False, None, None, False)

    # -- ContentsManager API -------------------------------------------------------------

    async def get(self, path, content=True, type=None, format=None, require_hash=False):
        """The model of a file, notebook or directory (see the module docstring)."""
        path = path.strip("/")
        if not self.allow_hidden and await self.is_hidden(path):
            raise HTTPError(404, f"file or directory {path!r} does not exist")
        with cs3_errors("Cannot get", path):
            session = await self._session()
            place = await self._locate(session, path)
            model = await self._build(session, place, bool(content), type, format, bool(require_hash))
        self.emit(data={"action": "get", "path": path})
        return model

    async def save(self, model, path=""):
        """Save a model (notebook, file, directory, or one chunk of a large file);
        return the saved model without content."""
        path = path.strip("/")
        chunk = model.get("chunk")
        if chunk is None or chunk == 1:
            self.run_pre_save_hooks(model=model, path=path)
        if "type" not in model:
            raise HTTPError(400, "No file type provided")
        if "content" not in model and model["type"] != "directory":
            raise HTTPError(400, "No file content provided")
        if chunk is not None:
            return await self._save_chunk(model, path, chunk)

        validation_error: dict[str, Any] = {}
        kind = model["type"]
        with cs3_errors("Cannot save", path):
            session = await self._session()
            place = await self._writable_place(session, path)
            if place.kind == "ocm":
                saved = await self._save_ocm(place, model)
                self.run_post_save_hooks(model=saved, os_path=path)
                self.emit(data={"action": "save", "path": path})
                return saved
            if kind == "notebook":
                nb = nbformat.from_dict(model["content"])
                self.check_and_sign(nb, path)
                text = nbformat.writes(nb, version=nbformat.NO_CONVERT, capture_validation_error=validation_error)
                await session.files.upload(place.ref, text.encode("utf-8"))
            elif kind == "file":
                await session.files.upload(place.ref, self._decode(model["content"], model.get("format"), path))
            elif kind == "directory":
                await self._mkdir(session, place)
            else:
                raise HTTPError(400, f"Unhandled contents type: {kind}")
            validation_message = None
            if kind == "notebook":
                self.validate_notebook_model(model, validation_error=validation_error)
                validation_message = model.get("message")
            saved = await self._build(session, place, False, None, None, False)
        if validation_message:
            saved["message"] = validation_message
        self.run_post_save_hooks(model=saved, os_path=self._describe(place))
        self.emit(data={"action": "save", "path": path})
        return saved

    @staticmethod
    def _describe(place: Place) -> str:
        return describe(place.ref) if place.ref is not None else place.api_path

    @staticmethod
    def _decode(content: str, format: str | None, path: str) -> bytes:
        if format not in {"text", "base64"}:
            raise HTTPError(400, "Must specify format of file contents as 'text' or 'base64'")
        try:
            if format == "text":
                return content.encode("utf8")
            return base64.b64decode(content.encode("ascii"), validate=False)
        except Exception as e:
            raise HTTPError(400, f"Encoding error saving {path}: {e}") from e

    async def _writable_place(self, session: Session, path: str) -> Place:
        """Where a save or a new item goes; the virtual folder and OCM shares take nothing."""
        parts = _parts(path)
        try:
            place = await self._locate(session, path)
        except NotFound:
            if len(parts) == 2 and parts[0] == self.shared_folder_name:
                place = Place(path, "virtual")
            else:
                raise
        if place.kind == "virtual":
            raise PermissionDenied(
                f"{self.shared_folder_name!r} is a virtual folder listing your shares; nothing can be created in it",
                operation="save",
                target=path,
            )
        return place

    async def _mkdir(self, session: Session, place: Place) -> None:
        try:
            await session.files.mkdir(place.ref)
        except AlreadyExists:
            info = await session.files.stat(place.ref)
            if info.type != storage.RESOURCE_TYPE_CONTAINER:
                raise HTTPError(400, f"Not a directory: {place.api_path}") from None

    # -- chunked uploads (the frontend's large-file protocol) -----------------------------

    def _drop_stale_chunks(self) -> None:
        now = time.monotonic()
        for key, (tmp, touched) in list(self._chunks.items()):
            if now - touched > self.chunked_upload_timeout:
                self.log.warning("dropping unfinished chunked upload of %s", key)
                tmp.unlink(missing_ok=True)
                del self._chunks[key]

    async def _save_chunk(self, model: dict, path: str, chunk: int) -> dict:
        """Chunk 1 starts a temporary file, each chunk is appended, chunk -1 is the
        last: then the file is streamed to CS3 and the temporary file removed."""
        if model["type"] != "file":
            raise HTTPError(400, f'File type "{model["type"]}" is not supported for large file transfer')
        data = self._decode(model["content"], model.get("format"), path)
        self._drop_stale_chunks()
        if chunk == 1 or (chunk == -1 and path not in self._chunks):
            old = self._chunks.pop(path, None)
            if old is not None:
                old[0].unlink(missing_ok=True)
            fd, name = tempfile.mkstemp(prefix="cs3collab-upload-", dir=self.upload_dir or None)
            os.close(fd)
            self._chunks[path] = (Path(name), time.monotonic())
        elif path not in self._chunks:
            raise HTTPError(400, f"Chunk {chunk} of {path} arrived without chunk 1")
        tmp = self._chunks[path][0]
        await asyncio.to_thread(self._append, tmp, data)
        self._chunks[path] = (tmp, time.monotonic())
        if chunk != -1:
            return self._pending_model(path, tmp)
        try:
            with cs3_errors("Cannot save", path):
                session = await self._session()
                place = await self._writable_place(session, path)
                if place.kind == "ocm":
                    raise Unimplemented("large uploads into an OCM share are not supported; upload the file at "
                                        "the site that shares it", operation="save", target=path)
                await session.files.upload_file(place.ref, tmp)
                saved = await self._build(session, place, False, None, None, False)
        finally:
            self._chunks.pop(path, None)
            tmp.unlink(missing_ok=True)
        self.run_post_save_hooks(model=saved, os_path=self._describe(place))
        self.emit(data={"action": "save", "path": path})
        return saved

    @staticmethod
    def _append(tmp: Path, data: bytes) -> None:
        with open(tmp, "ab") as out:
            out.write(data)

    def _pending_model(self, path: str, tmp: Path) -> dict:
        """The model of a file whose chunks are still arriving (not yet in CS3)."""
        model = self._base_model(path, mtime=datetime.now(timezone.utc), writable=True)
        model.update(type="file", size=tmp.stat().st_size, mimetype=mimetypes.guess_type(path)[0])
        return model

    # -- the rest of the abstract surface ----------------------------------------------

    async def delete_file(self, path):
        """Delete a file or folder (CS3 Delete: Reva moves it to the recycle bin)."""
        path = path.strip("/")
        with cs3_errors("Cannot delete", path):
            session = await self._session()
            place = await self._locate(session, path)
            if place.kind == "ocm" and place.below_entry:
                raise PermissionDenied("items inside a folder shared from another site are deleted at that site",
                                       operation="delete", target=path)
            if place.kind in ("virtual", "ocm") or (place.kind == "shared" and not place.below_entry):
                raise PermissionDenied(
                    "shares are accepted, declined and removed in the site's sharing interface, not here",
                    operation="delete",
                    target=path,
                )
            await session.files.delete(place.ref)

    async def rename_file(self, old_path, new_path):
        """Rename or move (CS3 Move): the resource keeps its id, and so its room."""
        old_path, new_path = old_path.strip("/"), new_path.strip("/")
        if old_path == new_path:
            return
        with cs3_errors("Cannot rename", old_path):
            session = await self._session()
            source = await self._locate(session, old_path)
            destination = await self._writable_place(session, new_path)
            for place in (source, destination):
                if place.kind in ("virtual", "ocm") or (place.kind == "shared" and not place.below_entry):
                    raise PermissionDenied(
                        "shared items are renamed by their owner; the entries of "
                        f"{self.shared_folder_name!r} cannot be renamed here",
                        operation="rename",
                        target=place.api_path,
                    )
            await session.files.move(source.ref, destination.ref)

    async def _stat_kind(self, path: str) -> str | None:
        """``directory``, ``file`` or None (missing or not visible)."""
        session = await self._session()
        try:
            place = await self._locate(session, path)
        except (NotFound, InvalidArgument):
            return None
        if place.kind == "virtual":
            return "directory"
        if place.kind == "ocm":
            if not place.below_entry:
                return "directory" if place.entry.is_dir else "file"
            try:
                remote = await fetch_content(await self._ocm_target(session, place), content=False)
            except (NotFound, PermissionDenied, Unimplemented):
                return None
            return "directory" if remote.get("type") == "directory" else "file"
        try:
            info = await session.files.stat(place.ref)
        except (NotFound, PermissionDenied):
            return None
        return "directory" if info.type == storage.RESOURCE_TYPE_CONTAINER else "file"

    async def dir_exists(self, path):
        path = path.strip("/")
        with cs3_errors("Cannot check", path):
            return await self._stat_kind(path) == "directory"

    async def file_exists(self, path=""):
        path = path.strip("/")
        with cs3_errors("Cannot check", path):
            return await self._stat_kind(path) == "file"

    async def exists(self, path):
        path = path.strip("/")
        with cs3_errors("Cannot check", path):
            return await self._stat_kind(path) is not None

    async def is_hidden(self, path):
        """Hidden: any segment of the API path starts with a dot."""
        return any(part.startswith(".") for part in path.strip("/").split("/") if part)

    @contextlib.asynccontextmanager
    async def open_file(self, path: str) -> AsyncIterator[tuple[dict, AsyncIterator[bytes]]]:
        """``async with cm.open_file(path) as (model, chunks)``: a file's model
        (without content) and its bytes, streamed from CS3 chunk by chunk."""
        path = path.strip("/")
        with cs3_errors("Cannot download", path):
            session = await self._session()
            place = await self._locate(session, path)
            if place.kind == "ocm":
                model = await self._build(session, place, True, "file", None, False)
                data = (base64.b64decode(model["content"]) if model["format"] == "base64"
                        else str(model["content"]).encode("utf-8"))
                model["content"], model["format"] = None, None
                yield model, _one_chunk(data)
                return
            model = await self._build(session, place, False, "file", None, False)
            async with session.files.open_download(place.ref) as chunks:
                yield model, chunks

    def get_kernel_path(self, path, model=None):
        """Kernels start in the server's root_dir: CS3 paths are not local folders."""
        return ""
