"""OCM between two devstack sites: real processes, our CS3 client.

Site A (``cernbox.test``) and site B (``cesnet.test``) start on free ports;
only then is the providers file both read written (they re-read it when it
changes), as a launcher does.
"""

from __future__ import annotations

import time
import uuid

import pytest
from cs3.identity.user.v1beta1 import resources_pb2 as identity
from cs3.sharing.ocm.v1beta1 import ocm_api_pb2 as ocm_api
from cs3.sharing.ocm.v1beta1 import resources_pb2 as ocm
from cs3.types.v1beta1 import types_pb2

from cs3collab.cs3 import CS3Client
from cs3collab.cs3.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from cs3collab.cs3.ocm import federated_user, webdav_secret
from cs3collab.cs3.roles import EDITOR, VIEWER, role_of
from tests.support.processes import trusting_sites

PASSWORDS = {"einstein": "relativity", "marie": "radioactivity", "richard": "superfluidity"}
NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


@pytest.fixture(scope="module")
async def sites(tmp_path_factory):
    async with trusting_sites(tmp_path_factory.mktemp("ocm")) as (a, b):
        async with CS3Client(a.gateway) as ca, CS3Client(b.gateway) as cb:
            yield ca, cb


@pytest.fixture
async def einstein(sites):
    return await sites[0].login("einstein", PASSWORDS["einstein"])


@pytest.fixture
async def marie_b(sites):
    return await sites[1].login("marie", PASSWORDS["marie"])


async def new_notebook(session, folder: bool = False):
    """A fresh notebook in einstein's home at A (inside a fresh folder if
    ``folder``); returns (notebook info, shared resource info)."""
    home = await session.get_home()
    base = f"{home}/ocm-{uuid.uuid4().hex[:8]}"
    path = f"{base}.ipynb"
    if folder:
        await session.files.mkdir(base)
        path = f"{base}/analysis.ipynb"
    await session.files.upload(path, NOTEBOOK)
    info = await session.files.stat(path)
    return info, (await session.files.stat(base) if folder else info)


async def received(marie, share_id: str):
    return [s for s in await marie.ocm.list_received() if s.remote_share_id == share_id]


async def test_editor_share_end_to_end(sites, einstein, marie_b):
    client_a, _ = sites
    nb, _ = await new_notebook(einstein)
    share = await einstein.ocm.create_share(nb.id, federated_user("marie", "cesnet.test"), EDITOR)
    assert share.grantee.user_id.type == identity.USER_TYPE_FEDERATED

    # B: pending, with a webdav protocol (uri + secret) and our webapp
    [rs] = await received(marie_b, share.id.opaque_id)
    assert rs.state == ocm.SHARE_STATE_PENDING and rs.name == nb.name
    uri, secret = webdav_secret(rs)
    assert uri.endswith(f"/remote.php/dav/ocm/{share.id.opaque_id}") and secret and secret not in uri
    [webapp] = [p.webapp_options for p in rs.protocols if p.HasField("webapp_options")]
    assert webapp.app_name == "cs3collab" and webapp.shared_secret == secret
    assert (rs.owner.idp, rs.owner.type) == ("cernbox.test", identity.USER_TYPE_FEDERATED)
    await marie_b.ocm.update_received(rs.id.opaque_id, state=ocm.SHARE_STATE_ACCEPTED)
    [rs] = await received(marie_b, share.id.opaque_id)
    assert rs.state == ocm.SHARE_STATE_ACCEPTED

    # A: the secret logs in as marie@cesnet.test, scoped to the notebook as editor
    fed = await client_a.ocm_login(share.id.opaque_id, secret)
    assert (fed.user.id.idp, fed.user.id.opaque_id, fed.user.id.type) == \
        ("cesnet.test", "marie", identity.USER_TYPE_FEDERATED)
    info = await fed.files.stat(nb.id)
    assert info.id == nb.id and role_of(info.permission_set) == EDITOR
    assert await fed.files.download(nb.id) == NOTEBOOK
    await fed.files.upload(nb.id, NOTEBOOK + b"\n")
    assert await einstein.files.download(nb.id) == NOTEBOOK + b"\n"
    home = await einstein.get_home()
    other, _ = await new_notebook(einstein)
    for ref in (home, other.id, other.path):
        with pytest.raises((PermissionDenied, NotFound)):
            await fed.files.stat(ref)
    with pytest.raises(PermissionDenied):  # outside the OCM scope's methods
        await fed.call("ListOCMShares", ocm_api.ListOCMSharesRequest())

    # removal at A: the live session fails on its next call; B drops the share
    await einstein.ocm.remove_share(share.id.opaque_id)
    with pytest.raises(Unauthenticated):
        await fed.files.stat(nb.id)
    with pytest.raises(Unauthenticated):
        await client_a.ocm_login(share.id.opaque_id, secret)
    assert await received(marie_b, share.id.opaque_id) == []


