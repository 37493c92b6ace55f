"""What the guard keeps between requests never outlives what it was made from.

Plans and request shapes are kept per component; the take-over of a server
is kept while its middleware stays the same. Each test changes one of those
things between two requests and checks that the second request sees it.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastmcp import Client, FastMCP
from fastmcp.server.middleware.caching import ResponseCachingMiddleware
from mcp import MCPError

from permit_guard import (
    LocalPolicyEngine,
    PermitMcpMiddleware,
    Principal,
    list_plans,
    require_permission,
)
from permit_guard import planner as planner_module
from permit_guard.testing import RecordingEngine

POLICY: dict[str, Any] = {
    "resources": {
        "mcp_server": {"actions": ["read", "write", "tool-0"]},
        "mcp_server_tools": {"actions": ["list"]},
    },
    "roles": {
        "reader": {"grants": {"mcp_server": ["read", "tool-0"], "mcp_server_tools": ["list"]}}
    },
    "users": {"client": {"roles": ["reader"]}},
}


def guarded(**options: Any) -> tuple[FastMCP[Any], PermitMcpMiddleware]:
    mcp: FastMCP[Any] = FastMCP("memo")
    options.setdefault("engine", LocalPolicyEngine.from_dict(POLICY))
    guard = PermitMcpMiddleware(**options)
    guard.attach(mcp)
    return mcp, guard


async def outcome(client: Client[Any], name: str) -> str:
    result = await client.call_tool(name, {}, raise_on_error=False)
    return "denied" if result.is_error else "allowed"


async def test_a_replaced_tool_is_judged_by_its_new_decorator() -> None:
    """Removing a tool and adding another of that name: the next call sees the new spec."""
    mcp, _ = guarded()

    @require_permission(action="read")
    def report() -> str:
        return "ok"

    mcp.tool(report)
    async with Client(mcp) as client:
        assert await outcome(client, "report") == "allowed"
        mcp.local_provider.remove_tool("report")

        @require_permission(action="write")
        def report_v2() -> str:
            return "ok"

        report_v2.__name__ = "report"
        mcp.tool(report_v2)
        assert await outcome(client, "report") == "denied"


async def test_a_function_decorated_after_registration_is_judged_by_its_spec() -> None:
    """A spec put on the registered function later replaces the plan made without it."""
    mcp, _ = guarded()

    def audit_log() -> str:
        return "ok"

    mcp.tool(audit_log)
    async with Client(mcp) as client:
        assert await outcome(client, "audit_log") == "denied"  # action audit-log: not granted
        require_permission(action="read")(audit_log)
        assert await outcome(client, "audit_log") == "allowed"


async def test_default_deny_switched_on_applies_at_once() -> None:
    """An undecorated tool allowed by the engine is refused once default deny is on."""
    mcp, guard = guarded()

    def tool_0() -> str:
        return "ok"

    mcp.tool(tool_0)
    async with Client(mcp) as client:
        assert await outcome(client, "tool_0") == "allowed"
        guard.guard.planner.default_deny = True
        assert await outcome(client, "tool_0") == "denied"


async def test_the_memo_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """More components than the memo holds: it starts afresh, and decisions are unchanged."""
    monkeypatch.setattr(planner_module, "MEMO_LIMIT", 8)
    mcp, guard = guarded()
    for index in range(30):

        def fn() -> str:
            return "ok"

        fn.__name__ = f"tool_{index}"
        mcp.tool(require_permission(action="read" if index % 2 else "write")(fn))
    async with Client(mcp) as client:
        for _ in range(2):
            outcomes = [await outcome(client, f"tool_{index}") for index in range(30)]
            assert outcomes == ["allowed" if index % 2 else "denied" for index in range(30)]
            assert len(guard.guard.planner._plans) <= 8
            assert len(guard.guard.planner._shapes) <= 8


async def test_a_cache_put_before_the_guard_later_is_refused() -> None:
    """The take-over is redone when the middleware changes: a cache in front refuses all."""
    mcp, _ = guarded()

    @require_permission(action="read")
    def report() -> str:
        return "ok"

    mcp.tool(report)
    async with Client(mcp) as client:
        assert await outcome(client, "report") == "allowed"
        mcp.middleware.insert(0, ResponseCachingMiddleware())
        with pytest.raises(MCPError, match="Internal server error"):
            await client.call_tool("report", {})


async def test_lists_of_callers_taking_turns_are_each_their_own() -> None:
    """A list entry's request is reused for the same caller only: turns never mix."""
    policy = {
        **POLICY,
        "roles": {
            **POLICY["roles"],
            "writer": {"grants": {"mcp_server": ["write"], "mcp_server_tools": ["list"]}},
        },
        "users": {"client": {"roles": ["reader"]}, "wanda": {"roles": ["writer"]}},
    }
    turn = {"caller": Principal(key="client")}
    mcp: FastMCP[Any] = FastMCP("turns")
    PermitMcpMiddleware(
        engine=LocalPolicyEngine.from_dict(policy), identity=lambda _: turn["caller"]
    ).attach(mcp)

    @require_permission(action="read")
    def report() -> str:
        return "ok"

    @require_permission(action="write")
    def edit() -> str:
        return "ok"

    mcp.tool(report)
    mcp.tool(edit)
    async with Client(mcp) as client:
        for caller, visible in [("client", ["report"]), ("wanda", ["edit"])] * 2 + [
            ("wanda", ["edit"]),
            ("client", ["report"]),
        ]:
            turn["caller"] = Principal(key=caller)
            assert sorted(t.name for t in await client.list_tools()) == visible


