"""``cs3collab demo``: the whole stack on loopback, for one person to try.

Starts, each as a real process on ports chosen free at start:

1. a devstack CS3 site (domain ``cernbox.demo``) with the demo users, data
   kept in ``DIR/site`` so files survive a restart;
2. a sample notebook ``analysis.ipynb`` in einstein's home, and a folder
   ``higgs-analysis/`` holding ``analysis.ipynb`` and its data ``events.csv``
   (the shared-kernel story: the notebook reads the data beside it, at the
   owner's site), both shared with marie as editor and richard as viewer
   (shares accepted), if not there yet;
3. the site's collaboration service (journal in ``DIR/service``);
4. the site's JupyterHub (``cs3collab.hub.local``: CS3 login, encrypted auth
   state, configurable-http-proxy), which starts each demo user's JupyterLab
   as a local process when they log in, with their CS3 token and pointed at
   the service.

Prints the hub's URL and, per user, the login and a link to the sample
notebook, and runs until Ctrl-C, which stops everything it started (the hub
stops the servers it started).

``cs3collab demo --two-sites`` starts two institutions instead (see
docs/federation.md): site A (``cernbox.demo``: devstack, its service, its
JupyterHub, where einstein logs in) and site B (``cesnet.demo``: devstack,
its service, its own JupyterHub, where marie logs in). Both trust each
other through a providers file written once both listen, which also names A's collaboration service (on a port kept
in ``DIR/service-a.port``, so shares made by an earlier run stay reachable).
The sample notebook and the ``higgs-analysis/`` folder at A are shared through
OCM with marie@cesnet.demo (editor) and accepted by her at B; richard (viewer)
gets a share of the folder at A.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from cs3collab.cs3 import AlreadyExists, CS3Client, NotFound, Session, roles
from cs3collab.cs3.ocm import federated_user
from cs3collab.cs3.shares import ACCEPTED, user_grantee
from cs3collab.devstack.ocm_peers import PeerSite, write_providers
from cs3collab.hub import local as local_hub
from cs3collab.jupyter.ocm_remote import ocm_target

log = logging.getLogger("cs3collab.demo")

DEMO_USERS = {"einstein": "relativity", "marie": "radioactivity", "richard": "superfluidity"}
SAMPLE_NAME = "analysis.ipynb"
HIGGS_FOLDER = "higgs-analysis"
HIGGS_SEED = 125  # numpy seed of the generated events: the same data in every demo
READY_TIMEOUT = 180.0
"""Seconds a child process (devstack, service, hub) has to print its ready
line. Generous: on a busy 2-core machine a JupyterHub took over 60 s."""

DEVSTACK_READY = re.compile(r"cs3collab devstack ready: gateway=(?P<gateway>\S+) http=(?P<http>\S+)"
                            r" domain=\S+(?: oidc=(?P<oidc>\S+))?")
SERVICE_READY = re.compile(r"cs3collab service ready: url=(?P<url>\S+)")
JUPYTER_READY = re.compile(r"(?P<url>http://127\.0\.0\.1:\d+)/lab")


def add_demo_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "demo", help="start the embedded demo: CS3 site, service, JupyterHub with a JupyterLab per user")
    parser.add_argument("--dir", default=".demo", help="folder for all demo state (default: .demo)")
    parser.add_argument("--domain", default="cernbox.demo", help="the demo site's domain (default: cernbox.demo)")
    parser.add_argument("--two-sites", action="store_true",
                        help="two institutions: the notebook at site A (cernbox.demo, einstein) shared through "
                             "OCM with marie at site B (cesnet.demo), each site with its own service and JupyterHub")
    parser.add_argument("--remote-domain", default="cesnet.demo",
                        help="site B's domain with --two-sites (default: cesnet.demo)")
    parser.add_argument("--oidc", action="store_true",
                        help="log in as at a site with OIDC: each hub sends people to its site's identity provider "
                             "(the devstack's embedded issuer, --oidc), then logs them in at Reva with its token "
                             "(default: the hub's own login form, Reva's basic auth)")
    parser.set_defaults(run=run_demo)
    return parser


@dataclass
class Started:
    """A child process of the demo; ``match``: its ready line's fields, once :meth:`ready`."""

    name: str
    process: asyncio.subprocess.Process
    found: asyncio.Future
    match: dict[str, str] = field(default_factory=dict)

    async def ready(self) -> Started:
        """Wait for the ready line (READY_TIMEOUT); raise in words when it does not come."""
        try:
            self.match = await asyncio.wait_for(asyncio.shield(self.found), READY_TIMEOUT)
        except asyncio.TimeoutError:
            raise RuntimeError(f"{self.name} did not say it was ready within {READY_TIMEOUT:.0f} s; its output "
                               f"is above, each line prefixed [{self.name}]") from None
        return self


