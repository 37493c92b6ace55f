"""Extractors that need no token verification: a fixed user, a trusted header, the client's name."""

from __future__ import annotations

import logging
from typing import Any, TypeGuard

from fastmcp.server.dependencies import get_http_request
from fastmcp.server.middleware import MiddlewareContext

from permit_guard.exceptions import ConfigurationError
from permit_guard.model import Principal

__all__ = ["MAX_IDENTITY_LENGTH", "FixedIdentity", "HeaderIdentity", "SourceIdentity"]

logger = logging.getLogger("permit_guard.identity")

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
        # Only ASCII blanks are trimmed: str.strip() would also remove NEL and
        # NBSP, turning "alice\x85" into "alice" instead of refusing it.
        value = values[0].strip(" \t")
        if not value or len(value) > MAX_IDENTITY_LENGTH or not value.isprintable():
            logger.info("header identity: %r header is empty, too long or unprintable", self.header)
            return None
        return Principal(key=value)

    def __repr__(self) -> str:
        return f"HeaderIdentity({self.header!r})"


class SourceIdentity:
    """The user is the client's self-declared name from the handshake (``unknown`` without one).

    The client chooses that name: it is no security, only a label for
    low-stakes separation (a desktop app versus a script).
    """

    def __call__(self, context: MiddlewareContext[Any]) -> Principal:
        name: Any = None
        try:
            fastmcp_context = context.fastmcp_context
            session = fastmcp_context.session if fastmcp_context is not None else None
            params = session.client_params if session is not None else None
            name = params.client_info.name if params is not None else None
        except Exception:  # the session may not exist yet, or carry no client info
            name = None
        return Principal(key=name if _valid_key(name) else "unknown")

    def __repr__(self) -> str:
        return "SourceIdentity()"


def _valid_key(key: object) -> TypeGuard[str]:
    return (
        isinstance(key, str)
        and 0 < len(key) <= MAX_IDENTITY_LENGTH
        and key.isprintable()
        and key == key.strip()
    )
