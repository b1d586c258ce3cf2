"""Each participant's Jupyter server maps a CS3 notebook's kernel session to
the notebook's shared kernel (the stock Jupyter kernel API, unchanged), and
keeps local kernels for everything else."""

from __future__ import annotations

import contextlib
import signal
import uuid

from cs3collab.cs3 import roles
from cs3collab.cs3.shares import user_grantee
from tests.jupyter.conftest_bridge import jupyter_with_cs3collab
from tests.kernels.kernelclient import lab_kernel, open_kernel_session, outputs_text
from tests.service.rtc import put_notebook
from tests.support.yclient import connect, wait_for

SHARED = "Shared with me"


@contextlib.asynccontextmanager
async def lab(site, svc, username: str, base):
    async with jupyter_with_cs3collab(base, gateway=site.gateway, service_url=svc.url, username=username) as server:
        yield server


async def test_sessions_map_to_the_shared_kernel_which_survives_a_jupyter_restart(
        site, svc, einstein, marie, workdir, tmp_path):
    name = f"lab-{uuid.uuid4().hex[:6]}.ipynb"
    path = await put_notebook(einstein, f"{workdir}/{name}", "x = 41", "print(x + 1)")
    share = await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    own_path = f"{workdir.rsplit('/', 1)[-1]}/{name}"
    async with lab(site, svc, "einstein", tmp_path / "lab-a") as lab_a, connect(svc.url, einstein.token, path) as room:
        async with lab(site, svc, "marie", tmp_path / "lab-b") as lab_b:
            async with lab_b.client() as http:
                accepted = await http.post(f"api/cs3collab/received/user/{share.id.opaque_id}", json={"state": "accepted"})
                assert accepted.status_code == 200, accepted.text
            session_a = await open_kernel_session(lab_a.url, lab_a.token, own_path)
            session_b = await open_kernel_session(lab_b.url, lab_b.token, f"{SHARED}/{name}")
            kernel_id = session_a["kernel"]["id"]
            assert session_b["kernel"]["id"] == kernel_id, "both servers map the notebook to one kernel"
            cells = [str(cell["id"]) for cell in room.document.ycells]
            async with lab_kernel(lab_a.url, lab_a.token, kernel_id) as ka, lab_kernel(lab_b.url, lab_b.token, kernel_id) as kb:
                await ka.idle(await ka.execute("x = 41", cells[0]))
                run = await kb.execute("print(x + 1)", cells[1])
                assert (await kb.reply(run))["content"]["status"] == "ok"
                await ka.idle(run)  # einstein's kernel indicator went busy and idle for marie's run
                await wait_for(room.doc, lambda: outputs_text(room, 1) == "42\n")
                assert room.document.ycells[1]["metadata"]["cs3collab"]["execution"]["by"] == "Marie Curie"
                async with lab_b.client() as http:
                    model = (await http.get(f"api/kernels/{kernel_id}")).json()
                    assert model["id"] == kernel_id and model["name"] == "python3"
                    assert (await http.post(f"api/kernels/{kernel_id}/interrupt")).status_code == 204
                    # closing the notebook detaches marie's server; the kernel is everyone's
                    assert (await http.delete(f"api/sessions/{session_b['id']}")).status_code == 204
            # a console is not a CS3 notebook: a local kernel of marie's own server
            async with lab_b.client() as http:
                console = await http.post("api/sessions", json={"path": "console-1", "name": "console-1",
                                                                 "type": "console", "kernel": {"name": "python3"}})
                assert console.status_code == 201 and console.json()["kernel"]["id"] != kernel_id
        # marie's Jupyter server restarts (a new process): the notebook finds the same kernel, state intact
        async with lab(site, svc, "marie", tmp_path / "lab-b2") as lab_b:
            again = await open_kernel_session(lab_b.url, lab_b.token, f"{SHARED}/{name}")
            assert again["kernel"]["id"] == kernel_id
            async with lab_kernel(lab_b.url, lab_b.token, kernel_id) as kb:
                await kb.idle(await kb.execute("print(x)", cells[1]))
                await wait_for(room.doc, lambda: outputs_text(room, 1) == "41\n")


async def test_no_local_kernel_is_left_when_the_service_is_away_as_a_notebook_opens(site, einstein, workdir, tmp_path):
    """JupyterLab opens a notebook's session under a placeholder path (a local
    kernel starts) and then PATCHes the real path, which moves it to the shared
    kernel. If the service is away at that moment, the user is told why, and
    no private local kernel stays behind for a notebook everyone shares."""
    from tests.service.conftest import start_service

    name = f"away-{uuid.uuid4().hex[:6]}.ipynb"
    await put_notebook(einstein, f"{workdir}/{name}", "x = 1")
    own_path = f"{workdir.rsplit('/', 1)[-1]}/{name}"
    async with start_service(site, tmp_path / "svc-away") as away:
        async with lab(site, away, "einstein", tmp_path / "lab") as server:
            async with server.client() as http:
                placeholder = await http.post("api/sessions", json={
                    "path": f"{own_path.rsplit('/', 1)[0]}/{uuid.uuid4()}", "name": name, "type": "notebook",
                    "kernel": {"name": "python3"}})
                assert placeholder.status_code == 201, placeholder.text
                assert len((await http.get("api/kernels")).json()) == 1  # the placeholder's local kernel
                away.running.process.send_signal(signal.SIGKILL)  # gone, as after a crash
                await away.running.process.wait()
                moved = await http.patch(f"api/sessions/{placeholder.json()['id']}", json={"path": own_path})
                assert moved.status_code == 503, moved.text
                assert "collaboration service is not reachable" in moved.json()["message"]
                assert (await http.get("api/sessions")).json() == []
                assert (await http.get("api/kernels")).json() == []
