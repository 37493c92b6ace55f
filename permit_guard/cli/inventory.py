"""What the guard makes of a FastMCP server: the engine behind the ``permit-guard`` command.

Everything here goes through the guard's own code, so the command shows what
the middleware would send rather than a second opinion:

- components come from the server's own ``list_tools()`` / ``list_resources()``
  / ``list_resource_templates()`` / ``list_prompts()`` with
  ``run_middleware=False`` (mounted servers included, nothing filtered);
- specs and argument binders from :func:`permit_guard.registry.resolve`;
- requests from :func:`permit_guard.mapping.component_request` and
  :func:`~permit_guard.mapping.gate_request`, with the mapping settings of a
  real :class:`~permit_guard.middleware.PermitMcpMiddleware`;
- :func:`check` runs that middleware's own hooks, with a stand-in for the
  component so nothing is executed.

Example::

    import asyncio

    from permit_guard._inspect import guard_settings, inventory, load_server

    server = load_server("examples/quickstart.py:mcp")
    settings, _ = guard_settings(server)
    for row in asyncio.run(inventory(server, settings)).components:
        print(row.kind, row.name, row.guard, row.request.action if row.request else "-")
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import inspect
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import mcp_types as mt
from fastmcp import FastMCP
from fastmcp.prompts.base import Prompt
from fastmcp.server.context import Context
from fastmcp.server.middleware import MiddlewareContext

from permit_guard.audit import DecisionEvent
from permit_guard.binding import ArgumentBinder
from permit_guard.decorators import GuardSpec
from permit_guard.engines.base import PolicyEngine
from permit_guard.engines.local import LocalPolicyEngine
from permit_guard.engines.policy import WILDCARD, Policy
from permit_guard.exceptions import AccessDenied, ConfigurationError, EngineError
from permit_guard.mapping import (
    CALL_METHODS,
    KIND_LIST_METHODS,
    LIST_METHODS,
    InvalidArguments,
    Kind,
    component_request,
    gate_request,
)
from permit_guard.middleware import PermitMcpMiddleware, compile_patterns
from permit_guard.model import AuthzRequest, Decision, Principal
from permit_guard.registry import (
    Component,
    component_name,
    find_prompt,
    find_resource,
    find_tool,
    resolve,
)
from permit_guard.settings import GuardSettings, load_settings

__all__ = [
    "Attribute",
    "CheckResult",
    "ComponentInfo",
    "Finding",
    "GateInfo",
    "Inventory",
    "ResourceSchema",
    "ServerLoadError",
    "Source",
    "UnknownComponent",
    "check",
    "guard_settings",
    "inventory",
    "lint",
    "load_server",
    "permit_api_json",
    "policy_file_of",
    "schema_of",
    "server_guard",
    "terraform",
]

DEFAULT_VARIABLE = "mcp"

_NOUNS: Mapping[Kind, str] = {
    "tool": "tool",
    "resource": "resource",
    "template": "resource template",
    "prompt": "prompt",
}

#: Nested schemas deeper than this get no sample value.
_MAX_SAMPLE_DEPTH = 8


class ServerLoadError(ConfigurationError):
    """The server named on the command line cannot be loaded."""


class UnknownComponent(ConfigurationError):
    """The server has no component of that name."""


# -- loading ---------------------------------------------------------------------------------------


def load_server(target: str) -> FastMCP[Any]:
    """Import the server named by ``target``, without running its ``__main__`` block.

    Args:
        target: ``path/to/file.py[:var]`` or ``package.module[:var]``; ``var``
            defaults to ``mcp``. It may also name a function that takes no
            arguments and returns the server (sync or async).

    Returns:
        The server.

    Raises:
        ServerLoadError: If the file or module cannot be found or imported, or
            the variable is missing or is not a FastMCP server.
    """
    location, variable = _split_target(target)
    is_file = location.endswith(".py") or "/" in location or os.sep in location
    # Whatever the module prints while it is imported must not mix with --json output.
    with contextlib.redirect_stdout(sys.stderr):
        module = _import_file(location) if is_file else _import_module(location)
        obj = getattr(module, variable, _MISSING)
        if obj is _MISSING:
            raise ServerLoadError(f"{location} has no variable {variable!r}{_servers_in(module)}")
        return _as_server(obj, f"{location}:{variable}")


_MISSING: Any = object()


def _split_target(target: str) -> tuple[str, str]:
    location, colon, variable = target.rpartition(":")
    if not colon or not variable.isidentifier() or not location:
        # No variable given (a Windows drive letter is no variable either).
        return target, DEFAULT_VARIABLE
    return location, variable


def _import_file(location: str) -> Any:
    path = Path(location).expanduser()
    if not path.is_file():
        raise ServerLoadError(f"server file {location!r} not found")
    path = path.resolve()
    # Like `fastmcp run`: the file's folder is importable, so sibling modules are found.
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    # Never "__main__": the file's `if __name__ == "__main__":` block must not run.
    name = path.stem if path.stem.isidentifier() else "server"
    if name in sys.modules:
        name = f"_permit_guard_server_{name}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ServerLoadError(f"cannot import {location!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        sys.modules.pop(name, None)
        raise ServerLoadError(f"importing {location} failed: {_describe_error(exc)}") from exc
    return module


def _import_module(location: str) -> Any:
    # A console script does not have the working directory on sys.path; `python -m` does.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(location)
    except ModuleNotFoundError as exc:
        if exc.name is not None and location.startswith(exc.name):
            raise ServerLoadError(
                f"no module named {location!r} (a file is named path/to/file.py)"
            ) from exc
        raise ServerLoadError(f"importing {location} failed: {_describe_error(exc)}") from exc
    except (Exception, SystemExit) as exc:
        raise ServerLoadError(f"importing {location} failed: {_describe_error(exc)}") from exc


def _as_server(obj: Any, label: str) -> FastMCP[Any]:
    if isinstance(obj, FastMCP):
        return obj
    if inspect.isfunction(obj) or inspect.iscoroutinefunction(obj):
        required = [
            p.name
            for p in inspect.signature(obj).parameters.values()
            if p.default is inspect.Parameter.empty
            and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        ]
        if required:
            raise ServerLoadError(
                f"{label} is a function that takes arguments ({', '.join(required)}); name a "
                "FastMCP server, or a function that builds one without arguments"
            )
        try:
            built = obj()
            if inspect.isawaitable(built):
                built = asyncio.run(_await(built))
        except (Exception, SystemExit) as exc:
            raise ServerLoadError(f"{label}() failed: {_describe_error(exc)}") from exc
        if isinstance(built, FastMCP):
            return built
        raise ServerLoadError(f"{label}() returned {_kind_of(built)}, not a FastMCP server")
    raise ServerLoadError(f"{label} is {_kind_of(obj)}, not a FastMCP server")


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _servers_in(module: Any) -> str:
    names = sorted(name for name, value in vars(module).items() if isinstance(value, FastMCP))
    if names:
        return f" (FastMCP servers in it: {', '.join(names)}; name one as FILE:VAR)"
    return " and defines no FastMCP server at module level; name one as FILE:VAR"


def _kind_of(value: Any) -> str:
    name = type(value).__name__
    article = "an" if name[:1].lower() in "aeiou" else "a"
    return f"{article} {name}"


def _describe_error(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- settings --------------------------------------------------------------------------------------


def server_guard(server: FastMCP[Any]) -> PermitMcpMiddleware | None:
    """The first :class:`PermitMcpMiddleware` the server runs, if any."""
    for middleware in server.middleware:
        if isinstance(middleware, PermitMcpMiddleware):
            return middleware
    return None


def guard_settings(
    server: FastMCP[Any],
    *,
    server_name: str | None = None,
    default_deny: bool | None = None,
) -> tuple[GuardSettings, str]:
    """The settings the guard of ``server`` maps requests with.

    Those of the server's own :class:`PermitMcpMiddleware` when it has one,
    else the environment's (``PERMIT_MCP_*``, ``.env``); then the overrides.

    Args:
        server: The server.
        server_name: Overrides ``mcp_server_name``.
        default_deny: Overrides ``default_deny``.

    Returns:
        The settings, and where they came from (``"server"`` or ``"environment"``).

    Raises:
        ConfigurationError: On a malformed environment or an empty server name.
    """
    guard = server_guard(server)
    settings, origin = (guard.settings, "server") if guard else (load_settings(), "environment")
    updates: dict[str, Any] = {}
    if server_name is not None:
        if not server_name.strip():
            raise ConfigurationError("--server-name must not be empty")
        updates["mcp_server_name"] = server_name
    if default_deny is not None:
        updates["default_deny"] = default_deny
    return settings.model_copy(update=updates), origin


def policy_file_of(server: FastMCP[Any], settings: GuardSettings) -> str | None:
    """The policy file the server's guard decides with, else ``PERMIT_MCP_POLICY_FILE``."""
    guard = server_guard(server)
    engine = guard.engine if guard is not None else None
    if isinstance(engine, LocalPolicyEngine) and Path(engine.source).is_file():
        return engine.source
    return str(settings.policy_file) if settings.policy_file is not None else None


