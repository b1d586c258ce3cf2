"""Unit tests of the devstack OCM modules without the gateway.

Two OCM sites run as real tornado HTTP servers on 127.0.0.1 (port 0), each
with its own devstack ``Store`` (the OCM tables live in it); the resource
lookup and the user directory of the devstack core are small fakes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass

import httpx
import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web
from cs3.auth.provider.v1beta1 import resources_pb2 as auth_res
from cs3.ocm.provider.v1beta1 import resources_pb2 as provider_res
from cs3.identity.user.v1beta1 import resources_pb2 as user_res
from cs3.sharing.ocm.v1beta1 import ocm_api_pb2 as ocm_api
from cs3.sharing.ocm.v1beta1 import resources_pb2 as ocm_res
from cs3.storage.provider.v1beta1 import resources_pb2 as sp_res
from cs3.types.v1beta1 import types_pb2

from cs3collab.devstack import errors
from cs3collab.devstack import ocm_model as m
from cs3collab.devstack.ocm_http import ocm_http_rules
from cs3collab.devstack.ocm_inbox import OCMInbox
from cs3collab.devstack.ocm_payload import validate_new_share, webdav_protocol_from_words
from cs3collab.devstack.ocm_peers import OCMSender, PeerSite, TrustedPeers, parse_peer_arg, providers_json
from cs3collab.devstack.ocm_service import OCMConfig, OCMShares, in_store
from cs3collab.devstack.ocm_store import SHARE_REMOVED, OCMStore, SentShare, check_share_scope, create_tables
from cs3collab.devstack.store import Store
from cs3collab.devstack.tokens import Identity

STATE_ACCEPTED = ocm_res.SHARE_STATE_ACCEPTED


# ---------------------------------------------------------------- fakes


def make_user(name: str, domain: str, display: str = "") -> user_res.User:
    return user_res.User(id=user_res.UserId(idp=domain, opaque_id=f"{name}-id", type=user_res.USER_TYPE_PRIMARY),
                         username=name, display_name=display or name.title())


class FakeUsers:
    accounts: list = []  # no homes for the Store to create

    def __init__(self, domain: str, *users: user_res.User) -> None:
        self.domain = domain
        self.by_name = {u.username: u for u in users}

    def get_by_username(self, username: str) -> user_res.User:
        if username not in self.by_name:
            raise errors.NotFound(username)
        return self.by_name[username]

    def get(self, user_id: user_res.UserId) -> user_res.User:
        for u in self.by_name.values():
            if u.id.opaque_id == user_id.opaque_id:
                return u
        raise errors.NotFound(user_id.opaque_id)


class FakeResources:
    """Resources owned by one user; others see them only if listed in ``readers``."""

    def __init__(self) -> None:
        self.items: dict[str, tuple[sp_res.ResourceInfo, set[str]]] = {}

    def add(self, opaque: str, owner: user_res.User, path: str, *, folder: bool = False,
            readers: tuple[str, ...] = ()) -> sp_res.ResourceId:
        rid = sp_res.ResourceId(storage_id="st", space_id="sp", opaque_id=opaque)
        info = sp_res.ResourceInfo(
            id=rid, owner=owner.id, path=path, name=path.rsplit("/", 1)[-1],
            type=sp_res.RESOURCE_TYPE_CONTAINER if folder else sp_res.RESOURCE_TYPE_FILE)
        self.items[opaque] = (info, set(readers))
        return rid

    async def stat_by_id(self, resource_id, caller):
        entry = self.items.get(resource_id.opaque_id)
        if entry is None:
            raise errors.NotFound("resource not found")
        info, readers = entry
        out = sp_res.ResourceInfo()
        out.CopyFrom(info)
        if caller.id.opaque_id == info.owner.opaque_id:
            out.permission_set.CopyFrom(sp_res.ResourcePermissions(
                **{f.name: True for f in sp_res.ResourcePermissions.DESCRIPTOR.fields}))
        elif caller.username in readers:
            out.permission_set.CopyFrom(m.permissions_for_role(m.ROLE_VIEWER))
        else:
            raise errors.NotFound("resource not found")
        return out


@dataclass
class Site:
    domain: str
    url: str
    shares: OCMShares
    inbox: OCMInbox
    peers: TrustedPeers
    store: Store
    users: FakeUsers
    resources: FakeResources
    server: tornado.httpserver.HTTPServer


def _bind():
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    return sockets, sockets[0].getsockname()[1]


async def _start_site(tmp_path, domain, sockets, port, peers, users) -> Site:
    url = f"http://127.0.0.1:{port}"
    resources = FakeResources()
    store = Store(tmp_path / domain, users)
    await store.open()
    await store.run(lambda tree: create_tables(tree.conn))
    config = OCMConfig(domain, lambda: url)
    sender = OCMSender(peers)
    shares = OCMShares(config, store, peers, resources, sender)
    inbox = OCMInbox(config, store, peers, users, sender)
    server = tornado.httpserver.HTTPServer(tornado.web.Application(ocm_http_rules(config, inbox)))
    server.add_sockets(sockets)
    return Site(domain, url, shares, inbox, peers, store, users, resources, server)


@pytest.fixture
async def sites(tmp_path):
    """Site A (a.test: einstein) and site B (b.test: marie), trusting each other."""
    sa, pa = _bind()
    sb, pb = _bind()
    peers_a = TrustedPeers([parse_peer_arg(f"b.test=http://127.0.0.1:{pb}")])
    peers_b = TrustedPeers([parse_peer_arg(f"a.test=http://127.0.0.1:{pa}")])
    a = await _start_site(tmp_path, "a.test", sa, pa, peers_a, FakeUsers("a.test", make_user("einstein", "a.test")))
    b = await _start_site(tmp_path, "b.test", sb, pb, peers_b,
                          FakeUsers("b.test", make_user("marie", "b.test", "Marie Curie")))
    yield a, b
    for s in (a, b):
        s.server.stop()
        await s.shares.sender.aclose()
        await s.store.close()


def remote_grantee(opaque: str = "marie", domain: str = "b.test") -> sp_res.Grantee:
    return sp_res.Grantee(type=sp_res.GRANTEE_TYPE_USER,
                          user_id=user_res.UserId(idp=domain, opaque_id=opaque, type=user_res.USER_TYPE_FEDERATED))


def mesh(domain: str = "b.test") -> provider_res.ProviderInfo:
    """The provider as GetInfoByDomain describes it: Reva 3.x's CreateOCMShare needs its OCM service."""
    return provider_res.ProviderInfo(domain=domain, services=[provider_res.Service(
        endpoint=provider_res.ServiceEndpoint(type=provider_res.ServiceType(name="OCM"),
                                              path=f"https://{domain}/ocm/"))])


