"""Cell-level diff of a notebook version against the live document, for the
labextension's history panel.

``POST /api/cs3collab/diff`` with ``{"path": <contents path>, "version":
<version key, as the versions API names it>, "current": <the notebook JSON
the browser holds now, unsaved edits included>}`` answers ``{"base": <the
version, nbformat 4 JSON>, "diff": <nbdime's diff of base → current>}``,
which nbdime's ``NotebookDiffModel(base, diff)`` renders in the browser.

The version is fetched exactly as the history panel's preview fetches it:
through :class:`~cs3collab.jupyter.versions_proxy.VersionsProxy` to the
service's versions API, as the server's CS3 user. Who may read which version,
and what the open room's notebook type is, stay decided in one place (the
service); its errors (404 for an unknown version, 403, 422 for stored content
that is not a notebook) come back with its status and words.

Parsing, validation and nbdime's diff run in a worker thread: a large
notebook never stalls the server's event loop. A body larger than
``CS3CollabExtension.max_diff_size`` is refused with 413 before it is read as
JSON; so is a version larger than that.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

import nbformat
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

from cs3collab.jupyter.versions_proxy import VersionsProxy, proxy_refusal, service_message

DIFF_ROUTE = r"/api/cs3collab/diff"


class DiffRequestError(Exception):
    """A diff request the server refuses on its own, with the HTTP status and words."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


def parse_request(body: bytes) -> tuple[str, str, nbformat.NotebookNode]:
    """``(path, version, current)`` of a request body; :class:`DiffRequestError` (400) if it is not one."""
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DiffRequestError(400, f"the request body is not JSON: {exc}") from exc
    if not isinstance(request, dict):
        raise DiffRequestError(400, 'the request body must be a JSON object {"path", "version", "current"}')
    path, version, current = request.get("path"), request.get("version"), request.get("current")
    if not isinstance(path, str) or not path.strip("/"):
        raise DiffRequestError(400, "path (the notebook's contents path) is required")
    if not isinstance(version, str) or not version:
        raise DiffRequestError(400, "version (a version key from the versions list) is required")
    if not isinstance(current, dict):
        raise DiffRequestError(400, "current must be the notebook's JSON (an object)")
    return path.strip("/"), version, as_notebook(current, "current")


def as_notebook(content: dict, what: str) -> nbformat.NotebookNode:
    """``content`` as a validated nbformat 4 notebook (sources as strings, as
    nbdime and its JS model expect them); :class:`DiffRequestError` (400) if it is not one."""
    if not isinstance(content.get("cells"), list) or "nbformat" not in content:
        raise DiffRequestError(400, f"{what} is not a notebook (no nbformat or cells)")
    try:
        notebook = nbformat.reads(json.dumps(content), as_version=4)
        nbformat.validate(notebook)
    except nbformat.ValidationError as exc:
        raise DiffRequestError(400, f"{what} is not a valid notebook: {exc.message}") from exc
    except Exception as exc:  # noqa: BLE001 - nbformat's reader raises several kinds
        raise DiffRequestError(400, f"{what} is not a valid notebook: {exc}") from exc
    return notebook


def diff_against(base_json: bytes, current: nbformat.NotebookNode) -> dict[str, Any]:
    """``{"base", "diff"}``: nbdime's diff from the version ``base_json`` (the
    service's nbformat JSON) to ``current``. CPU work: run it in a thread."""
    import nbdime  # imported here: its import is heavy and only diffs need it

    try:
        stored = json.loads(base_json)
    except ValueError as exc:
        raise DiffRequestError(422, f"the version is not JSON: {exc}") from exc
    if not isinstance(stored, dict):
        raise DiffRequestError(422, "the version is not a notebook")
    try:
        base = as_notebook(stored, "the version")
    except DiffRequestError as exc:
        raise DiffRequestError(422, exc.message) from exc
    return {"base": base, "diff": nbdime.diff_notebooks(base, current)}


class NotebookDiffer:
    """Diffs a notebook version (fetched through the versions proxy) against a live document.

    Args:
        proxy: the server's versions proxy (the history panel's way to the service).
        max_size: largest request body and largest version, in bytes.
    """

    def __init__(self, proxy: VersionsProxy, *, max_size: int) -> None:
        self.proxy = proxy
        self.max_size = max_size

    async def version_content(self, contents_manager, path: str, version: str) -> bytes:
        """The version's nbformat JSON, as the service serves it to the preview."""
        file_id = await self.proxy.file_id(contents_manager, path, "notebook")
        tail = f"{quote(file_id, safe='')}/{quote(version, safe='')}"
        try:
            response = await self.proxy.forward("GET", tail, "type=notebook", None)
        except Exception as exc:  # noqa: BLE001 - answered as JSON by APIHandler.write_error
            raise proxy_refusal(exc) from exc
        if response.status_code >= 400:
            words = service_message(response.content) or f"the collaboration service answered {response.status_code}"
            if response.status_code == 404:
                words = f"no version {version!r} of {path}: {words}"
            raise web.HTTPError(response.status_code, words)
        if len(response.content) > self.max_size:
            raise DiffRequestError(
                413, f"the version is {len(response.content)} bytes, more than the {self.max_size} a diff may compare"
            )
        return response.content

    async def parse(self, body: bytes) -> tuple[str, str, nbformat.NotebookNode]:
        """``(path, version, current)`` of a request body, checked and parsed off the loop."""
        if len(body) > self.max_size:
            raise DiffRequestError(
                413,
                f"the notebook sent is {len(body)} bytes, more than the {self.max_size} a diff may compare "
                "(CS3CollabExtension.max_diff_size)",
            )
        return await asyncio.to_thread(parse_request, body)

    async def diff(self, contents_manager, path: str, version: str, current: nbformat.NotebookNode) -> bytes:
        """The answer's JSON: ``{"base", "diff"}`` of ``version`` of ``path`` against ``current``."""
        content = await self.version_content(contents_manager, path, version)
        # DiffEntry and NotebookNode are dicts; the answer can be large: encode off the loop too
        return await asyncio.to_thread(lambda: json.dumps(diff_against(content, current)).encode())


class DiffHandler(APIHandler):
    """``POST /api/cs3collab/diff``: nbdime's diff of a version against the live notebook."""

    auth_resource = "contents"

    def initialize(self, differ: NotebookDiffer) -> None:
        super().initialize()
        self.differ = differ

    @web.authenticated
    @authorized
    async def post(self) -> None:
        user = getattr(self.current_user, "username", "?")
        path = version = "?"
        try:
            path, version, current = await self.differ.parse(self.request.body)
            answer = await self.differ.diff(self.contents_manager, path, version, current)
        except (DiffRequestError, web.HTTPError) as exc:
            status = exc.status if isinstance(exc, DiffRequestError) else exc.status_code
            reason = exc.message if isinstance(exc, DiffRequestError) else exc.log_message
            self.log.info(
                "cs3collab diff refused: user=%s path=%s version=%s status=%s reason=%s",
                user, path, version, status, reason,
            )
            if isinstance(exc, DiffRequestError):
                raise web.HTTPError(status, reason) from exc
            raise
        self.set_header("Content-Type", "application/json")
        self.finish(answer)


def diff_handlers(differ: NotebookDiffer) -> list[tuple[str, type, dict]]:
    """The route the extension installs (base_url is prepended by ExtensionApp)."""
    return [(DIFF_ROUTE, DiffHandler, {"differ": differ})]
