"""Fixtures of the service tests: a real service process per test module.

Each module gets its own ``cs3collab serve`` process on the session's
devstack ``site``, with short timings so saves, polls, grace periods and lock
refreshes happen within a test. Tests that kill or reconfigure a service
start their own with :func:`start_service`.
"""

from __future__ import annotations

import uuid

import pytest

from tests.service.rtc import put_notebook
from tests.support.processes import service

TIMINGS = (
    "--save-quiet=0.2",
    "--save-ceiling=2",
    "--poll-interval=0.3",
    "--close-grace=1",
    "--lock-lifetime=6",
)
"""Short timings: a save within ~0.2 s of the last keystroke and at most every
2 s under typing, outside edits seen within 0.3 s, empty rooms freed after 1 s."""


def start_service(site, state_dir, *extra: str):
    """``async with start_service(site, dir, "--max-frame-size=4096") as svc``;
    an option given in ``extra`` replaces the same one of :data:`TIMINGS`."""
    options = {option.split("=", 1)[0]: option for option in (*TIMINGS, *extra)}
    return service(site.gateway, state_dir, extra=tuple(options.values()))


@pytest.fixture(scope="module")
async def svc(site, tmp_path_factory):
    """The collaboration service of this test module (a real process)."""
    async with start_service(site, tmp_path_factory.mktemp("svc")) as running:
        yield running


@pytest.fixture
async def notebook(einstein, workdir):
    """``path = await notebook("a = 1", "b = 2")``: a fresh notebook in
    einstein's home with one code cell per source."""

    async def _notebook(*sources: str, name: str | None = None) -> str:
        path = f"{workdir}/{name or 'nb-' + uuid.uuid4().hex[:8] + '.ipynb'}"
        return await put_notebook(einstein, path, *(sources or ("",)))

    return _notebook

