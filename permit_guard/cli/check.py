"""One request, decided by the guard core as the middleware would decide it.

The component is looked up, classified, mapped and decided by the very code
the middleware runs (:func:`~permit_guard.components.lookup.target` and
:meth:`~permit_guard.guard.Guard.decide`), with the caller given on the
command line; the component itself never runs.

Example::

    import asyncio

    from permit_guard import LocalPolicyEngine, Principal
    from permit_guard.cli.check import check
    from permit_guard.cli.load import guard_settings, load_server

    server = load_server("examples/quickstart.py:mcp")
    settings, _ = guard_settings(server)
    engine = LocalPolicyEngine.from_file("examples/policy.yaml")
    verdict = asyncio.run(
        check(server, settings, engine, Principal(key="bob"), kind="tool", name="greet")
    )
    print(verdict.allowed, verdict.reason)

With ``key=``, the component's key argument (its ``@require_permission(...,
key="project_id")``) is given the instance key, so the request names that
resource instance::

    verdict = asyncio.run(
        check(server, settings, engine, Principal(key="bob"), kind="tool",
              name="delete_invoice", key="42")
    )
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from fastmcp import FastMCP
from fastmcp.prompts.base import Prompt
from fastmcp.tools.base import Tool

from permit_guard.caller import known
from permit_guard.components.lookup import (
    Target,
    find_prompt,
    find_resource,
    find_tool,
    target,
)
from permit_guard.components.resolve import resolve_spec
from permit_guard.engines.base import PolicyEngine
from permit_guard.exceptions import ConfigurationError, EngineError, UnknownComponent
from permit_guard.guard import Guard
from permit_guard.methods import CALL_METHODS
from permit_guard.model import Principal
from permit_guard.settings import GuardSettings
from permit_guard.spec import GuardSpec
from permit_guard.verdict import Verdict

__all__ = ["check", "guard_spec", "require_arguments", "require_component"]


async def check(
    server: FastMCP[Any],
    settings: GuardSettings,
    engine: PolicyEngine,
    principal: Principal,
    *,
    kind: Literal["tool", "resource", "prompt"],
    name: str,
    arguments: Mapping[str, Any] | None = None,
    key: str | None = None,
) -> Verdict:
    """Ask the guard whether ``principal`` may call, read or render a component.

    Args:
        server: The server.
        settings: The guard's settings (see :func:`~permit_guard.cli.load.guard_settings`).
        engine: The engine to ask.
        principal: The caller.
        kind: ``tool``, ``resource`` (a URI, static or templated) or ``prompt``.
        name: Tool or prompt name, or resource URI.
        arguments: Tool or prompt arguments, as a client would send them.
        key: The resource instance key: the value of the argument the
            component's spec names with ``key=`` (sugar for giving it in
            ``arguments``).

    Returns:
        The guard's verdict, with the request the engine was asked.

    Raises:
        UnknownComponent: If the server has no such component.
        ConfigurationError: If ``key`` is given for a component without a key
            argument, or disagrees with the same argument in ``arguments``.
        EngineError: If the engine could not decide.
    """
    await require_component(server, kind, name)
    guard = Guard.from_settings(settings, engine=engine)
    await guard.planner.survey(server)  # as the middleware does when the server starts
    sent = dict(arguments or {})
    if key is not None:
        sent = await _with_key(await target(server, kind, name), sent, key)
    if kind == "prompt":
        # Prompt arguments travel as strings, as clients send them.
        sent = {k: v if isinstance(v, str) else json.dumps(v) for k, v in sent.items()}
    found = await target(server, kind, name, sent)
    verdict = await guard.decide(CALL_METHODS[found.kind], found, identify=lambda: known(principal))
    if verdict.error is not None:
        raise EngineError(verdict.error)
    return verdict


async def guard_spec(
    server: FastMCP[Any], kind: Literal["tool", "resource", "prompt"], name: str
) -> GuardSpec | None:
    """The guard spec of a component, as the guard resolves it (``None``: undecorated or unknown).

    Args:
        server: The server.
        kind: ``tool``, ``resource`` (a URI) or ``prompt``.
        name: Tool or prompt name, or resource URI.
    """
    return await _spec_of(await target(server, kind, name))


async def _spec_of(found: Target) -> GuardSpec | None:
    if found.component is None:
        return None
    try:
        return await resolve_spec(found.component)
    except LookupError:
        # The guard denies such a component ("its guard spec cannot be found").
        return None


async def _with_key(found: Target, arguments: dict[str, Any], key: str) -> dict[str, Any]:
    """``arguments`` with the component's key argument set to ``key``."""
    noun = "resource template" if found.kind == "template" else found.kind
    if found.kind in ("resource", "template"):
        raise ConfigurationError(
            f"--key applies to tools and prompts: the key of {noun} {found.name!r} comes from "
            "the URI read"
        )
    spec = await _spec_of(found)
    if spec is not None and spec.key_value is not None:
        raise ConfigurationError(
            f"{noun} {found.name!r} has a fixed key ({spec.key_value!r}, key=fixed(...)): its "
            "requests always name that instance, so --key cannot choose another"
        )
    if spec is None or spec.key_arg is None:
        raise ConfigurationError(
            f"{noun} {found.name!r} has no key argument: its @require_permission names no "
            "key=..., so its requests name no resource instance; --key applies to components "
            'declared with key="ARGUMENT"'
        )
    argument = spec.key_arg
    if argument in arguments and str(arguments[argument]) != key:
        raise ConfigurationError(
            f"--key {key!r} and --args {argument}={arguments[argument]!r} name different "
            f"instances; give the key of {noun} {found.name!r} once"
        )
    return {**arguments, argument: key}


