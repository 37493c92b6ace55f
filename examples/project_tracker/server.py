"""The project tracker: a multi-tenant server decided on the server's own facts.

- Projects are resource instances: each lives in its tenant and carries its
  own ``archived`` flag, so a caller's tenant or arguments cannot move it.
- Whoever creates a project owns it: ``create_project`` writes the instance,
  the tuple linking it to its workspace, and the owner's role assignment
  through the directory, in ``permit.api``'s shape.
- The admins of a workspace own its projects by derivation (``policy.yaml``).
- Archived projects are read-only; an issue may be closed by an editor only
  when its stored priority is at most 2 (an attribute loader reads it).

``build_server(engine, directory)`` takes any engine and any directory with
``permit.api``'s methods: ``engine.api`` of the embedded engine, or
``permit.Permit(...).api`` against Permit.io. ``client.py`` drives it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastmcp import FastMCP

from permit_guard import (
    DecisionEvent,
    LocalPolicyEngine,
    PermitMcpMiddleware,
    PolicyEngine,
    Principal,
    current_principal,
    require_permission,
)

POLICY = Path(__file__).with_name("policy.yaml")

#: The server's own data: issue -> its project and stored priority.
ISSUES: dict[tuple[str, int], dict[str, Any]] = {
    ("acme-1", 7): {"title": "Login fails", "priority": 1},
    ("acme-1", 9): {"title": "Typo in footer", "priority": 4},
}


def stored_issue(project_id: str, number: int) -> dict[str, Any]:
    """The issue's priority from the server's data (unknown issues: no priority, denied)."""
    issue = ISSUES.get((project_id, number))
    return {} if issue is None else {"priority": issue["priority"]}


def build_server(
    engine: PolicyEngine,
    directory: Any,
    identity: Callable[..., Principal | None],
    audit_sink: Callable[[DecisionEvent], None] | None = None,
) -> FastMCP[Any]:
    """The guarded project tracker.

    Args:
        engine: The policy engine (embedded, or a PDP).
        directory: Where facts are written: ``engine.api`` or ``permit.api``.
        identity: Finds the caller (a real server verifies a token here).
        audit_sink: Receives every decision, with its reason.
    """
    mcp: FastMCP[Any] = FastMCP("project-tracker")
    names: dict[str, str] = {}

    @mcp.tool
    @require_permission("read", resource="project", key="project_id")
    def get_project(project_id: str) -> str:
        """Show a project."""
        return f"project {project_id}: {names.get(project_id, project_id)}"

    @mcp.tool
    @require_permission("rename", resource="project", key="project_id")
    def rename_project(project_id: str, name: str) -> str:
        """Rename a project (editors, active projects only)."""
        names[project_id] = name
        return f"renamed {project_id} to {name!r}"

    @mcp.tool
    @require_permission(
        "close_issue", resource="project", key="project_id", attributes=stored_issue
    )
    def close_issue(project_id: str, number: int) -> str:
        """Close an issue (editors; active projects; stored priority <= 2)."""
        return f"closed issue {number} of {project_id}"

    @mcp.tool
    @require_permission("create_project", resource="workspace", key="workspace_id")
    async def create_project(workspace_id: str, project_id: str) -> str:
        """Create a project in a workspace; its creator owns it."""
        caller = current_principal()
        assert caller is not None  # the guard allowed this call for a known caller
        tenant = caller.tenant or "default"
        await directory.resource_instances.create(
            {
                "key": project_id,
                "resource": "project",
                "tenant": tenant,
                "attributes": {"archived": False},
            }
        )
        await directory.relationship_tuples.create(
            {
                "subject": f"workspace:{workspace_id}",
                "relation": "parent",
                "object": f"project:{project_id}",
            }
        )
        await directory.role_assignments.assign(
            {
                "user": caller.key,
                "role": "owner",
                "tenant": tenant,
                "resource_instance": f"project:{project_id}",
            }
        )
        return f"created {project_id} in {workspace_id}, owned by {caller.key}"

    @mcp.tool
    @require_permission("archive", resource="project", key="project_id")
    async def archive_project(project_id: str) -> str:
        """Archive a project (owners): it becomes read-only."""
        await directory.resource_instances.update(
            f"project:{project_id}", {"attributes": {"archived": True}}
        )
        return f"archived {project_id}"

    @mcp.tool
    @require_permission("delete", resource="project", key="project_id")
    async def delete_project(project_id: str) -> str:
        """Delete a project (owners, and the admins of its workspace)."""
        await directory.resource_instances.delete(f"project:{project_id}")
        return f"deleted {project_id}"

    PermitMcpMiddleware(
        engine=engine, identity=identity, default_deny=True, audit_sink=audit_sink
    ).attach(mcp)
    return mcp


def embedded() -> tuple[LocalPolicyEngine, Any]:
    """The embedded engine on ``policy.yaml``, and its directory."""
    engine = LocalPolicyEngine.from_file(POLICY)
    return engine, engine.api
