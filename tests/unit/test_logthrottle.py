"""The log throttle: one line per room and kind of failure per minute, then a count of what was left out."""

from __future__ import annotations

import logging

from cs3collab.service.logthrottle import LogThrottle


def test_repeats_within_the_interval_are_counted_and_reported_with_the_next_line(caplog):
    now = [0.0]
    throttle = LogThrottle(60.0, clock=lambda: now[0])
    log = logging.getLogger("test.throttle")
    with caplog.at_level(logging.WARNING, logger="test.throttle"):
        assert throttle.log(log, logging.WARNING, ("room-a", "poll"), "poll failed room=%s", "room-a")
        for _ in range(29):  # every 2 s for a minute
            now[0] += 2
            assert not throttle.log(log, logging.WARNING, ("room-a", "poll"), "poll failed room=%s", "room-a")
        # another room is not held back by the first
        assert throttle.log(log, logging.WARNING, ("room-b", "poll"), "poll failed room=%s", "room-b")
        now[0] = 61
        assert throttle.log(log, logging.WARNING, ("room-a", "poll"), "poll failed room=%s", "room-a")
    assert [r.getMessage() for r in caplog.records] == [
        "poll failed room=room-a",
        "poll failed room=room-b",
        "poll failed room=room-a suppressed=29",
    ]


def test_a_closed_room_is_forgotten():
    throttle = LogThrottle(60.0, clock=lambda: 0.0)
    log = logging.getLogger("test.throttle")
    assert throttle.log(log, logging.INFO, ("room-a", "save"), "x")
    throttle.forget("room-a")
    assert throttle.log(log, logging.INFO, ("room-a", "save"), "x")
