"""A JupyterHub on this machine, in front of local single-user servers (the demo's and the tests').

One hub per CS3 site: users log in on the hub's page with their CS3
credentials (:class:`~cs3collab.hub.authenticator.CS3Authenticator`), and the
hub spawns each user's server as a local process
(:class:`~cs3collab.hub.spawner.LocalSpawner`, JupyterHub's
``SimpleLocalProcessSpawner`` made fork-safe): no system accounts, each user a home folder of
their own under ``BASE/users/<name>`` with Jupyter folders of their own
(config, data, runtime: no shared JupyterLab workspace, no "Jupyter news?"
question). The server is ``python -m cs3collab.jupyter.singleuser``
(JupyterHub's single-user server answering with the CS3 identity) with the
``cs3collab.jupyter`` extension on, pointed at the site's collaboration
service, and gets the user's CS3 token from the hub's auth state.

That spawner gives no isolation between users: fine for a demo on one's own
machine, never for a site (docs/deployment.md names what a site uses).

JupyterHub must know its own, its proxy's and the proxy API's ports before it
starts the proxy (configurable-http-proxy, from npm), so :func:`write_config`
picks free loopback ports by binding port 0 and releasing them just before
the hub starts; the hub's ready line then gives its public URL.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import sys
from pathlib import Path

HUB_READY = re.compile(r"JupyterHub is now running at (?P<url>http://127\.0\.0\.1:\d+)")
PROXY_ENV = "CS3COLLAB_CHP"
SOURCE_PROXY = Path(__file__).resolve().parents[2] / "tools/chp/node_modules/.bin/configurable-http-proxy"
EXTENSIONS = {"cs3collab.jupyter": True, "jupyter_server_ydoc": False, "nbdime": False}
"""As jupyter-config/jupyter_server_config.d/zz_cs3collab.json enables them where the package is installed."""


def proxy_command() -> str:
    """configurable-http-proxy: ``$CS3COLLAB_CHP``, the source tree's tools/chp (./dev installs it), or PATH's."""
    for candidate in (os.environ.get(PROXY_ENV), SOURCE_PROXY, shutil.which("configurable-http-proxy")):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise RuntimeError(
        "configurable-http-proxy (JupyterHub's proxy, from npm) is missing: ./dev installs it in tools/chp; "
        f"elsewhere `npm install -g configurable-http-proxy` or set {PROXY_ENV}")


def free_port() -> int:
    """A loopback port free right now (bound, read, released)."""
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def hub_env(base: Path) -> dict[str, str]:
    """The hub process's environment additions: its auth-state key, and gRPC's fork handlers off
    (the hub forks servers while its CS3 client's gRPC threads run; grpc.aio has no fork support)."""
    return {"JUPYTERHUB_CRYPT_KEY": crypt_key(base), "GRPC_ENABLE_FORK_SUPPORT": "0"}


def crypt_key(base: Path) -> str:
    """The hub's auth-state key (``JUPYTERHUB_CRYPT_KEY``), kept in ``base/crypt_key`` (mode 600):
    the encrypted CS3 tokens in the hub's database stay readable across restarts."""
    path = base / "crypt_key"
    if not path.exists():
        base.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
    return path.read_text().strip()


def user_jupyter_env(home: Path) -> dict[str, str]:
    """Jupyter folders of one user under ``home``, with the cs3collab extension on and no news question."""
    dirs = {name: home / ".jupyter-demo" / name for name in ("config", "data", "runtime")}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    server = {"jpserver_extensions": EXTENSIONS}
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        server["allow_root"] = True  # containers and CI machines run as root
    (dirs["config"] / "jupyter_server_config.json").write_text(json.dumps({"ServerApp": server}, indent=1))
    settings = dirs["config"] / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    return {
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
    }


def prepare_user(spawner) -> None:
    """The spawner's ``pre_spawn_hook``: the user's home and Jupyter folders, in the server's environment."""
    home = Path(spawner.home_dir)
    home.mkdir(parents=True, exist_ok=True)
    spawner.environment = {**spawner.environment, **user_jupyter_env(home)}


OIDC_CLIENT_ID = "cs3collab-hub"
"""The client the devstack's embedded issuer registers by default (``cs3collab devstack --oidc``)."""


def write_config(base: Path, *, gateway: str, service_url: str, python: str = sys.executable,
                 proxy: str | None = None, oidc_issuer: str = "", ocm_signing_key: str = "") -> Path:
    """``base/jupyterhub_config.py`` of one site's hub; its state (database, cookie secret, homes) in ``base``.

    With ``oidc_issuer`` (the URL of the devstack's embedded issuer, ``cs3collab devstack --oidc``)
    people log in at that IdP and the hub logs them in at the gateway with its token
    (``CS3Authenticator.login = "oidc"``); else with the hub's form (basic).
    ``ocm_signing_key``: the site's OCM key file, given to every user's server (OCM 1.4 signed code flow)."""
    base.mkdir(parents=True, exist_ok=True)
    settings = {
        "gateway": gateway,
        "service_url": service_url,
        "proxy": proxy or proxy_command(),
        "public": free_port(),
        "api": free_port(),
        "hub": free_port(),
        "base": str(base),
        "python": python,
        "oidc_issuer": oidc_issuer,
        "oidc_client": OIDC_CLIENT_ID,
        "ocm_signing_key": ocm_signing_key,
    }
    config = base / "jupyterhub_config.py"
    config.write_text(f"""# written by cs3collab.hub.local: one site's JupyterHub in front of local single-user servers
from cs3collab.hub.local import prepare_user

s = {settings!r}
c.JupyterHub.authenticator_class = "cs3auth"
c.CS3Authenticator.gateway = s["gateway"]
c.JupyterHub.spawner_class = "cs3collab.hub.spawner.LocalSpawner"
c.LocalSpawner.home_dir_template = s["base"] + "/users/{{username}}"
c.Spawner.pre_spawn_hook = prepare_user
c.Spawner.cmd = [s["python"], "-m", "cs3collab.jupyter.singleuser"]
c.Spawner.args = ["--CS3CollabExtension.service_url=" + s["service_url"]] + (
    ["--CS3CollabExtension.ocm_signing_key=" + s["ocm_signing_key"]] if s["ocm_signing_key"] else [])
c.Spawner.default_url = "/lab"
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.JupyterHub.bind_url = "http://127.0.0.1:%d" % s["public"]
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = s["hub"]
c.ConfigurableHTTPProxy.command = [s["proxy"]]
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:%d" % s["api"]
c.ConfigurableHTTPProxy.pid_file = s["base"] + "/proxy.pid"
c.JupyterHub.db_url = "sqlite:///" + s["base"] + "/hub.sqlite"
c.JupyterHub.cookie_secret_file = s["base"] + "/cookie_secret"
c.JupyterHub.pid_file = s["base"] + "/hub.pid"
c.JupyterHub.cleanup_servers = True
# a link to a notebook in a server that is not running starts it (after the login), no "Launch" click
c.JupyterHub.implicit_spawn_seconds = 0.5
if s["oidc_issuer"]:
    # log in at the site's IdP (authorization code + PKCE), then at the gateway with the IdP's token
    c.CS3Authenticator.login = "oidc"
    c.CS3Authenticator.client_id = s["oidc_client"]
    c.CS3Authenticator.authorize_url = s["oidc_issuer"] + "/authorize"
    c.CS3Authenticator.token_url = s["oidc_issuer"] + "/token"
    c.CS3Authenticator.userdata_url = s["oidc_issuer"] + "/userinfo"
    c.CS3Authenticator.oauth_callback_url = "http://127.0.0.1:%d/hub/oauth_callback" % s["public"]
""")
    return config


def hub_command(config: Path, python: str = sys.executable) -> list[str]:
    return [python, "-m", "jupyterhub", "-f", str(config)]