async def _spawn(stack: contextlib.AsyncExitStack, tasks: asyncio.TaskGroup,
                 *children: tuple[str, list[str], re.Pattern[str]] | tuple[str, list[str], re.Pattern[str], dict]
                 ) -> list[Started]:
    """Start ``children`` (name, argv, ready pattern[, env]) side by side,
    without waiting for them (see :func:`_ready`): on two cores both sites
    start in about half the time one after the other took, and seeding runs
    while they start. ``stack`` stops them."""
    return [await stack.enter_async_context(_child(*child[:3], tasks, *child[3:])) for child in children]


async def _ready(*children: Started) -> None:
    for child in children:  # started together: waiting in turn costs no time
        await child.ready()


async def _start(stack: contextlib.AsyncExitStack, tasks: asyncio.TaskGroup, *children) -> list[Started]:
    """:func:`_spawn`, then :func:`_ready`."""
    started = await _spawn(stack, tasks, *children)
    await _ready(*started)
    return started


async def _relay(stream: asyncio.StreamReader, name: str, ready: re.Pattern[str], found: asyncio.Future) -> None:
    """Copy a child's output to ours (prefixed) and report its ready line."""
    while line := await stream.readline():
        text = line.decode(errors="replace").rstrip()
        print(f"[{name}] {text}", file=sys.stderr, flush=True)
        match = ready.search(text)
        if match and not found.done():
            found.set_result(match.groupdict())
    if not found.done():
        found.set_exception(RuntimeError(f"{name} exited before it was ready"))


@contextlib.asynccontextmanager
async def _child(
    name: str, args: list[str], ready: re.Pattern[str], tasks: asyncio.TaskGroup, env: dict[str, str] | None = None
) -> AsyncIterator[Started]:
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    found: asyncio.Future = asyncio.get_running_loop().create_future()
    found.add_done_callback(lambda f: f.cancelled() or f.exception())  # read by ready(), maybe never
    tasks.create_task(_relay(process.stdout, name, ready, found))
    try:
        yield Started(name, process, found)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 20)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()


