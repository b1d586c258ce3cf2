"""The one translation from what went wrong to what a client is told.

Service code raises typed errors (the CS3 client's, :class:`InvalidDocument`,
:class:`RequestError`); handlers never choose a status code themselves. HTTP
answers are JSON ``{"error": <code name>, "message": <words>}``; WebSocket
closes use the codes the stock frontend understands (see
:class:`~cs3collab.service.protocol.CloseCode`).
"""

from __future__ import annotations

from dataclasses import dataclass

from cs3collab.cs3 import errors as cs3_errors
from cs3collab.kernels.host import KernelError, KernelRefused
from cs3collab.service import versions
from cs3collab.service.documents import InvalidDocument
from cs3collab.service.guard import UpdateRefused
from cs3collab.service.kinds import REASON as TYPE_CONFLICT
from cs3collab.service.kinds import DocumentTypeConflict
from cs3collab.service.limits import REASON as TOO_MANY_CONNECTIONS
from cs3collab.service.limits import ConnectionLimitReached
from cs3collab.service.protocol import CloseCode, session_close_reason
from cs3collab.service.room import JournalUnavailable


class RequestError(Exception):
    """A request the service refuses on its own (bad body, unknown room...).

    Args:
        status: the HTTP status to answer with.
        message: what to tell the client.
    """

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class Refusal:
    http_status: int
    close_code: int
    reason: str  # a short machine word, sent in 1003 close reasons


_TABLE: list[tuple[type[BaseException], Refusal]] = [
    (cs3_errors.Unauthenticated, Refusal(401, CloseCode.SESSION, "unauthenticated")),
    (cs3_errors.PermissionDenied, Refusal(403, CloseCode.SESSION, "forbidden")),
    (cs3_errors.NotFound, Refusal(404, CloseCode.NOT_FOUND, "not_found")),
    (cs3_errors.Unavailable, Refusal(503, CloseCode.SERVER_ERROR, "storage_unavailable")),
    (InvalidDocument, Refusal(422, CloseCode.SESSION, "initialization_error")),
    (UpdateRefused, Refusal(422, CloseCode.SESSION, "invalid_update")),
    (JournalUnavailable, Refusal(503, CloseCode.RETRY, "journal_unavailable")),
    (cs3_errors.InvalidArgument, Refusal(400, CloseCode.BAD_REQUEST, "bad_request")),
    (cs3_errors.FailedPrecondition, Refusal(409, CloseCode.SESSION, "conflict")),
    (cs3_errors.CS3Error, Refusal(502, CloseCode.SERVER_ERROR, "storage_error")),
    (versions.InvalidVersionRequest, Refusal(400, CloseCode.BAD_REQUEST, "bad_request")),
    (versions.UnknownVersion, Refusal(404, CloseCode.NOT_FOUND, "not_found")),
    (versions.UnknownTag, Refusal(404, CloseCode.NOT_FOUND, "not_found")),
    (versions.EditorRequired, Refusal(403, CloseCode.FORBIDDEN, "forbidden")),
    (versions.HistoryNotShared, Refusal(403, CloseCode.FORBIDDEN, "forbidden")),
    (versions.RoomReadOnly, Refusal(409, CloseCode.SESSION, "read_only")),
    (DocumentTypeConflict, Refusal(409, CloseCode.SESSION, TYPE_CONFLICT)),
    (ConnectionLimitReached, Refusal(429, CloseCode.SESSION, TOO_MANY_CONNECTIONS)),
    (KernelRefused, Refusal(403, CloseCode.FORBIDDEN, "forbidden")),
    (KernelError, Refusal(503, CloseCode.SERVER_ERROR, "kernel_unavailable")),
]


def refusal_for(exc: BaseException) -> Refusal:
    """How to refuse because of ``exc`` (a 500 for anything unexpected)."""
    if isinstance(exc, RequestError):
        return Refusal(exc.status, CloseCode.BAD_REQUEST if exc.status < 500 else CloseCode.SERVER_ERROR, "bad_request")
    for cls, refusal in _TABLE:
        if isinstance(exc, cls):
            return refusal
    return Refusal(500, CloseCode.SERVER_ERROR, "internal_error")


def message_for(exc: BaseException) -> str:
    """Words for the client: the error's own message, never a traceback."""
    if isinstance(exc, RequestError):
        return exc.message
    if isinstance(exc, UpdateRefused):
        return f"Your last change was refused: {exc}"
    if isinstance(exc, JournalUnavailable):
        return "The service could not store your last change; reconnecting."
    if isinstance(exc, (cs3_errors.CS3Error, InvalidDocument, versions.VersionsError, DocumentTypeConflict,
                        ConnectionLimitReached, KernelError, KernelRefused)):
        return str(exc)
    return "internal error"


def close_for(exc: BaseException) -> tuple[int, str]:
    """The WebSocket close code and reason for ``exc``.

    Code 1003 gets the JSON reason the frontend shows in a dialog; the others
    a plain reason (they make the frontend reject the load or reconnect).
    """
    refusal = refusal_for(exc)
    if refusal.close_code == CloseCode.SESSION:
        return refusal.close_code, session_close_reason(refusal.reason, message_for(exc))
    return refusal.close_code, message_for(exc)[:120]
