"""OIDC login: the embedded issuer (discovery, JWKS, code + PKCE, token, userinfo) and the gateway's
``oidc`` auth type, which checks an IdP token as Reva's OIDC auth manager does (reva aa6e45a
pkg/auth/manager/oidc/oidc.go with go-oidc's verifier): issuer, expiry, algorithm, signature, the
``sub`` claim as username, and no audience check unless ``--oidc-audience``."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from urllib.parse import parse_qs, urlsplit

import grpc
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cs3.gateway.v1beta1 import gateway_api_pb2 as gw
from cs3.gateway.v1beta1 import gateway_api_pb2_grpc as gw_grpc
from cs3.rpc.v1beta1 import code_pb2

from tests.support.processes import devstack

from .conftest import PASSWORDS

CLIENT = "cs3collab-hub"
REDIRECT = "http://127.0.0.1:8123/hub/oauth_callback"  # loopback: any port matches the registered one


@pytest.fixture(scope="module")
async def idp(tmp_path_factory):
    """A devstack with its embedded issuer: a public client (the hub) and a confidential one."""
    async with devstack(tmp_path_factory.mktemp("oidc"), domain="cernbox.test",
                        extra=("--oidc", "--oidc-client", CLIENT, "--oidc-client", "portal:s3cret")) as site:
        assert site.oidc_url.startswith("http://127.0.0.1:"), site.running.output[-3:]
        async with grpc.aio.insecure_channel(site.gateway) as channel, \
                httpx.AsyncClient(base_url=site.oidc_url, timeout=30) as http:
            site.stub = gw_grpc.GatewayAPIStub(channel)
            site.http = http
            yield site


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def sign_in(http: httpx.AsyncClient, user: str, password: str, challenge: str, client: str = CLIENT):
    """The login page's form, posted as the browser would; the IdP's redirect."""
    params = {"client_id": client, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid profile",
              "state": "st-1", "nonce": "n-1", "code_challenge": challenge, "code_challenge_method": "S256"}
    page = await http.get("/authorize", params=params)
    assert page.status_code == 200 and 'name="password"' in page.text, page.text[:300]
    return await http.post("/authorize", data={**params, "username": user, "password": password})


async def tokens_for(http: httpx.AsyncClient, user: str) -> dict:
    verifier, challenge = pkce()
    back = await sign_in(http, user, PASSWORDS[user], challenge)
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    answer = await http.post("/token", data={"grant_type": "authorization_code", "code": code,
                                             "redirect_uri": REDIRECT, "client_id": CLIENT, "code_verifier": verifier})
    assert answer.status_code == 200, answer.text
    return answer.json()


async def reva_login(site, idp_token: str):
    return await site.stub.Authenticate(gw.AuthenticateRequest(type="oidc", client_secret=idp_token))


async def test_discovery_and_keys_describe_the_issuer(idp):
    meta = (await idp.http.get("/.well-known/openid-configuration")).json()
    assert meta["issuer"] == idp.oidc_url
    assert meta["code_challenge_methods_supported"] == ["S256"]
    keys = (await idp.http.get("/jwks")).json()["keys"]
    assert [(k["kty"], k["alg"]) for k in keys] == [("RSA", "RS256")] and "d" not in keys[0]  # public only


async def test_a_person_signs_in_with_pkce_and_reva_logs_her_in_with_the_idp_token(idp):
    verifier, challenge = pkce()
    wrong = await sign_in(idp.http, "marie", "not-hers", challenge)
    assert wrong.status_code == 401 and "Invalid username or password" in wrong.text
    back = await sign_in(idp.http, "marie", PASSWORDS["marie"], challenge)
    assert back.status_code == 302
    query = parse_qs(urlsplit(back.headers["location"]).query)
    assert back.headers["location"].startswith(REDIRECT)
    assert query["state"] == ["st-1"] and query["iss"] == [idp.oidc_url]
    exchange = {"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": REDIRECT,
                "client_id": CLIENT, "code_verifier": verifier}
    answer = await idp.http.post("/token", data=exchange)
    assert answer.status_code == 200, answer.text
    tokens = answer.json()
    assert {"access_token", "id_token", "refresh_token"} <= tokens.keys()
    again = await idp.http.post("/token", data=exchange)  # a code is good once
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"

    whoami = await idp.http.get("/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert whoami.json()["preferred_username"] == "marie"

    # Reva's oidc auth: the IdP's access token (or its ID token) as client secret gives a CS3 token
    for idp_token in (tokens["access_token"], tokens["id_token"]):
        res = await reva_login(idp, idp_token)
        assert res.status.code == code_pb2.CODE_OK, res.status
        assert res.user.username == "marie" and res.user.id.idp == "cernbox.test"
        me = await idp.stub.WhoAmI(gw.WhoAmIRequest(token=res.token), metadata=(("x-access-token", res.token),))
        assert me.user.username == "marie"
    await idp.running.wait_for_output("oidc token accepted user=marie")

    # the refresh grant rotates the refresh token; the new access token logs in at Reva too
    refreshed = await idp.http.post("/token", data={"grant_type": "refresh_token", "client_id": CLIENT,
                                                    "refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    assert (await reva_login(idp, refreshed.json()["access_token"])).status.code == code_pb2.CODE_OK
    reused = await idp.http.post("/token", data={"grant_type": "refresh_token", "client_id": CLIENT,
                                                 "refresh_token": tokens["refresh_token"]})
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"


async def test_the_idp_refuses_a_code_without_the_right_verifier_or_client(idp):
    verifier, challenge = pkce()
    back = await sign_in(idp.http, "einstein", PASSWORDS["einstein"], challenge)
    code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
    wrong = await idp.http.post("/token", data={"grant_type": "authorization_code", "code": code,
                                                "redirect_uri": REDIRECT, "client_id": CLIENT,
                                                "code_verifier": pkce()[0]})
    assert wrong.status_code == 400 and "PKCE" in wrong.json()["error_description"]
    # no PKCE at all: sent back with invalid_request; an unregistered redirect URI: never redirected
    params = {"client_id": CLIENT, "redirect_uri": REDIRECT, "response_type": "code", "scope": "openid"}
    plain = await idp.http.get("/authorize", params=params)
    assert plain.status_code == 302 and "error=invalid_request" in plain.headers["location"]
    elsewhere = await idp.http.get("/authorize", params={**params, "redirect_uri": "https://evil.example/cb",
                                                         "code_challenge": challenge, "code_challenge_method": "S256"})
    assert elsewhere.status_code == 400 and "redirect URI not registered" in elsewhere.text
    # a confidential client must authenticate
    secretless = await idp.http.post("/token", data={"grant_type": "authorization_code", "code": "x",
                                                     "client_id": "portal"})
    assert secretless.status_code == 401 and secretless.json()["error"] == "invalid_client"


def signed(idp, claims: dict, key=None, **headers) -> str:
    """A token signed with the issuer's own key (from its data folder) unless ``key`` is given."""
    if key is None:
        key = serialization.load_pem_private_key((idp.data_dir / "oidc" / "signing_key.pem").read_bytes(), None)
    kid = jwt.get_unverified_header(idp.issued)["kid"]
    return jwt.encode(claims, key, algorithm=headers.pop("alg", "RS256"), headers={"kid": kid, **headers})


