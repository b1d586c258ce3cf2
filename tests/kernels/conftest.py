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