async def test_viewer_share_of_a_folder(sites, einstein, marie_b):
    client_a, _ = sites
    nb, folder = await new_notebook(einstein, folder=True)
    share = await einstein.ocm.create_share(folder.id, federated_user("marie", "cesnet.test"), VIEWER)
    [rs] = await received(marie_b, share.id.opaque_id)
    assert rs.shared_resource_type == ocm.SHARE_RESOURCE_TYPE_CONTAINER
    _, secret = webdav_secret(rs)
    fed = await client_a.ocm_login(share.id.opaque_id, secret)
    child = (folder.id, "./analysis.ipynb")
    info = await fed.files.stat(child)
    assert info.id == nb.id and role_of(info.permission_set) == VIEWER
    assert await fed.files.download(child) == NOTEBOOK
    assert [i.name for i in await fed.files.list(folder.id)] == ["analysis.ipynb"]
    with pytest.raises(PermissionDenied):
        await fed.files.upload(child, b"changed")
    with pytest.raises((PermissionDenied, NotFound)):
        await fed.files.stat(await einstein.get_home())
    assert await einstein.files.download(nb.id) == NOTEBOOK

    # the owner lets the share expire: the live session stops at once
    expired = ocm_api.UpdateOCMShareRequest.UpdateField(expiration=types_pb2.Timestamp(seconds=int(time.time()) - 1))
    await einstein.call("UpdateOCMShare", ocm_api.UpdateOCMShareRequest(
        ref=ocm.ShareReference(id=share.id), field=[expired]))
    with pytest.raises(Unauthenticated):
        await fed.files.download(child)


async def test_wrong_secret_and_share_by_token(sites, einstein, marie_b):
    client_a, _ = sites
    nb, _ = await new_notebook(einstein)
    share = await einstein.ocm.create_share(nb.id, federated_user("marie", "cesnet.test"), VIEWER)
    with pytest.raises(Unauthenticated):
        await client_a.ocm_login(share.id.opaque_id, "not-the-secret")
    [rs] = await received(marie_b, share.id.opaque_id)
    _, secret = webdav_secret(rs)
    with pytest.raises(Unauthenticated):
        await client_a.ocm_login("another-share-id", secret)
    # GetOCMShareByToken needs no login (unprotected, as in Reva)
    by_token = await client_a.get_ocm_share_by_token(secret)
    assert by_token.id == share.id and by_token.resource_id == nb.id
    with pytest.raises(NotFound):
        await client_a.get_ocm_share_by_token("nope")
    await einstein.ocm.remove_share(share.id.opaque_id)


async def test_refused_shares(sites, einstein):
    nb, _ = await new_notebook(einstein)
    with pytest.raises(InvalidArgument, match="shareWith not found: no user 'nobody' at cesnet.test"):
        await einstein.ocm.create_share(nb.id, federated_user("nobody", "cesnet.test"), VIEWER)
    # the client looks the provider up first (GetInfoByDomain), as Reva's OCS handler does
    with pytest.raises(NotFound, match="provider not trusted: unknown.test"):
        await einstein.ocm.create_share(nb.id, federated_user("marie", "unknown.test"), VIEWER)
    assert [s for s in await einstein.ocm.list_shares() if s.resource_id == nb.id] == []


