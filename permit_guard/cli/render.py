"""How the ``permit-guard`` command prints: plain tables, JSON, one line per fact.

Tables keep their width when stdout is not a terminal, so output does not
depend on where it goes; URIs are never read as markup.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from permit_guard.cli.fit import Column, fit_table
from permit_guard.cli.inventory import ComponentInfo, Inventory
from permit_guard.cli.lint import Finding
from permit_guard.explanation import Explanation
from permit_guard.model import Principal
from permit_guard.settings import GuardSettings
from permit_guard.verdict import Verdict

__all__ = [
    "INSPECT_WIDTH",
    "TABLE_WIDTH",
    "cells",
    "component_json",
    "components_table",
    "fail",
    "inspect_width",
    "plural",
    "print_check",
    "print_findings",
    "print_json",
    "say",
    "settings_json",
    "settings_line",
    "show",
    "table",
]

#: Width of tables when stdout is not a terminal, so output does not depend on it.
TABLE_WIDTH = 160

#: The widest inspect's component table gets: it stays readable in a 100-column terminal.
INSPECT_WIDTH = 100


def fail(message: str, code: int = 2) -> NoReturn:
    sys.stderr.write(f"Error: {message}\n")
    raise typer.Exit(code)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")


def show(grid: Table) -> None:
    """Print a table; its width does not depend on the terminal unless there is one."""
    console = Console(
        width=None if sys.stdout.isatty() else TABLE_WIDTH,
        highlight=False,
        markup=False,
        emoji=False,
    )
    with console.capture() as captured:
        console.print(grid)
    for line in captured.get().splitlines():
        say(line.rstrip())


def table(*columns: str, wrap: Sequence[str] = ()) -> Table:
    """A plain table; only the ``wrap`` columns wrap, names and types stay whole."""
    grid = Table(box=box.SIMPLE, pad_edge=False, show_edge=False)
    for column in columns:
        grid.add_column(column, no_wrap=column not in wrap, overflow="fold")
    return grid


def cells(*values: str) -> list[Text]:
    # Text, not str: a URI such as data://x[1] is not rich markup.
    return [Text(value) for value in values]


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def settings_line(settings: GuardSettings, origin: str) -> str:
    where = "the server's PermitMcpMiddleware" if origin == "server" else "the environment"
    deny = "on" if settings.default_deny else "off"
    return f"settings from {where}, server name {settings.mcp_server_name!r}, default deny {deny}"


def settings_json(settings: GuardSettings, origin: str) -> dict[str, Any]:
    return {
        "source": origin,
        "mcp_server_name": settings.mcp_server_name,
        "default_deny": settings.default_deny,
        "prefix_resource_with_server_name": settings.prefix_resource_with_server_name,
        "resource_prefix": settings.resource_prefix,
        "action_prefix": settings.action_prefix,
        "tool_argument_prefix": settings.tool_argument_prefix,
        "flatten_tool_arguments": settings.flatten_tool_arguments,
        "bypassed_methods": list(settings.bypassed_methods),
    }


def inspect_width() -> int:
    """How wide ``inspect`` draws its component table: 100 columns, or the terminal's if less.

    The same at any width of at least 100, terminal or not, so what a user
    pastes is what a 100-column terminal shows.
    """
    if sys.stdout.isatty():
        return min(INSPECT_WIDTH, Console().width)
    return INSPECT_WIDTH


def components_table(found: Inventory, *, width: int | None = None) -> Table:
    """Every component as ``inspect`` prints it, fitted to ``width`` (default: inspect_width()).

    ``key`` and ``tenant`` columns that would say the same for every row
    (no key; the caller's tenant) are left out, and the caption says so.
    """
    rows = [
        {
            "kind": row.kind,
            "name": f"{row.name} (v{row.version})" if row.version else row.name,
            "guard": row.guard,
            "checked as": (
                f"{row.request.resource.type}:{row.request.action}" if row.request else "-"
            ),
            "key": row.key.label() if row.key else "-",
            "tenant": row.tenant.label() if row.tenant else "-",
            "argument attributes": ", ".join(a.name for a in row.argument_attributes) or "-",
        }
        for row in found.components
    ]
    columns = [
        Column(header="kind"),
        Column(header="name", shrink=2),
        Column(header="guard"),
        Column(header="checked as", shrink=2),
        Column(header="key", shrink=3),
        Column(header="tenant", shrink=3),
        # A list of names: it gives way first, and wraps between names only.
        Column(header="argument attributes", shrink=1, seams=(" ,",)),
    ]
    # A column that says the same on every row says it once, below the table.
    same = {
        "key": "key: none" if all(row["key"] == "-" for row in rows) else "",
        "tenant": "tenant: the caller's"
        if all(row["tenant"] in ("caller", "-") for row in rows)
        else "",
    }
    said = [text for text in same.values() if text and rows]
    columns = [column for column in columns if not (rows and same.get(column.header))]
    grid = fit_table(
        columns,
        [[row[column.header] for column in columns] for row in rows],
        width=inspect_width() if width is None else width,
    )
    if said:
        grid.caption = Text(f"{', '.join(said)}, in every request")
        grid.caption_justify = "left"
    return grid


def component_json(row: ComponentInfo) -> dict[str, Any]:
    request = row.request
    return {
        "kind": row.kind,
        "name": row.name,
        "version": row.version,
        "guard": row.guard,
        "function": row.function,
        "mounted": row.mounted,
        "resource_type": request.resource.type if request else None,
        "action": request.action if request else None,
        "key": row.key.to_json() if row.key else None,
        "tenant": row.tenant.to_json() if row.tenant else None,
        "attributes": [{"name": a.name, "type": a.type} for a in row.attributes],
        "note": row.note or None,
    }


def print_check(
    result: Verdict,
    kind: str,
    name: str,
    caller: Principal,
    engine: str,
    verbose: bool,
    *,
    instance: str | None = None,
) -> None:
    verdict = "allowed" if result.allowed else "denied"
    tenant = f" in tenant {caller.tenant!r}" if caller.tenant else ""
    say(f"{verdict}: {kind} {name!r} for user {caller.key!r}{tenant}")
    if instance is not None:
        say(f"instance: {instance}")
    say(f"reason: {result.reason}")
    if result.request is None:
        say("decided by: the guard, without asking the engine")
    else:
        say(f"decided by: {engine}")
    if not verbose:
        return
    if result.request is None:
        say("request: none was sent")
        return
    say("request (as the PDP receives it on POST /allowed):")
    sys.stdout.write(json.dumps(result.request.to_pdp_json(), indent=2) + "\n")


def print_explanation(
    result: Verdict,
    kind: str,
    name: str,
    caller: Principal,
    engine: str,
    explanation: Explanation | None,
    *,
    tree: bool = False,
) -> None:
    """How the decision was reached: the engine's tree, or why there is none."""
    if not tree:
        verdict = "allowed" if result.allowed else "denied"
        tenant = f" in tenant {caller.tenant!r}" if caller.tenant else ""
        say(f"{verdict}: {kind} {name!r} for user {caller.key!r}{tenant}, by {engine}")
    guard = result.request is None or result.why != "engine"
    if tree and guard:
        return  # check already said the guard decided, and why
    if tree:
        say("how the engine decided:")
    if explanation is not None:
        for line in explanation.lines():
            say(line)
    elif guard:
        say(f"decided by the guard, without asking the engine: {result.reason}")
    else:
        say(f"the engine gives no explanation; its reason: {result.reason}")


def print_rejected(why: str, as_json: bool) -> None:
    """A check whose credentials name nobody: denied before any component is looked at."""
    reason = f"no valid credentials ({why})"
    if as_json:
        print_json({"allowed": False, "reason": reason, "decided_by": "guard", "user": None})
        return
    say("denied: the credentials name no caller")
    say(f"reason: {reason}")
    say("decided by: the guard, without asking the engine")


def print_findings(
    found: Inventory, source: str | None, findings: list[Finding], errors: int, warnings: int
) -> None:
    against = f"policy {source}" if source else "no policy"
    deny = "on" if found.settings.default_deny else "off"
    say(f"Server {found.server_name!r}, {against}, default deny {deny}")
    if not findings:
        say("No problems found.")
        return
    grid = table("severity", "kind", "where", "message", wrap=("message",))
    for finding in findings:
        grid.add_row(
            *cells(
                finding.severity,
                finding.kind,
                finding.component or finding.location or "-",
                finding.message,
            )
        )
    show(grid)
    say(f"{plural(errors, 'error')}, {plural(warnings, 'warning')}")
