"""Site A's service restarting: marie's client at B reconnects and resyncs.

Service A is killed with SIGKILL while marie (through her Jupyter server at
B) and einstein (directly on A) edit; a new service A starts on the same
state folder and port (the URL B's received share names). marie's client
reconnects through B's bridge with its old document, as the frontend does
after a dropped connection: every acknowledged edit (one the other side
saw) is in the room, without duplicates, then saved in A's storage, and
the room takes new edits from B at once.

Its own module: it kills the module's service A.
"""

from __future__ import annotations

import contextlib

import anyio
import pytest
import websockets

from cs3collab.cs3 import roles
from tests.federation.conftest import SHARED, room_through_lab
from tests.service.rtc import saved_containing, sources, type_text
from tests.support.yclient import connect, wait_for

LONG_LOCK = ("--lock-lifetime=30",)
"""A lock that outlives the test: the restarted room must not wait for it to expire."""


@pytest.fixture(scope="module")
def svc_a_args() -> tuple[str, ...]:
    return ("--save-quiet=60", "--save-ceiling=120", *LONG_LOCK)  # nothing saved before the kill


@contextlib.asynccontextmanager
async def until_killed(cm):
    """A client context whose socket may die with the service."""
    try:
        async with cm as client:
            yield client
    except* (websockets.ConnectionClosed, OSError):
        pass


async def test_service_a_restart_b_reconnects_and_resyncs(fed):
    path, info, _ = await fed.share(roles.EDITOR, "a = 1", "b = 2")
    api_path = f"{SHARED}/{info.name}"
    url_before = fed.svc_a.url
    async with until_killed(connect(fed.svc_a.url, fed.einstein.token, path)) as einstein, \
            until_killed(room_through_lab(fed.lab_b, api_path)) as marie:
        type_text(marie, 0, "  # m1")
        type_text(einstein, 1, "  # e1")
        await wait_for(einstein.doc, lambda: sources(einstein) == ["a = 1  # m1", "b = 2  # e1"])
        await wait_for(marie.doc, lambda: sources(marie) == ["a = 1  # m1", "b = 2  # e1"])
        marie_doc = marie.doc
        await fed.restart_a("--save-quiet=0.2", *LONG_LOCK)
        with anyio.fail_after(10):  # B's bridge closes marie's socket when A's goes away
            await marie.connection.wait_closed()
        assert marie.connection.close_code == 1011
    assert fed.svc_a.url == url_before
    assert b"# m1" not in await fed.einstein.files.download(path)  # only the journal had it

    # marie's tab reconnects through her own Jupyter server, with her old state: no duplicates
    async with room_through_lab(fed.lab_b, api_path, doc=marie_doc) as marie, \
            connect(fed.svc_a.url, fed.einstein.token, path) as einstein:
        assert sources(einstein) == ["a = 1  # m1", "b = 2  # e1"]
        assert sources(marie) == ["a = 1  # m1", "b = 2  # e1"]
        assert len(einstein.document.ycells) == 2
        type_text(marie, 1, "  # after restart")
        await wait_for(einstein.doc, lambda: sources(einstein)[1] == "b = 2  # e1  # after restart")
        saved = await saved_containing(fed.einstein, path, "# after restart", timeout=10)
    assert saved == ["a = 1  # m1", "b = 2  # e1  # after restart"]
