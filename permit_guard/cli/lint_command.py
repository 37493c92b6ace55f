"""``permit-guard lint``: reads the command line, finds the :mod:`~permit_guard.cli.lint` findings.

A server whose own middleware cannot load its policy fails while it is
imported, so it cannot be inventoried; lint then reports what is wrong with
that policy as ``invalid-policy`` findings (exit 1), which is what the user
has to fix, rather than an import error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from permit_guard.cli.inventory import inventory
from permit_guard.cli.lint import Finding, lint
from permit_guard.cli.load import (
    guard_settings,
    load_server,
    policy_error_of,
    policy_file_of,
    shown,
)
from permit_guard.cli.options import (
    DefaultDenyOption,
    JsonOption,
    ServerArgument,
    ServerNameOption,
    run,
)
from permit_guard.cli.render import (
    cells,
    fail,
    plural,
    print_findings,
    print_json,
    say,
    show,
    table,
)
from permit_guard.engines.local.loading import LoadedPolicy
from permit_guard.engines.local.reading import read_policy_file
from permit_guard.exceptions import ConfigurationError, PolicyFileError, ServerLoadError

__all__ = ["lint_command"]


def lint_command(
    server: ServerArgument,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy",
            metavar="FILE",
            help="The policy to lint against (default: the server's local policy file, else "
            "PERMIT_MCP_POLICY_FILE).",
            show_default=False,
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            metavar="FILE",
            help="A data file whose users, instances and tuples replace the policy's own.",
            show_default=False,
        ),
    ] = None,
    default_deny: DefaultDenyOption = None,
    server_name: ServerNameOption = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit with 1 on warnings too.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Find what would go wrong: usable as a CI gate.

    Undecorated components (an error under default deny, a warning otherwise);
    components no role, user set or resource role can ever reach, because the
    policy grants their resource type and action to nobody (errors); list
    methods whose gate nobody is granted (warnings); grants in the policy that
    name a resource type or action the server never asks for (dead grants,
    warnings); roles that no assignment in the policy or derivation grants
    (ungrantable roles, warnings: only runtime assignments can); and every
    problem of a policy file that does not load (errors), also when it is the
    server's own and stops the server from being imported. Exit code 1 when it
    finds an error (with --strict, any finding).
    """
    try:
        loaded = load_server(server)
    except ServerLoadError as exc:
        broken = policy_error_of(exc)
        if broken is None:
            fail(str(exc))
        _report_unloadable(server, broken, json_output)
        raise typer.Exit(1) from None
    try:
        settings, _ = guard_settings(loaded, server_name=server_name, default_deny=default_deny)
    except ConfigurationError as exc:
        fail(str(exc))
    found = run(inventory(loaded, settings))
    found_file = policy_file_of(loaded, settings)
    source = str(policy) if policy is not None else found_file and shown(found_file)
    if data is not None and source is None:
        fail("--data FILE goes with a policy: give --policy FILE")
    parsed: LoadedPolicy | None = None
    problems: Sequence[str] = ()
    if source is not None:
        try:
            parsed = read_policy_file(source, data=data)
        except PolicyFileError as exc:
            problems = exc.problems
        if data is not None:
            source = f"{source} + {data}"
    findings = lint(
        found,
        policy=parsed.policy if parsed else None,
        policy_problems=problems,
        policy_source=source,
    )
    errors = sum(f.severity == "error" for f in findings)
    warnings = len(findings) - errors
    if json_output:
        print_json(
            {
                "server": found.server_name,
                "policy": source,
                "default_deny": settings.default_deny,
                "findings": [f.to_json() for f in findings],
                "errors": errors,
                "warnings": warnings,
            }
        )
    else:
        print_findings(found, source, findings, errors, warnings)
    failed = errors > 0 or (strict and warnings > 0)
    raise typer.Exit(1 if failed else 0)


def _report_unloadable(target: str, broken: PolicyFileError, json_output: bool) -> None:
    """The problems of the policy that stopped the server from being imported, as findings."""
    source = shown(broken.source)
    findings = [
        Finding(
            kind="invalid-policy",
            severity="error",
            component=None,
            location=source,
            message=problem,
        )
        for problem in broken.problems
    ]
    if json_output:
        # No server name, no default deny: the server was never built.
        print_json(
            {
                "server": None,
                "policy": source,
                "default_deny": None,
                "findings": [f.to_json() for f in findings],
                "errors": len(findings),
                "warnings": 0,
            }
        )
        return
    say(f"Server {target} cannot be imported: its policy {source} does not load")
    grid = table("severity", "kind", "where", "message", wrap=("message",))
    for finding in findings:
        grid.add_row(*cells(finding.severity, finding.kind, source, finding.message))
    show(grid)
    say(f"{plural(len(findings), 'error')}, 0 warnings")
