"""The ``permit-guard`` command: inspect, check, lint and export a guarded FastMCP server.

Every command names the server as ``path/to/file.py[:var]`` or
``package.module[:var]`` (``var`` defaults to ``mcp``), imports it without
running its ``if __name__ == "__main__":`` block, and describes it through the
guard's own code, so what it shows is what the middleware would send::

    permit-guard inspect examples/quickstart.py
    permit-guard check examples/quickstart.py --user bob --tool refund \\
        --args '{"amount": 50, "currency": "EUR"}' --policy examples/policy.yaml -v
    permit-guard lint examples/quickstart.py --policy examples/policy.yaml
    permit-guard export examples/quickstart.py --format terraform
    permit-guard policy validate examples/policy.yaml

Exit codes: 0 for success (and "allowed"), 1 for "denied" or problems found,
2 for usage and configuration errors. ``--json`` prints JSON only, on stdout.
See ``docs/cli.md``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, NoReturn

import typer
from fastmcp import FastMCP
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from permit_guard._inspect import (
    CheckResult,
    ComponentInfo,
    Finding,
    Inventory,
    check,
    guard_settings,
    inventory,
    lint,
    load_server,
    permit_api_json,
    policy_file_of,
    server_guard,
    terraform,
)
from permit_guard.engines.base import PolicyEngine
from permit_guard.engines.local import LocalPolicyEngine
from permit_guard.engines.permit import PermitPDPEngine
from permit_guard.engines.policy import LoadedPolicy, read_policy_file
from permit_guard.exceptions import ConfigurationError, EngineError, PolicyFileError
from permit_guard.model import Principal
from permit_guard.settings import GuardSettings

__all__ = ["app", "main", "policy_app"]

#: Width of tables when stdout is not a terminal, so output does not depend on it.
TABLE_WIDTH = 160

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
policy_app = typer.Typer(
    help="Work with local policy files.", no_args_is_help=True, add_completion=False
)
app.add_typer(policy_app, name="policy")

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
    loaded, settings, origin = _load(server, server_name, default_deny)
    found = _run(inventory(loaded, settings))
    if json_output:
        _print_json(
            {
                "server": found.server_name,
                "settings": _settings_json(settings, origin),
                "components": [_component_json(row) for row in found.components],
                "gates": [
                    {
                        "method": gate.method,
                        "resource_type": gate.request.resource.type,
                        "action": gate.request.action,
                        "checked": gate.checked,
                    }
                    for gate in found.gates
                ],
            }
        )
        return
    _say(f"Server {found.server_name!r}: {_settings_line(settings, origin)}")
    _show(_components_table(found))
    notes = [row for row in found.components if row.request is None and row.guard != "public"]
    for row in notes:
        if row.guard != "default-deny":
            _say(f"{row.kind} {row.name}: {row.note}")
    _say("")
    gates = _table("list method", "resource type", "action", "checked")
    for gate in found.gates:
        gates.add_row(
            *_cells(
                gate.method,
                gate.request.resource.type,
                gate.request.action,
                "yes" if gate.checked else "no (bypassed)",
            )
        )
    _show(gates)


def _components_table(found: Inventory) -> Table:
    table = _table(
        "kind",
        "name",
        "guard",
        "resource type",
        "action",
        "key",
        "tenant",
        "argument attributes",
        wrap=("argument attributes",),
    )
    for row in found.components:
        request = row.request
        name = f"{row.name} (v{row.version})" if row.version else row.name
        table.add_row(
            *_cells(
                row.kind,
                name,
                row.guard,
                request.resource.type if request else "-",
                request.action if request else "-",
                row.key.label() if row.key else "-",
                row.tenant.label() if row.tenant else "-",
                ", ".join(a.name for a in row.argument_attributes) or "-",
            )
        )
    return table


def _component_json(row: ComponentInfo) -> dict[str, Any]:
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
        _fail("give exactly one of --tool NAME, --resource URI, --prompt NAME")
    kind, name = targets[0]
    if args is not None and kind == "resource":
        _fail("--args applies to --tool and --prompt; a resource's parameters are in its URI")
    arguments = _json_object(args, "--args")
    attributes = _json_object(user_attributes, "--user-attributes")
    if policy is not None and pdp is not None:
        _fail("give either --policy FILE or --pdp URL, not both")
    loaded, settings, _ = _load(server, server_name, default_deny)
    engine, engine_label = _engine(loaded, settings, policy, pdp, api_key)
    principal = Principal(key=user, attributes=attributes, tenant=tenant)
    try:
        result = _run(_check_and_close(loaded, settings, engine, principal, kind, name, arguments))
    except EngineError as exc:
        _fail(f"the policy engine could not decide: {exc}")
    except ConfigurationError as exc:
        _fail(str(exc))
    if json_output:
        _print_json(
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
        _print_check(result, kind, name, principal, engine_label, verbose)
    raise typer.Exit(0 if result.allowed else 1)


async def _check_and_close(
    server: FastMCP[Any],
    settings: GuardSettings,
    engine: PolicyEngine,
    principal: Principal,
    kind: str,
    name: str,
    arguments: dict[str, Any],
) -> CheckResult:
    checked_kind: Literal["tool", "resource", "prompt"] = (
        "tool" if kind == "tool" else "prompt" if kind == "prompt" else "resource"
    )
    try:
        return await check(
            server, settings, engine, principal, kind=checked_kind, name=name, arguments=arguments
        )
    finally:
        close = getattr(engine, "aclose", None)
        if close is not None:
            await close()


def _engine(
    server: FastMCP[Any],
    settings: GuardSettings,
    policy: Path | None,
    pdp: str | None,
    api_key: str | None,
) -> tuple[PolicyEngine, str]:
    """The engine the options name, else the server's own."""
    if policy is not None:
        try:
            return LocalPolicyEngine.from_file(policy), f"local policy {policy}"
        except PolicyFileError as exc:
            _fail(str(exc))
    if pdp is not None:
        key = api_key or settings.permit_api_key.get_secret_value()
        if not key:
            _fail("--pdp needs --api-key KEY (or PERMIT_MCP_PERMIT_API_KEY)")
        try:
            engine = PermitPDPEngine(pdp, key, timeout=settings.pdp_timeout)
        except ConfigurationError as exc:
            _fail(str(exc))
        return engine, f"Permit.io PDP at {engine.url}"
    guard = server_guard(server)
    if guard is None:
        _fail(
            "the server has no PermitMcpMiddleware: give --policy FILE or --pdp URL --api-key KEY"
        )
    own = guard.engine
    if isinstance(own, LocalPolicyEngine):
        return own, f"the server's local policy {_shown(own.source)}"
    if isinstance(own, PermitPDPEngine):
        return own, f"the server's Permit.io PDP at {own.url}"
    return own, f"the server's engine {own!r}"


