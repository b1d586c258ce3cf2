"""Domain errors raised by the devstack store.

Store code raises these and never a transport code; the gRPC gateway maps
them to a CS3 ``status.code`` in one table (``gateway.STATUS_CODES``) and the
data server maps them to an HTTP status in one table
(``dataserver.HTTP_STATUS``), as Reva's drivers return ``pkg/errtypes`` and
each service translates them once.
"""

from __future__ import annotations


class DevstackError(Exception):
    """Base class: ``message`` is what the caller sees in ``status.message``."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class NotFound(DevstackError):
    """The resource does not exist, or the caller may not even stat it."""


class PermissionDenied(DevstackError):
    """The caller can stat the resource but lacks the permission needed."""


class AlreadyExists(DevstackError):
    """The target already exists (create, move, share twice, if_not_exist)."""


class InvalidArgument(DevstackError):
    """Malformed input: bad reference, bad name, unknown lock type, ..."""


class PreconditionFailed(DevstackError):
    """An etag precondition failed, a lock is held, the parent is missing."""


class Locked(DevstackError):
    """The resource is locked and the request carried no lock id."""


class Aborted(DevstackError):
    """The request carried a lock id that does not match the lock."""


class Unauthenticated(DevstackError):
    """Credentials or token missing, invalid or expired."""


class TooLarge(DevstackError):
    """The upload is larger than the configured ``max_upload_size``."""


class Unimplemented(DevstackError):
    """A call or option the devstack knowingly does not model."""


class AuthenticationFailed(Unauthenticated):
    """An auth provider could not authenticate the credentials (Reva's auth provider answers
    UNAUTHENTICATED "error authenticating user", not "wrong password"); the message says why."""
