"""An idle room releases its documents and rebuilds them on the next edit (issue 14, point 3).

A service releasing rooms after 1 s without a change (``--idle-release=1``)
serves a 600-cell notebook with outputs (a ~2.5 MB Y state) to two tabs. What users and operators notice: the
room says it released (log line, ``cs3collab_rooms_released`` on /metrics)
and the service's RSS drops by what its two documents cost (at least
1.5x the encoded state); a tab joining
while it is released gets the whole notebook; a tab moving its cursor (as
before a first keystroke) makes the room rebuild; typing after the release is
relayed to the other tab and saved, and a fresh tab then shows exactly what
the typing tabs show; the room releases again once idle; a keystroke with no
cursor move first is relayed too (the room rebuilds the checking document
before it, the live one after it), and the room releases again.
"""

from __future__ import annotations

import re

import httpx
import nbformat
from nbformat import v4

from tests.service.conftest import start_service
from tests.service.rtc import eventually, room_key, saved_containing, sources, type_text
from tests.support.yclient import connect, send_awareness, wait_for

CELLS = 600


def big_notebook() -> bytes:
    """Cells with outputs, as a worked notebook has: many small Y items, not a few long strings."""
    cells = []
    for i in range(CELLS):
        outputs = [v4.new_output("stream", name="stdout", text="\n".join(f"{i} {j} result" for j in range(40))),
                   v4.new_output("execute_result", execution_count=i,
                                 data={"text/plain": f"Out({i})", "text/html": "<td>x</td>" * 60})]
        cells.append(v4.new_code_cell(f"x_{i} = compute({i})", execution_count=i, outputs=outputs))
    return nbformat.writes(v4.new_notebook(cells=cells)).encode()


def rss_bytes(pid: int) -> int:
    """The process's anonymous resident memory (its heap: what a room costs; library code
    paged in on first use, file-backed, is not)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon in /proc/PID/status")


async def released_rooms(url: str) -> float:
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{url}/metrics")).text
    match = re.search(r"^cs3collab_rooms_released ([0-9.e+]+)$", text, re.M)
    assert match, "no cs3collab_rooms_released gauge on /metrics"
    return float(match.group(1))


async def test_idle_room_releases_and_typing_resumes(site, einstein, workdir, tmp_path):
    async with start_service(site, tmp_path / "svc", "--idle-release=1") as svc:
        running = svc.running
        path = f"{workdir}/idle-release.ipynb"
        await einstein.files.upload(path, big_notebook())
        key = await room_key(einstein, path)
        released = f"room released its document room={key} "
        rebuilt = f"room rebuilt its document room={key} "
        baseline = rss_bytes(running.pid)
        async with connect(svc.url, einstein.token, path) as alice, connect(svc.url, einstein.token, path) as bob:
            assert len(sources(alice)) == CELLS
            live = rss_bytes(running.pid)
            await running.wait_for_output(released, timeout=30)
            assert await released_rooms(svc.url) == 1
            # a tab joining the released room gets everything, and does not rebuild it
            async with connect(svc.url, einstein.token, path) as carol:
                assert sources(carol) == sources(alice)
            assert running.count(rebuilt) == 0
            # RSS gives back the two documents, at least 1.5x the encoded state (the heap
            # trim runs in a thread after the release; what the room holds besides, its
            # connections' buffers and caches, stays)
            state = len(alice.doc.get_update())

            async def gave_back():
                return live - rss_bytes(running.pid) >= 1.5 * state

            await eventually(gave_back, 10, f"RSS {live} dropping by 1.5 x {state}")
            assert await released_rooms(svc.url) == 1

            # alice comes back: clicking into a cell moves her cursor (an awareness
            # change, sent before her first key), and the room rebuilds then
            await send_awareness(alice, {"user": {"name": "Alice"}, "cursors": [{"anchor": 3}]})
            await running.wait_for_output(f"{rebuilt}why=awareness", timeout=20)
            # typing resumes: relayed, saved, one document for everyone
            type_text(alice, 3, "  # after the release")
            await wait_for(bob.doc, lambda: sources(bob)[3].endswith("  # after the release"), timeout=20)
            assert running.count(rebuilt) == 1, "the keystroke rebuilt the room again"
            type_text(bob, 4, "  # bob too")
            await wait_for(alice.doc, lambda: sources(alice)[4].endswith("  # bob too"), timeout=20)
            saved = await saved_containing(einstein, path, "# bob too", timeout=20)
            assert saved[3].endswith("  # after the release")
            async with connect(svc.url, einstein.token, path) as fresh:
                assert sources(fresh) == sources(alice) == sources(bob)
            # idle again: released again
            await running.wait_for_output(released, count=2, timeout=30)
            assert await released_rooms(svc.url) == 1
            # bob types with no cursor move first (his focus never left the cell): the room
            # rebuilds the candidate, which checks the keystroke, and the live document after it
            type_text(bob, 5, "  # no warning")
            await wait_for(alice.doc, lambda: sources(alice)[5].endswith("  # no warning"), timeout=20)
            await running.wait_for_output(f"room rebuilt its candidate document room={key} why=update", timeout=20)
            async with connect(svc.url, einstein.token, path) as fresh:
                assert sources(fresh) == sources(alice) == sources(bob)
            await running.wait_for_output(released, count=3, timeout=30)
