"""Tornado handlers for the OCM HTTP API of a devstack site.

Routes (no login, as in Reva where they are unprotected):

- ``GET /.well-known/ocm`` and the legacy ``GET /ocm-provider``: discovery.
- ``POST /ocm/shares``: Share Creation Notification from a trusted peer.
- ``POST /ocm/notifications``: SHARE_UNSHARED from the sending peer.

Errors: the HTTP status comes from the data server's one table
(``dataserver.HTTP_STATUS``: InvalidArgument 400, Unauthenticated 401,
PermissionDenied 403, NotFound 404, Unimplemented 501); the body is Reva's
``{"code", "message"}`` (internal/http/services/reqres/reqres.go, the code
named after the status) plus the spec's ``validationErrors`` on a 400.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable

import tornado.web

from . import errors
from .dataserver import http_status_for
from .ocm_inbox import OCMInbox
from .ocm_payload import discovery_document
from .ocm_service import OCMConfig

log = logging.getLogger("cs3collab.devstack.ocm")

MAX_BODY = 256 * 1024
REVA_CODES = {400: "INVALID_PARAMETER", 401: "UNAUTHENTICATED", 403: "UNTRUSTED_SERVICE",
              404: "RESOURCE_NOT_FOUND", 405: "FUNCTION_NOT_IMPLEMENTED", 409: "ALREADY_EXIST",
              501: "FUNCTION_NOT_IMPLEMENTED"}


class _OCMHandler(tornado.web.RequestHandler):
    def initialize(self, config: OCMConfig, inbox: OCMInbox) -> None:
        self.config = config
        self.inbox = inbox

    def check_xsrf_cookie(self) -> None:  # server-to-server API, no cookies
        return None

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")

    def write_json(self, status: int, doc: Any) -> None:
        self.set_status(status)
        self.finish(json.dumps(doc))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish(json.dumps({"code": REVA_CODES.get(status_code, "SERVER_ERROR"), "message": self._reason}))

    def json_body(self) -> Any:
        ctype = self.request.headers.get("Content-Type", "")
        if ctype.split(";", 1)[0].strip().lower() != "application/json":
            raise errors.InvalidArgument("Content-Type must be application/json")
        if len(self.request.body) > MAX_BODY:
            raise errors.InvalidArgument("request body too large")
        try:
            return json.loads(self.request.body or b"null")
        except (ValueError, UnicodeDecodeError):
            raise errors.InvalidArgument("malformed JSON body") from None

    async def answer(self, what: str, handle: Callable[[Any], Awaitable[dict]]) -> None:
        """Parse the body, run ``handle``, answer 201 or the error."""
        try:
            doc = await handle(self.json_body())
        except errors.DevstackError as e:
            status = http_status_for(e)
            if status >= 500:
                log.exception("ocm %s from=%s failed", what, self.request.remote_ip)
            log.info("ocm %s from=%s refused status=%d msg=%r", what, self.request.remote_ip, status, e.message)
            body = {"code": REVA_CODES.get(status, "SERVER_ERROR"), "message": e.message}
            if getattr(e, "details", None):
                body["validationErrors"] = e.details
            self.write_json(status, body)
            return
        self.write_json(201, doc)


class DiscoveryHandler(_OCMHandler):
    def get(self) -> None:
        self.write_json(200, discovery_document(self.config.endpoint, self.config.provider_name))


class SharesHandler(_OCMHandler):
    async def post(self) -> None:
        await self.answer("/shares", self.inbox.receive_share)


class NotificationsHandler(_OCMHandler):
    async def post(self) -> None:
        await self.answer("/notifications", self.inbox.receive_notification)


def ocm_http_rules(config: OCMConfig, inbox: OCMInbox) -> list[tuple]:
    """Tornado rules for the OCM HTTP API (``site.add_http_routes``)."""
    kw = {"config": config, "inbox": inbox}
    return [
        (r"/\.well-known/ocm/?", DiscoveryHandler, kw),
        (r"/ocm-provider/?", DiscoveryHandler, kw),
        (r"/ocm/shares/?", SharesHandler, kw),
        (r"/ocm/notifications/?", NotificationsHandler, kw),
    ]
