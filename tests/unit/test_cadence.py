"""Save jitter and adaptive polling (cs3collab.service.cadence), without a clock."""

from __future__ import annotations

import statistics

from cs3collab.service.cadence import poll_interval, room_phase, save_deadline

ROOMS = [f"storage-1$space-1!{i:08x}-0000-4000-8000-000000000000" for i in range(300)]


def test_phase_is_stable_and_spread():
    phases = [room_phase(room) for room in ROOMS]
    assert phases == [room_phase(room) for room in ROOMS]
    assert all(0 <= p < 1 for p in phases)
    deciles = [sum(d / 10 <= p < (d + 1) / 10 for p in phases) for d in range(10)]
    assert min(deciles) >= 15  # 300 rooms: ~30 per tenth, none empty


def test_ceilings_spread_over_the_jitter_never_past_the_setting():
    """300 rooms typing from t=0 without a pause: their forced saves fall
    over the last 3 s of a 10 s ceiling, not all in one second."""
    deadlines = [save_deadline(room, 0.0, 100.0, quiet=1.0, ceiling=10.0) for room in ROOMS]
    assert max(deadlines) <= 10.0 and min(deadlines) > 7.0
    per_second = [sum(s <= d < s + 1 for d in deadlines) for s in range(7, 10)]
    assert max(per_second) < 0.45 * len(ROOMS)  # without jitter: 100 % in one second
    assert [save_deadline(room, 0.0, 100.0, 1.0, 10.0, jitter=0) for room in ROOMS[:5]] == [10.0] * 5


def test_quiet_period_still_saves_soon_after_the_last_edit():
    assert save_deadline(ROOMS[0], 0.0, 2.0, quiet=1.0, ceiling=10.0) == 3.0
    # a ceiling shorter than the quiet period is not shortened below it
    assert save_deadline(ROOMS[0], 0.0, 5.0, quiet=1.0, ceiling=1.0) >= 1.0 * (1 - 0.3)


def test_polls_fast_while_active_slow_when_idle():
    fast, slow, window = 2.0, 30.0, 60.0
    active = [poll_interval(room, 100.0, 90.0, fast, slow, window) for room in ROOMS]
    idle = [poll_interval(room, 1000.0, 90.0, fast, slow, window) for room in ROOMS]
    assert all(1.6 <= i <= 2.0 for i in active) and all(24.0 <= i <= 30.0 for i in idle)
    # 100 idle rooms poll ~3.7 times a second in total instead of ~55
    assert 100 / statistics.mean(idle) < 4.5 < 100 / statistics.mean(active)
    assert poll_interval(ROOMS[0], 1000.0, 0.0, fast, fast, window) <= fast  # adaptivity off


def test_idle_rooms_holding_their_lock_poll_more_slowly():
    """100 idle rooms that hold their CS3 lock poll under once a second in
    total at the defaults (120 s); without the lock they keep the idle
    interval, and while active the lock changes nothing."""
    fast, slow, locked_slow, window = 2.0, 30.0, 120.0, 60.0
    locked = [poll_interval(room, 1000.0, 90.0, fast, slow, window, locked=True, locked_slow=locked_slow)
              for room in ROOMS]
    unlocked = [poll_interval(room, 1000.0, 90.0, fast, slow, window, locked=False, locked_slow=locked_slow)
                for room in ROOMS]
    assert all(96.0 <= i <= 120.0 for i in locked) and all(24.0 <= i <= 30.0 for i in unlocked)
    assert 100 / statistics.mean(locked) < 1.0
    assert poll_interval(ROOMS[0], 100.0, 90.0, fast, slow, window, locked=True, locked_slow=locked_slow) <= fast
    # a locked interval below the idle one is not a reason to poll faster
    assert poll_interval(ROOMS[0], 1000.0, 90.0, fast, slow, window, locked=True, locked_slow=10.0) >= 24.0
