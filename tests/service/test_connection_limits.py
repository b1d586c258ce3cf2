"""Connection limits: one user, or one site, cannot hold the service's sockets.

What a user notices: opening more tabs than the per-user limit closes the
newest with a dialog saying why; once a tab is closed, a new one opens; the
users of one institution together are held to the per-site limit.
"""

from __future__ import annotations

import json

from tests.service.conftest import start_service
from tests.service.rtc import closed_with, raw_socket
from tests.support.yclient import connect, connect_room

GLOBAL = "JupyterLab:globalAwareness"


async def refused(url: str, token: str) -> dict:
    async with raw_socket(url, token, GLOBAL) as ws:
        code, reason = await closed_with(ws)
    assert code == 1003, (code, reason)
    return json.loads(reason)


async def test_per_user_and_per_site_limits(site, einstein, marie, richard, notebook, tmp_path):
    path = await notebook("x")
    limits = ("--CollabService.max_connections_per_user=2", "--CollabService.max_connections_per_site=3")
    async with start_service(site, tmp_path / "svc", *limits) as svc:
        async with connect(svc.url, einstein.token, path), connect_room(svc.url, einstein.token, GLOBAL):
            reason = await refused(svc.url, einstein.token)  # a third socket of einstein's
            assert reason["reason"] == "too_many_connections"
            assert reason["errorReason"] == "Too many open tabs of yours (limit 2): close one"
            async with connect_room(svc.url, marie.token, GLOBAL):  # the site's third
                reason = await refused(svc.url, richard.token)  # the site's fourth
                assert reason["reason"] == "too_many_connections"
                assert reason["errorReason"] == "Too many open tabs at your institution (limit 3)"
        # closed sockets are counted out (once the service saw them go): einstein opens two again
        await svc.running.wait_for_output("participant left", count=3)
        async with connect(svc.url, einstein.token, path) as again, connect_room(svc.url, einstein.token, GLOBAL):
            assert str(again.document.ycells[0]["source"]) == "x"
        assert svc.running.count("connection refused: limit reached") == 2
        assert svc.running.count("scope=site limit=3") == 1
