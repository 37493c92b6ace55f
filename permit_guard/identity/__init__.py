"""Who is calling: extractors that turn a request into a :class:`Principal`.

An extractor is any callable ``(MiddlewareContext) -> Principal | None`` (or an
awaitable of it). ``None`` means "no valid credentials": the guard then denies
everything but ``@public`` components, without asking the engine.
"""

from permit_guard.identity.claims import ClaimMapping, TokenIdentity
from permit_guard.identity.factory import IdentityExtractor, identity_from_settings
from permit_guard.identity.jwt import JwtIdentity
from permit_guard.identity.simple import FixedIdentity, HeaderIdentity, SourceIdentity

__all__ = [
    "ClaimMapping",
    "FixedIdentity",
    "HeaderIdentity",
    "IdentityExtractor",
    "JwtIdentity",
    "SourceIdentity",
    "TokenIdentity",
    "identity_from_settings",
]
