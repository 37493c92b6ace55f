"""What the ``permit-guard`` commands share: their common options and input handling.

Every failure here is a usage or configuration error: it prints one line on
stderr and exits with code 2.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from fastmcp import FastMCP

from permit_guard.cli.load import guard_settings, load_server
from permit_guard.cli.render import fail
from permit_guard.exceptions import ConfigurationError
from permit_guard.settings import GuardSettings

__all__ = [
    "ApiKeyOption",
    "DataOption",
    "DefaultDenyOption",
    "JsonOption",
    "PdpOption",
    "PolicyOption",
    "ServerArgument",
    "ServerNameOption",
    "json_object",
    "load",
    "run",
]

ServerArgument = Annotated[
    str,
    typer.Argument(
        help="path/to/file.py[:var] or package.module[:var]; var defaults to mcp.",
        show_default=False,
    ),
]
ServerNameOption = Annotated[
    str | None,
    typer.Option(
        "--server-name",
        help="Resource type of tool calls and prefix of the others "
        "(default: the server's guard, else PERMIT_MCP_MCP_SERVER_NAME, else mcp_server).",
        show_default=False,
    ),
]
DefaultDenyOption = Annotated[
    bool | None,
    typer.Option(
        "--default-deny/--no-default-deny",
        help="Hide and deny undecorated components (default: the server's guard, else "
        "PERMIT_MCP_DEFAULT_DENY).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON only (on stdout).")]
PolicyOption = Annotated[
    Path | None,
    typer.Option(
        "--policy", metavar="FILE", help="Decide with this policy file.", show_default=False
    ),
]
DataOption = Annotated[
    Path | None,
    typer.Option(
        "--data",
        metavar="FILE",
        help="A data file whose users, instances and tuples replace the policy's own "
        "(with --policy).",
        show_default=False,
    ),
]
PdpOption = Annotated[
    str | None,
    typer.Option(
        "--pdp", metavar="URL", help="Decide with the Permit.io PDP at URL.", show_default=False
    ),
]
ApiKeyOption = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        metavar="KEY",
        help="The PDP's API key (default: PERMIT_MCP_PERMIT_API_KEY).",
        show_default=False,
    ),
]


def load(
    target: str, server_name: str | None, default_deny: bool | None
) -> tuple[FastMCP[Any], GuardSettings, str]:
    """The server, its guard's settings with the overrides, and where the settings came from."""
    try:
        server = load_server(target)
        settings, origin = guard_settings(
            server, server_name=server_name, default_deny=default_deny
        )
    except ConfigurationError as exc:
        fail(str(exc))
    return server, settings, origin


def run(coroutine: Any) -> Any:
    """Run one coroutine of the command; a configuration error is a usage error."""
    try:
        return asyncio.run(coroutine)
    except ConfigurationError as exc:
        fail(str(exc))


def json_object(text: str | None, option: str) -> dict[str, Any]:
    """An option's JSON object; anything else is a usage error."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{option} is not valid JSON: {exc}")
    if not isinstance(value, dict):
        fail(f"{option} must be a JSON object, not {type(value).__name__}: {text}")
    return value