def sample_notebook() -> bytes:
    notebook = new_notebook(
        cells=[
            new_markdown_cell("# Detector calibration\n\nA shared analysis: edit it together, live."),
            new_code_cell(
                "import math\nenergies = [0.511, 1.022, 1.275]\n[round(math.log(e), 3) for e in energies]",
                execution_count=1,
                outputs=[new_output("execute_result", {"text/plain": "[-0.671, 0.022, 0.243]"}, execution_count=1)],
            ),
            new_markdown_cell("## Notes\n\n- marie: check the 1.275 MeV line"),
        ],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    return nbformat.writes(notebook).encode()


def higgs_events_csv(background: int = 4000, signal: int = 350) -> bytes:
    """A few thousand diphoton invariant masses in GeV: a falling background
    between 100 and 160 GeV and a bump near 125 GeV (numpy, fixed seed)."""
    import numpy as np

    rng = np.random.default_rng(HIGGS_SEED)
    falling = 100.0 + rng.exponential(scale=25.0, size=background * 2)
    falling = falling[falling < 160.0][:background]
    bump = rng.normal(loc=125.0, scale=1.8, size=signal)
    masses = rng.permutation(np.concatenate([falling, bump]))
    return ("mass_gev\n" + "".join(f"{m:.3f}\n" for m in masses)).encode()


HIGGS_CELLS = (
    ("markdown", "# The bump near 125 GeV\n\n"
                 "`events.csv` sits beside this notebook, at the owner's site. Everyone in the room runs "
                 "these cells in one shared kernel there: no copy of the data, no account needed."),
    ("code", "import numpy as np\n\n"
             "mass = np.loadtxt(\"events.csv\", delimiter=\",\", skiprows=1)\n"
             "print(f\"{len(mass)} events between {mass.min():.1f} and {mass.max():.1f} GeV\")"),
    ("code", "edges = np.arange(100, 160.5, 1.0)\n"
             "counts, _ = np.histogram(mass, bins=edges)\n"
             "centers = (edges[:-1] + edges[1:]) / 2\n"
             "window = (centers > 120) & (centers < 130)\n"
             "# fit the falling background on the sidebands, count the excess in the window\n"
             "slope, intercept = np.polyfit(centers[~window], np.log(np.maximum(counts[~window], 1)), 1)\n"
             "background = np.exp(intercept + slope * centers)\n"
             "expected = background[window].sum()\n"
             "excess = counts[window].sum() - expected\n"
             "peak = centers[window][np.argmax(counts[window] - background[window])]\n"
             "print(f\"excess of {excess:.0f} events over {expected:.0f} expected, peak near {peak:.1f} GeV, \"\n"
             "      f\"local significance about {excess / np.sqrt(expected):.1f} sigma\")"),
    ("code", "%matplotlib inline\n"
             "import matplotlib.pyplot as plt\n\n"
             "fig, ax = plt.subplots(figsize=(7, 4))\n"
             "ax.step(centers, counts, where=\"mid\", label=\"events\")\n"
             "ax.plot(centers, background, \"--\", label=\"background (sideband fit)\")\n"
             "ax.axvspan(120, 130, alpha=0.15, color=\"tab:orange\", label=\"signal window\")\n"
             "ax.set_xlabel(\"diphoton invariant mass [GeV]\")\n"
             "ax.set_ylabel(\"events / GeV\")\n"
             "ax.legend()\n"
             "plt.show()"),
    ("markdown", "## Notes\n\n- marie: try a 2 GeV binning\n- richard: follows along (viewer)"),
)


def higgs_notebook() -> bytes:
    """``higgs-analysis/analysis.ipynb``: reads ``events.csv``, counts the bump, draws it."""
    cells = [new_markdown_cell(text) if kind == "markdown" else new_code_cell(text) for kind, text in HIGGS_CELLS]
    notebook = new_notebook(
        cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    return nbformat.writes(notebook).encode()


async def seed_higgs(einstein: Session) -> str:
    """Create ``higgs-analysis/`` (notebook and data) in einstein's home once; its path."""
    folder = f"{await einstein.get_home()}/{HIGGS_FOLDER}"
    try:
        await einstein.files.mkdir(folder)
    except AlreadyExists:
        pass
    for name, content in (("events.csv", higgs_events_csv), (SAMPLE_NAME, higgs_notebook)):
        try:
            await einstein.files.upload(f"{folder}/{name}", content(), if_not_exist=True)
        except AlreadyExists:
            pass
    return folder


async def seed(gateway: str) -> str:
    """Put the sample notebook and ``higgs-analysis/`` in einstein's home and
    share them (once); returns the sample notebook's path."""
    async with CS3Client(gateway) as cs3:
        sessions: dict[str, Session] = {u: await cs3.login(u, p) for u, p in DEMO_USERS.items()}
        einstein = sessions["einstein"]
        path = f"{await einstein.get_home()}/{SAMPLE_NAME}"
        if not await einstein.files.exists(path):
            await einstein.files.upload(path, sample_notebook(), if_not_exist=True)
        folder = await seed_higgs(einstein)
        for shared in (path, folder):
            await _share_locally(sessions, shared, ("marie", "richard"))
        return path


async def _share_locally(sessions: dict[str, Session], path: str, users: tuple[str, ...]) -> None:
    """Share ``path`` of einstein with the demo ``users`` (marie editor,
    richard viewer) and accept it for them, unless done before."""
    einstein = sessions["einstein"]
    info = await einstein.files.stat(path)
    existing = {s.grantee.user_id.opaque_id for s in await einstein.shares.list(resource_id=info.id)}
    for user in users:
        role = roles.EDITOR if user == "marie" else roles.VIEWER
        grantee = sessions[user].user.id
        if grantee.opaque_id not in existing:
            share = await einstein.shares.create(path, user_grantee(grantee), role)
            await sessions[user].shares.update_received(share.id.opaque_id, state=ACCEPTED)


def jupyter_env(base: Path) -> dict[str, str]:
    """Jupyter folders of one demo user's server, under ``base``.

    Each server gets its own config, data and runtime folders, so the three
    servers never share a JupyterLab workspace (which would make marie's tab
    reopen what einstein has open, resolved against marie's home), and no
    "Jupyter news?" question covers the demo.
    """
    dirs = {name: base / name for name in ("config", "data", "runtime")}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    settings = dirs["config"] / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    return {
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),  # also JupyterLab's workspaces and user settings
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "JUPYTER_TOKEN": "",
    }


def jupyter_command(user: str, token: str, gateway: str, service_url: str, root: Path) -> list[str]:
    args = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", "--ServerApp.port=0", f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
        "--ServerApp.jpserver_extensions=cs3collab.jupyter=True",
        # as zz_cs3collab.json does where the package is installed (docs/labextension.md, "Diff")
        "--ServerApp.jpserver_extensions=nbdime=False",
        f"--CS3CollabConnection.gateway={gateway}",
        f"--CS3CollabConnection.username={user}", f"--CS3CollabConnection.password={DEMO_USERS[user]}",
        f"--CS3CollabExtension.service_url={service_url}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")  # containers and CI machines run as root
    return args


