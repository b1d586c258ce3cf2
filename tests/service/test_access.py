"""Access re-checked while people work: removed shares, changed roles, expired tokens.

The service starts with ``--access-recheck=0.5``: every participant's access
is asked of CS3 again twice a second, so a change made by the owner reaches
the room within that period.
"""

from __future__ import annotations

import json

import anyio
import pytest

from cs3collab.cs3 import CS3Client, roles
from cs3collab.cs3.ocm import federated_user
from cs3collab.devstack.ocm_peers import PeerSite, write_providers
from cs3collab.cs3.shares import user_grantee
from tests.service.conftest import start_service
from tests.service.rtc import put_notebook, save_frame, sources, type_text, update_frame
from tests.support.ocm_signing import exchange, site_key
from tests.support.metrics import cs3_calls
from tests.support.processes import devstack
from tests.support.yclient import connect, connect_room, open_session, send_awareness, wait_for

RECHECK = "--access-recheck=0.5"


@pytest.fixture(scope="module")
async def watched(site, tmp_path_factory):
    async with start_service(site, tmp_path_factory.mktemp("svc-access"), RECHECK) as running:
        yield running


async def echo(client, marker: str) -> None:
    """A barrier: the client's own awareness comes back after everything sent before it."""
    await send_awareness(client, {"marker": marker}, clock=len(client.channel.awareness) + 10)
    await client.channel.wait_awareness(lambda states: {"marker": marker} in states.values())


async def closed(client, timeout: float) -> tuple[int, str]:
    """The close code and reason the server ended this client's connection with."""
    with anyio.fail_after(timeout):
        await client.connection.wait_closed()
    return client.connection.close_code, client.connection.close_reason


async def test_removed_share_disconnects_with_a_reason(watched, einstein, marie, notebook):
    path = await notebook("shared = 1")
    share = await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    async with connect(watched.url, einstein.token, path) as owner, connect(watched.url, marie.token, path) as guest:
        type_text(guest, 0, "  # marie")
        await wait_for(owner.doc, lambda: sources(owner) == ["shared = 1  # marie"])
        await einstein.shares.remove(share.id.opaque_id)
        code, reason = await closed(guest, timeout=5)
        assert code == 1003
        payload = json.loads(reason)
        assert payload["reason"] == "access_revoked" and payload["reloadable"] is False
        assert "removed" in payload["errorReason"]
        # the owner carries on, and marie's acknowledged edit stays
        type_text(owner, 0, "  # owner")
        await echo(owner, "after-revocation")
        assert sources(owner) == ["shared = 1  # marie  # owner"]


async def test_a_tab_opening_a_room_asks_cs3_once(site, einstein, notebook, tmp_path_factory):
    """The stock frontend asks for a session, then joins the room's WebSocket:
    the join takes the session's access answer (a few ms old) instead of a
    second Stat. Polls and re-checks are slowed so that only the open asks."""
    async with start_service(site, tmp_path_factory.mktemp("svc-lend"), "--access-recheck=30",
                             "--poll-interval=60") as svc:
        path = await notebook("x = 1")
        async with connect(svc.url, einstein.token, path) as first:
            await echo(first, "first joined")
            before = await cs3_calls(svc.url)
            async with connect(svc.url, einstein.token, path) as second:
                await echo(second, "second joined")
                after = await cs3_calls(svc.url)
    assert after.get("Stat", 0) - before.get("Stat", 0) == 1


async def test_a_share_removed_between_session_and_join_still_ends_access(site, einstein, marie, notebook,
                                                                          tmp_path_factory):
    """A join within 2 s of its session uses the session's answer: a share
    removed in between lets the tab in, and the next re-check (every 2 s
    here) takes it out again, as it would a tab that joined a moment earlier."""
    async with start_service(site, tmp_path_factory.mktemp("svc-lend-revoked"), "--access-recheck=2") as svc:
        path = await notebook("y = 1")
        share = await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
        async with connect(svc.url, einstein.token, path) as owner:
            session = await open_session(svc.url, marie.token, path)
            await einstein.shares.remove(share.id.opaque_id)
            async with connect_room(svc.url, marie.token, session.room, f"sessionId={session.sessionId}") as guest:
                code, reason = await closed(guest, timeout=8)
            assert code == 1003 and json.loads(reason)["reason"] == "access_revoked"
            await echo(owner, "owner still here")
        with pytest.raises(Exception):  # and a new session is refused outright
            await open_session(svc.url, marie.token, path)


