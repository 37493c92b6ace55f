"""Where the guard sits on its server: before anything that could answer in its place.

A middleware placed before the guard runs first. One that answers without
calling the next one (FastMCP's ``ResponseCachingMiddleware``, which keys its
cache by FastMCP's access token, ``None`` in the guard's own identity modes)
would then serve one caller's lists and results to another. The guard refuses
to serve in that order, and says how to fix it; placed after the guard, a cache
is filtered per caller like any other answer.

The guard also owns the server's pre-dispatch input-schema lookup here (see
:mod:`permit_guard.headers`), refuses background tasks a plain
fastmcp-tasks extension would run unbound to their caller (see
:mod:`permit_guard.tasks`), and warns once when it reads FastMCP's access
token on a server that has no auth provider to verify one.
"""

from __future__ import annotations

import logging
import weakref
from typing import TYPE_CHECKING, Any, Final

from fastmcp.server.middleware.caching import ResponseCachingMiddleware
from fastmcp.utilities.tasks import TASKS_EXTENSION_ID
from mcp import MCPError
from mcp_types import INTERNAL_ERROR

from permit_guard.components.index import count_changes
from permit_guard.exceptions import AccessDenied, ConfigurationError
from permit_guard.headers import own_input_schema_lookup, owns_input_schema_lookup
from permit_guard.identity import TokenIdentity

if TYPE_CHECKING:
    from fastmcp import FastMCP
    from fastmcp.server.context import Context
    from fastmcp.server.middleware import Middleware, MiddlewareContext

    from permit_guard.components.lookup import Target
    from permit_guard.planner import Planner

__all__ = [
    "ANSWERING_MIDDLEWARE",
    "check_placement",
    "claim",
    "refuse_unbound_task",
    "take_over",
    "take_over_or_refuse",
    "tasks_bound",
    "would_be_task",
]

logger = logging.getLogger("permit_guard")

#: Middleware known to answer requests without calling the next middleware.
ANSWERING_MIDDLEWARE: Final[tuple[type[Middleware], ...]] = (ResponseCachingMiddleware,)

#: Servers already warned that token identity has no provider (claim runs on every message).
_WARNED_NO_PROVIDER: weakref.WeakSet[FastMCP[Any]] = weakref.WeakSet()

#: Per guard: the server it last took over in full, and that server's middleware then.
#: While both are the same, a message needs no new take-over.
_TAKEN: weakref.WeakKeyDictionary[Middleware, tuple[weakref.ref[FastMCP[Any]], list[Middleware]]]
_TAKEN = weakref.WeakKeyDictionary()


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


def claim(server: FastMCP[Any], guard: Middleware) -> None:
    """What the guard owns on ``server`` at once (``attach``): its place, and the SDK's lookup.

    Raises:
        ConfigurationError: When a middleware before the guard could answer for it.
    """
    check_placement(server, guard)
    _expect_auth_provider(server, guard)
    if not owns_input_schema_lookup(server):
        own_input_schema_lookup(server)
    # Unknown names are then answered from an index, as fast as hidden ones.
    count_changes(getattr(server, "local_provider", None))


def _expect_auth_provider(server: FastMCP[Any], guard: Middleware) -> None:
    """Warn once per server: token identity without an auth provider refuses every caller."""
    if server.auth is not None or not isinstance(getattr(guard, "identity", None), TokenIdentity):
        return
    if server in _WARNED_NO_PROVIDER:
        return
    _WARNED_NO_PROVIDER.add(server)
    logger.warning(
        "identity_mode='token' reads FastMCP's verified access token, but server %r has no "
        "auth provider (FastMCP(auth=...)) to verify one: unless it is mounted in a server "
        "that has one, every caller is refused except for @public components. Give the server "
        "an auth provider (JWTVerifier, an OAuth provider), or choose another identity mode",
        server.name,
    )


async def take_over(server: FastMCP[Any], guard: Middleware, planner: Planner) -> None:
    """Everything the guard must own on ``server`` before it serves a request.

    :func:`claim`, and a survey of the server's tools for ambiguous actions
    (once per server).

    Raises:
        ConfigurationError: When a middleware before the guard could answer for it.
    """
    claim(server, guard)
    if await planner.survey(server):
        _TAKEN[guard] = (weakref.ref(server), list(server.middleware))


async def take_over_or_refuse(server: FastMCP[Any], guard: Middleware, planner: Planner) -> None:
    """:func:`take_over` for a request in flight: a server that cannot be guarded serves nothing.

    Done in full once per server, and again whenever its middleware changes
    (one could have been put before the guard) or the survey failed.

    Raises:
        MCPError: "Internal server error"; the reason goes to the log, never to the client.
    """
    taken = _TAKEN.get(guard)
    if taken is not None and taken[0]() is server and taken[1] == server.middleware:
        return
    try:
        await take_over(server, guard, planner)
    except ConfigurationError as exc:
        # Fail closed: refuse every request until the server is set up right.
        logger.error("refusing to serve: %s", exc)
        raise MCPError(code=INTERNAL_ERROR, message="Internal server error") from exc


def _tasks_extension(server: FastMCP[Any] | None) -> Any:
    """The server's tasks extension, if it has one."""
    extensions = getattr(server, "_extensions", None)
    return extensions.get(TASKS_EXTENSION_ID) if isinstance(extensions, dict) else None


def tasks_bound(server: FastMCP[Any] | None) -> bool:
    """Whether ``server``'s background tasks are bound to their callers (``GuardedTasks``)."""
    return getattr(_tasks_extension(server), "binds_tasks_to_callers", False) is True


def refuse_unbound_task(
    server: FastMCP[Any] | None, context: MiddlewareContext[Any], found: Target
) -> None:
    """Refuse a call a plain tasks extension would run as a task, outside every guard.

    Raises:
        AccessDenied: The one answer for denied, hidden and unknown components.
    """
    extension = _tasks_extension(server)
    if extension is None or getattr(extension, "binds_tasks_to_callers", False) is True:
        return
    if not would_be_task(found.component, context.fastmcp_context):
        return
    # Fail closed: the worker would run the function unchecked, for anyone holding the id.
    logger.error(
        "refusing %r as a background task: register permit_guard.tasks.GuardedTasks "
        "instead of TasksExtension so tasks are checked and bound to their caller",
        found.name,
    )
    raise AccessDenied.hidden(found.kind, found.name)


def would_be_task(tool: object, context: Context | None) -> bool:
    """Whether fastmcp-tasks would run a call of ``tool`` as a task (it asks the same questions).

    A tool that requires tasks always is one; an optional one is when the
    request opts into the tasks extension.
    """
    mode = getattr(getattr(tool, "task_config", None), "mode", "forbidden")
    if mode == "required":
        return True
    settings = getattr(context, "client_extension_settings", None)
    return mode == "optional" and settings is not None and settings(TASKS_EXTENSION_ID) is not None
