"""A Reva-3.12-shaped OCM peer for conformance tests: an HTTP server on loopback.

Written from the OCM spec (1.3) and Reva's ocmd at aa6e45a (v3.12.2+11):
internal/http/services/wellknown/ocm.go (discovery with webapps and the code
flow enabled), internal/http/services/opencloudmesh/ocmd/specs.go (what a
``POST /shares`` must carry: the 1.2+ webapp form with
``must-exchange-token``, the legacy ``viewMode`` form refused),
ocmd/invites.go and ocmd/notifications.go. It is a test double of a *remote
site*, not of anything in cs3collab: it records what it received so a test
can assert the shape, and it sends what Reva 3.12 sends.

Users: one, ``alice`` (opaque id ``alice-id``) at domain ``peer.test``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web

DOMAIN = "peer.test"
USER = {"userID": "alice-id", "name": "Alice Peer", "email": "alice@peer.test"}
WEBAPP_PERMISSIONS = {"view", "read", "write", "share"}
WEBAPP_REQUIREMENTS = {"must-use-mfa", "must-exchange-token"}
WEBAPP_TARGETS = {"blank", "iframe"}


@dataclass
class PeerState:
    url: str = ""
    shares: list[dict[str, Any]] = field(default_factory=list)
    notifications: list[dict[str, Any]] = field(default_factory=list)


def discovery(url: str) -> dict[str, Any]:
    """Reva 3.12's discovery with enable_webapp and enable_code_flow."""
    protocols = {"webdav": "/remote.php/dav/ocm/", "webdav-receive": {"uri": "absolute"},
                 "webapp": {}, "webapp-receive": {"targets": ["blank"]}}
    return {
        "enabled": True, "apiVersion": "1.3.0", "endPoint": f"{url}/ocm", "provider": "reva",
        "resourceTypes": [{"name": "file", "shareTypes": ["user"], "protocols": protocols},
                          {"name": "folder", "shareTypes": ["user"], "protocols": protocols}],
        "capabilities": ["invites", "protocol-object", "invite-wayf", "exchange-token"],
        "criteria": ["must-invite"], "inviteAcceptDialog": f"{url}/open-cloud-mesh/accept-invite",
        "tokenEndPoint": f"{url}/ocm/token",
    }


def _webapp_problem(app: Any) -> str:
    """Reva ocmd ``Protocols.Validate`` for a webapp; "" when valid."""
    if not isinstance(app, dict) or not app.get("uri") or not app.get("sharedSecret"):
        return "protocol webapp missing uri or sharedSecret"
    perms, reqs, targets = app.get("permissions") or [], app.get("requirements") or [], app.get("targets") or []
    if not perms or not set(perms) <= WEBAPP_PERMISSIONS:
        return "protocol webapp has bad permissions"
    if not set(reqs) <= WEBAPP_REQUIREMENTS or "must-exchange-token" not in reqs:
        return "protocol webapp requirements must include must-exchange-token"
    if not targets or not set(targets) <= WEBAPP_TARGETS:
        return "protocol webapp missing targets"
    return ""


class _Handler(tornado.web.RequestHandler):
    def initialize(self, state: PeerState) -> None:
        self.state = state

    def check_xsrf_cookie(self) -> None:
        return None

    def answer(self, status: int, body: dict[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


class Discovery(_Handler):
    def get(self) -> None:
        self.answer(200, discovery(self.state.url))


class Shares(_Handler):
    def post(self) -> None:
        try:
            body = json.loads(self.request.body)
        except ValueError:
            return self.answer(400, {"message": "malformed body"})
        protocol = body.get("protocol") or {}
        if "webapp" in protocol:
            problem = _webapp_problem(protocol["webapp"])
            if problem:
                return self.answer(400, {"message": problem})
        if body.get("shareWith") != f"{USER['userID']}@{DOMAIN}":
            return self.answer(400, {"message": "shareWith not found"})
        self.state.shares.append(body)
        self.answer(201, {"recipientDisplayName": USER["name"]})


class Notifications(_Handler):
    def post(self) -> None:
        self.state.notifications.append(json.loads(self.request.body))
        self.answer(201, {})


class Token(_Handler):
    def post(self) -> None:  # this peer shares nothing it could exchange
        self.answer(400, {"error": "invalid_grant"})


def start_peer(state: PeerState) -> tornado.httpserver.HTTPServer:
    """Listen on a free loopback port (in the running event loop); sets ``state.url``."""
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    state.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
    kw = {"state": state}
    app = tornado.web.Application([
        (r"/\.well-known/ocm", Discovery, kw), (r"/ocm/shares", Shares, kw),
        (r"/ocm/notifications", Notifications, kw), (r"/ocm/token", Token, kw),
    ])
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    return server


def reva_share(provider_id: str, share_with: str, owner: str, secret: str, url: str) -> dict[str, Any]:
    """The NewShare body Reva 3.12 sends (ocmshareprovider ``CreateOCMShare``):
    webdav with an absolute uri, and the 1.2+ webapp form."""
    return {
        "shareWith": share_with, "name": "from-peer.ipynb", "providerId": provider_id,
        "owner": f"{owner}@{DOMAIN}", "sender": f"{owner}@{DOMAIN}", "senderDisplayName": USER["name"],
        "shareType": "user", "resourceType": "file",
        "protocol": {"name": "multi", "options": {},
                     "webdav": {"sharedSecret": secret, "permissions": ["read", "write"],
                                "uri": f"{url}/remote.php/dav/ocm/{provider_id}"},
                     "webapp": {"uri": f"{url}/external/ocm/{provider_id}", "sharedSecret": secret,
                                "permissions": ["read", "write"], "requirements": ["must-exchange-token"],
                                "targets": ["blank"], "appName": "cs3collab"}},
    }
