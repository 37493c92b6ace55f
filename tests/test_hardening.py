"""Regression tests for ways around the guard: each must end in a denial."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastmcp import Client, Context, FastMCP
from fastmcp.tools import Tool
from mcp import MCPError
from pydantic import Field

from permit_guard import (
    LocalPolicyEngine,
    PermitMcpMiddleware,
    abac_from_args,
    public,
    require_permission,
)
from permit_guard.testing import RecordingEngine

from .conftest import Caller

DENIED = "not found or not authorized"

# "clerk may refund unless the amount is over 100": a negative condition, the
# kind a value the engine cannot compare would slip through.
NEGATIVE_POLICY: dict[str, Any] = {
    "resources": {
        "mcp_server": {"actions": ["refund", "admin-op", "op", "remove-invoice"]},
        "mcp_server_tools": {"actions": ["list"]},
        "mcp_server_prompts": {"actions": ["read", "list"]},
        "mcp_server_resources": {"actions": ["read", "list"]},
        "invoice": {"actions": ["delete"]},
    },
    "resource_sets": {
        "not_large": {
            "resource": "mcp_server",
            "condition": {"not": {"resource.arg_amount": {"greater-than": 100}}},
        },
        "not_large_prompt": {
            "resource": "mcp_server_prompts",
            "condition": {"not": {"resource.arg_amount": {"greater-than": 100}}},
        },
    },
    "roles": {
        "clerk": {
            "grants": {
                "not_large": ["refund"],
                "not_large_prompt": ["read"],
                "mcp_server_tools": ["list"],
                "mcp_server_prompts": ["list"],
                "mcp_server_resources": ["read", "list"],
            }
        },
        "operator": {"grants": {"mcp_server": ["*"], "mcp_server_tools": ["list"]}},
    },
    "users": {"eve": {"roles": ["clerk"]}, "olga": {"roles": ["operator"]}},
}


@pytest.fixture
def engine() -> RecordingEngine:
    """The local engine on the negative-condition policy."""
    return RecordingEngine(LocalPolicyEngine.from_dict(NEGATIVE_POLICY))


async def test_optional_number_sent_as_string_is_judged_as_a_number(
    engine: RecordingEngine,
) -> None:
    """`float | None` sent as "150" runs as 150.0 and is judged as 150.0 (denied)."""
    mcp: FastMCP[Any] = FastMCP("s")

    @mcp.tool
    @require_permission()
    @abac_from_args("amount")
    def refund(amount: float | None = None) -> str:
        return f"refunded {amount}"

    mcp.add_middleware(PermitMcpMiddleware(engine=engine, identity=Caller("eve")))
    async with Client(mcp) as client:
        for sent in ("150", "1e6", 150):
            result = await client.call_tool("refund", {"amount": sent}, raise_on_error=False)
            assert result.is_error, sent
        assert (await client.call_tool("refund", {"amount": "99"})).data == "refunded 99.0"


async def test_omitted_argument_is_judged_with_its_default(engine: RecordingEngine) -> None:
    """A refund that defaults to 5000 is judged as 5000 when the client leaves it out."""
    mcp: FastMCP[Any] = FastMCP("s")

    @mcp.tool
    @require_permission()
    def refund(amount: float = 5000.0) -> str:
        return f"refunded {amount}"

    mcp.add_middleware(PermitMcpMiddleware(engine=engine, identity=Caller("eve")))
    async with Client(mcp) as client:
        result = await client.call_tool("refund", {}, raise_on_error=False)
    assert result.is_error


async def test_prompt_arguments_are_converted_and_defaulted(engine: RecordingEngine) -> None:
    """Prompt arguments travel as strings: judged after conversion, defaults included."""
    mcp: FastMCP[Any] = FastMCP("s")

    @mcp.prompt
    @require_permission()
    def letter(amount: float = 5000.0, invented_by_nobody: str = "x") -> str:
        return f"Write a refund letter for {amount}"

    mcp.add_middleware(PermitMcpMiddleware(engine=engine, identity=Caller("eve")))
    async with Client(mcp) as client:
        assert (await client.get_prompt("letter", {"amount": "50"})).messages
        with pytest.raises(MCPError, match=DENIED):
            await client.get_prompt("letter", {"amount": "150"})
        with pytest.raises(MCPError, match=DENIED):
            await client.get_prompt("letter", {})
    first = engine.requests[-3]
    assert first.resource.attributes["arg_amount"] == 50.0


async def test_mounted_older_version_is_checked_with_its_own_spec(
    engine: RecordingEngine,
) -> None:
    """Asking a mounted server for an older version checks that version's decorator."""
    sub: FastMCP[Any] = FastMCP("sub")

    @sub.tool(name="op", version="1.0")
    @require_permission("admin-op")
    def op_v1() -> str:
        return "v1 ran"

    @sub.tool(name="op", version="2.0")
    @public
    def op_v2() -> str:
        return "v2 ran"

    parent: FastMCP[Any] = FastMCP("parent")
    parent.mount(sub, namespace="ns")
    parent.add_middleware(
        PermitMcpMiddleware(engine=engine, identity=Caller("eve"), default_deny=True)
    )
    async with Client(parent) as client:
        assert (await client.call_tool("ns_op", {})).data == "v2 ran"
        old = await client.call_tool("ns_op", {}, version="1.0", raise_on_error=False)
    assert old.is_error
    assert DENIED in old.content[0].text  # type: ignore[union-attr]


