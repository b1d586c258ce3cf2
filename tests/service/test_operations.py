"""What an operator sees of a running service: /metrics, /healthz, /readyz, JSON logs.

Everything is real: ``cs3collab serve`` as a process on the session's
devstack, pycrdt clients over WebSockets, Prometheus' own text parser
reading ``/metrics`` as a scraper would.
"""

from __future__ import annotations

import json
import re
import signal

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cs3collab.cs3 import roles
from cs3collab.cs3.shares import user_grantee
from tests.service.conftest import start_service
from tests.service.rtc import eventually, put_notebook, saved_containing, sources, type_text
from tests.support.processes import devstack
from tests.support.yclient import connect, wait_for

FAMILIES = {
    # name as the text format gives it (counters without _total) → type
    "cs3collab_rooms_live": "gauge",
    "cs3collab_connections": "gauge",
    "cs3collab_federated_participants": "gauge",
    "cs3collab_updates_received": "counter",
    "cs3collab_updates_broadcast": "counter",
    "cs3collab_update_fanout_seconds": "histogram",
    "cs3collab_journal_commit_seconds": "histogram",
    "cs3collab_saves": "counter",
    "cs3collab_save_seconds": "histogram",
    "cs3collab_cs3_calls": "counter",
    "cs3collab_cs3_call_seconds": "histogram",
    "cs3collab_access_refusals": "counter",
    "cs3collab_access_revocations": "counter",
}


