"""OCM 1.4 signatures and invite strings, one module each (no I/O): the
edges a peer could get wrong or try on purpose."""

from __future__ import annotations

import datetime

import pytest
from http_message_signatures import HTTPMessageSigner, algorithms

from cs3collab.cs3 import httpsig
from cs3collab.cs3.errors import InvalidArgument
from cs3collab.cs3.httpsig import SignatureRefused, SigningKey, jwks_document, public_keys, signature_of, verify
from cs3collab.cs3.invites import invite_string, parse_invite

URL = "https://a.example/ocm/shares"
BODY = b'{"shareWith": "marie@b.example"}'


def sign(key: SigningKey, url: str = URL, body: bytes = BODY) -> list[tuple[str, str]]:
    return list(key.sign("POST", url, {"Content-Type": "application/json"}, body).items())


def test_a_signature_verifies_with_the_published_jwks_and_names_its_key():
    key = SigningKey.generate()
    headers = sign(key)
    assert dict(headers)["Signature-Input"].startswith('ocm=("@method" "@target-uri" "content-digest");created=')
    assert 'tag="ocm"' in dict(headers)["Signature-Input"] and 'alg="ed25519"' in dict(headers)["Signature-Input"]
    keys = public_keys(jwks_document([key]))
    assert signature_of(dict(headers)).keyid == key.kid
    assert verify("POST", URL, headers, BODY, keys) == key.kid


@pytest.mark.parametrize("change", ["body", "method", "url", "label", "old", "unknown key", "no digest"])
def test_what_a_tampered_or_foreign_request_gets(change):
    key = SigningKey.generate()
    keys = public_keys(jwks_document([key]))
    headers, method, url, body = sign(key), "POST", URL, BODY
    if change == "body":
        body = BODY.replace(b"marie", b"mallory")
    elif change == "method":
        method = "PUT"
    elif change == "url":
        url = "https://a.example/ocm/notifications"
    elif change == "label":
        headers = [(n, v.replace("ocm=", "other=", 1)) for n, v in headers]
    elif change == "old":
        old = datetime.datetime.now() - datetime.timedelta(minutes=10)
        msg = httpsig._Message("POST", URL, {"Content-Type": "application/json"})
        HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=httpsig._OneKey(key)).sign(
            msg, key_id=key.kid, label="ocm", tag="ocm", covered_component_ids=httpsig.COVERED, body=BODY,
            created=old)
        headers = list(msg.headers.items())
    elif change == "unknown key":
        keys = public_keys(jwks_document([SigningKey.generate()]))
    elif change == "no digest":
        headers = [(n, v) for n, v in headers if n != "Content-Digest"]
    with pytest.raises(SignatureRefused):
        verify(method, url, headers, body, keys)


def test_signature_of_tells_unsigned_from_malformed():
    assert signature_of({"Content-Type": "application/json"}) is None
    for bad in ({"Signature": "ocm=:AA==:"}, {"Signature-Input": "ocm=(", "Signature": "x"},
                {"Signature-Input": 'other=("@method");keyid="k"', "Signature": "other=:AA==:"},
                {"Signature-Input": 'ocm=("@method");created=1', "Signature": "ocm=:AA==:"}):
        with pytest.raises(SignatureRefused):
            signature_of(bad)


def test_a_key_survives_its_pem_file_and_a_jwks_holds_only_public_ed25519_keys(tmp_path):
    path = tmp_path / "k.pem"
    key = SigningKey.load_or_create(path)
    assert (path.stat().st_mode & 0o777) == 0o600
    assert SigningKey.load_or_create(path).kid == key.kid
    doc = jwks_document([key])
    doc["keys"] += [{"kty": "RSA", "kid": "rsa", "n": "AQAB", "e": "AQAB"}, "junk", {"kty": "OKP"}]
    assert list(public_keys(doc)) == [key.kid]
    for bad in (None, [], {"keys": "x"}):
        with pytest.raises(ValueError):
            public_keys(bad)


def test_invite_strings_as_people_paste_them():
    token = "a55a966e-15c1-4cb9-a39d-4e4c54399baf"
    # the spec's example (base64url, unpadded)
    assert parse_invite("YTU1YTk2NmUtMTVjMS00Y2I5LWEzOWQtNGU0YzU0Mzk5YmFmQGNsb3VkLmV4YW1wbGUub3Jn") == \
        (token, "cloud.example.org")
    assert parse_invite(f"  {invite_string(token, 'Site.Example:8443')}\n") == (token, "site.example:8443")
    padded = invite_string(token, "b.test") + "=" * (-len(invite_string(token, "b.test")) % 4)
    assert parse_invite(padded) == (token, "b.test")
    assert parse_invite(f"{token}@b.test") == (token, "b.test")  # undecoded, as some UIs show it
    assert parse_invite(token, "b.test") == (token, "b.test")  # the 1.3 way: token and provider apart
    assert parse_invite(invite_string(token, "b.test"), "B.test") == (token, "b.test")
    for text, provider in (("", "b.test"), (token, ""), (invite_string(token, "b.test"), "c.test"),
                           ("not a token", "b.test"), ("@b.test", "")):
        with pytest.raises(InvalidArgument):
            parse_invite(text, provider)
