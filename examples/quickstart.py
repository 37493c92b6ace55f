"""permit_guard quickstart: a guarded FastMCP server on the embedded policy engine.

Run it with ``python3 -m uv run examples/quickstart.py``. It builds a small
billing server, guards it with ``examples/policy.yaml`` under default deny, then
drives it in memory as three users and prints what each one sees and may do,
and why.
"""

from __future__ import annotations

import asyncio
import contextvars
from pathlib import Path
from typing import Any

from fastmcp import Client, FastMCP
from fastmcp.server.middleware import MiddlewareContext

from permit_guard import (
    DecisionEvent,
    LocalPolicyEngine,
    PermitMcpMiddleware,
    Principal,
    abac_from_args,
    public,
    require_permission,
)

mcp: FastMCP[Any] = FastMCP("billing")


@mcp.tool
@require_permission()  # resource "mcp_server", action "greet"
def greet(name: str) -> str:
    """Say hello."""
    return f"Hello, {name}!"


@mcp.tool
@require_permission()  # action "refund"; the policy looks at amount and currency only
@abac_from_args("amount", "currency")
def refund(amount: float, currency: str, memo: str = "") -> str:
    """Refund a customer."""
    return f"refunded {amount} {currency}"


@mcp.tool
@require_permission("delete", resource="invoice", key="invoice_id")  # ReBAC: per invoice
def delete_invoice(invoice_id: str) -> str:
    """Delete one invoice."""
    return f"deleted invoice {invoice_id}"


@mcp.tool
@public  # no credentials needed, never checked, always listed
def health() -> str:
    """Liveness check."""
    return "ok"


@mcp.tool
def debug_dump() -> str:
    """Undecorated: hidden and denied under default deny."""
    return "internal state"


@mcp.resource("data://reports/summary")
@require_permission()
def summary_report() -> str:
    """The quarterly summary."""
    return "Q3: +12%"


@mcp.prompt
@require_permission()
def summarize(topic: str) -> str:
    """Ask for a summary."""
    return f"Summarize {topic} in three bullet points."


# Who is calling. A real server takes this from a verified token; here the
# script switches users between requests.
current_user: contextvars.ContextVar[str] = contextvars.ContextVar("current_user")


def identify(context: MiddlewareContext[Any]) -> Principal:
    return Principal(key=current_user.get())


events: list[DecisionEvent] = []
PermitMcpMiddleware(
    engine=LocalPolicyEngine.from_file(Path(__file__).with_name("policy.yaml")),
    identity=identify,
    default_deny=True,
    audit_sink=events.append,
).attach(mcp)

ATTEMPTS: list[tuple[str, str, dict[str, Any]]] = [
    ("tool", "greet", {"name": "Ada"}),
    ("tool", "refund", {"amount": 50, "currency": "EUR"}),
    ("tool", "refund", {"amount": 500, "currency": "EUR"}),
    ("tool", "delete_invoice", {"invoice_id": "42"}),
    ("tool", "delete_invoice", {"invoice_id": "43"}),
    ("tool", "debug_dump", {}),
    ("tool", "health", {}),
    ("resource", "data://reports/summary", {}),
    ("prompt", "summarize", {"topic": "Q3"}),
]


async def attempt(client: Client[Any], kind: str, name: str, args: dict[str, Any]) -> bool:
    try:
        if kind == "tool":
            return not (await client.call_tool(name, args, raise_on_error=False)).is_error
        if kind == "resource":
            await client.read_resource(name)
        else:
            await client.get_prompt(name, args)
    except Exception:
        return False
    return True


def describe(kind: str, name: str, args: dict[str, Any]) -> str:
    shown = ", ".join(f"{k}={v!r}" for k, v in args.items())
    return f"{name}({shown})" if kind != "resource" else f"read {name}"


async def main() -> None:
    width = 44
    for user in ("alice", "bob", "eve"):
        current_user.set(user)
        async with Client(mcp) as client:
            visible = sorted(tool.name for tool in await client.list_tools())
            print(f"\n== {user}: tools/list -> {', '.join(visible)}")
            print(f"   {'request':<{width}} {'result':<7} why")
            for kind, name, args in ATTEMPTS:
                events.clear()
                allowed = await attempt(client, kind, name, args)
                event = next(
                    (e for e in events if e.method.endswith(("call", "read", "get"))), None
                )
                reason = event.reason if event else "-"
                verdict = "ALLOW" if allowed else "DENY"
                print(f"   {describe(kind, name, args):<{width}} {verdict:<7} {reason}")


if __name__ == "__main__":
    asyncio.run(main())
