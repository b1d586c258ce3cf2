"""Faults around a shared kernel: revoked access, a tab gone mid-run, a dying
kernel, interrupt and restart. The kernel, the room and the others carry on."""

from __future__ import annotations

import json

import nbformat

from cs3collab.cs3 import roles
from cs3collab.cs3.shares import user_grantee
from tests.kernels.kernelclient import file_id_of, kernel_channel, kernel_rest, outputs_text
from tests.service.rtc import eventually
from tests.support.yclient import connect, wait_for


def cell_id(client, index: int) -> str:
    return str(client.document.ycells[index]["id"])


async def test_revoked_share_cuts_the_kernel_channel_and_the_kernel_carries_on(svc, einstein, marie, notebook):
    path = await notebook("y = 1", "print(y)")
    share = await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    file_id = await file_id_of(svc.url, einstein.token, path)
    async with connect(svc.url, einstein.token, path) as a, \
            kernel_channel(svc.url, f"Bearer {einstein.token}", file_id) as ka, \
            kernel_channel(svc.url, f"Bearer {marie.token}", file_id) as kb:
        await kb.idle(await kb.execute("y = 7", cell_id(a, 0)))
        await einstein.shares.remove(share.id.opaque_id)
        code, reason = await kb.wait_closed(timeout=10)  # the re-check runs every 0.5 s
        assert code == 1003 and json.loads(reason)["reason"] == "access_revoked"
        # the kernel, with its state, is still einstein's
        await ka.idle(await ka.execute("print(y)", cell_id(a, 1)))
        await wait_for(a.doc, lambda: outputs_text(a, 1) == "7\n")
        assert svc.running.count("kernel access lost, disconnecting") >= 1


async def test_outputs_land_when_the_asking_tab_is_gone(svc, einstein, marie, notebook):
    path = await notebook("")
    await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    file_id = await file_id_of(svc.url, einstein.token, path)
    async with connect(svc.url, marie.token, path) as b:
        cell = cell_id(b, 0)
    # nobody has the notebook open now: marie's channel starts a run and goes away mid-run
    code = "import time\nprint('started', flush=True)\ntime.sleep(1.5)\nprint('landed')"
    async with kernel_channel(svc.url, f"Bearer {marie.token}", file_id) as kb:
        run = await kb.execute(code, cell)
        await kb.wait(lambda m: m["msg_type"] == "execute_input" and m["parent_header"].get("msg_id") == run)

    async def saved_outputs():
        notebook_file = nbformat.reads((await einstein.files.download(path)).decode(), as_version=4)
        texts = "".join(o.get("text", "") for o in notebook_file.cells[0].outputs)
        return notebook_file.cells[0] if "landed" in texts else None

    saved = await eventually(saved_outputs, 30, "the run's outputs saved to CS3")
    assert "started" in "".join(o.get("text", "") for o in saved.outputs)
    assert saved.metadata["cs3collab"]["execution"]["by"] == "Marie Curie"
    assert saved.execution_count is not None


async def test_a_dying_kernel_is_reported_and_a_new_one_starts(svc, einstein, notebook):
    path = await notebook("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", "print('alive again')")
    other = await notebook("print('other kernel')")
    file_id = await file_id_of(svc.url, einstein.token, path)
    other_id = await file_id_of(svc.url, einstein.token, other)
    async with connect(svc.url, einstein.token, path) as a, connect(svc.url, einstein.token, other) as o, \
            kernel_channel(svc.url, f"Bearer {einstein.token}", file_id) as ka, \
            kernel_channel(svc.url, f"Bearer {einstein.token}", other_id) as ko:
        await ko.idle(await ko.execute("z = 'kept'", cell_id(o, 0)))
        await ka.execute("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", cell_id(a, 0))
        notice = await a.channel.wait_raw(lambda m: m.get("type") == "cs3collab:kernel" and m["event"] == "died",
                                          timeout=30)
        assert "SIGKILL" in notice["message"] and "run a cell to start a new one" in notice["message"]
        await ka.wait(lambda m: m["msg_type"] == "status" and m["content"]["execution_state"] == "dead")
        await wait_for(a.doc, lambda: "KernelDied" in outputs_text(a, 0))
        # the other notebook's kernel kept its state; this one starts afresh on the next run
        await ko.idle(await ko.execute("print(z)", cell_id(o, 0)))
        await wait_for(o.doc, lambda: outputs_text(o, 0) == "kept\n")
        await ka.idle(await ka.execute("print('alive again')", cell_id(a, 1)), timeout=60)
        await wait_for(a.doc, lambda: outputs_text(a, 1) == "alive again\n")


async def test_interrupt_and_restart_by_an_editor(svc, einstein, notebook):
    path = await notebook("w = 5\nwhile True: pass", "print(w)")
    file_id = await file_id_of(svc.url, einstein.token, path)
    auth = f"Bearer {einstein.token}"
    async with connect(svc.url, einstein.token, path) as a, kernel_channel(svc.url, auth, file_id) as ka:
        started = await kernel_rest(svc.url, auth, file_id)
        assert started.status_code == 200 and started.json()["state"] == "idle"
        spin = await ka.execute("w = 5\nwhile True: pass", cell_id(a, 0))
        await ka.wait(lambda m: m["msg_type"] == "execute_input" and m["parent_header"].get("msg_id") == spin)
        assert (await kernel_rest(svc.url, auth, file_id, method="GET")).json()["running"][0]["by"] == "Albert Einstein"
        assert (await kernel_rest(svc.url, auth, file_id, "interrupt")).status_code == 200
        await ka.idle(spin)
        await wait_for(a.doc, lambda: "KeyboardInterrupt" in outputs_text(a, 0))
        assert (await kernel_rest(svc.url, auth, file_id, "restart")).status_code == 200
        await ka.idle(await ka.execute("print(w)", cell_id(a, 1)))
        await wait_for(a.doc, lambda: "NameError" in outputs_text(a, 1))


