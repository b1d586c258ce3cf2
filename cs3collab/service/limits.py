"""Connection limits: how many room WebSockets one user, and one site, may hold.

Every room WebSocket (documents and the site-wide awareness room) counts from
the moment its caller is authenticated until it closes. A user is counted by
their CS3 identity (``opaque_id@idp``, the same across tabs and Jupyter
servers); a site by the institution that vouches for the user (the user's
``idp``: the local site for local users, the partner's domain for a
federated collaborator), so that no single account nor a single partner
institution can exhaust the service. Beyond a limit the connection is
closed with 1003 and the reason ``too_many_connections`` (JupyterLab shows
the words in a dialog; the tab may be reopened once others are closed).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from cs3collab.service.identity import Identity

log = logging.getLogger("cs3collab.service.limits")

REASON = "too_many_connections"
"""The ``reason`` of the 1003 close (the labextension's CLOSE_REASONS has its words)."""


class ConnectionLimitReached(Exception):
    """A connection over the per-user or per-site limit.

    Args:
        scope: ``user`` or ``site``.
        limit: the limit that was reached.
    """

    def __init__(self, scope: str, limit: int) -> None:
        self.scope = scope
        self.limit = limit
        # short: it travels in a close reason of at most 123 bytes
        words = "of yours" if scope == "user" else "at your institution"
        super().__init__(f"Too many open tabs {words} (limit {limit})" + (": close one" if scope == "user" else ""))


@dataclass(eq=False)
class Admission:
    """A counted connection; :meth:`ConnectionLimits.release` it exactly once."""

    user: str
    site: str
    released: bool = False


class ConnectionLimits:
    """Counts room connections per user and per site.

    Args:
        per_user: connections one user may hold (0: no limit).
        per_site: connections the users of one site may hold together (0: no limit).
    """

    def __init__(self, per_user: int = 0, per_site: int = 0) -> None:
        self.per_user = per_user
        self.per_site = per_site
        self._users: Counter[str] = Counter()
        self._sites: Counter[str] = Counter()

    def admit(self, identity: Identity, room: str) -> Admission:
        """Count a new connection of ``identity``; raise ConnectionLimitReached beyond a limit."""
        for scope, counter, key, limit in (
            ("user", self._users, identity.uid, self.per_user),
            ("site", self._sites, identity.idp, self.per_site),
        ):
            if limit and counter[key] >= limit:
                log.warning(
                    "connection refused: limit reached room=%s user=%s site=%s scope=%s limit=%d",
                    room, identity.label, identity.idp, scope, limit,
                )
                raise ConnectionLimitReached(scope, limit)
        self._users[identity.uid] += 1
        self._sites[identity.idp] += 1
        return Admission(identity.uid, identity.idp)

    def release(self, admission: Admission) -> None:
        """A counted connection closed."""
        if admission.released:
            return
        admission.released = True
        for counter, key in ((self._users, admission.user), (self._sites, admission.site)):
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]

    def count(self, identity: Identity) -> tuple[int, int]:
        """Open connections of the user, and of their site."""
        return self._users[identity.uid], self._sites[identity.idp]
