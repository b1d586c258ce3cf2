"""Typed errors for everything a CS3 gateway or its data servers can answer.

Reva answers most gRPC calls with gRPC OK and puts the outcome in
``status.code``; its auth interceptor and an unreachable gateway answer with
a gRPC-level error instead; data transfers answer with an HTTP status. All
three are converted here, once, into one family of exceptions, so that code
above the client never looks at a CS3 or HTTP code again.

Each error names the operation, the CS3 path or resource id it was about,
the CS3 code and the message the server gave; nothing the server said is
dropped.
"""

from __future__ import annotations

import grpc
from cs3.rpc.v1beta1 import code_pb2, status_pb2

__all__ = [
    "CS3Error",
    "NotFound",
    "PermissionDenied",
    "Unauthenticated",
    "FailedPrecondition",
    "Locked",
    "AlreadyExists",
    "InvalidArgument",
    "TooLarge",
    "Unavailable",
    "Unimplemented",
    "InternalError",
    "raise_for_status",
    "error_from_grpc",
    "error_from_http",
]


class CS3Error(Exception):
    """Base of all CS3 errors.

    Args:
        message: what the server said (Reva's ``status.message``), or our words
            when the server said nothing.
        operation: the CS3 call or transfer, e.g. ``"Stat"`` or ``"upload"``.
        target: the CS3 path or resource id the call was about, if any.
        code: the CS3 code name without prefix, e.g. ``"NOT_FOUND"``.
        trace: Reva's trace id, when it sent one.
        http_status: the HTTP status of a data transfer, when this came from one.
    """

    code_name = "UNKNOWN"

    def __init__(
        self,
        message: str,
        *,
        operation: str = "",
        target: str = "",
        code: str | None = None,
        trace: str = "",
        http_status: int | None = None,
    ) -> None:
        self.message = message
        self.operation = operation
        self.target = target
        self.code = code or self.code_name
        self.trace = trace
        self.http_status = http_status
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [f"{self.operation or 'CS3'}"]
        if self.target:
            parts.append(f"on {self.target}")
        parts.append(f"failed: {self.code}")
        if self.http_status is not None:
            parts.append(f"(HTTP {self.http_status})")
        text = " ".join(parts)
        if self.message:
            text += f": {self.message}"
        if self.trace:
            text += f" [trace {self.trace}]"
        return text


class NotFound(CS3Error):
    code_name = "NOT_FOUND"


class PermissionDenied(CS3Error):
    code_name = "PERMISSION_DENIED"


class Unauthenticated(CS3Error):
    code_name = "UNAUTHENTICATED"


class FailedPrecondition(CS3Error):
    """A precondition did not hold: an etag mismatch, a lock held by someone
    else, an operation on a lock we do not hold."""

    code_name = "FAILED_PRECONDITION"


class Locked(FailedPrecondition):
    """The resource is locked and the request did not carry the lock id."""

    code_name = "LOCKED"


class AlreadyExists(CS3Error):
    code_name = "ALREADY_EXISTS"


class InvalidArgument(CS3Error):
    code_name = "INVALID_ARGUMENT"


class TooLarge(CS3Error):
    """An upload above the server's size limit (HTTP 413)."""

    code_name = "RESOURCE_EXHAUSTED"


class Unavailable(CS3Error):
    """The gateway or a data server could not be reached, or said it is down."""

    code_name = "UNAVAILABLE"


class Unimplemented(CS3Error):
    code_name = "UNIMPLEMENTED"


class InternalError(CS3Error):
    code_name = "INTERNAL"