async def check_lab(url: str, token: str, name: str) -> None:
    """Fail unless the server at ``url`` serves CS3 contents (the cs3collab extension linked).

    A Jupyter server whose cs3collab extension fails to link (e.g. a
    ``CS3CollabExtension.service_url`` that is not an http(s) URL) only logs
    a warning and keeps running with Jupyter's own contents manager on its
    root folder: "Shared with me" does not exist there. Catch that at start.
    """
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(f"{url}/api/contents/{quote('Shared with me')}",
                                  params={"content": 0}, headers={"Authorization": f"token {token}"})
    if response.status_code != 200:
        raise RuntimeError(
            f"{name} does not serve CS3 contents ('Shared with me' answered {response.status_code}): its cs3collab "
            f"extension did not link; see the [{name}] 'cs3collab.jupyter | error linking extension' lines above"
        )


async def run_demo(args: argparse.Namespace) -> None:
    if getattr(args, "two_sites", False):
        await run_two_sites(args)
        return
    base = Path(args.dir).resolve()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    python = [sys.executable, "-m", "cs3collab"]
    async with asyncio.TaskGroup() as tasks, contextlib.AsyncExitStack() as stack:
        site, = await _start(stack, tasks, (
            "devstack",
            python + ["devstack", "--data", str(base / "site"), "--port", "0", "--http-port", "0", "--domain", args.domain,
                      *(["--oidc"] if getattr(args, "oidc", False) else [])],
            DEVSTACK_READY,
        ))
        gateway = site.match["gateway"]
        service, = await _spawn(stack, tasks, (
            "service", python + ["serve", f"--gateway={gateway}", f"--state-dir={base / 'service'}", "--port=0"],
            SERVICE_READY,
        ))
        sample = await seed(gateway)  # while the service starts
        await _ready(service)
        hub, = await _start(stack, tasks, _hub("hub", base / "hub", gateway, service.match["url"],
                                               site.match.get("oidc") or ""))
        hub = hub.match["url"].rstrip("/")
        print("\ncs3collab demo ready", flush=True)
        print(f"  CS3 gateway: {gateway}   collaboration service: {service.match['url']}", flush=True)
        print(f"  sample notebook: {sample} (marie: editor, richard: viewer)", flush=True)
        print(f"  shared-kernel demo: {HIGGS_FOLDER}/{SAMPLE_NAME} beside its events.csv (marie: editor, "
              f"richard: viewer)", flush=True)
        print(f"  JupyterHub of {args.domain}: {hub}/hub/login", flush=True)
        if site.match.get("oidc"):
            print(f"  login: the hub sends you to the site's sign-in page ({site.match['oidc']}); the same logins",
                  flush=True)
        for user, password in DEMO_USERS.items():
            where = SAMPLE_NAME if user == "einstein" else f"Shared with me/{SAMPLE_NAME}"
            print(f"  {user:8} log in as {user} / {password}, then {_notebook_url(hub, user, where)}", flush=True)
        print("Ctrl-C stops everything.", flush=True)
        await stop.wait()
        print("stopping the demo...", flush=True)


