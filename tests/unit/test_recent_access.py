"""A session PUT's access answer, lent to the join that follows (identity.RecentAccess).

What a user would notice if it went wrong: a tab let into a room with rights
checked long ago (a lent answer kept too long, or used twice), or, the other
way, every open paying a second CS3 Stat for nothing. The timing over real
processes, and that a revocation still applies, are in tests/service/test_access.py.
"""

from __future__ import annotations

import time

from cs3.storage.provider.v1beta1 import resources_pb2 as storage

from cs3collab.service.identity import EDITOR, VIEWER, Access, RecentAccess


def access(role: str = EDITOR) -> Access:
    return Access(role, storage.ResourceInfo(path="/home/nb.ipynb"))


def test_a_join_takes_its_own_put_answer_once():
    lent = RecentAccess(2.0)
    answer = access()
    lent.lend("token-a", "file-1", answer)
    assert lent.take("token-b", "file-1") is None  # another user's join: not theirs
    assert lent.take("token-a", "file-2") is None  # another file
    assert lent.take("token-a", "file-1") is answer
    assert lent.take("token-a", "file-1") is None  # a reconnect Stats again


def test_the_newest_answer_wins_and_old_ones_expire(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    lent = RecentAccess(2.0)
    lent.lend("token-a", "file-1", access(EDITOR))
    viewer = access(VIEWER)
    now[0] += 1.0
    lent.lend("token-a", "file-1", viewer)  # a second PUT, after the owner made them a viewer
    assert lent.take("token-a", "file-1") is viewer
    lent.lend("token-a", "file-2", access())
    now[0] += 2.5
    assert lent.take("token-a", "file-2") is None  # older than the ttl: the join Stats
    for n in range(1000):  # expired answers do not pile up
        lent.lend(f"token-{n}", "file-1", access())
        now[0] += 0.01
    assert len(lent._lent) <= 201


def test_no_lending_when_rechecks_are_off():
    lent = RecentAccess(0)
    lent.lend("token-a", "file-1", access())
    assert lent.take("token-a", "file-1") is None
