"""Fixtures of the shared-kernel tests: a real service with real ipykernel kernels.

The service runs kernels as a site does, through the ``cs3collab-sandbox``
provisioner (bubblewrap, limits, ipc), re-checks access twice a second, and
writes runs into rooms.
"""

from __future__ import annotations

import pytest

from tests.service.conftest import notebook, start_service  # noqa: F401 - fixtures reused here

KERNEL_OPTIONS = (
    "--access-recheck=0.5",
    "--KernelHost.max_output_chars=20000",
)


@pytest.fixture(scope="module")
async def svc(site, tmp_path_factory):
    """The collaboration service of this module, with shared kernels (a real process)."""
    async with start_service(site, tmp_path_factory.mktemp("svc-kernels"), *KERNEL_OPTIONS) as running:
        yield running


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """A failed test shows the end of its service's log."""
    report = yield
    if report.when == "call" and report.failed:
        for name, value in item.funcargs.items():
            running = getattr(value, "running", None)
            if hasattr(running, "output"):
                report.sections.append((f"{name} log (last 80 lines)", "\n".join(running.output[-80:])))
    return report
