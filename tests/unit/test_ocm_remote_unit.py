"""Site B's reading of a received OCM share (cs3collab/jupyter/ocm_remote.py), one module."""

from __future__ import annotations

from cs3.identity.user.v1beta1 import resources_pb2 as identity
from cs3.sharing.ocm.v1beta1 import resources_pb2 as ocm

from cs3collab.cs3.ocm import requires_exchange
from cs3collab.jupyter.ocm_remote import ocm_target, service_url_from_uri


def received(uri: str, requirements=(), targets=(), app="cs3collab") -> ocm.ReceivedShare:
    return ocm.ReceivedShare(
        id=ocm.ShareId(opaque_id="local-1"), remote_share_id="s-1",
        creator=identity.UserId(idp="cernbox.test", opaque_id="einstein"),
        protocols=[ocm.Protocol(webapp_options=ocm.WebappProtocol(
            uri=uri, shared_secret="secret", app_name=app, requirements=list(requirements), targets=list(targets)))])


def test_new_form_uri_names_the_share_under_the_service():
    target = ocm_target(received("https://svc.a.test/base/api/collaboration/ocm/s-1",
                                 ["must-exchange-token"], ["blank"]))
    assert target.service_url == "https://svc.a.test/base" and target.share_id == "s-1"
    assert target.must_exchange and target.sender_domain == "cernbox.test"
    assert "secret" not in repr(target)


def test_old_form_uri_is_the_service_and_uses_the_secret():
    target = ocm_target(received("https://svc.a.test/base/"))
    assert target.service_url == "https://svc.a.test/base" and not target.must_exchange
    assert target.authorization == "OCM s-1:secret"


def test_other_apps_and_odd_uris():
    assert ocm_target(received("https://x/api/collaboration/ocm/s-1", ["must-exchange-token"], app="other")) is None
    assert ocm_target(received("ftp://x/s-1", ["must-exchange-token"])) is None
    # a new-form uri of another shape: only the share id is taken off
    assert service_url_from_uri("https://x/apps/s-1", "s-1", new_form=True) == "https://x/apps"


def test_which_shares_require_the_code_flow():
    dav = ocm.AccessMethod(webdav_options=ocm.WebDAVAccessMethod())
    assert not requires_exchange(ocm.Share(access_methods=[dav]))
    strict = ocm.AccessMethod(webdav_options=ocm.WebDAVAccessMethod(requirements=["must-exchange-token"]))
    assert requires_exchange(ocm.Share(access_methods=[strict]))
    # Reva 3.x sends every webapp with must-exchange-token (its default requirements)
    app = ocm.AccessMethod(webapp_options=ocm.WebappAccessMethod(app_name="cs3collab"))
    assert requires_exchange(ocm.Share(access_methods=[dav, app]))


def test_token_expiry_is_read_as_the_verifiers_read_it():
    import jwt

    from cs3collab.service.federation import token_expired

    token = jwt.encode({"exp": 1000.9}, "a-key-long-enough-for-hs256-in-tests", algorithm="HS256")
    assert token_expired(token, now=1000.0) and token_expired(token, now=999.0)  # whole seconds, 1 s to spare
    assert not token_expired(token, now=998.5)
    assert not token_expired("not-a-jwt") and not token_expired("a.b.c")


def test_only_tokens_with_an_ocm_scope_are_tried_as_code_flow_tokens():
    import jwt

    from cs3collab.service.federation import may_be_code_flow_token

    key = "a-key-long-enough-for-hs256-in-tests"
    assert may_be_code_flow_token(jwt.encode({"scope": {"ocmshare:s-1": {}}}, key, algorithm="HS256"))
    assert not may_be_code_flow_token(jwt.encode({"scope": {"user": {}}}, key, algorithm="HS256"))
    assert may_be_code_flow_token("opaque-token-of-another-kind")


def test_a_path_inside_a_share_names_its_session_and_stays_inside():
    from dataclasses import replace

    import pytest

    from cs3collab.cs3 import PermissionDenied
    from cs3collab.service.federation import relative_path

    target = replace(ocm_target(received("https://svc.a.test/api/collaboration/ocm/s-1", ["must-exchange-token"])),
                     path="runs/a b.ipynb")
    assert target.session_name == "ocm:s-1/runs/a b.ipynb" and target.session_path == "ocm%3As-1%2Fruns%2Fa%20b.ipynb"
    assert target.content_url == "https://svc.a.test/api/collaboration/ocm/s-1/content"
    assert relative_path("", "s-1") == "" and relative_path("runs/a.csv/", "s-1") == "runs/a.csv"
    for bad in ("../x", "a/../../x", "/etc/passwd", "a//b", "./a", "a\\..\\b", "a\0b"):
        with pytest.raises(PermissionDenied, match="share"):
            relative_path(bad, "s-1")