def _guard(
    settings: GuardSettings,
    engine: PolicyEngine,
    principal: Principal,
    sink: Any = None,
) -> PermitMcpMiddleware:
    """A middleware that maps and decides exactly as the server's would, reporting every event."""
    settings = settings.model_copy(
        update={"enable_audit_logging": sink is not None, "cache_ttl": 0.0}
    )
    return PermitMcpMiddleware(
        engine=engine, identity=lambda context: principal, audit_sink=sink, settings=settings
    )


class _NeverAsked:
    """An engine for describing the server: describing asks nothing."""

    name = "none"

    async def check(self, request: AuthzRequest) -> Decision:
        raise EngineError("no engine: the server is only being described")

    async def check_many(self, requests: Sequence[AuthzRequest]) -> list[Decision]:
        raise EngineError("no engine: the server is only being described")


# -- inventory -------------------------------------------------------------------------------------

GuardKind = Literal["decorated", "public", "default", "default-deny", "unresolved"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Source:
    """Where a request's resource key or tenant comes from.

    Attributes:
        origin: ``argument``, ``fixed``, ``uri`` (the URI read), ``name`` (the
            prompt name) or ``caller`` (the caller's tenant, else ``default``).
        value: The argument name, or the fixed value.
    """

    origin: Literal["argument", "fixed", "uri", "name", "caller"]
    value: str | None = None

    def label(self) -> str:
        """Short form for tables: ``arg:invoice_id``, ``fixed:acme``, ``uri``..."""
        if self.origin == "argument":
            return f"arg:{self.value}"
        if self.origin == "fixed":
            return f"fixed:{self.value}"
        return self.origin

    def to_json(self) -> dict[str, str]:
        """The source as JSON."""
        if self.value is None:
            return {"from": self.origin}
        label = "argument" if self.origin == "argument" else "value"
        return {"from": self.origin, label: self.value}


@dataclass(frozen=True, kw_only=True, slots=True)
class Attribute:
    """A resource attribute a request carries.

    Attributes:
        name: The attribute name (``arg_amount``, ``tool_name``...).
        type: Its Permit.io attribute type (``string``, ``number``, ``bool``,
            ``array``, ``json``).
    """

    name: str
    type: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ComponentInfo:
    """One component as the guard sees it.

    Attributes:
        kind: ``tool``, ``resource``, ``template`` or ``prompt``.
        name: Tool or prompt name, resource URI or URI template.
        version: The component version, if it has one.
        guard: ``decorated`` (``@require_permission``), ``public``, ``default``
            (undecorated: checked with the method mapping), ``default-deny``
            (undecorated under default deny: hidden and denied without asking
            the engine) or ``unresolved`` (denied: its spec cannot be found).
        function: Qualified name of the decorated function.
        mounted: Whether it comes from a mounted server.
        request: The request a call sends, argument values shown as
            placeholders; ``None`` when the engine is never asked.
        key: Where the resource key comes from, ``None`` when there is none.
        tenant: Where the tenant comes from.
        attributes: The resource attributes the request carries, arguments first.
        note: Why the engine is never asked, when it is not.
    """

    kind: Kind
    name: str
    version: str | None
    guard: GuardKind
    function: str | None
    mounted: bool
    request: AuthzRequest | None
    key: Source | None
    tenant: Source | None
    attributes: tuple[Attribute, ...] = ()
    note: str = ""

    @property
    def argument_attributes(self) -> tuple[Attribute, ...]:
        """The attributes that carry arguments (all but the built-ins)."""
        return tuple(a for a in self.attributes if a.name not in _BUILT_INS)


_BUILT_INS = frozenset({"mcp_method", "tool_name", "prompt_name", "resource_uri"})


@dataclass(frozen=True, kw_only=True, slots=True)
class GateInfo:
    """The method-level check of one list method.

    Attributes:
        method: ``tools/list``, ``resources/list``...
        request: The gate request.
        checked: ``False`` when ``bypassed_methods`` skips the gate.
    """

    method: str
    request: AuthzRequest
    checked: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class Inventory:
    """Every component of a server and every list gate, as the guard maps them.

    Attributes:
        server_name: The FastMCP server's name.
        settings: The settings used.
        components: The components, tools first, then resources, templates, prompts.
        gates: The gates of the four list methods.
    """

    server_name: str
    settings: GuardSettings
    components: tuple[ComponentInfo, ...]
    gates: tuple[GateInfo, ...]

    def families(self) -> set[str]:
        """The list methods whose lists can hold something."""
        return {KIND_LIST_METHODS[c.kind] for c in self.components}


async def inventory(server: FastMCP[Any], settings: GuardSettings) -> Inventory:
    """Describe every component of ``server`` and every list gate.

    Args:
        server: The server; mounted servers are listed through it.
        settings: The mapping settings (see :func:`guard_settings`).

    Returns:
        The inventory.

    Raises:
        ConfigurationError: If the settings cannot work together.
    """
    principal = Principal(key="{user}")
    guard = _guard(settings, _NeverAsked(), principal)
    listed: list[tuple[Kind, Sequence[Component]]] = [
        ("tool", await server.list_tools(run_middleware=False)),
        ("resource", await server.list_resources(run_middleware=False)),
        ("template", await server.list_resource_templates(run_middleware=False)),
        ("prompt", await server.list_prompts(run_middleware=False)),
    ]
    components = [
        await _describe(kind, item, guard, principal) for kind, items in listed for item in items
    ]
    bypass = compile_patterns(settings.bypassed_methods)
    gates = tuple(
        GateInfo(
            method=method,
            request=gate_request(method, principal, guard.mapping),
            checked=bypass is None or bypass.fullmatch(method) is None,
        )
        for method in LIST_METHODS
    )
    return Inventory(
        server_name=server.name, settings=settings, components=tuple(components), gates=gates
    )


async def _describe(
    kind: Kind, item: Component, guard: PermitMcpMiddleware, principal: Principal
) -> ComponentInfo:
    name = component_name(item)
    common: dict[str, Any] = {
        "kind": kind,
        "name": name,
        "version": getattr(item, "version", None) or None,
        "mounted": getattr(item, "_server", None) is not None,
    }
    try:
        resolved = await resolve(item)
    except Exception as exc:
        # The middleware denies what it cannot resolve (fail closed); so says the row.
        return ComponentInfo(
            **common,
            guard="unresolved",
            function=None,
            request=None,
            key=None,
            tenant=None,
            note=f"denied: {exc}",
        )
    spec = resolved.spec
    function = spec.function if spec is not None and spec.function else None
    guard_kind: GuardKind
    if spec is not None and spec.is_public:
        guard_kind = "public"
    elif spec is None or not spec.is_declared:
        guard_kind = "default-deny" if guard.default_deny else "default"
    else:
        guard_kind = "decorated"
    common.update(guard=guard_kind, function=function)
    if guard_kind == "public":
        return ComponentInfo(**common, request=None, key=None, tenant=None, note="never checked")
    if guard_kind == "default-deny":
        return ComponentInfo(
            **common,
            request=None,
            key=None,
            tenant=None,
            note="undecorated under default deny: hidden and denied without asking the engine",
        )
    if not resolved.arguments_mappable:
        return ComponentInfo(
            **common,
            request=None,
            key=None,
            tenant=None,
            note="denied: a transformed tool whose requirement reads arguments",
        )
    arguments = _sample_arguments(kind, item, resolved.binder)
    try:
        request = _request(kind, name, principal, spec, guard, arguments, resolved.binder)
    except InvalidArguments as exc:
        return ComponentInfo(
            **common, request=None, key=None, tenant=None, note=f"always denied: {exc}"
        )
    return ComponentInfo(
        **common,
        request=request,
        key=_key_source(kind, spec),
        tenant=_tenant_source(spec),
        attributes=_attributes(request),
    )


def _request(
    kind: Kind,
    name: str,
    principal: Principal,
    spec: GuardSpec | None,
    guard: PermitMcpMiddleware,
    arguments: Mapping[str, Any],
    binder: ArgumentBinder,
) -> AuthzRequest:
    """The request of a call with sample arguments, through the mapping itself."""

    def build(reader: ArgumentBinder | None) -> AuthzRequest:
        return component_request(
            kind=kind,
            name=name,
            method=CALL_METHODS[kind],
            principal=principal,
            spec=spec,
            config=guard.mapping,
            arguments=arguments,
            binder=reader,
        )

    try:
        return build(binder)
    except InvalidArguments:
        # A sample the function's own validation refuses (a pattern, a bound):
        # attribute names do not depend on the values, so map them unvalidated.
        return build(None)


def _key_source(kind: Kind, spec: GuardSpec | None) -> Source | None:
    if spec is not None and spec.key_value is not None:
        return Source(origin="fixed", value=spec.key_value)
    if spec is not None and spec.key_arg is not None:
        return Source(origin="argument", value=spec.key_arg)
    if kind == "tool":
        return None
    return Source(origin="name" if kind == "prompt" else "uri")


def _tenant_source(spec: GuardSpec | None) -> Source:
    if spec is not None and spec.tenant_value is not None:
        return Source(origin="fixed", value=spec.tenant_value)
    if spec is not None and spec.tenant_arg is not None:
        return Source(origin="argument", value=spec.tenant_arg)
    return Source(origin="caller")


def _attributes(request: AuthzRequest) -> tuple[Attribute, ...]:
    found = [
        Attribute(name=name, type=_permit_type(value))
        for name, value in request.resource.attributes.items()
    ]
    # Arguments first, then the built-ins, each group in the mapping's order.
    return tuple(sorted(found, key=lambda a: a.name in _BUILT_INS))


def _permit_type(value: Any) -> str:
    """The Permit.io attribute type of a JSON value (``json`` when it cannot be told)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    return "json"


def _sample_arguments(kind: Kind, item: Component, binder: ArgumentBinder) -> dict[str, Any]:
    """A value of the declared type for every argument a client can send."""
    schema: Any
    if kind == "prompt" and isinstance(item, Prompt):
        schema = _prompt_schema(item, binder)
    elif kind in ("tool", "template"):
        schema = getattr(item, "parameters", None)
    else:
        return {}
    if not isinstance(schema, Mapping):
        return {}
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return {}
    defs = schema.get("$defs")
    defs = defs if isinstance(defs, Mapping) else {}
    return {str(name): _sample(prop, defs, str(name), 0) for name, prop in properties.items()}


def _prompt_schema(prompt: Prompt, binder: ArgumentBinder) -> dict[str, Any]:
    """Prompt arguments travel as strings; the binder knows the types the function reads."""
    # The binder knows the function's types; a prompt has no other typed schema.
    properties: dict[str, Any] = {}
    defs: dict[str, Any] = {}
    for argument in prompt.arguments or []:
        schema: Any = binder.json_schema(argument.name) or {"type": "string"}
        if isinstance(schema, Mapping) and isinstance(schema.get("$defs"), Mapping):
            defs.update(schema["$defs"])
        properties[argument.name] = schema
    return {"type": "object", "properties": properties, "$defs": defs}


def _sample(schema: Any, defs: Mapping[str, Any], name: str, depth: int) -> Any:
    """A JSON value the schema admits; strings are the ``{name}`` placeholder."""
    if not isinstance(schema, Mapping) or depth > _MAX_SAMPLE_DEPTH:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _sample(defs.get(ref.removeprefix("#/$defs/")), defs, name, depth + 1)
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = schema.get(combinator)
        if isinstance(options, list):
            concrete = [o for o in options if isinstance(o, Mapping) and o.get("type") != "null"]
            return _sample(concrete[0], defs, name, depth + 1) if concrete else None
    declared = schema.get("type")
    if isinstance(declared, list):
        declared = next((t for t in declared if t != "null"), None)
    properties = schema.get("properties")
    if declared == "object" or isinstance(properties, Mapping):
        if not isinstance(properties, Mapping):
            return {}
        return {str(k): _sample(v, defs, str(k), depth + 1) for k, v in properties.items()}
    return {
        "string": f"{{{name}}}",
        "integer": 0,
        "number": 0.0,
        "boolean": False,
        "array": [],
    }.get(str(declared))


# -- check -----------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class CheckResult:
    """The guard's answer to one request.

    Attributes:
        allowed: Whether the component would run.
        reason: Why (the engine's reason, or the guard's own).
        decided_by: The engine's name, or ``guard`` when the engine was not asked.
        request: The request the engine was asked, if it was.
    """

    allowed: bool
    reason: str
    decided_by: str
    request: AuthzRequest | None


class _Recorder:
    """Passes requests to the engine, keeping the request and any failure."""

    def __init__(self, inner: PolicyEngine) -> None:
        self.inner = inner
        self.requests: list[AuthzRequest] = []
        self.failure: Exception | None = None

    @property
    def name(self) -> str:
        return self.inner.name

    async def check(self, request: AuthzRequest) -> Decision:
        self.requests.append(request)
        try:
            return await self.inner.check(request)
        except Exception as exc:
            self.failure = exc
            raise

    async def check_many(self, requests: Sequence[AuthzRequest]) -> list[Decision]:
        self.requests.extend(requests)
        try:
            return await self.inner.check_many(requests)
        except Exception as exc:
            self.failure = exc
            raise


async def _proceed(context: MiddlewareContext[Any]) -> Any:
    """Stands in for the component: a check never runs it."""
    return None


async def check(
    server: FastMCP[Any],
    settings: GuardSettings,
    engine: PolicyEngine,
    principal: Principal,
    *,
    kind: Literal["tool", "resource", "prompt"],
    name: str,
    arguments: Mapping[str, Any] | None = None,
) -> CheckResult:
    """Ask the guard, as the middleware would for this request, whether it may run.

    The middleware's own hook runs (lookup, spec, binder, mapping, engine),
    with ``principal`` as the caller; the component itself is not run.

    Args:
        server: The server.
        settings: The guard's settings (see :func:`guard_settings`).
        engine: The engine to ask.
        principal: The caller.
        kind: ``tool``, ``resource`` (a URI, static or templated) or ``prompt``.
        name: Tool or prompt name, or resource URI.
        arguments: Tool or prompt arguments, as a client would send them.

    Returns:
        The decision and the request the engine was asked.

    Raises:
        UnknownComponent: If the server has no such component.
        EngineError: If the engine could not decide.
    """
    await _require(server, kind, name)
    recorder = _Recorder(engine)
    events: list[DecisionEvent] = []
    guard = _guard(settings, recorder, principal, events.append)
    fastmcp_context = Context(fastmcp=server)
    allowed = True
    try:
        if kind == "tool":
            await guard.on_call_tool(
                MiddlewareContext(
                    message=mt.CallToolRequestParams(name=name, arguments=dict(arguments or {})),
                    fastmcp_context=fastmcp_context,
                    method="tools/call",
                ),
                _proceed,
            )
        elif kind == "prompt":
            await guard.on_get_prompt(
                MiddlewareContext(
                    message=mt.GetPromptRequestParams(
                        name=name, arguments={k: _as_text(v) for k, v in (arguments or {}).items()}
                    ),
                    fastmcp_context=fastmcp_context,
                    method="prompts/get",
                ),
                _proceed,
            )
        else:
            await guard.check_resource_access(
                MiddlewareContext(
                    message=mt.ReadResourceRequestParams(uri=name),
                    fastmcp_context=fastmcp_context,
                    method="resources/read",
                )
            )
    except AccessDenied:
        allowed = False
    if recorder.failure is not None:
        raise EngineError(str(recorder.failure)) from recorder.failure
    event = next((e for e in reversed(events) if e.component == name), None)
    return CheckResult(
        allowed=allowed,
        reason=event.reason if event is not None else "no decision was recorded",
        decided_by=event.engine if event is not None else "guard",
        request=recorder.requests[-1] if recorder.requests else None,
    )


def _as_text(value: Any) -> str:
    """Prompt arguments travel as strings; non-strings as JSON, as clients send them."""
    return value if isinstance(value, str) else json.dumps(value)


async def _require(server: FastMCP[Any], kind: str, name: str) -> None:
    """Fail clearly when the component does not exist (the middleware would just deny)."""
    if kind == "tool":
        found: Any = await find_tool(server, name)
        known = [t.name for t in await server.list_tools(run_middleware=False)]
    elif kind == "prompt":
        found = await find_prompt(server, name)
        known = [p.name for p in await server.list_prompts(run_middleware=False)]
    else:
        found, _ = await find_resource(server, name)
        known = [str(r.uri) for r in await server.list_resources(run_middleware=False)] + [
            t.uri_template for t in await server.list_resource_templates(run_middleware=False)
        ]
    if found is None:
        noun = {"tool": "tools", "prompt": "prompts", "resource": "resources"}[kind]
        listing = ", ".join(sorted(set(known))) or "none"
        raise UnknownComponent(
            f"the server has no {kind} {name!r} ({noun}: {listing})"
            if kind != "resource"
            else f"no resource or resource template of the server matches {name!r} "
            f"({noun}: {listing})"
        )


# -- lint ------------------------------------------------------------------------------------------

Severity = Literal["error", "warning"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Finding:
    """One problem ``lint`` found.

    Attributes:
        kind: ``invalid-policy``, ``undecorated``, ``unreachable`` or ``dead-grant``.
        severity: ``error`` or ``warning``.
        component: The component (``tool greet``) or list method it is about.
        location: Where in the policy file, for policy findings.
        message: What is wrong, and what follows from it.
    """

    kind: str
    severity: Severity
    component: str | None
    location: str | None
    message: str

    def to_json(self) -> dict[str, Any]:
        """The finding as JSON."""
        return {
            "kind": self.kind,
            "severity": self.severity,
            "component": self.component,
            "location": self.location,
            "message": self.message,
        }


def lint(
    found: Inventory,
    *,
    policy: Policy | None = None,
    policy_problems: Sequence[str] = (),
    policy_source: str | None = None,
) -> list[Finding]:
    """Find undecorated components and, with a policy, unreachable components and dead grants.

    Args:
        found: The server's inventory.
        policy: The validated policy, if one was given and is valid.
        policy_problems: The problems of a policy that did not load.
        policy_source: The policy file, for messages.

    Returns:
        The findings, errors first.
    """
    findings = [
        Finding(
            kind="invalid-policy",
            severity="error",
            component=None,
            location=policy_source,
            message=problem,
        )
        for problem in policy_problems
    ]
    default_deny = found.settings.default_deny
    for row in found.components:
        label = f"{row.kind} {row.name}"
        if row.guard in ("default", "default-deny"):
            findings.append(
                Finding(
                    kind="undecorated",
                    severity="error" if default_deny else "warning",
                    component=label,
                    location=None,
                    message=(
                        f"{_function(row)} has neither @require_permission nor @public: under "
                        "default deny it is hidden and denied to everyone"
                        if default_deny
                        else f"{_function(row)} has neither @require_permission nor @public: it "
                        f"is checked with the default mapping, as {_pair_of(row)}"
                    ),
                )
            )
        elif row.guard == "unresolved" or (row.guard == "decorated" and row.request is None):
            findings.append(
                Finding(
                    kind="unreachable",
                    severity="error",
                    component=label,
                    location=None,
                    message=f"the guard always denies it ({row.note})",
                )
            )
    if policy is not None:
        findings.extend(_policy_findings(found, policy))
    return sorted(findings, key=lambda f: f.severity != "error")


def _function(row: ComponentInfo) -> str:
    return f"{_NOUNS[row.kind]} {row.name!r}"


def _pair_of(row: ComponentInfo) -> str:
    request = row.request
    return f"{request.resource.type}:{request.action}" if request is not None else "-"


def _policy_findings(found: Inventory, policy: Policy) -> list[Finding]:
    asked = {
        (row.request.resource.type, row.request.action)
        for row in found.components
        if row.request is not None
    }
    asked |= {(g.request.resource.type, g.request.action) for g in found.gates if g.checked}
    asked_types = {type_name for type_name, _ in asked}
    granted = _granted_pairs(policy)
    findings: list[Finding] = []

    for row in found.components:
        request = row.request
        if request is None:
            continue
        pair = (request.resource.type, request.action)
        if pair not in granted:
            findings.append(
                Finding(
                    kind="unreachable",
                    severity="error",
                    component=f"{row.kind} {row.name}",
                    location=None,
                    message=f"{_why_ungranted(policy, *pair)}: no role, user set or resource "
                    f"role can ever use {_function(row)}",
                )
            )
    families = found.families()
    reported: set[tuple[str, str]] = set()
    for gate in found.gates:
        pair = (gate.request.resource.type, gate.request.action)
        if not gate.checked or gate.method not in families or pair in granted:
            continue
        if pair in reported:
            continue
        reported.add(pair)
        findings.append(
            Finding(
                kind="unreachable",
                severity="warning",
                component=gate.method,
                location=None,
                message=f"{_why_ungranted(policy, *pair)}: {gate.method} answers everyone with "
                "the @public components only",
            )
        )

    for where, type_name, actions in _grants(policy):
        if type_name not in asked_types:
            findings.append(
                Finding(
                    kind="dead-grant",
                    severity="warning",
                    component=None,
                    location=where,
                    message=f"grants {_listing(actions)} on {type_name!r}, a resource type the "
                    "server never asks about",
                )
            )
            continue
        for action in actions:
            if action != WILDCARD and (type_name, action) not in asked:
                findings.append(
                    Finding(
                        kind="dead-grant",
                        severity="warning",
                        component=None,
                        location=where,
                        message=f"grants {type_name}:{action}, which no component of the server "
                        "asks for",
                    )
                )
    return findings


def _listing(actions: Sequence[str]) -> str:
    if WILDCARD in actions:
        return "every action"
    return ", ".join(actions)


def _grants(policy: Policy) -> Iterable[tuple[str, str, list[str]]]:
    """(location, resource type, actions) of every grant: roles, user sets, resource roles."""
    for holder, section in (("roles", policy.roles), ("user_sets", policy.user_sets)):
        for name, entry in section.items():
            for target, actions in entry.grants.items():
                resource_set = policy.resource_sets.get(target)
                type_name = resource_set.resource if resource_set is not None else target
                yield f"{holder}.{name}.grants.{target}", type_name, actions
    for type_name, resource in policy.resources.items():
        for role, actions in resource.roles.items():
            yield f"resources.{type_name}.roles.{role}", type_name, actions


def _granted_pairs(policy: Policy) -> set[tuple[str, str]]:
    granted: set[tuple[str, str]] = set()
    for _, type_name, actions in _grants(policy):
        resource = policy.resources.get(type_name)
        known = resource.actions if resource is not None else []
        expanded = known if WILDCARD in actions else actions
        granted.update((type_name, action) for action in expanded)
    return granted


def _why_ungranted(policy: Policy, type_name: str, action: str) -> str:
    resource = policy.resources.get(type_name)
    if resource is None:
        return f"the policy has no resource type {type_name!r}"
    if action not in resource.actions:
        return f"resource type {type_name!r} of the policy has no action {action!r}"
    return f"nothing in the policy grants {type_name}:{action}"


# -- export ----------------------------------------------------------------------------------------


@dataclass(kw_only=True, slots=True)
class ResourceSchema:
    """One resource type the server needs in Permit.io.

    Attributes:
        key: The resource type.
        actions: Its actions, in the order the server uses them.
        attributes: Attribute name -> Permit.io type (``json`` when components disagree).
    """

    key: str
    actions: list[str] = field(default_factory=list)
    attributes: dict[str, str] = field(default_factory=dict)

    def add(self, action: str, attributes: Iterable[Attribute]) -> None:
        """Record one request's action and attributes."""
        if action not in self.actions:
            self.actions.append(action)
        for attribute in attributes:
            known = self.attributes.setdefault(attribute.name, attribute.type)
            if known != attribute.type:
                self.attributes[attribute.name] = "json"


def schema_of(found: Inventory) -> list[ResourceSchema]:
    """The resource types, actions and attributes the server's requests use.

    Includes the list gates of the kinds of component the server has (unless
    bypassed). Public components and those denied without asking the engine
    need nothing.
    """
    schemas: dict[str, ResourceSchema] = {}

    def add(request: AuthzRequest, attributes: Iterable[Attribute]) -> None:
        type_name = request.resource.type
        schemas.setdefault(type_name, ResourceSchema(key=type_name)).add(request.action, attributes)

    for row in found.components:
        if row.request is not None:
            add(row.request, row.attributes)
    families = found.families()
    for gate in found.gates:
        if gate.checked and gate.method in families:
            add(gate.request, _attributes(gate.request))
    return list(schemas.values())


def permit_api_json(found: Inventory) -> dict[str, Any]:
    """The schema as Permit.io API requests, like ``docs/example_policies/permit-api.json``."""
    requests = []
    for schema in schema_of(found):
        body: dict[str, Any] = {
            "key": schema.key,
            "name": schema.key,
            "actions": {action: {"name": action} for action in schema.actions},
        }
        if schema.attributes:
            body["attributes"] = {
                name: {"type": kind} for name, kind in sorted(schema.attributes.items())
            }
        requests.append(
            {"method": "POST", "path": "/schema/{proj_id}/{env_id}/resources", "body": body}
        )
    return {
        "description": (
            f"The resource types the MCP server {found.server_name!r} needs in Permit.io, as "
            "API requests. Paths are under https://api.permit.io/v2 with your "
            "{proj_id}/{env_id}; send each body with Authorization: Bearer <your API key>. "
            "Then create the roles, resource sets and user sets of your policy."
        ),
        "requests": requests,
    }


def terraform(found: Inventory) -> str:
    """The schema as ``permitio_resource`` blocks for Permit.io's Terraform provider."""
    lines = [
        f"# The resource types the MCP server {found.server_name!r} needs in Permit.io",
        "# (provider permitio/permit-io; see docs/example_policies/permit.tf for the provider",
        "# block). Add your roles, resource sets and user sets beside them.",
    ]
    for schema in schema_of(found):
        lines += ["", f'resource "permitio_resource" "{_hcl_label(schema.key)}" {{']
        lines += _hcl_aligned([("key", _hcl_string(schema.key)), ("name", _hcl_string(schema.key))])
        lines.append("  actions = {")
        lines += _hcl_aligned(
            [
                (_hcl_string(action), f"{{ name = {_hcl_string(action)} }}")
                for action in schema.actions
            ],
            indent="    ",
        )
        lines.append("  }")
        if schema.attributes:
            lines.append("  attributes = {")
            lines += _hcl_aligned(
                [
                    (
                        _hcl_string(name),
                        f"{{ name = {_hcl_string(name)}, type = {_hcl_string(kind)} }}",
                    )
                    for name, kind in sorted(schema.attributes.items())
                ],
                indent="    ",
            )
            lines.append("  }")
        lines.append("}")
    return "\n".join(lines) + "\n"


def _hcl_aligned(pairs: Sequence[tuple[str, str]], *, indent: str = "  ") -> list[str]:
    """``key = value`` lines with the ``=`` aligned, as ``terraform fmt`` writes them."""
    width = max((len(key) for key, _ in pairs), default=0)
    return [f"{indent}{key.ljust(width)} = {value}" for key, value in pairs]


def _hcl_string(text: str) -> str:
    # JSON string escapes are HCL's; HCL also reads ${ and %{ as templates.
    return json.dumps(text).replace("${", "$${").replace("%{", "%%{")


def _hcl_label(key: str) -> str:
    label = "".join(c if c.isalnum() or c in "_-" else "_" for c in key)
    return label if label[:1].isalpha() or label[:1] == "_" else f"_{label}"
