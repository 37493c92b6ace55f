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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from permit_guard.attributes import check_size, flatten
from permit_guard.components.binding import ArgumentBinder
from permit_guard.exceptions import InvalidArguments
from permit_guard.methods import LIST_METHODS, Kind
from permit_guard.model import DEFAULT_TENANT, AuthzRequest, Principal, Resource

if TYPE_CHECKING:
    from permit_guard.settings import GuardSettings
    from permit_guard.spec import GuardSpec

__all__ = [
    "MappingConfig",
    "RequestShape",
    "component_request",
    "gate_request",
    "generic_request",
    "normalize_action",
]

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

    @classmethod
    def from_settings(cls, settings: GuardSettings) -> MappingConfig:
        """The mapping settings of a :class:`~permit_guard.settings.GuardSettings`."""
        return cls(
            server_name=settings.mcp_server_name,
            resource_prefix=settings.resource_prefix,
            action_prefix=settings.action_prefix,
            prefix_resource_with_server_name=settings.prefix_resource_with_server_name,
            argument_prefix=settings.tool_argument_prefix,
            flatten_arguments=settings.flatten_tool_arguments,
        )

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
    shape = RequestShape.of(
        kind=kind, name=name, method=method, spec=spec, config=config, binder=binder
    )
    return shape.build(principal, arguments)


@dataclass(frozen=True, slots=True)
class RequestShape:
    """The half of a component's request that needs neither caller nor arguments.

    Computed once per component and method (the planner keeps it as long as
    the component and its spec stay the same); :meth:`build` adds the caller
    and the arguments. :func:`component_request` is the two in one step.
    """

    method: str
    name: str
    listing: bool
    resource_type: str
    action: str
    name_attribute: str
    #: The key and tenant when they do not come from an argument.
    key: str | None
    tenant: str | None
    key_arg: str | None
    tenant_arg: str | None
    #: The arguments sent as attributes; ``None``: every argument sent.
    selected: tuple[str, ...] | None
    #: The key and tenant arguments read beside the selected ones (for a
    #: ``None`` selection, before those sent are taken out).
    extra: tuple[str, ...]
    prefix: str
    flatten: bool
    binder: ArgumentBinder | None

    @classmethod
    def of(
        cls,
        *,
        kind: Kind,
        name: str,
        method: str,
        spec: GuardSpec | None,
        config: MappingConfig,
        binder: ArgumentBinder | None = None,
    ) -> RequestShape:
        """The shape of ``name``'s request for ``method`` (see :func:`component_request`)."""
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
        tenant = key_arg = tenant_arg = prefix = None
        selected = spec.abac_args if spec is not None else None
        if selected is None and binder is not None and binder.declared:
            # Every argument the function declares (never extras a client invents).
            selected = binder.declared
        extra: tuple[str, ...] = ()
        if spec is not None:
            resource_type = spec.resource or resource_type
            action = spec.action or action
            if spec.key_value is not None:
                key = spec.key_value
            elif spec.key_arg is not None:
                key, key_arg = None, spec.key_arg
            tenant = spec.tenant_value
            tenant_arg = spec.tenant_arg if spec.tenant_value is None else None
            prefix = spec.abac_prefix
            # The key and tenant arguments are read (and so validated) beside the selection.
            extra = tuple(arg for arg in (spec.key_arg, spec.tenant_arg) if arg is not None)
            if selected is not None:
                extra = tuple(arg for arg in dict.fromkeys(extra) if arg not in selected)
        return cls(
            method=method,
            name=name,
            listing=method in LIST_METHODS,
            resource_type=resource_type,
            action=action,
            name_attribute=name_attribute,
            key=key,
            tenant=tenant,
            key_arg=key_arg,
            tenant_arg=tenant_arg,
            selected=selected,
            extra=extra,
            prefix=config.argument_prefix if prefix is None else prefix,
            flatten=config.flatten_arguments,
            binder=binder,
        )

    def build(self, principal: Principal, arguments: Mapping[str, Any] | None) -> AuthzRequest:
        """The request of ``principal`` with ``arguments`` (ignored for a list entry).

        Raises:
            InvalidArguments: When an argument needed for the request is missing
                or of a type the tool does not declare.
        """
        name = self.name
        key = self.key
        tenant = self.tenant if self.tenant is not None else principal.tenant or DEFAULT_TENANT
        if self.listing:
            attributes: dict[str, Any] = {}
        else:
            args: Mapping[str, Any] = arguments or {}
            selected = self.selected
            extra = self.extra
            if selected is None:
                selected = tuple(args)
                extra = tuple(arg for arg in dict.fromkeys(extra) if arg not in selected)
            # One bind per request: the key, the tenant and the selected arguments,
            # each as the function will receive it.
            values = _bind(args, (*selected, *extra) if extra else selected, self.binder, name)
            if self.key_arg is not None:
                key = _key_from(values, self.key_arg, name)
            if self.tenant_arg is not None:
                tenant = _tenant_from(values, self.tenant_arg, name)
            sent = _only(values, selected) if extra else values
            flat = self.flatten
            attributes = flatten(sent, self.prefix, name) if flat else {"arguments": sent}
            check_size(attributes, name)
        attributes["mcp_method"] = self.method
        attributes[self.name_attribute] = name
        return AuthzRequest(
            user=principal,
            action=self.action,
            resource=Resource(
                type=self.resource_type, key=key, tenant=tenant, attributes=attributes
            ),
        )


def _bind(
    args: Mapping[str, Any],
    names: tuple[str, ...],
    binder: ArgumentBinder | None,
    component: str,
) -> dict[str, Any]:
    """The values of ``names`` as the function will receive them, bound in one pass."""
    if binder is None:
        return {name: args[name] for name in names if name in args}
    return binder.bind(args, names, component)


def _only(values: Mapping[str, Any], selected: tuple[str, ...]) -> dict[str, Any]:
    """The bound values of the selected arguments (the key or tenant bound beside them dropped)."""
    return {name: values[name] for name in selected if name in values}


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
