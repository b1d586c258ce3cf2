"""The kernel's workspace: the shared folder copied from CS3 and written back
with the scoped authority (real devstack, real sandboxed kernel)."""

from __future__ import annotations

import shutil

import pytest

from cs3collab.kernels.authority import scoped_session
from cs3collab.kernels.workspace import Workspace

from .sandboxed import start_kernel  # noqa: F401 - start_kernel is a fixture
from .test_authority import shared_folder

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed (./dev installs it)")


async def test_what_the_kernel_writes_lands_in_cs3_as_new_versions(client, einstein, marie, richard, start_kernel, tmp_path):
    folder, notebook = await shared_folder(einstein, marie, richard)
    await einstein.files.mkdir(f"{folder}/plots")
    await einstein.files.upload(f"{folder}/plots/old.txt", b"old")
    workspace = Workspace(await scoped_session(client, marie, notebook.id), notebook.id, tmp_path / "ws")
    await workspace.pull()
    assert sorted(p.relative_to(workspace.root).as_posix() for p in workspace.root.rglob("*")) == \
        ["events.csv", "plots", "plots/old.txt"]  # the notebook itself stays in the room
    assert await workspace.push() == []  # nothing changed, nothing written

    kernel = await start_kernel(workspace=workspace.root)
    ran = await kernel.run("n = len(open('events.csv').read().split()) - 1\n"
                           "open('events.csv', 'a').write('126.5\\n')\n"
                           "open('plots/fit.txt', 'w').write(f'{n} events')\nprint(n)")
    assert ran.error is None and ran.stdout.strip() == "1"
    assert await workspace.push() == ["events.csv", "plots/fit.txt"]
    assert workspace.skipped == {}
    assert await einstein.files.download(f"{folder}/plots/fit.txt") == b"1 events"
    assert await einstein.files.download(f"{folder}/events.csv") == b"mass\n125.0\n126.5\n"
    assert len(await einstein.versions.list(f"{folder}/events.csv")) == 1  # the pulled content is a version
    assert await workspace.push() == []


async def test_a_locked_or_meanwhile_changed_file_is_not_overwritten(client, einstein, marie, richard, tmp_path):
    folder, notebook = await shared_folder(einstein, marie, richard)
    await einstein.files.upload(f"{folder}/notes.txt", b"v1")
    workspace = Workspace(await scoped_session(client, einstein, notebook.id), notebook.id, tmp_path / "ws")
    await workspace.pull()
    await einstein.locks.set(f"{folder}/events.csv", lock_id="office-lock", app_name="Collabora", lifetime=600)
    await einstein.files.upload(f"{folder}/notes.txt", b"v2 from the web UI")
    await einstein.files.upload(f"{folder}/new.txt", b"made elsewhere")
    (workspace.root / "events.csv").write_text("overwritten by the kernel\n")
    (workspace.root / "notes.txt").write_text("kernel's notes")
    (workspace.root / "new.txt").write_text("kernel's new")
    (workspace.root / "mine.txt").write_text("only the kernel's")
    assert await workspace.push() == ["mine.txt"]
    assert workspace.skipped == {
        "events.csv": "not saved: the file is locked by Collabora",
        "notes.txt": "not saved: the file was changed in storage in the meantime",
        "new.txt": "not saved: someone else created this file in the meantime",
    }
    assert await einstein.files.download(f"{folder}/events.csv") == b"mass\n125.0\n"
    assert await einstein.files.download(f"{folder}/notes.txt") == b"v2 from the web UI"
    assert await einstein.files.download(f"{folder}/new.txt") == b"made elsewhere"
    await workspace.close()
    assert not workspace.root.exists()
