"""The ``permit-guard`` commands, as a typer app; each is a thin caller of the other modules.

``inspect`` prints the :mod:`~permit_guard.cli.inventory`, ``check`` runs the
decision core through :mod:`~permit_guard.cli.check`, ``lint`` reports the
:mod:`~permit_guard.cli.lint` findings, ``export`` writes the
:mod:`~permit_guard.cli.export` schema, and ``policy validate`` loads a file.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from fastmcp import FastMCP

from permit_guard.cli.check import check
from permit_guard.cli.export import permit_api_json, terraform
from permit_guard.cli.inventory import inventory
from permit_guard.cli.lint import lint
from permit_guard.cli.load import (
    chosen_engine,
    policy_file_of,
    shown,
)
from permit_guard.cli.options import (
    DefaultDenyOption,
    JsonOption,
    ServerArgument,
    ServerNameOption,
    json_object,
    load,
    run,
)
from permit_guard.cli.policy import policy_app
from permit_guard.cli.render import (
    cells,
    component_json,
    components_table,
    fail,
    print_check,
    print_findings,
    print_json,
    say,
    settings_json,
    settings_line,
    show,
    table,
)
from permit_guard.engines.base import PolicyEngine, close_engine
from permit_guard.engines.local.loading import LoadedPolicy
from permit_guard.engines.local.reading import read_policy_file
from permit_guard.exceptions import ConfigurationError, EngineError, PolicyFileError
from permit_guard.model import Principal
from permit_guard.settings import GuardSettings
from permit_guard.verdict import Verdict

__all__ = ["app", "main", "policy_app"]

app = typer.Typer(
    name="permit-guard",
    help=(
        "Inspect, check, lint and export the authorization of a FastMCP server guarded by "
        "permit_guard. SERVER is path/to/file.py[:var] or package.module[:var] (var defaults "
        "to mcp). Exit codes: 0 success or allowed, 1 denied or problems found, 2 usage or "
        "configuration error."
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
    gates = table("list method", "resource type", "action", "checked")
    for gate in found.gates:
        gates.add_row(
            *cells(
                gate.method,
                gate.request.resource.type,
                gate.request.action,
                f"refused ({gate.refusal})"
                if gate.refusal
                else "yes"
                if gate.checked
                else "no (bypassed)",
            )
        )
    show(gates)


# -- check -----------------------------------------------------------------------------------------


@app.command("check")
def _check(
    server: ServerArgument,
    user: Annotated[str, typer.Option("--user", help="The caller's user key.", show_default=False)],
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant", help="The caller's tenant (default: default).", show_default=False
        ),
    ] = None,
    user_attributes: Annotated[
        str | None,
        typer.Option(
            "--user-attributes",
            metavar="JSON",
            help="The caller's attributes, a JSON object (as an identity extractor gives them).",
            show_default=False,
        ),
    ] = None,
    tool: Annotated[
        str | None, typer.Option("--tool", help="Check a call of this tool.", show_default=False)
    ] = None,
    resource: Annotated[
        str | None,
        typer.Option(
            "--resource", metavar="URI", help="Check a read of this URI.", show_default=False
        ),
    ] = None,
    prompt: Annotated[
        str | None,
        typer.Option("--prompt", help="Check a render of this prompt.", show_default=False),
    ] = None,
    args: Annotated[
        str | None,
        typer.Option(
            "--args",
            metavar="JSON",
            help="Tool or prompt arguments, a JSON object.",
            show_default=False,
        ),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy", metavar="FILE", help="Decide with this policy file.", show_default=False
        ),
    ] = None,
    pdp: Annotated[
        str | None,
        typer.Option(
            "--pdp", metavar="URL", help="Decide with the Permit.io PDP at URL.", show_default=False
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            metavar="KEY",
            help="The PDP's API key (default: PERMIT_MCP_PERMIT_API_KEY).",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also print the request sent to the engine.")
    ] = False,
    default_deny: DefaultDenyOption = None,
    server_name: ServerNameOption = None,
    json_output: JsonOption = False,
) -> None:
    """Ask the guard whether USER may call a tool, read a resource or render a prompt.

    Builds the request exactly as the middleware would (same lookup, argument
    binding and mapping; @public components are allowed and undecorated ones
    denied under default deny without asking the engine), asks the engine given
    by --policy or --pdp (default: the server's own), and prints the decision
    and its reason. The component itself is not run. Exit code 0 when allowed,
    1 when denied, 2 on a usage or configuration error.
    """
    targets = [(k, v) for k, v in (("tool", tool), ("resource", resource), ("prompt", prompt)) if v]
    if len(targets) != 1:
        fail("give exactly one of --tool NAME, --resource URI, --prompt NAME")
    kind, name = targets[0]
    if args is not None and kind == "resource":
        fail("--args applies to --tool and --prompt; a resource's parameters are in its URI")
    arguments = json_object(args, "--args")
    attributes = json_object(user_attributes, "--user-attributes")
    if policy is not None and pdp is not None:
        fail("give either --policy FILE or --pdp URL, not both")
    loaded, settings, _ = load(server, server_name, default_deny)
    try:
        engine, engine_label = chosen_engine(
            loaded, settings, policy=policy, pdp=pdp, api_key=api_key
        )
    except (ConfigurationError, PolicyFileError) as exc:
        fail(str(exc))
    principal = Principal(key=user, attributes=attributes, tenant=tenant)
    try:
        result = run(_check_and_close(loaded, settings, engine, principal, kind, name, arguments))
    except EngineError as exc:
        fail(f"the policy engine could not decide: {exc}")
    except ConfigurationError as exc:
        fail(str(exc))
    if json_output:
        print_json(
            {
                "allowed": result.allowed,
                "reason": result.reason,
                "decided_by": result.decided_by,
                "engine": engine_label,
                "user": user,
                "tenant": tenant,
                "component": {"kind": kind, "name": name},
                "request": result.request.to_pdp_json() if result.request else None,
            }
        )
    else:
        print_check(result, kind, name, principal, engine_label, verbose)
    raise typer.Exit(0 if result.allowed else 1)


async def _check_and_close(
    server: FastMCP[Any],
    settings: GuardSettings,
    engine: PolicyEngine,
    principal: Principal,
    kind: str,
    name: str,
    arguments: dict[str, Any],
) -> Verdict:
    checked_kind: Literal["tool", "resource", "prompt"] = (
        "tool" if kind == "tool" else "prompt" if kind == "prompt" else "resource"
    )
    try:
        return await check(
            server, settings, engine, principal, kind=checked_kind, name=name, arguments=arguments
        )
    finally:
        await close_engine(engine)


# -- lint ------------------------------------------------------------------------------------------


@app.command("lint")
def _lint(
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
    warnings); and every problem of a policy file that does not load (errors).
    Exit code 1 when it finds an error (with --strict, any finding).
    """
    loaded, settings, _ = load(server, server_name, default_deny)
    found = run(inventory(loaded, settings))
    found_file = policy_file_of(loaded, settings)
    source = str(policy) if policy is not None else found_file and shown(found_file)
    parsed: LoadedPolicy | None = None
    problems: Sequence[str] = ()
    if source is not None:
        try:
            parsed = read_policy_file(source)
        except PolicyFileError as exc:
            problems = exc.problems
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


# -- export ----------------------------------------------------------------------------------------


@app.command("export")
def _export(
    server: ServerArgument,
    output_format: Annotated[
        str,
        typer.Option(
            "--format",
            metavar="json|terraform",
            help="json: Permit.io API requests; terraform: permitio_resource blocks.",
        ),
    ] = "json",
    server_name: ServerNameOption = None,
    default_deny: DefaultDenyOption = None,
) -> None:
    """Print the Permit.io schema the server needs: resource types, actions, attributes.

    One resource type per type the guard asks about, with the actions it asks
    for and the attributes the requests carry (argument attributes typed from
    the component's schema), the list gates included. As the JSON requests
    Permit.io's API takes, or as Terraform for Permit.io's provider.
    """
    if output_format not in ("json", "terraform"):
        fail(f"--format must be json or terraform, not {output_format!r}")
    loaded, settings, _ = load(server, server_name, default_deny)
    found = run(inventory(loaded, settings))
    if output_format == "json":
        print_json(permit_api_json(found))
    else:
        sys.stdout.write(terraform(found))
