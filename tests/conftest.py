"""Shared fixtures: a guarded billing server and the policy that governs it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from fastmcp import FastMCP
from fastmcp.server.middleware import MiddlewareContext

from permit_guard import (
    AuthzRequest,
    Decision,
    EngineError,
    LocalPolicyEngine,
    PermitMcpMiddleware,
    Principal,
    abac_from_args,
    public,
    require_permission,
)
from permit_guard.testing import RecordingEngine

POLICY: dict[str, Any] = {
    "resources": {
        "mcp_server": {"actions": ["refund", "greet", "undecorated", "ns-subtool", "echo"]},
        "mcp_server_tools": {"actions": ["list"]},
        "mcp_server_resources": {"actions": ["read", "list"]},
        "mcp_server_prompts": {"actions": ["read", "list"]},
        "invoice": {"actions": ["read", "delete"], "roles": {"owner": ["read", "delete"]}},
    },
    "resource_sets": {
        "small_refunds": {
            "resource": "mcp_server",
            "condition": {"allOf": [{"resource.arg_amount": {"less-than-equals": 100}}]},
        }
    },
    "roles": {
        "admin": {
            "grants": {
                "mcp_server": ["*"],
                "mcp_server_tools": ["list"],
                "mcp_server_resources": ["*"],
                "mcp_server_prompts": ["*"],
                "invoice": ["*"],
            }
        },
        "clerk": {
            "grants": {
                "mcp_server": ["greet"],
                "small_refunds": ["refund"],
                "mcp_server_tools": ["list"],
                "mcp_server_resources": ["list"],
                "mcp_server_prompts": ["list"],
            }
        },
        "lister": {"grants": {"mcp_server": ["greet"]}},
    },
    "users": {
        "alice": {"roles": ["admin"]},
        "carol": {"roles": ["clerk"], "resource_roles": {"invoice:42": ["owner"]}},
        "lee": {"roles": ["lister"]},
        "acme-bob": {"roles": {"acme": ["admin"], "default": ["clerk"]}},
    },
}


class Caller:
    """A switchable identity: tests set ``key`` (or ``None`` for no credentials)."""

    def __init__(self, key: str | None = "alice", tenant: str | None = None) -> None:
        self.key = key
        self.tenant = tenant
        self.seen = 0

    def __call__(self, context: MiddlewareContext[Any]) -> Principal | None:
        self.seen += 1
        return None if self.key is None else Principal(key=self.key, tenant=self.tenant)


class BrokenEngine:
    """An engine that cannot decide, as when the policy service is down."""

    name = "broken"

    async def check(self, request: AuthzRequest) -> Decision:
        raise EngineError("policy service unreachable at http://10.0.0.1:7766")

    async def check_many(self, requests: Sequence[AuthzRequest]) -> list[Decision]:
        raise EngineError("policy service unreachable at http://10.0.0.1:7766")


def build_server(name: str = "billing") -> FastMCP[Any]:
    """A server with every kind of component, decorated in both stacking orders."""
    mcp: FastMCP[Any] = FastMCP(name)

    @mcp.tool
    @require_permission()
    @abac_from_args("amount")
    def refund(amount: float, memo: str = "") -> str:
        return f"refunded {amount}"

    @require_permission()
    @mcp.tool
    async def greet(name: str) -> str:
        return f"hello {name}"

    @mcp.tool
    @public
    def health() -> str:
        return "ok"

    @mcp.tool
    def undecorated() -> str:
        return "undecorated ran"

    @mcp.tool
    @require_permission("delete", resource="invoice", key="invoice_id", tenant="org")
    def delete_invoice(invoice_id: str, org: str) -> str:
        return f"deleted {invoice_id}"

    @mcp.resource("data://config")
    @require_permission()
    def config() -> str:
        return "config"

    @mcp.resource("data://open")
    @public
    def open_data() -> str:
        return "open"

    @require_permission("read", resource="invoice", key="invoice_id")
    @mcp.resource("invoice://{invoice_id}")
    def invoice(invoice_id: str) -> str:
        return f"invoice {invoice_id}"

    @mcp.prompt
    @require_permission()
    def summary(topic: str) -> str:
        return f"summarize {topic}"

    @mcp.prompt
    @public
    def help_prompt() -> str:
        return "help"

    return mcp


@pytest.fixture
def engine() -> RecordingEngine:
    """The local engine on POLICY, recording every call."""
    return RecordingEngine(LocalPolicyEngine.from_dict(POLICY))


@pytest.fixture
def caller() -> Caller:
    """The identity of the next request (alice, the admin, by default)."""
    return Caller()


GuardFactory = Callable[..., FastMCP[Any]]


@pytest.fixture
def guarded(engine: RecordingEngine, caller: Caller) -> GuardFactory:
    """Build the billing server guarded by the recording engine and the switchable caller."""

    def make(**options: Any) -> FastMCP[Any]:
        mcp = build_server()
        options.setdefault("enable_audit_logging", True)
        mcp.add_middleware(PermitMcpMiddleware(engine=engine, identity=caller, **options))
        return mcp

    return make
