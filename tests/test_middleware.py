"""The guard end to end: a real FastMCP server driven by a real fastmcp.Client."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastmcp import Client, FastMCP
from fastmcp.exceptions import AuthorizationError
from mcp import MCPError

from permit_guard import (
    AccessDenied,
    LocalPolicyEngine,
    PermitMcpMiddleware,
    abac_from_args,
    public,
    require_permission,
)
from permit_guard.testing import RecordingEngine

from .conftest import POLICY, BrokenEngine, Caller, GuardFactory

DENIED = "not found or not authorized"


async def tool_names(client: Client[Any]) -> list[str]:
    return sorted(t.name for t in await client.list_tools())


def calls_of(engine: RecordingEngine) -> list[Any]:
    """The recorded tools/call requests (the client also lists tools on its own)."""
    return [r for r in engine.requests if r.resource.attributes.get("mcp_method") == "tools/call"]


async def test_admin_sees_every_tool(guarded: GuardFactory) -> None:
    """A caller allowed everything sees every tool, undecorated ones included."""
    async with Client(guarded()) as client:
        assert await tool_names(client) == [
            "delete_invoice",
            "greet",
            "health",
            "refund",
            "undecorated",
        ]


async def test_tools_the_caller_may_not_call_are_absent(
    guarded: GuardFactory, caller: Caller
) -> None:
    """Tools the caller may not call are absent from tools/list; public ones stay.

    carol owns invoice 42, so delete_invoice (keyed by argument) is listed for her.
    """
    caller.key = "carol"
    async with Client(guarded()) as client:
        assert await tool_names(client) == ["delete_invoice", "greet", "health", "refund"]


async def test_each_list_is_one_engine_call(guarded: GuardFactory, engine: RecordingEngine) -> None:
    """Every list request asks the engine exactly once: the gate plus every non-public item."""
    async with Client(guarded()) as client:
        engine.reset()
        await client.list_tools()
        await client.list_resources()
        await client.list_resource_templates()
        await client.list_prompts()
    assert engine.calls == [
        ("check_many", 1 + 4),  # gate + refund, greet, undecorated, delete_invoice
        ("check_many", 1 + 1),  # gate + data://config
        ("check_many", 1 + 1),  # gate + invoice://{invoice_id}
        ("check_many", 1 + 1),  # gate + summary
    ]


async def test_list_items_carry_no_arguments(
    guarded: GuardFactory, engine: RecordingEngine
) -> None:
    """A list entry is checked like a call, without argument attributes."""
    async with Client(guarded()) as client:
        engine.reset()
        await client.list_tools()
    refund = next(r for r in engine.requests if r.action == "refund")
    assert refund.resource.type == "mcp_server"
    assert dict(refund.resource.attributes) == {"mcp_method": "tools/list", "tool_name": "refund"}


async def test_all_four_lists_are_filtered(guarded: GuardFactory, caller: Caller) -> None:
    """Resources, templates and prompts are filtered like tools; public ones always listed."""
    caller.key = "lee"  # no list permission at all: gates denied
    async with Client(guarded()) as client:
        assert await tool_names(client) == ["health"]
        assert [str(r.uri) for r in await client.list_resources()] == ["data://open"]
        assert await client.list_resource_templates() == []
        assert [p.name for p in await client.list_prompts()] == ["help_prompt"]
    caller.key = "alice"
    async with Client(guarded()) as client:
        assert sorted(str(r.uri) for r in await client.list_resources()) == [
            "data://config",
            "data://open",
        ]
        assert [t.uri_template for t in await client.list_resource_templates()] == [
            "invoice://{invoice_id}"
        ]
        assert sorted(p.name for p in await client.list_prompts()) == ["help_prompt", "summary"]


async def test_abac_rule_on_arguments(guarded: GuardFactory, caller: Caller) -> None:
    """'refund only when arg_amount <= 100' allows 50 and denies 500."""
    caller.key = "carol"
    async with Client(guarded()) as client:
        ok = await client.call_tool("refund", {"amount": 50})
        assert ok.data == "refunded 50.0"
        denied = await client.call_tool("refund", {"amount": 500}, raise_on_error=False)
        assert denied.is_error
        assert DENIED in denied.content[0].text  # type: ignore[union-attr]


async def test_unselected_arguments_never_reach_the_engine(
    guarded: GuardFactory, engine: RecordingEngine
) -> None:
    """Under @abac_from_args('amount') the memo argument is not sent to the engine."""
    async with Client(guarded()) as client:
        engine.reset()
        await client.call_tool("refund", {"amount": 5, "memo": "secret note"})
    (request,) = calls_of(engine)
    assert dict(request.resource.attributes) == {
        "arg_amount": 5,
        "mcp_method": "tools/call",
        "tool_name": "refund",
    }


async def test_undecorated_tools_send_every_argument(
    engine: RecordingEngine, caller: Caller
) -> None:
    """Without @abac_from_args every declared argument becomes arg_<name>, defaults included."""
    mcp: FastMCP[Any] = FastMCP("s")

    @mcp.tool
    def echo(text: str, times: int = 2) -> str:
        return text * times

    mcp.add_middleware(PermitMcpMiddleware(engine=engine, identity=caller))
    async with Client(mcp) as client:
        engine.reset()
        await client.call_tool("echo", {"text": "a"})
    (request,) = calls_of(engine)
    assert request.action == "echo"
    assert dict(request.resource.attributes) == {
        "arg_text": "a",
        "arg_times": 2,
        "mcp_method": "tools/call",
        "tool_name": "echo",
    }


async def test_hidden_and_unknown_tools_get_the_same_answer(
    guarded: GuardFactory, caller: Caller, engine: RecordingEngine
) -> None:
    """Calling a hidden tool and a tool that does not exist give the same message."""
    caller.key = "carol"
    async with Client(guarded()) as client:
        hidden = await client.call_tool("undecorated", {}, raise_on_error=False)
        unknown = await client.call_tool("no_such_tool", {}, raise_on_error=False)
    assert hidden.is_error
    assert unknown.is_error
    hidden_text = hidden.content[0].text  # type: ignore[union-attr]
    unknown_text = unknown.content[0].text  # type: ignore[union-attr]
    assert hidden_text.replace("undecorated", "X") == unknown_text.replace("no_such_tool", "X")
    assert DENIED in hidden_text
    assert all(r.action != "no-such-tool" for r in engine.requests)


async def test_default_deny_hides_undecorated_without_asking(
    guarded: GuardFactory, engine: RecordingEngine
) -> None:
    """Under default deny undecorated tools are hidden and denied with no engine call."""
    async with Client(guarded(default_deny=True)) as client:
        assert "undecorated" not in await tool_names(client)
        engine.reset()
        result = await client.call_tool("undecorated", {}, raise_on_error=False)
    assert result.is_error
    assert DENIED in result.content[0].text  # type: ignore[union-attr]
    assert engine.calls == []


async def test_default_deny_off_checks_undecorated_with_default_mapping(
    guarded: GuardFactory, engine: RecordingEngine, caller: Caller
) -> None:
    """Without default deny an undecorated tool is checked as mcp_server:<name>."""
    caller.key = "alice"
    async with Client(guarded()) as client:
        engine.reset()
        assert (await client.call_tool("undecorated", {})).data == "undecorated ran"
    (request,) = calls_of(engine)
    assert (request.resource.type, request.action) == ("mcp_server", "undecorated")


async def test_public_components_are_never_checked(
    guarded: GuardFactory, engine: RecordingEngine, caller: Caller
) -> None:
    """@public tools, resources and prompts work with no credentials and no engine call."""
    caller.key = None
    async with Client(guarded(default_deny=True)) as client:
        engine.reset()
        assert (await client.call_tool("health", {})).data == "ok"
        assert (await client.read_resource("data://open"))[0].text == "open"  # type: ignore[union-attr]
        assert (await client.get_prompt("help_prompt")).messages
    assert engine.calls == []


async def test_no_credentials_lists_public_only(
    guarded: GuardFactory, engine: RecordingEngine, caller: Caller
) -> None:
    """A caller without credentials sees only @public components and the engine is not asked."""
    caller.key = None
    async with Client(guarded()) as client:
        engine.reset()
        assert await tool_names(client) == ["health"]
        result = await client.call_tool("greet", {"name": "x"}, raise_on_error=False)
    assert result.is_error
    assert "invalid or missing credentials" in result.content[0].text  # type: ignore[union-attr]
    assert engine.calls == []


async def test_no_credentials_cannot_probe_existence(guarded: GuardFactory, caller: Caller) -> None:
    """Without credentials an existing and a missing tool get the same authentication error."""
    caller.key = None
    async with Client(guarded()) as client:
        known = await client.call_tool("greet", {"name": "x"}, raise_on_error=False)
        unknown = await client.call_tool("nope", {}, raise_on_error=False)
    assert known.content[0].text == unknown.content[0].text  # type: ignore[union-attr]


async def test_denied_gate_lists_public_only(guarded: GuardFactory, caller: Caller) -> None:
    """A caller without tools/list permission gets the public tools, not an error."""
    caller.key = "lee"
    async with Client(guarded()) as client:
        assert await tool_names(client) == ["health"]
        # The gate governs listing only: lee may still call greet.
        assert (await client.call_tool("greet", {"name": "lee"})).data == "hello lee"


async def test_engine_failure_fails_closed(
    caller: Caller, caplog: pytest.LogCaptureFixture
) -> None:
    """Engine down: calls denied, lists public only, details in the log only."""
    from .conftest import build_server

    mcp = build_server()
    mcp.add_middleware(PermitMcpMiddleware(engine=BrokenEngine(), identity=caller))
    with caplog.at_level(logging.ERROR, logger="permit_guard"):
        async with Client(mcp) as client:
            assert await tool_names(client) == ["health"]
            result = await client.call_tool("greet", {"name": "x"}, raise_on_error=False)
            assert (await client.call_tool("health", {})).data == "ok"
    text = result.content[0].text  # type: ignore[union-attr]
    assert result.is_error
    assert DENIED in text
    assert "10.0.0.1" not in text
    assert "10.0.0.1" in caplog.text


async def test_resource_reads_are_checked(guarded: GuardFactory, caller: Caller) -> None:
    """A static resource read is checked as mcp_server_resources:read with the URI as key."""
    caller.key = "carol"
    async with Client(guarded()) as client:
        with pytest.raises(MCPError, match=DENIED):
            await client.read_resource("data://config")
    caller.key = "alice"
    async with Client(guarded()) as client:
        assert (await client.read_resource("data://config"))[0].text == "config"  # type: ignore[union-attr]


async def test_templated_resource_uses_instance_key(
    guarded: GuardFactory, caller: Caller, engine: RecordingEngine
) -> None:
    """A templated read takes its resource key from the URI parameter (ReBAC on invoice:42)."""
    caller.key = "carol"
    async with Client(guarded()) as client:
        engine.reset()
        assert (await client.read_resource("invoice://42"))[0].text == "invoice 42"  # type: ignore[union-attr]
        with pytest.raises(MCPError, match=DENIED):
            await client.read_resource("invoice://43")
    first = engine.requests[0]
    assert (first.resource.type, first.resource.key, first.action) == ("invoice", "42", "read")


async def test_unknown_resource_gets_the_denial_message(
    guarded: GuardFactory, caller: Caller
) -> None:
    """Reading a resource that does not exist answers like a hidden one."""
    caller.key = "carol"
    async with Client(guarded()) as client:
        with pytest.raises(MCPError, match=DENIED):
            await client.read_resource("data://missing")


async def test_prompts_are_checked(guarded: GuardFactory, caller: Caller) -> None:
    """prompts/get is checked as mcp_server_prompts:read with the prompt name as key."""
    caller.key = "carol"
    async with Client(guarded()) as client:
        with pytest.raises(MCPError, match=DENIED):
            await client.get_prompt("summary", {"topic": "q3"})
    caller.key = "alice"
    async with Client(guarded()) as client:
        assert (await client.get_prompt("summary", {"topic": "q3"})).messages


async def test_key_and_tenant_from_arguments(
    guarded: GuardFactory, caller: Caller, engine: RecordingEngine
) -> None:
    """require_permission(key=..., tenant=...) read the instance key and tenant from arguments."""
    caller.key = "acme-bob"
    async with Client(guarded()) as client:
        engine.reset()
        ok = await client.call_tool("delete_invoice", {"invoice_id": "7", "org": "acme"})
        assert ok.data == "deleted 7"
        denied = await client.call_tool(
            "delete_invoice", {"invoice_id": "7", "org": "default"}, raise_on_error=False
        )
        assert denied.is_error
    first = engine.requests[0]
    assert (first.resource.type, first.resource.key, first.resource.tenant) == (
        "invoice",
        "7",
        "acme",
    )
    assert first.action == "delete"


async def test_engine_judges_the_coerced_value(
    guarded: GuardFactory, caller: Caller, engine: RecordingEngine
) -> None:
    """A string the tool would coerce to a number is judged as that number; junk is refused."""
    caller.key = "carol"
    async with Client(guarded()) as client:
        await client.list_tools()
        engine.reset()
        small = await client.call_tool("refund", {"amount": "50"}, raise_on_error=False)
        large = await client.call_tool("refund", {"amount": "500"}, raise_on_error=False)
        junk = await client.call_tool("refund", {"amount": "lots"}, raise_on_error=False)
        nan = await client.call_tool("refund", {"amount": "nan"}, raise_on_error=False)
    assert (small.is_error, large.is_error, junk.is_error, nan.is_error) == (
        False,
        True,
        True,
        True,
    )
    assert [r.resource.attributes["arg_amount"] for r in engine.requests] == [50.0, 500.0]


async def test_renamed_tool_uses_its_registered_name() -> None:
    """@mcp.tool(name=...) is checked under the name FastMCP registered."""
    mcp: FastMCP[Any] = FastMCP("s")

    @mcp.tool(name="send.mail")
    @require_permission()
    def send(to: str) -> str:
        return to

    engine = RecordingEngine(
        LocalPolicyEngine.from_dict(
            {
                "resources": {"mcp_server": {"actions": ["send-mail"]}},
                "roles": {"r": {"grants": {"mcp_server": ["send-mail"]}}},
                "users": {"client": {"roles": ["r"]}},
            }
        )
    )
    mcp.add_middleware(PermitMcpMiddleware(engine=engine))
    async with Client(mcp) as client:
        assert (await client.call_tool("send.mail", {"to": "x"})).data == "x"
    assert engine.requests[0].action == "send-mail"


async def test_mounted_server_specs_are_found(engine: RecordingEngine, caller: Caller) -> None:
    """Tools, resources and templates of a mounted server keep their decorators' specs."""
    sub: FastMCP[Any] = FastMCP("sub")

    @sub.tool
    @require_permission("greet")
    def subtool(x: int) -> int:
        return x

    @sub.tool
    @public
    def sub_public() -> str:
        return "pub"

    @sub.resource("data://sub/{item}")
    @require_permission("read", resource="invoice", key="item")
    def sub_item(item: str) -> str:
        return item

    parent: FastMCP[Any] = FastMCP("parent")
    parent.mount(sub, namespace="ns")
    parent.add_middleware(PermitMcpMiddleware(engine=engine, identity=caller, default_deny=True))
    caller.key = "carol"
    async with Client(parent) as client:
        assert await tool_names(client) == ["ns_sub_public", "ns_subtool"]
        engine.reset()
        assert (await client.call_tool("ns_subtool", {"x": 50})).data == 50
        assert (await client.call_tool("ns_sub_public", {})).data == "pub"
        assert (await client.read_resource("data://ns/sub/42"))[0].text == "42"  # type: ignore[union-attr]
        with pytest.raises(MCPError, match=DENIED):
            await client.read_resource("data://ns/sub/43")
    checked = [r for r in engine.requests if "/list" not in r.resource.attributes["mcp_method"]]
    assert [(r.resource.type, r.action, r.resource.key) for r in checked] == [
        ("mcp_server", "greet", None),
        ("invoice", "read", "42"),
        ("invoice", "read", "43"),
    ]