async def test_role_change_reaches_a_live_session_and_site_b(sites, einstein, marie_b):
    client_a, _ = sites
    nb, _ = await new_notebook(einstein)
    share = await einstein.ocm.create_share(nb.id, federated_user("marie", "cesnet.test"), VIEWER)
    [rs] = await received(marie_b, share.id.opaque_id)
    _, secret = webdav_secret(rs)
    fed = await client_a.ocm_login(share.id.opaque_id, secret)
    with pytest.raises(PermissionDenied):
        await fed.files.upload(nb.id, b"not yet")

    updated = await einstein.ocm.update_share(share.id.opaque_id, EDITOR)
    assert updated.id == share.id and updated.token == share.token
    assert {m.WhichOneof("term") for m in updated.access_methods} == {"webdav_options", "webapp_options"}
    assert all(m.webdav_options.permissions.initiate_file_upload for m in updated.access_methods
               if m.HasField("webdav_options"))
    # the session logged in as a viewer is an editor from its next call on
    assert role_of((await fed.files.stat(nb.id)).permission_set) == EDITOR
    await fed.files.upload(nb.id, NOTEBOOK + b" ")
    assert await einstein.files.download(nb.id) == NOTEBOOK + b" "
    # B got the share again: its user sees write permission on the same received share
    [again] = await received(marie_b, share.id.opaque_id)
    assert again.id == rs.id
    dav = next(p.webdav_options for p in again.protocols if p.HasField("webdav_options"))
    webapp = next(p.webapp_options for p in again.protocols if p.HasField("webapp_options"))
    assert dav.permissions.permissions.initiate_file_upload and webapp.share_permissions.initiate_file_upload

    await einstein.ocm.update_share(share.id.opaque_id, VIEWER)
    assert role_of((await fed.files.stat(nb.id)).permission_set) == VIEWER
    with pytest.raises(PermissionDenied):
        await fed.files.upload(nb.id, b"no longer")
    [again] = await received(marie_b, share.id.opaque_id)
    dav = next(p.webdav_options for p in again.protocols if p.HasField("webdav_options"))
    assert not dav.permissions.permissions.initiate_file_upload
    await einstein.ocm.remove_share(share.id.opaque_id)


async def test_role_change_refusals(sites, einstein):
    client_a, _ = sites
    nb, _ = await new_notebook(einstein)
    share = await einstein.ocm.create_share(nb.id, federated_user("marie", "cesnet.test"), VIEWER, webapp=False)
    ref = ocm.ShareReference(id=share.id)
    richard = await client_a.login("richard", PASSWORDS["richard"])
    with pytest.raises(NotFound):  # not the owner's or creator's
        await richard.ocm.update_share(share.id.opaque_id, EDITOR)
    with pytest.raises(NotFound):
        await einstein.ocm.update_share("no-such-share", EDITOR)
    webapp = ocm.AccessMethod(webapp_options=ocm.WebappAccessMethod(app_name="cs3collab"))
    nothing = ocm.AccessMethod(webdav_options=ocm.WebDAVAccessMethod())
    for method, message in ((webapp, "no webapp_options access method"), (nothing, "neither read nor write")):
        with pytest.raises(InvalidArgument, match=message):
            await einstein.call("UpdateOCMShare", ocm_api.UpdateOCMShareRequest(
                ref=ref, field=[ocm_api.UpdateOCMShareRequest.UpdateField(access_methods=method)]))
    # a share without the webapp method is updated through its WebDAV method only
    updated = await einstein.ocm.update_share(share.id.opaque_id, EDITOR)
    assert [m.WhichOneof("term") for m in updated.access_methods] == ["webdav_options"]
    assert role_of(updated.access_methods[0].webdav_options.permissions) == EDITOR
    await einstein.ocm.remove_share(share.id.opaque_id)
