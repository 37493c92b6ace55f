"""Identity from verified claims: :class:`ClaimMapping` and FastMCP's own access token."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastmcp.server.dependencies import get_access_token
from fastmcp.server.middleware import MiddlewareContext

from permit_guard.exceptions import ConfigurationError
from permit_guard.identity.simple import _valid_key
from permit_guard.model import Principal

__all__ = ["ClaimMapping", "TokenIdentity"]

logger = logging.getLogger("permit_guard.identity")


class ClaimMapping:
    """How verified claims become a :class:`Principal`.

    Args:
        field: The claim holding the user key (``sub``).
        tenant_claim: The claim holding the tenant, if any.
        attribute_claims: Claims copied into the user's attributes (for user-set
            rules); never the whole token.
    """

    def __init__(
        self,
        field: str = "sub",
        *,
        tenant_claim: str | None = None,
        attribute_claims: Sequence[str] = (),
        fallback_field: str | None = None,
    ) -> None:
        if not field:
            raise ConfigurationError("the identity claim name is empty")
        self.field = field
        self.fallback_field = fallback_field
        self.tenant_claim = tenant_claim or None
        self.attribute_claims = tuple(attribute_claims)

    def principal(self, claims: Mapping[str, Any], *, fallback: Any = None) -> Principal | str:
        """The principal the claims name, or the reason they name none."""
        key = claims.get(self.field)
        if key is None and fallback is not None:
            key = fallback
        if not _valid_key(key):
            return f"claim {self.field!r} is missing or not a usable user key"
        tenant = None
        if self.tenant_claim is not None:
            tenant = claims.get(self.tenant_claim)
            if tenant is not None and not (isinstance(tenant, str) and tenant):
                return f"tenant claim {self.tenant_claim!r} is not a non-empty string"
        attributes = {name: claims[name] for name in self.attribute_claims if name in claims}
        return Principal(key=key, attributes=attributes, tenant=tenant)


class TokenIdentity:
    """The user is the subject of FastMCP's own verified access token.

    Use it when the server has an auth provider (``JWTVerifier``, an OAuth
    provider...): FastMCP verifies the token, this reads the identity claim
    (default ``sub``, falling back to the token's ``client_id``). No token, or
    no usable identity, is no identity.
    """

    def __init__(self, claims: ClaimMapping | None = None) -> None:
        self.claims = claims or ClaimMapping(fallback_field="client_id")

    def __call__(self, context: MiddlewareContext[Any]) -> Principal | None:
        token = get_access_token()
        if token is None:
            logger.info("token identity: no verified access token on this request")
            return None
        claims = dict(token.claims or {})
        fallback = None
        if self.claims.fallback_field == "client_id":
            # The client_id claim itself: FastMCP fills AccessToken.client_id
            # with azp, sub or "unknown" when the token has none, which must not
            # become an identity. Providers without claims set client_id only.
            fallback = claims.get("client_id") if claims else token.client_id
            if fallback == "unknown":
                fallback = None
        principal = self.claims.principal(claims, fallback=fallback)
        if isinstance(principal, str):
            logger.info("token identity: %s", principal)
            return None
        return principal

    def __repr__(self) -> str:
        return f"TokenIdentity(claim={self.claims.field!r})"
