"""Async client for the CS3 APIs: gRPC to the gateway, HTTP to the data servers.

No Jupyter and no Yjs here: this package is the bottom layer, used by the
devstack's tests, the collaboration service and the Jupyter extension.
"""

from cs3collab.cs3.client import CS3Client, Credentials, Session
from cs3collab.cs3.errors import (
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
from cs3collab.cs3.refs import format_resource_id, parse_resource_id, to_reference

__all__ = [
    "AlreadyExists",
    "CS3Client",
    "CS3Error",
    "Credentials",
    "FailedPrecondition",
    "InternalError",
    "InvalidArgument",
    "Locked",
    "NotFound",
    "PermissionDenied",
    "Session",
    "TooLarge",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "format_resource_id",
    "parse_resource_id",
    "to_reference",
]
