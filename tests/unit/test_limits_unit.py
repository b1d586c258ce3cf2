"""ConnectionLimits on its own: counting in and out, per user and per site."""

from __future__ import annotations

import pytest

from cs3collab.service.identity import Identity
from cs3collab.service.limits import ConnectionLimitReached, ConnectionLimits


def person(name: str, idp: str) -> Identity:
    return Identity(username=name, display_name=name.title(), idp=idp, opaque_id=f"{name}-id", federated=False)


def test_limits_count_users_and_sites_and_release_once():
    limits = ConnectionLimits(per_user=2, per_site=3)
    einstein, marie, guest = person("einstein", "cern.test"), person("marie", "cern.test"), person("guest", "cesnet.test")
    first, second = limits.admit(einstein, "r"), limits.admit(einstein, "r")
    with pytest.raises(ConnectionLimitReached) as over:
        limits.admit(einstein, "r")
    assert (over.value.scope, over.value.limit) == ("user", 2)
    limits.admit(marie, "r")
    with pytest.raises(ConnectionLimitReached) as over:
        limits.admit(person("richard", "cern.test"), "r")
    assert over.value.scope == "site"
    limits.admit(guest, "r")  # another institution has its own count
    limits.release(first)
    limits.release(first)  # a second release changes nothing
    assert limits.count(einstein) == (1, 2)
    limits.admit(einstein, "r")
    limits.release(second)
    assert limits.count(einstein) == (1, 2)


def test_zero_means_no_limit():
    limits = ConnectionLimits()
    for _ in range(500):
        limits.admit(person("einstein", "cern.test"), "r")
    assert limits.count(person("einstein", "cern.test")) == (500, 500)
