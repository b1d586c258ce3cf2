"""Fixtures of the bridge tests: ``jupyter server`` processes with the
cs3collab extension enabled, in front of a real collaboration service.

Imported explicitly by test_bridge.py (tests/jupyter/conftest.py belongs to
the contents tests). Each server is a real process on a free loopback port,
configured only through files a site would write: the
``zz_cs3collab.json`` the package installs (copied from the repository)
and a ``jupyter_server_config.json``.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import shutil
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import DEMO_PASSWORDS
from tests.support.processes import RunningProcess, run_process, service

REPO = Path(__file__).resolve().parents[2]
EXTENSION_CONFIG = REPO / "jupyter-config" / "jupyter_server_config.d" / "zz_cs3collab.json"
JUPYTER_READY = re.compile(r"(?P<url>http://127\.0\.0\.1:(?P<port>\d+)/)")


@dataclass
class Jupyter:
    """A running Jupyter server with the cs3collab extension."""

    url: str  # http://127.0.0.1:PORT/
    token: str  # Jupyter's own token ("" on a login-page server)
    running: RunningProcess

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http") :]

    def client(self, *, token: bool = True) -> httpx.AsyncClient:
        """An HTTP client for this server, with Jupyter's token or (``token=False``) nothing but cookies."""
        headers = {"Authorization": f"token {self.token}"} if token and self.token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30, follow_redirects=False)

    @staticmethod
    def session_path(api_path: str) -> str:
        """The session URL the frontend builds (``encodeURIComponent`` of the contents path)."""
        return f"api/collaboration/session/{quote(api_path, safe='')}"


@contextlib.asynccontextmanager
async def jupyter_with_cs3collab(
    base: Path,
    *,
    gateway: str,
    service_url: str = "",
    username: str = "",
    cs3_token: str = "",
    jupyter_token: bool = True,
    extra: dict | None = None,
) -> AsyncIterator[Jupyter]:
    """``jupyter server`` with cs3collab, as ``username`` (password from the
    demo users), as the holder of ``cs3_token`` (given as JupyterHub would, in
    ``CS3COLLAB_TOKEN``), or with neither (the login page).

    Args:
        service_url: the collaboration service; empty: the embedded one.
        jupyter_token: give the server a Jupyter token (the login-page server
            runs without one, as its default is).
        extra: more config sections, merged over the defaults.
    """
    for sub in ("config/jupyter_server_config.d", "data", "runtime", "root"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy(EXTENSION_CONFIG, base / "config" / "jupyter_server_config.d" / EXTENSION_CONFIG.name)
    token = secrets.token_hex(16) if jupyter_token else ""
    config: dict = {
        "ServerApp": {
            "ip": "127.0.0.1",
            "port": 0,
            "open_browser": False,
            "allow_root": True,  # CI containers run as root
            "root_dir": str(base / "root"),
        },
        "CS3CollabConnection": {"gateway": gateway},
        "CS3CollabExtension": {"service_url": service_url},
        "CS3ContentsManager": {"shared_cache_seconds": 0},
    }
    if token:
        config["IdentityProvider"] = {"token": token}
    if username:
        config["CS3CollabConnection"].update(username=username, password=DEMO_PASSWORDS[username])
    for section, values in (extra or {}).items():
        config.setdefault(section, {}).update(values)
    (base / "config" / "jupyter_server_config.json").write_text(json.dumps(config, indent=1))
    env = {
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_DATA_DIR": str(base / "data"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "JUPYTER_TOKEN": "",
        "CS3COLLAB_TOKEN": cs3_token,
    }
    args = [sys.executable, "-m", "jupyter_server"]
    async with run_process(args, JUPYTER_READY, env=env) as running:
        yield Jupyter(running.ready["url"], token, running)


@pytest.fixture(scope="module")
async def bridge_svc(site, tmp_path_factory):
    """The collaboration service the bridge servers forward to (a real process)."""
    async with service(
        site.gateway, tmp_path_factory.mktemp("bridge-svc"), extra=("--save-quiet=0.2", "--close-grace=1")
    ) as running:
        yield running


@pytest.fixture(scope="module")
async def bridge_einstein(site, bridge_svc, tmp_path_factory):
    """Jupyter configured with einstein's CS3 credentials, remote service."""
    async with jupyter_with_cs3collab(
        tmp_path_factory.mktemp("jp-bridge-einstein"),
        gateway=site.gateway,
        service_url=bridge_svc.url,
        username="einstein",
    ) as server:
        yield server


@pytest.fixture(scope="module")
async def hub_token(client):
    """A CS3 access token of einstein's, as JupyterHub would hand it to a server."""
    session = await client.login("einstein", DEMO_PASSWORDS["einstein"])
    return session.token


@pytest.fixture(scope="module")
async def bridge_hub(site, bridge_svc, hub_token, tmp_path_factory):
    """Jupyter given einstein's CS3 token in CS3COLLAB_TOKEN, remote service."""
    async with jupyter_with_cs3collab(
        tmp_path_factory.mktemp("jp-bridge-hub"),
        gateway=site.gateway,
        service_url=bridge_svc.url,
        cs3_token=hub_token,
    ) as server:
        yield server


@pytest.fixture(scope="module")
async def bridge_login(site, bridge_svc, tmp_path_factory):
    """Jupyter with no CS3 credentials and no Jupyter token: the login page."""
    async with jupyter_with_cs3collab(
        tmp_path_factory.mktemp("jp-bridge-login"),
        gateway=site.gateway,
        service_url=bridge_svc.url,
        jupyter_token=False,
    ) as server:
        yield server


@pytest.fixture(scope="module")
async def bridge_embedded(site, tmp_path_factory):
    """Jupyter with einstein's credentials and the collaboration service in-process."""
    base = tmp_path_factory.mktemp("jp-bridge-embedded")
    async with jupyter_with_cs3collab(
        base,
        gateway=site.gateway,
        username="einstein",
        extra={
            "CS3CollabExtension": {"embedded_state_dir": str(base / "service")},
            "CollabService": {"save_quiet": 0.2, "close_grace": 1.0},
        },
    ) as server:
        yield server