def free_port() -> int:
    """A loopback port free right now (bound, read, released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _kept_port(path: Path) -> int:
    """The port kept in ``path`` if still free, else a new free one (kept there)."""
    with contextlib.suppress(ValueError, OSError):
        port = int(path.read_text())
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
        return port
    port = free_port()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(str(port))
    return port


async def exchange_invite(inviter: Session, invitee: Session, inviter_domain: str) -> None:
    """Make two users of different sites each other's OCM contacts, the way
    their users would: ``inviter`` generates an invite token, ``invitee``'s
    site forwards it to ``inviter_domain`` (``POST /invite-accepted``) and
    both sites store the other user. Nothing happens when the invitee knows
    the inviter already (a demo run again on the same folder)."""
    known = {(u.id.idp, u.id.opaque_id) for u in await invitee.invites.find_accepted_users()}
    if (inviter_domain, inviter.user.id.opaque_id) in known:
        return
    token = await inviter.invites.generate(f"cs3collab demo: {invitee.username}")
    try:
        await invitee.invites.forward(token.token, inviter_domain)
    except AlreadyExists:  # the inviter's site knew the invitee already
        log.info("invite not needed: %s knows %s already", inviter.username, invitee.username)


async def seed_federated(gateway_a: str, gateway_b: str, remote_domain: str, service_a_url: str,
                         domain_a: str | None = None) -> str:
    """einstein at A (``domain_a``) and marie at B become contacts by an OCM
    invitation (once, when ``domain_a`` is given); the sample notebook in
    einstein's home at A is shared through OCM with marie at B (editor) and
    accepted by her there (once). A share of an
    earlier run whose webapp names another service URL (A's port was taken), or
    that was received in the OCM 1.1 form (no code flow),
    is replaced: removing it at A removes it at B too."""
    async with CS3Client(gateway_a) as cs3_a, CS3Client(gateway_b) as cs3_b:
        einstein = await cs3_a.login("einstein", DEMO_USERS["einstein"])
        marie = await cs3_b.login("marie", DEMO_USERS["marie"])
        if domain_a:
            await exchange_invite(einstein, marie, domain_a)
        path = f"{await einstein.get_home()}/{SAMPLE_NAME}"
        try:
            info = await einstein.files.stat(path)
        except NotFound:
            await einstein.files.upload(path, sample_notebook(), if_not_exist=True)
            info = await einstein.files.stat(path)
        folder = await einstein.files.stat(await seed_higgs(einstein))
        grantee = federated_user(marie.user.id.opaque_id, remote_domain)
        for shared in (info, folder):
            await _share_federated(einstein, marie, shared, grantee, remote_domain, service_a_url)
        richard = await cs3_a.login("richard", DEMO_USERS["richard"])
        await _share_locally({"einstein": einstein, "richard": richard}, folder.path, ("richard",))
        return path


async def _share_federated(einstein: Session, marie: Session, info, grantee, remote_domain: str,
                           service_a_url: str) -> None:
    """Share ``info`` with marie at B through OCM as editor, accepted at B
    (once; see ``seed_federated`` for stale shares)."""
    received = {r.remote_share_id: r for r in await marie.ocm.list_received()}
    share = None
    for existing in await einstein.ocm.list_shares():
        user = existing.grantee.user_id
        if existing.resource_id != info.id or (user.opaque_id, user.idp) != (grantee.opaque_id, remote_domain):
            continue
        target = ocm_target(received[existing.id.opaque_id]) if existing.id.opaque_id in received else None
        # a share received in the OCM 1.1 form (an older demo folder) is replaced too:
        # service A takes only exchanged tokens for shares with our webapp
        if share is None and target is not None and target.service_url == service_a_url \
                and target.must_exchange:
            share = existing
        else:
            await einstein.ocm.remove_share(existing.id.opaque_id)
    if share is None:
        share = await einstein.ocm.create_share(info.id, grantee, roles.EDITOR)
    for mine in await marie.ocm.list_received():
        if mine.remote_share_id == share.id.opaque_id and mine.state != ACCEPTED:
            await marie.ocm.update_received(mine.id.opaque_id, state=ACCEPTED)


def _hub(name: str, base: Path, gateway: str, service_url: str, oidc_issuer: str = "",
         ocm_signing_key: str = "") -> tuple[str, list[str], re.Pattern[str], dict[str, str]]:
    """One site's JupyterHub (cs3collab.hub.local: CS3 login, a local server
    per user), to :func:`_start`; its ready line has the ``url``. With
    ``oidc_issuer`` people log in at that IdP (``--oidc``), else on the hub's form."""
    config = local_hub.write_config(base, gateway=gateway, service_url=service_url, oidc_issuer=oidc_issuer,
                                    ocm_signing_key=ocm_signing_key)
    return name, local_hub.hub_command(config), local_hub.HUB_READY, local_hub.hub_env(base)


