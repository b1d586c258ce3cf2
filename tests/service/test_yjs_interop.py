"""A real Yjs client edits a notebook together with a Python client (issue 3, point 6).

The JavaScript side is tests/js/yjs_client.mjs: yjs, y-websocket's
``WebsocketProvider`` 1.5.4 (the version the stock JupyterLab RTC frontend
bundles) and @jupyter/ydoc's ``YNotebook``, wired as @jupyter/docprovider wires
them. The Python side is pycrdt's Provider (tests/support/yclient.py). Both
join the room of one notebook in einstein's CS3 home through a real service
process and a real devstack.

What is checked, as a user would notice it: both clients see the file; the
Yjs client's presence (awareness ``user``) reaches the other, and leaves with
it; what one types, the other sees; both hold the same notebook; a Yjs client
that drops its connection, types offline and comes back with a new provider on
the same document duplicates nothing and its offline typing arrives; a save
requested the frontend's way (RAW ``save``) is answered and the file in CS3
holds every edit.

Waits are event driven: the Python client wakes on its document's changes
(``wait_for``), the Node client's view is read from the JSON lines it prints
after each change. Timeouts only bound failures.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tests.support.yclient import Session, connect, open_session, wait_for

JS_DIR = Path(__file__).parents[1] / "js"
CLIENT = JS_DIR / "yjs_client.mjs"
TIMEOUT = 15.0


NODE_USER = "einstein@cernbox.test"  # the service vouches for awareness users: the client's real one


class NodeYjsClient:
    """tests/js/yjs_client.mjs as a process: JSON commands in, JSON events out.

    ``events`` holds what it printed on stdout, ``frames`` the frames it traced
    on stderr (``{"dir": "in"|"out", "frame": ...}``), ``cells`` its latest
    view of the notebook's cells and ``notebook`` its latest full JSON.
    """

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []
        self.frames: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self.cells: list[dict[str, Any]] | None = None
        self.notebook: dict[str, Any] | None = None
        self._arrived = asyncio.Event()
        self._ended = False
        self._ids = 0

    @classmethod
    @contextlib.asynccontextmanager
    async def start(cls, url: str, session: Session, token: str, *, name: str = "node-yjs") -> AsyncIterator[NodeYjsClient]:
        node = shutil.which("node")
        if node is None or not (JS_DIR / "node_modules" / "y-websocket").is_dir():
            pytest.fail("the Node Yjs client is not installed: run ./dev test (or ./dev setup), which runs npm ci in tests/js")
        process = await asyncio.create_subprocess_exec(
            node, str(CLIENT),
            "--url", url, "--room", session.room, "--session", session.sessionId, "--token", token,
            "--name", name, "--timeout", "100", "--trace",
            cwd=JS_DIR, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        client = cls(process)
        pumps = [asyncio.ensure_future(client._pump_stdout()), asyncio.ensure_future(client._pump_stderr())]
        try:
            yield client
        finally:
            # closing stdin is the client's signal to leave; it exits by itself
            with contextlib.suppress(Exception):
                process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
            await asyncio.gather(*pumps)

    async def _pump_stdout(self) -> None:
        while line := await self.process.stdout.readline():
            text = line.decode(errors="replace").strip()
            try:
                event = json.loads(text)
            except json.JSONDecodeError:
                event = {"event": "unparsed", "text": text}
            if event.get("event") in ("content", "synced"):
                self.cells = event["cells"]
                self.notebook = event.get("notebook", self.notebook)
            self.events.append(event)
            self._wake()
        self._ended = True
        self._wake()

    async def _pump_stderr(self) -> None:
        while line := await self.process.stderr.readline():
            text = line.decode(errors="replace").rstrip()
            self.stderr.append(text)
            with contextlib.suppress(json.JSONDecodeError):
                entry = json.loads(text)
                if isinstance(entry, dict) and "dir" in entry:
                    self.frames.append(entry)
                    self._wake()

    def _wake(self) -> None:
        self._arrived.set()
        self._arrived = asyncio.Event()

    def diagnostics(self) -> str:
        events = "\n".join(json.dumps(e)[:300] for e in self.events[-15:])
        frames = "\n".join(json.dumps(f)[:200] for f in self.frames[-25:])
        other = "\n".join(line for line in self.stderr[-15:] if '"dir"' not in line)
        return f"node client events:\n{events}\nframes:\n{frames}\nstderr:\n{other}"

    async def until(self, condition: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
        """Wait until ``condition()`` is truthy, re-checking after each line the client prints."""
        try:
            with anyio.fail_after(timeout):
                while True:
                    arrived = self._arrived
                    result = condition()
                    if result:
                        return result
                    if self._ended:
                        raise AssertionError(f"the Node client exited while waiting for {what}\n{self.diagnostics()}")
                    await arrived.wait()
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{self.diagnostics()}") from None

    async def event(self, predicate: Callable[[dict], bool], what: str, start: int = 0) -> dict:
        """The first event from index ``start`` on that satisfies ``predicate``."""

        def found():
            return next((e for e in self.events[start:] if predicate(e)), None)

        return await self.until(found, what)

    async def command(self, op: str, **fields: Any) -> list[dict]:
        """Send one command and wait until it is done; returns the events printed meanwhile."""
        self._ids += 1
        command_id = f"c{self._ids}"
        start = len(self.events)
        self.process.stdin.write((json.dumps({"op": op, "id": command_id, **fields}) + "\n").encode())
        await self.process.stdin.drain()
        end = await self.event(
            lambda e: e.get("id") == command_id and e["event"] in ("done", "error"), f"the {op!r} command"
        )
        if end["event"] == "error":
            raise AssertionError(f"the Node client failed {op!r}: {end.get('message')}\n{self.diagnostics()}")
        return self.events[start : self.events.index(end)]

    async def cells_become(self, predicate: Callable[[list[dict]], bool], what: str) -> list[dict]:
        return await self.until(lambda: self.cells if self.cells is not None and predicate(self.cells) else None, what)


def cells_of(document) -> list[dict[str, Any]]:
    """The cells of a jupyter_ydoc YNotebook as the Node client reports them."""
    return [{"id": c["id"], "cell_type": c["cell_type"], "source": c["source"]} for c in document.get()["cells"]]


def comparable(cell: dict[str, Any]) -> dict[str, Any]:
    """A cell's nbformat fields (the Python schema adds the server-side ``execution_state``)."""
    cell = {key: value for key, value in cell.items() if key != "execution_state"}
    if isinstance(cell.get("source"), list):
        cell["source"] = "".join(cell["source"])
    return cell


