"""A slow CS3 never freezes typing.

A save request (Ctrl+S, RAW ``save``) is answered when the save is done,
but the sender's following frames are handled meanwhile: tornado handles
one frame per connection at a time, so a handler that waited for CS3 there
held back that user's typing for everyone until CS3 answered (40 s of
typing arrived at once). Here CS3 does not answer at all (its devstack is
stopped with SIGSTOP) while the user saves and types.
"""

from __future__ import annotations

import os
import signal

import pytest

from cs3collab.cs3 import CS3Client
from tests.conftest import DEMO_PASSWORDS
from tests.service.conftest import start_service
from tests.service.rtc import put_notebook, save_frame, saved_containing, sources, type_text
from tests.support.processes import devstack
from tests.support.yclient import connect, wait_for


@pytest.fixture
async def own_site(tmp_path):
    """A devstack of this test's own, which it may stop and continue."""
    async with devstack(tmp_path / "site", domain="cernbox.test") as running:
        yield running


@pytest.mark.timeout(300)  # a devstack and a service of its own, on a loaded machine
async def test_typing_flows_while_a_save_waits_for_a_hung_cs3(own_site, tmp_path):
    async with CS3Client(own_site.gateway) as cs3:
        einstein = await cs3.login("einstein", DEMO_PASSWORDS["einstein"])
        home = await einstein.get_home()
        path = await put_notebook(einstein, f"{home}/hung.ipynb", "x = 1")
        async with start_service(own_site, tmp_path / "svc") as svc:
            async with connect(svc.url, einstein.token, path) as author, connect(svc.url, einstein.token, path) as witness:
                type_text(author, 0, "0")
                await wait_for(witness.doc, lambda: sources(witness) == ["x = 10"])
                pid = own_site.running.pid
                os.kill(pid, signal.SIGSTOP)
                try:
                    await author.connection.send(save_frame(41))  # Ctrl+S while CS3 hangs
                    type_text(author, 0, " # typed while CS3 hangs")
                    # the witness sees it while CS3 still does not answer
                    await wait_for(witness.doc, lambda: sources(witness) == ["x = 10 # typed while CS3 hangs"], timeout=20)
                    assert not [m for m in author.channel.raw if m.get("type") == "save"], "answered before CS3 did"
                finally:
                    os.kill(pid, signal.SIGCONT)
                reply = await author.channel.wait_raw(lambda m: m.get("responseTo") == 41, timeout=60)
                assert reply["status"] == "success"
                assert await saved_containing(einstein, path, "# typed while CS3 hangs", timeout=30)