# -- whole lists ----------------------------------------------------------------------------


def listing_server(engine: Any = None) -> tuple[FastMCP[Any], PermitMcpMiddleware]:
    mcp, guard = guarded(**({"engine": engine} if engine is not None else {}))

    @require_permission(action="read")
    def report() -> str:
        return "ok"

    @require_permission(action="write")
    def edit() -> str:
        return "ok"

    mcp.tool(report)
    mcp.tool(edit)
    return mcp, guard


async def names(client: Client[Any]) -> list[str]:
    return sorted(tool.name for tool in await client.list_tools())


def report_by_turns(
    engine: Any, caller: Principal
) -> tuple[FastMCP[Any], PermitMcpMiddleware, dict[str, Principal]]:
    """A server with one ``read`` tool, ``report``, whose caller is ``turn["caller"]``."""
    turn = {"caller": caller}
    mcp: FastMCP[Any] = FastMCP("turns")
    guard = PermitMcpMiddleware(engine=engine, identity=lambda _: turn["caller"])
    guard.attach(mcp)
    mcp.tool(require_permission(action="read")(lambda: "ok"), name="report")
    return mcp, guard, turn


async def test_a_list_again_asks_the_engine_the_same_requests() -> None:
    """The same caller listing again: the same request objects, and the engine asked each time."""
    engine = RecordingEngine(LocalPolicyEngine.from_dict(POLICY))
    mcp, _ = listing_server(engine)
    async with Client(mcp) as client:
        assert await names(client) == ["report"]
        engine.reset()
        await names(client)
        await names(client)
    assert engine.calls == [("check_many", 3)] * 2  # the gate and both tools, each time
    first, second = engine.requests[:3], engine.requests[3:]
    assert all(a is b for a, b in zip(first, second, strict=True))


async def test_a_revoked_role_hides_a_listed_tool_at_once() -> None:
    """Nothing decided is kept: an unassigned role shows in the very next list."""
    engine = LocalPolicyEngine.from_dict(POLICY)
    mcp, _ = listing_server(engine)
    async with Client(mcp) as client:
        assert await names(client) == ["report"]
        await engine.api.role_assignments.unassign(
            {"user": "client", "role": "reader", "tenant": "default"}
        )
        assert await names(client) == []


async def test_a_tool_added_or_redecorated_between_lists_is_seen() -> None:
    """A new tool is listed (or not) by its own spec; a spec put on a listed tool counts."""
    mcp, _ = listing_server()
    async with Client(mcp) as client:
        assert await names(client) == ["report"]

        def audit_log() -> str:
            return "ok"

        mcp.tool(audit_log)
        assert await names(client) == ["report"]  # action audit-log: not granted
        require_permission(action="read")(audit_log)
        assert await names(client) == ["audit_log", "report"]
        mcp.local_provider.remove_tool("report")
        assert await names(client) == ["audit_log"]


async def test_a_caller_whose_attributes_changed_is_asked_anew() -> None:
    """Same key, other attributes: the list requests carry the new attributes."""
    engine = RecordingEngine(LocalPolicyEngine.from_dict(POLICY))
    mcp, _, turn = report_by_turns(engine, Principal(key="client", attributes={"level": 1}))
    async with Client(mcp) as client:
        await client.list_tools()
        turn["caller"] = Principal(key="client", attributes={"level": 2})
        engine.reset()
        await client.list_tools()
    assert engine.calls == [("check_many", 2)]
    assert {request.user.attributes["level"] for request in engine.requests} == {2}


async def test_the_list_memo_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """More callers than the memo holds: it starts afresh, and every list is still right."""
    monkeypatch.setattr(list_plans, "CALLERS_LIMIT", 4)
    policy = {**POLICY, "users": {f"user_{n}": {"roles": ["reader"]} for n in range(10)}}
    engine = LocalPolicyEngine.from_dict(policy)
    mcp, guard, turn = report_by_turns(engine, Principal(key="user_0"))
    async with Client(mcp) as client:
        for index in list(range(10)) * 2 + [42]:
            turn["caller"] = Principal(key=f"user_{index}")
            expected = [] if index == 42 else ["report"]
            assert await names(client) == expected
            assert len(guard.guard.planner.lists._asked) <= 4


async def test_a_tool_whose_function_is_replaced_in_place_is_listed_by_the_new_spec() -> None:
    """tool.fn set to a function decorated long before: the next list plans it anew."""
    mcp, _ = listing_server()

    @require_permission(action="write")
    def edit_v2() -> str:
        return "ok"

    async with Client(mcp) as client:
        assert await names(client) == ["report"]
        tool = await mcp.get_tool("report")
        assert tool is not None
        tool.fn = edit_v2  # type: ignore[attr-defined]
        assert await names(client) == []


async def test_attributes_equal_but_of_another_type_are_asked_anew() -> None:
    """``1`` and ``True`` are equal in Python, not in every policy: not the same caller."""
    engine = RecordingEngine(LocalPolicyEngine.from_dict(POLICY))
    mcp, _, turn = report_by_turns(engine, Principal(key="client", attributes={"level": 1}))
    async with Client(mcp) as client:
        await client.list_tools()
        turn["caller"] = Principal(key="client", attributes={"level": True})
        engine.reset()
        await client.list_tools()
    assert all(request.user.attributes["level"] is True for request in engine.requests)