async def share_notebook(a: Site, role: str = m.ROLE_EDITOR, opaque: str = "nb1", expiration: int = 0,
                         grantee: sp_res.Grantee | None = None):
    einstein = a.users.by_name["einstein"]
    if opaque not in a.resources.items:
        a.resources.add(opaque, einstein, "/home/analysis.ipynb")
    req = ocm_api.CreateOCMShareRequest(
        resource_id=sp_res.ResourceId(storage_id="st", space_id="sp", opaque_id=opaque),
        grantee=grantee or remote_grantee(),
        recipient_mesh_provider=mesh((grantee or remote_grantee()).user_id.idp),
        access_methods=m.access_methods_for_role(role))
    if expiration:
        req.expiration.CopyFrom(types_pb2.Timestamp(seconds=expiration))
    return await a.shares.create(req, einstein)


async def scope_active(site: Site, share_id: str) -> bool:
    try:
        await site.store.run(lambda tree: check_share_scope(tree.conn, share_id))
    except errors.Unauthenticated:
        return False
    return True


def valid_body(**over) -> dict:
    body = {
        "shareWith": "marie@b.test", "name": "analysis.ipynb", "providerId": "p-1",
        "owner": "einstein-id@a.test", "sender": "einstein-id@a.test",
        "ownerDisplayName": "Einstein", "senderDisplayName": "Einstein",
        "shareType": "user", "resourceType": "file",
        "protocol": {"name": "multi", "webdav": {
            "sharedSecret": "s3cr3t", "permissions": ["read", "write"],
            "uri": "http://127.0.0.1:1/remote.php/dav/ocm/p-1"}},
    }
    body.update(over)
    return body


# ---------------------------------------------------------------- pure helpers


def test_ocm_addresses():
    assert m.parse_ocm_address("marie@b.test") == ("marie", "b.test")
    assert m.parse_ocm_address("a@b@https://Cloud.Example:8443/") == ("a@b", "cloud.example:8443")
    assert m.parse_ocm_address("marie@b.test@b.test") == ("marie", "b.test")
    for bad in ("marie", "@b.test", "marie@", 3):
        with pytest.raises(ValueError):
            m.parse_ocm_address(bad)
    uid = m.federated_user_id("marie", "https://b.test")
    assert (uid.idp, uid.type) == ("b.test", user_res.USER_TYPE_FEDERATED)
    assert m.format_ocm_address(uid) == "marie@b.test"


