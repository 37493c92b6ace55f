"""Finding the guard spec of a component, and how to read its arguments.

Decorators store their :class:`~permit_guard.spec.GuardSpec` on the user's
function. FastMCP hands the guard components, not functions, so this module
walks from one to the other:

- ``FunctionTool`` / ``FunctionResource`` / ``FunctionPrompt``: ``.fn``;
- ``FunctionResourceTemplate``: ``.fn`` is a validating wrapper made when the
  template was created, so ``__wrapped__`` is followed to the user's function;
- components of a mounted server (``FastMCPProviderTool`` and friends): looked
  up again in the sub-server under their original name or URI;
- transformed tools: the parent tool's spec, with the transformed schema.

Specs live on functions, not in a table keyed by name, so two servers in one
process never see each other's specs unless they register the same function.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastmcp.prompts.base import Prompt
from fastmcp.resources.base import Resource
from fastmcp.resources.template import ResourceTemplate
from fastmcp.tools.base import Tool
from fastmcp.tools.tool_transform import TransformedTool
from fastmcp.utilities.versions import VersionSpec, version_sort_key

from permit_guard.components.binding import (
    ArgumentBinder,
    binder_for_function,
    binder_for_schema,
)
from permit_guard.components.lookup import Component, find_prompt, find_resource, find_tool
from permit_guard.spec import GuardSpec, spec_of

if TYPE_CHECKING:
    from fastmcp import FastMCP

__all__ = ["Resolved", "resolve", "resolve_spec"]

#: Mounted servers nest; a deeper chain than this is treated as unresolvable.
_MAX_MOUNT_DEPTH = 16


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
        own: Read from the component's own function (not through a mount
            or a transform), so it holds as long as the component and the
            function's spec do.
    """

    spec: GuardSpec | None
    binder: ArgumentBinder
    arguments_mappable: bool = True
    own: bool = False


async def resolve_spec(component: Component) -> GuardSpec | None:
    """The spec governing ``component``, following mounts to the sub-server."""
    return (await resolve(component)).spec


async def resolve(component: Component) -> Resolved:
    """The spec and argument binder governing ``component``.

    Follows template wrappers, mounted servers (to the exact version the
    parent will run) and transformed tools.

    Raises:
        LookupError: When a mounted component is missing from its server, or
            mounts nest too deep.
    """
    current: Any = component
    for _ in range(_MAX_MOUNT_DEPTH):
        if isinstance(current, TransformedTool):
            return await _resolve_transformed(current)
        fn = getattr(current, "fn", None)
        if fn is not None:
            binder = binder_for_function(fn, coerce_strings=isinstance(current, Prompt))
            return Resolved(spec=spec_of(fn), binder=binder, own=current is component)
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
    return Resolved(spec=spec, binder=binder, arguments_mappable=not spec.reads_arguments)


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
