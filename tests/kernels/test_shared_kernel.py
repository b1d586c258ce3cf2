"""One shared kernel per notebook, at the notebook's site: state, outputs and
attribution are the same for every participant; viewers run nothing."""

from __future__ import annotations

import re

import httpx

from cs3collab.cs3 import roles
from cs3collab.cs3.shares import user_grantee
from tests.kernels.kernelclient import file_id_of, kernel_channel, kernel_rest, outputs_text
from tests.support.yclient import connect, wait_for


def cell_id(client, index: int) -> str:
    return str(client.document.ycells[index]["id"])


async def test_one_kernel_for_everyone_and_outputs_in_the_room(svc, einstein, marie, notebook):
    path = await notebook("x = 41", "print(x + 1)")
    await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    file_id = await file_id_of(svc.url, einstein.token, path)
    async with connect(svc.url, einstein.token, path) as a, connect(svc.url, marie.token, path) as b, \
            kernel_channel(svc.url, f"Bearer {einstein.token}", file_id) as ka, \
            kernel_channel(svc.url, f"Bearer {marie.token}", file_id) as kb:
        first = await ka.execute("x = 41", cell_id(a, 0))
        assert (await ka.reply(first))["content"]["status"] == "ok"
        second = await kb.execute("print(x + 1)", cell_id(b, 1))
        assert (await kb.reply(second))["content"]["status"] == "ok"
        # B's run is in both notebooks: state was shared, the output written once, by the service
        await wait_for(b.doc, lambda: outputs_text(b, 1) == "42\n")
        await wait_for(a.doc, lambda: outputs_text(a, 1) == "42\n" and a.document.ycells[1].get("execution_count") == 2)
        attribution = a.document.ycells[1]["metadata"]["cs3collab"]["execution"]
        assert attribution["by"] == "Marie Curie" and attribution["site"] == "cernbox.test" and attribution["at"]
        assert a.document.ycells[0]["metadata"]["cs3collab"]["execution"]["by"] == "Albert Einstein"
        # A's channel saw the kernel busy and idle for B's run (one status for everyone) ...
        await ka.idle(second)
        # ... but no frontend got the output itself (it would write it a second time)
        runs = (first, second)
        assert not [m for m in ka.seen + kb.seen
                    if m["msg_type"] == "stream" and m["parent_header"].get("msg_id") in runs]
        status = (await kernel_rest(svc.url, f"Bearer {marie.token}", file_id, method="GET")).json()
        assert status["state"] == "idle" and status["connections"] == 2 and status["startedBy"] == "Albert Einstein"
        # an operator sees the kernel and the runs on /metrics
        async with httpx.AsyncClient(timeout=10) as http:
            scraped = (await http.get(f"{svc.url}/metrics")).text
        assert re.search(r'^cs3collab_kernels\{state="idle"\} [1-9]', scraped, re.M), scraped[-2000:]
        runs_here = re.search(r'^cs3collab_kernel_executions_total\{site="cernbox.test"\} (\S+)', scraped, re.M)
        assert runs_here and float(runs_here.group(1)) >= 2


async def test_a_viewer_watches_and_runs_nothing(svc, einstein, richard, notebook):
    path = await notebook("secret = 'untouched'", "")
    await einstein.shares.create(path, user_grantee(richard.user.id), roles.VIEWER)
    file_id = await file_id_of(svc.url, einstein.token, path)
    async with connect(svc.url, einstein.token, path) as a, \
            kernel_channel(svc.url, f"Bearer {einstein.token}", file_id) as ka, \
            kernel_channel(svc.url, f"Bearer {richard.token}", file_id) as kr:
        run = await ka.execute("secret = 'untouched'", cell_id(a, 0))
        await ka.idle(run)
        refused = await kr.execute("secret = 'changed'; print('ran')", cell_id(a, 1))
        reply = await kr.reply(refused)
        assert reply["content"]["status"] == "error" and "only editors run code" in reply["content"]["evalue"]
        assert (await kr.wait(lambda m: m["msg_type"] == "error" and m["parent_header"].get("msg_id") == refused))
        for action in ("interrupt", "restart"):
            answer = await kernel_rest(svc.url, f"Bearer {richard.token}", file_id, action)
            assert answer.status_code == 403 and answer.json()["error"] == "forbidden"
        # the viewer still sees the editors' runs, and his code never ran
        check = await ka.execute("print(secret)", cell_id(a, 1))
        await kr.idle(check)
        await wait_for(a.doc, lambda: outputs_text(a, 1) == "untouched\n")
        assert "cs3collab" not in a.document.ycells[1]["metadata"] or \
            a.document.ycells[1]["metadata"]["cs3collab"]["execution"]["by"] == "Albert Einstein"
        assert svc.running.count("kernel request refused") >= 1


