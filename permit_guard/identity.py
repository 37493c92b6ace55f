"""Who is calling: extractors that turn a request into a :class:`Principal`.

An extractor is any callable ``(MiddlewareContext) -> Principal | None`` (or an
awaitable of it). ``None`` means "no valid credentials": the guard then denies
everything but ``@public`` components, without asking the engine.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastmcp.server.dependencies import get_http_request
from fastmcp.server.middleware import MiddlewareContext

from permit_guard.exceptions import ConfigurationError
from permit_guard.model import Principal

__all__ = ["FixedIdentity", "HeaderIdentity", "IdentityExtractor", "identity_from_settings"]

logger = logging.getLogger("permit_guard.identity")

IdentityExtractor = Callable[
    [MiddlewareContext[Any]], Principal | Awaitable[Principal | None] | None
]

_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})

#: Longer header values are refused rather than sent to the engine as a user key.
MAX_IDENTITY_LENGTH = 256


class FixedIdentity:
    """Every request is the same user (the default: ``client``).

    Right for a server with one trusted caller, such as a local stdio tool.
    """

    def __init__(self, key: str = "client", *, tenant: str | None = None) -> None:
        if not isinstance(key, str) or not key:
            raise ConfigurationError("FixedIdentity needs a non-empty user key")
        self._principal = Principal(key=key, tenant=tenant)

    def __call__(self, context: MiddlewareContext[Any]) -> Principal:
        return self._principal

    def __repr__(self) -> str:
        return f"FixedIdentity({self._principal.key!r})"


class HeaderIdentity:
    """The user key is the value of an HTTP header.

    The client controls this header: use it only behind a trusted proxy that
    sets it and strips what the client sent. A request without the header, with
    it twice, empty, or longer than 256 characters has no identity.
    """

    def __init__(self, header: str) -> None:
        if not isinstance(header, str) or not header.strip():
            raise ConfigurationError("HeaderIdentity needs a header name")
        if header.strip().lower() in _CREDENTIAL_HEADERS:
            # The raw value ("Bearer eyJ...") would become the user key, and any
            # client could send "Authorization: alice".
            raise ConfigurationError(
                f"header identity takes the user key verbatim, so it cannot read the "
                f"{header.strip()!r} header, which carries credentials: set "
                "PERMIT_MCP_IDENTITY_HEADER to the header your proxy sets (e.g. X-User), "
                "or verify the token with your own identity callable"
            )
        self.header = header.strip()
        logger.warning(
            "identity is taken from the %r header, which the client controls; "
            "use this mode only behind a proxy that sets it",
            self.header,
        )

    def __call__(self, context: MiddlewareContext[Any]) -> Principal | None:
        try:
            values = get_http_request().headers.getlist(self.header)
        except RuntimeError:
            logger.info("no HTTP request: header identity has no %r header", self.header)
            return None
        if len(values) != 1:
            logger.info(
                "header identity: %d %r headers, need exactly one", len(values), self.header
            )
            return None
        value = values[0].strip()
        if not value or len(value) > MAX_IDENTITY_LENGTH or not value.isprintable():
            logger.info("header identity: %r header is empty, too long or unprintable", self.header)
            return None
        return Principal(key=value)

    def __repr__(self) -> str:
        return f"HeaderIdentity({self.header!r})"


def identity_from_settings(mode: str, *, fixed_value: str, header: str) -> IdentityExtractor:
    """The extractor a ``PERMIT_MCP_IDENTITY_MODE`` names."""
    if mode == "fixed":
        return FixedIdentity(fixed_value)
    if mode == "header":
        return HeaderIdentity(header)
    raise ConfigurationError(f"PERMIT_MCP_IDENTITY_MODE: unknown mode {mode!r} (fixed, header)")