def test_roles_follow_reva_get_role():
    assert m.role_of_access_methods(m.access_methods_for_role(m.ROLE_EDITOR)) == m.ROLE_EDITOR
    assert m.role_of_access_methods(m.access_methods_for_role(m.ROLE_VIEWER)) == m.ROLE_VIEWER
    empty = [ocm_res.AccessMethod(webdav_options=ocm_res.WebDAVAccessMethod())]
    assert m.role_of_access_methods(empty) is None
    webapp_view = [ocm_res.AccessMethod(webapp_options=ocm_res.WebappAccessMethod(
        permissions=sp_res.ResourcePermissions(stat=True)))]
    assert m.role_of_access_methods(webapp_view) == m.ROLE_VIEWER
    assert m.ocm_scope_allows("viewer", "InitiateFileDownload")
    assert not m.ocm_scope_allows("viewer", "InitiateFileUpload")
    assert m.ocm_scope_allows(auth_res.ROLE_EDITOR, "SetLock")
    assert not m.ocm_scope_allows("editor", "CreateOCMShare")
    assert not m.ocm_scope_allows(auth_res.ROLE_EDITOR, "FindUsers")


def test_trusted_peers_args_and_reva_providers_file(tmp_path):
    peers = TrustedPeers([parse_peer_arg("B.test=http://127.0.0.1:9/"), parse_peer_arg("c.test=https://c.example")])
    assert peers.domains == ["b.test", "c.test"]
    assert peers.get("https://b.test").base_url == "http://127.0.0.1:9"
    for bad in ("b.test", "=http://x", "b.test=ftp://x"):
        with pytest.raises(ValueError):
            parse_peer_arg(bad)
    f = tmp_path / "ocm-providers.json"
    loaded = TrustedPeers(providers_file=f)
    assert loaded.domains == []  # the file does not exist yet
    f.write_text(json.dumps(providers_json([peers.get("b.test"), peers.get("c.test")]) + [
        {"domain": "nocm.test", "services": [{"endpoint": {"type": {"name": "Webdav"}, "path": "http://x/"}}]}]))
    assert loaded.domains == ["b.test", "c.test"]
    assert loaded.get("b.test").ocm_endpoint == "http://127.0.0.1:9/ocm"
    # a change of the file is seen on the next use; a broken file keeps what was read
    f.write_text(json.dumps(providers_json([PeerSite("d.test", "http://127.0.0.1:10")])))
    assert loaded.domains == ["d.test"]
    f.write_text("[{not json")
    assert loaded.domains == ["d.test"]
    f.unlink()
    assert loaded.domains == []


def test_validate_new_share_accepts_spec_forms():
    s = validate_new_share(valid_body(expiration=2_000_000_000))
    assert s.share_with == ("marie", "b.test") and s.sender == ("einstein-id", "a.test")
    assert s.webdav.permissions == ["read", "write"] and s.expiration == 2_000_000_000
    legacy = validate_new_share(valid_body(protocol={"name": "webdav", "options": {"sharedSecret": "x"}}))
    assert legacy.legacy and legacy.webdav.uri == "" and legacy.webdav.shared_secret == "x"
    # the OCM 1.2+ webapp form that Reva 3.12 sends (#5664)
    app = validate_new_share(valid_body(protocol={"name": "multi", "webapp": {
        "uri": "https://a.test/app/ocm/p-1", "permissions": ["read", "write"], "sharedSecret": "y",
        "requirements": ["must-exchange-token"], "targets": ["blank"], "appName": "cs3collab"}}))
    assert app.webdav is None and app.webapp.view_mode == "write" and app.webapp.app_name == "cs3collab"
    assert app.webapp.requirements == ["must-exchange-token"] and app.webapp.targets == ["blank"]
    dav = validate_new_share(valid_body(protocol={"name": "multi", "webdav": {
        "sharedSecret": "s", "permissions": ["read"], "requirements": ["must-exchange-token"]}}))
    assert dav.webdav.requirements == ["must-exchange-token"]


WEBAPP = {"uri": "https://a.test/x/p-1", "permissions": ["read"], "sharedSecret": "y",
          "requirements": ["must-exchange-token"], "targets": ["blank"]}


