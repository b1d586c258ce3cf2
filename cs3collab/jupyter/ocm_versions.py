"""The versions of a file another site shared through OCM, asked of that site.

A received OCM share's file, its room and its versions live at the sharing
site (site A). The history panel reaches them through the versions proxy
(versions_proxy.py); Jupyter's checkpoints at this site (the list JupyterLab
asks for after each save, "Revert to checkpoint") use this module: the
sharing site's collaboration service names the file's fileId (the session
request the room uses) and answers its versions REST, both with the share's
credentials (``OCMTarget.authorization_header()``: the code-flow token when the share requires it), never with this site's token. The
sharing site applies the share's role (viewer or editor) as at home.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx

from cs3collab.cs3 import CS3Error, NotFound, PermissionDenied, Unauthenticated, Unavailable
from cs3collab.jupyter.ocm_remote import OCMTarget

_ERRORS: dict[int, type[CS3Error]] = {401: Unauthenticated, 403: PermissionDenied, 404: NotFound}


async def _request(http: httpx.AsyncClient, method: str, url: str, target: OCMTarget, operation: str,
                   body: bytes | None = None) -> httpx.Response:
    headers = {"Authorization": await target.authorization_header()}
    if body is not None:
        headers["Content-Type"] = "application/json"
    try:
        response = await http.request(method, url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise Unavailable(f"the sharing site's collaboration service is not reachable: {exc}",
                          operation=operation, target=target.share_id) from exc
    if response.status_code >= 400:
        try:
            message = response.json().get("message", "")
        except ValueError:
            message = response.text[:200]
        raise _ERRORS.get(response.status_code, Unavailable)(
            f"the sharing site answered {response.status_code}: {message}", operation=operation,
            target=target.share_id)
    return response


async def _file_id(http: httpx.AsyncClient, target: OCMTarget) -> str:
    url = f"{target.service_url}/api/collaboration/session/{target.session_path}"
    body = json.dumps({"format": "json", "type": "notebook"}).encode()
    response = await _request(http, "PUT", url, target, "name OCM share file", body)
    return str(response.json()["fileId"])


async def listing(target: OCMTarget, *, limit: int = 500, timeout: float = 30.0) -> dict:
    """The versions REST's answer for the shared file at its site: ``{"versions"
    (newest first, the current content first), "total", "lock", ...}``."""
    async with httpx.AsyncClient(timeout=timeout) as http:
        file_id = await _file_id(http, target)
        url = f"{target.service_url}/api/collaboration/versions/{quote(file_id, safe='')}?limit={limit}"
        return (await _request(http, "GET", url, target, "list OCM share versions")).json()


async def list_versions(target: OCMTarget, *, limit: int = 500, timeout: float = 30.0) -> list[dict]:
    """The shared file's versions at its site, newest first (``{"key", "time", "current", ...}``)."""
    return list((await listing(target, limit=limit, timeout=timeout)).get("versions") or [])


async def restore_version(target: OCMTarget, key: str, *, timeout: float = 60.0) -> None:
    """Make version ``key`` the shared file's content at its site (an editor's right)."""
    async with httpx.AsyncClient(timeout=timeout) as http:
        file_id = await _file_id(http, target)
        url = (f"{target.service_url}/api/collaboration/versions/{quote(file_id, safe='')}/"
               f"{quote(key, safe='')}/restore")
        await _request(http, "POST", url, target, "restore OCM share version")