def type_text(text, chars: str) -> None:
    """Type into a pycrdt Text one keystroke (one transaction) at a time."""
    for ch in chars:
        text.insert(len(text), ch)


async def test_yjs_websocket_client_and_pycrdt_client_converge(svc, einstein, workdir):
    path = f"{workdir}/interop.ipynb"
    notebook = new_notebook(cells=[new_code_cell("x = 1"), new_markdown_cell("# Notes")])
    await einstein.files.upload(path, nbformat.writes(notebook).encode())

    session = await open_session(svc.url, einstein.token, path)
    async with (
        connect(svc.url, einstein.token, path) as py,
        NodeYjsClient.start(svc.url, session, einstein.token, name=NODE_USER) as js,
    ):
        # Both clients see the file as it is in CS3.
        synced = await js.event(lambda e: e["event"] == "synced", "the Node client's first sync")
        assert [c["source"] for c in synced["cells"]] == ["x = 1", "# Notes"]
        assert synced["cells"] == cells_of(py.document)
        # Presence: the Python client sees the Yjs client's user, and y-websocket's
        # own awareness comes back to it too (that echo keeps its connection alive).
        await py.channel.wait_awareness(
            lambda states: any((state or {}).get("user", {}).get("username") == NODE_USER for state in states.values()),
            TIMEOUT,
        )
        echo = await js.until(
            lambda: next(
                (f for f in js.frames if f["dir"] == "in" and f.get("frame") == "awareness"
                 and any(s["user"] == NODE_USER for s in f["states"])),
                None,
            ),
            "the Node client's awareness echoed back",
        )
        node_client_id = echo["states"][0]["client"]

        # The Yjs client types into cell 0; the Python client sees it.
        await js.command("type", cell=0, at="end", text="\ny = x + 1  # typed in Node")
        await wait_for(py.doc, lambda: py.document.get_cell(0)["source"] == "x = 1\ny = x + 1  # typed in Node", TIMEOUT)

        # The Python client appends a cell and types into it; the Yjs client sees it.
        py.document.append_cell({"cell_type": "markdown", "source": "", "metadata": {}, "id": "from-python"})
        type_text(py.document.ycells[2]["source"], "typed in Python")
        await js.cells_become(
            lambda cells: len(cells) == 3 and cells[2] == {"id": "from-python", "cell_type": "markdown", "source": "typed in Python"},
            "the Python client's new cell at the Node client",
        )

        # Both hold the same notebook.
        assert js.cells == cells_of(py.document)
        await js.command("content")
        assert [comparable(c) for c in js.notebook["cells"]] == [comparable(c) for c in py.document.get()["cells"]]
        assert js.notebook["metadata"] == py.document.get()["metadata"]

        # The Yjs client drops its connection, types offline, comes back with a
        # new provider on the same Y.Doc: the others see it leave, its typing arrives
        # when it is back, nothing is duplicated.
        await js.command("disconnect")
        await py.channel.wait_awareness(lambda states: node_client_id in states and states[node_client_id] is None, TIMEOUT)
        await js.command("type", cell=1, at="end", text=" (offline)")
        assert py.document.get_cell(1)["source"] == "# Notes"
        await js.command("connect")
        await wait_for(py.doc, lambda: py.document.get_cell(1)["source"] == "# Notes (offline)", TIMEOUT)
        expected = [
            ("code", "x = 1\ny = x + 1  # typed in Node"),
            ("markdown", "# Notes (offline)"),
            ("markdown", "typed in Python"),
        ]
        assert [(c["cell_type"], c["source"]) for c in cells_of(py.document)] == expected
        await js.cells_become(lambda cells: cells == cells_of(py.document), "the same cells after the reconnect")
        assert len({c["id"] for c in js.cells}) == 3

        # A save asked the frontend's way is answered, and CS3 holds every edit.
        events = await js.command("save")
        saved = next(e for e in events if e["event"] == "saved")
        assert saved["status"] == "success", saved
        on_disk = nbformat.reads((await einstein.files.download(path)).decode(), as_version=4)
        assert [(c.cell_type, c.source) for c in on_disk.cells] == expected
        assert [c.id for c in on_disk.cells] == [c["id"] for c in js.cells]

    # Nothing the Node client saw was a refusal.
    closes = [e for e in js.events if e["event"] == "close" and e.get("code") not in (1000, 1005, None)]
    assert not closes, js.diagnostics()
    assert not [e for e in js.events if e["event"] == "error"], js.diagnostics()
