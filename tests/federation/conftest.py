"""Two sites for the federation tests, all real processes on loopback.

Site A (``cernbox.test``, einstein) stores the notebooks and runs service A
(``--access-recheck=0.5``); site B (``cesnet.test``, marie) runs service B
and marie's Jupyter server (``jupyter server`` with the cs3collab extension,
as the bridge tests start it). The providers file both sites read is written once all
of them listen; it also lists where A's collaboration service is, which A
then sends as the webapp ``uri`` of its OCM shares. Service A listens on a
port the fixture chose (free when chosen), so :meth:`Federation.restart_a`
can start a new service A at the same URL (what B's received shares name).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import anyio
import httpx
import nbformat
import pytest
import websockets
from jupyter_ydoc import YNotebook
from nbformat import v4
from pycrdt import Doc, Provider

from cs3collab.cs3 import CS3Client, Session
from cs3collab.cs3.ocm import federated_user
from cs3collab.demo import exchange_invite
from cs3collab.devstack.ocm_peers import PeerSite, write_providers
from tests.conftest import DEMO_PASSWORDS
from tests.jupyter.conftest_bridge import jupyter_with_cs3collab
from tests.support.processes import (
    SERVICE_READY, Devstack, RunningProcess, Service, cs3collab_command, devstack, run_process, service, stable_port,
)
from tests.support.yclient import Client, WebSocketChannel

SHARED = "Shared with me"


@dataclass
class Lab:
    url: str  # http://127.0.0.1:PORT
    token: str
    running: RunningProcess | None = None

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"token {self.token}"}, timeout=30)


def marie_lab_at_b(root: Path, b: Devstack, svc_b: Service):
    """Marie's Jupyter server at site B (its state in ``root``), signing its
    code-flow exchanges with site B's OCM key as a 1.4 site's servers do."""
    return jupyter_with_cs3collab(
        root, gateway=b.gateway, service_url=svc_b.url, username="marie",
        extra={"CS3CollabExtension": {"ocm_signing_key": str(b.data_dir / "ocm-signing-key.pem")}})


@dataclass
class Federation:
    a: Devstack
    b: Devstack
    svc_a: Service
    svc_b: Service
    lab_b: Lab  # marie's Jupyter at B
    client_a: CS3Client
    einstein: Session  # at A
    stack: contextlib.AsyncExitStack
    port_a: int  # service A's fixed port
    root: Path

    async def restart_a(self, *extra: str) -> Service:
        """SIGKILL service A, then start a new one on the same state folder and port."""
        self.svc_a.running.process.kill()
        await self.svc_a.running.process.wait()
        self.svc_a = await self.stack.enter_async_context(start_a(self.a, self.root, self.port_a, extra))
        return self.svc_a

    async def share(self, role: str, *cells: str) -> tuple[str, object, object]:
        """A fresh notebook at A shared with marie@cesnet.test; (path at A, its info, the OCM share)."""
        home = await self.einstein.get_home()
        path = f"{home}/fed-{uuid.uuid4().hex[:8]}.ipynb"
        nb = v4.new_notebook(cells=[v4.new_code_cell(c) for c in cells or ("x = 1",)])
        await self.einstein.files.upload(path, nbformat.writes(nb).encode())
        info = await self.einstein.files.stat(path)
        share = await self.einstein.ocm.create_share(info.id, federated_user("marie", "cesnet.test"), role)
        return path, info, share


def free_port() -> int:
    """A loopback port free right now, where service A can come back after a restart."""
    return stable_port()


@contextlib.asynccontextmanager
async def start_a(a: Devstack, root: Path, port: int, extra: tuple[str, ...]) -> AsyncIterator[Service]:
    """Service A on ``port`` (``tests.support.processes.service`` always asks for port 0)."""
    state_dir = root / "svc-a"
    state_dir.mkdir(parents=True, exist_ok=True)
    args = cs3collab_command("serve", f"--gateway={a.gateway}", f"--state-dir={state_dir}", f"--port={port}", *extra)
    async with run_process(args, SERVICE_READY) as running:
        yield Service(running.ready["url"], state_dir, running)


@pytest.fixture(scope="module")
def svc_a_args() -> tuple[str, ...]:
    """Service A's options (a test module may override this fixture)."""
    # shared kernels run unsandboxed here until the cs3collab-sandbox provisioner is merged (the lead switches it)
    return ("--access-recheck=0.5", "--save-quiet=0.2", "--close-grace=1")


@pytest.fixture(scope="module")
async def fed(tmp_path_factory, svc_a_args) -> AsyncIterator[Federation]:
    root = tmp_path_factory.mktemp("federation")
    providers = root / "ocm-providers.json"
    extra = ("--ocm-providers", str(providers))
    async with contextlib.AsyncExitStack() as stack:
        # site A added ListFileVersions to its OCM scope, as federated history needs (docs/federation.md)
        a = await stack.enter_async_context(devstack(
            root / "a", domain="cernbox.test", extra=(*extra, "--ocm-scope-extra", "ListFileVersions")))
        b = await stack.enter_async_context(devstack(root / "b", domain="cesnet.test", extra=extra))
        port_a = free_port()
        svc_a = await stack.enter_async_context(start_a(a, root, port_a, svc_a_args))
        svc_b = await stack.enter_async_context(service(b.gateway, root / "svc-b"))
        write_providers(providers, [PeerSite(a.domain, a.http_url, webapp_url=svc_a.url), PeerSite(b.domain, b.http_url)])
        lab = await stack.enter_async_context(marie_lab_at_b(root / "lab-marie", b, svc_b))
        client_a = await stack.enter_async_context(CS3Client(a.gateway))
        einstein = await client_a.login("einstein", DEMO_PASSWORDS["einstein"])
        # einstein@A and marie@B are each other's contacts by an OCM invitation
        client_b = await stack.enter_async_context(CS3Client(b.gateway))
        await exchange_invite(einstein, await client_b.login("marie", DEMO_PASSWORDS["marie"]), a.domain)
        yield Federation(a, b, svc_a, svc_b, Lab(lab.url.rstrip("/"), lab.token, lab.running), client_a, einstein,
                         stack, port_a, root)


async def open_through_lab(lab: Lab, api_path: str) -> dict:
    """The session PUT the stock frontend sends to marie's Jupyter server."""
    async with lab.http() as http:
        response = await http.put(f"/api/collaboration/session/{quote(api_path, safe='')}",
                                  json={"format": "json", "type": "notebook"})
    assert response.status_code == 200, response.text
    return response.json()


@contextlib.asynccontextmanager
async def room_through_lab(lab: Lab, api_path: str, doc: Doc | None = None) -> AsyncIterator[Client]:
    """marie's synced room connection, through her own Jupyter server only."""
    session = await open_through_lab(lab, api_path)
    room = f"{session['format']}:{session['type']}:{session['fileId']}"
    url = lab.url.replace("http://", "ws://") + f"/api/collaboration/room/{room}?sessionId={session['sessionId']}"
    async with websockets.connect(url, additional_headers={"Authorization": f"token {lab.token}"}, max_size=None) as ws:
        channel = WebSocketChannel(ws, room)
        doc = Doc() if doc is None else doc
        async with Provider(doc, channel) as provider:
            with anyio.fail_after(10):
                await provider.synced.wait()
            yield Client(doc, YNotebook(doc), channel, ws)