async def require_arguments(
    server: FastMCP[Any],
    kind: Literal["tool", "resource", "prompt"],
    name: str,
    arguments: Mapping[str, Any],
    key: str | None = None,
) -> None:
    """Fail clearly when a call or render lacks a required argument its guard spec names.

    The key and tenant arguments, an attribute loader's and those
    ``@abac_from_args`` selects: without one the guard would deny with a
    generic reason (no usable key) or decide on an attribute that is not
    there, and FastMCP would refuse to run the call anyway. A required
    argument the spec does not name is only passed through, so it may be left
    out.

    Args:
        server: The server.
        kind: ``tool``, ``resource`` (never lacks any: its parameters are its URI) or ``prompt``.
        name: Tool or prompt name.
        arguments: The arguments given (``--args``).
        key: The instance key given (``--key``), which fills in the key argument.

    Raises:
        ConfigurationError: Naming the component and each missing argument.
    """
    found = await target(server, kind, name)
    component = found.component
    if isinstance(component, Tool):
        required = [str(n) for n in component.parameters.get("required", ())]
    elif isinstance(component, Prompt):
        required = [a.name for a in component.arguments or () if a.required]
    else:
        return
    spec = await _spec_of(found)
    if spec is None or spec.is_public:
        return
    named = {spec.key_arg, spec.tenant_arg, *(spec.abac_args or ())}
    named.update(spec.loader.arguments if spec.loader is not None else ())
    given = set(arguments) | ({spec.key_arg} if key is not None else set())
    missing = [a for a in required if a in named and a not in given]
    if not missing:
        return
    noun, it = ("argument", "it") if len(missing) == 1 else ("arguments", "them")
    example = json.dumps(dict.fromkeys(missing, "...")).replace('"..."', "...")
    by_key = f" (or --key for its key argument {spec.key_arg})" if spec.key_arg in missing else ""
    raise ConfigurationError(
        f"{found.kind} {name!r} needs its required {noun} {', '.join(missing)}: give {it} "
        f"with --args '{example}'{by_key}"
    )


async def require_component(server: FastMCP[Any], kind: str, name: str) -> None:
    """Fail clearly when the component does not exist (the middleware would just deny).

    Raises:
        UnknownComponent: Naming what the server has instead.
    """
    if kind == "tool":
        found: Any = await find_tool(server, name)
        known_names = [t.name for t in await server.list_tools(run_middleware=False)]
    elif kind == "prompt":
        found = await find_prompt(server, name)
        known_names = [p.name for p in await server.list_prompts(run_middleware=False)]
    else:
        found, _ = await find_resource(server, name)
        known_names = [str(r.uri) for r in await server.list_resources(run_middleware=False)] + [
            t.uri_template for t in await server.list_resource_templates(run_middleware=False)
        ]
    if found is None:
        noun = {"tool": "tools", "prompt": "prompts", "resource": "resources"}[kind]
        listing = ", ".join(sorted(set(known_names))) or "none"
        raise UnknownComponent(
            f"the server has no {kind} {name!r} ({noun}: {listing})"
            if kind != "resource"
            else f"no resource or resource template of the server matches {name!r} "
            f"({noun}: {listing})"
        )
