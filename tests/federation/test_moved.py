"""A share keeps working after the owner moves the file at site A.

An OCM share names the resource, not its path: einstein renames and moves the
notebook while marie (site B) is not connected, and her "Shared with me"
entry still opens the same notebook, co-edited and saved at its new place.
"""

from __future__ import annotations

from cs3collab.cs3 import roles
from tests.federation.conftest import SHARED, room_through_lab
from tests.service.rtc import eventually, file_sources, sources, type_text
from tests.support.yclient import connect, wait_for


async def test_share_follows_the_file_when_it_moves(fed):
    path, info, _share = await fed.share(roles.EDITOR, "moved = 1")
    home = path.rsplit("/", 1)[0]
    await fed.einstein.files.mkdir(f"{home}/archive-{info.id.opaque_id[:8]}")
    new_path = f"{home}/archive-{info.id.opaque_id[:8]}/renamed.ipynb"
    await fed.einstein.files.move(path, new_path)
    assert (await fed.einstein.files.stat(new_path)).id == info.id

    async with connect(fed.svc_a.url, fed.einstein.token, new_path) as einstein, \
            room_through_lab(fed.lab_b, f"{SHARED}/{info.name}") as marie:
        assert sources(marie) == ["moved = 1"]
        type_text(marie, 0, "  # still shared")
        await wait_for(einstein.doc, lambda: sources(einstein) == ["moved = 1  # still shared"])

    async def saved_edit():
        stored = await file_sources(fed.einstein, new_path)
        return stored if stored == ["moved = 1  # still shared"] else None

    await eventually(saved_edit, timeout=15, what="marie's edit saved at the file's new place")
