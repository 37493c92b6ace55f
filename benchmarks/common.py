"""What the benchmark scripts share: the benchmark server, its policy, the timers."""

from __future__ import annotations

import statistics
import time
from typing import Any

from fastmcp import Client, FastMCP
from fastmcp.server.middleware import Middleware

from permit_guard import PermitMcpMiddleware, PolicyEngine, require_permission


def tool_policy(tools: int) -> dict[str, Any]:
    """A policy granting user ``client`` every tool of :func:`server` and the list gate."""
    return {
        "resources": {
            "mcp_server": {"actions": [f"tool-{index}" for index in range(tools)]},
            "mcp_server_tools": {"actions": ["list"]},
        },
        "roles": {"user": {"grants": {"mcp_server": ["*"], "mcp_server_tools": ["list"]}}},
        "users": {"client": {"roles": ["user"]}},
    }


def server(
    tools: int,
    engine: PolicyEngine | None = None,
    *,
    middleware: Middleware | None = None,
    audit: bool = True,
) -> FastMCP[Any]:
    """``tools`` decorated tools ``tool_<i>(x: int)``; guarded by ``engine`` when given."""
    mcp: FastMCP[Any] = FastMCP("bench")
    for index in range(tools):

        def fn(x: int) -> int:
            return x

        fn.__name__ = f"tool_{index}"
        mcp.tool(require_permission()(fn))
    if middleware is not None:
        mcp.add_middleware(middleware)
    if engine is not None:
        mcp.add_middleware(PermitMcpMiddleware(engine=engine, enable_audit_logging=audit))
    return mcp


async def per_call(client: Client[Any], calls: int, vary: bool = True) -> float:
    """Seconds per ``tools/call`` of ``tool_0``; a fixed argument lets a cache hit."""
    started = time.perf_counter()
    for index in range(calls):
        await client.call_tool("tool_0", {"x": index if vary else 1})
    return (time.perf_counter() - started) / calls


async def median_call(client: Client[Any], calls: int, vary: bool = True) -> float:
    """Seconds of the median of ``calls`` sequential calls of ``tool_0``.

    The median of single calls, not the mean of a batch: a pause of the
    machine's (another tenant, a collection) then moves no result.
    """
    samples = []
    for index in range(calls):
        started = time.perf_counter()
        await client.call_tool("tool_0", {"x": index if vary else 1})
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


async def per_list(client: Client[Any], lists: int) -> float:
    """Seconds per ``tools/list``."""
    started = time.perf_counter()
    for _ in range(lists):
        await client.list_tools()
    return (time.perf_counter() - started) / lists
