"""When a room saves and polls: costs that follow editing, not the number of rooms.

Two policies, pure functions of time and the room key, so they are unit
tested without a clock and used by the room's save and poll loops:

- **Save jitter.** Under continuous typing a room saves at the latest
  ``save_ceiling`` seconds after its first unsaved edit. Rooms whose typing
  started together (a class, a benchmark) would all hit that ceiling in the
  same second and serialize, validate and upload at once; the measured p99
  of every room then jumps (issue 14: 92-142 ms against 8.7 ms without the
  bursts). Each room's ceiling is shortened by a fixed fraction of it, taken
  from a hash of the room key (:func:`room_phase`): deadlines spread evenly
  over ``jitter`` of the ceiling, stable for a room (its saves stay evenly
  spaced) and never later than the configured ceiling.
- **Adaptive polling.** A room polls its file (a Stat, to see outside edits)
  every ``fast`` seconds while it is active -- an edit, here or outside, in
  the last ``active_window`` seconds -- and every ``slow`` seconds when idle,
  each interval also spread by the room's phase so idle rooms do not poll in
  step. An idle room costs ``1/slow`` calls per second instead of
  ``1/fast``; an outside edit to an idle room is seen within ``slow``
  seconds, then the room is active again and sees the next within ``fast``.
- **Idle rooms that hold their CS3 lock** poll every ``locked_slow``
  seconds (longer). While the lock is ours, Reva refuses an upload, a
  delete, a move or a version restore that does not present its id, so
  what such a poll can find is rare (a writer below Reva, an app that
  presents our lock id); a lost lock is told by the failed refresh, which
  wakes the poll at once, and so does the room's first edit or join after
  idleness (the catch-up poll, storage.RoomStorage.poll_loop): outside
  edits are merged before new typing piles on, and before a joiner works
  on stale content.
"""

from __future__ import annotations

import hashlib


def room_phase(room: str) -> float:
    """A number in [0, 1) fixed for ``room``, evenly spread over room keys."""
    digest = hashlib.blake2b(room.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def save_deadline(room: str, first_change: float, last_change: float, quiet: float, ceiling: float,
                  jitter: float = 0.3) -> float:
    """When to save: ``quiet`` seconds after the last change, but no later
    than the room's own ceiling after the first unsaved one, which is
    ``ceiling * (1 - jitter * phase)``. ``jitter`` in [0, 1): 0 gives every
    room the same ceiling."""
    own_ceiling = ceiling * (1.0 - jitter * room_phase(room))
    return min(last_change + quiet, first_change + max(own_ceiling, quiet))


def is_idle(now: float, last_activity: float, active_window: float) -> bool:
    """Whether a room with its last activity at ``last_activity`` is idle."""
    return now - last_activity >= active_window


def poll_interval(room: str, now: float, last_activity: float, fast: float, slow: float,
                  active_window: float, *, locked: bool = False, locked_slow: float = 0.0) -> float:
    """Seconds until the room's next poll: ``fast`` while active (activity
    within ``active_window`` seconds), else ``slow``, or ``locked_slow`` for
    a room that holds its lock (never below ``slow``); spread by up to 20 %
    by the room's phase. ``slow <= fast`` turns adaptivity off."""
    if not is_idle(now, last_activity, active_window) or slow <= fast:
        base = fast
    else:
        base = max(slow, locked_slow) if locked else slow
    return base * (0.8 + 0.2 * room_phase(room))
