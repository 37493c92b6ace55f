"""The guard on real transports: streamable HTTP with header identity, and stdio."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport, StreamableHttpTransport

from permit_guard import HeaderIdentity, LocalPolicyEngine, PermitMcpMiddleware
from permit_guard.testing import RecordingEngine

from .conftest import POLICY, build_server
from .serving import serve_http

DENIED = "not found or not authorized"


def http_client(url: str, user: str | None) -> Client[Any]:
    headers = {"X-User": user} if user is not None else {}
    return Client(StreamableHttpTransport(url, headers=headers))


async def test_header_identity_over_http() -> None:
    """Over HTTP each request is decided for the user its header names."""
    engine = RecordingEngine(LocalPolicyEngine.from_dict(POLICY))
    mcp = build_server()
    mcp.add_middleware(
        PermitMcpMiddleware(engine=engine, identity=HeaderIdentity("X-User"), default_deny=True)
    )
    async with serve_http(mcp) as url:
        async with http_client(url, "alice") as client:
            assert (await client.call_tool("refund", {"amount": 500})).data == "refunded 500.0"
        async with http_client(url, "carol") as client:
            names = sorted(t.name for t in await client.list_tools())
            denied = await client.call_tool("refund", {"amount": 500}, raise_on_error=False)
        async with http_client(url, None) as client:
            anonymous = sorted(t.name for t in await client.list_tools())
            missing = await client.call_tool("greet", {"name": "x"}, raise_on_error=False)
    assert names == ["delete_invoice", "greet", "health", "refund"]
    assert denied.is_error
    assert DENIED in denied.content[0].text
    assert anonymous == ["health"]
    assert "invalid or missing credentials" in missing.content[0].text  # type: ignore[union-attr]
    assert {r.user.key for r in engine.requests} == {"alice", "carol"}


async def test_concurrent_users_over_http() -> None:
    """Interleaved calls from several users are each decided for their own user."""
    engine = RecordingEngine(LocalPolicyEngine.from_dict(POLICY))
    mcp = build_server()
    mcp.add_middleware(PermitMcpMiddleware(engine=engine, identity=HeaderIdentity("X-User")))
    users = ["alice", "carol", "lee", "alice", "carol", "lee"]

    async def run(user: str) -> list[bool]:
        outcomes = []
        async with http_client(url, user) as client:
            for amount in (50, 500):
                result = await client.call_tool("refund", {"amount": amount}, raise_on_error=False)
                outcomes.append(not result.is_error)
        return outcomes

    async with serve_http(mcp) as url:
        results = await asyncio.gather(*(run(user) for user in users))
    expected = {"alice": [True, True], "carol": [True, False], "lee": [False, False]}
    assert results == [expected[user] for user in users]
    for request, decision in zip(engine.requests, engine.decisions, strict=True):
        if request.resource.attributes.get("mcp_method") != "tools/call":
            continue
        amount = request.resource.attributes["arg_amount"]
        assert decision.allowed == expected[request.user.key][amount == 500]


STDIO_SERVER = Path(__file__).parent / "stdio_server.py"


@pytest.mark.parametrize("user", ["alice", "carol"])
async def test_stdio_is_enforced(user: str) -> None:
    """stdio is not exempt: the fixed identity is checked like any other caller."""
    transport = StdioTransport(
        command=sys.executable,
        args=[str(STDIO_SERVER)],
        env={"PERMIT_MCP_IDENTITY_FIXED_VALUE": user},
    )
    async with Client(transport) as client:
        names = sorted(t.name for t in await client.list_tools())
        result = await client.call_tool("refund", {"amount": 500}, raise_on_error=False)
    if user == "alice":
        assert not result.is_error
        assert "undecorated" in names
    else:
        assert result.is_error
        assert DENIED in result.content[0].text
        assert names == ["delete_invoice", "greet", "health", "refund"]
