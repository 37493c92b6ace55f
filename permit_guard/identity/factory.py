"""The extractor type, and the extractor ``PERMIT_MCP_IDENTITY_MODE`` names."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastmcp.server.middleware import MiddlewareContext

from permit_guard.exceptions import ConfigurationError
from permit_guard.identity.claims import ClaimMapping, TokenIdentity
from permit_guard.identity.jwt import JwtIdentity
from permit_guard.identity.simple import FixedIdentity, HeaderIdentity, SourceIdentity
from permit_guard.model import Principal

if TYPE_CHECKING:
    from permit_guard.settings import GuardSettings

__all__ = ["IdentityExtractor", "identity_from_settings"]

IdentityExtractor = Callable[
    [MiddlewareContext[Any]], Principal | Awaitable[Principal | None] | None
]


def identity_from_settings(settings: GuardSettings) -> IdentityExtractor:
    """The extractor ``PERMIT_MCP_IDENTITY_MODE`` names, configured from the settings."""
    claims = ClaimMapping(
        settings.identity_jwt_field,
        tenant_claim=settings.tenant_claim,
        attribute_claims=settings.user_attribute_claims,
    )
    mode = settings.identity_mode
    if mode == "fixed":
        return FixedIdentity(settings.identity_fixed_value)
    if mode == "header":
        return HeaderIdentity(settings.identity_header)
    if mode == "source":
        return SourceIdentity()
    if mode == "token":
        return TokenIdentity(
            ClaimMapping(
                settings.identity_jwt_field,
                tenant_claim=settings.tenant_claim,
                attribute_claims=settings.user_attribute_claims,
                fallback_field="client_id",
            )
        )
    if mode == "jwt":
        secret = settings.identity_jwt_secret.get_secret_value()
        return JwtIdentity(
            secret=secret or None,
            jwks_url=settings.identity_jwks_url or None,
            algorithms=settings.jwt_algorithms,
            claims=claims,
            header=settings.identity_header,
            header_regex=settings.identity_header_regex,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            leeway=settings.jwt_leeway,
            require_exp=settings.jwt_require_exp,
        )
    raise ConfigurationError(
        f"PERMIT_MCP_IDENTITY_MODE: unknown mode {mode!r} (fixed, header, jwt, token, source)"
    )
