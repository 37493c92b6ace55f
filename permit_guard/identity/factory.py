"""The extractor type, the one ``PERMIT_MCP_IDENTITY_MODE`` names, and the one a guard uses."""

from __future__ import annotations

import inspect
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

__all__ = ["IdentityExtractor", "identity_for", "identity_from_settings"]

IdentityExtractor = Callable[
    [MiddlewareContext[Any]], Principal | Awaitable[Principal | None] | None
]


def identity_for(identity: IdentityExtractor | None, settings: GuardSettings) -> IdentityExtractor:
    """The extractor a guard uses: ``identity`` as given, else the one the settings name.

    The claim settings (``tenant_claim``, ``user_attribute_claims``) configure
    the extractor the settings build. An extractor given as ``identity=``
    reads claims through its own :class:`ClaimMapping`, if at all, so a claim
    setting it does not read as well would be ignored without a word (with
    ``tenant_claim``: every request in tenant ``default``, every grant of
    another tenant denied).

    Raises:
        ConfigurationError: When ``identity`` is given with a claim setting it
            does not read, naming both and how to write it instead.
    """
    if identity is None:
        return identity_from_settings(settings)
    claims = getattr(identity, "claims", None)
    mapping = claims if isinstance(claims, ClaimMapping) else None
    ignored: list[tuple[str, object]] = []
    if settings.tenant_claim and (mapping is None or mapping.tenant_claim != settings.tenant_claim):
        ignored.append(("tenant_claim", settings.tenant_claim))
    attributes = list(settings.user_attribute_claims)
    if attributes and (mapping is None or not set(attributes) <= set(mapping.attribute_claims)):
        ignored.append(("user_attribute_claims", attributes))
    if not ignored:
        return identity
    raise ConfigurationError(_ignored_claims(identity, mapping is not None, ignored))


def _ignored_claims(identity: object, has_mapping: bool, ignored: list[tuple[str, object]]) -> str:
    """Why ``identity=`` and claim settings cannot go together, and what to write instead."""
    is_function = inspect.isfunction(identity) or inspect.ismethod(identity)
    label = getattr(identity, "__qualname__", "?") if is_function else type(identity).__name__
    shown = label if is_function else f"{label}(...)"
    names = " and ".join(name for name, _ in ignored)
    given = " and ".join(
        f"{name}={value!r} (keyword or PERMIT_MCP_{name.upper()})" for name, value in ignored
    )
    arguments = ", ".join(
        f"{'attribute_claims' if name == 'user_attribute_claims' else name}={value!r}"
        for name, value in ignored
    )
    tenant = " (every request in tenant 'default')" if ignored[0][0] == "tenant_claim" else ""
    if has_mapping:
        reads = "reads claims through its own ClaimMapping"
        fix = f"give them to it, {label}(..., claims=ClaimMapping({arguments})), and drop {names}"
    else:
        reads = "does not read them"
        fix = (
            f"drop {names}, or read the claims in the extractor (ClaimMapping({arguments})"
            ".principal(claims) gives the Principal)"
        )
    return (
        f"identity={shown} was given with {given}: claim settings configure only the extractor "
        f"identity_mode builds, and {label} {reads}, so they would be ignored{tenant}. Either "
        f"{fix}; or drop identity= and set identity_mode (jwt or token)"
    )


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
