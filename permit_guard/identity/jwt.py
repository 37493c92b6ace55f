"""Identity from a JWT in a request header, verified with a secret, a public key or a JWKS."""

from __future__ import annotations

import asyncio
import logging
import re
import warnings
from collections.abc import Sequence
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from fastmcp.server.dependencies import get_http_request
from fastmcp.server.middleware import MiddlewareContext

from permit_guard.exceptions import ConfigurationError
from permit_guard.identity.claims import ClaimMapping
from permit_guard.model import Principal

__all__ = ["MAX_TOKEN_LENGTH", "JwtIdentity"]

logger = logging.getLogger("permit_guard.identity")

_HMAC = frozenset({"HS256", "HS384", "HS512"})
_RSA = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_EC = frozenset({"ES256", "ES384", "ES512", "ES256K"})
_OKP = frozenset({"EdDSA"})
_ALL_ALGORITHMS = _HMAC | _RSA | _EC | _OKP

#: Longer tokens are refused before any parsing.
MAX_TOKEN_LENGTH = 8192


class JwtIdentity:
    """The user is the verified subject of a JWT sent in a request header.

    The token is taken from ``header`` (default ``Authorization``) with
    ``header_regex`` (default ``[Bb]earer (.+)``), verified with an HMAC secret,
    a PEM public key (or certificate), or the keys of a JWKS URL, and must carry
    ``exp`` (unless ``require_exp=False``) and, when configured, the expected
    ``aud`` and ``iss``. A key only ever verifies with algorithms of its own
    family: an RSA public key never verifies an HS256 token, which would let
    anyone holding the public key forge one.

    Anything wrong — no header, two headers, no match, a token over 8 KiB,
    malformed, ``alg: none``, a bad signature, expired, not yet valid, wrong
    audience or issuer, an unknown ``kid``, no usable identity claim — is no
    identity: the guard answers "invalid or missing credentials" and logs the
    precise reason (never the token).

    Args:
        secret: HMAC secret, or PEM public key / certificate.
        jwks_url: URL of a JSON Web Key Set (keys cached, refreshed on an
            unknown ``kid`` with a cooldown).
        algorithms: Algorithms accepted (intersected with the key's family).
        claims: Which claims give the user key, tenant and attributes.
        header: Request header holding the token.
        header_regex: Pattern whose first group is the token (full match).
        audience: Expected ``aud``; required in the token when set.
        issuer: Expected ``iss``; required in the token when set.
        leeway: Seconds of clock skew tolerated on ``exp`` / ``nbf`` / ``iat``.
        require_exp: Refuse tokens without ``exp``.
        jwks_timeout: Seconds to wait for the JWKS endpoint.
        jwks_cache_seconds: How long the fetched key set is trusted; a key
            removed from the JWKS stops verifying within this time.
        jwks_refresh_cooldown: Least time between two refreshes forced by an
            unknown ``kid`` (so random ``kid`` values cannot hammer the endpoint).

    Raises:
        ConfigurationError: Without exactly one of ``secret`` / ``jwks_url``, on
            a private key, a bad regex, or algorithms that fit no key.
    """

    def __init__(
        self,
        *,
        secret: str | None = None,
        jwks_url: str | None = None,
        algorithms: Sequence[str] = ("HS256", "RS256"),
        claims: ClaimMapping | None = None,
        header: str = "Authorization",
        header_regex: str = r"[Bb]earer (.+)",
        audience: str | Sequence[str] | None = None,
        issuer: str | None = None,
        leeway: float = 0,
        require_exp: bool = True,
        jwks_timeout: float = 5.0,
        jwks_cache_seconds: float = 300.0,
        jwks_refresh_cooldown: float = 30.0,
    ) -> None:
        if bool(secret) == bool(jwks_url):
            raise ConfigurationError(
                "jwt identity needs exactly one of a secret or public key "
                "(PERMIT_MCP_IDENTITY_JWT_SECRET) and a JWKS URL (PERMIT_MCP_IDENTITY_JWKS_URL)"
            )
        try:
            self._pattern = re.compile(header_regex)
        except re.error as exc:
            raise ConfigurationError(
                f"PERMIT_MCP_IDENTITY_HEADER_REGEX {header_regex!r} is not a regular "
                f"expression: {exc}"
            ) from exc
        if self._pattern.groups < 1:
            raise ConfigurationError(
                f"PERMIT_MCP_IDENTITY_HEADER_REGEX {header_regex!r} needs a group for the token"
            )
        unknown = sorted(set(algorithms) - _ALL_ALGORITHMS)
        if unknown or not algorithms:
            raise ConfigurationError(
                f"PERMIT_MCP_JWT_ALGORITHMS: unsupported {unknown or 'empty list'}; "
                f"supported: {', '.join(sorted(_ALL_ALGORITHMS))}"
            )
        self.header = header
        self.claims = claims or ClaimMapping()
        self.audience = audience
        self.issuer = issuer
        self.leeway = leeway
        self._short_secret = False
        self._jwks: jwt.PyJWKClient | None = None
        self._key: Any = None
        if jwks_url:
            if not jwks_url.startswith(("https://", "http://")):
                raise ConfigurationError(f"JWKS URL must be http(s), got {jwks_url!r}")
            # No per-key cache: it never expires, so a key removed from the
            # JWKS would keep verifying; the key set itself is cached instead.
            self._jwks = jwt.PyJWKClient(
                jwks_url,
                cache_keys=False,
                lifespan=jwks_cache_seconds,
                timeout=jwks_timeout,
                cooldown_duration=jwks_refresh_cooldown,
            )
            allowed = [a for a in algorithms if a not in _HMAC]
            family = "the JWKS keys (asymmetric)"
        else:
            assert secret is not None
            self._key, family, family_algorithms = _load_key(secret)
            allowed = [a for a in algorithms if a in family_algorithms]
            self._short_secret = family == "HMAC" and len(secret.encode()) < 32
            if self._short_secret:
                logger.warning(
                    "the JWT HMAC secret is shorter than 32 bytes; HS256 needs at least 256 "
                    "bits to resist brute force: use a longer secret"
                )
        if not allowed:
            raise ConfigurationError(
                f"PERMIT_MCP_JWT_ALGORITHMS {list(algorithms)} has no algorithm for "
                f"{family}; a key only verifies with algorithms of its own family"
            )
        self.algorithms = allowed
        require = ["exp"] if require_exp else []
        if audience is not None:
            require.append("aud")
        if issuer is not None:
            require.append("iss")
        self._options: Any = {"require": require}

    async def __call__(self, context: MiddlewareContext[Any]) -> Principal | None:
        token = self._token()
        if token is None:
            return None
        principal = await self.verify(token)
        if isinstance(principal, str):
            logger.info("jwt identity: token rejected: %s", principal)
            return None
        return principal

    async def verify(self, token: str) -> Principal | str:
        """The principal a token names, verified as for a request; or why it is rejected.

        Used by ``permit-guard check --token`` to decide as the server would.
        """
        if len(token) > MAX_TOKEN_LENGTH:
            return f"the token is longer than {MAX_TOKEN_LENGTH} bytes"
        try:
            if self._jwks is not None:
                # PyJWKClient fetches over blocking HTTP: keep it off the event loop.
                signing = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
                key: Any = signing.key
            else:
                key = self._key
            claims = self._decode(token, key)
        except (jwt.PyJWTError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"
        return self.claims.principal(claims)

    def _token(self) -> str | None:
        try:
            values = get_http_request().headers.getlist(self.header)
        except RuntimeError:
            logger.info("jwt identity: no HTTP request, so no %r header", self.header)
            return None
        if len(values) != 1:
            logger.info("jwt identity: %d %r headers, need exactly one", len(values), self.header)
            return None
        value = values[0]
        if len(value) > MAX_TOKEN_LENGTH:
            logger.info(
                "jwt identity: %r header longer than %d bytes", self.header, MAX_TOKEN_LENGTH
            )
            return None
        match = self._pattern.fullmatch(value)
        if match is None or not match.group(1):
            logger.info("jwt identity: %r header does not match the expected form", self.header)
            return None
        return match.group(1)

    def _decode(self, token: str, key: Any) -> dict[str, Any]:
        def decode() -> dict[str, Any]:
            decoded: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options=self._options,
            )
            return decoded

        if not self._short_secret:
            return decode()
        with warnings.catch_warnings():
            # Warned once at start-up; PyJWT would warn on every verification.
            warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
            return decode()

    def __repr__(self) -> str:
        source = "jwks" if self._jwks is not None else "key"
        return f"JwtIdentity({source}, algorithms={self.algorithms})"


def _load_key(secret: str) -> tuple[Any, str, frozenset[str]]:
    """The verification key, its family name, and the algorithms of that family."""
    text = secret.strip()
    if not text.startswith("-----BEGIN"):
        return secret, "HMAC", _HMAC
    if "PRIVATE KEY" in text.split("\n", 1)[0]:
        raise ConfigurationError(
            "PERMIT_MCP_IDENTITY_JWT_SECRET holds a private key: give the public key"
        )
    public: Any
    try:
        if text.startswith("-----BEGIN CERTIFICATE"):
            public = x509.load_pem_x509_certificate(text.encode()).public_key()
        else:
            public = serialization.load_pem_public_key(text.encode())
    except ValueError as exc:
        raise ConfigurationError(
            f"PERMIT_MCP_IDENTITY_JWT_SECRET looks like PEM but does not load: {exc}"
        ) from exc
    if isinstance(public, rsa.RSAPublicKey):
        return public, "an RSA key", _RSA
    if isinstance(public, ec.EllipticCurvePublicKey):
        return public, "an EC key", _EC
    if isinstance(public, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return public, "an EdDSA key", _OKP
    raise ConfigurationError(f"unsupported public key type {type(public).__name__}")
