"""Two tools, one action: a grant for one must not open the other (attack 7).

The mapping turns ``_ . /`` into ``-``, so ``refund_all`` and ``refund.all``
both became the action ``refund-all``: a grant meant for one opened both, and
``lint`` said "No problems found". Now both are refused, one log line names
them, lint reports them, and an explicit ``action=`` resolves it.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastmcp import Client, FastMCP

from permit_guard import LocalPolicyEngine, PermitMcpMiddleware, Principal, require_permission
from permit_guard.cli.check import check
from permit_guard.cli.inventory import inventory
from permit_guard.cli.lint import lint
from permit_guard.cli.load import guard_settings

POLICY: dict[str, Any] = {
    "resources": {
        "mcp_server": {"actions": ["refund-all", "refund-one"]},
        "mcp_server_tools": {"actions": ["list"]},
    },
    "roles": {"clerk": {"grants": {"mcp_server": ["refund-all"], "mcp_server_tools": ["list"]}}},
    "users": {"bob": {"roles": ["clerk"]}},
}


def server(*, explicit: bool) -> FastMCP[Any]:
    mcp: FastMCP[Any] = FastMCP("refunds")

    @mcp.tool
    @require_permission()
    def refund_all() -> str:
        return "refunded everyone"

    @mcp.tool(name="refund.all")
    @require_permission("refund-one" if explicit else None)
    def refund_everything_twice() -> str:
        return "refunded everyone twice"

    PermitMcpMiddleware(
        engine=LocalPolicyEngine.from_dict(POLICY), identity=lambda context: Principal(key="bob")
    ).attach(mcp)
    return mcp


async def test_tools_sharing_an_action_are_refused(caplog: pytest.LogCaptureFixture) -> None:
    """Both tools are hidden and denied, and one log line names both."""
    mcp = server(explicit=False)
    async with Client(mcp) as client:
        assert [t.name for t in await client.list_tools()] == []
        for name in ("refund_all", "refund.all"):
            result = await client.call_tool(name, {}, raise_on_error=False)
            assert result.is_error, name
    lines = [r.getMessage() for r in caplog.records if "ambiguous actions" in r.getMessage()]
    assert lines
    assert all("'refund.all', 'refund_all'" in line for line in lines)


async def test_lint_and_check_report_the_ambiguity() -> None:
    """lint reports an ambiguous-action error per tool; check denies, saying why."""
    mcp = server(explicit=False)
    settings, _ = guard_settings(mcp)
    findings = lint(await inventory(mcp, settings))
    assert {(f.kind, f.component) for f in findings if f.severity == "error"} == {
        ("ambiguous-action", "tool refund_all"),
        ("ambiguous-action", "tool refund.all"),
    }
    verdict = await check(
        mcp,
        settings,
        LocalPolicyEngine.from_dict(POLICY),
        Principal(key="bob"),
        kind="tool",
        name="refund_all",
    )
    assert (verdict.allowed, verdict.why) == (False, "ambiguous")
    assert "mcp_server:refund-all" in verdict.reason


async def test_an_explicit_action_resolves_it() -> None:
    """With its own action= each tool is checked as itself: bob's grant opens only one."""
    mcp = server(explicit=True)
    async with Client(mcp) as client:
        assert [t.name for t in await client.list_tools()] == ["refund_all"]
        assert not (await client.call_tool("refund_all", {}, raise_on_error=False)).is_error
        assert (await client.call_tool("refund.all", {}, raise_on_error=False)).is_error
