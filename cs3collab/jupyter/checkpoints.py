"""Jupyter checkpoints backed by CS3 file versions.

CS3 keeps the previous content of a file as a version each time the file is
overwritten, so the versions *are* the checkpoints:

* ``list_checkpoints`` lists the file's versions, newest first: ``id`` is the
  version key and ``last_modified`` its time. Version keys such as Reva's
  ``<node>.REVISION.<time>`` contain characters the checkpoint route does not
  accept (``[\\w-]+``), so a key travels as its unpadded base64url form
  (:func:`checkpoint_id`, :func:`version_key`).
* ``create_checkpoint`` never writes: every save already keeps the previous
  content as a version, so it returns the newest version. A file that has
  never been overwritten has no version yet; its current content is then the
  checkpoint, listed under the id ``current`` until the next save versions
  it. Writing here would fight the collaboration service, which holds the
  file's lock while a room is open and must be the only writer (JupyterLab
  asks for a checkpoint after each manual save, also in collaborative mode).
* ``restore_checkpoint`` is CS3 ``RestoreFileVersion``: the version becomes
  the content, the previous content becomes a version.
* ``delete_checkpoint`` answers 405: CS3 has no call to delete a version; the
  site's retention policy expires them.
* Renames and deletes need nothing: versions follow the resource (its id),
  and go with it when it is deleted.
* A file another site shared through OCM has its versions there: they are
  listed and restored through that site's collaboration service with the
  share's credentials (ocm_versions.py), the same versions its history shows;
  so does a file inside a folder received through OCM (its session path
  ``ocm:<share id>/<path inside>``).
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone

from cs3.storage.provider.v1beta1 import resources_pb2 as storage
from jupyter_server.services.contents.checkpoints import AsyncCheckpoints
from tornado.web import HTTPError

from cs3collab.cs3 import InvalidArgument, NotFound, Session
from cs3collab.jupyter.contents import CS3ContentsManager
from cs3collab.jupyter import ocm_versions
from cs3collab.jupyter.errors import cs3_errors
from cs3collab.jupyter.ocm_remote import OCMTarget, ocm_target

__all__ = ["CS3Checkpoints", "checkpoint_id", "version_key"]


def checkpoint_id(key: str) -> str:
    """The checkpoint id of a CS3 version key (unpadded base64url: route-safe)."""
    return base64.urlsafe_b64encode(key.encode()).decode("ascii").rstrip("=")


def version_key(cid: str) -> str:
    """Inverse of :func:`checkpoint_id`."""
    try:
        return base64.urlsafe_b64decode(cid + "=" * (-len(cid) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument(f"not a checkpoint id of this server: {cid!r}", operation="checkpoint") from None


CURRENT = "current"
"""Checkpoint id of a file's current content while it has no version yet."""


def _current(info: storage.ResourceInfo) -> dict:
    return {"id": CURRENT, "last_modified": datetime.fromtimestamp(info.mtime.seconds, tz=timezone.utc)}


def _model(version: storage.FileVersion) -> dict:
    return {
        "id": checkpoint_id(version.key),
        "last_modified": datetime.fromtimestamp(version.mtime, tz=timezone.utc),
    }


def _remote_models(versions: list[dict]) -> list[dict]:
    """Checkpoints from the sharing site's versions listing (newest first; the
    current content stands for itself only when there is no version yet)."""
    older = [v for v in versions if not v.get("current")]
    chosen = older or versions[:1]
    return [
        {"id": CURRENT if v.get("current") else checkpoint_id(str(v["key"])),
         "last_modified": datetime.fromtimestamp(int(v.get("time") or 0), tz=timezone.utc)}
        for v in chosen
    ]


class CS3Checkpoints(AsyncCheckpoints):
    """Checkpoints as CS3 versions; the parent is the :class:`CS3ContentsManager`."""

    @property
    def _cm(self) -> CS3ContentsManager:
        cm = self.parent
        if not isinstance(cm, CS3ContentsManager):
            raise TypeError("CS3Checkpoints needs a CS3ContentsManager as parent")
        return cm

    async def _file_ref(self, session: Session, path: str):
        """The CS3 reference of ``path``, or the :class:`OCMTarget` of a file shared from another site."""
        place = await self._cm._locate(session, path)
        if place.kind == "virtual":
            raise NotFound(f"{path!r} is a virtual folder", operation="checkpoints", target=path)
        if place.kind == "ocm":
            if ocm_target(place.entry.ocm) is None or (place.entry.is_dir and not place.below_entry):
                raise place.entry.unreachable(path)
            return await self._cm._ocm_target(session, place)  # inside a shared folder: with its path
        return place.ref

    async def list_checkpoints(self, path):
        """The file's versions, newest first; none for a folder."""
        path = path.strip("/")
        with cs3_errors("Cannot list checkpoints of", path):
            session = await self._cm._session()
            ref = await self._file_ref(session, path)
            if isinstance(ref, OCMTarget):
                return _remote_models(await ocm_versions.list_versions(ref))
            info = await session.files.stat(ref)
            if info.type != storage.RESOURCE_TYPE_FILE:
                return []
            versions = await session.versions.list(ref)
            return [_model(v) for v in versions] if versions else [_current(info)]

    async def create_checkpoint(self, contents_mgr, path):
        """The newest version; for a file without any, keep its content as one (see module doc)."""
        path = path.strip("/")
        with cs3_errors("Cannot create a checkpoint of", path):
            session = await self._cm._session()
            ref = await self._file_ref(session, path)
            if isinstance(ref, OCMTarget):
                return _remote_models(await ocm_versions.list_versions(ref, limit=2))[0]
            versions = await session.versions.list(ref)
            if versions:
                return _model(versions[0])
            info = await session.files.stat(ref)
            if info.type != storage.RESOURCE_TYPE_FILE:
                raise InvalidArgument(f"{path!r} is not a file", operation="checkpoint", target=path)
            return _current(info)

    async def restore_checkpoint(self, contents_mgr, checkpoint_id, path):
        """RestoreFileVersion: the version becomes the content."""
        path = path.strip("/")
        with cs3_errors("Cannot restore a checkpoint of", path):
            if checkpoint_id == CURRENT:
                return  # the current content is what the file holds already
            session = await self._cm._session()
            ref = await self._file_ref(session, path)
            if isinstance(ref, OCMTarget):
                await ocm_versions.restore_version(ref, version_key(checkpoint_id))
                return
            await session.versions.restore(ref, version_key(checkpoint_id))

    async def delete_checkpoint(self, checkpoint_id, path):
        """Not possible on CS3: 405."""
        raise HTTPError(
            405,
            f"Cannot delete checkpoint {checkpoint_id} of {path.strip('/')!r}: checkpoints are CS3 versions, "
            "which cannot be deleted (the site's retention policy expires them)",
        )

    async def rename_checkpoint(self, checkpoint_id, old_path, new_path):
        """Nothing to do: versions follow the resource id."""

    async def rename_all_checkpoints(self, old_path, new_path):
        """Nothing to do: versions follow the resource id."""

    async def delete_all_checkpoints(self, path):
        """Nothing to do: CS3 removes a file's versions with the file."""