@pytest.mark.parametrize("body, error, field", [
    ([], errors.InvalidArgument, None),
    ({k: v for k, v in valid_body().items() if k != "providerId"}, errors.InvalidArgument, "providerId"),
    (valid_body(shareWith="marie"), errors.InvalidArgument, "shareWith"),
    (valid_body(sender=""), errors.InvalidArgument, "sender"),
    (valid_body(shareType="robot"), errors.InvalidArgument, "shareType"),
    (valid_body(shareType="group"), errors.Unimplemented, None),
    (valid_body(resourceType="calendar"), errors.Unimplemented, None),
    (valid_body(expiration="soon"), errors.InvalidArgument, "expiration"),
    (valid_body(expiration=True), errors.InvalidArgument, "expiration"),
    (valid_body(protocol="webdav"), errors.InvalidArgument, "protocol"),
    (valid_body(protocol={"name": "multi"}), errors.InvalidArgument, "protocol"),
    (valid_body(protocol={"name": "multi", "webdav": {"permissions": ["read"], "uri": "/x"}}),
     errors.InvalidArgument, "protocol.webdav.sharedSecret"),
    (valid_body(protocol={"name": "multi", "webdav": {"sharedSecret": "s", "permissions": ["fly"]}}),
     errors.InvalidArgument, "protocol.webdav.permissions"),
    (valid_body(protocol={"name": "multi", "webdav": {"sharedSecret": "s", "permissions": ["read"],
                                                      "requirements": ["mfa-enforced"]}}),
     errors.InvalidArgument, "protocol.webdav.requirements"),
    (valid_body(protocol={"name": "multi", "webdav": {"sharedSecret": "s", "permissions": ["read"],
                                                      "uri": "ftp://x/y"}}),
     errors.InvalidArgument, "protocol.webdav.uri"),
    # Reva 3.12 refuses the OCM 1.1 webapp form, and a webapp without code-flow exchange
    (valid_body(protocol={"name": "multi", "webapp": {"uriTemplate": "https://a.test/app/ocm/p-1",
                                                      "viewMode": "read", "sharedSecret": "y"}}),
     errors.InvalidArgument, "protocol.webapp.uri"),
    (valid_body(protocol={"name": "multi", "webapp": {**WEBAPP, "uri": "/relative"}}),
     errors.InvalidArgument, "protocol.webapp.uri"),
    (valid_body(protocol={"name": "multi", "webapp": {**WEBAPP, "requirements": []}}),
     errors.InvalidArgument, "protocol.webapp.requirements"),
    (valid_body(protocol={"name": "multi", "webapp": {**WEBAPP, "requirements": ["must-use-mfa"]}}),
     errors.InvalidArgument, "protocol.webapp.requirements"),
    (valid_body(protocol={"name": "multi", "webapp": {**WEBAPP, "targets": ["window"]}}),
     errors.InvalidArgument, "protocol.webapp.targets"),
    (valid_body(protocol={"name": "multi", "webapp": {**WEBAPP, "permissions": []}}),
     errors.InvalidArgument, "protocol.webapp.permissions"),
    (valid_body(protocol={"name": "datatx"}), errors.Unimplemented, None),
])
def test_validate_new_share_refusals(body, error, field):
    with pytest.raises(error) as err:
        validate_new_share(body)
    assert type(err.value) is error
    if field:
        assert err.value.details[0]["name"] == field


# ---------------------------------------------------------------- store


def _sent(share_id: str, token: str, rid, owner, grantee) -> SentShare:
    share = ocm_res.Share(id=ocm_res.ShareId(opaque_id=share_id), token=token, resource_id=rid, owner=owner,
                          creator=owner, grantee=sp_res.Grantee(type=sp_res.GRANTEE_TYPE_USER, user_id=grantee),
                          access_methods=m.access_methods_for_role("viewer"))
    return SentShare(share, "viewer", "b.test", recipient_display_name="Marie")