def _print_check(
    result: CheckResult, kind: str, name: str, caller: Principal, engine: str, verbose: bool
) -> None:
    verdict = "allowed" if result.allowed else "denied"
    tenant = f" in tenant {caller.tenant!r}" if caller.tenant else ""
    _say(f"{verdict}: {kind} {name!r} for user {caller.key!r}{tenant}")
    _say(f"reason: {result.reason}")
    if result.request is None:
        _say("decided by: the guard, without asking the engine")
    else:
        _say(f"decided by: {engine}")
    if not verbose:
        return
    if result.request is None:
        _say("request: none was sent")
        return
    _say("request (as the PDP receives it on POST /allowed):")
    sys.stdout.write(json.dumps(result.request.to_pdp_json(), indent=2) + "\n")


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
    loaded, settings, _ = _load(server, server_name, default_deny)
    found = _run(inventory(loaded, settings))
    found_file = policy_file_of(loaded, settings)
    source = str(policy) if policy is not None else found_file and _shown(found_file)
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
        _print_json(
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
        _print_findings(found, source, findings, errors, warnings)
    failed = errors > 0 or (strict and warnings > 0)
    raise typer.Exit(1 if failed else 0)


def _print_findings(
    found: Inventory, source: str | None, findings: list[Finding], errors: int, warnings: int
) -> None:
    against = f"policy {source}" if source else "no policy"
    deny = "on" if found.settings.default_deny else "off"
    _say(f"Server {found.server_name!r}, {against}, default deny {deny}")
    if not findings:
        _say("No problems found.")
        return
    table = _table("severity", "kind", "where", "message", wrap=("message",))
    for finding in findings:
        table.add_row(
            *_cells(
                finding.severity,
                finding.kind,
                finding.component or finding.location or "-",
                finding.message,
            )
        )
    _show(table)
    _say(f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}")


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
        _fail(f"--format must be json or terraform, not {output_format!r}")
    loaded, settings, _ = _load(server, server_name, default_deny)
    found = _run(inventory(loaded, settings))
    if output_format == "json":
        _print_json(permit_api_json(found))
    else:
        sys.stdout.write(terraform(found))


# -- policy validate -------------------------------------------------------------------------------


@policy_app.command("validate")
def _validate(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A policy file (.yaml, .yml or .json).")
    ],
    json_output: JsonOption = False,
) -> None:
    """Load a local policy file and report every problem with its location.

    Exit code 0 when the file is valid, 1 when it has problems.
    """
    try:
        loaded = read_policy_file(file)
    except PolicyFileError as exc:
        if json_output:
            _print_json({"file": str(file), "valid": False, "problems": exc.problems})
        else:
            _say(f"{file}: {_plural(len(exc.problems), 'problem')}")
            for problem in exc.problems:
                _say(f"  - {problem}")
        raise typer.Exit(1) from None
    if json_output:
        _print_json({"file": str(file), "valid": True, "problems": []})
        return
    policy = loaded.policy
    counts = ", ".join(
        _plural(n, label)
        for n, label in (
            (len(policy.resources), "resource type"),
            (len(policy.resource_sets), "resource set"),
            (len(policy.user_sets), "user set"),
            (len(policy.roles), "role"),
            (len(policy.users), "user"),
        )
    )
    _say(f"{file}: valid ({counts})")


