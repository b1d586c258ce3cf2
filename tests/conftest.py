"""Fixtures shared by every test: a real devstack site and CS3 sessions on it."""

from __future__ import annotations

import uuid

import pytest

from cs3collab.cs3 import CS3Client
from tests.support.processes import devstack
from tests.support.redis import redis_server

DEMO_PASSWORDS = {"einstein": "relativity", "marie": "radioactivity", "richard": "superfluidity"}


@pytest.fixture(scope="session")
async def site(tmp_path_factory):
    """One devstack site (a real process) for the whole test session."""
    async with devstack(tmp_path_factory.mktemp("site"), domain="cernbox.test") as running:
        yield running


@pytest.fixture(scope="session")
async def redis(tmp_path_factory):
    """One Debian redis-server (a real process, AOF on) for the whole test
    session; tests keep apart by key prefix or database."""
    async with redis_server(tmp_path_factory.mktemp("redis")) as running:
        yield running


@pytest.fixture(scope="session")
async def client(site):
    async with CS3Client(site.gateway) as cs3:
        yield cs3


@pytest.fixture(scope="session")
async def login(client):
    """``await login("einstein")`` gives a session of a demo user."""

    async def _login(username: str):
        return await client.login(username, DEMO_PASSWORDS[username])

    return _login


@pytest.fixture
async def einstein(login):
    return await login("einstein")


@pytest.fixture
async def marie(login):
    return await login("marie")


@pytest.fixture
async def richard(login):
    return await login("richard")


@pytest.fixture
async def workdir(einstein):
    """A fresh folder in einstein's home, so tests never see each other's files."""
    home = await einstein.get_home()
    path = f"{home}/t-{uuid.uuid4().hex[:10]}"
    await einstein.files.mkdir(path)
    return path


STACK_TIMEOUT = 300
"""Seconds for a test whose module starts a whole stack in its first test's
setup (browser tests: a site, the service, a hub spawning three JupyterLabs,
three browsers; federation: two sites, two services, Jupyter servers; hub
logins). That setup took up to 160 s (browsers) and 113 s (two sites) on the
2-core machine under load, past the suite's 120 s (pyproject.toml)."""

STACK_FOLDERS = ("e2e", "federation", "hub")


def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.parent.name in STACK_FOLDERS and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(STACK_TIMEOUT))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """A failed test shows the end of the log of each process its fixtures
    started (a devstack, a service, a Jupyter server): what a reader needs first."""
    report = yield
    if report.when == "call" and report.failed:
        for name, value in item.funcargs.items():
            running = getattr(value, "running", None)
            if hasattr(running, "output"):
                report.sections.append((f"{name} log (last 80 lines)", "\n".join(running.output[-80:])))
    return report


def pytest_terminal_summary(terminalreporter):
    """Lines a test asks to show whatever its outcome (``("printed", text)`` in
    its user properties, e.g. the fuzz test's seed and frame count): report
    properties travel from pytest-xdist's workers, a test's own output does not."""
    lines = [value for reports in terminalreporter.stats.values() for report in reports
             if getattr(report, "when", None) == "call"
             for name, value in getattr(report, "user_properties", ()) if name == "printed"]
    if lines:
        terminalreporter.section("printed by tests")
        for line in lines:
            terminalreporter.line(line)
