"""The runtime directory seen through a real server: each change decides the next request.

A FastMCP server guarded on the embedded engine and a ``fastmcp.Client``;
between requests the facts change through ``engine.api``, as a server's own
tools would change them, and the very next call and list follow.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastmcp import Client, FastMCP

from permit_guard import LocalPolicyEngine, PermitMcpMiddleware, Principal, require_permission
from tests.models import workspace_owned_projects

POLICY: dict[str, Any] = {
    "resources": {
        **workspace_owned_projects("delete"),
        "mcp_server_tools": {"actions": ["list"]},
    },
    "roles": {"anyone": {"grants": {"mcp_server_tools": ["list"]}}},
    "users": {"bob": {"roles": ["anyone"]}},
}

OWNER = {"user": "bob", "role": "owner", "tenant": "default", "resource_instance": "project:p1"}
ADMIN = {"user": "bob", "role": "admin", "tenant": "default", "resource_instance": "workspace:w1"}
LINK = {"subject": "workspace:w1", "relation": "parent", "object": "project:p1"}


def tracker() -> tuple[FastMCP[Any], LocalPolicyEngine]:
    engine = LocalPolicyEngine.from_dict(POLICY)
    mcp: FastMCP[Any] = FastMCP("directory")

    @mcp.tool
    @require_permission("delete", resource="project", key="project_id")
    def delete_project(project_id: str) -> str:
        return f"deleted {project_id}"

    PermitMcpMiddleware(engine=engine, identity=lambda context: Principal(key="bob")).attach(mcp)
    return mcp, engine


async def state(client: Client[Any]) -> tuple[bool, bool]:
    """(may bob delete p1, does bob see delete_project)."""
    result = await client.call_tool("delete_project", {"project_id": "p1"}, raise_on_error=False)
    listed = [tool.name for tool in await client.list_tools()]
    return not result.is_error, "delete_project" in listed


async def test_each_change_decides_the_next_call_and_list() -> None:
    """assign, unassign, tuple create and delete, instance create and delete, in turn."""
    mcp, engine = tracker()
    api = engine.api
    seen = []
    async with Client(mcp) as client:
        seen.append(await state(client))
        await api.role_assignments.assign(OWNER)
        seen.append(await state(client))
        await api.role_assignments.unassign(OWNER)
        seen.append(await state(client))
        await api.users.assign_role(ADMIN)  # admin of w1, which is no project's parent yet
        seen.append(await state(client))
        await api.relationship_tuples.create(LINK)  # now owner of p1 by derivation
        seen.append(await state(client))
        await api.relationship_tuples.delete(LINK)
        seen.append(await state(client))
        await api.relationship_tuples.create(LINK)
        await api.resource_instances.create({"key": "p1", "resource": "project", "tenant": "x"})
        seen.append(await state(client))  # p1 now lives in tenant x: resource roles still hold
        await api.resource_instances.delete("project:p1")  # and its tuple with it
        seen.append(await state(client))
    assert seen == [
        (False, False),
        (True, True),
        (False, False),
        (False, False),
        (True, True),
        (False, False),
        (True, True),
        (False, False),
    ]


async def test_concurrent_calls_and_changes_see_whole_states() -> None:
    """Calls racing with assign/unassign answer as before or after, and every change lands."""
    mcp, engine = tracker()
    api = engine.api
    users = ["bob", *(f"u{i}" for i in range(40))]

    async def flip(user: str) -> None:
        grant = {**OWNER, "user": user}
        for _ in range(5):
            await api.role_assignments.assign(grant)
            await asyncio.sleep(0)
            await api.role_assignments.unassign(grant)
            await asyncio.sleep(0)
        await api.role_assignments.assign(grant)

    async def call(client: Client[Any]) -> tuple[bool, str]:
        result = await client.call_tool(
            "delete_project", {"project_id": "p1"}, raise_on_error=False
        )
        return not result.is_error, result.content[0].text  # type: ignore[union-attr]

    async with Client(mcp) as client:
        denied = (await call(client))[1]
        racing = await asyncio.gather(*(call(client) for _ in range(60)), *map(flip, users))
        after = await call(client)
    answers = [r for r in racing if r is not None]
    assert len(answers) == 60
    # Each racing call saw bob with the role or without it: allowed or the one denial.
    assert {text for allowed, text in answers if not allowed} <= {denied}
    assert {text for allowed, text in answers if allowed} <= {"deleted p1"}
    assert after == (True, "deleted p1")
    holders = {key[0] for key, roles in engine.facts.instance_roles.items() if "owner" in roles}
    assert holders == set(users)
