"""A plain OCM receiver's browser opens our webapp ``uri`` and joins the room live.

What a Reva, CERNBox or Nextcloud receiver does (no JupyterLab): exchange the
share's code at A's ``tokenEndPoint``, then POST ``access_token`` to the
webapp ``uri`` in a browser (Debian's chromium through Playwright). The page
shows the notebook, joins A's room with that token, shows einstein's live
edit, and, as editor, its own edit reaches einstein; a viewer follows live
but cannot type; content of the notebook never runs; a revoked share ends
the view in words.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from html import escape

import pytest
import websockets
from playwright.async_api import async_playwright, expect

from cs3collab.cs3 import roles
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.service.rtc import sources, type_text
from tests.support.ocm_signing import exchange, site_key
from tests.support.yclient import connect, wait_for

TIMEOUT_MS = 60_000  # a loaded 2-core machine


async def exchanged_token(fed, code: str) -> str:
    answer = await exchange(fed.a.http_url, code, key=site_key(fed.b.data_dir))  # as site B signs
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


@pytest.fixture
async def browser(fed, tmp_path):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: these tests use Debian's chromium (./dev test installs it with apt)")
    async with async_playwright() as driver, contextlib.AsyncExitStack() as exits:
        context = await driver.chromium.launch_persistent_context(
            tmp_path / "profile", executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        exits.push_async_callback(context.close)
        yield context


async def open_webapp(context, fed, share):
    """The receiver's browser: a form POST of the exchanged token to the webapp uri."""
    uri = f"{fed.svc_a.url}/api/collaboration/ocm/{share.id.opaque_id}"
    token = await exchanged_token(fed, share.token)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    await page.set_content(f"<form method='post' action='{escape(uri)}'>"
                           f"<input type='hidden' name='access_token' value='{escape(token)}'></form>")
    async with page.expect_navigation():
        await page.evaluate("document.forms[0].submit()")
    await expect(page.locator("#notebook[data-state='live']")).to_be_attached(timeout=TIMEOUT_MS)
    return page, errors


async def test_an_editor_joins_live_from_the_webapp_page(fed, browser):
    path, _, share = await fed.share(roles.EDITOR, "x = 1", "y = 2")
    async with connect(fed.svc_a.url, fed.einstein.token, path) as einstein:
        page, errors = await open_webapp(browser, fed, share)
        cells = page.locator("textarea.source")
        await expect(cells).to_have_count(2)
        await expect(cells.nth(0)).to_have_value("x = 1")
        await expect(page.locator("#status")).to_have_text("Live: you can edit this notebook.")

        type_text(einstein, 0, "  # from Geneva")  # einstein's live edit arrives
        await expect(cells.nth(0)).to_have_value("x = 1  # from Geneva", timeout=TIMEOUT_MS)

        logged = len(fed.svc_a.running.output)
        await cells.nth(1).click()
        await cells.nth(1).press("End")
        await cells.nth(1).press_sequentially(" + 41")  # the receiver's edit reaches einstein
        try:
            await wait_for(einstein.doc, lambda: sources(einstein)[1] == "y = 2 + 41", timeout=60)
        except TimeoutError:  # what each side had (L9 and L12 lost the page's typing under load)
            raise AssertionError(f"einstein has {sources(einstein)!r}; the page shows "
                                 f"{await cells.nth(1).input_value()!r}, says "
                                 f"{await page.locator('#status').inner_text()!r}; page errors {errors!r}; "
                                 "service A logged meanwhile:\n" + "\n".join(fed.svc_a.running.output[logged:])
                                 ) from None
        assert sources(einstein)[0] == "x = 1  # from Geneva"

        await fed.einstein.ocm.remove_share(share.id.opaque_id)  # revoked: the view ends, in words
        await expect(page.locator("#notebook[data-state='closed']")).to_be_attached(timeout=TIMEOUT_MS)
        assert await cells.nth(1).get_attribute("readonly") is not None
        assert "Disconnected" not in await page.locator("#status").inner_text()
        assert errors == []


async def test_typing_on_the_page_keeps_its_place_while_others_edit(fed, browser):
    """A notebook from the room lands while the receiver types: the cursor
    stays in the cell, and the keys typed after it are not lost (L9, L12:
    each render moved every cell's row, which took the focus away)."""
    path, _, share = await fed.share(roles.EDITOR, "x = 1", "y = 2")
    async with connect(fed.svc_a.url, fed.einstein.token, path) as einstein:
        page, errors = await open_webapp(browser, fed, share)
        cells = page.locator("textarea.source")
        await expect(cells).to_have_count(2)
        await cells.nth(1).click()
        await cells.nth(1).press("End")
        await page.keyboard.type(" +")
        type_text(einstein, 0, "  # meanwhile")  # arrives while the page types
        await expect(cells.nth(0)).to_have_value("x = 1  # meanwhile", timeout=TIMEOUT_MS)
        await expect(cells.nth(1)).to_be_focused()
        await page.keyboard.type(" 41")  # where the person's cursor is
        await wait_for(einstein.doc, lambda: sources(einstein)[1] == "y = 2 + 41", timeout=60)
        assert await cells.nth(1).input_value() == "y = 2 + 41"
        assert errors == []