async def test_long_outputs_are_capped_with_a_visible_note(svc, einstein, notebook):
    path = await notebook("for i in range(50):\n    print('x' * 1000)")
    file_id = await file_id_of(svc.url, einstein.token, path)
    async with connect(svc.url, einstein.token, path) as a, \
            kernel_channel(svc.url, f"Bearer {einstein.token}", file_id) as ka:
        await ka.idle(await ka.execute("for i in range(50):\n    print('x' * 1000)", cell_id(a, 0)))
        await wait_for(a.doc, lambda: "output truncated" in outputs_text(a, 0))
        shown = outputs_text(a, 0)
        assert shown.count("x") <= 20_000 + 100 and "more than 20,000 characters" in shown
        # the next run is not affected
        await ka.idle(await ka.execute("print('short')", cell_id(a, 0)))
        await wait_for(a.doc, lambda: outputs_text(a, 0) == "short\n")


async def test_a_viewer_waiting_for_the_kernel_is_answered_once_an_editor_starts_it(svc, einstein, richard, notebook):
    path = await notebook("")
    await einstein.shares.create(path, user_grantee(richard.user.id), roles.VIEWER)
    file_id = await file_id_of(svc.url, einstein.token, path)
    async with kernel_channel(svc.url, f"Bearer {richard.token}", file_id) as kr:
        # what JupyterLab asks first: no kernel runs yet, and a viewer cannot start one
        question = await kr.send(kr.message("kernel_info_request", {}))
        assert (await kernel_rest(svc.url, f"Bearer {richard.token}", file_id)).status_code == 403
        assert (await kernel_rest(svc.url, f"Bearer {einstein.token}", file_id)).status_code == 200
        reply = await kr.reply(question)
        assert reply["msg_type"] == "kernel_info_reply" and reply["content"]["status"] == "ok"


async def test_input_is_asked_of_the_editor_who_ran_the_cell(svc, einstein, marie, notebook):
    path = await notebook("name = input('who? ')\nprint('hello', name)")
    await einstein.shares.create(path, user_grantee(marie.user.id), roles.EDITOR)
    file_id = await file_id_of(svc.url, einstein.token, path)
    async with connect(svc.url, einstein.token, path) as a, \
            kernel_channel(svc.url, f"Bearer {einstein.token}", file_id) as ka, \
            kernel_channel(svc.url, f"Bearer {marie.token}", file_id) as kb:
        message = kb.message("execute_request", {"code": "name = input('who? ')\nprint('hello', name)",
                                                 "silent": False, "store_history": True, "user_expressions": {},
                                                 "allow_stdin": True, "stop_on_error": True},
                             metadata={"cellId": cell_id(a, 0)})
        run = await kb.send(message)
        prompt = await kb.wait(lambda m: m["msg_type"] == "input_request")
        assert prompt["channel"] == "stdin" and prompt["content"]["prompt"] == "who? "
        answer = kb.message("input_reply", {"value": "Marie"}, channel="stdin")
        answer["parent_header"] = prompt["header"]
        await kb.send(answer)
        await kb.idle(run)
        await wait_for(a.doc, lambda: "hello Marie" in outputs_text(a, 0))
        assert not [m for m in ka.seen if m["msg_type"] == "input_request"]  # asked of her only
