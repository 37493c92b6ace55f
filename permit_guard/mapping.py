"""Pure mapping from an MCP request to the question asked of the policy engine.

permit-fastmcp's documented contract, with a decorator's explicit ``resource``,
``action`` and ``key`` taking precedence for that component:

===========================  =========================  ============  ==============
MCP method                   resource type              resource key  action
===========================  =========================  ============  ==============
tools/call                   ``{server}``               —             tool name, ``_ . /`` → ``-``
resources/read               ``{server}_resources``     the URI       ``read``
prompts/get                  ``{server}_prompts``       prompt name   ``read``
tools/list (the gate)        ``{server}_tools``         —             ``list``
resources/list, …/templates  ``{server}_resources``     —             ``list``
prompts/list                 ``{server}_prompts``       —             ``list``
===========================  =========================  ============  ==============

With ``prefix_resource_with_server_name=False`` the ``{server}_`` of the
non-tool types becomes ``resource_prefix`` (default ``mcp_``). ``action_prefix``
applies to non-tool actions. Arguments become resource attributes
``arg_<name>`` (all of them, or only those named by ``@abac_from_args``), next
to the built-in ``mcp_method`` and ``tool_name`` / ``prompt_name`` /
``resource_uri``, which an argument can never overwrite.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from permit_guard.binding import ArgumentBinder, InvalidArguments
from permit_guard.model import DEFAULT_TENANT, AuthzRequest, Principal, Resource

if TYPE_CHECKING:
    from permit_guard.decorators import GuardSpec

__all__ = [
    "CALL_METHODS",
    "KIND_LIST_METHODS",
    "LIST_METHODS",
    "LIST_METHOD_KINDS",
    "InvalidArguments",
    "MappingConfig",
    "component_request",
    "gate_request",
    "normalize_action",
]

Kind = Literal["tool", "resource", "template", "prompt"]

#: List methods and the component family whose gate they check.
LIST_METHODS: Mapping[str, str] = {
    "tools/list": "tools",
    "resources/list": "resources",
    "resources/templates/list": "resources",
    "prompts/list": "prompts",
}

#: The list method of each kind of component, and back.
KIND_LIST_METHODS: Mapping[Kind, str] = {
    "tool": "tools/list",
    "resource": "resources/list",
    "template": "resources/templates/list",
    "prompt": "prompts/list",
}
LIST_METHOD_KINDS: Mapping[str, Kind] = {method: kind for kind, method in KIND_LIST_METHODS.items()}
#: The method a call, a read or a render of each kind of component goes through.
CALL_METHODS: Mapping[Kind, str] = {
    "tool": "tools/call",
    "resource": "resources/read",
    "template": "resources/read",
    "prompt": "prompts/get",
}

_ACTION_TRANSLATION = str.maketrans({"_": "-", ".": "-", "/": "-"})


@dataclass(frozen=True, kw_only=True, slots=True)
class MappingConfig:
    """The settings the mapping depends on.

    Attributes:
        server_name: Resource type of tool calls (``mcp_server``).
        resource_prefix: Prefix of non-tool types when not prefixed with the server name.
        action_prefix: Prefix of non-tool actions.
        prefix_resource_with_server_name: ``{server}_tools`` rather than ``{prefix}tools``.
        argument_prefix: Prefix of argument attributes when no decorator sets one.
        flatten_arguments: One attribute per argument (nested objects joined
            with ``_``); otherwise one ``arguments`` attribute holding them all.
    """

    server_name: str = "mcp_server"
    resource_prefix: str = "mcp_"
    action_prefix: str = ""
    prefix_resource_with_server_name: bool = True
    argument_prefix: str = "arg_"
    flatten_arguments: bool = True

    def family_type(self, family: str) -> str:
        """The resource type of a component family (``tools``, ``resources``, ``prompts``)."""
        if self.prefix_resource_with_server_name:
            return f"{self.server_name}_{family}"
        return f"{self.resource_prefix}{family}"


def normalize_action(name: str) -> str:
    """A tool name as a Permit.io action key: ``_``, ``.`` and ``/`` become ``-``."""
    return name.translate(_ACTION_TRANSLATION)


def gate_request(method: str, principal: Principal, config: MappingConfig) -> AuthzRequest:
    """The method-level check of a list request (``tools/list`` → ``{server}_tools:list``)."""
    family = LIST_METHODS[method]
    return AuthzRequest(
        user=principal,
        action=f"{config.action_prefix}list",
        resource=Resource(
            type=config.family_type(family),
            tenant=principal.tenant or DEFAULT_TENANT,
            attributes={"mcp_method": method},
        ),
    )


def generic_request(method: str, principal: Principal, config: MappingConfig) -> AuthzRequest:
    """The check of a method with no component.

    ``completion/complete`` → action ``complete`` on ``{server}_completion``.
    """
    family, _, verb = method.partition("/")
    return AuthzRequest(
        user=principal,
        action=f"{config.action_prefix}{verb or family}",
        resource=Resource(
            type=config.family_type(family),
            tenant=principal.tenant or DEFAULT_TENANT,
            attributes={"mcp_method": method},
        ),
    )


def component_request(
    *,
    kind: Kind,
    name: str,
    method: str,
    principal: Principal,
    spec: GuardSpec | None,
    config: MappingConfig,
    arguments: Mapping[str, Any] | None = None,
    binder: ArgumentBinder | None = None,
) -> AuthzRequest:
    """The check of one component: the same for a call and for a list entry.

    Args:
        kind: What the component is.
        name: Tool or prompt name, resource URI, or (listing) URI template.
        method: The MCP method in flight; for a list method the request
            carries no argument attributes and ``mcp_method`` says so.
        principal: The caller.
        spec: The component's guard spec, ``None`` when undecorated.
        config: Mapping settings.
        arguments: Tool/prompt arguments or template parameters, as sent.
        binder: Reads the arguments as the function will receive them
            (validated, defaults filled in).

    Raises:
        InvalidArguments: When an argument needed for the request is missing
            or of a type the tool does not declare.
    """
    listing = method in LIST_METHODS
    args: Mapping[str, Any] = {} if listing or arguments is None else arguments

    if kind == "tool":
        resource_type = config.server_name
        action = normalize_action(name)
        key: str | None = None
        name_attribute = "tool_name"
    else:
        family = "prompts" if kind == "prompt" else "resources"
        resource_type = config.family_type(family)
        action = f"{config.action_prefix}read"
        key = name
        name_attribute = "prompt_name" if kind == "prompt" else "resource_uri"

    tenant = principal.tenant or DEFAULT_TENANT
    attributes: dict[str, Any] = {}
    if spec is not None:
        resource_type = spec.resource or resource_type
        action = spec.action or action
        if spec.key_value is not None:
            key = spec.key_value
        elif spec.key_arg is not None:
            key = (
                None
                if listing
                else _key_from(_bound(args, binder, spec.key_arg, name), spec.key_arg, name)
            )
        if spec.tenant_value is not None:
            tenant = spec.tenant_value
        elif spec.tenant_arg is not None and not listing:
            tenant = _tenant_from(
                _bound(args, binder, spec.tenant_arg, name), spec.tenant_arg, name
            )

    if not listing:
        selected = spec.abac_args if spec is not None else None
        prefix = spec.abac_prefix if spec is not None else None
        if prefix is None:
            prefix = config.argument_prefix
        values = _argument_values(args, selected, binder, name)
        if config.flatten_arguments:
            attributes.update(_flatten(values, prefix, name))
        else:
            attributes["arguments"] = values
        _check_size(attributes, name)
    attributes["mcp_method"] = method
    attributes[name_attribute] = name

    return AuthzRequest(
        user=principal,
        action=action,
        resource=Resource(type=resource_type, key=key, tenant=tenant, attributes=attributes),
    )


#: Nested objects are flattened this many levels deep; deeper ones stay JSON objects.
MAX_FLATTEN_DEPTH = 3
#: Most argument attributes one request may carry.
MAX_ATTRIBUTES = 256
#: Largest JSON size of all argument attributes together.
MAX_ATTRIBUTE_BYTES = 64 * 1024


def _argument_values(
    args: Mapping[str, Any],
    selected: tuple[str, ...] | None,
    binder: ArgumentBinder | None,
    component: str,
) -> dict[str, Any]:
    if selected is not None:
        names: tuple[str, ...] = selected
    elif binder is not None and binder.declared:
        # Every argument the function declares (never extras a client invents).
        names = binder.declared
    else:
        names = tuple(args)
    if binder is None:
        return {name: args[name] for name in names if name in args}
    return binder.bind(args, names, component)


def _flatten(values: Mapping[str, Any], prefix: str, component: str) -> dict[str, Any]:
    """``{"address": {"city": "x"}}`` → ``{"arg_address_city": "x"}``; lists stay arrays."""
    flat: dict[str, Any] = {}

    def put(name: str, value: Any, depth: int) -> None:
        if isinstance(value, Mapping) and value and depth < MAX_FLATTEN_DEPTH:
            for key, item in value.items():
                put(f"{name}_{key}", item, depth + 1)
            return
        if name in flat:
            # Two paths name one attribute (`a_b` and `a.b`): ambiguous, refused.
            raise InvalidArguments(f"{component}: arguments flatten to {name!r} twice")
        flat[name] = value

    for name, value in values.items():
        put(f"{prefix}{name}", value, 0)
    return flat


def _check_size(attributes: Mapping[str, Any], component: str) -> None:
    # Cheap bound first: scalars only and short strings need no serialisation.
    # An upper bound on the JSON size: at most 12 bytes per character (a
    # non-BMP character escapes to two \uXXXX), names included.
    estimate = 0
    for name, value in attributes.items():
        estimate += 12 * len(name) + 4
        if isinstance(value, str):
            estimate += 12 * len(value) + 2
        elif value is None or isinstance(value, int | float):
            estimate += 24
        else:
            estimate = MAX_ATTRIBUTE_BYTES + 1
            break
    if estimate <= MAX_ATTRIBUTE_BYTES and len(attributes) <= MAX_ATTRIBUTES:
        return
    if len(attributes) > MAX_ATTRIBUTES:
        raise InvalidArguments(
            f"{component}: {len(attributes)} attributes exceed {MAX_ATTRIBUTES}; select the "
            "arguments the policy needs with @abac_from_args"
        )
    size = len(json.dumps(attributes, default=str).encode())
    if size > MAX_ATTRIBUTE_BYTES:
        raise InvalidArguments(
            f"{component}: arguments take {size} bytes as attributes, over "
            f"{MAX_ATTRIBUTE_BYTES}; select the arguments the policy needs with @abac_from_args"
        )


def _bound(
    args: Mapping[str, Any], binder: ArgumentBinder | None, arg: str, component: str
) -> Mapping[str, Any]:
    """``arg`` as the function will receive it (``"07"`` for an int key is ``7``)."""
    return args if binder is None else binder.bind(args, (arg,), component)


def _key_from(args: Mapping[str, Any], arg: str, component: str) -> str:
    value = args.get(arg)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidArguments(
            f"{component}: key argument {arg!r} must be a string or integer, got "
            f"{type(value).__name__}"
        )
    text = str(value)
    if not text:
        raise InvalidArguments(f"{component}: key argument {arg!r} is empty")
    return text


def _tenant_from(args: Mapping[str, Any], arg: str, component: str) -> str:
    value = args.get(arg)
    if not isinstance(value, str) or not value:
        raise InvalidArguments(
            f"{component}: tenant argument {arg!r} must be a non-empty string, got "
            f"{type(value).__name__}"
        )
    return value
