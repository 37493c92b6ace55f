"""Finding the guard spec of the component a request is about.

Decorators store their :class:`~permit_guard.decorators.GuardSpec` on the
user's function. FastMCP hands the middleware components, not functions, so
this module walks from one to the other:

- ``FunctionTool`` / ``FunctionResource`` / ``FunctionPrompt``: ``.fn``;
- ``FunctionResourceTemplate``: ``.fn`` is a validating wrapper made when the
  template was created, so ``__wrapped__`` is followed to the user's function;
- components of a mounted server (``FastMCPProviderTool`` and friends): looked
  up again in the sub-server under their original name or URI.

Specs live on functions, not in a table keyed by name, so two servers in one
process never see each other's specs unless they register the same function.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from fastmcp.prompts.base import Prompt
from fastmcp.resources.base import Resource
from fastmcp.resources.template import ResourceTemplate
from fastmcp.server.providers.addressing import parse_hashed_backend_name
from fastmcp.tools.base import Tool
from fastmcp.tools.tool_transform import TransformedTool
from fastmcp.utilities.versions import VersionSpec, version_sort_key

from permit_guard.binding import ArgumentBinder, binder_for_function, binder_for_schema

if TYPE_CHECKING:
    from fastmcp import FastMCP

    from permit_guard.decorators import GuardSpec

__all__ = [
    "Component",
    "Resolved",
    "component_name",
    "decorated_functions",
    "find_prompt",
    "find_resource",
    "find_tool",
    "resolve",
    "resolve_spec",
    "spec_of",
]

SPEC_ATTRIBUTE = "__permit_guard_spec__"

#: Mounted servers nest; a deeper chain than this is treated as unresolvable.
_MAX_MOUNT_DEPTH = 16

Component = Tool | Resource | ResourceTemplate | Prompt
Kind = Literal["tool", "resource", "template", "prompt"]

_decorated: weakref.WeakKeyDictionary[Callable[..., Any], GuardSpec] = weakref.WeakKeyDictionary()


def register_spec(fn: Callable[..., Any], spec: GuardSpec) -> None:
    """Remember a decorated function (for inspection and linting)."""
    # Objects that cannot be weakly referenced still carry the attribute.
    with contextlib.suppress(TypeError):
        _decorated[fn] = spec


def decorated_functions() -> Iterator[tuple[Callable[..., Any], GuardSpec]]:
    """Every live function decorated with a permit_guard decorator."""
    yield from list(_decorated.items())


def spec_of(fn: object) -> GuardSpec | None:
    """The spec recorded on ``fn`` or on a function it wraps (``__wrapped__``)."""
    seen = 0
    while fn is not None and seen < _MAX_MOUNT_DEPTH:
        spec: GuardSpec | None = getattr(fn, SPEC_ATTRIBUTE, None)
        if spec is not None:
            return spec
        fn = getattr(fn, "__wrapped__", None)
        seen += 1
    return None


@dataclass(frozen=True, kw_only=True, slots=True)
class Resolved:
    """A component's spec, and how to read its arguments.

    Attributes:
        spec: The governing spec, or ``None`` when undecorated.
        binder: Turns sent arguments into the values the function runs with.
        arguments_mappable: ``False`` for a transformed tool of a decorated
            function whose spec reads arguments: the transform may rename or
            compute them, so the guard cannot tell which value the decorated
            argument will take, and denies.
    """

    spec: GuardSpec | None
    binder: ArgumentBinder
    arguments_mappable: bool = True


async def resolve_spec(component: Component) -> GuardSpec | None:
    """The spec governing ``component``, following mounts to the sub-server."""
    return (await resolve(component)).spec


async def resolve(component: Component) -> Resolved:
    """The spec and argument binder governing ``component``.

    Follows template wrappers, mounted servers (to the exact version the
    parent will run) and transformed tools.
    """
    current: Any = component
    for _ in range(_MAX_MOUNT_DEPTH):
        if isinstance(current, TransformedTool):
            return await _resolve_transformed(current)
        fn = getattr(current, "fn", None)
        if fn is not None:
            binder = binder_for_function(fn, coerce_strings=isinstance(current, Prompt))
            return Resolved(spec=spec_of(fn), binder=binder)
        server = getattr(current, "_server", None)
        if server is None:
            # A component with no function and no sub-server (a proxy): nothing
            # was decorated, the default applies; its schema types the arguments.
            return Resolved(spec=None, binder=binder_for_schema(_schema(current)))
        found = await _lookup_in_subserver(server, current)
        if found is None:
            raise LookupError(f"mounted component {_label(current)} not found in its server")
        current = found
    raise LookupError(f"{_label(component)}: mounts nested deeper than {_MAX_MOUNT_DEPTH}")


async def _resolve_transformed(tool: TransformedTool) -> Resolved:
    parent = await resolve(tool.parent_tool)
    binder = binder_for_schema(tool.parameters)
    spec = parent.spec
    if spec is None:
        return Resolved(spec=None, binder=binder)
    reads_arguments = (
        spec.key_arg is not None or spec.tenant_arg is not None or spec.abac_args != ()
    )
    return Resolved(spec=spec, binder=binder, arguments_mappable=not reads_arguments)


async def _lookup_in_subserver(server: FastMCP[Any], wrapper: Any) -> Any:
    """The sub-server's own component behind a mounted wrapper, at the wrapper's version."""
    version = VersionSpec(eq=wrapper.version) if getattr(wrapper, "version", None) else None
    original_name = getattr(wrapper, "_original_name", None)
    if isinstance(wrapper, Tool) and original_name:
        return await find_tool(server, original_name, version)
    if isinstance(wrapper, Prompt) and original_name:
        return await find_prompt(server, original_name, version)
    original_template = getattr(wrapper, "_original_uri_template", None)
    if isinstance(wrapper, ResourceTemplate) and original_template:
        candidates = [
            template
            for template in await server.list_resource_templates(run_middleware=False)
            if template.uri_template == original_template
        ]
        if version is not None:
            candidates = [t for t in candidates if version.matches(t.version)]
        return max(candidates, key=version_sort_key, default=None)
    original_uri = getattr(wrapper, "_original_uri", None)
    if isinstance(wrapper, Resource) and original_uri:
        resource, _ = await find_resource(server, str(original_uri), version)
        return resource
    return None


def _schema(component: Any) -> Mapping[str, Any] | None:
    schema = getattr(component, "parameters", None)
    return schema if isinstance(schema, Mapping) else None


def _label(component: Any) -> str:
    return repr(getattr(component, "key", None) or type(component).__name__)


def _local_fast_path(server: FastMCP[Any], key: str) -> Any:
    """An O(1) lookup of ``key`` among the server's own components, when it is exact.

    FastMCP's own lookup gathers every provider and applies transforms, which
    costs hundreds of microseconds on a large server. When the server has only
    its local provider and no transforms, the local component under ``key`` is
    exactly what FastMCP will run; otherwise this returns ``None`` and the
    caller uses FastMCP's public lookup.
    """
    try:
        if server._transforms or len(server.providers) != 1:
            return None
        local = server.local_provider
        if local._transforms or server._injected_tools():
            return None
        return local._components.get(key)
    except AttributeError:
        # A FastMCP without these internals: use the public lookup.
        return None


async def find_tool(
    server: FastMCP[Any], name: str, version: VersionSpec | None = None
) -> Tool | None:
    """The tool ``name`` as FastMCP would run it, or ``None`` when unknown."""
    if version is None:
        tool = _local_fast_path(server, f"tool:{name}@")
        if isinstance(tool, Tool):
            return tool
    tool = await server.get_tool(name, version=version)
    if tool is None:
        # FastMCP's second route: an app tool addressed as `<hash>_<name>`.
        hashed = parse_hashed_backend_name(name)
        if hashed is not None:
            by_hash: Tool | None = await server.get_tool_by_hash(*hashed)
            return by_hash
    return tool


async def find_prompt(
    server: FastMCP[Any], name: str, version: VersionSpec | None = None
) -> Prompt | None:
    """The prompt ``name`` as FastMCP would render it, or ``None`` when unknown."""
    if version is None:
        prompt = _local_fast_path(server, f"prompt:{name}@")
        if isinstance(prompt, Prompt):
            return prompt
    return await server.get_prompt(name, version=version)


async def find_resource(
    server: FastMCP[Any], uri: str, version: VersionSpec | None = None
) -> tuple[Resource | ResourceTemplate | None, dict[str, Any]]:
    """The resource or template that serves ``uri``, and the template's parameters."""
    if version is None:
        resource = _local_fast_path(server, f"resource:{uri}@")
        if isinstance(resource, Resource):
            return resource, {}
    found = await server.get_resource(uri, version=version)
    if found is not None:
        return found, {}
    template = await server.get_resource_template(uri, version=version)
    if template is None:
        return None, {}
    return template, dict(template.matches(uri) or {})


def component_name(component: Component) -> str:
    """How requests name a component: a tool or prompt name, a URI, or a URI template."""
    if isinstance(component, ResourceTemplate):
        return component.uri_template
    if isinstance(component, Resource):
        return str(component.uri)
    return str(component.name)


def requested_version(meta: Mapping[str, Any] | None) -> VersionSpec | None:
    """The component version a request asks for (``_meta.fastmcp.version``), as FastMCP reads it.

    The guard must check the version that will run, not the newest one.
    """
    fastmcp_meta = meta.get("fastmcp") if meta else None
    if not isinstance(fastmcp_meta, Mapping):
        return None
    version = fastmcp_meta.get("version")
    if isinstance(version, str):
        return VersionSpec(eq=version)
    if isinstance(version, Mapping):
        bounds = {k: version.get(k) for k in ("gte", "lt", "eq")}
        if all(v is None or isinstance(v, str) for v in bounds.values()):
            return VersionSpec(**bounds)
    return None
