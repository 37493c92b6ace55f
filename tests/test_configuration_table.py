"""Every setting of the permit-fastmcp configuration table, through the environment and keywords.

Each row sets one variable (or a pair that only works together), first in the
environment, then as constructor keywords, and checks its effect on what the
engine is asked — not merely that the value was read.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client

from permit_guard import (
    LocalPolicyEngine,
    PermitMcpMiddleware,
    PermitPDPEngine,
    create_permit_middleware,
)
from permit_guard.identity import FixedIdentity, HeaderIdentity, JwtIdentity
from permit_guard.testing import LocalPDP, RecordingEngine

from .conftest import POLICY, build_server

SECRET = "test-secret-" + "x" * 32


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No PERMIT_MCP_ variable or .env file leaks in."""
    for name in list(os.environ):
        if name.startswith("PERMIT_MCP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


async def drive(guard: PermitMcpMiddleware) -> list[Any]:
    """List tools and prompts, call refund and render a prompt; the requests the engine saw."""
    mcp = build_server()
    mcp.add_middleware(guard)
    engine = guard.engine
    assert isinstance(engine, RecordingEngine)
    async with Client(mcp) as client:
        await client.list_tools()
        await client.list_prompts()
        await client.call_tool("refund", {"amount": 5, "memo": "m"}, raise_on_error=False)
        with contextlib.suppress(Exception):  # a denial is fine: the request is checked
            await client.get_prompt("summary", {"topic": "q3"})
    return engine.requests


def gate(requests: list[Any], method: str) -> list[Any]:
    return [
        r
        for r in requests
        if r.resource.attributes.get("mcp_method") == method and r.action.endswith("list")
    ]


def called(requests: list[Any], method: str) -> Any:
    return next(r for r in requests if r.resource.attributes.get("mcp_method") == method)


Check = Callable[[list[Any]], None]


def known_methods(requests: list[Any]) -> None:
    assert not gate(requests, "tools/list")  # tools/list not known: public only, no gate
    assert not [r for r in requests if r.resource.attributes.get("mcp_method") == "tools/list"]


def bypassed(requests: list[Any]) -> None:
    assert not gate(requests, "tools/list")  # gate bypassed...
    assert [r for r in requests if r.resource.attributes.get("mcp_method") == "tools/list"]


def action_prefix(requests: list[Any]) -> None:
    assert called(requests, "prompts/get").action == "mcp_read"
    assert called(requests, "tools/call").action == "refund"  # tool actions unprefixed


def resource_prefix(requests: list[Any]) -> None:
    assert called(requests, "prompts/get").resource.type == "x_prompts"


def server_name(requests: list[Any]) -> None:
    assert called(requests, "tools/call").resource.type == "billing"
    assert called(requests, "prompts/get").resource.type == "billing_prompts"


def no_server_prefix(requests: list[Any]) -> None:
    assert called(requests, "prompts/get").resource.type == "mcp_prompts"


def fixed_value(requests: list[Any]) -> None:
    assert {r.user.key for r in requests} == {"svc-7"}


def not_flattened(requests: list[Any]) -> None:
    attributes = called(requests, "tools/call").resource.attributes
    assert attributes["arguments"] == {"amount": 5.0}
    assert "arg_amount" not in attributes


def argument_prefix(requests: list[Any]) -> None:
    attributes = called(requests, "tools/call").resource.attributes
    assert attributes["p_amount"] == 5.0


ROWS: list[tuple[dict[str, str], dict[str, Any], Check]] = [
    (
        {"KNOWN_METHODS": '["tools/call","prompts/get"]'},
        {"known_methods": ["tools/call", "prompts/get"]},
        known_methods,
    ),
    (
        {"BYPASSED_METHODS": '["initialize","tools/list"]'},
        {"bypass_methods": ["initialize", "tools/list"]},
        bypassed,
    ),
    ({"ACTION_PREFIX": "mcp_"}, {"action_prefix": "mcp_"}, action_prefix),
    (
        {"RESOURCE_PREFIX": "x_", "PREFIX_RESOURCE_WITH_SERVER_NAME": "false"},
        {"resource_prefix": "x_", "prefix_resource_with_server_name": False},
        resource_prefix,
    ),
    ({"MCP_SERVER_NAME": "billing"}, {"mcp_server_name": "billing"}, server_name),
    (
        {"PREFIX_RESOURCE_WITH_SERVER_NAME": "false"},
        {"prefix_resource_with_server_name": False},
        no_server_prefix,
    ),
    ({"IDENTITY_FIXED_VALUE": "svc-7"}, {"identity_fixed_value": "svc-7"}, fixed_value),
    ({"FLATTEN_TOOL_ARGUMENTS": "false"}, {"flatten_tool_arguments": False}, not_flattened),
    ({"TOOL_ARGUMENT_PREFIX": "p_"}, {"tool_argument_prefix": "p_"}, argument_prefix),
]


@pytest.mark.parametrize("source", ["environment", "keyword"])
@pytest.mark.parametrize(("variables", "keywords", "check"), ROWS, ids=lambda v: str(v)[:50])
async def test_mapping_settings(
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    variables: dict[str, str],
    keywords: dict[str, Any],
    check: Check,
) -> None:
    """A mapping setting changes what the engine is asked, from either source."""
    engine = RecordingEngine(LocalPolicyEngine.from_dict(POLICY))
    if source == "environment":
        for name, value in variables.items():
            monkeypatch.setenv(f"PERMIT_MCP_{name}", value)
        guard = PermitMcpMiddleware(engine=engine)
    else:
        guard = PermitMcpMiddleware(engine=engine, **keywords)
    check(await drive(guard))


@pytest.mark.parametrize("source", ["environment", "keyword"])
async def test_pdp_url_and_api_key(monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    """PERMIT_MCP_PERMIT_PDP_URL and _PERMIT_API_KEY point the guard at that PDP with that key."""
    async with LocalPDP.from_dict(POLICY, api_key="permit_key_FAKE_table") as pdp:
        if source == "environment":
            monkeypatch.setenv("PERMIT_MCP_PERMIT_PDP_URL", pdp.url)
            monkeypatch.setenv("PERMIT_MCP_PERMIT_API_KEY", "permit_key_FAKE_table")
            guard = PermitMcpMiddleware()
        else:
            guard = create_permit_middleware(
                permit_pdp_url=pdp.url, permit_api_key="permit_key_FAKE_table"
            )
        assert isinstance(guard.engine, PermitPDPEngine)
        mcp = build_server()
        mcp.add_middleware(guard)
        async with Client(mcp) as client:
            await client.call_tool("greet", {"name": "x"}, raise_on_error=False)
        await guard.aclose()
        assert pdp.requests_by_path.get("/allowed", 0) >= 1


@pytest.mark.parametrize("source", ["environment", "keyword"])
async def test_enable_audit_logging(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, source: str
) -> None:
    """PERMIT_MCP_ENABLE_AUDIT_LOGGING=false writes no audit events."""
    engine = RecordingEngine(LocalPolicyEngine.from_dict(POLICY))
    if source == "environment":
        monkeypatch.setenv("PERMIT_MCP_ENABLE_AUDIT_LOGGING", "false")
        guard = PermitMcpMiddleware(engine=engine)
    else:
        guard = PermitMcpMiddleware(engine=engine, enable_audit_logging=False)
    with caplog.at_level(logging.INFO, logger="permit_guard.audit"):
        await drive(guard)
    assert not [r for r in caplog.records if r.name == "permit_guard.audit"]


IDENTITY_ROWS: list[tuple[dict[str, str], type, Callable[[Any], bool]]] = [
    ({"IDENTITY_MODE": "fixed"}, FixedIdentity, lambda i: repr(i) == "FixedIdentity('client')"),
    (
        {"IDENTITY_MODE": "header", "IDENTITY_HEADER": "X-User"},
        HeaderIdentity,
        lambda i: i.header == "X-User",
    ),
    (
        {
            "IDENTITY_MODE": "jwt",
            "IDENTITY_JWT_SECRET": SECRET,
            "IDENTITY_JWT_FIELD": "email",
            "JWT_ALGORITHMS": '["HS512"]',
            "IDENTITY_HEADER": "X-Token",
            "IDENTITY_HEADER_REGEX": "Token (.+)",
        },
        JwtIdentity,
        lambda i: (
            (i.claims.field, i.algorithms, i.header, i._pattern.pattern)
            == ("email", ["HS512"], "X-Token", "Token (.+)")
        ),
    ),
]


@pytest.mark.parametrize("source", ["environment", "keyword"])
@pytest.mark.parametrize(("variables", "kind", "check"), IDENTITY_ROWS, ids=lambda v: str(v)[:40])
def test_identity_settings(
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    variables: dict[str, str],
    kind: type,
    check: Callable[[Any], bool],
) -> None:
    """The identity variables build the extractor they describe (behaviour: test_identity)."""
    engine = LocalPolicyEngine.from_dict(POLICY)
    if source == "environment":
        for name, value in variables.items():
            monkeypatch.setenv(f"PERMIT_MCP_{name}", value)
        guard = PermitMcpMiddleware(engine=engine)
    else:
        import json

        keywords = {
            name.lower(): json.loads(value) if value.startswith("[") else value
            for name, value in variables.items()
        }
        guard = PermitMcpMiddleware(engine=engine, **keywords)
    assert isinstance(guard.identity, kind)
    assert check(guard.identity)


async def test_empty_bypass_list_means_no_bypass() -> None:
    """bypass_methods=[] does not fall back to the defaults: ping is then refused."""
    from mcp import MCPError

    guard = create_permit_middleware(engine=LocalPolicyEngine.from_dict(POLICY), bypass_methods=[])
    assert guard.settings.bypassed_methods == []
    mcp = build_server()
    mcp.add_middleware(guard)
    async with Client(mcp) as client:
        with pytest.raises(MCPError, match="'ping' is not allowed"):
            await client.ping()


async def test_unknown_methods_can_be_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """PERMIT_MCP_UNKNOWN_METHODS=allow lets unknown methods through; components stay checked."""
    from mcp import MCPError

    monkeypatch.setenv("PERMIT_MCP_UNKNOWN_METHODS", "allow")
    engine = RecordingEngine(LocalPolicyEngine.from_dict(POLICY))
    guard = PermitMcpMiddleware(engine=engine, bypass_methods=[], known_methods=["tools/call"])
    mcp = build_server()
    mcp.add_middleware(guard)
    async with Client(mcp) as client:
        with pytest.raises(MCPError, match="Method not found"):  # FastMCP's answer, not ours
            await client.ping()
        result = await client.call_tool("greet", {"name": "x"}, raise_on_error=False)
    assert result.is_error  # user 'client' has no role: still checked, and denied
    assert [r.action for r in engine.requests if r.action == "greet"] == ["greet"]
