"""A response cache before the guard would answer for it (attack 8).

FastMCP's ResponseCachingMiddleware keys its cache by FastMCP's access token,
which is None in the guard's own identity modes: placed before the guard it
served alice's tools/list (with an admin tool) and her tool result to bob.
The guard now refuses to serve in that order; placed after it, the cache
keeps lists and calls working, filtered per caller.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastmcp import Client, FastMCP
from fastmcp.server.middleware.caching import ResponseCachingMiddleware
from mcp import MCPError

from permit_guard import (
    ConfigurationError,
    LocalPolicyEngine,
    PermitMcpMiddleware,
    Principal,
    current_principal,
    require_permission,
)

POLICY: dict[str, Any] = {
    "resources": {
        "mcp_server": {"actions": ["whoami", "wipe"]},
        "mcp_server_tools": {"actions": ["list"]},
    },
    "roles": {
        "admin": {"grants": {"mcp_server": ["*"], "mcp_server_tools": ["list"]}},
        "viewer": {"grants": {"mcp_server": ["whoami"], "mcp_server_tools": ["list"]}},
    },
    "users": {"alice": {"roles": ["admin"]}, "bob": {"roles": ["viewer"]}},
}


class Caller:
    """The current request's user, switched by the test."""

    def __init__(self) -> None:
        self.key = "alice"

    def __call__(self, context: Any) -> Principal:
        return Principal(key=self.key)


def server(caller: Caller) -> FastMCP[Any]:
    mcp: FastMCP[Any] = FastMCP("ordered")

    @mcp.tool
    @require_permission()
    def whoami() -> str:
        principal = current_principal()
        return principal.key if principal else "nobody"

    @mcp.tool
    @require_permission()
    def wipe() -> str:
        return "wiped"

    return mcp


def guard(caller: Caller, **options: Any) -> PermitMcpMiddleware:
    return PermitMcpMiddleware(
        engine=LocalPolicyEngine.from_dict(POLICY), identity=caller, **options
    )


async def test_cache_before_the_guard_is_refused_at_attach() -> None:
    """attach() refuses a server whose response cache would run before the guard."""
    caller = Caller()
    mcp = server(caller)
    mcp.add_middleware(ResponseCachingMiddleware())
    with pytest.raises(ConfigurationError, match="ResponseCachingMiddleware runs before"):
        guard(caller).attach(mcp)


async def test_cache_before_the_guard_serves_nobody_anything(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Added with add_middleware after a cache, the guard refuses every request: no leak."""
    caller = Caller()
    mcp = server(caller)
    mcp.add_middleware(ResponseCachingMiddleware())
    mcp.add_middleware(guard(caller))
    for key in ("alice", "bob"):
        caller.key = key
        # The handshake itself fails: the client never gets to ask anything.
        with pytest.raises(MCPError):
            async with Client(mcp) as client:
                await client.list_tools()
    assert "refusing to serve: ResponseCachingMiddleware runs before" in caplog.text


@pytest.mark.parametrize("default_deny", [False, True])
async def test_cache_after_the_guard_is_filtered_per_caller(default_deny: bool) -> None:
    """After the guard, cached lists are filtered per caller and calls keep working."""
    caller = Caller()
    mcp = server(caller)
    guard(caller, default_deny=default_deny).attach(mcp)
    mcp.add_middleware(ResponseCachingMiddleware())
    async with Client(mcp) as client:
        assert sorted(t.name for t in await client.list_tools()) == ["whoami", "wipe"]
        assert sorted(t.name for t in await client.list_tools()) == ["whoami", "wipe"]
        caller.key = "bob"
        assert [t.name for t in await client.list_tools()] == ["whoami"]
        denied = await client.call_tool("wipe", {}, raise_on_error=False)
        assert denied.is_error
        allowed = await client.call_tool("whoami", {}, raise_on_error=False)
        assert not allowed.is_error
