"""The kernel's CS3 authority: a session scoped to exactly the shared resource
(app password with a resourceinfo scope, or the OCM share), against real
devstack processes."""

from __future__ import annotations

import uuid

import pytest
from cs3.auth.provider.v1beta1 import resources_pb2 as auth_res

from cs3collab.cs3 import CS3Client, NotFound, PermissionDenied, Unauthenticated
from cs3collab.cs3.ocm import federated_user
from cs3collab.cs3.shares import user_grantee
from cs3collab.kernels.authority import resource_info_scope, scope_root, scoped_session
from tests.support.processes import trusting_sites

OUTSIDE = (NotFound, PermissionDenied)


async def shared_folder(einstein, marie, richard):
    """higgs-<id>/ in einstein's home with a notebook and data, shared with
    marie (editor) and richard (viewer); plus a private file beside it."""
    home = await einstein.get_home()
    folder = f"{home}/higgs-{uuid.uuid4().hex[:8]}"
    await einstein.files.mkdir(folder)
    await einstein.files.upload(f"{folder}/analysis.ipynb", b"{}")
    await einstein.files.upload(f"{folder}/events.csv", b"mass\n125.0\n")
    await einstein.files.upload(f"{home}/private-{uuid.uuid4().hex[:8]}.txt", b"secret")
    await einstein.shares.create(folder, user_grantee(marie.user.id), "editor")
    await einstein.shares.create(folder, user_grantee(richard.user.id), "viewer")
    return folder, await einstein.files.stat(f"{folder}/analysis.ipynb")


async def assert_reaches_only(scoped, folder_info, notebook, outside: list):
    names = sorted(i.name for i in await scoped.files.list(folder_info.id))
    assert names == ["analysis.ipynb", "events.csv"]
    assert await scoped.files.download((folder_info.id, "./events.csv")) == b"mass\n125.0\n"
    assert (await scoped.files.stat(notebook.id)).name == "analysis.ipynb"
    for ref in outside:
        with pytest.raises(OUTSIDE):
            await scoped.files.stat(ref)
        with pytest.raises(OUTSIDE + (Unauthenticated,)):
            await scoped.files.download(ref)


async def test_the_owners_kernel_reaches_only_the_shared_folder(client, einstein, marie, richard):
    folder, notebook = await shared_folder(einstein, marie, richard)
    home = await einstein.get_home()
    private = [i for i in await einstein.files.list(home) if i.name.startswith("private-")][0]
    await marie.files.upload(f"{await marie.get_home()}/marie-only.txt", b"hers")
    hers = await marie.files.stat(f"{await marie.get_home()}/marie-only.txt")
    scoped = await scoped_session(client, einstein, notebook.id)
    assert scoped.user.username == "einstein" and scoped.credentials.auth_type == "appauth"
    folder_info = await einstein.files.stat(folder)
    await assert_reaches_only(scoped, folder_info, notebook, [private.id, hers.id, f"{home}/{private.name}"])
    for ref in (home, (await einstein.files.stat(home)).id):
        with pytest.raises(OUTSIDE):
            await scoped.files.list(ref)
    # what the kernel writes lands in the shared folder, as a new version
    await scoped.files.upload((folder_info.id, "./events.csv"), b"mass\n126.0\n")
    assert len(await einstein.versions.list(f"{folder}/events.csv")) == 1
    # a scoped token cannot mint itself a wider one
    with pytest.raises((PermissionDenied, Unauthenticated)):
        await scoped.app_passwords.generate(resource_info_scope(await einstein.files.stat(home), auth_res.ROLE_EDITOR))


async def test_an_editor_with_a_share_derives_the_same_scope_never_her_own_reach(client, einstein, marie, richard):
    folder, notebook = await shared_folder(einstein, marie, richard)
    await marie.files.upload(f"{await marie.get_home()}/marie-notes.txt", b"hers")
    hers = await marie.files.stat(f"{await marie.get_home()}/marie-notes.txt")
    root = await scope_root(marie, notebook.id)
    assert root.is_folder and root.editor
    scoped = await scoped_session(client, marie, notebook.id)
    folder_info = await einstein.files.stat(folder)
    await assert_reaches_only(scoped, folder_info, notebook, [hers.id])
    # marie cannot mint an app password for what she cannot reach
    home = await einstein.get_home()
    with pytest.raises(OUTSIDE):
        await marie.app_passwords.generate(resource_info_scope(await einstein.files.stat(home), auth_res.ROLE_VIEWER))
    # a viewer's scope is read-only
    viewer = await scoped_session(client, richard, notebook.id)
    with pytest.raises(PermissionDenied):
        await viewer.files.upload((folder_info.id, "./events.csv"), b"no")


async def test_a_notebook_at_the_top_of_a_home_gets_only_itself(client, einstein):
    home = await einstein.get_home()
    path = f"{home}/alone-{uuid.uuid4().hex[:8]}.ipynb"
    await einstein.files.upload(path, b"{}")
    notebook = await einstein.files.stat(path)
    scoped = await scoped_session(client, einstein, notebook.id)
    assert (await scoped.files.stat(notebook.id)).name == notebook.name
    with pytest.raises(OUTSIDE):
        await scoped.files.list(home)


async def test_a_federated_editor_starts_with_the_authority_of_the_ocm_share(tmp_path):
    async with trusting_sites(tmp_path) as (a, b), CS3Client(a.gateway) as client:
        einstein = await client.login("einstein", "relativity")
        home = await einstein.get_home()
        await einstein.files.mkdir(f"{home}/higgs")
        await einstein.files.upload(f"{home}/higgs/analysis.ipynb", b"{}")
        await einstein.files.upload(f"{home}/higgs/events.csv", b"mass\n125.0\n")
        await einstein.files.upload(f"{home}/private.txt", b"secret")
        folder = await einstein.files.stat(f"{home}/higgs")
        notebook = await einstein.files.stat(f"{home}/higgs/analysis.ipynb")
        private = await einstein.files.stat(f"{home}/private.txt")
        share = await einstein.ocm.create_share(folder.id, federated_user("marie", b.domain), "editor")
        marie_at_a = await client.ocm_login(share.id.opaque_id, share.token)
        scoped = await scoped_session(client, marie_at_a, notebook.id)
        assert scoped.credentials.auth_type == "ocmshares"
        await assert_reaches_only(scoped, folder, notebook, [private.id])
        await scoped.files.upload((folder.id, "./result.txt"), b"fit")
        assert await einstein.files.download(f"{home}/higgs/result.txt") == b"fit"
        # revoking the share ends the kernel's authority too
        await einstein.ocm.remove_share(share.id.opaque_id)
        with pytest.raises((Unauthenticated, NotFound, PermissionDenied)):
            await scoped.files.stat(notebook.id)