async def test_two_servers_do_not_share_specs(engine: RecordingEngine) -> None:
    """A tool name decorated in one server does not change the same name in another."""
    one: FastMCP[Any] = FastMCP("one")
    two: FastMCP[Any] = FastMCP("two")

    @one.tool(name="status")
    @public
    def status_one() -> str:
        return "one"

    @two.tool(name="status")
    def status_two() -> str:
        return "two"

    two.add_middleware(
        PermitMcpMiddleware(engine=engine, identity=Caller("lee"), default_deny=True)
    )
    async with Client(two) as client:
        result = await client.call_tool("status", {}, raise_on_error=False)
    assert result.is_error


async def test_identity_is_extracted_once_per_request(
    guarded: GuardFactory, caller: Caller
) -> None:
    """The identity extractor runs exactly once for each call and each list."""
    async with Client(guarded()) as client:
        await client.list_tools()  # fills the client's schema cache: no listing inside calls
        caller.seen = 0
        await client.call_tool("greet", {"name": "x"})
        await client.call_tool("greet", {"name": "y"})
        await client.list_tools()
    assert caller.seen == 3


async def test_denial_is_an_authorization_error() -> None:
    """Denials subclass FastMCP's AuthorizationError and permit_guard's root error."""
    assert issubclass(AccessDenied, AuthorizationError)
    from permit_guard import PermitGuardError

    assert issubclass(AccessDenied, PermitGuardError)


