"""``permit-guard matrix``: who can do what, every user against every component.

The deciding is :func:`permit_guard.cli.matrix.build_matrix` (the guard core);
this module reads the command line, picks the engine and the users, and writes
the matrix as a table, as JSON, or as one HTML page
(:mod:`~permit_guard.cli.matrix_html`).
"""

from __future__ import annotations

import io
import json
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from fastmcp import FastMCP
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from permit_guard.cli.load import chosen_engine
from permit_guard.cli.matrix import Cell, Matrix, build_matrix, policy_users
from permit_guard.cli.matrix_html import page
from permit_guard.cli.options import (
    DataOption,
    DefaultDenyOption,
    ServerArgument,
    ServerNameOption,
    load,
    run,
)
from permit_guard.cli.render import fail, settings_line
from permit_guard.engines.base import PolicyEngine, close_engine
from permit_guard.engines.cache import CachedEngine
from permit_guard.exceptions import ConfigurationError, EngineError, PolicyFileError
from permit_guard.settings import GuardSettings

__all__ = ["matrix_command", "matrix_json", "matrix_text"]

#: Width of the table when it does not go to a terminal: readable in any 100-column view.
MATRIX_WIDTH: Final = 100
#: The widest the kind and name columns get; longer names wrap.
_NAME_WIDTH: Final = 40
#: The widest a user's column gets; longer user keys wrap in the header.
_USER_WIDTH: Final = 14
_FORMATS: Final = ("table", "json", "html")


def matrix_command(
    server: ServerArgument,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            metavar="FILE",
            help="Decide with this policy file (default: the server's own engine).",
            show_default=False,
        ),
    ] = None,
    data: DataOption = None,
    users: Annotated[
        str | None,
        typer.Option(
            "--users",
            metavar="A,B",
            help="The users, comma-separated (default: every user of the policy).",
            show_default=False,
        ),
    ] = None,
    tenant: Annotated[
        str | None,
        typer.Option("--tenant", help="The users' tenant (default: default).", show_default=False),
    ] = None,
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="table|json|html",
            help="table: one row per component, one column per user; json: every cell with its "
            "reason and explanation; html: one self-contained page with filters.",
        ),
    ] = "table",
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write to FILE instead of stdout.",
            show_default=False,
        ),
    ] = None,
    default_deny: DefaultDenyOption = None,
    server_name: ServerNameOption = None,
) -> None:
    """Show who can do what: every user against every tool, resource, template and prompt.

    Each cell is decided by the guard exactly as the middleware decides the
    user's tools/list, resources/list, resources/templates/list and prompts/list:
    allow (for any arguments), depends (for some arguments only: the condition
    is shown) or deny (with the reason). Then what each user's lists show. The
    users are those of the policy file (--policy, else the server's local
    policy), or --users. Components never run. Exit code 0, or 2 on a usage or
    configuration error.
    """
    if output_format not in _FORMATS:
        fail(f"--format must be table, json or html, not {output_format!r}")
    if data is not None and policy is None:
        fail("--data FILE goes with --policy FILE: it holds the facts of that policy")
    named = _user_list(users) if users is not None else None
    if tenant is not None and not tenant.strip():
        fail("--tenant must not be empty")
    if output is not None and not output.parent.is_dir():
        fail(f"--output {output}: the folder {output.parent} does not exist")
    loaded, settings, origin = load(server, server_name, default_deny)
    try:
        engine, engine_label = chosen_engine(loaded, settings, policy=policy, data=data)
    except (ConfigurationError, PolicyFileError) as exc:
        fail(str(exc))
    if isinstance(engine, CachedEngine):
        engine = engine.inner  # what the engine decides now, not what it remembers
    try:
        found = run(_build_and_close(loaded, settings, engine, named, tenant))
    except EngineError as exc:
        fail(f"the policy engine could not decide: {exc}")
    header = (
        f"Server {found.server_name!r}: {settings_line(settings, origin)}",
        f"Decided by {engine_label}",
    )
    if output_format == "json":
        text = json.dumps(matrix_json(found, engine_label), indent=2) + "\n"
    elif output_format == "html":
        text = page(found, subtitle=". ".join(header))
    else:
        text = matrix_text(found, header, width=None if output is None else MATRIX_WIDTH)
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write --output {output}: {exc.strerror or exc}")


def _user_list(text: str) -> tuple[str, ...]:
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        fail(f"--users takes user keys separated by commas, without empty ones: {text!r}")
    return tuple(dict.fromkeys(names))


async def _build_and_close(
    server: FastMCP[Any],
    settings: GuardSettings,
    engine: PolicyEngine,
    users: Sequence[str] | None,
    tenant: str | None,
) -> Matrix:
    try:
        chosen = users if users is not None else policy_users(engine)
        return await build_matrix(server, settings, engine, chosen, tenant=tenant)
    finally:
        await close_engine(engine)


# -- JSON ----------------------------------------------------------------------------------------


def matrix_json(found: Matrix, engine: str) -> dict[str, Any]:
    """The matrix as JSON: users, components, one cell per pair, and the lists.

    Args:
        found: The matrix.
        engine: How the engine was chosen (``local policy examples/policy.yaml``).
    """
    return {
        "server": found.server_name,
        "engine": engine,
        "tenant": found.tenant,
        "enforced": found.enforced,
        "users": list(found.users),
        "components": [
            {"kind": r.kind, "name": r.name, "version": r.version, "mounted": r.mounted}
            for r in found.components
        ],
        "cells": [
            {"user": user, "kind": row.kind, "name": row.name, **_cell_json(cell)}
            for row, cells in zip(found.components, found.cells, strict=True)
            for user, cell in zip(found.users, cells, strict=True)
        ],
        "lists": [
            {
                "user": listing.user,
                "method": listing.method,
                "visible": list(listing.visible),
                "hidden": list(listing.hidden),
                "reason": listing.reason,
            }
            for listing in found.lists
        ],
    }


