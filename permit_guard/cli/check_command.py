"""``permit-guard check``: one request, decided by the guard core, printed with its reason.

The deciding is :func:`permit_guard.cli.check.check`; this module reads the
command line, picks the engine and prints the verdict.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import typer
from fastmcp import FastMCP

from permit_guard.cli.check import check, guard_spec, require_arguments
from permit_guard.cli.credentials import principal_from_claims, principal_from_token
from permit_guard.cli.load import chosen_engine
from permit_guard.cli.options import (
    ApiKeyOption,
    DataOption,
    DefaultDenyOption,
    JsonOption,
    PdpOption,
    PolicyOption,
    ServerArgument,
    ServerNameOption,
    json_object,
    load,
    run,
)
from permit_guard.cli.render import (
    fail,
    print_check,
    print_explanation,
    print_json,
    print_rejected,
)
from permit_guard.engines.base import Explainer, PolicyEngine, close_engine
from permit_guard.exceptions import ConfigurationError, EngineError, PolicyFileError
from permit_guard.explanation import Explanation
from permit_guard.model import Principal
from permit_guard.settings import GuardSettings
from permit_guard.verdict import Verdict

__all__ = ["check_command"]


def check_command(
    ctx: typer.Context,
    server: ServerArgument,
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            help="The caller's user key (or give --token or --claims).",
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            metavar="JWT",
            help="A JWT, verified and read as the server's jwt identity would.",
            show_default=False,
        ),
    ] = None,
    claims: Annotated[
        str | None,
        typer.Option(
            "--claims",
            metavar="JSON",
            help="Verified token claims, read by the server's claim settings.",
            show_default=False,
        ),
    ] = None,
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
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            metavar="KEY",
            help="The resource instance key: the value of the argument the component names "
            "with key=.",
            show_default=False,
        ),
    ] = None,
    policy: PolicyOption = None,
    data: DataOption = None,
    pdp: PdpOption = None,
    api_key: ApiKeyOption = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Also print the request sent to the engine, and how the engine decided.",
        ),
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
    and its reason. --key KEY names the resource instance of a component
    declared with key=ARGUMENT. The component itself is not run. Exit code 0
    when allowed, 1 when denied, 2 on a usage or configuration error.
    """
    explaining = ctx.info_name == "explain"
    targets = [(k, v) for k, v in (("tool", tool), ("resource", resource), ("prompt", prompt)) if v]
    if len(targets) != 1:
        fail("give exactly one of --tool NAME, --resource URI, --prompt NAME")
    kind, name = targets[0]
    if args is not None and kind == "resource":
        fail("--args applies to --tool and --prompt; a resource's parameters are in its URI")
    if key is not None and kind == "resource":
        fail("--key applies to --tool and --prompt; a resource's key is the URI it reads")
    arguments = json_object(args, "--args")
    attributes = json_object(user_attributes, "--user-attributes")
    if policy is not None and pdp is not None:
        fail("give either --policy FILE or --pdp URL, not both")
    if data is not None and policy is None:
        fail("--data FILE goes with --policy FILE: it holds the facts of that policy")
    loaded, settings, _ = load(server, server_name, default_deny)
    try:
        engine, engine_label = chosen_engine(
            loaded, settings, policy=policy, data=data, pdp=pdp, api_key=api_key
        )
    except (ConfigurationError, PolicyFileError) as exc:
        fail(str(exc))
    given = [o for o, v in (("--user", user), ("--token", token), ("--claims", claims)) if v]
    if len(given) != 1:
        fail("name the caller with exactly one of --user USER, --token JWT, --claims JSON")
    if user is None and (tenant is not None or user_attributes is not None):
        fail("--tenant and --user-attributes go with --user; a token's claims name them")
    if user is not None:
        principal = Principal(key=user, attributes=attributes, tenant=tenant)
    else:
        try:
            if token is not None:
                found = run(principal_from_token(settings, token))
            else:
                found = principal_from_claims(settings, json_object(claims, "--claims"))
        except ConfigurationError as exc:
            fail(str(exc))
        if isinstance(found, str):
            # What the guard answers a request whose credentials name nobody.
            print_rejected(found, json_output)
            raise typer.Exit(1)
        principal = found
        user, tenant = principal.key, principal.tenant
    checked_kind: Literal["tool", "resource", "prompt"] = (
        "tool" if kind == "tool" else "prompt" if kind == "prompt" else "resource"
    )
    try:
        result, keyed, explanation = run(
            _check_and_close(
                loaded, settings, engine, principal, checked_kind, name, arguments, key
            )
        )
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
                **(
                    {"explanation": explanation.to_json() if explanation else None}
                    if verbose or explaining
                    else {}
                ),
            }
        )
    elif explaining:
        print_explanation(result, kind, name, principal, engine_label, explanation)
    else:
        named = result.request.resource if keyed and result.request else None
        instance = f"{named.type}:{named.key}" if named and named.key is not None else None
        print_check(result, kind, name, principal, engine_label, verbose, instance=instance)
        if verbose:
            print_explanation(result, kind, name, principal, engine_label, explanation, tree=True)
    raise typer.Exit(0 if result.allowed else 1)


async def _check_and_close(
    server: FastMCP[Any],
    settings: GuardSettings,
    engine: PolicyEngine,
    principal: Principal,
    kind: Literal["tool", "resource", "prompt"],
    name: str,
    arguments: dict[str, Any],
    key: str | None,
) -> tuple[Verdict, bool, Explanation | None]:
    """The verdict, whether the component names its instance with ``key=``, and how it was
    decided (when the engine was asked and can explain)."""
    try:
        verdict = await check(
            server,
            settings,
            engine,
            principal,
            kind=kind,
            name=name,
            arguments=arguments,
            key=key,
        )
        # After check(): a --key that does not fit the component is said first.
        await require_arguments(server, kind, name, arguments, key)
        spec = await guard_spec(server, kind, name)
        keyed = spec is not None and (spec.key_arg is not None or spec.key_value is not None)
        explanation = None
        if verdict.why == "engine" and verdict.request and isinstance(engine, Explainer):
            # The same engine on the same request: the tree of the decision just made.
            explanation = engine.explain(verdict.request).explanation
        return verdict, keyed, explanation
    finally:
        await close_engine(engine)
