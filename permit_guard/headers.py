"""``Mcp-Param-*`` header validation that cannot tell a hidden tool from an unknown one.

On the modern protocol (2026-07-28) over streamable HTTP, the mcp SDK checks a
``tools/call``'s ``Mcp-Param-*`` headers against the called tool's input
schema *before* any middleware runs: it asks the low-level server's
synchronous ``get_tool_input_schema(name)`` hook and answers ``-32020`` on a
mismatch (``mcp.server._streamable_http_modern._mcp_param_rejection``).
FastMCP 4.2 serves that hook from one server-wide cache, filled at
registration and merged from every caller's listing, so a tool the guard hides
answers ``-32020`` where an unknown tool gets the guard's answer: its
existence and argument names leak, even without credentials.

The hook cannot decide for the caller: it is synchronous, gets only the name,
and runs before the request reaches FastMCP, while the guard's decision
(``Guard.decide``: resolving the spec, identifying the caller, asking the
engine) is asynchronous. So the guard splits the check in two:

- :func:`own_input_schema_lookup` answers the hook with "nothing to validate"
  for every name, which is exactly how the SDK treats an unknown tool: hidden
  and unknown tools then both reach the guard and get its one answer.
- :func:`check_mcp_param_headers` runs the SDK's own check after the guard has
  allowed the call, on the tool that will run, and raises the same ``-32020``
  error the SDK would have sent. A caller allowed the tool sees no difference.

Example::

    from permit_guard.headers import check_mcp_param_headers, own_input_schema_lookup

    own_input_schema_lookup(mcp)  # before serving: mcp is the FastMCP server served over HTTP

    # in the tools/call hook, once the guard allowed the call:
    check_mcp_param_headers(context, found.component, context.message.arguments)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from fastmcp.tools.base import Tool
from mcp import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

if TYPE_CHECKING:
    from fastmcp import FastMCP
    from fastmcp.server.middleware import MiddlewareContext

__all__ = ["check_mcp_param_headers", "own_input_schema_lookup", "owns_input_schema_lookup"]

#: ``Mcp-Param-`` as ASGI spells header names (lower case).
_PREFIX: Final = "mcp-param-"

#: ``(input_schema, arguments, headers) -> rejection | None``: the SDK's own check.
_Validate = Callable[[Any, Mapping[str, Any], Mapping[str, str]], Any]


def _sdk_validator() -> _Validate | None:
    """The SDK's header check; ``None`` for an mcp SDK that validates no Mcp-Param headers."""
    try:
        from mcp.shared import inbound
    except ImportError:
        return None
    validate: _Validate | None = getattr(inbound, "validate_mcp_param_headers", None)
    return validate


_VALIDATE: Final = _sdk_validator()


def _no_schema(name: str) -> None:
    """The SDK's pre-dispatch lookup: nothing to validate, for hidden and unknown tools alike.

    The guard repeats the check after its decision (:func:`check_mcp_param_headers`).
    """


def own_input_schema_lookup(server: FastMCP[Any]) -> bool:
    """Make the guard own the SDK's ``get_tool_input_schema`` hook of ``server``.

    Idempotent. Call it on the server that is *served* (the root of a mount
    tree), before it serves: the hook is read per request, and a request
    served before this call is validated against FastMCP's server-wide cache.
    On FastMCP 4.1.x, which sets no hook, this also spares every ``tools/call``
    with arguments the SDK's fallback: a whole ``tools/list``, guard included.

    Args:
        server: The FastMCP server whose HTTP app is served.

    Returns:
        Whether the hook is now the guard's (``False`` when the installed mcp
        SDK validates no ``Mcp-Param-*`` headers, so there is nothing to own).

    Raises:
        TypeError: When ``server`` has no low-level MCP server to install on.
    """
    if _VALIDATE is None:
        return False
    low_level = getattr(server, "_mcp_server", None)
    if low_level is None or not hasattr(low_level, "get_tool_input_schema"):
        raise TypeError(
            f"{server!r} has no low-level server with a get_tool_input_schema hook: "
            "pass the FastMCP server you serve"
        )
    low_level.get_tool_input_schema = _no_schema
    return True


def owns_input_schema_lookup(server: FastMCP[Any]) -> bool:
    """Whether ``server``'s pre-dispatch schema lookup is the guard's (for lint and a backstop)."""
    low_level = getattr(server, "_mcp_server", None)
    hook: Callable[[str], Any] | None = getattr(low_level, "get_tool_input_schema", None)
    return hook is _no_schema


def check_mcp_param_headers(
    context: MiddlewareContext[Any],
    tool: object,
    arguments: Mapping[str, Any] | None,
) -> None:
    """The SDK's ``Mcp-Param-*`` check, for a call the guard has allowed.

    Call it only after the guard allowed the call, so that a caller who may
    not call the tool never learns what it declares. Validates exactly when
    the SDK would have: a modern-protocol request over HTTP (the SDK validates
    only on its 2026-07-28 streamable HTTP entry), against the schema of the
    tool that will run (which :func:`~permit_guard.components.lookup.target`
    found, so a version-pinned call is validated against its own version).

    Args:
        context: The ``tools/call`` middleware context.
        tool: The tool the guard allowed (``Target.component``).
        arguments: The call's arguments as the request sent them.

    Raises:
        MCPError: ``-32020`` (header mismatch) with the SDK's own message.
    """
    if _VALIDATE is None or not isinstance(tool, Tool):
        return
    fastmcp_context = context.fastmcp_context
    request_context = fastmcp_context.request_context if fastmcp_context is not None else None
    if request_context is None or request_context.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return
    request = request_context.request
    if request is None:
        # stdio or in memory: no HTTP headers, and the SDK checks none.
        return
    headers = request.headers
    if not arguments and not any(name.startswith(_PREFIX) for name in headers):
        return
    rejection = _VALIDATE(tool.parameters, arguments or {}, headers)
    if rejection is not None:
        raise MCPError(code=rejection.code, message=rejection.message, data=rejection.data)
