"""Method-level rules: bypass patterns, the handshake, and unknown methods."""

from __future__ import annotations

from typing import Any

import pytest
from fastmcp import Client
from fastmcp.server.middleware import MiddlewareContext
from mcp import MCPError

from permit_guard import ConfigurationError, LocalPolicyEngine, PermitMcpMiddleware
from permit_guard.methods import compile_patterns
from permit_guard.testing import RecordingEngine

from .conftest import POLICY, Caller, GuardFactory


@pytest.mark.parametrize(
    ("patterns", "method", "expected"),
    [
        (["notifications/*"], "notifications/initialized", True),
        (["notifications/*"], "notifications/tools/list_changed", False),
        (["notifications/*"], "tools/call", False),
        (["notifications/*"], "notificationsX/y", False),
        (["health/*"], "health/check", True),
        (["health/*"], "healthcheck", False),
        (["ping"], "ping", True),
        (["ping"], "pingpong", False),
        (["*"], "tools/list", False),
        (["*"], "ping", True),
        (["tools.list"], "tools/list", False),
    ],
)
def test_star_never_crosses_a_slash(patterns: list[str], method: str, expected: bool) -> None:
    """Bypass patterns match whole names; `*` stays within one `/` segment; dots are literal."""
    regex = compile_patterns(patterns)
    assert regex is not None
    assert (regex.fullmatch(method) is not None) is expected


@pytest.mark.parametrize("pattern", ["tools/call", "tools/*", "*/*", "resources/read", "prompts/*"])
def test_component_methods_cannot_be_bypassed(pattern: str) -> None:
    """A bypass pattern that would skip calls, reads or prompt renders is a configuration error."""
    with pytest.raises(ConfigurationError, match="cannot be bypassed"):
        PermitMcpMiddleware(engine=LocalPolicyEngine.from_dict(POLICY), bypass_methods=[pattern])


async def test_bypassing_a_list_skips_only_the_gate(
    guarded: GuardFactory, caller: Caller, engine: RecordingEngine
) -> None:
    """A bypassed list method skips the gate, but every item is still checked."""
    caller.key = "lee"  # no list permission, may call greet only
    async with Client(guarded(bypass_methods=["tools/list"])) as client:
        engine.reset()
        names = sorted(t.name for t in await client.list_tools())
    assert names == ["greet", "health"]
    assert engine.calls == [("check_many", 4)]


async def test_empty_bypass_still_connects(guarded: GuardFactory, caller: Caller) -> None:
    """With no bypass at all the handshake still completes and public tools work."""
    caller.key = None
    async with Client(guarded(bypass_methods=[])) as client:
        assert (await client.call_tool("health", {})).data == "ok"


async def test_seed_bypass_list_still_connects(guarded: GuardFactory) -> None:
    """The documented ['initialize', 'ping', 'health/*'] (no server/discover) still connects."""
    async with Client(guarded(bypass_methods=["initialize", "ping", "health/*"])) as client:
        assert (await client.call_tool("greet", {"name": "x"})).data == "hello x"


async def test_unknown_methods_are_denied(guarded: GuardFactory) -> None:
    """A method neither known nor bypassed is refused by the guard with a clear message."""
    async with Client(guarded(bypass_methods=["initialize"])) as client:
        with pytest.raises(MCPError, match="'ping' is not allowed"):
            await client.ping()


async def test_known_extra_method_is_checked_with_the_engine(caller: Caller) -> None:
    """A method added to known_methods is checked as {server}_<family>:<verb>."""
    policy = {
        "resources": {"mcp_server_reports": {"actions": ["export"]}},
        "roles": {"ops": {"grants": {"mcp_server_reports": ["export"]}}},
        "users": {"olga": {"roles": ["ops"]}},
    }
    engine = RecordingEngine(LocalPolicyEngine.from_dict(policy))
    guard = PermitMcpMiddleware(
        engine=engine, identity=caller, known_methods=["tools/list", "reports/export"]
    )
    # An extension's method reaches middleware through on_request only; no
    # client speaks this one, so the hook is driven as FastMCP drives it.
    context: MiddlewareContext[Any] = MiddlewareContext(message={}, method="reports/export")

    async def served(context: MiddlewareContext[Any]) -> str:
        return "served"

    caller.key = "olga"
    assert await guard.on_request(context, served) == "served"
    caller.key = "lee"
    with pytest.raises(MCPError, match="'reports/export' is not allowed"):
        await guard.on_request(context, served)
    assert [(r.user.key, r.resource.type, r.action) for r in engine.requests] == [
        ("olga", "mcp_server_reports", "export"),
        ("lee", "mcp_server_reports", "export"),
    ]


async def test_ping_is_bypassed_by_default(guarded: GuardFactory, caller: Caller) -> None:
    """ping passes the guard with no credentials under the default bypass list."""
    caller.key = None
    async with Client(guarded()) as client:
        # FastMCP's modern protocol has no ping handler: its answer, not the guard's.
        with pytest.raises(MCPError, match="Method not found"):
            await client.ping()
