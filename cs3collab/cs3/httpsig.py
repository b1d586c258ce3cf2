"""OCM 1.4 HTTP Message Signatures (RFC 9421) and the JWK Set they are checked with.

What the OCM text asks (cs3org/OCM-API, IETF-OCM.md as changed by pull
requests #305, #362, #384 and #391, 2025-12 to 2026-07; the stored copy of
the spec at 17d7710 is older and still describes draft-cavage signatures):

- a server that signs advertises the ``http-sig`` capability and a
  ``jwksUri`` in its discovery; the JWK Set there holds its public keys;
- a signed request carries exactly one signature labelled ``ocm`` (with the
  signed ``tag="ocm"``), made with an asymmetric algorithm (Ed25519 here),
  whose ``Signature-Input`` covers at least ``@method``, ``@target-uri`` and,
  when there is a body, ``content-digest`` (RFC 9530), and has ``created``;
- the receiver finds the sender's provider from the request (the ``sender``
  field and friends), reads its discovery's ``jwksUri``, and refuses a
  missing or invalid signature from a server that advertises ``http-sig``.

The signing and verifying themselves are done by ``http-message-signatures``
(pyauth, RFC 9421); keys and JWK Sets by ``joserfc``. This module holds no
state beyond a key and does no I/O except reading or writing a key file: the
JWK Set fetching and caching live with whoever verifies (the devstack's OCM
side, ``cs3collab.devstack.ocm_signing``).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

import http_sf
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import (HTTPMessageSignaturesException, HTTPMessageSigner, HTTPMessageVerifier,
                                     HTTPSignatureKeyResolver, InvalidSignature, algorithms)
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OKPKey

CAPABILITY = "http-sig"
"""The discovery capability of a server that signs its OCM requests."""
JWKS_PATH = "/.well-known/jwks.json"
"""Where we publish our JWK Set (and look for a peer's when its discovery names no ``jwksUri``)."""
LABEL = TAG = "ocm"
ALGORITHM = algorithms.ED25519
COVERED = ("@method", "@target-uri")
MAX_AGE = datetime.timedelta(minutes=5)
"""How old a signature's ``created`` may be (replays older than this are refused)."""


class SignatureRefused(Exception):
    """A request's signature is missing, malformed, from an unknown key or does not verify."""


class SigningKey:
    """An Ed25519 key with its key id (the RFC 7638 thumbprint of its public JWK)."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self.private_key = private_key
        self._jwk = OKPKey.import_key(private_key.public_key())
        self.kid = self._jwk.thumbprint()

    @classmethod
    def generate(cls) -> "SigningKey":
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, data: bytes) -> "SigningKey":
        key = serialization.load_pem_private_key(data, password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("the OCM signing key must be an Ed25519 private key (PEM, PKCS#8)")
        return cls(key)

    @classmethod
    def load_or_create(cls, path: str | os.PathLike) -> "SigningKey":
        """The key in ``path`` (PEM); a new one is written there (mode 0600) when the file is missing."""
        p = Path(path)
        try:
            return cls.from_pem(p.read_bytes())
        except FileNotFoundError:
            pass
        key = cls.generate()
        key.write(p)
        return key

    def pem(self) -> bytes:
        return self.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption())

    def write(self, path: str | os.PathLike) -> None:
        """Write the key atomically with mode 0600."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self.pem())
        tmp.replace(p)

    def public_jwk(self) -> dict[str, Any]:
        return dict(self._jwk.as_dict(private=False, kid=self.kid, alg="EdDSA", use="sig"))

    def sign(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> dict[str, str]:
        """Sign a request the way OCM asks; returns ``headers`` with
        ``Signature``, ``Signature-Input`` and (with a body) ``Content-Digest`` added."""
        message = _Message(method.upper(), url, dict(headers))
        signer = HTTPMessageSigner(signature_algorithm=ALGORITHM, key_resolver=_OneKey(self))
        signer.sign(message, key_id=self.kid, label=LABEL, tag=TAG, covered_component_ids=COVERED,
                    body=body if body else None)
        return message.headers


def jwks_document(keys: Iterable[SigningKey]) -> dict[str, Any]:
    """The JWK Set we publish: the public half of each key (current first, then those still honoured)."""
    return {"keys": [k.public_jwk() for k in keys]}


def public_keys(jwks: Any) -> dict[str, Ed25519PublicKey]:
    """The Ed25519 verification keys of a JWK Set document, by ``kid``; other
    keys are skipped. A document that is not a JWK Set → ValueError."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise ValueError("not a JWK Set (no \"keys\" list)")
    out: dict[str, Ed25519PublicKey] = {}
    for entry in jwks["keys"]:
        if not isinstance(entry, dict) or entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519" \
                or not isinstance(entry.get("kid"), str):
            continue
        try:
            key = KeySet.import_key_set({"keys": [entry]}).keys[0]
        except (JoseError, ValueError, TypeError):
            continue
        if isinstance(key.public_key, Ed25519PublicKey):
            out[entry["kid"]] = key.public_key
    return out


@dataclass
class Signed:
    """The ``ocm`` signature a request carries: its key id (not yet verified)."""

    keyid: str


def signature_of(headers: Mapping[str, str]) -> Signed | None:
    """The request's ``ocm`` signature as announced in ``Signature-Input``;
    None when the request carries no signature at all. A signature input
    without an ``ocm`` member or without a key id → SignatureRefused."""
    raw = _header(headers, "signature-input")
    if raw is None and _header(headers, "signature") is None:
        return None
    if raw is None:
        raise SignatureRefused("a Signature without Signature-Input")
    try:
        parsed = http_sf.parse(raw.encode("latin-1"), tltype="dictionary")
    except Exception:  # noqa: BLE001 - any parse failure is a malformed header
        raise SignatureRefused("malformed Signature-Input") from None
    member = parsed.get(LABEL)
    if member is None:
        raise SignatureRefused(f"no signature labelled {LABEL!r}")
    keyid = member[1].get("keyid")
    if not isinstance(keyid, str) or not keyid:
        raise SignatureRefused("the signature names no keyid")
    return Signed(keyid)


def verify(method: str, url: str, headers: Iterable[tuple[str, str]], body: bytes,
           keys: Mapping[str, Ed25519PublicKey], *, max_age: datetime.timedelta = MAX_AGE) -> str:
    """Check the request's ``ocm`` signature with ``keys`` (kid → public key);
    returns the kid that verified. Refused (SignatureRefused with the reason):
    no ``ocm`` signature or several, an unknown key, an algorithm other than
    Ed25519, ``@method``/``@target-uri``/``content-digest`` not covered, a
    body that does not match its digest, too old or from the future, a
    signature that does not verify."""
    lines = list(headers)
    message = _Message(method.upper(), url, _Lines(lines))
    verifier = HTTPMessageVerifier(signature_algorithm=ALGORITHM, key_resolver=_Keys(keys))
    required = COVERED + (("content-digest",) if body else ())
    try:
        [result] = verifier.verify(message, max_age=max_age, expect_tag=TAG, expect_label=LABEL,
                                   require_components=required, body=body)
    except (InvalidSignature, HTTPMessageSignaturesException) as exc:
        raise SignatureRefused(str(exc) or "the signature does not verify") from None
    except ValueError:  # more than one signature selected
        raise SignatureRefused(f"more than one {LABEL!r} signature") from None
    return str(result.parameters.get("keyid", ""))


def default_jwks_uri(base_url: str) -> str:
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}{JWKS_PATH}"


# -- the small message views the library reads --------------------------------------

class _Lines:
    """Read-only header view keeping every field line (as received)."""

    def __init__(self, lines: list[tuple[str, str]]) -> None:
        self._lines = lines

    def items(self):
        return iter(self._lines)

    def __iter__(self):
        return iter(dict.fromkeys(n for n, _ in self._lines))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(n.lower() == name.lower() for n, _ in self._lines)

    def __setitem__(self, name: str, value: str) -> None:
        raise TypeError("read-only headers")

    def __delitem__(self, name: str) -> None:
        raise TypeError("read-only headers")


@dataclass
class _Message:
    method: str
    url: str
    headers: Any


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


class _OneKey(HTTPSignatureKeyResolver):
    def __init__(self, key: SigningKey) -> None:
        self._key = key

    def resolve_private_key(self, key_id: str):
        return self._key.private_key

    def resolve_public_key(self, key_id: str):
        return self._key.private_key.public_key() if key_id == self._key.kid else None


class _Keys(HTTPSignatureKeyResolver):
    def __init__(self, keys: Mapping[str, Ed25519PublicKey]) -> None:
        self._keys = keys

    def resolve_public_key(self, key_id: str):
        key = self._keys.get(key_id)
        if key is None:
            raise InvalidSignature(f"unknown keyid {key_id!r}")
        return key

    def resolve_private_key(self, key_id: str):
        raise NotImplementedError
