"""CS3 errors in the Jupyter server's HTTP terms: the one table.

Storage code in this package raises the CS3 client's typed errors only
(:mod:`cs3collab.cs3.errors`); the contents manager's public methods, the
checkpoints and the labextension's routes translate them here, once, into a
tornado ``HTTPError`` whose message names the action, the contents path and
what CS3 said (operation, CS3 path or resource id, status).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tornado.web import HTTPError

from cs3collab.cs3 import (
    AlreadyExists,
    CS3Error,
    FailedPrecondition,
    InternalError,
    InvalidArgument,
    Locked,
    NotFound,
    PermissionDenied,
    TooLarge,
    Unauthenticated,
    Unavailable,
    Unimplemented,
)

__all__ = ["HTTP_STATUS", "cs3_errors", "http_error"]

HTTP_STATUS: tuple[tuple[type[CS3Error], int], ...] = (
    (NotFound, 404),
    (PermissionDenied, 403),
    # The CS3 session is gone (token expired, nobody logged in): jupyter_server
    # answers unauthenticated API calls with 403 too, and the frontend has no
    # special handling for 401.
    (Unauthenticated, 403),
    (Locked, 409),  # locked by another app or user
    (FailedPrecondition, 409),  # etag mismatch, lock mismatch, parent missing
    (AlreadyExists, 409),
    (InvalidArgument, 400),
    (TooLarge, 413),
    (Unavailable, 503),
    (Unimplemented, 501),
    (InternalError, 502),
)
"""CS3 error class → HTTP status, first match wins (subclasses first); any
other CS3Error is a 502 (the storage behind this server failed)."""

_REASONS = {Locked: "Locked", Unauthenticated: "CS3 session not authenticated"}


def http_error(exc: CS3Error, action: str, api_path: str) -> HTTPError:
    """The HTTPError for a CS3 error met while doing ``action`` on ``api_path``."""
    status = next((code for cls, code in HTTP_STATUS if isinstance(exc, cls)), 502)
    reason = next((text for cls, text in _REASONS.items() if isinstance(exc, cls)), None)
    return HTTPError(status, f"{action} {api_path!r}: {exc}", reason=reason)


@contextlib.contextmanager
def cs3_errors(action: str, api_path: str) -> Iterator[None]:
    """Translate CS3 errors raised inside into HTTPErrors (public methods only)."""
    try:
        yield
    except CS3Error as exc:
        raise http_error(exc, action, api_path) from None
