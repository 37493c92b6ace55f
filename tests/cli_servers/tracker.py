"""A project tracker for the CLI tests of instances, relations and derived roles.

Projects are resource instances named by an argument (``key="project_id"``);
creating one names no instance yet.
"""

from __future__ import annotations

from typing import Any

from fastmcp import FastMCP

from permit_guard import fixed, require_permission

mcp: FastMCP[Any] = FastMCP("tracker")


@mcp.tool
@require_permission("read", resource="project", key="project_id")
def get_project(project_id: str) -> str:
    """Show one project."""
    return f"project {project_id}"


@mcp.tool
@require_permission("close", resource="project", key="project_id")
def close_project(project_id: str) -> str:
    """Close one project."""
    return f"closed {project_id}"


@mcp.tool
@require_permission("create", resource="project")
def create_project(name: str) -> str:
    """Create a project: there is no instance to name yet."""
    return f"created {name}"


@mcp.tool
@require_permission("read", resource="project", key=fixed("roadmap"))
def read_roadmap() -> str:
    """The one project everybody plans with."""
    return "roadmap"


@mcp.prompt
@require_permission("read", resource="project", key="project_id")
def summarize_project(project_id: str) -> str:
    """Summarize one project."""
    return f"Summarize project {project_id}."