def test_store_sent_shares_roundtrip_and_soft_delete(tmp_path):
    conn = sqlite3.connect(tmp_path / "x.sqlite", isolation_level=None)
    create_tables(conn)
    store = OCMStore(conn)
    owner = make_user("einstein", "a.test").id
    rid = sp_res.ResourceId(storage_id="st", space_id="sp", opaque_id="nb")
    grantee = m.federated_user_id("marie", "b.test")
    first = store.insert_sent(_sent("s1", "tok", rid, owner, grantee))
    with pytest.raises(errors.AlreadyExists):  # same (owner, resource, grantee)
        store.insert_sent(_sent("s2", "tok2", rid, owner, grantee))
    got = store.get_sent_by_token("tok")
    assert got.id == "s1" and got.share == first.share and got.recipient_display_name == "Marie"
    assert store.get_sent_by_key(owner, rid, grantee).id == "s1"
    assert [r.id for r in store.list_sent_for_user(owner)] == ["s1"]
    check_share_scope(conn, "s1")
    assert store.remove_sent("s1") and not store.remove_sent("s1")
    assert store.get_sent_by_token("tok") is None and store.get_sent("s1") is None
    assert store.get_sent("s1", include_removed=True).state == SHARE_REMOVED
    assert store.list_sent_for_user(owner) == []
    with pytest.raises(errors.Unauthenticated):
        check_share_scope(conn, "s1")
    # after removal the same grant can be made again, with a new secret
    store.insert_sent(_sent("s3", "tok3", rid, owner, grantee))
    assert store.update_sent_expiration("s3", int(time.time()) - 1)
    with pytest.raises(errors.Unauthenticated):  # expired
        check_share_scope(conn, "s3")
    conn.close()
    reopened = OCMStore(sqlite3.connect(tmp_path / "x.sqlite"))
    assert reopened.get_sent("s3").secret == "tok3"


def test_store_received_shares_dedupe_and_state():
    conn = sqlite3.connect(":memory:", isolation_level=None)
    create_tables(conn)
    store = OCMStore(conn)
    marie = make_user("marie", "b.test")

    def received(secret):
        return ocm_res.ReceivedShare(
            name="nb", remote_share_id="p-1", state=ocm_res.SHARE_STATE_PENDING,
            grantee=sp_res.Grantee(type=sp_res.GRANTEE_TYPE_USER, user_id=marie.id),
            protocols=[webdav_protocol_from_words("http://a/x", secret, ["read"])])

    first = store.upsert_received(received("one"), "A.test")
    store.set_received_state(first, STATE_ACCEPTED)
    second = store.upsert_received(received("two"), "a.test")
    assert second.id == first.id and second.share.state == STATE_ACCEPTED
    [rec] = store.list_received(marie.id)
    assert rec.secrets() == ["two"] and rec.sender_domain == "a.test"
    assert store.get_received(first.id, make_user("other", "b.test").id) is None
    assert store.delete_received(first.id) and store.list_received(marie.id) == []


# ---------------------------------------------------------------- HTTP


async def test_discovery_endpoints(sites):
    a, _ = sites
    async with httpx.AsyncClient() as http:
        r = await http.get(a.url + "/.well-known/ocm")
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
        doc = r.json()
        assert doc["enabled"] is True and doc["endPoint"] == a.url + "/ocm" and doc["apiVersion"] == "1.3.0"
        file_rt = next(rt for rt in doc["resourceTypes"] if rt["name"] == "file")
        assert file_rt["shareTypes"] == ["user"] and file_rt["protocols"]["webdav"] == "/remote.php/dav/ocm/"
        assert file_rt["protocols"]["webapp-receive"] == {"targets": ["blank"]}
        assert "exchange-token" in doc["capabilities"] and doc["tokenEndPoint"] == a.url + "/ocm/token"
        # Reva 3.x serves discovery at /.well-known/ocm only
        assert (await http.get(a.url + "/ocm-provider")).status_code == 404


