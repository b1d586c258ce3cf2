"""Fixtures of the Jupyter extension tests: contents managers in-process on
the session's devstack ``site``, and real ``jupyter server`` processes.

In-process managers are driven directly (``await cm.get(...)``); the server
processes are configured with nothing but the contents manager class and
the ``CS3CollabConnection`` of one demo user, and are driven over the REST
API with a fixed token.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from nbformat.sign import NotebookNotary

from cs3collab.jupyter.connection import CS3CollabConnection
from cs3collab.jupyter.contents import CS3ContentsManager
from tests.conftest import DEMO_PASSWORDS
from tests.support.processes import run_process

JUPYTER_READY = re.compile(r"(?P<url>http://127\.0\.0\.1:(?P<port>\d+)/)")


@pytest.fixture(scope="session")
async def contents_manager(site):
    """``cm = await contents_manager("marie")``: a CS3ContentsManager logged in
    as a demo user (one per user for the session)."""
    managers: dict[str, CS3ContentsManager] = {}

    async def _manager(username: str) -> CS3ContentsManager:
        if username not in managers:
            connection = CS3CollabConnection(
                gateway=site.gateway, username=username, password=DEMO_PASSWORDS[username]
            )
            managers[username] = CS3ContentsManager(
                connection=connection, notary=NotebookNotary(db_file=":memory:"), shared_cache_seconds=0
            )
        return managers[username]

    yield _manager
    for manager in managers.values():
        await manager.connection.close()


@pytest.fixture
async def cm_einstein(contents_manager):
    return await contents_manager("einstein")


@pytest.fixture
async def cm_marie(contents_manager):
    return await contents_manager("marie")


@pytest.fixture
async def cm_richard(contents_manager):
    return await contents_manager("richard")


@pytest.fixture
def wd(workdir) -> str:
    """The API path of ``workdir`` (a fresh folder in einstein's home)."""
    return workdir.rsplit("/", 1)[-1]


@dataclass
class JupyterServer:
    """A running ``jupyter server`` and an httpx client authenticated to it."""

    url: str
    token: str
    http: httpx.AsyncClient

    def contents(self, path: str = "") -> str:
        return "api/contents/" + path.lstrip("/")


@contextlib.asynccontextmanager
async def jupyter_server(site, username: str, base: Path):
    """``jupyter server`` as a real process, on CS3 as ``username``."""
    token = secrets.token_hex(16)
    for sub in ("config", "data", "runtime", "root"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    # The contents manager alone, as a stock server would run it: the
    # cs3collab extension (enabled when the package is installed) would swap
    # in its identity provider and start a collaboration service.
    (base / "config" / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"cs3collab.jupyter": False}}})
    )
    args = [
        sys.executable, "-m", "jupyter_server",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port=0",
        "--ServerApp.open_browser=False",
        "--allow-root",  # CI containers run as root
        f"--ServerApp.root_dir={base / 'root'}",
        f"--IdentityProvider.token={token}",
        "--ServerApp.contents_manager_class=cs3collab.jupyter.contents.CS3ContentsManager",
        f"--CS3CollabConnection.gateway={site.gateway}",
        f"--CS3CollabConnection.username={username}",
        f"--CS3CollabConnection.password={DEMO_PASSWORDS[username]}",
        "--CS3ContentsManager.shared_cache_seconds=0",
    ]
    env = {
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_DATA_DIR": str(base / "data"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    async with run_process(args, JUPYTER_READY, env=env) as running:
        url = running.ready["url"]
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"token {token}"}, timeout=30
        ) as http:
            yield JupyterServer(url, token, http)


@pytest.fixture(scope="session")
async def jp_einstein(site, tmp_path_factory):
    async with jupyter_server(site, "einstein", tmp_path_factory.mktemp("jp-einstein")) as server:
        yield server


@pytest.fixture(scope="session")
async def jp_marie(site, tmp_path_factory):
    async with jupyter_server(site, "marie", tmp_path_factory.mktemp("jp-marie")) as server:
        yield server
