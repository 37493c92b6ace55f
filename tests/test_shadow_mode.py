"""Shadow mode (``enforce=False``): all decided and audited, nothing the policy denies refused."""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest
from fastmcp import Client, FastMCP

from permit_guard import (
    ConfigurationError,
    FixedIdentity,
    LocalPolicyEngine,
    PermitMcpMiddleware,
    require_permission,
)
from permit_guard.audit import DecisionEvent

from .conftest import POLICY, Caller, build_server

SHADOW_START = "shadow mode (enforce=False)"


def shadow_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "permit_guard" and r.levelno == logging.WARNING
    ]


def guarded(caller: Caller, **options: Any) -> tuple[FastMCP[Any], list[DecisionEvent]]:
    """The billing server under a guard on POLICY; the audit events it records."""
    events: list[DecisionEvent] = []
    mcp = build_server()
    PermitMcpMiddleware(
        engine=LocalPolicyEngine.from_dict(POLICY),
        identity=caller,
        audit_sink=events.append,
        **options,
    ).attach(mcp)
    return mcp, events


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PERMIT_MCP_ variable leaks in."""
    for name in list(os.environ):
        if name.startswith("PERMIT_MCP_"):
            monkeypatch.delenv(name)


async def test_denied_call_goes_through_and_is_audited_as_denied(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A call the policy denies runs; its event says allowed=false, enforced=false; one warning."""
    mcp, events = guarded(Caller("lee"), enforce=False)
    with caplog.at_level(logging.WARNING, logger="permit_guard"):
        async with Client(mcp) as client:
            result = await client.call_tool("refund", {"amount": 5})
    assert result.data == "refunded 5.0"
    call = next(e for e in events if e.method == "tools/call")
    assert (call.allowed, call.enforced) == (False, False)
    assert call.as_dict()["enforced"] is False
    (would,) = [m for m in shadow_warnings(caplog) if "would deny" in m]
    assert would.startswith("shadow mode: would deny tools/call 'refund' for user 'lee': ")
    assert would.endswith(call.reason)
    assert "mcp_server:refund" in would


async def test_enforcing_guard_still_refuses() -> None:
    """With enforce left on, the same call is refused and its event says enforced=true."""
    mcp, events = guarded(Caller("lee"))
    async with Client(mcp) as client:
        result = await client.call_tool("refund", {"amount": 5}, raise_on_error=False)
        tools = await client.list_tools()
    assert result.is_error
    assert "not found or not authorized" in result.content[0].text  # type: ignore[union-attr]
    assert [t.name for t in tools] == ["health"]
    assert all(e.enforced for e in events)


async def test_lists_show_what_they_would_hide(caplog: pytest.LogCaptureFixture) -> None:
    """A list shows every item; its event keeps the policy's counts; one warning names the rest."""
    mcp, events = guarded(Caller("lee"), enforce=False, default_deny=True)
    with caplog.at_level(logging.WARNING, logger="permit_guard"):
        async with Client(mcp) as client:
            tools = await client.list_tools()
    assert sorted(t.name for t in tools) == [
        "delete_invoice",
        "greet",
        "health",
        "refund",
        "undecorated",
    ]
    listing = next(e for e in events if e.method == "tools/list")
    assert (listing.listed, listing.hidden, listing.enforced) == (1, 4, False)
    (warning,) = [m for m in shadow_warnings(caplog) if "would hide" in m]
    assert warning.startswith("shadow mode: tools/list would hide 4 of 5 for user 'lee': ")
    assert "'refund', 'greet', 'undecorated', 'delete_invoice': gate denied: " in warning


async def test_item_reasons_in_the_list_warning(caplog: pytest.LogCaptureFixture) -> None:
    """With the gate allowed, the warning gives each hidden item its own reason."""
    mcp, _ = guarded(Caller("acme-bob"), enforce=False, default_deny=True)
    with caplog.at_level(logging.WARNING, logger="permit_guard"):
        async with Client(mcp) as client:
            assert len(await client.list_tools()) == 5
    (warning,) = [m for m in shadow_warnings(caplog) if "would hide" in m]
    assert "'undecorated' (undecorated under default deny)" in warning
    assert "'delete_invoice' (no role" in warning


