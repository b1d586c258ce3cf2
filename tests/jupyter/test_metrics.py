"""The Jupyter extension in jupyter_server's own ``/metrics``.

jupyter_server records every request it serves in
``http_request_duration_seconds{method,handler,status_code}``, named by the
handler's module and class; our handlers are ordinary jupyter_server
handlers, so an operator scraping a user's server sees ours there. With the
service embedded in that server (the default without ``service_url``), the
service's ``cs3collab_*`` metrics are on the same endpoint.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.jupyter.conftest_bridge import jupyter_with_cs3collab
from tests.service.rtc import put_notebook


@pytest.fixture(scope="module")
async def embedded(site, tmp_path_factory):
    async with jupyter_with_cs3collab(tmp_path_factory.mktemp("jp-metrics"), gateway=site.gateway,
                                      username="einstein") as server:
        yield server


def samples(text: str) -> list:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


async def test_our_handlers_and_the_embedded_service_are_in_jupyter_servers_metrics(embedded, einstein, workdir):
    path = await put_notebook(einstein, f"{workdir}/metrics.ipynb", "z = 3")
    api_path = path[len(await einstein.get_home()):].lstrip("/")
    async with embedded.client() as http:
        assert (await http.get("api/cs3collab/received")).status_code == 200
        session = await http.put(f"api/collaboration/session/{quote(api_path, safe='')}",
                                 json={"format": "json", "type": "notebook"})
        assert session.status_code == 200, session.text
        metrics = await http.get("metrics")
        assert metrics.status_code == 200, metrics.text
    found = samples(metrics.text)
    handled = {(s.labels.get("handler"), s.labels.get("method"), s.labels.get("status_code"))
               for s in found if s.name == "http_request_duration_seconds_count"}
    assert ("cs3collab.jupyter.browse.ReceivedHandler", "GET", "200") in handled, sorted(handled)
    assert ("cs3collab.jupyter.bridge.SessionBridgeHandler", "PUT", "200") in handled, sorted(handled)
    # the embedded service's own: the session request asked CS3 (Stat as einstein)
    stat_calls = [s.value for s in found if s.name == "cs3collab_cs3_calls_total"
                  and s.labels == {"method": "Stat", "status": "OK"}]
    assert stat_calls and stat_calls[0] >= 1
    assert any(s.name == "cs3collab_rooms_live" for s in found)