async def test_abac_alone_is_undecorated_under_default_deny(engine: RecordingEngine) -> None:
    """@abac_from_args without @require_permission does not escape default deny."""
    mcp: FastMCP[Any] = FastMCP("s")

    @mcp.tool
    @abac_from_args("amount")
    def refund(amount: float) -> str:
        return "refunded"

    mcp.add_middleware(
        PermitMcpMiddleware(engine=engine, identity=Caller("olga"), default_deny=True)
    )
    async with Client(mcp) as client:
        assert await client.list_tools() == []
        result = await client.call_tool("refund", {"amount": 1}, raise_on_error=False)
    assert result.is_error


async def test_transformed_tool_of_a_keyed_function_is_denied(engine: RecordingEngine) -> None:
    """A renamed/transformed copy cannot lose its decorator's instance check."""
    mcp: FastMCP[Any] = FastMCP("s")

    @mcp.tool
    @require_permission("delete", resource="invoice", key="invoice_id")
    def delete_invoice(invoice_id: str) -> str:
        return f"deleted {invoice_id}"

    original = await mcp.get_tool("delete_invoice")
    assert original is not None
    mcp.add_tool(Tool.from_tool(original, name="remove_invoice"))
    mcp.add_middleware(PermitMcpMiddleware(engine=engine, identity=Caller("olga")))
    async with Client(mcp) as client:
        names = [t.name for t in await client.list_tools()]
        result = await client.call_tool(
            "remove_invoice", {"invoice_id": "42"}, raise_on_error=False
        )
    assert "remove_invoice" not in names
    assert result.is_error
    assert DENIED in result.content[0].text  # type: ignore[union-attr]


async def test_transformed_tool_without_argument_rules_keeps_its_spec(
    engine: RecordingEngine,
) -> None:
    """A transformed copy of a function whose requirement reads no argument is checked by it."""
    mcp: FastMCP[Any] = FastMCP("s")

    @mcp.tool
    @require_permission("admin-op")
    @abac_from_args()
    def dangerous() -> str:
        return "ran"

    original = await mcp.get_tool("dangerous")
    assert original is not None
    mcp.add_tool(Tool.from_tool(original, name="harmless"))
    mcp.add_middleware(PermitMcpMiddleware(engine=engine, identity=Caller("eve")))
    async with Client(mcp) as client:
        result = await client.call_tool("harmless", {}, raise_on_error=False)
    assert result.is_error
    assert engine.requests[-1].action == "admin-op"


async def test_integer_template_parameters(engine: RecordingEngine) -> None:
    """A template parameter declared int is judged as the int the function receives."""
    mcp: FastMCP[Any] = FastMCP("s")

    @mcp.resource("items://{item_id}")
    @require_permission()
    def item(item_id: int) -> str:
        return f"item {item_id}"

    mcp.add_middleware(PermitMcpMiddleware(engine=engine, identity=Caller("eve")))
    async with Client(mcp) as client:
        assert (await client.read_resource("items://42"))[0].text == "item 42"  # type: ignore[union-attr]
    assert engine.requests[-1].resource.attributes["arg_item_id"] == 42


