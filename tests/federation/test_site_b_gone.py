"""Site B going away leaves A's room unharmed.

marie's Jupyter server at B (her only way into the room) is SIGKILLed while
she and einstein edit. At A the room goes on: einstein keeps typing, a new
participant at A gets everything, including marie's acknowledged edit, and
A's storage saves it all.

Its own module: it kills the module's Jupyter server at B.
"""

from __future__ import annotations

import anyio

from cs3collab.cs3 import roles
from tests.federation.conftest import SHARED, room_through_lab
from tests.federation.test_restart import until_killed
from tests.service.rtc import saved_containing, sources, type_text
from tests.support.yclient import connect, wait_for


async def test_site_b_going_away_leaves_a_unharmed(fed):
    path, info, _ = await fed.share(roles.EDITOR, "p = 1", "q = 2")
    async with connect(fed.svc_a.url, fed.einstein.token, path) as einstein:
        async with until_killed(room_through_lab(fed.lab_b, f"{SHARED}/{info.name}")) as marie:
            type_text(marie, 0, "  # from B")
            await wait_for(einstein.doc, lambda: sources(einstein)[0] == "p = 1  # from B")
            fed.lab_b.running.process.kill()  # site B's Jupyter server is gone, without a goodbye
            await fed.lab_b.running.process.wait()
            with anyio.fail_after(10):
                await marie.connection.wait_closed()
        type_text(einstein, 1, "  # still here")
        async with connect(fed.svc_a.url, fed.einstein.token, path) as colleague:
            await wait_for(colleague.doc, lambda: sources(colleague) == ["p = 1  # from B", "q = 2  # still here"])
            type_text(colleague, 1, "  # and me")
            await wait_for(einstein.doc, lambda: sources(einstein)[1] == "q = 2  # still here  # and me")
        saved = await saved_containing(fed.einstein, path, "# and me", timeout=10)
    assert saved == ["p = 1  # from B", "q = 2  # still here  # and me"]
    assert fed.svc_a.running.process.returncode is None
