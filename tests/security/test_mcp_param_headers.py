"""Mcp-Param-* header validation must not tell a hidden tool from an unknown one.

On the modern protocol (2026-07-28) over streamable HTTP, the mcp SDK checks a
``tools/call``'s ``Mcp-Param-*`` headers against the tool's input schema
before any middleware runs (``_streamable_http_modern._mcp_param_rejection``).
FastMCP 4.2 serves that schema from a server-wide cache filled at registration
(``FastMCP._get_tool_input_schema``), whoever asks. A tool the guard hides
then answers ``-32020 "Mcp-Param-Region header is missing ..."`` where an
unknown tool gets the guard's answer: the tool's existence and its argument
names leak, even to a caller without credentials, and the guard never sees
(or audits) the probe.
"""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastmcp import Client, FastMCP
from fastmcp.client.transports import StreamableHttpTransport
from mcp import MCPError
from pydantic import Field

from permit_guard import (
    DecisionEvent,
    HeaderIdentity,
    LocalPolicyEngine,
    PermitMcpMiddleware,
    public,
    require_permission,
)

from ..serving import serve_http

MODERN = "2026-07-28"
HIDDEN = "ship"
UNKNOWN = "ghost"

POLICY: dict[str, Any] = {
    "resources": {
        "mcp_server": {"actions": ["ship"]},
        "mcp_server_tools": {"actions": ["list"]},
    },
    "roles": {
        "shipper": {"grants": {"mcp_server": ["ship"], "mcp_server_tools": ["list"]}},
        "viewer": {"grants": {"mcp_server_tools": ["list"]}},
    },
    "users": {"alice": {"roles": ["shipper"]}, "eve": {"roles": ["viewer"]}},
}

#: What a call answered: its HTTP status, then ("error", JSON-RPC code, message) or
#: ("result", is_error, text), the tool's name masked so hidden and unknown compare.
Outcome = tuple[int, str, object, str]


def build_server(events: list[DecisionEvent]) -> FastMCP[Any]:
    """A server whose ``ship`` binds ``region`` to the ``Mcp-Param-Region`` header."""
    mcp: FastMCP[Any] = FastMCP("shipping")

    @mcp.tool
    @require_permission()
    def ship(
        region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})],
        count: int = 1,
    ) -> str:
        return f"shipped {count} to {region}"

    @mcp.tool
    @public
    def health() -> str:
        return "ok"

    mcp.add_middleware(
        PermitMcpMiddleware(
            engine=LocalPolicyEngine.from_dict(POLICY),
            identity=HeaderIdentity("X-User"),
            default_deny=True,
            audit_sink=events.append,
            enable_audit_logging=True,
        )
    )
    return mcp


class ModernClient:
    """A real client pinned to the modern protocol, and the HTTP status of each POST it made."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.statuses: list[int] = []
        transport = StreamableHttpTransport(
            url, headers=headers, httpx_client_factory=self._http_client
        )
        self.client: Client[Any] = Client(transport, mode=MODERN)

    def _http_client(self, **options: Any) -> Any:
        import httpx2  # the mcp SDK's HTTP client from 4.2 on

        async def record(response: Any) -> None:
            self.statuses.append(response.status_code)

        options.setdefault("timeout", httpx2.Timeout(30.0, read=300.0))
        return httpx2.AsyncClient(**options, event_hooks={"response": [record]})

    async def outcome(self, name: str, arguments: dict[str, Any]) -> Outcome:
        """Call ``name`` once and describe the answer, the name masked."""
        try:
            result = await self.client.call_tool(name, arguments, raise_on_error=False)
        except MCPError as exc:
            masked = exc.error.message.replace(repr(name), "<tool>")
            return (self.statuses[-1], "error", exc.error.code, masked)
        texts = " ".join(getattr(block, "text", "") for block in result.content)
        return (self.statuses[-1], "result", result.is_error, texts.replace(repr(name), "<tool>"))


def identity_headers(user: str | None) -> dict[str, str]:
    return {"X-User": user} if user is not None else {}


@pytest.mark.parametrize(
    ("user", "probe"),
    [
        ("eve", "argument"),
        ("eve", "header"),
        (None, "argument"),
        (None, "header"),
    ],
    ids=[
        "hidden-by-policy-argument",
        "hidden-by-policy-header",
        "anonymous-argument",
        "anonymous-header",
    ],
)
async def test_hidden_tool_answers_like_unknown(user: str | None, probe: str) -> None:
    """A tool the caller may not see answers tools/call exactly like a tool that does not exist."""
    events: list[DecisionEvent] = []
    mcp = build_server(events)
    headers = identity_headers(user)
    if probe == "header":
        # A forged binding header with no body argument probes for argument names.
        headers["Mcp-Param-Region"] = "eu"
        arguments: dict[str, Any] = {}
    else:
        # The body argument without its header: what any client that never
        # listed the tool sends.
        arguments = {"region": "eu"}
    async with serve_http(mcp) as url:
        probe_client = ModernClient(url, headers)
        async with probe_client.client as client:
            assert client.protocol_version == MODERN
            listed = sorted(tool.name for tool in await client.list_tools())
            hidden = await probe_client.outcome(HIDDEN, arguments)
            unknown = await probe_client.outcome(UNKNOWN, arguments)
    assert listed == ["health"], "the tool must be hidden from this caller"
    assert hidden == unknown
    calls = [event.component for event in events if event.method == "tools/call"]
    assert calls == [HIDDEN, UNKNOWN], "the guard, not the transport, must answer both"


async def test_allowed_caller_keeps_header_validation() -> None:
    """A caller allowed the tool still gets -32020 for a header that disagrees with the body."""
    events: list[DecisionEvent] = []
    mcp = build_server(events)
    async with serve_http(mcp) as url:
        async with ModernClient(url, identity_headers("alice")).client as client:
            assert HIDDEN in {tool.name for tool in await client.list_tools()}
            # Listed, so the client mirrors `region` into Mcp-Param-Region itself.
            assert (await client.call_tool(HIDDEN, {"region": "eu"})).data == "shipped 1 to eu"
        forged = ModernClient(url, identity_headers("alice") | {"Mcp-Param-Region": "us"})
        async with forged.client:
            # Never listed on this client: only the forged header is sent.
            mismatch = await forged.outcome(HIDDEN, {"region": "eu", "count": 2})
            absent = await forged.outcome(HIDDEN, {})
    assert mismatch == (
        400,
        "error",
        -32020,
        "Mcp-Param-Region header does not match the request body's 'region' argument",
    )
    assert absent == (
        400,
        "error",
        -32020,
        "Mcp-Param-Region header is present but the request body's 'region' argument is absent",
    )
