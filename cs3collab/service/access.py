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

Cost: checks are batched per user. A room Stats once per distinct token
(not per participant); and the file's *owner* is not Stat'ed at all after
the first check (no share change can take an owner's access; deleting the
file is refused while the room holds its lock, and otherwise seen by the
room's outside-edit polling or the failed lock refresh): only their token's
validity is re-checked, by one WhoAmI per token per interval shared by every
room (:class:`TokenChecks`). So a user who owns the 100 files open in 100
rooms costs one call per interval, not 100.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from cs3collab.cs3 import CS3Error, NotFound, PermissionDenied, Unauthenticated
from cs3collab.service import metrics
from cs3collab.service.federation import code_flow_token_expired
from cs3collab.service.identity import resolve_access
from cs3collab.service.protocol import CloseCode, session_close_reason, step1_message
from cs3collab.service.room import Participant, Room

log = logging.getLogger("cs3collab.service.access")

TOKEN_EXPIRED = 4401
"""Close code for an expired token: the client reconnects (with a fresh token)."""


class TokenChecks:
    """Is a token still valid? One WhoAmI per token per ``interval`` seconds,
    shared by every room of the service (concurrent askers share one call).

    Args:
        interval: seconds an answer is reused (the access re-check interval).
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.calls = 0  # WhoAmI calls made, for tests and benchmarks
        self._answers: dict[str, tuple[float, BaseException | None]] = {}
        self._pending: dict[str, asyncio.Future] = {}

    async def check(self, session) -> None:
        """Return if ``session``'s token is valid; raise the CS3 error (e.g.
        Unauthenticated) the gateway gave otherwise."""
        token = session.token
        now = time.monotonic()
        answer = self._answers.get(token)
        if answer is None or now - answer[0] >= self.interval:
            pending = self._pending.get(token)
            if pending is None:
                pending = self._pending[token] = asyncio.get_running_loop().create_future()
                try:
                    self.calls += 1
                    await session.whoami()
                    error: BaseException | None = None
                except CS3Error as exc:
                    error = exc
                finally:
                    del self._pending[token]
                self._answers[token] = (time.monotonic(), error)
                pending.set_result(error)
                for stale in [t for t, (at, _) in self._answers.items() if now - at > 4 * self.interval]:
                    del self._answers[stale]  # tokens nobody uses any more
            else:
                error = await asyncio.shield(pending)
        else:
            error = answer[1]
        if error is not None:
            raise error


class AccessWatcher:
    """Re-checks the access of a room's participants.

    Args:
        room: the room.
        resource_id: its file.
        interval: seconds between checks; 0 disables the timer (joins and
            saves still check).
        tokens: the service's shared token checks (owners are checked
            through it); None: every participant is Stat'ed.
    """

    def __init__(self, room: Room, resource_id, interval: float, tokens: TokenChecks | None = None) -> None:
        self.room = room
        self.resource_id = resource_id
        self.interval = interval
        self.tokens = tokens
        self.owner: tuple[str, str] | None = None  # (idp, opaque id) of the file's owner, once seen
        self._lock = asyncio.Lock()
        # called with the user's label when a check took or changed someone's
        # access here (the room tells its other replicas: they check that user now)
        self.on_change: Callable[[str], None] | None = None

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

    def _is_owner(self, participant: Participant) -> bool:
        identity = participant.identity
        return self.owner is not None and not identity.federated \
            and self.owner == (identity.idp, identity.opaque_id)

    async def _check_token(self, group: list[Participant]) -> None:
        session = group[0].session
        try:
            if self.tokens is not None and self._is_owner(group[0]):
                await self.tokens.check(session)  # the owner: only the token can lapse
                return
            access = await resolve_access(session, self.resource_id)
            owner = access.info.owner
            if owner.opaque_id:
                self.owner = (owner.idp, owner.opaque_id)
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
                if self.on_change is not None:
                    self.on_change(participant.identity.label)
                if participant.can_edit:
                    # a new editor's tab may hold updates dropped while it was a
                    # viewer (the stock frontend writes to the document's state
                    # on sync); its next updates depend on them, so ask it for
                    # what the room misses, as on join
                    participant.connection.send(step1_message(self.room.state_vector()))

    def _disconnect(self, participant: Participant, code: int, reason: str, message: str, exc: Exception) -> None:
        if participant not in self.room.participants:
            return
        log.info("access lost, disconnecting room=%s user=%s site=%s reason=%s cs3=%s",
                 self.room.key, participant.identity.label, participant.identity.idp, reason, exc)
        self.room.leave(participant)
        metrics.revoked(reason)
        if self.on_change is not None and reason == "access_revoked":
            self.on_change(participant.identity.label)
        if code == CloseCode.SESSION:
            participant.connection.close(code, session_close_reason(reason, message))
        else:
            participant.connection.close(code, message)
