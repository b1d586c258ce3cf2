"""Access, re-checked: a participant keeps only the rights CS3 still gives.

A role is decided when a participant joins (a Stat as that user), but shares
change while people work: an owner removes a share, turns an editor into a
viewer, a token expires. The :class:`AccessWatcher` of each room asks CS3
again, as each participant, on a timer (and before each save), and acts on
the answer:

* the file is no longer visible or readable (share removed): the
  participant is disconnected with close code 1003 and a reason the stock
  JupyterLab shows in a dialog ("access_revoked");
* the role changed (editor → viewer or back): it changes at once; the
  participant gets a RAW ``{"type": "cs3collab:role", ...}`` message, and a
  viewer's updates are dropped from then on; a new editor is sent a sync
  step 1, so that what its tab wrote while a viewer (and its later edits,
  which depend on it) reaches the room;
* the token expired: the participant is disconnected with code 4401, which
  the frontend answers by reconnecting; its Jupyter server reconnects with a
  fresh token, so the user sees nothing but a brief reconnect. This holds
  for a participant of another site whose OCM code-flow token expired (site
  B exchanges the code again); a federated session that cannot renew while
  its token is still valid means the share was removed or expired (1003
  ``access_revoked``);
* CS3 cannot be reached: nothing changes (a transient outage must not
  throw everyone out); the next check decides.
"""

from __future__ import annotations

import asyncio
import logging

from cs3collab.cs3 import CS3Error, NotFound, PermissionDenied, Unauthenticated
from cs3collab.service import metrics
from cs3collab.service.federation import code_flow_token_expired
from cs3collab.service.identity import resolve_access
from cs3collab.service.protocol import CloseCode, session_close_reason, step1_message
from cs3collab.service.room import Participant, Room

log = logging.getLogger("cs3collab.service.access")

TOKEN_EXPIRED = 4401
"""Close code for an expired token: the client reconnects (with a fresh token)."""


class AccessWatcher:
    """Re-checks the access of a room's participants.

    Args:
        room: the room.
        resource_id: its file.
        interval: seconds between checks; 0 disables the timer (joins and
            saves still check).
    """

    def __init__(self, room: Room, resource_id, interval: float) -> None:
        self.room = room
        self.resource_id = resource_id
        self.interval = interval
        self._lock = asyncio.Lock()

    async def run(self) -> None:
        """Check on a timer until cancelled."""
        if self.interval <= 0:
            return
        while True:
            await asyncio.sleep(self.interval)  # re-check timer
            await self.check()

    async def check(self) -> None:
        """Check every participant now (one Stat per distinct token)."""
        async with self._lock:
            by_token: dict[str, list[Participant]] = {}
            for participant in list(self.room.participants):
                by_token.setdefault(participant.session.token, []).append(participant)
            await asyncio.gather(*(self._check_token(group) for group in by_token.values()))

    async def _check_token(self, group: list[Participant]) -> None:
        session = group[0].session
        try:
            access = await resolve_access(session, self.resource_id)
        except (NotFound, PermissionDenied) as exc:
            for participant in group:
                self._disconnect(participant, CloseCode.SESSION, "access_revoked",
                                 "Your access to this notebook was removed.", exc)
            return
        except Unauthenticated as exc:
            if session.renewable and group[0].identity.federated and not code_flow_token_expired(session):
                # an OCM guest's session renews itself with the share's secret:
                # when even that fails, the share was removed or expired
                for participant in group:
                    self._disconnect(participant, CloseCode.SESSION, "access_revoked",
                                     "The OCM share of this notebook was removed or expired.", exc)
                return
            for participant in group:
                self._disconnect(participant, TOKEN_EXPIRED, "session_expired",
                                 "Your CS3 session expired; reconnecting.", exc)
            return
        except CS3Error as exc:
            log.warning("access re-check failed, nothing changed room=%s user=%s error=%s",
                        self.room.key, session.username, exc)
            return
        for participant in group:
            if participant.role != access.role and participant in self.room.participants:
                log.info("role changed room=%s user=%s from=%s to=%s",
                         self.room.key, participant.identity.label, participant.role, access.role)
                participant.role = access.role
                participant.connection.send(self.room.role_message(participant))
                if participant.can_edit:
                    # a new editor's tab may hold updates dropped while it was a
                    # viewer (the stock frontend writes to the document's state
                    # on sync); its next updates depend on them, so ask it for
                    # what the room misses, as on join
                    participant.connection.send(step1_message(self.room.doc.get_state()))

    def _disconnect(self, participant: Participant, code: int, reason: str, message: str, exc: Exception) -> None:
        if participant not in self.room.participants:
            return
        log.info("access lost, disconnecting room=%s user=%s site=%s reason=%s cs3=%s",
                 self.room.key, participant.identity.label, participant.identity.idp, reason, exc)
        self.room.leave(participant)
        metrics.revoked(reason)
        if code == CloseCode.SESSION:
            participant.connection.close(code, session_close_reason(reason, message))
        else:
            participant.connection.close(code, message)
