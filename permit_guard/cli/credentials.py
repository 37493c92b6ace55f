"""Who ``permit-guard check`` asks for: a user given outright, or credentials the server reads.

``--user`` (with ``--tenant`` and ``--user-attributes``) names the caller
directly. ``--token JWT`` and ``--claims JSON`` instead go through the
server's own identity settings, as a request would: a token is verified with
the configured key, algorithms, audience and issuer, and claims become the
user key, tenant and attributes by the configured claim names. So the tenant
claim and the attribute claims are tested without a client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from permit_guard.exceptions import ConfigurationError
from permit_guard.identity.claims import ClaimMapping
from permit_guard.identity.factory import identity_from_settings
from permit_guard.identity.jwt import JwtIdentity
from permit_guard.model import Principal
from permit_guard.settings import GuardSettings

__all__ = ["principal_from_claims", "principal_from_token"]

#: The identity modes whose callers are named by token claims.
CLAIM_MODES = ("jwt", "token")


def principal_from_claims(settings: GuardSettings, claims: Mapping[str, Any]) -> Principal | str:
    """The caller these (already verified) claims name under the server's settings.

    Returns:
        The principal, or why the claims name none (the guard would see no
        credentials).

    Raises:
        ConfigurationError: When the server's identity mode reads no claims.
    """
    mode = settings.identity_mode
    if mode not in CLAIM_MODES:
        raise ConfigurationError(
            f"--claims: the server's identity mode is {mode!r}, which reads no token claims "
            f"(claims are read in the modes {', '.join(CLAIM_MODES)})"
        )
    mapping = ClaimMapping(
        settings.identity_jwt_field,
        tenant_claim=settings.tenant_claim,
        attribute_claims=settings.user_attribute_claims,
        fallback_field="client_id" if mode == "token" else None,
    )
    fallback = claims.get("client_id") if mode == "token" else None
    return mapping.principal(claims, fallback=fallback)


async def principal_from_token(settings: GuardSettings, token: str) -> Principal | str:
    """The caller a JWT names, verified as the server's ``jwt`` identity would verify it.

    Returns:
        The principal, or why the token is rejected.

    Raises:
        ConfigurationError: When the server's identity mode is not ``jwt`` (a
            FastMCP ``token`` is verified by the server's auth provider, which
            the command does not run: use ``--claims``).
    """
    if settings.identity_mode != "jwt":
        raise ConfigurationError(
            f"--token: the server's identity mode is {settings.identity_mode!r}; only 'jwt' "
            "verifies tokens itself (for 'token', give the verified claims with --claims)"
        )
    identity = identity_from_settings(settings)
    assert isinstance(identity, JwtIdentity)  # the factory's jwt mode
    return await identity.verify(token)