def _notebook_url(hub: str, user: str, where: str) -> str:
    """Where ``user`` finds ``where`` in the JupyterLab their hub starts for them (after logging in)."""
    return f"{hub}/user/{user}/lab/tree/{quote(where)}"


async def run_two_sites(args: argparse.Namespace) -> None:
    base = Path(args.dir).resolve()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    python = [sys.executable, "-m", "cs3collab"]
    domains = {"a": args.domain, "b": args.remote_domain}
    providers = base / "ocm-providers.json"
    providers.parent.mkdir(parents=True, exist_ok=True)
    async with asyncio.TaskGroup() as tasks, contextlib.AsyncExitStack() as stack:
        sites = dict(zip(("a", "b"), await _start(stack, tasks, *((
            f"devstack-{key}",
            python + ["devstack", "--data", str(base / f"site-{key}"), "--port", "0", "--http-port", "0",
                      "--domain", domains[key], "--ocm-providers", str(providers),
                      *(["--oidc"] if getattr(args, "oidc", False) else []),
                      # site A lets OCM guests list versions (federated history; docs/federation.md)
                      *(["--ocm-scope-extra", "ListFileVersions"] if key == "a" else [])],
            DEVSTACK_READY,
        ) for key in ("a", "b")))))
        gateway = {key: site.match["gateway"] for key, site in sites.items()}
        port_a = _kept_port(base / "service-a.port")
        service_a_url = f"http://127.0.0.1:{port_a}"
        # both listen now: trust each other; A's entry names A's collaboration service
        write_providers(providers, [
            PeerSite(domains["a"], sites["a"].match["http"], webapp_url=service_a_url),
            PeerSite(domains["b"], sites["b"].match["http"]),
        ])
        service_a, service_b = await _start(stack, tasks, (
            "service-a",
            python + ["serve", f"--gateway={gateway['a']}", f"--state-dir={base / 'service-a'}", f"--port={port_a}"],
            SERVICE_READY,
        ), (
            "service-b",
            python + ["serve", f"--gateway={gateway['b']}", f"--state-dir={base / 'service-b'}", "--port=0"],
            SERVICE_READY,
        ))
        # each site's users' servers sign their OCM code-flow exchanges with the site's key (OCM 1.4)
        hub_a, hub_b = await _spawn(stack, tasks, *(
            _hub(f"hub-{key}", base / f"hub-{key}", gateway[key], service.match["url"],
                 sites[key].match.get("oidc") or "", str(base / f"site-{key}" / "ocm-signing-key.pem"))
            for key, service in (("a", service_a), ("b", service_b))))
        sample = await seed_federated(gateway["a"], gateway["b"], domains["b"], service_a.match["url"], domains["a"])
        await _ready(hub_a, hub_b)
        hubs = {"a": hub_a.match["url"].rstrip("/"), "b": hub_b.match["url"].rstrip("/")}
        print("\ncs3collab two-site demo ready", flush=True)
        print(f"  site A {domains['a']}: gateway {gateway['a']}   collaboration service {service_a.match['url']}",
              flush=True)
        print(f"  site B {domains['b']}: gateway {gateway['b']}   collaboration service {service_b.match['url']}",
              flush=True)
        print(f"  site A {domains['a']}: JupyterHub {hubs['a']}/hub/login", flush=True)
        print(f"  site B {domains['b']}: JupyterHub {hubs['b']}/hub/login", flush=True)
        print(f"  sample notebook at A: {sample} (shared through OCM with marie@{domains['b']}, editor)", flush=True)
        print(f"  shared-kernel demo at A: {HIGGS_FOLDER}/{SAMPLE_NAME} beside its events.csv (OCM: marie, editor; "
              f"richard, viewer)", flush=True)
        print(f"  OCM contacts (by invitation): einstein@{domains['a']} and marie@{domains['b']}", flush=True)
        print(f"  einstein@{domains['a']:14} log in at site A's hub as einstein / {DEMO_USERS['einstein']}, then "
              f"{_notebook_url(hubs['a'], 'einstein', SAMPLE_NAME)}", flush=True)
        print(f"  marie@{domains['b']:17} log in at site B's hub (her own) as marie / {DEMO_USERS['marie']}, then "
              f"{_notebook_url(hubs['b'], 'marie', f'Shared with me/{SAMPLE_NAME}')}", flush=True)
        print("Ctrl-C stops everything.", flush=True)
        await stop.wait()
        print("stopping the demo...", flush=True)