# -- helpers ---------------------------------------------------------------------------------------


def _load(
    target: str, server_name: str | None, default_deny: bool | None
) -> tuple[FastMCP[Any], GuardSettings, str]:
    try:
        server = load_server(target)
        settings, origin = guard_settings(
            server, server_name=server_name, default_deny=default_deny
        )
    except ConfigurationError as exc:
        _fail(str(exc))
    return server, settings, origin


def _run(coroutine: Any) -> Any:
    try:
        return asyncio.run(coroutine)
    except ConfigurationError as exc:
        _fail(str(exc))


def _json_object(text: str | None, option: str) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(f"{option} is not valid JSON: {exc}")
    if not isinstance(value, dict):
        _fail(f"{option} must be a JSON object, not {type(value).__name__}: {text}")
    return value


def _fail(message: str, code: int = 2) -> NoReturn:
    sys.stderr.write(f"Error: {message}\n")
    raise typer.Exit(code)


def _shown(path: str) -> str:
    """A path as short as it can be: relative to the working directory when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def _show(table: Table) -> None:
    """Print a table; its width does not depend on the terminal unless there is one."""
    console = Console(
        width=None if sys.stdout.isatty() else TABLE_WIDTH,
        highlight=False,
        markup=False,
        emoji=False,
    )
    with console.capture() as captured:
        console.print(table)
    for line in captured.get().splitlines():
        _say(line.rstrip())


def _table(*columns: str, wrap: Sequence[str] = ()) -> Table:
    """A plain table; only the ``wrap`` columns wrap, names and types stay whole."""
    table = Table(box=box.SIMPLE, pad_edge=False, show_edge=False)
    for column in columns:
        table.add_column(column, no_wrap=column not in wrap, overflow="fold")
    return table


def _cells(*values: str) -> list[Text]:
    # Text, not str: a URI such as data://x[1] is not rich markup.
    return [Text(value) for value in values]


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _settings_line(settings: GuardSettings, origin: str) -> str:
    where = "the server's PermitMcpMiddleware" if origin == "server" else "the environment"
    deny = "on" if settings.default_deny else "off"
    return f"settings from {where}, server name {settings.mcp_server_name!r}, default deny {deny}"


def _settings_json(settings: GuardSettings, origin: str) -> dict[str, Any]:
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
