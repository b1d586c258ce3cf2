"""At most one log line per room and kind of failure per interval.

A room that keeps failing the same way (a revoked share polled, a save that
nobody can make) must not fill the log: the first failure is logged at once,
repeats within ``interval`` seconds are counted, and the next line that is
let through says how many were left out (``suppressed=N``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class LogThrottle:
    """Lets one log line per key through per ``interval`` seconds.

    Args:
        interval: seconds between two lines of one key (default 60).
        clock: monotonic seconds (a parameter for unit tests).
    """

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._last: dict[tuple, float] = {}
        self._suppressed: dict[tuple, int] = {}

    def log(self, logger: logging.Logger, level: int, key: tuple, message: str, *args) -> bool:
        """Log ``message % args`` unless ``key`` logged less than ``interval`` ago; True if logged."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return False
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            message += " suppressed=%d"
            args = (*args, suppressed)
        logger.log(level, message, *args)
        return True

    def forget(self, *prefix) -> None:
        """Drop the keys that start with ``prefix`` (a room that closed)."""
        for key in [k for k in self._last if k[: len(prefix)] == prefix]:
            self._last.pop(key, None)
            self._suppressed.pop(key, None)
