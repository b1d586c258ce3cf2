"""Quick recovery from a CS3 restart: saves resume within seconds of the gateway's return.

What a user notices: the site's CS3 gateway is killed and comes back (same
address) while she types; what she typed meanwhile is in CS3 within 3
seconds of the gateway's return, not half a minute later (the gRPC
channel's reconnect backoff, bounded in cs3collab/cs3/client.py).

Its own module: it runs its own devstack, which it kills.
"""

from __future__ import annotations

import contextlib
import re
import time

import anyio
import httpx

from cs3collab.cs3 import CS3Client, Unavailable
from tests.conftest import DEMO_PASSWORDS
from tests.service.conftest import TIMINGS
from tests.service.rtc import cell_sources_of_file, notebook_bytes, type_text
from tests.support.processes import devstack, service, stable_port
from tests.support.yclient import connect

RESUMED_WITHIN = 3.0
"""Seconds from the gateway's ready line to the typing being in CS3 (the issue's bar)."""


async def saved_text(session, path: str, text: str, timeout: float) -> float:
    """Wait until ``text`` is in the file in CS3, asking again when CS3 is not
    reachable yet; return the monotonic time it was seen."""
    with anyio.fail_after(timeout):
        while True:
            with contextlib.suppress(Unavailable):
                if any(text in source for source in cell_sources_of_file(await session.files.download(path))):
                    return time.monotonic()
            await anyio.sleep(0.05)  # CS3 has no push: look again


async def failed_saves_reach(url: str, count: int, timeout: float) -> None:
    """Until the service's /metrics counts ``count`` failed saves (a bounded poll:
    a counter has no event to await from outside the process)."""
    pattern = re.compile(r'^cs3collab_saves_total\{outcome="failed"\} (\S+)$', re.M)
    with anyio.fail_after(timeout):
        async with httpx.AsyncClient(timeout=10) as http:
            while True:
                found = pattern.search((await http.get(f"{url}/metrics")).text)
                if found and float(found.group(1)) >= count:
                    return
                await anyio.sleep(0.5)


async def test_saves_resume_soon_after_the_gateway_restarts(tmp_path):
    data = tmp_path / "site"
    async with contextlib.AsyncExitStack() as first_site:
        ports = ("--port", str(stable_port()), "--http-port", str(stable_port()))  # where it comes back
        first = await first_site.enter_async_context(devstack(data, domain="cernbox.test", extra=ports))
        async with CS3Client(first.gateway) as cs3, service(first.gateway, tmp_path / "svc", extra=TIMINGS) as svc:
            einstein = await cs3.login("einstein", DEMO_PASSWORDS["einstein"])
            path = f"{await einstein.get_home()}/restart.ipynb"
            await einstein.files.upload(path, notebook_bytes("a = 1"))
            async with connect(svc.url, einstein.token, path) as tab:
                type_text(tab, 0, "  # before")
                await saved_text(einstein, path, "# before", timeout=15)

                first.running.process.kill()  # the gateway dies (SIGKILL)
                await first_site.aclose()
                type_text(tab, 0, "  # during")
                # the outage lasts until the service failed to save five times (~17 s): long
                # enough for gRPC's default backoff to have grown to ~10 s (a save then came
                # 7 to 13 s after the gateway was back). The log says "save failed" once a
                # minute per room; the saves counter of /metrics counts every one.
                await failed_saves_reach(svc.url, 5, timeout=90)

                async with devstack(data, domain="cernbox.test", extra=ports):
                    back = time.monotonic()
                    seen = await saved_text(einstein, path, "# during", timeout=30)
                    print(f"saved {seen - back:.2f}s after the gateway was back")
                    assert seen - back <= RESUMED_WITHIN
