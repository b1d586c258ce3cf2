"""A change the journal refuses is neither shown nor kept.

Durable before visible: an update is broadcast (and so acknowledged) only
once the journal holds it. Here the journal refuses large updates
(``SQLiteJournal.max_update_size``), a stand-in for a full disk: the
sender's big paste must reach no other participant, no fresh joiner and no
save, the sender is closed with 1011 (y-websocket reconnects and sends its
state again), and the room carries on. It used to stay in the server's
document: later joiners and the next save got a change that was never
durable, and the sender was dropped by an uncaught exception.
"""

from __future__ import annotations

import pytest

from tests.service.conftest import start_service
from tests.service.rtc import saved_containing, sources, type_text
from tests.support.yclient import connect, wait_for


@pytest.fixture(scope="module")
async def svc(site, tmp_path_factory):
    """A service whose journal takes no update above 2,000 bytes."""
    async with start_service(site, tmp_path_factory.mktemp("svc"), "--SQLiteJournal.max_update_size=2000") as running:
        yield running


async def test_a_change_the_journal_refuses_reaches_nobody(svc, einstein, notebook):
    path = await notebook("kept")
    async with connect(svc.url, einstein.token, path) as witness:
        async with connect(svc.url, einstein.token, path) as paster:
            type_text(paster, 0, "X" * 5000)  # one update above the journal's limit
            await paster.connection.wait_closed()
            assert paster.connection.close_code == 1011, paster.connection.close_reason
        # the room carries on: small edits are journaled, shown and saved
        type_text(witness, 0, " + after")
        async with connect(svc.url, einstein.token, path) as fresh:
            await wait_for(fresh.doc, lambda: sources(fresh) == ["kept + after"])
            assert sources(fresh) == ["kept + after"]
        assert await saved_containing(einstein, path, " + after") == ["kept + after"]
        assert sources(witness) == ["kept + after"]
    assert svc.running.count("journal append failed, change dropped") == 1