async def test_a_viewer_follows_live_and_nothing_of_the_notebook_runs(fed, browser):
    hostile = "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>"
    path, _, share = await fed.share(roles.VIEWER, hostile, "z = 3")
    async with connect(fed.svc_a.url, fed.einstein.token, path) as einstein:
        page, errors = await open_webapp(browser, fed, share)
        cells = page.locator("textarea.source")
        await expect(cells.nth(0)).to_have_value(hostile)  # shown as text
        await expect(page.locator("#status")).to_have_text("Live: you can view this notebook (viewer).")
        assert await page.locator("img, #cells script").count() == 0 and await page.title() != "pwned"

        type_text(einstein, 1, "  # live")
        await expect(cells.nth(1)).to_have_value("z = 3  # live", timeout=TIMEOUT_MS)
        await cells.nth(1).click()
        await cells.nth(1).press_sequentially("nope")  # a read-only textarea takes no typing
        await expect(cells.nth(1)).to_have_value("z = 3  # live")
        assert sources(einstein)[1] == "z = 3  # live"
        assert errors == []


async def test_the_live_socket_refuses_in_words(fed):
    """No token, a bad token, a bare secret, text that is not JSON: told, then closed."""
    _, _, share = await fed.share(roles.EDITOR, "x = 1")
    url = fed.svc_a.url.replace("http://", "ws://") + f"/api/collaboration/ocm/{share.id.opaque_id}/live"
    for first in ('{"type": "source", "cell": "c", "source": "x"}', '{"type": "auth", "token": "forged"}',
                  json.dumps({"type": "auth", "token": share.token}), "not json", "[1]"):
        async with websockets.connect(url) as ws:
            await ws.send(first)
            told = json.loads(await asyncio.wait_for(ws.recv(), 60))
            assert told["type"] == "error" and told["message"], told
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 60)
            assert ws.close_code not in (None, 1000, 1006), (first, ws.close_code)
    # a viewer's edit is refused in words and changes nothing
    path, _, viewer_share = await fed.share(roles.VIEWER, "v = 1")
    url = fed.svc_a.url.replace("http://", "ws://") + f"/api/collaboration/ocm/{viewer_share.id.opaque_id}/live"
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "auth", "token": await exchanged_token(fed, viewer_share.token)}))
        shown = json.loads(await asyncio.wait_for(ws.recv(), 60))
        assert shown["type"] == "notebook" and shown["writable"] is False and shown["role"] == "viewer"
        await ws.send(json.dumps({"type": "source", "cell": shown["cells"][0]["id"], "source": "v = 666", "n": 1}))
        told = json.loads(await asyncio.wait_for(ws.recv(), 60))
        assert told == {"type": "error", "message": "your role on this share does not allow editing (viewer)"}
        # done with (acked), so the page shows the room's text again rather than keep its own
        again = json.loads(await asyncio.wait_for(ws.recv(), 60))
        assert again["type"] == "notebook" and again["acked"] == 1 and again["cells"][0]["source"] == "v = 1"
    async with connect(fed.svc_a.url, fed.einstein.token, path) as einstein:
        assert sources(einstein) == ["v = 1"]


async def test_the_page_is_told_which_of_its_edits_are_in(fed):
    """Each notebook the page gets says the last of its edits applied (``acked``):
    a notebook rendered before an edit arrived must not overwrite that typing
    (the editor test above lost keystrokes that way on a loaded machine)."""
    path, _, share = await fed.share(roles.EDITOR, "w = 1")
    url = fed.svc_a.url.replace("http://", "ws://") + f"/api/collaboration/ocm/{share.id.opaque_id}/live"
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "auth", "token": await exchanged_token(fed, share.token)}))
        shown = json.loads(await asyncio.wait_for(ws.recv(), 60))
        assert shown["type"] == "notebook" and shown["acked"] == 0
        cell = shown["cells"][0]["id"]
        await ws.send(json.dumps({"type": "source", "cell": cell, "source": "w = 12", "n": 1}))
        await ws.send(json.dumps({"type": "source", "cell": cell, "source": "w = 123", "n": 2}))
        while True:  # told once both are in, with them (nobody else changed the room)
            shown = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if shown.get("acked") == 2:
                break
        assert shown["cells"][0]["source"] == "w = 123"
    async with connect(fed.svc_a.url, fed.einstein.token, path) as einstein:
        assert sources(einstein) == ["w = 123"]