async def test_known_methods_govern_component_methods(engine: RecordingEngine) -> None:
    """A component method left out of known_methods is refused; its list shows public only."""
    mcp: FastMCP[Any] = FastMCP("s")

    @mcp.tool
    @require_permission("op")
    def op() -> str:
        return "ran"

    @mcp.tool
    @public
    def login() -> str:
        return "token"

    mcp.add_middleware(
        PermitMcpMiddleware(engine=engine, identity=Caller("olga"), known_methods=["tools/call"])
    )
    async with Client(mcp) as client:
        assert [t.name for t in await client.list_tools()] == ["login"]
        assert (await client.call_tool("op", {})).data == "ran"


async def test_engine_answer_that_is_not_a_bool_denies() -> None:
    """An engine whose decision says allowed='false' (a truthy string) denies."""
    from permit_guard import Decision

    class Sloppy:
        name = "sloppy"

        async def check(self, request: Any) -> Any:
            return Decision(allowed="false", reason="?")  # type: ignore[arg-type]

        async def check_many(self, requests: Any) -> Any:
            return [Decision(allowed="false", reason="?") for _ in requests]  # type: ignore[arg-type]

    mcp: FastMCP[Any] = FastMCP("s")

    @mcp.tool
    @require_permission()
    def op() -> str:
        return "ran"

    mcp.add_middleware(PermitMcpMiddleware(engine=Sloppy(), identity=Caller("olga")))
    async with Client(mcp) as client:
        assert await client.list_tools() == []
        assert (await client.call_tool("op", {}, raise_on_error=False)).is_error


async def test_aliased_argument_is_judged_under_its_alias(engine: RecordingEngine) -> None:
    """A parameter with an alias is read where the client sends it, not replaced by its default."""
    mcp: FastMCP[Any] = FastMCP("s")

    @mcp.tool
    @require_permission()
    def refund(amount: Annotated[float, Field(alias="amt")] = 0.0) -> str:
        return f"refunded {amount}"

    mcp.add_middleware(PermitMcpMiddleware(engine=engine, identity=Caller("eve")))
    async with Client(mcp) as client:
        await client.list_tools()
        large = await client.call_tool("refund", {"amt": 500}, raise_on_error=False)
        small = await client.call_tool("refund", {"amt": 50}, raise_on_error=False)
    assert large.is_error
    assert small.data == "refunded 50.0"
    calls = [r for r in engine.requests if r.resource.attributes["mcp_method"] == "tools/call"]
    assert [r.resource.attributes["arg_amount"] for r in calls] == [500.0, 50.0]


async def test_injected_context_does_not_block_a_tool(engine: RecordingEngine) -> None:
    """A tool taking FastMCP's Context is checked on its real arguments only."""
    mcp: FastMCP[Any] = FastMCP("s")

    @mcp.tool
    @require_permission()
    async def refund(amount: float, ctx: Context) -> str:
        return f"refunded {amount}"

    mcp.add_middleware(PermitMcpMiddleware(engine=engine, identity=Caller("eve")))
    async with Client(mcp) as client:
        await client.list_tools()
        assert (await client.call_tool("refund", {"amount": 5})).data == "refunded 5.0"
    call = next(r for r in engine.requests if r.resource.attributes["mcp_method"] == "tools/call")
    assert set(call.resource.attributes) == {"arg_amount", "mcp_method", "tool_name"}


async def test_instance_key_is_the_value_the_function_receives() -> None:
    """An int key sent as "07" is checked as instance 7, the invoice the function acts on."""
    policy = {
        "resources": {"invoice": {"actions": ["delete"], "roles": {"owner": ["delete"]}}},
        "users": {"eve": {"resource_roles": {"invoice:07": ["owner"]}}},
    }
    engine = RecordingEngine(LocalPolicyEngine.from_dict(policy))
    mcp: FastMCP[Any] = FastMCP("s")

    @mcp.tool
    @require_permission("delete", resource="invoice", key="invoice_id")
    def delete_invoice(invoice_id: int) -> str:
        return f"deleted {invoice_id}"

    mcp.add_middleware(PermitMcpMiddleware(engine=engine, identity=Caller("eve")))
    async with Client(mcp) as client:
        result = await client.call_tool(
            "delete_invoice", {"invoice_id": "07"}, raise_on_error=False
        )
    assert result.is_error
    assert engine.requests[-1].resource.key == "7"