async def test_downgrade_to_viewer_applies_at_once_and_back(watched, einstein, marie, notebook):
    path = await notebook("x = 1")
    share = await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    async with connect(watched.url, einstein.token, path) as owner, connect(watched.url, marie.token, path) as guest:
        await einstein.shares.update_role(share.id.opaque_id, roles.VIEWER)
        role = await guest.channel.wait_raw(lambda m: m.get("type") == "cs3collab:role" and m["role"] == "viewer")
        assert role["readOnly"] == "viewer"
        # her edits are dropped now: the failed save proves the room handled them first
        state = guest.doc.get_state()
        type_text(guest, 0, "  # DROPPED")
        await guest.connection.send(update_frame(guest.doc.get_update(state)))
        await guest.connection.send(save_frame(1))
        assert (await guest.channel.wait_raw(lambda m: m.get("type") == "save"))["status"] == "failed"
        await echo(owner, "after-downgrade")
        assert sources(owner) == ["x = 1"]
        # and she is an editor again when the owner says so
        await einstein.shares.update_role(share.id.opaque_id, roles.EDITOR)
        await guest.channel.wait_raw(lambda m: m.get("type") == "cs3collab:role" and m["role"] == "editor")
        async with connect(watched.url, marie.token, path) as again:
            type_text(again, 0, "  # back")
            await wait_for(owner.doc, lambda: "# back" in sources(owner)[0])


async def test_expired_token_closes_for_a_reconnect(tmp_path_factory):
    async with devstack(tmp_path_factory.mktemp("short"), extra=("--token-lifetime", "3")) as short:
        async with start_service(short, tmp_path_factory.mktemp("svc-short"), RECHECK) as svc:
            async with CS3Client(short.gateway) as cs3:
                einstein = await cs3.login("einstein", "relativity")
                path = await put_notebook(einstein, f"{await einstein.get_home()}/t.ipynb", "t = 1")
                async with connect(svc.url, einstein.token, path) as client:
                    code, reason = await closed(client, timeout=10)
                assert code == 4401 and "expired" in reason
                # a fresh token (what the Jupyter server's bridge brings on reconnect) gets back in
                fresh = await cs3.login("einstein", "relativity")
                async with connect(svc.url, fresh.token, path) as client:
                    assert sources(client) == ["t = 1"]


async def test_expired_ocm_code_flow_token_closes_for_a_reconnect(tmp_path_factory):
    """A participant of another site with a code-flow token: when the token
    expires the room asks for a reconnect (4401), not "access revoked"; a
    fresh exchange of the same code gets back in."""
    root = tmp_path_factory.mktemp("short-ocm")
    providers = root / "ocm-providers.json"
    extra = ("--ocm-providers", str(providers))
    async with devstack(root / "a", domain="cernbox.test", extra=(*extra, "--token-lifetime", "4")) as a, \
            devstack(root / "b", domain="cesnet.test", extra=extra) as b:
        write_providers(providers, [PeerSite(a.domain, a.http_url), PeerSite(b.domain, b.http_url)])
        async with start_service(a, root / "svc", RECHECK) as svc, CS3Client(a.gateway) as cs3:
            einstein = await cs3.login("einstein", "relativity")
            path = await put_notebook(einstein, f"{await einstein.get_home()}/o.ipynb", "o = 1")
            info = await einstein.files.stat(path)
            share = await einstein.ocm.create_share(info.id, federated_user("marie", "cesnet.test"), roles.EDITOR)

            async def exchanged() -> str:
                answer = await exchange(a.http_url, share.token, key=site_key(b.data_dir))  # as site B signs
                assert answer.status_code == 200, answer.text
                return answer.json()["access_token"]

            async with connect(svc.url, await exchanged(), f"ocm:{share.id.opaque_id}") as guest:
                assert sources(guest) == ["o = 1"]
                code, reason = await closed(guest, timeout=15)
            assert code == 4401 and "expired" in reason, (code, reason)
            async with connect(svc.url, await exchanged(), f"ocm:{share.id.opaque_id}") as guest:
                assert sources(guest) == ["o = 1"]


async def test_a_room_left_to_a_revoked_writer_stops_polling(site, einstein, marie, notebook, tmp_path_factory):
    # a long grace period: the room outlives its last participant, as with a tab closed
    async with start_service(site, tmp_path_factory.mktemp("svc-revoked-poll"), RECHECK, "--close-grace=120") as svc:
        path = await notebook("alone = 1")
        share = await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
        async with connect(svc.url, marie.token, path) as guest:
            type_text(guest, 0, "  # marie")
            await svc.running.wait_for_output("saved room=", timeout=10)  # marie is the room's writer
            await einstein.shares.remove(share.id.opaque_id)
            assert (await closed(guest, timeout=5))[0] == 1003
        # the room still polls as marie, whose access is gone: once, then never again
        failed = "poll failed room="
        await svc.running.wait_for_output(failed, timeout=10)
        # time passes, observed on another room: five saves there take well over five poll periods
        other = await notebook("busy = 0")
        async with connect(svc.url, einstein.token, other) as owner:
            for n in range(1, 6):
                type_text(owner, 0, f"  # {n}")
                await svc.running.wait_for_output("saved room=", count=1 + n, timeout=10)
        assert svc.running.count(failed) == 1