async def test_input_right_after_a_restart_is_asked_and_answered(svc, einstein, notebook):
    """The restarted process must reach the service's stdin socket before a
    run may ask for input: its ROUTER drops an input_request it cannot route,
    and the run would hang."""
    path = await notebook("print(input('again? '))")
    file_id = await file_id_of(svc.url, einstein.token, path)
    auth = f"Bearer {einstein.token}"
    async with connect(svc.url, einstein.token, path) as a, kernel_channel(svc.url, auth, file_id) as ka:
        assert (await kernel_rest(svc.url, auth, file_id)).json()["state"] == "idle"
        assert (await kernel_rest(svc.url, auth, file_id, "restart")).status_code == 200
        content = {"code": "print(input('again? '))", "silent": False, "store_history": True,
                   "user_expressions": {}, "allow_stdin": True, "stop_on_error": True}
        run = await ka.send(ka.message("execute_request", content, metadata={"cellId": cell_id(a, 0)}))
        prompt = await ka.wait(lambda m: m["msg_type"] == "input_request", timeout=60)
        assert prompt["content"]["prompt"] == "again? "
        answer = ka.message("input_reply", {"value": "yes"}, channel="stdin")
        answer["parent_header"] = prompt["header"]
        await ka.send(answer)
        await ka.idle(run)
        await wait_for(a.doc, lambda: outputs_text(a, 0) == "yes\n")


async def test_a_kernel_that_cannot_start_is_explained_in_the_cell(site, einstein, notebook, tmp_path):
    from tests.service.conftest import start_service

    path = await notebook("print('never')")
    async with start_service(site, tmp_path / "svc", "--KernelHost.provisioner=no-such-provisioner") as broken:
        file_id = await file_id_of(broken.url, einstein.token, path)
        async with connect(broken.url, einstein.token, path) as a, \
                kernel_channel(broken.url, f"Bearer {einstein.token}", file_id) as ka:
            run = await ka.execute("print('never')", cell_id(a, 0))
            reply = await ka.reply(run)
            assert reply["content"]["status"] == "error" and "could not start" in reply["content"]["evalue"]
            answer = await kernel_rest(broken.url, f"Bearer {einstein.token}", file_id)
            assert answer.status_code == 503 and answer.json()["error"] == "kernel_unavailable"
            # the room carries on: an edit reaches another participant
            source = a.document.ycells[0]["source"]
            source.insert(len(source), "  # still editable")
            async with connect(broken.url, einstein.token, path) as b:
                await wait_for(b.doc, lambda: "still editable" in str(b.document.ycells[0]["source"]))


async def test_an_idle_kernel_nobody_is_attached_to_is_culled(site, einstein, notebook, tmp_path):
    from tests.service.conftest import start_service

    path = await notebook("")
    options = ("--KernelHost.idle_timeout=1",
               "--KernelHost.cull_interval=0.5")
    async with start_service(site, tmp_path / "svc", *options) as culling:
        file_id = await file_id_of(culling.url, einstein.token, path)
        auth = f"Bearer {einstein.token}"
        async with connect(culling.url, einstein.token, path) as a:
            assert (await kernel_rest(culling.url, auth, file_id)).json()["state"] == "idle"
            notice = await a.channel.wait_raw(lambda m: m.get("type") == "cs3collab:kernel" and m["event"] == "culled",
                                              timeout=30)
            assert "idle" in notice["message"]
            assert (await kernel_rest(culling.url, auth, file_id, method="GET")).json()["state"] == "none"


async def test_a_cell_running_when_the_service_was_killed_is_ended_by_the_next_kernel(site, einstein, notebook,
                                                                                        tmp_path):
    """The service (and its kernel) killed mid-run: after the restart the cell
    still shows the run as going on, until the notebook's next kernel starts;
    then it shows as ended, saying why."""
    from tests.kernels.conftest import KERNEL_OPTIONS
    from tests.service.conftest import start_service
    from tests.service.test_recovery import LONG_LOCK, kill, until_killed

    path = await notebook("import time; time.sleep(600)", "print('next')")
    state = tmp_path / "svc"
    async with start_service(site, state, *KERNEL_OPTIONS, *LONG_LOCK) as first:
        file_id = await file_id_of(first.url, einstein.token, path)
        async with until_killed(connect(first.url, einstein.token, path)) as a, \
                until_killed(kernel_channel(first.url, f"Bearer {einstein.token}", file_id)) as ka:
            await ka.execute("import time; time.sleep(600)", cell_id(a, 0))
            await wait_for(a.doc, lambda: a.document.ycells[0].get("execution_state") == "busy", timeout=30)
            await kill(first)
    async with start_service(site, state, *KERNEL_OPTIONS, *LONG_LOCK) as second:
        async with connect(second.url, einstein.token, path) as b, \
                kernel_channel(second.url, f"Bearer {einstein.token}", file_id) as kb:
            assert b.document.ycells[0].get("execution_state") == "busy"  # no kernel has said otherwise yet
            await kb.idle(await kb.execute("print('next')", cell_id(b, 1)), timeout=60)
            await wait_for(b.doc, lambda: b.document.ycells[0].get("execution_state") == "idle"
                           and "stopped before the run ended" in outputs_text(b, 0), timeout=10)
            assert outputs_text(b, 1) == "next\n"