def _cell_json(cell: Cell) -> dict[str, Any]:
    return {
        "outcome": cell.outcome,
        "why": cell.why,
        "reason": cell.reason,
        "listed": cell.listed,
        "list_reason": cell.list_reason or None,
        "condition": list(cell.condition),
        "explanation": cell.explanation.to_json() if cell.explanation else None,
    }


# -- the table -------------------------------------------------------------------------------------


def matrix_text(found: Matrix, header: Sequence[str], *, width: int | None = None) -> str:
    """The matrix as text: the grid (split by users to fit), then each user's lists.

    Args:
        found: The matrix.
        header: The first lines.
        width: The width to fit; default: the terminal's, else :data:`MATRIX_WIDTH`.
    """
    if width is None:
        width = Console().width if sys.stdout.isatty() else MATRIX_WIDTH
    out = [wrapped for line in header for wrapped in _wrapped(line, width)]
    if found.tenant is not None:
        out.append(f"Users in tenant {found.tenant!r}.")
    if not found.enforced:
        out.append("Shadow mode: the server's guard lets these denials through, logged.")
    out.append("")
    if not found.components:
        out.extend(["The server has no tools, resources, resource templates or prompts.", ""])
    else:
        for group in _user_groups(found, width):
            out.extend(_captured(_grid(found, group), width))
            out.append("")
    out.extend(_wrapped(_LEGEND, width))
    if any(not c.listed and c.outcome != "deny" for row in found.cells for c in row):
        out.extend(_wrapped(_HIDDEN, width))
    for user in found.users:
        out.extend(["", f"{user}:"])
        out.extend(f"  {line}" for line in _captured(_lists(found, user), width - 2))
        for listing in found.listings(user):
            if listing.why != "engine" and listing.hidden:
                note = f"{listing.method} shows only public components: {listing.reason}"
                out.extend(_wrapped(note, width, indent="  "))
        depends = [
            (row, found.cell(i, user))
            for i, row in enumerate(found.components)
            if found.cell(i, user).outcome == "depends"
        ]
        if depends:
            out.append("  depends on arguments:")
        for row, cell in depends:
            grant = cell.condition[0] if cell.condition else cell.reason
            out.extend(_wrapped(f"{row.kind} {row.label}: {grant}", width, indent="    "))
            out.extend(f"      {line}" for line in cell.condition[1:])
    return "\n".join(out) + "\n"


_LEGEND: Final = (
    "allow: for any arguments; depends: for some arguments only (conditions below); deny: never."
)
_HIDDEN: Final = (
    "*: hidden from its list, as the list's gate is denied; a call is decided on its own."
)


def _wrapped(text: str, width: int, *, indent: str = "") -> list[str]:
    return textwrap.wrap(
        text, width, initial_indent=indent, subsequent_indent=indent + "  ", break_on_hyphens=False
    )


def _user_groups(found: Matrix, width: int) -> list[list[int]]:
    """The users split so that each grid fits ``width`` (at least one user per grid)."""
    longest = max((len(r.label) for r in found.components), default=4)
    taken = 10 + min(max(longest, 9), _NAME_WIDTH) + 2
    groups: list[list[int]] = [[]]
    used = taken
    for index, user in enumerate(found.users):
        need = min(max(len(user), 8), _USER_WIDTH) + 2
        if groups[-1] and used + need > width:
            groups.append([])
            used = taken
        groups[-1].append(index)
        used += need
    return groups


def _grid(found: Matrix, group: Sequence[int]) -> Table:
    grid = Table(box=box.SIMPLE, pad_edge=False, show_edge=False)
    grid.add_column("kind", no_wrap=True)
    grid.add_column("component", overflow="fold", max_width=_NAME_WIDTH)
    for index in group:
        grid.add_column(Text(found.users[index]), overflow="fold", max_width=_USER_WIDTH)
    for row, cells in zip(found.components, found.cells, strict=True):
        marks = []
        for index in group:
            cell = cells[index]
            marks.append(cell.outcome + ("" if cell.listed or cell.outcome == "deny" else "*"))
        # Text, not str: a URI such as data://x[1] is not rich markup.
        grid.add_row(Text(row.kind), Text(row.label), *(Text(m) for m in marks))
    return grid


def _lists(found: Matrix, user: str) -> Table:
    grid = Table(box=box.SIMPLE, pad_edge=False, show_edge=False)
    grid.add_column("list method", no_wrap=True)
    grid.add_column("visible", overflow="fold", ratio=1)
    grid.add_column("hidden", overflow="fold", ratio=1)
    for listing in found.listings(user):
        hidden = ", ".join(listing.hidden) or "-"
        grid.add_row(Text(listing.method), Text(", ".join(listing.visible) or "-"), Text(hidden))
    return grid


def _captured(grid: Table, width: int) -> list[str]:
    console = Console(file=io.StringIO(), width=width, highlight=False, markup=False, emoji=False)
    with console.capture() as captured:
        console.print(grid)
    return [line.rstrip() for line in captured.get().splitlines()]
