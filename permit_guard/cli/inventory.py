"""What the guard makes of a FastMCP server: every component and list gate, as it plans them.

Everything goes through the guard's own code, so the ``permit-guard`` command
shows what the middleware does rather than a second opinion:

- components come from the server's own ``list_tools()`` / ``list_resources()``
  / ``list_resource_templates()`` / ``list_prompts()`` with
  ``run_middleware=False`` (mounted servers included, nothing filtered);
- each is classified by the decision core's
  :class:`~permit_guard.planner.Planner` (public, refused and why, or asked),
  with the settings of the server's own middleware;
- the request a call sends is the planner's, with placeholder arguments.

Example::

    import asyncio

    from permit_guard.cli.inventory import inventory
    from permit_guard.cli.load import guard_settings, load_server

    server = load_server("examples/quickstart.py:mcp")
    settings, _ = guard_settings(server)
    for row in asyncio.run(inventory(server, settings)).components:
        print(row.kind, row.name, row.guard, row.request.action if row.request else row.note)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from fastmcp import FastMCP

from permit_guard.cli.samples import sample_arguments
from permit_guard.components.lookup import Component, Target, component_name
from permit_guard.exceptions import InvalidArguments
from permit_guard.mapping import gate_request
from permit_guard.methods import CALL_METHODS, KIND_LIST_METHODS, LIST_METHODS, Kind
from permit_guard.model import AuthzRequest, Principal
from permit_guard.planner import Planner
from permit_guard.settings import GuardSettings
from permit_guard.spec import GuardSpec
from permit_guard.verdict import Why

__all__ = [
    "Attribute",
    "ComponentInfo",
    "GateInfo",
    "GuardKind",
    "Inventory",
    "Source",
    "attributes_of",
    "inventory",
    "permit_type",
]


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
        why: What the guard does with a call: ``engine`` (it asks), ``public``,
            or the refusal (``method``, ``unknown``, ``default-deny``,
            ``unmappable``, ``arguments``).
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
    why: Why = "engine"

    @property
    def reachable(self) -> bool:
        """Whether some caller can ever use it: public, or the engine is asked."""
        return self.why in ("public", "engine")

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
        refusal: Why the method is refused outright (the list then holds the
            ``@public`` components only), ``None`` when it is served.
    """

    method: str
    request: AuthzRequest
    checked: bool
    refusal: str | None = None


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
    """Describe every component of ``server`` and every list gate, as the guard plans them.

    Args:
        server: The server; mounted servers are listed through it.
        settings: The guard's settings (see :func:`~permit_guard.cli.load.guard_settings`).

    Returns:
        The inventory.

    Raises:
        ConfigurationError: If the settings cannot work together.
    """
    planner = Planner.from_settings(settings)
    await planner.survey(server)
    principal = Principal(key="{user}")
    listed: list[tuple[Kind, Sequence[Component]]] = [
        ("tool", await server.list_tools(run_middleware=False)),
        ("resource", await server.list_resources(run_middleware=False)),
        ("template", await server.list_resource_templates(run_middleware=False)),
        ("prompt", await server.list_prompts(run_middleware=False)),
    ]
    components = [
        await _describe(kind, item, planner, principal) for kind, items in listed for item in items
    ]
    gates = []
    for method in LIST_METHODS:
        gate = planner.gate(method, principal)
        gates.append(
            GateInfo(
                method=method,
                request=gate
                if gate is not None
                else gate_request(method, principal, planner.mapping),
                checked=gate is not None,
                refusal=planner.rules.refusal(method),
            )
        )
    return Inventory(
        server_name=server.name, settings=settings, components=tuple(components), gates=tuple(gates)
    )


async def _describe(
    kind: Kind, item: Component, planner: Planner, principal: Principal
) -> ComponentInfo:
    """One component, as the guard plans a call of it (the planner's own answer)."""
    name = component_name(item)
    method = CALL_METHODS[kind]
    plan = await planner.plan(method, Target(kind=kind, name=name, component=item))
    resolved = plan.resolved
    spec = resolved.spec if resolved is not None else None
    guard_kind: GuardKind
    if plan.why == "public":
        guard_kind = "public"
    elif resolved is None:
        guard_kind = "unresolved"
    elif spec is None or not spec.is_declared:
        guard_kind = "default-deny" if planner.default_deny else "default"
    else:
        guard_kind = "decorated"
    common: dict[str, Any] = {
        "kind": kind,
        "name": name,
        "version": getattr(item, "version", None) or None,
        "mounted": getattr(item, "_server", None) is not None,
        "guard": guard_kind,
        "function": spec.function if spec is not None and spec.function else None,
        "why": plan.why,
    }
    if plan.why == "public":
        return ComponentInfo(**common, request=None, key=None, tenant=None, note="never checked")
    if plan.why == "default-deny":
        note = "undecorated under default deny: hidden and denied without asking the engine"
        return ComponentInfo(**common, request=None, key=None, tenant=None, note=note)
    if not plan.asks:
        return ComponentInfo(
            **common, request=None, key=None, tenant=None, note=f"denied: {plan.reason}"
        )
    assert resolved is not None  # a plan that asks has found the spec
    sample = Target(
        kind=kind,
        name=name,
        component=item,
        arguments=sample_arguments(kind, item, resolved.binder),
    )
    try:
        try:
            request = planner.request(plan, method, sample, principal)
        except InvalidArguments:
            # A sample the function's own validation refuses (a pattern, a
            # bound): attribute names do not depend on the values.
            request = planner.request(plan, method, sample, principal, validate=False)
    except InvalidArguments as exc:
        common["why"] = "arguments"
        return ComponentInfo(
            **common, request=None, key=None, tenant=None, note=f"always denied: {exc}"
        )
    return ComponentInfo(
        **common,
        request=request,
        key=_key_source(kind, spec),
        tenant=_tenant_source(spec),
        attributes=attributes_of(request),
    )


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


def attributes_of(request: AuthzRequest) -> tuple[Attribute, ...]:
    """The attributes a request carries, typed as Permit.io types them."""
    found = [
        Attribute(name=name, type=permit_type(value))
        for name, value in request.resource.attributes.items()
    ]
    # Arguments first, then the built-ins, each group in the mapping's order.
    return tuple(sorted(found, key=lambda a: a.name in _BUILT_INS))


def permit_type(value: Any) -> str:
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