_BY_CS3_CODE: dict[int, type[CS3Error]] = {
    code_pb2.CODE_NOT_FOUND: NotFound,
    code_pb2.CODE_PERMISSION_DENIED: PermissionDenied,
    code_pb2.CODE_UNAUTHENTICATED: Unauthenticated,
    code_pb2.CODE_FAILED_PRECONDITION: FailedPrecondition,
    code_pb2.CODE_ABORTED: FailedPrecondition,
    code_pb2.CODE_LOCKED: Locked,
    code_pb2.CODE_ALREADY_EXISTS: AlreadyExists,
    code_pb2.CODE_INVALID_ARGUMENT: InvalidArgument,
    code_pb2.CODE_OUT_OF_RANGE: InvalidArgument,
    code_pb2.CODE_RESOURCE_EXHAUSTED: TooLarge,
    code_pb2.CODE_INSUFFICIENT_STORAGE: TooLarge,
    code_pb2.CODE_UNAVAILABLE: Unavailable,
    code_pb2.CODE_DEADLINE_EXCEEDED: Unavailable,
    code_pb2.CODE_UNIMPLEMENTED: Unimplemented,
}

_BY_GRPC_CODE: dict[grpc.StatusCode, type[CS3Error]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.RESOURCE_EXHAUSTED: TooLarge,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Unavailable,
    grpc.StatusCode.UNIMPLEMENTED: Unimplemented,
}

_BY_HTTP_STATUS: dict[int, type[CS3Error]] = {
    400: InvalidArgument,
    401: Unauthenticated,
    403: PermissionDenied,
    404: NotFound,
    409: FailedPrecondition,
    412: FailedPrecondition,
    413: TooLarge,
    423: Locked,
    501: Unimplemented,
    502: Unavailable,
    503: Unavailable,
    504: Unavailable,
}


def _code_name(code: int) -> str:
    name = code_pb2.Code.Name(code) if code in code_pb2.Code.values() else f"CODE_{code}"
    return name.removeprefix("CODE_")


def raise_for_status(status: status_pb2.Status, operation: str, target: str = "") -> None:
    """Raise the typed error for a non-OK CS3 ``status``; return on OK.

    Reva sets ``status.code`` on every reply; an unset code (INVALID) is a
    broken server and becomes an InternalError rather than passing as OK.
    """
    if status.code == code_pb2.CODE_OK:
        return
    cls = _BY_CS3_CODE.get(status.code, InternalError)
    raise cls(
        status.message,
        operation=operation,
        target=target,
        code=_code_name(status.code),
        trace=status.trace,
    )


INVALID_TOKEN_DETAIL = "access token is invalid"
"""What Reva's auth interceptor says, with gRPC PERMISSION_DENIED, when a token
is forged, expired or from another site (``internal/grpc/interceptors/auth``).
A missing token gets gRPC UNAUTHENTICATED instead."""


def error_from_grpc(exc: grpc.RpcError, operation: str, target: str = "", endpoint: str = "") -> CS3Error:
    """Convert a gRPC-level failure (interceptor refusal, transport fault).

    Reva's auth interceptor refuses an invalid or expired token with gRPC
    PERMISSION_DENIED; that is an authentication failure (the caller should
    authenticate again), so it becomes ``Unauthenticated``. A scope refusal
    ("access token not authorized") stays ``PermissionDenied``.
    """
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = exc.details() if hasattr(exc, "details") else str(exc)
    cls = _BY_GRPC_CODE.get(code, InternalError)
    if code == grpc.StatusCode.PERMISSION_DENIED and INVALID_TOKEN_DETAIL in (details or ""):
        cls = Unauthenticated
    message = details or ""
    if cls is Unavailable and endpoint:
        message = f"CS3 gateway {endpoint} unreachable: {details}"
    return cls(message, operation=operation, target=target, code=code.name)


def error_from_http(status: int, body: str, operation: str, target: str = "") -> CS3Error:
    """Convert the HTTP status of a failed data transfer."""
    cls = _BY_HTTP_STATUS.get(status)
    if cls is None:
        cls = Unavailable if status >= 500 else InvalidArgument
    message = body.strip()[:500]
    return cls(message, operation=operation, target=target, http_status=status)