async def test_reva_refuses_forged_expired_and_foreign_tokens_with_the_reason(idp):
    idp.issued = (await tokens_for(idp.http, "einstein"))["access_token"]
    good = jwt.decode(idp.issued, options={"verify_signature": False})
    now = int(time.time())
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = {
        "forged": (signed(idp, good, key=other_key), "failed to verify signature"),
        "expired": (signed(idp, {**good, "exp": now - 5}), "token is expired"),
        "tampered": (idp.issued.rsplit(".", 2)[0] + "." + base64.urlsafe_b64encode(
            jwt.utils.force_bytes('{"iss": "%s", "sub": "marie", "exp": %d}' % (idp.oidc_url, now + 300))
        ).rstrip(b"=").decode() + "." + idp.issued.rsplit(".", 1)[1], "failed to verify signature"),
        "other issuer": (signed(idp, {**good, "iss": "https://idp.elsewhere.example"}), "issuer not recognised"),
        "symmetric": (jwt.encode(good, "guessable-" * 4, algorithm="HS256"), "unsupported algorithm"),
        "unknown user": (signed(idp, {**good, "sub": "mallory"}), "unknown user"),
        "not a token": ("relativity", "error extracting claims"),
    }
    for name, (token, reason) in cases.items():
        res = await reva_login(idp, token)
        assert res.status.code == code_pb2.CODE_UNAUTHENTICATED, (name, res.status)
        assert res.status.message.startswith("error authenticating user") and reason in res.status.message, \
            (name, res.status.message)
        assert not res.token
    # Reva checks no audience (go-oidc SkipClientIDCheck): a token the IdP gave another client logs in
    other_client = await reva_login(idp, signed(idp, {**good, "aud": "some-other-client"}))
    assert other_client.status.code == code_pb2.CODE_OK, other_client.status


async def test_with_an_audience_set_a_token_for_another_client_is_refused(tmp_path):
    async with devstack(tmp_path / "site", domain="cernbox.test",
                        extra=("--oidc", "--oidc-audience", CLIENT)) as site:
        async with grpc.aio.insecure_channel(site.gateway) as channel, \
                httpx.AsyncClient(base_url=site.oidc_url, timeout=30) as http:
            site.stub = gw_grpc.GatewayAPIStub(channel)
            site.issued = (await tokens_for(http, "richard"))["access_token"]
            assert (await reva_login(site, site.issued)).status.code == code_pb2.CODE_OK
            claims = jwt.decode(site.issued, options={"verify_signature": False})
            res = await reva_login(site, signed(site, {**claims, "aud": "some-other-client"}))
            assert res.status.code == code_pb2.CODE_UNAUTHENTICATED
            assert "expected audience 'cs3collab-hub'" in res.status.message
