"""A server for the CLI tests: a mounted sub-server, templates, a prompt, tenants and keys.

Loading it must never run the ``__main__`` block at the bottom.
"""

from __future__ import annotations

from typing import Any

from fastmcp import FastMCP
from pydantic import BaseModel

from permit_guard import abac_from_args, fixed, public, require_permission

admin: FastMCP[Any] = FastMCP("admin")


@admin.tool
@require_permission()
def wipe(target: str, force: bool = False) -> str:
    """Wipe a target."""
    return f"wiped {target}"


mcp: FastMCP[Any] = FastMCP("files")


class Address(BaseModel):
    city: str
    zip_code: int


@mcp.tool
@require_permission("share", resource="document", key="doc_id", tenant="org")
@abac_from_args("doc_id", "recipients", prefix="p_")
def share_document(doc_id: str, org: str, recipients: list[str], note: str = "") -> str:
    """Share a document of an organisation."""
    return f"shared {doc_id}"


@mcp.tool
@require_permission(tenant=fixed("acme"))
def ship(address: Address, express: bool = False) -> str:
    """Ship to an address."""
    return f"shipped to {address.city}"


@mcp.tool
@public
def login(username: str, password: str) -> str:
    """Log in."""
    return "token"


@mcp.tool
def ping_backend() -> str:
    """Undecorated."""
    return "pong"


@mcp.resource("files://{path}")
@require_permission()
def read_file(path: str) -> str:
    """One file."""
    return path


@mcp.resource("files://readme")
@require_permission()
def readme() -> str:
    """The readme."""
    return "read me"


@mcp.prompt
@require_permission()
def review(document: str, depth: int = 1) -> str:
    """Review a document."""
    return f"Review {document} at depth {depth}."


mcp.mount(admin, namespace="admin")

NOT_A_SERVER = {"not": "a server"}

if __name__ == "__main__":
    print("MAIN BLOCK RAN")
    raise SystemExit(3)
