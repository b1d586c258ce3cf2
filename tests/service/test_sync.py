"""Live sync: every client converges, late and returning clients get the whole document.

What a user notices: text typed in one tab appears in every other tab; a
tab opened later shows everything; a tab whose connection dropped comes
back without duplicated cells.
"""

from __future__ import annotations

import contextlib

from tests.service.rtc import room_key, sources, type_text
from tests.support.yclient import connect, wait_for


def shows_all(client, texts) -> bool:
    joined = "\n".join(sources(client))
    return all(text in joined for text in texts)


async def test_two_clients_converge(svc, einstein, notebook):
    path = await notebook("a = 1", "b = 2")
    async with connect(svc.url, einstein.token, path) as alice, connect(svc.url, einstein.token, path) as bob:
        assert sources(alice) == sources(bob) == ["a = 1", "b = 2"]
        type_text(alice, 0, "  # alice")
        type_text(bob, 1, "  # bob")
        for client in (alice, bob):
            await wait_for(client.doc, lambda c=client: sources(c) == ["a = 1  # alice", "b = 2  # bob"])


async def test_ten_clients_converge(svc, einstein, notebook):
    path = await notebook("x = 0")
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(connect(svc.url, einstein.token, path)) for _ in range(10)]
        texts = [f"\n# typed by client {i}" for i in range(10)]
        for client, text in zip(clients, texts):
            type_text(client, 0, text)
        for client in clients:
            await wait_for(client.doc, lambda c=client: shows_all(c, texts))
        reference = sources(clients[0])
        assert all(sources(client) == reference for client in clients)
        assert all(reference[0].count(text) == 1 for text in texts)


async def test_late_client_gets_whole_document(svc, einstein, notebook):
    path = await notebook("first", "second")
    async with connect(svc.url, einstein.token, path) as early, connect(svc.url, einstein.token, path) as witness:
        type_text(early, 0, " edited early")
        early.document.append_cell({"cell_type": "markdown", "source": "a new cell", "metadata": {}})
        await wait_for(witness.doc, lambda: len(sources(witness)) == 3 and "edited early" in sources(witness)[0])
        async with connect(svc.url, einstein.token, path) as late:
            # synced = the server's step 2 arrived: no waiting for more
            assert sources(late) == ["first edited early", "second", "a new cell"]


async def test_reconnect_with_old_doc_does_not_duplicate(svc, einstein, notebook):
    path = await notebook("one", "two", "three")
    async with connect(svc.url, einstein.token, path) as watcher:
        async with connect(svc.url, einstein.token, path) as first:
            doc = first.doc
            type_text(first, 1, " (before the drop)")
            await wait_for(watcher.doc, lambda: sources(watcher)[1] == "two (before the drop)")
        # the connection dropped; the same Doc comes back through a new provider
        async with connect(svc.url, einstein.token, path, doc=doc) as again:
            assert sources(again) == sources(watcher) == ["one", "two (before the drop)", "three"]
            type_text(again, 2, " (after)")
            await wait_for(watcher.doc, lambda: sources(watcher)[2] == "three (after)")
            assert sources(watcher) == sources(again) == ["one", "two (before the drop)", "three (after)"]


async def test_reconnect_after_room_closed_does_not_duplicate(svc, einstein, notebook):
    """The room is freed (grace period over) and rebuilt from its journal."""
    path = await notebook("alpha", "beta")
    async with connect(svc.url, einstein.token, path) as first:
        doc = first.doc
        type_text(first, 0, " edited")
        await first.channel.wait_raw(lambda m: m.get("type") == "cs3collab:saved")
    # the service log is the only sign a room was freed
    await svc.running.wait_for_output(f"room closed room={await room_key(einstein, path)} ")
    async with connect(svc.url, einstein.token, path, doc=doc) as again, connect(svc.url, einstein.token, path) as fresh:
        assert sources(again) == sources(fresh) == ["alpha edited", "beta"]
        assert len(again.document.ycells) == 2


async def test_text_file_clients_converge(svc, einstein, workdir):
    path = f"{workdir}/notes.txt"
    await einstein.files.upload(path, b"line one\n")
    async with connect(svc.url, einstein.token, path, "file") as a, connect(svc.url, einstein.token, path, "file") as b:
        assert str(b.document._ysource) == "line one\n"
        a.document._ysource.insert(len(a.document._ysource), "line two\n")
        await wait_for(b.doc, lambda: str(b.document._ysource) == "line one\nline two\n")
