"""Marie at site B runs cells of einstein's notebook in its shared kernel at
site A, through her own Jupyter server, with the OCM share's credentials
(no account at A); einstein sees her runs live."""

from __future__ import annotations

import json

from cs3collab.cs3 import roles
from cs3collab.service import ids
from tests.federation.conftest import SHARED, marie_lab_at_b
from tests.kernels.kernelclient import kernel_channel, lab_kernel, open_kernel_session, outputs_text
from tests.support.yclient import connect, wait_for


async def test_marie_at_b_runs_in_the_kernel_at_a(fed):
    path, info, share = await fed.share(roles.EDITOR, "data = [1, 2, 3]", "print(sum(data))")
    file_id = ids.file_id_for(info.id)
    async with connect(fed.svc_a.url, fed.einstein.token, path) as room, \
            kernel_channel(fed.svc_a.url, f"Bearer {fed.einstein.token}", file_id) as einstein:
        cells = [str(cell["id"]) for cell in room.document.ycells]
        await einstein.idle(await einstein.execute("data = [1, 2, 3]", cells[0]))
        session = await open_kernel_session(fed.lab_b.url, fed.lab_b.token, f"{SHARED}/{info.name}")
        async with lab_kernel(fed.lab_b.url, fed.lab_b.token, session["kernel"]["id"]) as marie:
            run = await marie.execute("print(sum(data))", cells[1])
            assert (await marie.reply(run))["content"]["status"] == "ok"
            await einstein.idle(run)  # einstein's kernel went busy and idle for her run
            await wait_for(room.doc, lambda: outputs_text(room, 1) == "6\n")
            by = room.document.ycells[1]["metadata"]["cs3collab"]["execution"]
            assert by["site"] == "cesnet.test"
            # site A logged her execute with her identity and site
            assert any("kernel execute" in line and "site=cesnet.test" in line for line in fed.svc_a.running.output)
            # the share is revoked: her kernel channel is cut, the kernel carries on for einstein
            await fed.einstein.ocm.remove_share(share.id.opaque_id)
            code, reason = await marie.wait_closed(timeout=15)
            assert code == 1003 and json.loads(reason)["reason"] == "access_revoked"
        await einstein.idle(await einstein.execute("print(len(data))", cells[1]))
        await wait_for(room.doc, lambda: outputs_text(room, 1) == "3\n")


async def test_the_kernel_at_a_survives_a_restart_of_maries_server_at_b(fed):
    """Marie's Jupyter server at B is killed and started again: the notebook's
    kernel at A, with its state, is found again by her new server."""
    import contextlib
    import uuid

    path, info, _share = await fed.share(roles.EDITOR, "energy = 41", "print(energy + 1)")
    api_path = f"{SHARED}/{info.name}"
    root = fed.root / f"lab-marie-restart-{uuid.uuid4().hex[:6]}"
    async with connect(fed.svc_a.url, fed.einstein.token, path) as room:
        cells = [str(cell["id"]) for cell in room.document.ycells]
        async with contextlib.AsyncExitStack() as first:
            lab = await first.enter_async_context(marie_lab_at_b(root, fed.b, fed.svc_b))
            session = await open_kernel_session(lab.url.rstrip("/"), lab.token, api_path)
            kernel_id = session["kernel"]["id"]
            async with lab_kernel(lab.url.rstrip("/"), lab.token, kernel_id) as marie:
                assert (await marie.reply(await marie.execute("energy = 41", cells[0])))["content"]["status"] == "ok"
            lab.running.process.kill()  # her server dies (SIGKILL), the kernel at A does not
            await lab.running.process.wait()
        async with marie_lab_at_b(root, fed.b, fed.svc_b) as again:
            session = await open_kernel_session(again.url.rstrip("/"), again.token, api_path)
            assert session["kernel"]["id"] == kernel_id  # the same kernel, found by the notebook
            async with lab_kernel(again.url.rstrip("/"), again.token, kernel_id) as marie:
                run = await marie.execute("print(energy + 1)", cells[1])
                assert (await marie.reply(run))["content"]["status"] == "ok"
            await wait_for(room.doc, lambda: outputs_text(room, 1) == "42\n")