async def scrape(url: str) -> tuple[dict[str, str], dict[tuple, float]]:
    """Family types and every sample of the service's /metrics, keyed by (name, sorted labels)."""
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.get(f"{url}/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    types, samples = {}, {}
    for family in text_string_to_metric_families(answer.text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return types, samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
async def ops(site, tmp_path_factory):
    async with start_service(site, tmp_path_factory.mktemp("svc-ops"), "--access-recheck=0.5") as running:
        yield running


async def test_metrics_are_named_and_move_with_real_traffic(ops, einstein, marie, notebook):
    types, before = await scrape(ops.url)
    assert {name: types.get(name) for name in FAMILIES} == FAMILIES

    path = await notebook("x = 1")
    share = await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    async with connect(ops.url, einstein.token, path) as owner, connect(ops.url, marie.token, path) as guest:
        _, joined = await scrape(ops.url)
        assert value(joined, "cs3collab_rooms_live") == value(before, "cs3collab_rooms_live") + 1
        assert value(joined, "cs3collab_connections", role="editor") == value(before, "cs3collab_connections", role="editor") + 2

        type_text(guest, 0, "  # marie")
        await wait_for(owner.doc, lambda: sources(owner) == ["x = 1  # marie"])
        _, typed = await scrape(ops.url)
        for counter in ("cs3collab_updates_received_total", "cs3collab_updates_broadcast_total",
                        "cs3collab_update_fanout_seconds_count", "cs3collab_journal_commit_seconds_count"):
            assert value(typed, counter) > value(before, counter), counter
        # the gateway calls that opening the room made, by method and CS3 status
        assert value(typed, "cs3collab_cs3_calls_total", method="Stat", status="OK") > value(
            before, "cs3collab_cs3_calls_total", method="Stat", status="OK")
        assert value(typed, "cs3collab_cs3_call_seconds_count", method="Stat") > 0

        await saved_containing(einstein, path, "# marie")

        async def saved():
            _, now = await scrape(ops.url)
            return now if value(now, "cs3collab_saves_total", outcome="success") > value(
                before, "cs3collab_saves_total", outcome="success") else None

        after_save = await eventually(saved, 10, "a successful save counted")
        assert value(after_save, "cs3collab_save_seconds_count") > value(before, "cs3collab_save_seconds_count")

        # the owner removes marie's share: she is cut off, and that is counted
        await einstein.shares.remove(share.id.opaque_id)

        async def revoked():
            _, now = await scrape(ops.url)
            return now if value(now, "cs3collab_access_revocations_total", reason="access_revoked") > value(
                before, "cs3collab_access_revocations_total", reason="access_revoked") else None

        after_revoke = await eventually(revoked, 10, "the revocation counted")
        assert value(after_revoke, "cs3collab_connections", role="editor") == value(
            before, "cs3collab_connections", role="editor") + 1

    # a forged token is refused, and counted as an access refusal
    async with httpx.AsyncClient(timeout=30) as http:
        answer = await http.put(f"{ops.url}/api/collaboration/session/{path}", json={"format": "json", "type": "notebook"},
                                headers={"Authorization": "Bearer not-a-token"})
    assert answer.status_code == 401
    _, refused = await scrape(ops.url)
    assert value(refused, "cs3collab_access_refusals_total", reason="unauthenticated") == value(
        before, "cs3collab_access_refusals_total", reason="unauthenticated") + 1


async def test_startup_objects_are_frozen_out_of_the_collectors_reach(ops):
    """The service's import-time objects are out of every full garbage
    collection (``gc_freeze``): otherwise each one pauses every room for the
    time it takes to walk them again (160-200 ms under load, docs/performance.md)."""
    line = next(line for line in ops.running.output if "startup objects frozen" in line)
    assert int(re.search(r"objects=(\d+)", line).group(1)) > 100_000
    assert "full_collection_every=100" in line  # and full collections spaced out again


async def test_healthz_and_readyz_follow_the_gateway(tmp_path):
    async with devstack(tmp_path / "site") as own_site:
        async with start_service(own_site, tmp_path / "svc") as svc:
            async with httpx.AsyncClient(base_url=svc.url, timeout=30) as http:
                alive = await http.get("/healthz")
                assert alive.status_code == 200 and alive.json() == {"status": "ok"}
                ready = await http.get("/readyz")
                assert ready.status_code == 200, ready.text
                assert ready.json() == {"status": "ready", "checks": {"gateway": "ok", "journal": "ok"}}

                own_site.running.process.terminate()  # the site's gateway goes away
                await own_site.running.process.wait()

                not_ready = await http.get("/readyz")
                assert not_ready.status_code == 503, not_ready.text
                body = not_ready.json()
                assert body["status"] == "not ready"
                assert body["checks"]["journal"] == "ok"
                assert own_site.gateway in body["checks"]["gateway"]  # names the unreachable gateway
                # alive all the same: a gateway outage is no reason to restart the service
                assert (await http.get("/healthz")).status_code == 200
            await svc.running.wait_for_output("not ready")


async def test_json_logs_carry_room_user_and_site(site, einstein, tmp_path):
    path = await put_notebook(einstein, f"{await einstein.get_home()}/json-logs-{tmp_path.name}.ipynb", "y = 2")
    async with start_service(site, tmp_path / "svc", "--log-style=json") as svc:
        async with connect(svc.url, einstein.token, path):
            await svc.running.wait_for_output('"event": "participant joined"')
    lines = [json.loads(line) for line in svc.running.output if line.startswith("{")]
    joined = next(line for line in lines if line["event"] == "participant joined")
    assert joined["user"] == "einstein@cernbox.test" and joined["site"] == "cernbox.test"
    assert joined["room"] and joined["role"] == "editor" and joined["level"] == "INFO"
    assert joined["logger"] == "cs3collab.service.room" and joined["message"].startswith("participant joined room=")
    # no record of ours is printed as text any more
    assert not [line for line in svc.running.output if re.match(r"\d{4}-\d\d-\d\d .* cs3collab\.", line)]


async def test_sigusr1_logs_what_every_task_awaits(site, einstein, tmp_path):
    """An operator facing a service that hangs asks it where: ``kill -USR1``
    logs each asyncio task and the line it waits at; the service carries on."""
    path = await put_notebook(einstein, f"{await einstein.get_home()}/usr1-{tmp_path.name}.ipynb", "z = 3")
    async with start_service(site, tmp_path / "svc") as svc:
        async with connect(svc.url, einstein.token, path) as client:
            svc.running.process.send_signal(signal.SIGUSR1)
            await svc.running.wait_for_output("asyncio tasks (SIGUSR1)")
            await svc.running.wait_for_output("task name=room registry awaits=run (registry.py")
            assert svc.running.count("task name=") >= 3  # the registry, the kernels, the open room's work...
            type_text(client, 0, " # still served")
            async with connect(svc.url, einstein.token, path) as joiner:  # the room still syncs
                await wait_for(joiner.doc, lambda: "still served" in sources(joiner)[0])
        assert svc.running.process.returncode is None


async def test_a_taken_port_is_said_in_one_line(site, tmp_path):
    """An operator who starts the service on a port in use gets one line
    naming the address, exit status 1, no traceback."""
    import asyncio
    import socket

    from tests.support.processes import cs3collab_command

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            *cs3collab_command("serve", f"--gateway={site.gateway}", f"--state-dir={tmp_path}", f"--port={port}"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(process.communicate(), 120)
    words = err.decode()
    assert process.returncode == 1, words
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in words
    assert "Traceback" not in words
