"""Where the guard sits on its server: before anything that could answer in its place.

A middleware placed before the guard runs first. One that answers without
calling the next one (FastMCP's ``ResponseCachingMiddleware``, which keys its
cache by FastMCP's access token, ``None`` in the guard's own identity modes)
would then serve one caller's lists and results to another. The guard refuses
to serve in that order, and says how to fix it; placed after the guard, a cache
is filtered per caller like any other answer.

The guard also owns the server's pre-dispatch input-schema lookup here (see
:mod:`permit_guard.headers`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from fastmcp.server.middleware.caching import ResponseCachingMiddleware
from mcp import MCPError
from mcp_types import INTERNAL_ERROR

from permit_guard.exceptions import ConfigurationError
from permit_guard.headers import own_input_schema_lookup, owns_input_schema_lookup

if TYPE_CHECKING:
    from fastmcp import FastMCP
    from fastmcp.server.middleware import Middleware

__all__ = ["ANSWERING_MIDDLEWARE", "check_placement", "take_over", "take_over_or_refuse"]

logger = logging.getLogger("permit_guard")

#: Middleware known to answer requests without calling the next middleware.
ANSWERING_MIDDLEWARE: Final[tuple[type[Middleware], ...]] = (ResponseCachingMiddleware,)


def check_placement(server: FastMCP[Any], guard: Middleware) -> None:
    """Refuse a server on which a middleware that answers for others runs before ``guard``.

    Raises:
        ConfigurationError: Naming the middleware and the order that works.
    """
    for middleware in server.middleware:
        if middleware is guard:
            return
        if isinstance(middleware, ANSWERING_MIDDLEWARE):
            name = type(middleware).__name__
            raise ConfigurationError(
                f"{name} runs before PermitMcpMiddleware on server {server.name!r}: it can "
                "answer from its cache without the guard, serving one caller's lists and "
                f"results to another. Add the guard first, then the {name} "
                "(mcp.add_middleware(guard); mcp.add_middleware(cache))"
            )


def take_over(server: FastMCP[Any], guard: Middleware) -> None:
    """Everything the guard must own on ``server`` before it serves a request.

    Raises:
        ConfigurationError: When a middleware before the guard could answer for it.
    """
    check_placement(server, guard)
    if not owns_input_schema_lookup(server):
        own_input_schema_lookup(server)


def take_over_or_refuse(server: FastMCP[Any], guard: Middleware) -> None:
    """:func:`take_over` for a request in flight: a server that cannot be guarded serves nothing.

    Raises:
        MCPError: "Internal server error"; the reason goes to the log, never to the client.
    """
    try:
        take_over(server, guard)
    except ConfigurationError as exc:
        # Fail closed: refuse every request until the server is set up right.
        logger.error("refusing to serve: %s", exc)
        raise MCPError(code=INTERNAL_ERROR, message="Internal server error") from exc