async def test_audit_event_per_decision(
    guarded: GuardFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Each call logs one audit event; each list one event with counts; no argument values."""
    with caplog.at_level(logging.INFO, logger="permit_guard.audit"):
        async with Client(guarded()) as client:
            caplog.clear()
            await client.call_tool("refund", {"amount": 5, "memo": "secret"})
            await client.list_tools()
    events = [r.permit_guard for r in caplog.records if hasattr(r, "permit_guard")]  # type: ignore[attr-defined]
    call = next(e for e in events if e["method"] == "tools/call")
    listing = next(e for e in events if e["method"] == "tools/list")
    assert call["allowed"] is True
    assert call["user"] == "alice"
    assert call["action"] == "refund"
    assert call["attributes"] == ["arg_amount", "mcp_method", "tool_name"]
    assert "role 'admin'" in call["reason"]
    assert {"time", "tenant", "resource_type", "engine", "duration_ms"} <= set(call)
    assert (listing["listed"], listing["hidden"]) == (5, 0)
    assert "secret" not in caplog.text
    assert "attribute_values" not in call


async def test_audit_can_be_silenced(
    guarded: GuardFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """enable_audit_logging=False writes no audit events."""
    with caplog.at_level(logging.INFO, logger="permit_guard.audit"):
        async with Client(guarded(enable_audit_logging=False)) as client:
            await client.call_tool("greet", {"name": "x"})
    assert not [r for r in caplog.records if r.name == "permit_guard.audit"]


async def test_requested_version_is_the_one_checked(
    engine: RecordingEngine, caller: Caller
) -> None:
    """With two versions, the version the client asks for is the one whose spec is checked."""
    mcp: FastMCP[Any] = FastMCP("v")

    @mcp.tool(name="greet", version="1")
    @public
    def greet_v1() -> str:
        return "v1"

    @mcp.tool(name="greet", version="2")
    @require_permission()
    def greet_v2() -> str:
        return "v2"

    caller.key = None
    mcp.add_middleware(PermitMcpMiddleware(engine=engine, identity=caller))
    async with Client(mcp) as client:
        assert (await client.call_tool("greet", {}, version="1")).data == "v1"
        latest = await client.call_tool("greet", {}, raise_on_error=False)
    assert latest.is_error
    assert "invalid or missing credentials" in latest.content[0].text  # type: ignore[union-attr]


async def test_decorator_on_public_subserver_and_parent_default_deny() -> None:
    """Public tools stay callable with a guard whose engine would deny everything."""
    mcp: FastMCP[Any] = FastMCP("s")

    @mcp.tool
    @public
    def login() -> str:
        return "token"

    mcp.add_middleware(
        PermitMcpMiddleware(engine=BrokenEngine(), identity=Caller(None), default_deny=True)
    )
    async with Client(mcp) as client:
        assert await tool_names(client) == ["login"]
        assert (await client.call_tool("login", {})).data == "token"


def test_policy_fixture_is_valid() -> None:
    """The shared test policy loads."""
    assert LocalPolicyEngine.from_dict(POLICY).name == "local"


async def test_abac_on_prompts_and_templates(engine: RecordingEngine, caller: Caller) -> None:
    """@abac_from_args selects prompt arguments and URI-template parameters too."""
    mcp: FastMCP[Any] = FastMCP("s")

    @mcp.prompt
    @require_permission()
    @abac_from_args("topic")
    def brief(topic: str, tone: str = "dry") -> str:
        return f"{topic} {tone}"

    @mcp.resource("report://{year}/{region}")
    @require_permission()
    @abac_from_args("region")
    def report(year: str, region: str) -> str:
        return f"{year} {region}"

    mcp.add_middleware(PermitMcpMiddleware(engine=engine, identity=caller))
    async with Client(mcp) as client:
        engine.reset()
        await client.get_prompt("brief", {"topic": "q3", "tone": "warm"})
        await client.read_resource("report://2026/emea")
    prompt, resource = engine.requests
    assert dict(prompt.resource.attributes) == {
        "arg_topic": "q3",
        "mcp_method": "prompts/get",
        "prompt_name": "brief",
    }
    assert dict(resource.resource.attributes) == {
        "arg_region": "emea",
        "mcp_method": "resources/read",
        "resource_uri": "report://2026/emea",
    }
    assert (resource.resource.type, resource.resource.key) == (
        "mcp_server_resources",
        "report://2026/emea",
    )


async def test_mounted_prompts_and_static_resources(
    engine: RecordingEngine, caller: Caller
) -> None:
    """Prompts and static resources of a mounted server keep their specs under default deny."""
    sub: FastMCP[Any] = FastMCP("sub")

    @sub.prompt
    @public
    def hello() -> str:
        return "hello"

    @sub.resource("data://sub/config")
    @public
    def sub_config() -> str:
        return "config"

    @sub.prompt
    def undecorated_prompt() -> str:
        return "hidden"

    parent: FastMCP[Any] = FastMCP("parent")
    parent.mount(sub, namespace="ns")
    parent.add_middleware(PermitMcpMiddleware(engine=engine, identity=caller, default_deny=True))
    caller.key = None
    async with Client(parent) as client:
        assert [p.name for p in await client.list_prompts()] == ["ns_hello"]
        assert (await client.get_prompt("ns_hello")).messages
        assert [str(r.uri) for r in await client.list_resources()] == ["data://ns/sub/config"]
        assert (await client.read_resource("data://ns/sub/config"))[0].text == "config"  # type: ignore[union-attr]


async def test_current_principal_is_the_checked_caller(engine: RecordingEngine) -> None:
    """Inside a guarded tool, prompt or read, current_principal() is the caller just allowed."""
    from permit_guard import current_principal

    mcp: FastMCP[Any] = FastMCP("s")
    seen: list[object] = []

    @mcp.tool
    @require_permission("greet")
    def whoami() -> str:
        principal = current_principal()
        seen.append(principal.key if principal else None)
        return "ok"

    @mcp.tool
    @public
    def anonymous() -> str:
        seen.append(current_principal())
        return "ok"

    @mcp.resource("data://me")
    @require_permission("read", resource="mcp_server_resources")
    def me() -> str:
        principal = current_principal()
        return principal.key if principal else "?"

    caller = Caller("alice")
    mcp.add_middleware(PermitMcpMiddleware(engine=engine, identity=caller))
    async with Client(mcp) as client:
        await client.call_tool("whoami", {})
        await client.call_tool("anonymous", {})
        assert (await client.read_resource("data://me"))[0].text == "alice"  # type: ignore[union-attr]
    assert seen == ["alice", None]
    assert current_principal() is None
