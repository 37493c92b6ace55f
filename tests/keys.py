"""Throwaway signing keys for the identity tests, generated at import.

Nothing here is a real secret: the keys live only as long as the test process,
and the HMAC secret is obviously fake (but long enough for HS256).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import RSAAlgorithm

HMAC_SECRET = "test-secret-" + "x" * 32

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def public_pem(key: PrivateKey) -> str:
    """The PEM (SubjectPublicKeyInfo) of the key's public half."""
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def private_pem(key: PrivateKey) -> str:
    """The unencrypted PKCS#8 PEM of the private key."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def rsa_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    """The public JWK of an RSA key, as a JWKS endpoint publishes it."""
    data: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    data.update(kid=kid, use="sig", alg="RS256")
    return data


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims for ``alice``, expiring in five minutes; ``None`` drops a claim."""
    now = int(time.time())
    base: dict[str, Any] = {"sub": "alice", "iat": now, "exp": now + 300}
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not None}


def sign(
    payload: dict[str, Any],
    key: PrivateKey | str = HMAC_SECRET,
    *,
    algorithm: str = "HS256",
    kid: str | None = None,
) -> str:
    """A JWT signed properly with PyJWT."""
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(payload: dict[str, Any], *, alg: str, hmac_key: bytes | None = None) -> str:
    """A JWT assembled by hand, as an attacker would: unsigned, or HMAC'd with any bytes.

    PyJWT will not use a PEM as an HMAC secret, so the confusion forgery is built here.
    """
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = _b64(json.dumps(payload).encode())
    signing_input = f"{header}.{body}"
    if hmac_key is None:
        return f"{signing_input}."
    digest = hmac.new(hmac_key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(digest)}"