async def test_post_shares_validation_and_trust(sites):
    a, b = sites
    url = b.url + "/ocm/shares"
    async with httpx.AsyncClient() as http:
        r = await http.post(url, content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json()["code"] == "INVALID_PARAMETER"
        r = await http.post(url, content=json.dumps(valid_body()), headers={"Content-Type": "text/plain"})
        assert r.status_code == 400
        r = await http.post(url, json=valid_body(shareWith="nobody@b.test"))
        assert r.status_code == 400
        assert r.json()["validationErrors"] == [{"name": "shareWith", "message": "NOT_FOUND"}]
        r = await http.post(url, json=valid_body(shareWith="marie@elsewhere.test"))
        assert r.status_code == 400
        r = await http.post(url, json=valid_body(sender="mallory@evil.test", owner="mallory@evil.test"))
        assert r.status_code == 401 and r.json()["code"] == "UNAUTHENTICATED"
        r = await http.post(url, json=valid_body(owner="mallory@evil.test"))
        assert r.status_code == 403 and r.json()["code"] == "UNTRUSTED_SERVICE"
        r = await http.post(url, json=valid_body(shareType="federation"))
        assert r.status_code == 501 and r.json()["code"] == "FUNCTION_NOT_IMPLEMENTED"
        r = await http.post(url, json=valid_body())
        assert r.status_code == 201 and r.json() == {"recipientDisplayName": "Marie Curie"}
        r = await http.post(url, json=valid_body(shareWith="marie-id@b.test", providerId="p-by-id"))
        assert r.status_code == 201  # the recipient by opaque id, as Reva's GetUser
        r = await http.get(url)
        assert r.status_code == 405
    marie = b.users.by_name["marie"]
    [rs, _] = await b.inbox.list_received([], marie)
    assert rs.state == ocm_res.SHARE_STATE_PENDING and rs.remote_share_id == "p-1"
    assert (rs.creator.idp, rs.creator.opaque_id, rs.creator.type) == ("a.test", "einstein-id",
                                                                      user_res.USER_TYPE_FEDERATED)
    dav = rs.protocols[0].webdav_options
    assert dav.shared_secret == "s3cr3t" and dav.permissions.permissions.initiate_file_upload


async def test_post_shares_relative_and_legacy_uri_resolved_by_discovery(sites):
    a, b = sites
    async with httpx.AsyncClient() as http:
        r = await http.post(b.url + "/ocm/shares", json=valid_body(protocol={
            "name": "multi", "webdav": {"sharedSecret": "s", "permissions": ["read"], "uri": "p-1"}}))
        assert r.status_code == 201
        r = await http.post(b.url + "/ocm/shares", json=valid_body(
            providerId="p-2", protocol={"name": "webdav", "options": {"sharedSecret": "legacy"}}))
        assert r.status_code == 201
    marie = b.users.by_name["marie"]
    shares = await b.inbox.list_received([], marie)
    uris = {s.remote_share_id: s.protocols[0].webdav_options.uri for s in shares}
    assert uris == {"p-1": a.url + "/remote.php/dav/ocm/p-1", "p-2": a.url + "/remote.php/dav/ocm/"}


# ---------------------------------------------------------------- two sites, service calls


async def test_create_share_end_to_end(sites):
    a, b = sites
    share, display = await share_notebook(a, m.ROLE_EDITOR)
    assert display == "Marie Curie"
    assert share.name == "analysis.ipynb" and share.token and share.id.opaque_id
    assert share.grantee.user_id.type == user_res.USER_TYPE_FEDERATED
    assert share.creator.opaque_id == "einstein-id"

    marie = b.users.by_name["marie"]
    [rs] = await b.inbox.list_received([], marie)
    dav = rs.protocols[0].webdav_options
    assert dav.shared_secret == share.token
    assert dav.uri == f"{a.url}/remote.php/dav/ocm/{share.id.opaque_id}"
    assert share.token not in dav.uri
    assert rs.remote_share_id == share.id.opaque_id and rs.name == "analysis.ipynb"
    assert rs.owner.idp == "a.test" and rs.owner.type == user_res.USER_TYPE_FEDERATED
    webapp = rs.protocols[1].webapp_options
    assert webapp.uri == f"{a.url}/app/ocm/{share.id.opaque_id}" and webapp.app_name == "cs3collab"
    assert webapp.share_permissions.initiate_file_upload

    # accept it
    await b.inbox.update_received(ocm_res.ReceivedShare(id=rs.id, state=STATE_ACCEPTED), ["state"], marie)
    got = await b.inbox.get_received(ocm_res.ShareReference(id=rs.id), marie)
    assert got.state == STATE_ACCEPTED
    with pytest.raises(errors.NotFound):
        await b.inbox.get_received(ocm_res.ShareReference(id=rs.id), make_user("eve", "b.test"))
    with pytest.raises(errors.Unimplemented):
        await b.inbox.update_received(rs, ["name"], marie)

    # the secret authenticates at A as marie@b.test, scoped to the notebook as editor
    user, scopes = await a.shares.authenticate(share.id.opaque_id, dav.shared_secret)
    assert (user.id.idp, user.id.opaque_id, user.id.type) == ("b.test", "marie", user_res.USER_TYPE_FEDERATED)
    assert user.display_name == "Marie Curie" and user.opaque.map["ocm-share-role"].value == b"editor"
    [(name, scope)] = scopes.items()
    assert name == f"ocmshare:{share.id.opaque_id}" and scope.role == auth_res.ROLE_EDITOR
    assert share.token.encode() not in scope.resource.value
    assert Identity(user=user, scopes=scopes).restricted_roots() == [("nb1", auth_res.ROLE_EDITOR)]
    assert await scope_active(a, share.id.opaque_id)
    user2, _ = await a.shares.authenticate("", dav.shared_secret)  # OCM 1.0 Basic auth: no share id
    assert user2.id == user.id

    # owner's views
    einstein = a.users.by_name["einstein"]
    assert [s.id.opaque_id for s in await a.shares.list_shares([], einstein)] == [share.id.opaque_id]
    F = ocm_api.ListOCMSharesRequest.Filter
    other_rid = sp_res.ResourceId(storage_id="st", space_id="sp", opaque_id="zzz")
    assert await a.shares.list_shares([F(type=F.TYPE_RESOURCE_ID, resource_id=other_rid)], einstein) == []
    assert await a.shares.get(ocm_res.ShareReference(id=share.id), einstein) == share
    stranger = make_user("bob", "a.test")
    with pytest.raises(errors.NotFound):
        await a.shares.get(ocm_res.ShareReference(id=share.id), stranger)
    assert (await a.shares.get_by_token(share.token)).id == share.id

    # sharing the same thing twice
    with pytest.raises(errors.AlreadyExists):
        await share_notebook(a, m.ROLE_EDITOR)

    # removal: the secret stops working at once; B is notified and drops the share
    with pytest.raises(errors.NotFound):
        await a.shares.remove(ocm_res.ShareReference(id=share.id), stranger)
    await a.shares.remove(ocm_res.ShareReference(id=share.id), einstein)
    with pytest.raises(errors.NotFound):
        await a.shares.authenticate(share.id.opaque_id, share.token)
    with pytest.raises(errors.NotFound):
        await a.shares.get_by_token(share.token)
    assert not await scope_active(a, share.id.opaque_id)
    assert await b.inbox.list_received([], marie) == []  # the notification is awaited by remove


async def test_secret_checks(sites):
    a, _ = sites
    share, _ = await share_notebook(a, m.ROLE_VIEWER)

    async def refused(client_id, secret):
        with pytest.raises(errors.DevstackError) as err:
            await a.shares.authenticate(client_id, secret)
        return type(err.value)

    assert await refused(share.id.opaque_id, "wrong-secret") is errors.NotFound
    assert await refused(share.id.opaque_id, "") is errors.PermissionDenied
    assert await refused("another-share-id", share.token) is errors.PermissionDenied
    # client id = the token itself is accepted too
    _, scopes = await a.shares.authenticate(share.token, share.token)
    assert [s.role for s in scopes.values()] == [auth_res.ROLE_VIEWER]

    # expired: refused by the auth, by GetOCMShareByToken and by the scope check
    await in_store(a.store, OCMStore.update_sent_expiration, share.id.opaque_id, int(time.time()) - 5)
    assert await refused(share.id.opaque_id, share.token) is errors.PermissionDenied
    with pytest.raises(errors.PermissionDenied):
        await a.shares.get_by_token(share.token)
    assert not await scope_active(a, share.id.opaque_id)


async def test_create_share_refusals(sites):
    a, b = sites
    einstein = a.users.by_name["einstein"]
    a.resources.add("nb1", einstein, "/home/analysis.ipynb")

    async def refused(req, caller=einstein):
        with pytest.raises(errors.DevstackError) as err:
            await a.shares.create(req, caller)
        return type(err.value)

    rid = sp_res.ResourceId(storage_id="st", space_id="sp", opaque_id="nb1")
    methods = m.access_methods_for_role("viewer")
    def R(**kw):
        domain = kw["grantee"].user_id.idp if "grantee" in kw else "b.test"
        return ocm_api.CreateOCMShareRequest(recipient_mesh_provider=mesh(domain), **kw)

    # Reva 3.x: a provider named by its domain only (no OCM service entry) is refused
    bare = ocm_api.CreateOCMShareRequest(resource_id=rid, grantee=remote_grantee(), access_methods=methods,
                                         recipient_mesh_provider=provider_res.ProviderInfo(domain="b.test"))
    with pytest.raises(errors.InvalidArgument, match="does not have an OCM endpoint"):
        await a.shares.create(bare, einstein)
    assert await refused(R(grantee=remote_grantee(), access_methods=methods)) is errors.InvalidArgument
    assert await refused(R(resource_id=rid, access_methods=methods)) is errors.InvalidArgument
    assert await refused(R(resource_id=rid, grantee=remote_grantee(domain="evil.test"), access_methods=methods)
                         ) is errors.InvalidArgument
    assert await refused(R(resource_id=rid, grantee=remote_grantee(domain="a.test"), access_methods=methods)
                         ) is errors.InvalidArgument
    none = [ocm_res.AccessMethod(webdav_options=ocm_res.WebDAVAccessMethod())]
    assert await refused(R(resource_id=rid, grantee=remote_grantee(), access_methods=none)
                         ) is errors.InvalidArgument
    past = R(resource_id=rid, grantee=remote_grantee(), access_methods=methods,
             expiration=types_pb2.Timestamp(seconds=int(time.time()) - 10))
    assert await refused(past) is errors.InvalidArgument
    missing = R(resource_id=sp_res.ResourceId(opaque_id="nope"), grantee=remote_grantee(), access_methods=methods)
    assert await refused(missing) is errors.NotFound
    # a reader without add_grant cannot share; a stranger sees nothing
    a.resources.add("nb2", einstein, "/home/other.ipynb", readers=("bob",))
    bob = make_user("bob", "a.test")
    rid2 = sp_res.ResourceId(storage_id="st", space_id="sp", opaque_id="nb2")
    assert await refused(R(resource_id=rid2, grantee=remote_grantee(), access_methods=methods), bob
                         ) is errors.PermissionDenied
    assert await refused(R(resource_id=rid, grantee=remote_grantee(), access_methods=methods), bob
                         ) is errors.NotFound
    fed = user_res.User(id=m.federated_user_id("marie", "b.test"), username="marie@b.test")
    assert await refused(R(resource_id=rid, grantee=remote_grantee(), access_methods=methods), fed
                         ) is errors.PermissionDenied
    # unknown user at the receiving site: B answers 400 → InvalidArgument, nothing stored at A
    with pytest.raises(errors.InvalidArgument, match="shareWith not found"):
        await a.shares.create(R(resource_id=rid, grantee=remote_grantee("nobody"), access_methods=methods), einstein)
    assert await a.shares.list_shares([], einstein) == []


async def test_untrusting_receiver_and_unreachable_peer(sites):
    a, b = sites
    # B forgets A: A's share is refused with 401 → InvalidArgument ("does not trust")
    b.peers.remove("a.test")
    with pytest.raises(errors.InvalidArgument, match="trust"):
        await share_notebook(a)
    # a trusted peer that is down: an internal error naming it (as Reva)
    sock, port = _bind()
    for s in sock:
        s.close()
    a.peers.add(PeerSite("down.test", f"http://127.0.0.1:{port}"))
    with pytest.raises(errors.DevstackError, match="down.test") as err:
        await share_notebook(a, opaque="nb9", grantee=remote_grantee(domain="down.test"))
    assert type(err.value) is errors.DevstackError


async def test_share_payload_shape(sites):
    a, _ = sites
    einstein = a.users.by_name["einstein"]
    share = ocm_res.Share(
        id=ocm_res.ShareId(opaque_id="sid"), token="sec", name="nb.ipynb",
        owner=einstein.id, creator=einstein.id,
        grantee=remote_grantee(), access_methods=m.access_methods_for_role("viewer"),
        expiration=types_pb2.Timestamp(seconds=2_000_000_000))
    body = a.shares.share_payload(share, einstein, resource_type="file")
    assert body["shareWith"] == "marie@b.test" and body["providerId"] == "sid"
    assert body["owner"] == body["sender"] == "einstein-id@a.test"
    assert body["shareType"] == "user" and body["resourceType"] == "file" and body["expiration"] == 2_000_000_000
    proto = body["protocol"]
    assert proto["name"] == "multi"
    assert proto["webdav"] == {"sharedSecret": "sec", "permissions": ["read"],
                               "uri": f"{a.url}/remote.php/dav/ocm/sid"}
    # no discovery, or a receiver without webapp-receive + exchange-token: no webapp (Reva 3.x)
    assert "webapp" not in proto
    old = {"resourceTypes": [{"name": "file", "protocols": {"webdav": "/x/", "webapp": "/app/"}}],
           "capabilities": ["/notifications"]}
    assert "webapp" not in a.shares.share_payload(share, einstein, resource_type="file",
                                                  discovery=old)["protocol"]
    disco = {"resourceTypes": [{"name": "file", "protocols": {"webapp-receive": {"targets": ["blank"]}}}],
             "capabilities": ["exchange-token"]}
    body = a.shares.share_payload(share, einstein, resource_type="file", discovery=disco)
    assert body["protocol"]["webapp"] == {
        "uri": f"{a.url}/app/ocm/sid", "sharedSecret": "sec", "permissions": ["read"],
        "requirements": ["must-exchange-token"], "targets": ["blank"], "appName": "cs3collab"}
    validate_new_share(body)  # our own payload passes our own validation
