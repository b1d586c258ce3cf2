"""Received OCM shares, opened live: where their room is and how to reach it.

A notebook shared with this server's user from another site (site A) lives
at A; so does its room. The received share says where A's collaboration
service is (the webapp protocol with app name ``cs3collab``: its ``uri`` is
the service's base URL) and carries the shared secret; A knows the share by
its own id, which is the received share's ``remote_share_id`` (the OCM
``providerId``). :class:`OCMTarget` is that triple; ``cs3_reference`` of the
contents manager returns one for an OCM entry, and the bridge and the
contents manager use it to talk to A's service with
``Authorization: OCM <share id>:<secret>`` (never this site's CS3 token).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import httpx
from cs3.sharing.ocm.v1beta1 import resources_pb2 as ocm

from cs3collab.cs3 import CS3Error, NotFound, PermissionDenied, Unauthenticated, Unavailable
from cs3collab.cs3.ocm import WEBAPP_NAME


@dataclass(frozen=True)
class OCMTarget:
    """A file at another site, reached through its collaboration service.

    Args:
        service_url: base URL of the sharing site's collaboration service.
        share_id: the share's id at the sharing site.
        secret: the shared secret.
    """

    service_url: str
    share_id: str
    secret: str

    def __repr__(self) -> str:  # never log a secret
        return f"OCMTarget(service_url={self.service_url!r}, share_id={self.share_id!r})"

    @property
    def authorization(self) -> str:
        return f"OCM {self.share_id}:{self.secret}"

    @property
    def session_path(self) -> str:
        """The service's session path segment naming this share's file."""
        return quote(f"ocm:{self.share_id}", safe="")


def ocm_target(share: ocm.ReceivedShare) -> OCMTarget | None:
    """The target of a received share, or None when it offers no cs3collab webapp."""
    for protocol in share.protocols:
        if protocol.HasField("webapp_options"):
            app = protocol.webapp_options
            if app.app_name == WEBAPP_NAME and app.uri.startswith(("http://", "https://")) and app.shared_secret:
                return OCMTarget(app.uri.rstrip("/"), share.remote_share_id or share.id.opaque_id, app.shared_secret)
    return None


def share_writable(share: ocm.ReceivedShare) -> bool:
    """Whether the share's role lets the recipient edit (upload permission)."""
    for protocol in share.protocols:
        if protocol.HasField("webdav_options"):
            return protocol.webdav_options.permissions.permissions.initiate_file_upload
    return False


async def fetch_content(target: OCMTarget, *, timeout: float = 30.0) -> dict:
    """The current content of the share at its site (``GET .../ocm/{id}/content``).

    Raises the CS3 error matching the answer: 401 → Unauthenticated, 403 →
    PermissionDenied, 404 → NotFound (no such share, or no collaboration
    service at that uri), unreachable or 5xx → Unavailable.
    """
    url = f"{target.service_url}/api/collaboration/ocm/{quote(target.share_id, safe='')}/content"
    try:
        async with httpx.AsyncClient(timeout=timeout) as http:
            response = await http.get(url, headers={"Authorization": target.authorization})
    except httpx.HTTPError as exc:
        raise Unavailable(f"the sharing site's collaboration service is not reachable: {exc}",
                          operation="open OCM share", target=target.share_id) from exc
    if response.status_code == 200:
        return response.json()
    try:
        message = response.json().get("message", "")
    except ValueError:
        message = response.text[:200]
    error: type[CS3Error] = {401: Unauthenticated, 403: PermissionDenied, 404: NotFound}.get(
        response.status_code, Unavailable)
    raise error(f"the sharing site answered {response.status_code}: {message}",
                operation="open OCM share", target=target.share_id)
