"""Unknown names are answered from an index, as fast as hidden ones (attack 6).

FastMCP looks up a name it does not hold by falling back through every version
of every component: on a large server an unknown name took milliseconds where a
hidden one took microseconds, which told them apart. The guard now answers
names no component has from an index of the server's own components
(benchmarks/timing.py measures the times). The index must never go stale.
"""

from __future__ import annotations

from typing import Any

from fastmcp import Client, FastMCP

from permit_guard import LocalPolicyEngine, PermitMcpMiddleware, Principal, require_permission
from permit_guard.components.index import names_of

POLICY: dict[str, Any] = {
    "resources": {"mcp_server": {"actions": ["early", "late"]}},
    "roles": {"user": {"grants": {"mcp_server": ["*"]}}},
    "users": {"bob": {"roles": ["user"]}},
}


def guarded() -> FastMCP[Any]:
    mcp: FastMCP[Any] = FastMCP("indexed")

    @mcp.tool
    @require_permission()
    def early() -> str:
        return "early"

    PermitMcpMiddleware(
        engine=LocalPolicyEngine.from_dict(POLICY),
        identity=lambda context: Principal(key="bob"),
        default_deny=True,
    ).attach(mcp)
    return mcp


async def test_components_added_or_removed_later_are_seen() -> None:
    """A tool added after the guard took over is callable; a removed one is unknown."""
    mcp = guarded()
    assert names_of(mcp.local_provider) == frozenset({"tool:early"})

    def late() -> str:
        return "late"

    async with Client(mcp) as client:
        assert not (await client.call_tool("early", {}, raise_on_error=False)).is_error
        mcp.tool(require_permission()(late))
        assert not (await client.call_tool("late", {}, raise_on_error=False)).is_error
        mcp.local_provider.remove_tool("early")
        gone = await client.call_tool("early", {}, raise_on_error=False)
    assert gone.is_error
    assert "not found or not authorized" in gone.content[0].text  # type: ignore[union-attr]


async def test_unknown_and_hidden_names_answer_alike() -> None:
    """An unknown name and an undecorated one (default deny) get the same answer."""
    mcp = guarded()

    @mcp.tool
    def undecorated() -> str:
        return "ran"

    async with Client(mcp) as client:
        hidden = await client.call_tool("undecorated", {}, raise_on_error=False)
        unknown = await client.call_tool("no_such_tool", {}, raise_on_error=False)
    texts = [r.content[0].text for r in (hidden, unknown)]  # type: ignore[union-attr]
    assert hidden.is_error
    assert unknown.is_error
    assert texts[0].replace("undecorated", "<x>") == texts[1].replace("no_such_tool", "<x>")
