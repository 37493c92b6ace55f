"""Drives the project tracker as four users and prints each decision and why.

    python3 -m uv run python examples/project_tracker/client.py

It runs the server in memory on the embedded engine (``policy.yaml``). The
scenario is ``SCENARIO``: who calls what, and the result the policy should
give; the script exits non-zero if any result differs.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
from pathlib import Path
from typing import Any

from fastmcp import Client
from fastmcp.server.middleware import MiddlewareContext

sys.path.insert(0, str(Path(__file__).parent))
from server import build_server, embedded

from permit_guard import DecisionEvent, PolicyEngine, Principal

#: The users: key -> tenant (a real server reads both from a verified token).
TENANTS = {"alice": "acme", "bob": "acme", "dave": "acme", "carol": "globex"}

#: (user, tool, arguments, allowed?, what it shows).
SCENARIO: list[tuple[str, str, dict[str, Any], bool, str]] = [
    ("carol", "get_project", {"project_id": "acme-1"}, False, "tenant isolation"),
    ("dave", "get_project", {"project_id": "acme-1"}, True, "member reads"),
    ("dave", "rename_project", {"project_id": "acme-1", "name": "X"}, False, "member"),
    ("bob", "rename_project", {"project_id": "acme-1", "name": "Apollo"}, True, "editor"),
    ("bob", "rename_project", {"project_id": "acme-2", "name": "Zeus"}, False, "archived"),
    ("bob", "close_issue", {"project_id": "acme-1", "number": 7}, True, "priority 1"),
    ("bob", "close_issue", {"project_id": "acme-1", "number": 9}, False, "priority 4"),
    ("bob", "delete_project", {"project_id": "acme-1"}, False, "not the owner"),
    ("carol", "create_project", {"workspace_id": "acme-hq", "project_id": "x"}, False, "tenant"),
    ("bob", "create_project", {"workspace_id": "acme-hq", "project_id": "acme-3"}, True, "new"),
    ("bob", "archive_project", {"project_id": "acme-3"}, True, "owner by creation"),
    ("bob", "rename_project", {"project_id": "acme-3", "name": "Hera"}, False, "now archived"),
    ("carol", "delete_project", {"project_id": "acme-3"}, False, "tenant isolation"),
    ("alice", "delete_project", {"project_id": "acme-3"}, True, "workspace admin"),
]

current_user: contextvars.ContextVar[str] = contextvars.ContextVar("current_user")


def identify(context: MiddlewareContext[Any]) -> Principal:
    user = current_user.get()
    return Principal(key=user, tenant=TENANTS[user])


async def run(
    events: list[DecisionEvent], engine: PolicyEngine | None = None, directory: Any = None
) -> list[tuple[str, str, dict[str, Any], bool, str]]:
    """Each step of the scenario: (user, tool, arguments, allowed, reason).

    Args:
        events: Receives the audit events.
        engine: The engine (default: the embedded one on ``policy.yaml``).
        directory: Where the tools write facts (default: the embedded engine's).
    """
    if engine is None:
        engine, directory = embedded()
    server = build_server(engine, directory, identify, audit_sink=events.append)
    results = []
    for user, tool, args, _, _ in SCENARIO:
        current_user.set(user)
        events.clear()
        async with Client(server) as client:
            result = await client.call_tool(tool, args, raise_on_error=False)
        call = next((e for e in events if e.method == "tools/call"), None)
        results.append((user, tool, args, not result.is_error, call.reason if call else "-"))
    return results


async def main() -> int:
    # The client warns about calling tools it did not list first; this script never lists.
    logging.getLogger("client").setLevel(logging.ERROR)
    events: list[DecisionEvent] = []
    wrong = 0
    for (user, tool, args, allowed, reason), (*_, expected, shows) in zip(
        await run(events), SCENARIO, strict=True
    ):
        shown = ", ".join(f"{v}" for v in args.values())
        verdict = "ALLOW" if allowed else "DENY"
        mark = "" if allowed == expected else "   <-- unexpected"
        wrong += allowed != expected
        print(f"{user:<6} {tool}({shown})".ljust(44) + f"{verdict:<6} [{shows}] {reason}{mark}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
