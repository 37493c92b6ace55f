"""The ``permit-guard`` commands, as a typer app; each is a thin caller of the other modules.

``inspect`` prints the :mod:`~permit_guard.cli.inventory`; ``check`` and
``explain`` (:mod:`~permit_guard.cli.check_command`) run the decision core
through :mod:`~permit_guard.cli.check`; ``test`` runs decision suites
(:mod:`~permit_guard.cli.suite_command`), ``matrix`` draws who can do what
(:mod:`~permit_guard.cli.matrix_command`), ``replay`` decides an audit log again
(:mod:`~permit_guard.cli.replay`); ``lint`` reports the
:mod:`~permit_guard.cli.lint` findings; ``export`` writes what Permit.io needs
(:mod:`~permit_guard.cli.export`); ``policy`` validates and imports policy files.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from permit_guard.cli.check_command import check_command
from permit_guard.cli.export import export_text
from permit_guard.cli.fit import Column, fit_table
from permit_guard.cli.inventory import inventory
from permit_guard.cli.lint_command import lint_command
from permit_guard.cli.matrix_command import matrix_command
from permit_guard.cli.options import (
    DefaultDenyOption,
    JsonOption,
    ServerArgument,
    ServerNameOption,
    load,
    run,
)
from permit_guard.cli.policy import policy_app
from permit_guard.cli.render import (
    component_json,
    components_table,
    inspect_width,
    print_json,
    say,
    settings_json,
    settings_line,
    show,
)
from permit_guard.cli.replay import replay_command
from permit_guard.cli.suite_command import test_command

__all__ = ["app", "main", "policy_app"]

app = typer.Typer(
    name="permit-guard",
    help=(
        "Inspect, check, explain, test, lint and export the authorization of a FastMCP server "
        "guarded by permit_guard. SERVER is path/to/file.py[:var] or package.module[:var] "
        "(var defaults to mcp). Exit codes: 0 success or allowed, 1 denied or problems found, "
        "2 usage or configuration error."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(policy_app, name="policy")


def main() -> None:
    """Run the ``permit-guard`` command."""
    # The guard's own log lines (engine failures...) are reported by the command itself.
    guard_logger = logging.getLogger("permit_guard")
    guard_logger.addHandler(logging.NullHandler())
    guard_logger.propagate = False
    app(prog_name="permit-guard")


# -- inspect ---------------------------------------------------------------------------------------


@app.command("inspect")
def _inspect(
    server: ServerArgument,
    server_name: ServerNameOption = None,
    default_deny: DefaultDenyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show how the guard checks every tool, resource, resource template and prompt.

    One row per component (mounted servers included): how it is guarded, the
    resource type and action it is checked as, where the resource key and tenant
    come from, and the argument attributes that reach the engine. Then the
    method-level checks of the four list methods.
    """
    loaded, settings, origin = load(server, server_name, default_deny)
    found = run(inventory(loaded, settings))
    if json_output:
        print_json(
            {
                "server": found.server_name,
                "settings": settings_json(settings, origin),
                "components": [component_json(row) for row in found.components],
                "gates": [
                    {
                        "method": gate.method,
                        "resource_type": gate.request.resource.type,
                        "action": gate.request.action,
                        "checked": gate.checked,
                        "refused": gate.refusal,
                    }
                    for gate in found.gates
                ],
            }
        )
        return
    say(f"Server {found.server_name!r}: {settings_line(settings, origin)}")
    show(components_table(found))
    notes = [row for row in found.components if row.request is None and row.guard != "public"]
    for row in notes:
        if row.guard != "default-deny":
            say(f"{row.kind} {row.name}: {row.note}")
    say("")
    rows = [
        [
            gate.method,
            gate.request.resource.type,
            gate.request.action,
            f"refused ({gate.refusal})"
            if gate.refusal
            else "yes"
            if gate.checked
            else "no (bypassed)",
        ]
        for gate in found.gates
    ]
    columns = [Column(header=name) for name in ("list method", "resource type", "action")]
    show(fit_table([*columns, Column(header="checked", shrink=1)], rows, width=inspect_width()))


# -- the commands that decide, each in its own module ---------------------------------------------

app.command("check")(check_command)
app.command(
    "explain",
    short_help="Show how the guard decides one request, down to each condition's values.",
    help=(
        "Show how the guard decides one request, as a tree: the caller's roles per tenant, "
        "each role, resource set, user set and resource role considered, and every condition "
        "evaluated with the values seen, ending in what decided. Takes the options of check "
        "(same exit codes)."
    ),
)(check_command)
app.command("test")(test_command)
app.command("matrix")(matrix_command)
app.command("replay")(replay_command)


# -- lint ------------------------------------------------------------------------------------------


app.command("lint")(lint_command)


# -- export ----------------------------------------------------------------------------------------


@app.command("export")
def _export(
    server: Annotated[
        str | None,
        typer.Argument(
            metavar="SERVER",
            help="path/to/file.py[:var] or package.module[:var]; var defaults to mcp. Optional "
            "with --policy.",
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="json|terraform",
            help="json: one list of Permit.io API request bodies per endpoint; terraform: "
            "blocks for Permit.io's provider.",
        ),
    ] = "json",
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            metavar="FILE",
            help="Export everything this local policy holds, its facts included.",
            show_default=False,
        ),
    ] = None,
    server_name: ServerNameOption = None,
    default_deny: DefaultDenyOption = None,
) -> None:
    """Print the Permit.io schema the server needs, and with --policy the whole policy.

    SERVER gives one resource type per type the guard asks about, with the
    actions it asks for and the attributes the requests carry (argument
    attributes typed from the component's schema), the list gates included.
    --policy FILE adds everything the policy holds: its types with their
    actions, relations, resource roles and derivations, and the attributes its
    conditions and instances use; its roles and their permissions; its resource
    sets and user sets as condition sets, and their grants as condition set
    rules; its users, tenants, role assignments, resource instances and
    relationship tuples. SERVER is optional with --policy. As the JSON of
    Permit.io's API, or as Terraform for Permit.io's provider (which has no
    resource for users and tuples: they are comments there). A key Permit.io
    would refuse is an error, exit 2.
    """
    sys.stdout.write(
        export_text(
            server, policy, output_format, server_name=server_name, default_deny=default_deny
        )
    )
