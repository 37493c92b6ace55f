"""The server of the suite fixtures: a tool of each guard kind, a mount, resources, a prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastmcp import FastMCP

from permit_guard import LocalPolicyEngine, PermitMcpMiddleware, public, require_permission

mcp: FastMCP[Any] = FastMCP("projects")


@mcp.tool
@require_permission()
def get_project(project_id: str) -> str:
    """Read a project."""
    return project_id


@mcp.tool
@require_permission()
def delete_project(project_id: str) -> str:
    """Delete a project."""
    return project_id


@mcp.tool
@require_permission("archive", resource="project", key="project_id")
def archive_project(project_id: str) -> str:
    """Archive one project (ReBAC: per project)."""
    return project_id


@mcp.tool
@public
def ping() -> str:
    """Liveness."""
    return "pong"


@mcp.tool
def stats() -> str:
    """Undecorated: checked with the mapping (default deny is off)."""
    return "{}"


@mcp.resource("docs://readme")
@require_permission()
def readme() -> str:
    """The read-me."""
    return "read me"


@mcp.resource("docs://projects/{project_id}")
@require_permission()
def project_doc(project_id: str) -> str:
    """A project's document."""
    return project_id


@mcp.prompt
@require_permission()
def review(topic: str) -> str:
    """Ask for a review."""
    return f"Review {topic}."


ops: FastMCP[Any] = FastMCP("ops")


@ops.tool
@require_permission()
def restart() -> str:
    """Restart the service (a mounted server's tool)."""
    return "restarted"


mcp.mount(ops, namespace="ops")

PermitMcpMiddleware(
    engine=LocalPolicyEngine.from_file(Path(__file__).with_name("policy.yaml")),
    default_deny=False,
).attach(mcp)