async def test_reads_renders_and_default_deny_go_through() -> None:
    """Reads, prompt renders and undecorated tools under default deny all run in shadow mode."""
    mcp, events = guarded(Caller("lee"), enforce=False, default_deny=True)
    async with Client(mcp) as client:
        assert (await client.call_tool("undecorated", {})).data == "undecorated ran"
        read = await client.read_resource("data://config")
        prompt = await client.get_prompt("summary", {"topic": "q3"})
    assert read[0].text == "config"  # type: ignore[union-attr]
    assert "summarize q3" in prompt.messages[0].content.text  # type: ignore[union-attr]
    decided = [e for e in events if e.component is not None]
    assert {e.method for e in decided} == {"tools/call", "resources/read", "prompts/get"}
    assert all((e.allowed, e.enforced) == (False, False) for e in decided)
    default_deny = next(e for e in decided if e.component == "undecorated")
    assert default_deny.engine == "guard"


async def test_callers_without_credentials_are_still_refused() -> None:
    """Shadow mode never turns authentication off: no credentials, no call, a public-only list."""
    mcp, events = guarded(Caller(None), enforce=False)
    async with Client(mcp) as client:
        result = await client.call_tool("refund", {"amount": 5}, raise_on_error=False)
        tools = await client.list_tools()
    assert result.is_error
    assert "invalid or missing credentials" in result.content[0].text  # type: ignore[union-attr]
    assert [t.name for t in tools] == ["health"]
    denied = [e for e in events if not e.allowed]
    assert denied
    assert all(e.enforced for e in denied)


async def test_start_warning_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    """Building a shadow-mode guard warns once; attaching and serving do not warn again."""
    with caplog.at_level(logging.WARNING, logger="permit_guard"):
        mcp, _ = guarded(Caller("alice"), enforce=False)
        async with Client(mcp) as client:
            await client.call_tool("greet", {"name": "x"})
            await client.list_tools()
    starts = [m for m in shadow_warnings(caplog) if SHADOW_START in m]
    assert len(starts) == 1
    assert "without valid credentials" in starts[0]
    assert not [m for m in shadow_warnings(caplog) if "would" in m]  # alice is allowed all


async def test_enforcing_guard_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    """The default guard logs no shadow-mode warning, at start or on a denial."""
    with caplog.at_level(logging.WARNING, logger="permit_guard"):
        mcp, _ = guarded(Caller("lee"))
        async with Client(mcp) as client:
            await client.call_tool("refund", {"amount": 5}, raise_on_error=False)
    assert not [m for m in shadow_warnings(caplog) if "shadow mode" in m]


async def test_enforce_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """PERMIT_MCP_ENFORCE=false turns shadow mode on; a keyword wins over it."""
    monkeypatch.setenv("PERMIT_MCP_ENFORCE", "false")
    mcp, _ = guarded(Caller("lee"))
    async with Client(mcp) as client:
        assert (await client.call_tool("refund", {"amount": 5})).data == "refunded 5.0"
    enforcing, _ = guarded(Caller("lee"), enforce=True)
    async with Client(enforcing) as client:
        assert (await client.call_tool("refund", {"amount": 5}, raise_on_error=False)).is_error


def test_malformed_enforce_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A PERMIT_MCP_ENFORCE that is not a boolean is a configuration error naming it."""
    monkeypatch.setenv("PERMIT_MCP_ENFORCE", "sometimes")
    with pytest.raises(ConfigurationError, match="PERMIT_MCP_ENFORCE"):
        PermitMcpMiddleware(engine=LocalPolicyEngine.from_dict(POLICY))


async def test_completion_of_a_hidden_prompt_is_answered(caplog: pytest.LogCaptureFixture) -> None:
    """A completion the policy would answer empty gets the handler's values, with a warning."""
    mcp: FastMCP[Any] = FastMCP("completion")

    @mcp.prompt
    @require_permission()
    def secret_plan(target: str) -> str:
        return f"plan for {target}"

    @mcp.completion
    def suggest(ref: Any, argument: Any, context: Any) -> list[str]:
        return ["acme-1"]

    PermitMcpMiddleware(
        engine=LocalPolicyEngine.from_dict(POLICY), identity=FixedIdentity("lee"), enforce=False
    ).attach(mcp)
    with caplog.at_level(logging.WARNING, logger="permit_guard"):
        async with Client(mcp) as client:
            ref = {"type": "ref/prompt", "name": "secret_plan"}
            result = await client.complete(ref, {"name": "target", "value": "a"})
    assert list(result.values) == ["acme-1"]
    assert any("would deny completion/complete 'secret_plan'" in m for m in shadow_warnings(caplog))
